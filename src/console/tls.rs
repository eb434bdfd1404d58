//! The console's TLS: the configured certificate and key, or a self-signed
//! pair made at first start in `<data_dir>/console/` (key mode 0600) and
//! reused afterwards, so the fingerprint a browser was told to trust stays.
//! rustls with the ring provider; TLS 1.2 and 1.3 only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;

use crate::config::Config;

/// A ready server configuration and what to tell the operator about it.
pub struct Tls {
    /// For `tokio_rustls::TlsAcceptor`.
    pub server: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, `AA:BB:…`.
    pub fingerprint: String,
    /// The certificate file in use.
    pub cert_path: PathBuf,
    /// True when this start made the self-signed certificate.
    pub created: bool,
}

/// Where the self-signed pair lives.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("console");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Loads (or first creates) the certificate and builds the rustls config.
pub fn load(cfg: &Config) -> Result<Tls, String> {
    let c = &cfg.console;
    let (cert_path, key_path, created) = match (&c.cert, &c.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        (None, None) => {
            let (cert, key) = self_signed_paths(&cfg.server.data_dir);
            let created = !cert.exists() || !key.exists();
            if created {
                make_self_signed(cfg, &cert, &key)?;
            }
            (cert, key, created)
        }
        _ => return Err("[console] cert and key go together: set both, or neither for a self-signed one".into()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the console certificate {}: {e}", cert_path.display()))?;
    let first = certs.first().ok_or_else(|| format!("{} holds no certificate", cert_path.display()))?;
    let fingerprint = fingerprint(first.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("cannot read the console key {}: {e}", key_path.display()))?;
    // ring, not aws-lc-rs: ring is already our dependency and builds
    // without cmake; it lacks only the post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the console certificate and key do not fit together: {e}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls { server: Arc::new(server), fingerprint, cert_path, created })
}

/// `AA:BB:…` SHA-256 of a DER certificate (what browsers show).
pub fn fingerprint(der: &[u8]) -> String {
    let d = sha2::Sha256::digest(der);
    d.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn make_self_signed(cfg: &Config, cert: &Path, key: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut names = vec!["localhost".to_string(), cfg.server.name.to_ascii_lowercase()];
    let ip = cfg.console.listen.ip();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    names.push("127.0.0.1".into());
    names.extend(cfg.console.hostnames.iter().cloned());
    names.dedup();
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| format!("cannot make a certificate: {e}"))?;
    let dir = cert.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |path: &Path, text: &str, mode: u32| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    // The key first: a certificate without its key would be reused uselessly.
    write(key, &ck.key_pair.serialize_pem(), 0o600).map_err(|e| format!("cannot write {}: {e}", key.display()))?;
    write(cert, &ck.cert.pem(), 0o644).map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    Ok(())
}
