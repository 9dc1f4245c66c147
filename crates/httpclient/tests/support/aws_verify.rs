//! An AWS SigV4 verifier for tests, written apart from `httpclient::sigv4`: it recomputes
//! the signature of a request as a server received it (method, path and query as sent,
//! header values, body bytes) from the `Authorization` header's credential scope and signed
//! header list, and the secret key of its access key. Shared by the SigV4 tests of
//! `httpclient` and `remote` (included with `#[path]`).

#![allow(dead_code)]

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What a valid signature said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|e| panic!("{e}"));
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding of everything but unreserved characters (and `/` when asked).
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if keep || (slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.replace('+', " ").into_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks the signature of a received request. `headers` are (name, value) as received,
/// any case, repeated names allowed; `secret_for` gives the secret key of an access key.
pub fn verify(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    body: &[u8],
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<Verified, String> {
    let header = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let auth = header("authorization")
        .into_iter()
        .next()
        .ok_or("no Authorization header")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| format!("not a SigV4 Authorization: {auth}"))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v.to_owned()),
            Some(("SignedHeaders", v)) => signed = Some(v.to_owned()),
            Some(("Signature", v)) => signature = Some(v.to_owned()),
            _ => return Err(format!("unexpected part {part:?}")),
        }
    }
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(s), Some(g)) => (c, s, g),
        _ => return Err(format!("incomplete Authorization: {auth}")),
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(format!("bad credential scope {credential}"));
    };
    let amz_date = header("x-amz-date")
        .into_iter()
        .next()
        .ok_or("no X-Amz-Date header")?;
    if amz_date.len() != 16 || !amz_date.starts_with(date) {
        return Err(format!(
            "X-Amz-Date {amz_date} does not match the scope date {date}"
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    let mut sorted = signed_headers.clone();
    sorted.sort();
    if sorted != signed_headers || !signed_headers.iter().any(|h| h == "host") {
        return Err(format!(
            "SignedHeaders not sorted or without host: {signed}"
        ));
    }
    let mut canonical_headers = String::new();
    for name in &signed_headers {
        let values = header(name);
        if values.is_empty() {
            return Err(format!("signed header {name} was not received"));
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical = format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed}\n{}",
        encode(if path.is_empty() { "/" } else { path }, true),
        hex(&Sha256::digest(body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let secret =
        secret_for(access_key).ok_or_else(|| format!("unknown access key {access_key}"))?;
    let key = mac(format!("AWS4{secret}").as_bytes(), date);
    let key = mac(&key, region);
    let key = mac(&key, service);
    let key = mac(&key, "aws4_request");
    let expected = hex(&mac(&key, &to_sign));
    if expected != signature {
        return Err(format!(
            "signature mismatch (canonical request:\n{canonical})"
        ));
    }
    Ok(Verified {
        access_key: access_key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
    })
}

/// `time` as ISO 8601 UTC (`2015-08-30T12:36:00Z`), as STS writes `Expiration`.
pub fn iso8601(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
