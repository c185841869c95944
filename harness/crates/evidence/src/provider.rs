//! The calls the mock providers recorded, as plain data: which provider, which API, how it was
//! answered, and what it carried.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Which provider a mock imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    OpenAi,
    Gemini,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(Provider::OpenAi),
            "gemini" => Ok(Provider::Gemini),
            _ => Err(UnknownName {
                what: "provider",
                given: s.to_owned(),
                expected: "openai, gemini",
            }),
        }
    }
}

/// A name that is not one of the accepted spellings.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {what} {given:?}: expected one of {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static str,
}

/// How a mock answers the next generation request of its provider.
///
/// Serialised as the same short string [`FromStr`] reads (`"429"`, `"slow:1500"`), so scenario files
/// and reports speak one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Behaviour {
    /// A valid request gets a real success answer with a fresh image.
    #[default]
    Ok,
    /// 429 with `retry-after` and the provider's quota envelope.
    RateLimited { retry_after_s: u32 },
    /// 500 with the provider's internal-error envelope.
    ServerError,
    /// 503 with the provider's overload envelope.
    Unavailable,
    /// No answer until `MockOptions::timeout_hold` has passed (then a 504); released at shutdown.
    Timeout,
    /// OpenAI: 400 `moderation_blocked`. Gemini: 200 with `promptFeedback.blockReason`, no candidates.
    SafetyBlock,
    /// OpenAI: 400 `moderation_blocked` at the output stage. Gemini: 200 with a candidate whose
    /// `finishReason` is `IMAGE_SAFETY` and no image.
    SafetyBlockImage,
    /// 200 whose JSON body is cut short.
    Malformed,
    /// A success answer sent after a delay.
    Slow { delay_ms: u64 },
}

impl Behaviour {
    /// Seconds in `retry-after` when a scenario says only "429".
    pub const DEFAULT_RETRY_AFTER_S: u32 = 2;
    /// Delay when a scenario says only "slow".
    pub const DEFAULT_SLOW_MS: u64 = 1500;
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behaviour::Ok => f.write_str("ok"),
            Behaviour::RateLimited { retry_after_s }
                if *retry_after_s == Self::DEFAULT_RETRY_AFTER_S =>
            {
                f.write_str("429")
            }
            Behaviour::RateLimited { retry_after_s } => write!(f, "429:{retry_after_s}"),
            Behaviour::ServerError => f.write_str("500"),
            Behaviour::Unavailable => f.write_str("503"),
            Behaviour::Timeout => f.write_str("timeout"),
            Behaviour::SafetyBlock => f.write_str("safety-block"),
            Behaviour::SafetyBlockImage => f.write_str("safety-block-image"),
            Behaviour::Malformed => f.write_str("malformed"),
            Behaviour::Slow { delay_ms } if *delay_ms == Self::DEFAULT_SLOW_MS => {
                f.write_str("slow")
            }
            Behaviour::Slow { delay_ms } => write!(f, "slow:{delay_ms}"),
        }
    }
}

impl FromStr for Behaviour {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownName {
            what: "provider behaviour",
            given: s.to_owned(),
            expected: "ok, 429, 429:<seconds>, 500, 503, timeout, safety-block, safety-block-image, malformed, slow, slow:<ms>",
        };
        let lower = s.trim().to_ascii_lowercase();
        let (name, arg) = match lower.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (lower.as_str(), None),
        };
        let behaviour = match (name, arg) {
            ("ok", None) => Behaviour::Ok,
            ("429" | "rate-limited", None) => Behaviour::RateLimited {
                retry_after_s: Self::DEFAULT_RETRY_AFTER_S,
            },
            ("429" | "rate-limited", Some(arg)) => Behaviour::RateLimited {
                retry_after_s: arg.parse().map_err(|_| unknown())?,
            },
            ("500" | "server-error", None) => Behaviour::ServerError,
            ("503" | "unavailable", None) => Behaviour::Unavailable,
            ("timeout", None) => Behaviour::Timeout,
            ("safety-block", None) => Behaviour::SafetyBlock,
            ("safety-block-image", None) => Behaviour::SafetyBlockImage,
            ("malformed", None) => Behaviour::Malformed,
            ("slow", None) => Behaviour::Slow {
                delay_ms: Self::DEFAULT_SLOW_MS,
            },
            ("slow", Some(arg)) => Behaviour::Slow {
                delay_ms: arg.parse().map_err(|_| unknown())?,
            },
            _ => return Err(unknown()),
        };
        Ok(behaviour)
    }
}

impl Behaviour {
    /// A comma-separated script, e.g. `"429,ok"` or `"500, 503, slow:200"`.
    pub fn parse_list(s: &str) -> Result<Vec<Behaviour>, UnknownName> {
        s.split(',').map(str::parse).collect()
    }

