//! Where SigV4 signing gets its AWS credentials and region, and the signer an
//! [`crate::HttpClient`] holds when its config has a `sigv4` section.
//!
//! Credentials, in order: the section's `access_key`/`secret_key`; the shared files' profile
//! named by the section's `profile`; the environment (`AWS_ACCESS_KEY_ID` or `AWS_ACCESS_KEY`,
//! `AWS_SECRET_ACCESS_KEY` or `AWS_SECRET_KEY`, `AWS_SESSION_TOKEN`); the shared files'
//! profile `AWS_PROFILE` (else `default`). The shared files are the credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, sections `[name]`) and the
//! config file (`AWS_CONFIG_FILE`, else `~/.aws/config`, sections `[profile name]` and
//! `[default]`); profile credentials are read again when either file changes. Profiles that
//! get their credentials elsewhere (`credential_process`, SSO, `role_arn`/`source_profile`,
//! web identity) and instance or container credentials are not supported: the client is then
//! refused with an error saying so.
//!
//! The region: the section's `region`, else `AWS_REGION`, `AWS_DEFAULT_REGION`, or the
//! profile's `region` in the config file.
//!
//! `role_arn`: the credentials above call STS `AssumeRole` (signed for service `sts`, at
//! `https://sts.<region>.amazonaws.com`, `sts-fips.` with `use_fips_sts_endpoint`, or
//! `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` as the AWS SDKs allow) for 15-minute
//! credentials, cached and renewed 30 s before they expire. STS is reached with the system's
//! CA certificates and the environment's proxy (`HTTPS_PROXY`), as the AWS SDK does; it is
//! first called by the first request, whose failure then names the STS error.
//!
//! What the environment holds is taken from an [`AwsEnv`]: the process's by default, or one
//! a test builds. Secrets never appear in errors or `Debug` output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use config::SigV4Config;

use crate::sigv4::{self, Credentials};
use crate::tls::{self, Stamp, stamp};

/// Lifetime asked of assumed-role credentials (the AWS SDK's default).
const ASSUME_ROLE_SECONDS: u64 = 900;
/// Assumed-role credentials are renewed this long before they expire (Prometheus' window).
const EXPIRY_WINDOW: Duration = Duration::from_secs(30);
/// Bound on an STS call.
const STS_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of an STS answer read.
const STS_MAX_BODY: usize = 1 << 20;

