//! Gemini API: `POST {base}/models/{model}:generateContent` with the image inline, answer in the
//! first `inlineData` image part; safety blocks arrive as HTTP 200 and are recognised here.
//!
//! The image goes inline (`inline_data`), never through the Files API, which keeps files for 48
//! hours. The request body is written by hand so the base64 image is encoded straight into it,
//! without an intermediate copy.

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;

use super::{
    Answer, Generated, Job, ProviderFailure, decode_image, endpoint, key_header,
    retry_after_header, safe_code, send, status_failure,
};
use crate::config::{ApiKey, ProviderConfig};

/// `finishReason` values that mean the model refused on safety, policy or recitation grounds.
const REFUSAL_FINISH_REASONS: [&str; 9] = [
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "IMAGE_OTHER",
];

#[derive(Deserialize)]
struct GenerateResponse<'a> {
    #[serde(default, borrow)]
    candidates: Vec<Candidate<'a>>,
    #[serde(default, rename = "promptFeedback")]
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Deserialize)]
struct PromptFeedback {
    #[serde(default, rename = "blockReason")]
    block_reason: Option<String>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<Content<'a>>,
    #[serde(default, rename = "finishReason")]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default, borrow, rename = "inlineData", alias = "inline_data")]
    inline_data: Option<Blob<'a>>,
    #[serde(default)]
    thought: bool,
}

#[derive(Deserialize)]
struct Blob<'a> {
    #[serde(default, borrow, rename = "mimeType", alias = "mime_type")]
    mime_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// The JSON request body, with the image base64-encoded in place.
