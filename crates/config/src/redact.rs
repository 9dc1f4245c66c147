//! The configuration as `/api/v1/status/config` shows it: the file's YAML with every secret
//! value replaced by `<secret>`, as Prometheus shows secrets.
//!
//! Prometheus prints its parsed configuration (defaults filled in); Meridian prints the file
//! as written, re-emitted (comments dropped, keys of each mapping sorted). The secret
//! keys are those the schema types as secrets (`password`, `credentials`, `bearer_token`,
//! inline TLS `key`, OAuth2 `client_secret` ...); `http_headers` entries list theirs under
//! `secrets`, and `proxy_connect_header` values are all secret.

use serde_json::Value;

/// Keys whose string value is a secret wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "client_certificate_key",
    "key",
    "secret_key",
    "secrets",
];

/// Keys whose every nested string value is a secret.
const SECRET_MAPS: &[&str] = &["proxy_connect_header", "basic_auth_users"];

const REDACTED: &str = "<secret>";

/// `text` (a configuration file that loaded) with secrets replaced, as YAML.
pub fn redacted_yaml(text: &str) -> Result<String, String> {
    let mut v: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    redact(&mut v, false);
    if v.is_null() {
        return Ok(String::new());
    }
    serde_saphyr::to_string(&v).map_err(|e| e.to_string())
}

fn redact(v: &mut Value, secret: bool) {
    match v {
        Value::String(s) if secret && !s.is_empty() => *s = REDACTED.to_string(),
        Value::Array(items) => items.iter_mut().for_each(|x| redact(x, secret)),
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                let here = secret
                    || SECRET_KEYS.contains(&k.as_str())
                    || SECRET_MAPS.contains(&k.as_str());
                redact(x, here);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_the_rest_kept() {
        let text = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password: S3CR1T-a\n    authorization:\n      credentials: S3CR1T-b\n    tls_config:\n      key: S3CR1T-c\n      key_file: /k.pem\n    http_headers:\n      X-A:\n        values: [v]\n        secrets: [S3CR1T-d, S3CR1T-e]\nremote_write:\n  - url: http://x/api/v1/write\n    bearer_token: S3CR1T-f\n    proxy_connect_header:\n      Auth: [S3CR1T-g]\n";
        let out = redacted_yaml(text).unwrap_or_default();
        assert!(!out.contains("S3CR1T"), "a secret leaked:\n{out}");
        for kept in [
            "15s",
            "job_name: a",
            "username: u",
            "/k.pem",
            "http://x/api/v1/write",
            "- v",
        ] {
            assert!(out.contains(kept), "{kept} missing:\n{out}");
        }
        assert_eq!(out.matches("<secret>").count(), 7, "{out}");
        let empty = redacted_yaml("").unwrap_or_else(|e| e);
        assert_eq!(empty, "");
    }
}