/// The environment variables the AWS SDKs read (`AWS_*` and `HOME`).
#[derive(Clone, Default)]
pub struct AwsEnv {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the values include secret keys.
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl AwsEnv {
    /// The `AWS_*` variables and `HOME` of this process, as they are now.
    pub fn from_process() -> AwsEnv {
        AwsEnv {
            vars: std::env::vars()
                .filter(|(name, _)| name.starts_with("AWS_") || name == "HOME")
                .collect(),
        }
    }

    /// An environment of these variables only.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> AwsEnv {
        AwsEnv {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value; unset and empty are the same.
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The file named by `var`, else `~/<default>`.
    fn file(&self, var: &str, default: &str) -> Option<PathBuf> {
        match self.get(var) {
            Some(path) => Some(PathBuf::from(path)),
            None => self
                .get("HOME")
                .map(|home| PathBuf::from(home).join(default)),
        }
    }
}

/// An INI file as the AWS shared files use it: section → key (lowercase) → value.
type Ini = BTreeMap<String, BTreeMap<String, String>>;

fn parse_ini(text: &str) -> Ini {
    let mut out = Ini::new();
    let mut section: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        // Indented lines continue a nested value (`s3 =` blocks): not credentials.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let (Some(section), Some((key, value))) = (&section, trimmed.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    out
}

/// Reads a shared file; a missing one is empty.
fn read_ini(path: Option<&PathBuf>) -> Result<Ini, String> {
    let Some(path) = path else {
        return Ok(Ini::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(e) => Err(format!("unable to read {}: {e}", path.display())),
    }
}

/// Keys of a profile that mean its credentials come from somewhere Meridian does not go.
const UNSUPPORTED_PROFILE_KEYS: [&str; 6] = [
    "credential_process",
    "sso_start_url",
    "sso_session",
    "role_arn",
    "source_profile",
    "web_identity_token_file",
];

/// A profile's section of the config file.
fn config_section<'a>(config: &'a Ini, profile: &str) -> Option<&'a BTreeMap<String, String>> {
    config.get(&format!("profile {profile}")).or_else(|| {
        if profile == "default" {
            config.get("default")
        } else {
            None
        }
    })
}

/// The credentials of `profile` from the shared files: `Ok(None)` when neither file has the
/// profile.
fn profile_credentials(
    profile: &str,
    credentials_file: Option<&PathBuf>,
    config_file: Option<&PathBuf>,
) -> Result<Option<Credentials>, String> {
    let credentials = read_ini(credentials_file)?;
    let config = read_ini(config_file)?;
    let sections = [credentials.get(profile), config_section(&config, profile)];
    if sections.iter().all(Option::is_none) {
        return Ok(None);
    }
    for section in sections.into_iter().flatten() {
        let id = section.get("aws_access_key_id").filter(|v| !v.is_empty());
        let secret = section
            .get("aws_secret_access_key")
            .filter(|v| !v.is_empty());
        match (id, secret) {
            (Some(id), Some(secret)) => {
                return Ok(Some(Credentials::new(
                    id.clone(),
                    secret.clone(),
                    section.get("aws_session_token").cloned(),
                )));
            }
            (Some(_), None) => {
                return Err(format!(
                    "profile {profile:?} has aws_access_key_id but no aws_secret_access_key"
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "profile {profile:?} has aws_secret_access_key but no aws_access_key_id"
                ));
            }
            (None, None) => {}
        }
    }
    for section in sections.into_iter().flatten() {
        if let Some(key) = UNSUPPORTED_PROFILE_KEYS
            .iter()
            .find(|k| section.contains_key(**k))
        {
            return Err(format!(
                "profile {profile:?} gets its credentials through {key}, which Meridian does not support (use aws_access_key_id and aws_secret_access_key)"
            ));
        }
    }
    Err(format!(
        "profile {profile:?} has no aws_access_key_id and aws_secret_access_key"
    ))
}

fn describe(path: Option<&PathBuf>) -> String {
    path.map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no HOME)".to_owned())
}

/// The stamps of the credentials and config files.
type FileStamps = (Option<Stamp>, Option<Stamp>);

/// Credentials of a profile in the shared files, read again when a file changes.
struct ProfileCredentials {
    profile: String,
    credentials_file: Option<PathBuf>,
    config_file: Option<PathBuf>,
    current: Mutex<(FileStamps, Credentials)>,
}

impl ProfileCredentials {
    /// `Ok(None)` when neither file has the profile.
    fn load(profile: &str, env: &AwsEnv) -> Result<Option<ProfileCredentials>, String> {
        let credentials_file = env.file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
        let config_file = env.file("AWS_CONFIG_FILE", ".aws/config");
        let stamps = Self::stamps(credentials_file.as_ref(), config_file.as_ref());
        let Some(credentials) =
            profile_credentials(profile, credentials_file.as_ref(), config_file.as_ref())?
        else {
            return Ok(None);
        };
        Ok(Some(ProfileCredentials {
            profile: profile.to_owned(),
            credentials_file,
            config_file,
            current: Mutex::new((stamps, credentials)),
        }))
    }

    fn stamps(credentials: Option<&PathBuf>, config: Option<&PathBuf>) -> FileStamps {
        (
            credentials.and_then(|p| stamp(p)),
            config.and_then(|p| stamp(p)),
        )
    }

    /// The profile's credentials as the files are now; after a change that cannot be used
    /// (a file caught half-written), the previous ones.
    fn get(&self) -> Credentials {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let now = Self::stamps(self.credentials_file.as_ref(), self.config_file.as_ref());
        if now != current.0 {
            match profile_credentials(
                &self.profile,
                self.credentials_file.as_ref(),
                self.config_file.as_ref(),
            ) {
                Ok(Some(credentials)) => *current = (now, credentials),
                Ok(None) => {
                    tracing::warn!(profile = %self.profile, "sigv4: the profile is gone from the AWS shared files; keeping its previous credentials");
                    current.0 = now;
                }
                Err(e) => {
                    tracing::warn!(err = %e, "sigv4: keeping the previous AWS credentials");
                    current.0 = now;
                }
            }
        }
        current.1.clone()
    }
}

