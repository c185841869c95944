//! `traceless mocks` as a team runs it for offline development: a subprocess that announces its
//! URLs, keys and CA on standard output, answers both providers in their real shapes over HTTPS
//! (or plain HTTP when asked), and stops promptly and cleanly on SIGTERM, leaving only the CA file
//! it was asked to write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};

const OPENAI_KEY: &str = "sk-cli-test-0000000000000000";
const GEMINI_KEY: &str = "AIzaCliTest00000000000000000000000000";
const READY: &str = "# ready: ";
/// How long start-up and shutdown may each take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(20);
/// "Promptly": a SIGTERM must end the process well within this.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// One `traceless mocks` process, killed if the test ends early.
struct Served {
    child: Child,
    /// The `NAME=value` lines it announced before `# ready`.
    env: BTreeMap<String, String>,
}

impl Served {
    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("`traceless mocks` did not announce {name}: {:?}", self.env))
    }
}

/// Starts `traceless mocks` with `args` in `cwd`, its temp dir `tmp`, and reads standard output
/// line by line until the readiness line, within the deadline.
async fn start(args: &[&str], cwd: &Path, tmp: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .arg("mocks")
        .args(["--openai-key", OPENAI_KEY, "--gemini-key", GEMINI_KEY])
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning `traceless mocks`");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut env = BTreeMap::new();
    loop {
        let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Err(_) => panic!("`traceless mocks` did not announce readiness within {DEADLINE:?}"),
            Ok(Err(e)) => panic!("reading `traceless mocks` output: {e}"),
            Ok(Ok(None)) => {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    stderr.read_to_string(&mut err).await.ok();
                }
                panic!(
                    "`traceless mocks` closed its output before it was ready ({:?}):\n{err}",
                    child.wait().await
                );
            }
            Ok(Ok(Some(line))) => line,
        };
        if line.starts_with(READY) {
            break;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a NAME=value line: {line:?}"));
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "not a variable name in {line:?}"
        );
        env.insert(name.to_owned(), value.to_owned());
    }
    // Nothing more is printed; keep the pipe drained so a stray write could never block it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Served { child, env }
}

/// Sends SIGTERM and returns how long the process took to exit cleanly, and its standard error.
async fn stop(mut served: Served) -> (Duration, String) {
    let pid = served.child.id().expect("the mocks are still running");
    let sent = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("sending SIGTERM");
    let status = tokio::time::timeout(DEADLINE, served.child.wait())
        .await
        .unwrap_or_else(|_| panic!("`traceless mocks` ignored SIGTERM for {DEADLINE:?}"))
        .expect("waiting for `traceless mocks`");
    let took = sent.elapsed();
    let mut err = String::new();
    if let Some(mut stderr) = served.child.stderr.take() {
        stderr.read_to_string(&mut err).await.ok();
    }
    assert!(
        status.success(),
        "SIGTERM must end `traceless mocks` cleanly, got {status}:\n{err}"
    );
    assert!(
        took < STOP_WITHIN,
        "`traceless mocks` took {took:?} to stop on SIGTERM"
    );
    (took, err)
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client whose only trusted root is `ca_pem`, or none at all.
fn client(ca_pem: Option<&[u8]>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots
                .add(cert.expect("the CA file is PEM"))
                .expect("the CA is a usable root");
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

fn is_png(bytes: &[u8]) -> bool {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png).is_ok()
}

/// A small PNG to send as the input image.
fn input_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 13, 77]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG");
    out.into_inner()
}

