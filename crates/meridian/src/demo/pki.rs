//! The demo's secrets: a CA and a server certificate for 127.0.0.1 made with rcgen, a random
//! password, its bcrypt hash in a web configuration file (`--web.config.file`), and the HTTPS
//! client the demo itself uses to wait for the servers.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Paths of what [`write_all`] wrote.
pub struct Files {
    pub ca: PathBuf,
    pub password: PathBuf,
    pub web_config: PathBuf,
}

/// 24 hex digits from the system's random source.
pub fn random_token() -> String {
    let mut buf = [0u8; 12];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        // No /dev/urandom: the clock and the process id still make it unique to this run.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mixed = (t ^ (u128::from(std::process::id()) << 64)).to_le_bytes();
        buf.copy_from_slice(&mixed[..12]);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `ca.pem`, `server.pem`, `server-key.pem`, `password` and `web.yml` into `dir`.
pub fn write_all(dir: &Path, user: &str, password: &str) -> Result<Files, String> {
    let err = |e: rcgen::Error| format!("making the demo's certificates: {e}");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Meridian demo CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "meridian-demo");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &ca).map_err(err)?;

    let files = Files {
        ca: dir.join("ca.pem"),
        password: dir.join("password"),
        web_config: dir.join("web.yml"),
    };
    write(&files.ca, &ca.pem())?;
    write(&dir.join("server.pem"), &cert.pem())?;
    write(&dir.join("server-key.pem"), &key.serialize_pem())?;
    write(&files.password, password)?;
    let hash = bcrypt::hash(password, 10).map_err(|e| format!("hashing the password: {e}"))?;
    write(
        &files.web_config,
        &format!(
            "# Every demo server: HTTPS with the demo CA's certificate, basic auth.\ntls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {user}: {hash}\n",
            dir.join("server.pem").display(),
            dir.join("server-key.pem").display(),
        ),
    )?;
    Ok(files)
}

/// An HTTPS client trusting the demo CA and sending the demo credentials.
pub fn client(files: &Files, user: &str, password: &str) -> Result<httpclient::HttpClient, String> {
    let yaml = format!(
        "scrape_configs:\n  - job_name: demo\n    scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: {user}\n      password: {password}\n",
        files.ca.display()
    );
    let cfg = config::Config::from_str(&yaml, "demo client").map_err(|e| e.to_string())?;
    let http = cfg
        .scrape_configs
        .first()
        .map(|s| s.http_client.clone())
        .ok_or("demo client configuration")?;
    httpclient::HttpClient::new(&http, "meridian-demo")
}