/// Where the credentials that sign (or ask STS) come from.
enum Base {
    Static(Credentials),
    Profile(ProfileCredentials),
}

impl Base {
    fn resolve(cfg: &SigV4Config, env: &AwsEnv) -> Result<Base, String> {
        if let (false, Some(secret)) = (cfg.access_key.is_empty(), &cfg.secret_key) {
            return Ok(Base::Static(Credentials::new(
                cfg.access_key.clone(),
                secret.expose(),
                None,
            )));
        }
        let credentials_file = env.file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
        let config_file = env.file("AWS_CONFIG_FILE", ".aws/config");
        if !cfg.profile.is_empty() {
            return match ProfileCredentials::load(&cfg.profile, env)? {
                Some(profile) => Ok(Base::Profile(profile)),
                None => Err(format!(
                    "profile {:?} not found in {} or {}",
                    cfg.profile,
                    describe(credentials_file.as_ref()),
                    describe(config_file.as_ref())
                )),
            };
        }
        let id = env
            .get("AWS_ACCESS_KEY_ID")
            .or_else(|| env.get("AWS_ACCESS_KEY"));
        let secret = env
            .get("AWS_SECRET_ACCESS_KEY")
            .or_else(|| env.get("AWS_SECRET_KEY"));
        if let (Some(id), Some(secret)) = (id, secret) {
            return Ok(Base::Static(Credentials::new(
                id,
                secret,
                env.get("AWS_SESSION_TOKEN").map(str::to_owned),
            )));
        }
        let profile = env.get("AWS_PROFILE").unwrap_or("default");
        match ProfileCredentials::load(profile, env)? {
            Some(profile) => Ok(Base::Profile(profile)),
            None => Err(format!(
                "no access_key and secret_key in the sigv4 section, no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, and no profile {profile:?} in {} or {} (instance, container, web identity and SSO credentials are not supported by Meridian)",
                describe(credentials_file.as_ref()),
                describe(config_file.as_ref())
            )),
        }
    }

    fn get(&self) -> Credentials {
        match self {
            Base::Static(credentials) => credentials.clone(),
            Base::Profile(profile) => profile.get(),
        }
    }
}

/// The signing region.
fn resolve_region(cfg: &SigV4Config, env: &AwsEnv) -> Result<String, String> {
    if !cfg.region.is_empty() {
        return Ok(cfg.region.clone());
    }
    if let Some(region) = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
    {
        return Ok(region.to_owned());
    }
    let profile = if cfg.profile.is_empty() {
        env.get("AWS_PROFILE").unwrap_or("default")
    } else {
        cfg.profile.as_str()
    };
    let config = read_ini(env.file("AWS_CONFIG_FILE", ".aws/config").as_ref())?;
    config_section(&config, profile)
        .and_then(|section| section.get("region"))
        .filter(|r| !r.is_empty())
        .cloned()
        .ok_or_else(|| "region not configured in sigv4 or in default credentials chain".to_owned())
}

/// The STS endpoint `AssumeRole` goes to.
fn sts_endpoint(env: &AwsEnv, region: &str, fips: bool) -> Result<reqwest::Url, String> {
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != Some("true")
        && let Some(url) = env
            .get("AWS_ENDPOINT_URL_STS")
            .or_else(|| env.get("AWS_ENDPOINT_URL"))
    {
        return reqwest::Url::parse(url).map_err(|e| format!("invalid STS endpoint {url:?}: {e}"));
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let host = if fips { "sts-fips" } else { "sts" };
    let url = format!("https://{host}.{region}.{suffix}/");
    reqwest::Url::parse(&url).map_err(|e| format!("invalid STS endpoint {url:?}: {e}"))
}

/// The inner text of the first `<tag>` element of `doc` (no nesting of the same tag).
fn xml_inner<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(at) = doc[from..].find(&open) {
        let start = from + at + open.len();
        let rest = &doc[start..];
        // `<Tag>` or `<Tag attr=...>`, not `<TagSomethingElse>`.
        if rest.starts_with('>') || rest.starts_with(char::is_whitespace) {
            let body_start = start + rest.find('>')? + 1;
            let end = doc[body_start..].find(&format!("</{tag}>"))?;
            return Some(&doc[body_start..body_start + end]);
        }
        from = start;
    }
    None
}

