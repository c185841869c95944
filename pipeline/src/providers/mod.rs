//! The image-generation providers: one HTTP client shared by both, a time limit around every
//! call, and the failures a provider can answer with, in provider-neutral terms.
//!
//! Privacy rules enforced here rather than trusted to each call: no proxy from the environment
//! (the image goes to the provider and nowhere else), no redirects followed, no retries (the
//! image is sent once), no connection kept after a call (its buffers, which held the image, are
//! freed and so wiped when the call ends), and nothing from the client's request but the image
//! and the prompt.

pub mod gemini;
pub mod openai;
pub mod tls;

use std::time::Duration;

use anyhow::Context;
use reqwest::header::HeaderMap;

use crate::config::{ApiKey, Config, ProviderConfig};
use crate::image_check::ImageKind;

/// The most a provider's answer may weigh; a bigger one is a provider error.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A provider the client can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderName {
    OpenAi,
    Gemini,
}

impl ProviderName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::OpenAi => "openai",
            ProviderName::Gemini => "gemini",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(ProviderName::OpenAi),
            "gemini" => Some(ProviderName::Gemini),
            _ => None,
        }
    }
}

/// What is sent to a provider: the prompt and the already stripped image.
pub struct Job<'a> {
    pub prompt: &'a str,
    pub image: Vec<u8>,
    pub kind: ImageKind,
}

/// A generated image and its media type (sniffed from its bytes).
#[derive(Debug)]
pub struct Generated {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
}

/// How a provider call failed. Details never carry the provider's free-text message, which may
/// quote credentials (OpenAI's invalid-key message shows part of the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderFailure {
    #[error("provider {0} is not configured (its API key variable is unset)")]
    NotConfigured(&'static str),
    #[error("the provider refused the request on safety grounds ({0})")]
    Refused(String),
    #[error("the provider is rate limiting requests")]
    RateLimited { retry_after: Option<String> },
    #[error("{0}")]
    Upstream(String),
    #[error("the provider did not answer in time")]
    Timeout,
}

/// Both providers behind one client.
#[derive(Debug, Clone)]
pub struct Providers {
    client: reqwest::Client,
    openai: ProviderConfig,
    gemini: ProviderConfig,
    timeout: Duration,
}

impl Providers {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let tls = tls::client_config(config.extra_ca_pem.as_deref())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .referer(false)
            .http1_only()
            .pool_max_idle_per_host(0)
            .connect_timeout(config.provider_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("traceless-pipeline/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the provider HTTP client")?;
        Ok(Providers {
            client,
            openai: config.openai.clone(),
            gemini: config.gemini.clone(),
            timeout: config.provider_timeout,
        })
    }

    /// Sends `job` to `provider` and returns its image, within the configured time limit.
    pub async fn generate(
        &self,
        provider: ProviderName,
        job: Job<'_>,
    ) -> Result<Generated, ProviderFailure> {
        let config = match provider {
            ProviderName::OpenAi => &self.openai,
            ProviderName::Gemini => &self.gemini,
        };
        let key = config
            .api_key
            .as_ref()
            .ok_or(ProviderFailure::NotConfigured(provider.as_str()))?;
        let call = async {
            match provider {
                ProviderName::OpenAi => openai::generate(&self.client, config, key, job).await,
                ProviderName::Gemini => gemini::generate(&self.client, config, key, job).await,
            }
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ProviderFailure::Timeout)?
    }
}

/// `{base}/{path}` with exactly one slash between.
fn endpoint(config: &ProviderConfig, path: &str) -> String {
    format!(
        "{}/{}",
        config.base_url.as_str().trim_end_matches('/'),
        path
    )
}

fn key_header(key: &ApiKey) -> Result<reqwest::header::HeaderValue, ProviderFailure> {
    let mut value = reqwest::header::HeaderValue::from_str(key.expose()).map_err(|_| {
        ProviderFailure::Upstream("the API key contains characters not allowed in a header".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A provider answer read in full (bounded).
struct Answer {
    status: reqwest::StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, ProviderFailure> {
    let mut response = request.send().await.map_err(transport_failure)?;
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let capacity = response
        .content_length()
        .unwrap_or(0)
        .min(MAX_RESPONSE_BYTES as u64) as usize;
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ProviderFailure::Upstream(format!(
                "the provider's answer is larger than {} MiB",
                MAX_RESPONSE_BYTES >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn transport_failure(error: reqwest::Error) -> ProviderFailure {
    if error.is_timeout() {
        return ProviderFailure::Timeout;
    }
    // The error chain says what failed (connection refused, certificate not trusted...); the URL
    // is dropped, and no part of the request is in it.
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderFailure::Upstream(format!("could not reach the provider: {detail}"))
}

/// Failures common to both providers, by HTTP status alone.
fn status_failure(answer: &Answer, code: Option<&str>) -> ProviderFailure {
    let status = answer.status;
    if status == reqwest::StatusCode::GATEWAY_TIMEOUT {
        return ProviderFailure::Timeout;
    }
    let code = code.map(|c| format!(", {c}")).unwrap_or_default();
    if status.is_server_error() {
        ProviderFailure::Upstream(format!(
            "the provider failed (HTTP {}{code})",
            status.as_u16()
        ))
    } else {
        ProviderFailure::Upstream(format!(
            "the provider rejected the request (HTTP {}{code})",
            status.as_u16()
        ))
    }
}

/// A provider's machine-readable error code, if it is a plain identifier (never free text).
fn safe_code(code: &str) -> Option<String> {
    let plain = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    plain.then(|| code.to_owned())
}

/// `Retry-After` to pass on: `retry-after-ms` rounded up to seconds, or `retry-after` if it is
/// delta-seconds or an HTTP date.
fn retry_after_header(headers: &HeaderMap) -> Option<String> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(((ms / 1000.0).ceil() as u64).to_string());
    }
    let value = text("retry-after")?;
    let delta_seconds =
        !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    let http_date = value.len() <= 40
        && value.ends_with("GMT")
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" ,:".contains(&b));
    (delta_seconds || http_date).then(|| value.to_owned())
}

/// Decodes a provider's base64 image and checks that it is an image.
fn decode_image(b64: &str) -> Result<Generated, ProviderFailure> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| {
            ProviderFailure::Upstream("the provider's image is not valid base64".into())
        })?;
    let kind = ImageKind::sniff(&bytes).ok_or_else(|| {
        ProviderFailure::Upstream("the provider's answer is not a PNG, JPEG or WebP image".into())
    })?;
    Ok(Generated {
        bytes,
        mime: kind.mime(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn retry_after_accepts_seconds_dates_and_milliseconds_only() {
        assert_eq!(
            retry_after_header(&headers(&[("retry-after", "12")])).as_deref(),
            Some("12")
        );
        assert_eq!(
            retry_after_header(&headers(&[("retry-after-ms", "1500")])).as_deref(),
            Some("2")
        );
        assert_eq!(
            retry_after_header(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2026 07:28:00 GMT"
            )]))
            .as_deref(),
            Some("Wed, 21 Oct 2026 07:28:00 GMT")
        );
        assert_eq!(
            retry_after_header(&headers(&[("retry-after", "<script>")])),
            None
        );
        assert_eq!(retry_after_header(&HeaderMap::new()), None);
    }

    #[test]
    fn codes_are_passed_on_only_when_plain_identifiers() {
        assert_eq!(
            safe_code("moderation_blocked").as_deref(),
            Some("moderation_blocked")
        );
        assert_eq!(safe_code("Incorrect API key provided: sk-123"), None);
        assert_eq!(safe_code(""), None);
    }
}
