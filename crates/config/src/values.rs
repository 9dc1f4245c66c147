//! Small value types that keep credentials out of logs: [`Secret`] for
//! passwords, tokens and keys, and [`Url`] for URLs that may carry a password.
//! Both print a redacted form through `Debug` and `Display`, so a config can
//! be logged or dumped without leaking what Prometheus also hides.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::DecodeResult;
use crate::yaml::{Decode, Node};

/// A secret string (password, bearer token, private key). `Debug` and
/// `Display` print `<secret>`; call [`Secret::expose`] where the value is
/// really needed.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Decode for Secret {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        String::decode(node, path).map(Secret)
    }
}

/// An absolute URL. `Debug` and `Display` replace a password in it with
/// `xxxxx`, as Prometheus does when it shows its configuration.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Url(url::Url);

impl Url {
    /// The URL with its password, for making requests.
    pub fn expose(&self) -> &url::Url {
        &self.0
    }

    fn redacted(&self) -> String {
        if self.0.password().is_none() {
            return self.0.to_string();
        }
        let mut redacted = self.0.clone();
        // Only fails for URLs that cannot have credentials, which this one has.
        let _ = redacted.set_password(Some("xxxxx"));
        redacted.to_string()
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({:?})", self.redacted())
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Decode for Url {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        let text = String::decode(node, path)?;
        // Worded like Go's url.Parse errors, which Prometheus passes on.
        url::Url::parse(&text)
            .map(Url)
            .map_err(|e| node.error(path, format!("parse {text:?}: {e}")))
    }
}

/// A file path from the config; made absolute against the config file's
/// directory by [`resolve`].
impl Decode for PathBuf {
    fn decode(node: &Node, path: &str) -> DecodeResult<Self> {
        String::decode(node, path).map(PathBuf::from)
    }
}

/// Joins a relative `path` to `dir`, the directory of the file it was written
/// in; absolute and empty paths stay as they are (Prometheus' `JoinDir`).
pub(crate) fn resolve(dir: &Path, path: &mut PathBuf) {
    if !path.as_os_str().is_empty() && path.is_relative() {
        *path = dir.join(&*path);
    }
}

pub(crate) fn resolve_opt(dir: &Path, path: &mut Option<PathBuf>) {
    if let Some(path) = path {
        resolve(dir, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<secret> <secret>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn url_passwords_do_not_print() {
        let Ok(url) = url::Url::parse("https://user:hunter2@example.com/write") else {
            panic!("valid url");
        };
        let url = Url(url);
        assert_eq!(url.to_string(), "https://user:xxxxx@example.com/write");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose().password(), Some("hunter2"));
    }

    #[test]
    fn relative_paths_join_the_config_directory() {
        let dir = Path::new("/etc/prometheus");
        let mut relative = PathBuf::from("token");
        resolve(dir, &mut relative);
        assert_eq!(relative, PathBuf::from("/etc/prometheus/token"));
        let mut absolute = PathBuf::from("/run/token");
        resolve(dir, &mut absolute);
        assert_eq!(absolute, PathBuf::from("/run/token"));
        let mut empty = PathBuf::new();
        resolve(dir, &mut empty);
        assert_eq!(empty, PathBuf::new());
    }
}