/// The text of the first `<tag>` element, entities decoded and trimmed.
fn xml_value(doc: &str, tag: &str) -> Option<String> {
    let raw = xml_inner(doc, tag)?.trim();
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else {
            break;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

/// An ISO 8601 UTC time as STS writes it: `2015-08-30T12:36:00Z`, optionally with
/// fractional seconds or a `±HH:MM` offset.
fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let (date, time) = text.trim().split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let day: u32 = ymd.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_secs) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0i64)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
        (clock, sign * minutes * 60)
    };
    let mut hms = clock.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let seconds = hms.next()?;
    let whole: i64 = seconds.split('.').next()?.parse().ok()?;
    let secs =
        sigv4::days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + whole
            - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Assumed-role credentials from STS, cached until shortly before they expire.
struct AssumeRole {
    role_arn: String,
    region: String,
    endpoint: reqwest::Url,
    client: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
}

impl AssumeRole {
    async fn credentials(&self, base: &Credentials) -> Result<Credentials, String> {
        let mut cached = self.cached.lock().await;
        if let Some((credentials, expires)) = &*cached
            && SystemTime::now() + EXPIRY_WINDOW < *expires
        {
            return Ok(credentials.clone());
        }
        let (credentials, expires) = self.assume(base).await?;
        *cached = Some((credentials.clone(), expires));
        Ok(credentials)
    }

    async fn assume(&self, base: &Credentials) -> Result<(Credentials, SystemTime), String> {
        let context = format!("sts AssumeRole {} at {}", self.role_arn, self.endpoint);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let body = format!(
            "Action=AssumeRole&DurationSeconds={ASSUME_ROLE_SECONDS}&RoleArn={}&RoleSessionName=meridian-{nanos}&Version=2011-06-15",
            sigv4::uri_encode(&self.role_arn, false)
        );
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .build()
            .map_err(|e| format!("{context}: {}", crate::error_chain(&e)))?;
        sigv4::sign_request(&mut request, base, &self.region, "sts", SystemTime::now())
            .map_err(|e| format!("{context}: {e}"))?;
        let mut response = self
            .client
            .execute(request)
            .await
            .map_err(|e| format!("{context}: {}", crate::error_chain(&e)))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{context}: {}", crate::error_chain(&e)))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > STS_MAX_BODY {
                return Err(format!("{context}: the answer is larger than 1MiB"));
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            let code = xml_value(&text, "Code").unwrap_or_default();
            let message = xml_value(&text, "Message").unwrap_or_default();
            return Err(format!("{context}: {status}: {code}: {message}"));
        }
        let parsed = xml_inner(&text, "Credentials").and_then(|section| {
            Some((
                xml_value(section, "AccessKeyId")?,
                xml_value(section, "SecretAccessKey")?,
                xml_value(section, "SessionToken")?,
                xml_value(section, "Expiration")?,
            ))
        });
        let Some((id, secret, token, expiration)) = parsed else {
            return Err(format!("{context}: the answer holds no credentials"));
        };
        let expires = parse_iso8601(&expiration)
            .ok_or_else(|| format!("{context}: invalid Expiration {expiration:?}"))?;
        tracing::debug!(role_arn = %self.role_arn, access_key_id = %id, "sigv4: assumed role");
        Ok((Credentials::new(id, secret, Some(token)), expires))
    }
}

/// Signs the requests of one client: credentials, region and service `aps`.
pub(crate) struct Signer {
    region: String,
    base: Base,
    assume_role: Option<AssumeRole>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .field(
                "credentials",
                &match &self.base {
                    Base::Static(_) => "static".to_owned(),
                    Base::Profile(p) => format!("profile {}", p.profile),
                },
            )
            .field(
                "role_arn",
                &self.assume_role.as_ref().map(|r| r.role_arn.as_str()),
            )
            .finish()
    }
}

