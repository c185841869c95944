//! Sends one generation request to the pipeline the way the config's request mapping says, as a
//! real client would, including clients that hang up mid-upload or mid-response.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{BodyEncoding, ImageAs, JobMapping, RequestMapping, ResponseMapping};
use crate::scenario::{Age, ClientBehaviour};

/// What one request carries.
#[derive(Debug, Clone)]
pub struct Payload {
    pub image: Vec<u8>,
    pub image_mime: String,
    pub filename: String,
    pub prompt: Vec<u8>,
    pub provider: String,
    pub age: Age,
    pub device_id: String,
    pub forwarded_for: String,
    /// Image parts beyond the photo (`[[pipeline.request.images]]`).
    pub extra_images: Vec<ExtraPart>,
}

/// One more image part of a request.
#[derive(Debug, Clone)]
pub struct ExtraPart {
    pub field: String,
    pub image_as: ImageAs,
    pub bytes: Vec<u8>,
    pub mime: String,
    pub filename: String,
}

#[derive(Debug, Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The generated image, found where the response mapping says.
    pub image: Option<Vec<u8>>,
    pub error: Option<String>,
}

/// A body and its content type.
fn encode(m: &RequestMapping, p: &Payload) -> (Vec<u8>, String) {
    let age_value = match p.age {
        Age::Confirmed => Some(m.age_true.as_str()),
        Age::Denied => Some(m.age_false.as_str()),
        Age::Omitted => None,
    };
    let provider_value = m
        .provider_values
        .get(&p.provider)
        .cloned()
        .unwrap_or_else(|| p.provider.clone());
    match m.body {
        BodyEncoding::Multipart => {
            let boundary = format!("traceless-{:016x}", rand::random::<u64>());
            let mut body = Vec::with_capacity(p.image.len() + 1024);
            let mut text = |name: &str, value: &[u8]| {
                body.extend_from_slice(
                    format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(value);
                body.extend_from_slice(b"\r\n");
            };
            text(&m.prompt_field, &p.prompt);
            if let Some(f) = &m.provider_field {
                text(f, provider_value.as_bytes());
            }
            if let (Some(f), Some(v)) = (&m.age_field, age_value) {
                text(f, v.as_bytes());
            }
            for (k, v) in &m.extra_fields {
                text(k, v.as_bytes());
            }
            for (field, how, bytes, mime, filename) in image_parts(m, p) {
                match how {
                    ImageAs::File => {
                        body.extend_from_slice(
                            format!(
                                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {mime}\r\n\r\n",
                            )
                            .as_bytes(),
                        );
                        body.extend_from_slice(bytes);
                        body.extend_from_slice(b"\r\n");
                    }
                    ImageAs::Base64 | ImageAs::DataUrl => {
                        let v = image_text(how, bytes, mime);
                        body.extend_from_slice(
                            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{v}\r\n").as_bytes(),
                        );
                    }
                }
            }
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            (body, format!("multipart/form-data; boundary={boundary}"))
        }
        BodyEncoding::Json => {
            let mut obj = serde_json::Map::new();
            for (field, how, bytes, mime, _) in image_parts(m, p) {
                obj.insert(field.to_owned(), image_text(how, bytes, mime).into());
            }
            obj.insert(
                m.prompt_field.clone(),
                String::from_utf8_lossy(&p.prompt).into_owned().into(),
            );
            if let Some(f) = &m.provider_field {
                obj.insert(f.clone(), provider_value.into());
            }
            if let (Some(f), Some(v)) = (&m.age_field, age_value) {
                let value = serde_json::from_str(v)
                    .unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
                obj.insert(f.clone(), value);
            }
            for (k, v) in &m.extra_fields {
                obj.insert(k.clone(), v.clone().into());
            }
            (
                serde_json::to_vec(&obj).unwrap_or_default(),
                "application/json".to_owned(),
            )
        }
    }
}

fn image_text(how: ImageAs, bytes: &[u8], mime: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    match how {
        ImageAs::DataUrl => format!("data:{mime};base64,{b64}"),
        _ => b64,
    }
}

/// Every image part of a request, the photo first: (field, how, bytes, content type, file name).
fn image_parts<'a>(
    m: &'a RequestMapping,
    p: &'a Payload,
) -> impl Iterator<Item = (&'a str, ImageAs, &'a [u8], &'a str, &'a str)> {
    std::iter::once((
        m.image_field.as_str(),
        m.image_as,
        p.image.as_slice(),
        p.image_mime.as_str(),
        p.filename.as_str(),
    ))
    .chain(p.extra_images.iter().map(|x| {
        (
            x.field.as_str(),
            x.image_as,
            x.bytes.as_slice(),
            x.mime.as_str(),
            x.filename.as_str(),
        )
    }))
}