/// `POST {OPENAI_BASE_URL}/images/generations` answers a gpt-image-2.5-sunburst image in the real shape; a
/// wrong key gets the real 401.
async fn check_openai(http: &reqwest::Client, served: &Served) {
    let url = format!("{}/images/generations", served.var("OPENAI_BASE_URL"));
    let body = json!({"model": "gpt-image-2.5-sunburst", "prompt": "a lighthouse at dusk", "size": "1024x1024", "quality": "low"});
    let res = http
        .post(&url)
        .bearer_auth(served.var("OPENAI_API_KEY"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(request_id.starts_with("req_"), "{request_id}");
    let answer: Value = res.json().await.expect("a JSON answer");
    assert!(
        answer["created"].as_u64().unwrap_or_default() > 1_700_000_000,
        "{answer}"
    );
    let data = answer["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert!(
        data[0].get("url").is_none(),
        "GPT image models never answer a url"
    );
    assert!(is_png(&unb64(
        data[0]["b64_json"].as_str().expect("b64_json")
    )));
    assert_eq!(answer["size"], "1024x1024");
    assert_eq!(answer["quality"], "low");
    assert_eq!(answer["output_format"], "png");
    assert_eq!(answer["usage"]["output_tokens"], 272);

    let res = http
        .post(&url)
        .bearer_auth("sk-not-the-announced-key-0000")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_api_key", "{answer}");
}

/// `POST {GEMINI_BASE_URL}/models/...:generateContent` with the key answers an image in the real
/// shape, and so does the `/v1` path google-genai builds from `GOOGLE_GEMINI_BASE_URL`.
async fn check_gemini(http: &reqwest::Client, served: &Served) {
    let input = input_png();
    let body = json!({
        "contents": [{"role": "user", "parts": [
            {"text": "put this sketch in a watercolour"},
            {"inlineData": {"mimeType": "image/png",
                            "data": base64::engine::general_purpose::STANDARD.encode(&input)}}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}
    });
    let model = "gemini-2.5-flash-image";
    for url in [
        format!(
            "{}/models/{model}:generateContent",
            served.var("GEMINI_BASE_URL")
        ),
        format!(
            "{}/v1/models/{model}:generateContent",
            served.var("GOOGLE_GEMINI_BASE_URL")
        ),
    ] {
        let res = http
            .post(&url)
            .header("x-goog-api-key", served.var("GEMINI_API_KEY"))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
        assert_eq!(res.status(), 200, "{url}");
        let answer: Value = res.json().await.expect("a JSON answer");
        let candidate = &answer["candidates"][0];
        assert_eq!(candidate["finishReason"], "STOP", "{answer}");
        assert_eq!(candidate["content"]["role"], "model");
        let image = candidate["content"]["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .find_map(|p| p["inlineData"]["data"].as_str())
            .expect("an inlineData part");
        let image = unb64(image);
        assert!(is_png(&image));
        assert_ne!(image, input, "the answer is a fresh image, not an echo");
        assert_eq!(answer["modelVersion"], model);
        assert!(
            answer["usageMetadata"]["totalTokenCount"]
                .as_u64()
                .unwrap_or_default()
                > 0
        );
    }
    let res = http
        .post(format!(
            "{}/models/{model}:generateContent",
            served.var("GEMINI_BASE_URL")
        ))
        .header("x-goog-api-key", "AIzaNotTheAnnouncedKey00000000000000")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["error"]["status"], "INVALID_ARGUMENT", "{answer}");
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    found.sort();
    found
}

/// After the process is gone, nothing listens on the ports it announced.
async fn assert_port_closed(url: &str) {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no host:port in {url}"));
    assert!(
        tokio::net::TcpStream::connect(authority).await.is_err(),
        "{authority} still accepts connections after the mocks stopped"
    );
}

/// Every announced base URL is on loopback with this scheme.
fn assert_urls_on_loopback(served: &Served, scheme: &str) {
    for name in [
        "OPENAI_BASE_URL",
        "GEMINI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
    ] {
        assert!(
            served
                .var(name)
                .starts_with(&format!("{scheme}://127.0.0.1:")),
            "{name}={}",
            served.var(name)
        );
    }
}

/// Stops the mocks with SIGTERM (see [`stop`]) and checks both ports are closed afterwards.
async fn stop_and_check_ports(served: Served) -> (Duration, String) {
    let urls = [
        served.var("OPENAI_BASE_URL").to_owned(),
        served.var("GEMINI_BASE_URL").to_owned(),
        served.var("TRACELESS_MOCKS_CONTROL").to_owned(),
    ];
    let stopped = stop(served).await;
    for url in &urls {
        assert_port_closed(url).await;
    }
    stopped
}

/// The default name of the service-account JSON `traceless mocks` writes.
const SERVICE_ACCOUNT: &str = "traceless-mocks-service-account.json";

/// The Google service account is written (the user's alone) and announced absolute, with the
/// Gemini mock's token endpoint as its `token_uri`.
fn assert_service_account(served: &Served, cwd: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = cwd.join(SERVICE_ACCOUNT).canonicalize().unwrap();
    assert_eq!(
        Path::new(served.var("GOOGLE_APPLICATION_CREDENTIALS")),
        path
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(json["type"], "service_account");
    assert_eq!(
        json["token_uri"],
        format!("{}/token", served.var("GOOGLE_GEMINI_BASE_URL"))
    );
    assert!(
        json["private_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mocks_announce_serve_both_providers_and_stop_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // A relative --ca-out is resolved against the working directory, and announced absolute.
    let ca_file = cwd.path().join("certs/mocks-ca.pem");
    std::fs::create_dir(cwd.path().join("certs")).unwrap();
    let served = start(&["--ca-out", "certs/mocks-ca.pem"], cwd.path(), tmp.path()).await;

    for name in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CURL_CA_BUNDLE",
    ] {
        assert_eq!(
            Path::new(served.var(name)),
            ca_file.canonicalize().unwrap(),
            "{name}"
        );
    }
    assert_eq!(served.var("OPENAI_API_KEY"), OPENAI_KEY);
    assert_eq!(served.var("GEMINI_API_KEY"), GEMINI_KEY);
    assert_urls_on_loopback(&served, "https");
    assert!(served.var("OPENAI_BASE_URL").ends_with("/v1"));
    assert!(served.var("GEMINI_BASE_URL").ends_with("/v1beta"));
    assert_ne!(served.var("OPENAI_BASE_URL"), served.var("GEMINI_BASE_URL"));
    assert_service_account(&served, cwd.path());

    // The CA is written before readiness is announced, as exactly one PEM certificate.
    let pem = std::fs::read(&ca_file).expect("the CA file exists once the mocks are ready");
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .expect("the CA file is valid PEM");
    assert_eq!(certs.len(), 1, "one CA certificate");
    assert!(pem.starts_with(b"-----BEGIN CERTIFICATE-----"));

    // Trusting nothing, the handshake fails: the check below really rests on the written CA.
    let untrusting = client(None);
    let refused = untrusting
        .get(format!("{}/models", served.var("OPENAI_BASE_URL")))
        .send()
        .await;
    assert!(refused.is_err(), "a client without the CA must not connect");

    let http = client(Some(&pem));
    check_openai(&http, &served).await;
    check_gemini(&http, &served).await;
    drop(http);

    let (took, stderr) = stop_and_check_ports(served).await;
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    eprintln!("`traceless mocks` (TLS) stopped {took:?} after SIGTERM");
    // Only the files it hands out remain; nothing in its temp dir, nothing elsewhere.
    assert_eq!(
        files_under(cwd.path()),
        vec![
            PathBuf::from("certs"),
            PathBuf::from("certs/mocks-ca.pem"),
            PathBuf::from(SERVICE_ACCOUNT)
        ]
    );
    assert_eq!(
        std::fs::read(&ca_file).unwrap(),
        pem,
        "the CA file is left as written"
    );
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_mocks_serve_http_write_no_ca_and_stop_on_sigterm() {
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let served = start(&["--plaintext"], cwd.path(), tmp.path()).await;
    assert_urls_on_loopback(&served, "http");
    for name in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
        assert!(
            !served.env.contains_key(name),
            "no CA to trust in plaintext mode"
        );
    }

    let http = client(None);
    check_openai(&http, &served).await;
    check_gemini(&http, &served).await;
    drop(http);

    assert_service_account(&served, cwd.path());
    let (took, _) = stop_and_check_ports(served).await;
    eprintln!("`traceless mocks` (plaintext) stopped {took:?} after SIGTERM");
    // No CA file (not even the default name) and no temp files: the service account alone.
    assert_eq!(
        files_under(cwd.path()),
        vec![PathBuf::from(SERVICE_ACCOUNT)]
    );
    assert!(
        files_under(tmp.path()).is_empty(),
        "{:?}",
        files_under(tmp.path())
    );
}

/// Faults scripted on the command line, then changed through the control endpoint while the mocks
/// run, each met by the official Python SDKs as they document it (see `faults_sdk.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_faults_from_flags_and_the_control_endpoint_reach_the_official_sdks() {
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let served = start(
        &[
            "--behaviour",
            "openai=429,ok",
            "--behaviour",
            "gemini=safety-block",
        ],
        cwd.path(),
        tmp.path(),
    )
    .await;
    let control = served.var("TRACELESS_MOCKS_CONTROL").to_owned();
    assert!(control.starts_with("http://127.0.0.1:"), "{control}");

    // The scripts as given, and a bad one refused with its name.
    let http = client(None);
    let state: Value = http
        .get(format!("{control}/behaviour"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state,
        json!({"openai": ["429", "ok"], "gemini": ["safety-block"]})
    );
    let res = http
        .put(format!("{control}/behaviour/openai"))
        .body("500,teapot")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("teapot"));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/mock/tests/sdk/faults_sdk.py");
    let python = std::env::var("TRACELESS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(&python)
        .arg(&script)
        .env_remove("OPENAI_ORG_ID")
        .env_remove("OPENAI_PROJECT_ID")
        .env_remove("GOOGLE_API_KEY")
        .envs(&served.env)
        .current_dir(cwd.path())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; install Python 3 and the SDKs pinned in crates/mock/tests/sdk/requirements.txt"));
    assert!(
        out.status.success(),
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("faults ok"));
    stop_and_check_ports(served).await;
}

#[tokio::test]
async fn a_bad_behaviour_flag_is_refused_with_its_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["mocks", "--behaviour", "openai=429,teapot"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("teapot") && err.contains("--behaviour"),
        "{err}"
    );
}
