//! The TLS trust used for provider connections: the system's roots plus, optionally, the roots
//! in `TRACELESS_EXTRA_CA` (how a test or audit CA is trusted), with rustls and the ring provider.

use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Builds the rustls client configuration for provider connections.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (system_roots, unparsable) = roots.add_parsable_certificates(native.certs);
    if !native.errors.is_empty() || unparsable > 0 {
        tracing::warn!(
            load_errors = native.errors.len(),
            unparsable,
            "some system trust roots could not be loaded"
        );
    }
    let mut extra_roots = 0usize;
    if let Some(pem) = extra_ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.context("TRACELESS_EXTRA_CA: a PEM block cannot be read")?;
            roots
                .add(cert)
                .context("TRACELESS_EXTRA_CA: a certificate is not a usable trust root")?;
            extra_roots += 1;
        }
        if extra_roots == 0 {
            bail!("TRACELESS_EXTRA_CA: the file holds no CERTIFICATE block");
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trust roots: https:// providers will fail until system roots or TRACELESS_EXTRA_CA are provided"
        );
    }
    tracing::info!(system_roots, extra_roots, "provider TLS trust loaded");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls: no protocol version available with the ring provider")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // One HTTP/1.1 connection per provider call: see `providers::Providers::new`.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
