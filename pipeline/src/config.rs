//! Start-up configuration: environment variables parsed and validated once.
//!
//! The rest of the pipeline only sees [`Config`]; every error names the variable at fault so an
//! operator can fix it without reading code.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;

/// The most an uploaded image may weigh, in bytes (20 MB, decimal).
pub const MAX_IMAGE_BYTES: usize = 20_000_000;
/// Room for the other form fields and multipart framing on top of the image.
pub const FORM_OVERHEAD_BYTES: usize = 64 * 1024;
/// The most pixels an image may declare (40 megapixels).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The most characters a prompt may have.
pub const MAX_PROMPT_CHARS: usize = 4000;

/// An API key. Its `Debug` never shows the value, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// One provider's endpoint, model and credentials.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Base URL without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: Url,
    pub model: String,
    /// `None` when the key variable is unset: requests for this provider are refused without
    /// contacting it.
    pub api_key: Option<ApiKey>,
}

/// The validated configuration of a pipeline process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub openai: ProviderConfig,
    pub gemini: ProviderConfig,
    /// PEM text of extra trust roots (read from `TRACELESS_EXTRA_CA` at start-up).
    pub extra_ca_pem: Option<Vec<u8>>,
    pub provider_timeout: Duration,
    pub max_concurrency: usize,
    /// How long a client may take to send a request's head (line and headers).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's whole body, once its head has arrived.
    pub body_read_timeout: Duration,
}

/// A configuration error naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let allow_plaintext = match get("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS").as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(problem(
                    "TRACELESS_ALLOW_PLAINTEXT_PROVIDERS",
                    format!("expected 1 or 0, got {other:?}"),
                ));
            }
        };

        let listen = get("TRACELESS_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen.parse().map_err(|e| {
            problem(
                "TRACELESS_LISTEN",
                format!("{listen:?} is not an address like 127.0.0.1:8080 ({e})"),
            )
        })?;

        let openai = ProviderConfig {
            base_url: base_url(
                &get,
                "OPENAI_BASE_URL",
                "https://api.openai.com/v1",
                allow_plaintext,
            )?,
            model: model(&get, "TRACELESS_OPENAI_MODEL", "gpt-image-2.5-sunburst")?,
            api_key: get("OPENAI_API_KEY").map(ApiKey::new),
        };
        let gemini = ProviderConfig {
            base_url: base_url(
                &get,
                "GEMINI_BASE_URL",
                "https://generativelanguage.googleapis.com/v1beta",
                allow_plaintext,
            )?,
            model: model(&get, "TRACELESS_GEMINI_MODEL", "gemini-2.5-flash-image")?,
            api_key: get("GEMINI_API_KEY").map(ApiKey::new),
        };

        let extra_ca_pem = match get("TRACELESS_EXTRA_CA") {
            None => None,
            Some(path) => Some(std::fs::read(&path).map_err(|e| {
                problem(
                    "TRACELESS_EXTRA_CA",
                    format!("cannot read the PEM file {path:?}: {e}"),
                )
            })?),
        };

        let provider_timeout =
            Duration::from_millis(positive(&get, "TRACELESS_PROVIDER_TIMEOUT_MS", 60_000)?);
        let max_concurrency = positive(&get, "TRACELESS_MAX_CONCURRENCY", 16)? as usize;
        let header_read_timeout =
            Duration::from_millis(positive(&get, "TRACELESS_HEADER_READ_TIMEOUT_MS", 10_000)?);
        let body_read_timeout =
            Duration::from_millis(positive(&get, "TRACELESS_BODY_READ_TIMEOUT_MS", 60_000)?);

        Ok(Config {
            listen,
            openai,
            gemini,
            extra_ca_pem,
            provider_timeout,
            max_concurrency,
            header_read_timeout,
            body_read_timeout,
        })
    }
}

fn base_url(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: &str,
    allow_plaintext: bool,
) -> Result<Url, ConfigError> {
    let raw = get(variable).unwrap_or_else(|| default.into());
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| problem(variable, format!("{raw:?} is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_plaintext => {}
        "http" => {
            return Err(problem(
                variable,
                format!(
                    "{raw:?} is plain http://: images would travel unencrypted. Use https://, \
                     or set TRACELESS_ALLOW_PLAINTEXT_PROVIDERS=1 for local testing only"
                ),
            ));
        }
        other => {
            return Err(problem(
                variable,
                format!("unsupported scheme {other:?} in {raw:?}"),
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(problem(
            variable,
            format!("{raw:?} must be a base URL without query or fragment"),
        ));
    }
    Ok(url)
}

fn model(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let name = get(variable).unwrap_or_else(|| default.into());
    // The model is part of a URL path for Gemini: keep it to a safe alphabet.
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        Ok(name)
    } else {
        Err(problem(
            variable,
            format!("{name:?} may only contain letters, digits, '-', '.', '_'"),
        ))
    }
}

fn positive(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(problem(
                variable,
                format!("expected a positive integer, got {v:?}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.openai.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(
            config.gemini.base_url.as_str(),
            "https://generativelanguage.googleapis.com/v1beta"
        );
        assert_eq!(config.openai.model, "gpt-image-2.5-sunburst");
        assert_eq!(config.gemini.model, "gemini-2.5-flash-image");
        assert_eq!(config.provider_timeout, Duration::from_secs(60));
        assert_eq!(config.max_concurrency, 16);
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.body_read_timeout, Duration::from_secs(60));
        assert!(config.openai.api_key.is_none());
    }

    #[test]
    fn plaintext_urls_are_refused_unless_allowed() {
        let err = parse(&[("GEMINI_BASE_URL", "http://127.0.0.1:1/v1beta")]).unwrap_err();
        assert_eq!(err.variable, "GEMINI_BASE_URL");
        assert!(
            err.to_string()
                .contains("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS")
        );
        let ok = parse(&[
            ("GEMINI_BASE_URL", "http://127.0.0.1:1/v1beta/"),
            ("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS", "1"),
        ])
        .unwrap();
        assert_eq!(ok.gemini.base_url.as_str(), "http://127.0.0.1:1/v1beta");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("TRACELESS_LISTEN", "nowhere"),
            ("TRACELESS_MAX_CONCURRENCY", "0"),
            ("TRACELESS_PROVIDER_TIMEOUT_MS", "soon"),
            ("TRACELESS_HEADER_READ_TIMEOUT_MS", "0"),
            ("TRACELESS_BODY_READ_TIMEOUT_MS", "1s"),
            ("TRACELESS_GEMINI_MODEL", "../files"),
            ("OPENAI_BASE_URL", "ftp://127.0.0.1/v1"),
            ("TRACELESS_EXTRA_CA", "/nonexistent/ca.pem"),
        ] {
            let err = parse(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
        }
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let config = parse(&[("OPENAI_API_KEY", "sk-secret-value")]).unwrap();
        assert!(!format!("{config:?}").contains("sk-secret-value"));
        assert_eq!(config.openai.api_key.unwrap().expose(), "sk-secret-value");
    }
}