pub fn request_body(prompt: &str, mime: &str, image: &[u8]) -> Vec<u8> {
    let b64_len = base64::encoded_len(image.len(), true).expect("an upload-sized image");
    let mut body = Vec::with_capacity(b64_len + prompt.len() * 2 + 256);
    body.extend_from_slice(br#"{"contents":[{"role":"user","parts":[{"text":"#);
    serde_json::to_writer(&mut body, prompt).expect("writing to a Vec cannot fail");
    body.extend_from_slice(br#"},{"inline_data":{"mime_type":"#);
    serde_json::to_writer(&mut body, mime).expect("writing to a Vec cannot fail");
    body.extend_from_slice(br#","data":""#);
    let start = body.len();
    body.resize(start + b64_len, 0);
    base64::engine::general_purpose::STANDARD
        .encode_slice(image, &mut body[start..])
        .expect("the buffer has the exact encoded length");
    body.extend_from_slice(
        br#""}}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"]}}"#,
    );
    body
}

pub(super) async fn generate(
    client: &reqwest::Client,
    config: &ProviderConfig,
    key: &ApiKey,
    job: Job<'_>,
) -> Result<Generated, ProviderFailure> {
    let body = request_body(job.prompt, job.kind.mime(), &job.image);
    drop(job.image);
    let request = client
        .post(endpoint(
            config,
            &format!("models/{}:generateContent", config.model),
        ))
        .header("x-goog-api-key", key_header(key)?)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    interpret(send(request).await?)
}

fn interpret(answer: Answer) -> Result<Generated, ProviderFailure> {
    if answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let retry_after = retry_after_header(&answer.headers).or_else(|| retry_delay(&answer.body));
        return Err(ProviderFailure::RateLimited { retry_after });
    }
    if !answer.status.is_success() {
        let status = serde_json::from_slice::<ErrorEnvelope>(&answer.body)
            .ok()
            .and_then(|e| e.error.status)
            .and_then(|s| safe_code(&s));
        return Err(status_failure(&answer, status.as_deref()));
    }
    let parsed: GenerateResponse = serde_json::from_slice(&answer.body).map_err(|_| {
        ProviderFailure::Upstream("the provider's answer is not the expected JSON".into())
    })?;
    if let Some(reason) = parsed.prompt_feedback.and_then(|f| f.block_reason) {
        return Err(ProviderFailure::Refused(format!(
            "blockReason {}",
            safe_code(&reason).unwrap_or_default()
        )));
    }
    let candidate = parsed.candidates.into_iter().next();
    let finish = candidate.as_ref().and_then(|c| c.finish_reason.clone());
    if let Some(reason) = finish
        .as_deref()
        .filter(|r| REFUSAL_FINISH_REASONS.contains(r))
    {
        return Err(ProviderFailure::Refused(format!("finishReason {reason}")));
    }
    let image = candidate
        .and_then(|c| c.content)
        .into_iter()
        .flat_map(|c| c.parts)
        .filter(|p| !p.thought)
        .filter_map(|p| p.inline_data)
        .find(|blob| {
            blob.mime_type
                .as_deref()
                .is_none_or(|m| m.starts_with("image/"))
        });
    match image {
        Some(blob) => decode_image(&blob.data),
        None => Err(ProviderFailure::Upstream(format!(
            "the provider answered without an image (finishReason {})",
            finish
                .as_deref()
                .and_then(safe_code)
                .unwrap_or_else(|| "none".into())
        ))),
    }
}

/// Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay":"37s"`), rounded up.
fn retry_delay(body: &[u8]) -> Option<String> {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    envelope.error.details.iter().find_map(|detail| {
        let is_retry_info = detail
            .get("@type")?
            .as_str()?
            .ends_with("google.rpc.RetryInfo");
        let delay = detail
            .get("retryDelay")?
            .as_str()?
            .strip_suffix('s')?
            .parse::<f64>()
            .ok()?;
        (is_retry_info && delay.is_finite() && delay >= 0.0)
            .then(|| (delay.ceil() as u64).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUg==";

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_request_body_is_valid_json_with_the_image_inline() {
        let body = request_body("a \"quoted\" prompt\n", "image/png", b"\x89PNG bytes");
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let parts = &value["contents"][0]["parts"];
        assert_eq!(value["contents"][0]["role"], "user");
        assert_eq!(parts[0]["text"], "a \"quoted\" prompt\n");
        assert_eq!(parts[1]["inline_data"]["mime_type"], "image/png");
        let data = parts[1]["inline_data"]["data"].as_str().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
            b"\x89PNG bytes"
        );
        assert_eq!(
            value["generationConfig"]["responseModalities"],
            serde_json::json!(["TEXT", "IMAGE"])
        );
    }

    #[test]
    fn reads_the_first_image_part_in_either_spelling() {
        let camel = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"hi"}},{{"inlineData":{{"mimeType":"image/png","data":"{PNG_B64}"}},"thought":true}},{{"inlineData":{{"mimeType":"image/png","data":"{PNG_B64}"}}}}]}},"finishReason":"STOP"}}]}}"#
        );
        assert_eq!(interpret(answer(200, &camel)).unwrap().mime, "image/png");
        let snake = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"inline_data":{{"mime_type":"image/png","data":"{PNG_B64}"}}}}]}}}}]}}"#
        );
        assert!(interpret(answer(200, &snake)).is_ok());
    }

    #[test]
    fn blocks_in_a_200_are_refusals() {
        let prompt_block = r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT","safetyRatings":[]},"usageMetadata":{}}"#;
        assert_eq!(
            interpret(answer(200, prompt_block)).unwrap_err(),
            ProviderFailure::Refused("blockReason PROHIBITED_CONTENT".into())
        );
        let finish_block = r#"{"candidates":[{"content":{"parts":[{"text":"I can't"}]},"finishReason":"IMAGE_SAFETY"}]}"#;
        assert!(matches!(
            interpret(answer(200, finish_block)),
            Err(ProviderFailure::Refused(_))
        ));
        let no_content = r#"{"candidates":[{"finishReason":"SAFETY"}]}"#;
        assert!(matches!(
            interpret(answer(200, no_content)),
            Err(ProviderFailure::Refused(_))
        ));
        let no_image =
            r#"{"candidates":[{"content":{"parts":[{"text":"no"}]},"finishReason":"NO_IMAGE"}]}"#;
        assert!(matches!(
            interpret(answer(200, no_image)),
            Err(ProviderFailure::Upstream(_))
        ));
    }

    #[test]
    fn errors_map_by_status_and_rate_limits_keep_retry_info() {
        let quota = r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36.2s"}]}}"#;
        assert_eq!(
            interpret(answer(429, quota)).unwrap_err(),
            ProviderFailure::RateLimited {
                retry_after: Some("37".into())
            }
        );
        assert_eq!(
            interpret(answer(429, "{}")).unwrap_err(),
            ProviderFailure::RateLimited { retry_after: None }
        );
        let bad_key =
            r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#;
        let err = interpret(answer(400, bad_key)).unwrap_err().to_string();
        assert!(err.contains("INVALID_ARGUMENT"), "{err}");
        assert!(matches!(
            interpret(answer(503, "")),
            Err(ProviderFailure::Upstream(_))
        ));
        assert_eq!(
            interpret(answer(504, "")).unwrap_err(),
            ProviderFailure::Timeout
        );
        assert!(matches!(
            interpret(answer(200, "<html>")),
            Err(ProviderFailure::Upstream(_))
        ));
    }
}