/// A response's headers as (name, value) text pairs.
fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    addr: std::net::SocketAddr,
    timeout: Duration,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self {
            http,
            base: format!("http://{addr}"),
            addr,
            timeout,
        })
    }

    /// `http://127.0.0.1:PORT`, the pipeline's origin.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The request's timeout, which also bounds following a job to its result.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request; with `job`, an accepted submit is followed to its result.
    pub async fn send(
        &self,
        m: &RequestMapping,
        resp: &ResponseMapping,
        job: Option<&JobMapping>,
        p: &Payload,
        client: ClientBehaviour,
    ) -> Answer {
        let (body, content_type) = encode(m, p);
        match client {
            ClientBehaviour::Normal => {
                let answer = self.send_whole(m, resp, job, p, body, content_type).await;
                match job {
                    Some(job)
                        if answer.error.is_none()
                            && answer
                                .status
                                .is_some_and(|s| job.submit_statuses.contains(&s)) =>
                    {
                        super::job::follow(self, job, resp, answer).await
                    }
                    _ => answer,
                }
            }
            ClientBehaviour::DisconnectUpload | ClientBehaviour::DisconnectResponse => {
                let err = self
                    .send_and_hang_up(m, p, &body, &content_type, client)
                    .await
                    .err();
                Answer {
                    error: err.map(|e| format!("{e:#}")),
                    ..Answer::default()
                }
            }
        }
    }

    async fn send_whole(
        &self,
        m: &RequestMapping,
        resp: &ResponseMapping,
        job: Option<&JobMapping>,
        p: &Payload,
        body: Vec<u8>,
        content_type: String,
    ) -> Answer {
        let method =
            reqwest::Method::from_bytes(m.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, m.route))
            .timeout(self.timeout)
            .header("content-type", content_type)
            .header("x-device-id", &p.device_id)
            .header("x-forwarded-for", &p.forwarded_for)
            .body(body);
        for (k, v) in &m.headers {
            req = req.header(k, v);
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer {
                    error: Some(format!("request failed: {e}")),
                    ..Answer::default()
                };
            }
        };
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                return Answer {
                    status: Some(status),
                    headers,
                    error: Some(format!("reading the answer: {e}")),
                    ..Answer::default()
                };
            }
        };
        // A job backend's 200 to the submit is its answer only when 200 is not how it accepts.
        let is_result = job.is_none_or(|j| !j.submit_statuses.contains(&status));
        let image = if status == 200 && is_result {
            self.extract_image(resp, &body).await
        } else {
            None
        };
        Answer {
            status: Some(status),
            headers,
            body,
            image,
            error: None,
        }
    }

    pub async fn extract_image(&self, resp: &ResponseMapping, body: &[u8]) -> Option<Vec<u8>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let pointed = |ptr: &str| -> Option<String> {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            v.pointer(ptr)?.as_str().map(str::to_owned)
        };
        match resp {
            ResponseMapping::Body => Some(body.to_vec()),
            ResponseMapping::JsonBase64(ptr) => b64.decode(pointed(ptr)?).ok(),
            ResponseMapping::JsonDataUrl(ptr) => {
                let s = pointed(ptr)?;
                b64.decode(s.split_once(";base64,")?.1).ok()
            }
            ResponseMapping::JsonUrl(ptr) => {
                let url = pointed(ptr)?;
                let url = if url.starts_with('/') {
                    format!("{}{url}", self.base)
                } else {
                    url
                };
                // Only the pipeline's own port is fetched: the audit never follows a link elsewhere.
                if !url.starts_with(&self.base) {
                    return None;
                }
                let r = self.http.get(url).timeout(self.timeout).send().await.ok()?;
                r.bytes().await.ok().map(|b| b.to_vec())
            }
        }
    }

    async fn send_and_hang_up(
        &self,
        m: &RequestMapping,
        p: &Payload,
        body: &[u8],
        content_type: &str,
        client: ClientBehaviour,
    ) -> anyhow::Result<()> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nX-Device-Id: {}\r\nX-Forwarded-For: {}\r\n\r\n",
            m.method,
            m.route,
            self.addr,
            body.len(),
            p.device_id,
            p.forwarded_for
        );
        stream.write_all(head.as_bytes()).await?;
        if client == ClientBehaviour::DisconnectUpload {
            stream.write_all(&body[..body.len() / 2]).await?;
            stream.flush().await?;
            return Ok(());
        }
        stream.write_all(body).await?;
        stream.flush().await?;
        let mut first = [0u8; 64];
        let _ = tokio::time::timeout(self.timeout, stream.read(&mut first)).await;
        Ok(())
    }

    /// `path` or a URL on the pipeline's own port, as a URL; `None` for any other address.
    fn own_url(&self, target: &str) -> anyhow::Result<String> {
        let url = if target.starts_with('/') {
            format!("{}{target}", self.base)
        } else {
            target.to_owned()
        };
        // Only the pipeline's own port is asked: the audit never follows a link elsewhere.
        anyhow::ensure!(
            url.starts_with(&self.base),
            "{target} is not on the pipeline's own port"
        );
        Ok(url)
    }

    /// A GET of a path or URL on the pipeline's port, answered before `deadline`:
    /// (status, headers, body).
    pub async fn get_within(
        &self,
        target: &str,
        deadline: std::time::Instant,
    ) -> anyhow::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
        let r = self.stream_within(target, deadline).await?;
        let status = r.status().as_u16();
        let headers = header_pairs(r.headers());
        Ok((status, headers, r.bytes().await?.to_vec()))
    }

    /// A GET of a path or URL on the pipeline's port whose body is still to be read, limited to
    /// `deadline`.
    pub async fn stream_within(
        &self,
        target: &str,
        deadline: std::time::Instant,
    ) -> anyhow::Result<reqwest::Response> {
        let url = self.own_url(target)?;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        anyhow::ensure!(!left.is_zero(), "no time left before the request timeout");
        Ok(self.http.get(url).timeout(left).send().await?)
    }

    /// A plain GET through the pipeline's port, for public-exposure probes.
    pub async fn get(&self, path: &str) -> Option<(u16, Vec<u8>)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.bytes().await.ok()?.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn payload(age: Age) -> Payload {
        Payload {
            image: b"\x89PNG....".to_vec(),
            image_mime: "image/png".into(),
            filename: "photo.png".into(),
            prompt: b"make it blue".to_vec(),
            provider: "gemini".into(),
            age,
            device_id: "d".into(),
            forwarded_for: "127.1.2.3".into(),
            extra_images: Vec::new(),
        }
    }

    fn mapping(extra: &str) -> RequestMapping {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("fixtures/policy")).unwrap();
        std::fs::write(dir.path().join("fixtures/policy/privacy-policy.txt"), "").unwrap();
        std::fs::write(dir.path().join("fixtures/policy/clauses.toml"), "").unwrap();
        let src = format!("[pipeline]\ncommand = [\"x\"]\n{extra}");
        parse(&dir.path().join("t.toml"), &src)
            .unwrap()
            .pipeline
            .request
    }

    #[test]
    fn multipart_carries_every_field_and_omits_a_missing_age() {
        let (body, ct) = encode(&mapping(""), &payload(Age::Confirmed));
        let text = String::from_utf8_lossy(&body);
        assert!(ct.starts_with("multipart/form-data; boundary="));
        for needle in [
            "name=\"prompt\"",
            "name=\"provider\"\r\n\r\ngemini",
            "name=\"age_confirmed\"\r\n\r\ntrue",
            "filename=\"photo.png\"",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        let (body, _) = encode(&mapping(""), &payload(Age::Omitted));
        assert!(!String::from_utf8_lossy(&body).contains("age_confirmed"));
    }

    #[test]
    fn extra_image_parts_travel_beside_the_photo() {
        let mut p = payload(Age::Confirmed);
        p.extra_images.push(ExtraPart {
            field: "mask".into(),
            image_as: ImageAs::File,
            bytes: b"MASKBYTES".to_vec(),
            mime: "image/png".into(),
            filename: "mask.png".into(),
        });
        let (body, _) = encode(
            &mapping("[[pipeline.request.images]]\nfield = \"mask\"\n"),
            &p,
        );
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(
                "name=\"mask\"; filename=\"mask.png\"\r\nContent-Type: image/png\r\n\r\nMASKBYTES"
            ),
            "{text}"
        );
        assert!(text.contains("filename=\"photo.png\""), "{text}");
        p.extra_images[0].image_as = ImageAs::Base64;
        let m = mapping("[pipeline.request]\nbody = \"json\"\nimage_as = \"base64\"\n");
        let v: serde_json::Value = serde_json::from_slice(&encode(&m, &p).0).unwrap();
        assert_eq!(v["mask"], "TUFTS0JZVEVT");
        assert!(v["image"].is_string());
    }

    #[test]
    fn json_mapping_renames_fields_and_sends_a_data_url() {
        let m = mapping(
            "[pipeline.request]\nbody = \"json\"\nimage_as = \"data-url\"\nimage_field = \"photo\"\nprompt_field = \"text\"\n\
             age_field = \"over13\"\n[pipeline.request.provider_values]\ngemini = \"google\"\n",
        );
        let (body, ct) = encode(&m, &payload(Age::Denied));
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["photo"]
                .as_str()
                .unwrap()
                .starts_with("data:image/png;base64,")
        );
        assert_eq!(v["text"], "make it blue");
        assert_eq!(v["provider"], "google");
        assert_eq!(v["over13"], false);
    }
}