    /// `provider=b1,b2,...`, as `traceless mocks --behaviour` takes it.
    pub fn parse_script(s: &str) -> Result<(Provider, Vec<Behaviour>), UnknownName> {
        let (provider, list) = s.split_once('=').ok_or_else(|| UnknownName {
            what: "behaviour script",
            given: s.to_owned(),
            expected: "provider=behaviour,behaviour,... (e.g. openai=429,ok)",
        })?;
        Ok((provider.parse()?, Behaviour::parse_list(list)?))
    }
}

impl From<Behaviour> for String {
    fn from(b: Behaviour) -> String {
        b.to_string()
    }
}

impl TryFrom<String> for Behaviour {
    type Error = UnknownName;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Which API a request addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// OpenAI `POST /v1/images/edits`.
    ImagesEdits,
    /// OpenAI `POST /v1/images/generations`.
    ImagesGenerations,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// OpenAI `POST /v1/files` (upload) and `GET /v1/files` (list).
    Files,
    /// OpenAI `GET /v1/models[/{id}]`, Gemini `GET /v1beta/models[/{id}]`.
    Models,
    /// Gemini `models/{model}:generateContent`.
    GenerateContent,
    /// Gemini `models/{model}:streamGenerateContent`.
    StreamGenerateContent,
    /// Gemini Interactions API `POST /{version}/interactions` (answered as server-sent events when the
    /// body says `stream: true`).
    Interactions,
    /// Gemini Interactions API `GET /{version}/interactions/{id}`: a stored interaction retrieved
    /// (also on Vertex AI, `/{version}/projects/{p}/locations/{l}/interactions/{id}`).
    InteractionsGet,
    /// Gemini Interactions API `DELETE /{version}/interactions/{id}`: a stored interaction deleted.
    InteractionsDelete,
    /// Gemini Interactions API `POST /{version}/interactions/{id}/cancel` (or `{id}:cancel`).
    InteractionsCancel,
    /// Gemini resumable upload: the start and every chunk sent to the upload URL.
    FilesUpload,
    /// Google's OAuth token endpoint (`POST /token` at `oauth2.googleapis.com`, served by the Gemini
    /// mock): a service account's signed assertion exchanged for a Vertex AI access token.
    #[serde(rename = "oauth-token")]
    OAuthToken,
    /// `GET` of one file (OpenAI or Gemini).
    FilesGet,
    /// `DELETE` of one file (OpenAI or Gemini).
    FilesDelete,
    Unknown,
}

impl Endpoint {
    /// Whether a call to it asks for a generation, and so takes the provider's next scripted
    /// behaviour. Models and Files endpoints always answer normally.
    pub fn generates(self) -> bool {
        matches!(
            self,
            Endpoint::ImagesEdits
                | Endpoint::ImagesGenerations
                | Endpoint::Responses
                | Endpoint::GenerateContent
                | Endpoint::StreamGenerateContent
                | Endpoint::Interactions
        )
    }
}

/// A TLS connection to a mock that carried no request because the client would not accept the
/// mock's certificate: certificate pinning, or a client that ignores the CA it was handed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsRefusal {
    pub at: SystemTime,
    pub provider: Provider,
    /// What the client did: the alert it sent, or that it hung up right after the handshake.
    pub how: String,
    /// Whether the client said so with a certificate alert; a silent hang-up after a completed
    /// handshake (what fingerprint pinning does) is only suggestive on its own.
    pub alert: bool,
}

/// One request a mock received, with what it carried and how it was answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RecordedRequest {
    /// Arrival order across both mocks, from 0.
    pub seq: u64,
    pub at: SystemTime,
    pub provider: Provider,
    /// False when the request arrived in plaintext (a plain mock, or plain HTTP sent to the TLS port).
    pub tls: bool,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(with = "crate::b64::bytes")]
    pub body: Vec<u8>,
    pub endpoint: Endpoint,
    pub model: Option<String>,
    /// OpenAI `user`; Gemini has no such field.
    pub user: Option<String>,
    /// OpenAI Responses or Gemini Interactions `store` as sent: None when absent (both APIs default
    /// to true).
    pub store: Option<bool>,
    /// Every image the request carried, decoded (multipart part, base64, data URL, inline data, upload).
    #[serde(with = "crate::b64::list")]
    pub images: Vec<Vec<u8>>,
    pub prompt: Option<String>,
    /// Why the real API would reject it; None when valid.
    pub rejected: Option<String>,
    pub behaviour: Behaviour,
    pub status: u16,
    /// The image the answer carried (a fresh random PNG each time).
    #[serde(with = "crate::b64::option")]
    pub output_image: Option<Vec<u8>>,
    /// The id of the stored object this call created (an interaction kept by the provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    /// The stored object this call reads or carries on (a get, cancel or delete of an
    /// interaction, or a create's `previous_interaction_id`): what it answers belongs to the
    /// requests that object's create carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<String>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
