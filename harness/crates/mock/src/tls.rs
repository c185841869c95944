//! The TLS front: a per-audit CA (rcgen), and a tokio-rustls terminator that passes decrypted bytes to
//! the plain mock server behind it, while catching plaintext HTTP sent to the TLS port as evidence.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::ErrorKind;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::Incoming;
use crate::state::Shared;
use crate::types::{Provider, TlsRefusal};
use crate::{gemini, openai, serve};

/// Names every leaf is valid for: loopback, and the real API hosts for transparent interception.
const BASE_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "api.openai.com",
    "generativelanguage.googleapis.com",
];

/// Why a plaintext request at the TLS port is refused; also the recorded rejection.
pub const PLAINTEXT_REJECTION: &str =
    "plain HTTP sent to the TLS port: the request travelled unencrypted";

/// The per-audit certificate authority and the server configuration its leaf serves.
pub struct Authority {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

/// Makes a fresh CA and one leaf signed by it for the base names plus `extra_hostnames`.
pub fn make_authority(extra_hostnames: &[String]) -> anyhow::Result<Authority> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Traceless audit CA (per run)");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "Traceless");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA")?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut names: Vec<String> = BASE_NAMES.iter().map(|s| s.to_string()).collect();
    for name in extra_hostnames {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut leaf_params = CertificateParams::new(names.clone())
        .with_context(|| format!("leaf certificate parameters for {names:?}"))?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate().context("generating the leaf key")?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .context("signing the leaf")?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("installing the leaf certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Authority {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}

/// What one front needs to serve its port.
#[derive(Clone)]
pub struct Front {
    pub provider: Provider,
    pub acceptor: TlsAcceptor,
    /// The plain mock server behind this front.
    pub upstream: SocketAddr,
    pub shared: Arc<Shared>,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
}

impl Front {
    /// Accepts connections until cancelled; each one is served in its own tracked task.
    pub async fn run(self, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _peer)) => {
                    let front = self.clone();
                    self.tracker.spawn(async move {
                        let cancel = front.cancel.clone();
                        tokio::select! {
                            _ = cancel.cancelled() => {}
                            result = front.serve(stream) => {
                                if let Err(e) = result {
                                    tracing::debug!(provider = %front.provider, "TLS front connection ended: {e:#}");
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(provider = %self.provider, "TLS front accept failed: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    async fn serve(&self, stream: TcpStream) -> anyhow::Result<()> {
        let mut first = [0u8; 1];
        let n = stream
            .peek(&mut first)
            .await
            .context("peeking the first byte")?;
        if n == 0 {
            return Ok(());
        }
        // 0x16 opens every TLS handshake record; anything else is not TLS.
        if first[0] != 0x16 {
            return self.serve_plaintext(stream).await;
        }
        // The proxy writes each answer as several TLS records: with Nagle on, the last one waits
        // for the client's delayed ACK, adding ~40 ms to every answer.
        stream.set_nodelay(true).ok();
        let mut tls = match self.acceptor.accept(stream).await {
            Ok(tls) => tls,
            Err(e) => {
                // A client cancelled mid-handshake just hangs up: only an alert is a refusal.
                if let Some(alert) = certificate_alert(&e) {
                    self.refused(
                        format!("sent the TLS alert {alert:?} during the handshake"),
                        true,
                    );
                }
                return Err(e).context("TLS handshake");
            }
        };
        // Fingerprint pinning completes the handshake, compares the certificate and hangs up
        // before sending anything: a connection that ends without a byte is a refusal too.
        let mut first = vec![0u8; 16 * 1024];
        let read = tls.read(&mut first).await;
        let n = match read {
            Ok(n) if n > 0 => n,
            _ => {
                let refusal = match &read {
                    Ok(_) => Some((HUNG_UP.to_owned(), false)),
                    Err(e) => match certificate_alert(e) {
                        Some(alert) => Some((
                            format!("sent the TLS alert {alert:?} after the handshake"),
                            true,
                        )),
                        None if matches!(
                            e.kind(),
                            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                        ) =>
                        {
                            Some((HUNG_UP.to_owned(), false))
                        }
                        None => None,
                    },
                };
                if let Some((how, alert)) = refusal {
                    self.refused(how, alert);
                }
                return read.map(drop).context("reading the first request");
            }
        };
        let mut upstream = TcpStream::connect(self.upstream)
            .await
            .with_context(|| format!("connecting to the mock server at {}", self.upstream))?;
        upstream.set_nodelay(true).ok();
        upstream
            .write_all(&first[..n])
            .await
            .context("forwarding the first bytes")?;
        tokio::io::copy_bidirectional(&mut tls, &mut upstream)
            .await
            .context("proxying to the mock server")?;
        Ok(())
    }

    fn refused(&self, how: String, alert: bool) {
        self.shared.record_refusal(TlsRefusal {
            at: std::time::SystemTime::now(),
            provider: self.provider,
            how,
            alert,
        });
    }

    /// Parses plaintext HTTP with hyper, records each request as insecure-transport evidence and
    /// answers 400, as real HTTPS endpoints do.
    async fn serve_plaintext(&self, stream: TcpStream) -> anyhow::Result<()> {
        let shared = self.shared.clone();
        let provider = self.provider;
        let service = hyper::service::service_fn(
            move |req: hyper::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let headers: Vec<(String, String)> = parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_owned(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect();
                    let host = parts
                        .headers
                        .get("host")
                        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
                    let inc = Incoming {
                        tls: false,
                        method: parts.method.as_str().to_owned(),
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().map(str::to_owned),
                        headers,
                        body: body.to_vec(),
                        host,
                    };
                    let mut rec = match provider {
                        Provider::OpenAi => serve::inspect::<openai::OpenAi>(&shared, &inc),
                        Provider::Gemini => serve::inspect::<gemini::Gemini>(&shared, &inc),
                    };
                    rec.rejected = Some(PLAINTEXT_REJECTION.to_owned());
                    rec.status = 400;
                    shared.record(rec);
                    let response = hyper::Response::builder()
                    .status(400)
                    .header("content-type", "text/plain; charset=utf-8")
                    .header("connection", "close")
                    .body(Full::new(Bytes::from_static(
                        b"400 Bad Request: this port speaks HTTPS only; the plain HTTP request was refused.\n",
                    )))
                    .expect("a static response is well-formed");
                    Ok::<_, std::convert::Infallible>(response)
                }
            },
        );
        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await
            .map_err(|e| anyhow::anyhow!("serving plaintext HTTP: {e}"))
    }
}

const HUNG_UP: &str = "hung up right after the handshake, sending nothing";

/// The certificate alert a client sent, if this error is one: what a client that does not accept
/// the mock's certificate says.
fn certificate_alert(e: &std::io::Error) -> Option<rustls::AlertDescription> {
    use rustls::AlertDescription as A;
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied),
        ) => Some(*alert),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_pem_is_a_certificate() {
        let a = make_authority(&["mock.test".to_owned(), "127.0.0.2".to_owned()]).unwrap();
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(
            a.server_config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
