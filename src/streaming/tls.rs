//! `--stream-tls-cert`/`--stream-tls-key`: the streaming server over TLS, for nodes
//! where its port is reachable from more than kubelet's loopback.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::server::StreamingError;

#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, StreamingError> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                StreamingError::Tls(format!("reading certificates {}: {e}", self.cert.display()))
            })?;
        if certs.is_empty() {
            return Err(StreamingError::Tls(format!(
                "{} holds no PEM certificate",
                self.cert.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            StreamingError::Tls(format!("reading private key {}: {e}", self.key.display()))
        })?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| StreamingError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            StreamingError::Tls(format!(
                "{} and {} do not make a usable certificate: {e}",
                self.cert.display(),
                self.key.display()
            ))
        })?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}