impl Signer {
    /// Resolves the region and the credentials now (files are read, STS is not called).
    pub(crate) fn new(cfg: &SigV4Config, env: &AwsEnv, user_agent: &str) -> Result<Signer, String> {
        let base = Base::resolve(cfg, env)
            .map_err(|e| format!("sigv4: could not get SigV4 credentials: {e}"))?;
        let region = resolve_region(cfg, env).map_err(|e| format!("sigv4: {e}"))?;
        let assume_role = if cfg.role_arn.is_empty() {
            None
        } else {
            let endpoint = sts_endpoint(env, &region, cfg.use_fips_sts_endpoint)
                .map_err(|e| format!("sigv4: {e}"))?;
            let client = reqwest::Client::builder()
                .use_preconfigured_tls(tls::client_config(&config::TlsConfig::default())?)
                .user_agent(user_agent)
                .timeout(STS_TIMEOUT)
                .build()
                .map_err(|e| format!("sigv4: error creating the STS client: {e}"))?;
            Some(AssumeRole {
                role_arn: cfg.role_arn.clone(),
                region: region.clone(),
                endpoint,
                client,
                cached: tokio::sync::Mutex::new(None),
            })
        };
        Ok(Signer {
            region,
            base,
            assume_role,
        })
    }

    /// The credentials requests are signed with now.
    pub(crate) async fn credentials(&self) -> Result<Credentials, String> {
        let base = self.base.get();
        match &self.assume_role {
            Some(role) => role.credentials(&base).await,
            None => Ok(base),
        }
    }

