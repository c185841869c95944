//! Shared test helpers: images with and without metadata, multipart bodies, in-process
//! pipelines pointed at wiremock providers, and decoding what a provider received.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Cursor;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use rand::RngExt;
use tower::ServiceExt;
use traceless_pipeline::{AppState, Config, router};
use wiremock::MockServer;

pub const OPENAI_KEY: &str = "sk-test-openai-key-0123456789";
pub const GEMINI_KEY: &str = "AIza-test-gemini-key-0123456789";
/// A marker planted in every metadata block; it must never reach a provider.
pub const METADATA_MARKER: &str = "TL-META-7f3a9c";

/// A PNG of random pixels.
pub fn random_png(width: u32, height: u32) -> Vec<u8> {
    let mut rng = rand::rng();
    let pixels: Vec<u8> = (0..width * height * 3).map(|_| rng.random()).collect();
    encode(
        image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, pixels).unwrap()),
        image::ImageFormat::Png,
    )
}

pub fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

/// A minimal Exif block (TIFF header + one ASCII tag) carrying `text`.
pub fn exif_block(text: &str) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x010Eu16.to_be_bytes()); // ImageDescription
    tiff.extend_from_slice(&2u16.to_be_bytes()); // ASCII
    tiff.extend_from_slice(&((text.len() + 1) as u32).to_be_bytes());
    tiff.extend_from_slice(&26u32.to_be_bytes()); // offset of the value
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff.extend_from_slice(text.as_bytes());
    tiff.push(0);
    tiff
}

/// Inserts eXIf, tEXt, iTXt and tIME chunks (all carrying the marker where they can) after IHDR.
pub fn png_with_metadata(png: &[u8]) -> Vec<u8> {
    let ihdr_end = 8 + 25;
    let mut out = png[..ihdr_end].to_vec();
    out.extend(png_chunk(b"eXIf", &exif_block(METADATA_MARKER)));
    out.extend(png_chunk(
        b"tEXt",
        format!("Comment\0{METADATA_MARKER}").as_bytes(),
    ));
    out.extend(png_chunk(
        b"iTXt",
        format!("XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>{METADATA_MARKER}</x:xmpmeta>").as_bytes(),
    ));
    out.extend(png_chunk(b"tIME", &[7, 234, 1, 2, 3, 4, 5]));
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// One form part: name, optional (file name, content type), bytes.
type FormPart = (String, Option<(String, String)>, Vec<u8>);

/// A multipart/form-data body built by hand, so tests control order, bytes and headers.
#[derive(Default)]
pub struct Form {
    parts: Vec<FormPart>,
}

pub const BOUNDARY: &str = "tl-boundary-5d1c0e";

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.parts
            .push((name.into(), None, value.as_ref().to_vec()));
        self
    }

    pub fn file(mut self, name: &str, file_name: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.parts.push((
            name.into(),
            Some((file_name.into(), content_type.into())),
            bytes.to_vec(),
        ));
        self
    }

    /// The usual complete request.
    pub fn generation(provider: &str, image: &[u8]) -> Self {
        Form::new()
            .text("age_confirmed", "true")
            .text("provider", provider)
            .text("prompt", "Turn this into a watercolour")
            .file("image", "IMG_2041_private_name.png", "image/png", image)
    }

    pub fn content_type() -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, file, bytes) in &self.parts {
            out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match file {
                Some((file_name, content_type)) => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
                ),
                None => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out
    }
}

/// The environment for a pipeline pointed at the given mock origins over plain HTTP.
pub fn env_for(openai: &str, gemini: &str) -> HashMap<String, String> {
    HashMap::from([
        ("OPENAI_BASE_URL".to_string(), format!("{openai}/v1")),
        ("GEMINI_BASE_URL".to_string(), format!("{gemini}/v1beta")),
        ("OPENAI_API_KEY".to_string(), OPENAI_KEY.to_string()),
        ("GEMINI_API_KEY".to_string(), GEMINI_KEY.to_string()),
        (
            "TRACELESS_ALLOW_PLAINTEXT_PROVIDERS".to_string(),
            "1".to_string(),
        ),
        (
            "TRACELESS_PROVIDER_TIMEOUT_MS".to_string(),
            "2000".to_string(),
        ),
    ])
}

pub fn config_from(env: &HashMap<String, String>) -> Config {
    Config::from_lookup(|k| env.get(k).cloned()).unwrap()
}

/// Two wiremock providers and an in-process pipeline pointed at them.
pub struct Harness {
    pub openai: MockServer,
    pub gemini: MockServer,
    pub app: axum::Router,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let openai = MockServer::start().await;
        let gemini = MockServer::start().await;
        let mut env = env_for(&openai.uri(), &gemini.uri());
        adjust(&mut env);
        let app = router(AppState::new(&config_from(&env)).unwrap());
        Harness {
            openai,
            gemini,
            app,
        }
    }

    pub async fn send(&self, form: &Form) -> Answer {
        self.send_request(form, &[]).await
    }

    pub async fn send_request(&self, form: &Form, headers: &[(&str, &str)]) -> Answer {
        let body = form.body();
        let mut request = Request::post("/v1/generations")
            .header("content-type", Form::content_type())
            .header("content-length", body.len());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.call(request.body(Body::from(body)).unwrap()).await
    }

    pub async fn call(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Every request either provider received.
    pub async fn provider_requests(&self) -> usize {
        self.openai.received_requests().await.unwrap().len()
            + self.gemini.received_requests().await.unwrap().len()
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The parts of a multipart body a provider received: (name, file name, content type, bytes).
pub async fn parse_multipart(
    content_type: &str,
    body: Vec<u8>,
) -> Vec<(String, Option<String>, Option<String>, Vec<u8>)> {
    let boundary = multer::parse_boundary(content_type).unwrap();
    let stream =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.unwrap() {
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        let bytes = field.bytes().await.unwrap().to_vec();
        parts.push((name, file_name, content_type, bytes));
    }
    parts
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A small PNG used as every provider's answer.
pub fn output_png() -> Vec<u8> {
    encode(
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(4, 4, image::Rgb([9, 8, 7]))),
        image::ImageFormat::Png,
    )
}

pub fn openai_ok_body(png: &[u8]) -> serde_json::Value {
    serde_json::json!({"created": 1713833628, "data": [{"b64_json": b64(png)}]})
}

pub fn gemini_ok_body(png: &[u8]) -> serde_json::Value {
    serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Here it is"}, {"inlineData": {"mimeType": "image/png", "data": b64(png)}}]},
        "finishReason": "STOP", "index": 0}], "modelVersion": "gemini-2.5-flash-image"})
}

/// Asserts that `bytes` decode to the same pixels as `original` and carry no metadata marker.
pub fn assert_same_pixels_without_metadata(bytes: &[u8], original: &[u8]) {
    assert!(
        !bytes
            .windows(METADATA_MARKER.len())
            .any(|w| w == METADATA_MARKER.as_bytes()),
        "the metadata marker reached the provider"
    );
    let sent = image::load_from_memory(bytes).unwrap();
    let orig = image::load_from_memory(original).unwrap();
    assert_eq!(
        sent.to_rgba8(),
        orig.to_rgba8(),
        "pixels changed on the way"
    );
}

pub mod process;

/// An HTTP client for tests (plain HTTP to the pipeline, or TLS with the pipeline's trust rules).
pub fn http_client() -> reqwest::Client {
    let tls = traceless_pipeline::providers::tls::client_config(None).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

/// Polls `condition` until it holds or `deadline` passes; returns whether it held.
pub async fn poll_until<F, Fut>(timeout: std::time::Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
