//! Transport-neutral request and answer types: what the providers' handlers read and write,
//! whether the request came through the mock server or was caught in plaintext at the TLS port.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::types::{Behaviour, Endpoint, Provider, RecordedRequest};

/// One HTTP request as the mocks see it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub tls: bool,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Where the client thinks it is talking to (`Host` header), e.g. "127.0.0.1:40123".
    pub host: Option<String>,
}

impl Incoming {
    /// A request as the server read it: head, whole body, and whether it came through TLS.
    pub fn from_parts(parts: &hyper::http::request::Parts, body: Vec<u8>, tls: bool) -> Incoming {
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
        let host = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            // HTTP/2 carries the authority in the URI rather than a Host header.
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
        Incoming {
            tls,
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            body,
            host,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body without parameters, lowercased.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }

    /// A recording of this request with nothing judged yet.
    pub fn draft(&self, provider: Provider) -> RecordedRequest {
        RecordedRequest {
            seq: 0,
            at: SystemTime::now(),
            provider,
            tls: self.tls,
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            endpoint: Endpoint::Unknown,
            model: None,
            user: None,
            store: None,
            images: Vec::new(),
            prompt: None,
            rejected: None,
            behaviour: Behaviour::Ok,
            status: 0,
            output_image: None,
            creates: None,
            continues: None,
        }
    }
}

/// One answer: status, headers, body, and how long to wait before sending it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body,
            delay: None,
        }
    }

    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::new(status, "application/json", value.to_string().into_bytes())
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name.to_owned(), value)),
        }
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }

    /// Cuts the body short so it is no longer valid JSON: what a dropped or garbled upstream leaves.
    pub fn truncated(mut self) -> Reply {
        let keep = (self.body.len() * 3 / 5).max(1).min(self.body.len());
        self.body.truncate(keep);
        self
    }

    /// The answer as the server sends it (the delay is the server's to wait out first).
    pub fn into_response(self) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
        let mut response =
            hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(self.body)));
        *response.status_mut() = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        let mut typed = false;
        for (k, v) in self.headers {
            typed |= k.eq_ignore_ascii_case("content-type");
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(k.as_bytes()),
                hyper::header::HeaderValue::from_str(&v),
            ) {
                headers.append(name, value);
            }
        }
        if !typed {
            headers.insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/octet-stream"),
            );
        }
        response
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    /// The part's declared media type, lowercased, without parameters.
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Splits a multipart body with multer; the body is already in memory, so the futures complete at once.
pub fn parse_multipart(content_type_header: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = multer::parse_boundary(content_type_header).map_err(|e| e.to_string())?;
    let chunk = bytes::Bytes::copy_from_slice(body);
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(chunk) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    futures::executor::block_on(async move {
        let mut parts = Vec::new();
        while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(|s| s.to_owned());
            let content_type = field
                .content_type()
                .map(|m| m.essence_str().to_ascii_lowercase());
            let data = field.bytes().await.map_err(|e| e.to_string())?.to_vec();
            parts.push(Part {
                name,
                file_name,
                content_type,
                data,
            });
        }
        Ok(parts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_keep_names_types_and_bytes() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"image[]\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "prompt");
        assert_eq!(parts[0].text(), "hello");
        assert_eq!(parts[1].name, "image[]");
        assert_eq!(parts[1].file_name.as_deref(), Some("a.png"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[1].data, b"\x89PNG");
        assert!(parse_multipart("multipart/form-data", body).is_err());
    }

    #[test]
    fn query_params_are_decoded() {
        let inc = Incoming {
            tls: true,
            method: "POST".into(),
            path: "/".into(),
            query: Some("alt=sse&key=a%2Bb+c".into()),
            headers: vec![],
            body: vec![],
            host: None,
        };
        assert_eq!(inc.query_param("key").as_deref(), Some("a+b c"));
        assert_eq!(inc.query_param("alt").as_deref(), Some("sse"));
        assert_eq!(inc.query_param("nope"), None);
    }
}
