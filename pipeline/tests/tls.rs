//! Providers over TLS: a mock behind a tokio-rustls front with a certificate from a test CA,
//! trusted through TRACELESS_EXTRA_CA in addition to the system roots, and refused without it.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::http::StatusCode;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A TLS front that terminates TLS and forwards the plaintext to `backend`.
async fn tls_front(backend: SocketAddr) -> (SocketAddr, String, tokio::task::JoinHandle<()>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf = leaf_params
        .signed_by(&leaf_key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();

    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, ca_cert.pem(), task)
}

#[tokio::test]
async fn a_provider_behind_tls_is_trusted_only_through_the_extra_ca() {
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/images/edits"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_ok_body(&output_png())))
        .mount(&openai)
        .await;
    let (front, ca_pem, task) = tls_front(*openai.address()).await;
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca_pem).unwrap();

    let mut env = env_for(
        &format!("https://127.0.0.1:{}", front.port()),
        "https://127.0.0.1:9",
    );
    env.remove("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS");
    env.insert(
        "TRACELESS_EXTRA_CA".into(),
        ca_file.path().to_str().unwrap().into(),
    );
    let trusted = Harness {
        openai: MockServer::start().await,
        gemini: MockServer::start().await,
        app: traceless_pipeline::router(
            traceless_pipeline::AppState::new(&config_from(&env)).unwrap(),
        ),
    };
    let answer = trusted
        .send(&Form::generation("openai", &random_png(16, 16)))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.body, output_png());
    assert_eq!(openai.received_requests().await.unwrap().len(), 1);

    // Without the extra CA the same provider is not trusted, and the image is never sent.
    env.remove("TRACELESS_EXTRA_CA");
    let untrusted =
        traceless_pipeline::router(traceless_pipeline::AppState::new(&config_from(&env)).unwrap());
    let harness = Harness {
        openai: MockServer::start().await,
        gemini: MockServer::start().await,
        app: untrusted,
    };
    let answer = harness
        .send(&Form::generation("openai", &random_png(16, 16)))
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::BAD_GATEWAY, "provider_error")
    );
    assert!(
        answer.message().to_lowercase().contains("certificate"),
        "{}",
        answer.message()
    );
    assert_eq!(
        openai.received_requests().await.unwrap().len(),
        1,
        "sent over an untrusted connection"
    );
    task.abort();
}

#[test]
fn an_extra_ca_file_without_certificates_is_a_start_up_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "not a certificate").unwrap();
    let err = traceless_pipeline::providers::tls::client_config(Some(
        &std::fs::read(file.path()).unwrap(),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("TRACELESS_EXTRA_CA"), "{err}");
}