    /// Signs `request` for service `aps`.
    pub(crate) async fn sign(&self, request: &mut reqwest::Request) -> Result<(), String> {
        let credentials = self.credentials().await?;
        sigv4::sign_request(
            request,
            &credentials,
            &self.region,
            sigv4::SERVICE_APS,
            SystemTime::now(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::Secret;

    fn cfg(region: &str) -> SigV4Config {
        SigV4Config {
            region: region.to_owned(),
            ..SigV4Config::default()
        }
    }

    fn resolve(cfg: &SigV4Config, env: &AwsEnv) -> Result<Credentials, String> {
        Base::resolve(cfg, env).map(|b| b.get())
    }

    fn ok<T>(r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn config_keys_win_then_environment() {
        let env = AwsEnv::from_pairs([
            ("AWS_ACCESS_KEY_ID", "ENVID"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_SESSION_TOKEN", "envtoken"),
        ]);
        let mut c = cfg("eu-west-1");
        c.access_key = "CFGID".into();
        c.secret_key = Some(Secret::new("cfgsecret"));
        let creds = ok(resolve(&c, &env));
        assert_eq!(creds.access_key_id(), "CFGID");
        assert_eq!(creds.session_token(), None);
        let creds = ok(resolve(&cfg("eu-west-1"), &env));
        assert_eq!(creds.access_key_id(), "ENVID");
        assert_eq!(creds.session_token(), Some("envtoken"));
    }

    #[test]
    fn shared_files_and_profiles() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let aws = dir.path().join(".aws");
        ok(std::fs::create_dir_all(&aws).map_err(|e| e.to_string()));
        let write = |name: &str, text: &str| {
            ok(std::fs::write(aws.join(name), text).map_err(|e| e.to_string()));
        };
        write(
            "credentials",
            "# comment\n[default]\naws_access_key_id = DEFID\naws_secret_access_key = defsecret\n\n[dev]\naws_access_key_id=DEVID\naws_secret_access_key=devsecret\naws_session_token=devtoken\n[sso]\nsso_session = corp\n",
        );
        write(
            "config",
            "[default]\nregion = us-west-2\n[profile dev]\nregion=eu-central-1\n[profile cfgonly]\naws_access_key_id = CFGONLY\naws_secret_access_key = s\n",
        );
        let home = dir.path().display().to_string();
        let env = AwsEnv::from_pairs([("HOME", home.as_str())]);
        assert_eq!(ok(resolve(&cfg(""), &env)).access_key_id(), "DEFID");
        assert_eq!(ok(resolve_region(&cfg(""), &env)), "us-west-2");

        let env_dev = AwsEnv::from_pairs([("HOME", home.as_str()), ("AWS_PROFILE", "dev")]);
        let dev = ok(resolve(&cfg(""), &env_dev));
        assert_eq!(dev.access_key_id(), "DEVID");
        assert_eq!(dev.session_token(), Some("devtoken"));
        assert_eq!(ok(resolve_region(&cfg(""), &env_dev)), "eu-central-1");
        assert_eq!(
            ok(resolve_region(
                &cfg(""),
                &AwsEnv::from_pairs([("HOME", home.as_str()), ("AWS_REGION", "ap-south-1")])
            )),
            "ap-south-1"
        );

        // The config's profile comes before environment keys.
        let mut with_profile = cfg("");
        with_profile.profile = "cfgonly".into();
        let env_keys = AwsEnv::from_pairs([
            ("HOME", home.as_str()),
            ("AWS_ACCESS_KEY_ID", "ENVID"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
        ]);
        assert_eq!(
            ok(resolve(&with_profile, &env_keys)).access_key_id(),
            "CFGONLY"
        );
        assert_eq!(ok(resolve(&cfg(""), &env_keys)).access_key_id(), "ENVID");

        let mut sso = cfg("");
        sso.profile = "sso".into();
        let err = resolve(&sso, &env).err().unwrap_or_default();
        assert!(err.contains("sso_session"), "{err}");
        let mut missing = cfg("");
        missing.profile = "nope".into();
        let err = resolve(&missing, &env).err().unwrap_or_default();
        assert!(err.contains("profile \"nope\" not found"), "{err}");

        // AWS_SHARED_CREDENTIALS_FILE, and a change of the file is picked up.
        let other = dir.path().join("other-credentials");
        ok(std::fs::write(
            &other,
            "[default]\naws_access_key_id = ONE\naws_secret_access_key = s1\n",
        )
        .map_err(|e| e.to_string()));
        let env_file =
            AwsEnv::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", other.display().to_string())]);
        let base = ok(Base::resolve(&cfg("x"), &env_file));
        assert_eq!(base.get().access_key_id(), "ONE");
        ok(std::fs::write(
            &other,
            "[default]\naws_access_key_id = TWO-LONGER\naws_secret_access_key = s2\n",
        )
        .map_err(|e| e.to_string()));
        assert_eq!(base.get().access_key_id(), "TWO-LONGER");
        // A broken rewrite keeps the previous credentials.
        ok(
            std::fs::write(&other, "[default]\naws_access_key_id = HALF\n")
                .map_err(|e| e.to_string()),
        );
        assert_eq!(base.get().access_key_id(), "TWO-LONGER");
    }

    #[test]
    fn nothing_found_is_a_clear_error() {
        let err = resolve(&cfg("x"), &AwsEnv::default())
            .err()
            .unwrap_or_default();
        assert!(err.contains("not supported by Meridian"), "{err}");
        let err = resolve_region(&cfg(""), &AwsEnv::default())
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "region not configured in sigv4 or in default credentials chain"
        );
    }

    #[test]
    fn sts_endpoints() {
        let none = AwsEnv::default();
        let url = |env: &AwsEnv, region: &str, fips: bool| {
            ok(sts_endpoint(env, region, fips)).to_string()
        };
        assert_eq!(
            url(&none, "eu-west-1", false),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            url(&none, "us-east-1", true),
            "https://sts-fips.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            url(&none, "cn-north-1", false),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
        let local = AwsEnv::from_pairs([("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/")]);
        assert_eq!(url(&local, "eu-west-1", true), "http://127.0.0.1:9/");
    }

    #[test]
    fn sts_answers() {
        let answer = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>se/cr+et</SecretAccessKey>
      <SessionToken>tok&amp;en</SessionToken>
      <Expiration>2015-08-30T12:51:00.123Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>"#;
        let section = xml_inner(answer, "Credentials").unwrap_or_default();
        assert_eq!(
            xml_value(section, "AccessKeyId").as_deref(),
            Some("ASIAEXAMPLE")
        );
        assert_eq!(
            xml_value(section, "SessionToken").as_deref(),
            Some("tok&en")
        );
        assert_eq!(xml_inner(answer, "Credential"), None);
        let expires = parse_iso8601("2015-08-30T12:51:00.123Z");
        assert_eq!(
            expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160 + 900))
        );
        assert_eq!(parse_iso8601("2015-08-30T14:51:00+02:00"), expires);
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn environment_debug_shows_names_only() {
        let env = AwsEnv::from_pairs([("AWS_SECRET_ACCESS_KEY", "very-secret")]);
        let text = format!("{env:?}");
        assert!(text.contains("AWS_SECRET_ACCESS_KEY") && !text.contains("very-secret"));
    }
}
