//! Helpers shared by the mock's integration tests: a rustls client trusting the mock CA, test
//! images, and running an official SDK's script.

#![allow(dead_code)]

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use traceless_mock::{MockOptions, Mocks};

pub async fn start() -> Mocks {
    Mocks::start(MockOptions::default())
        .await
        .expect("mocks start")
}

pub async fn start_with(opts: MockOptions) -> Mocks {
    Mocks::start(opts).await.expect("mocks start")
}

/// A reqwest client whose only root is the mocks' CA (ring provider), offering h2 and HTTP/1.1.
pub fn client(mocks: &Mocks) -> reqwest::Client {
    client_with_timeout(mocks, Duration::from_secs(30))
}

/// A TLS client configuration whose only root is the mocks' CA (ring provider).
pub fn ca_only_tls(mocks: &Mocks) -> rustls::ClientConfig {
    let pem = mocks.ca_pem().expect("TLS mocks have a CA");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).expect("CA PEM parses"))
        .expect("CA is a valid root");
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub fn client_with_timeout(mocks: &Mocks, timeout: Duration) -> reqwest::Client {
    let mut config = ca_only_tls(mocks);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// A plain client, for plaintext mocks and for plaintext sent to the TLS port.
pub fn plain_client() -> reqwest::Client {
    // reqwest is built without a default crypto provider; an empty trust store is enough for http://.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// What an SDK script reads from disk: the mocks' CA and an input image, in a directory removed on drop.
pub struct SdkFiles {
    _dir: tempfile::TempDir,
    pub ca: std::path::PathBuf,
    pub input: std::path::PathBuf,
}

pub fn sdk_files(mocks: &Mocks, input: &[u8]) -> SdkFiles {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, mocks.ca_pem().unwrap()).unwrap();
    let input_path = dir.path().join("input.png");
    std::fs::write(&input_path, input).unwrap();
    SdkFiles {
        _dir: dir,
        ca,
        input: input_path,
    }
}

/// A fresh PNG of random pixels.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    rand::fill(&mut pixels[..]);
    let img = image::RgbImage::from_raw(w, h, pixels).unwrap();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    rand::fill(&mut pixels[..]);
    let img = image::RgbImage::from_raw(w, h, pixels).unwrap();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

pub fn is_png(bytes: &[u8]) -> bool {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png).is_ok()
}

pub fn part(bytes: Vec<u8>, name: &str, mime: &str) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap()
}

/// Polls until `cond` holds, failing after the deadline.
pub async fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs an SDK script (`cmd`, named `name` in failures) with `env`, and nothing from the caller's
/// environment able to divert it from the mocks: no proxy, none of `unset`. Returns its stdout;
/// fails the test if it exits non-zero or runs past 120 s.
pub async fn run_sdk_script(
    mut cmd: tokio::process::Command,
    name: &str,
    unset: &[&str],
    env: &[(&str, String)],
) -> String {
    cmd.kill_on_drop(true);
    let proxies = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ];
    for var in proxies.iter().chain(unset) {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "*");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Interactions API calls as the SDK tests compare them: (endpoint, method, status).
pub mod interaction {
    use traceless_mock::{Endpoint, RecordedRequest};

    pub type Call = (Endpoint, &'static str, u16);

    /// Every recorded call, in arrival order.
    pub fn calls(rec: &[RecordedRequest]) -> Vec<(Endpoint, &str, u16)> {
        rec.iter()
            .map(|r| (r.endpoint, r.method.as_str(), r.status))
            .collect()
    }

    pub fn create(status: u16) -> Call {
        (Endpoint::Interactions, "POST", status)
    }

    pub fn get(status: u16) -> Call {
        (Endpoint::InteractionsGet, "GET", status)
    }

    pub fn delete(status: u16) -> Call {
        (Endpoint::InteractionsDelete, "DELETE", status)
    }

    pub fn cancel(status: u16) -> Call {
        (Endpoint::InteractionsCancel, "POST", status)
    }
}
