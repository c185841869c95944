//! OpenAI Images API: `POST {base}/images/edits` (multipart), answer in `data[0].b64_json`.
//!
//! The request carries `model`, `prompt`, `n` and one `image` part under a neutral file name;
//! never `user`, never a client identifier.

use std::borrow::Cow;

use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::{
    Answer, Generated, Job, ProviderFailure, decode_image, endpoint, retry_after_header, safe_code,
    send, status_failure,
};
use crate::config::{ApiKey, ProviderConfig};

/// Error codes OpenAI uses for a safety refusal (GPT image models, then DALL-E).
const REFUSAL_CODES: [&str; 2] = ["moderation_blocked", "content_policy_violation"];

#[derive(Deserialize)]
struct ImagesResponse<'a> {
    #[serde(default, borrow)]
    data: Vec<ImageData<'a>>,
}

#[derive(Deserialize)]
struct ImageData<'a> {
    #[serde(borrow)]
    b64_json: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

pub(super) async fn generate(
    client: &reqwest::Client,
    config: &ProviderConfig,
    key: &ApiKey,
    job: Job<'_>,
) -> Result<Generated, ProviderFailure> {
    let image = Part::bytes(job.image)
        .file_name(job.kind.file_name())
        .mime_str(job.kind.mime())
        .expect("a static, valid media type");
    let form = Form::new()
        .text("model", config.model.clone())
        .text("prompt", job.prompt.to_owned())
        .text("n", "1")
        .part("image", image);
    // `bearer_auth` marks the header sensitive, as `key_header` does for Gemini.
    let request = client
        .post(endpoint(config, "images/edits"))
        .bearer_auth(key.expose())
        .multipart(form);
    interpret(send(request).await?)
}

fn interpret(answer: Answer) -> Result<Generated, ProviderFailure> {
    if answer.status.is_success() {
        let parsed: ImagesResponse = serde_json::from_slice(&answer.body).map_err(|_| {
            ProviderFailure::Upstream("the provider's answer is not the expected JSON".into())
        })?;
        let b64 = parsed
            .data
            .first()
            .and_then(|d| d.b64_json.as_deref())
            .ok_or_else(|| {
                ProviderFailure::Upstream("the provider's answer has no data[0].b64_json".into())
            })?;
        return decode_image(b64);
    }
    if answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(ProviderFailure::RateLimited {
            retry_after: retry_after_header(&answer.headers),
        });
    }
    let error = serde_json::from_slice::<ErrorEnvelope>(&answer.body)
        .ok()
        .map(|e| e.error);
    let code = error
        .as_ref()
        .and_then(|e| e.code.as_deref().or(e.kind.as_deref()))
        .and_then(safe_code);
    let refused = error.as_ref().is_some_and(|e| {
        [e.code.as_deref(), e.kind.as_deref()]
            .into_iter()
            .flatten()
            .any(|c| REFUSAL_CODES.contains(&c))
    });
    if answer.status == reqwest::StatusCode::BAD_REQUEST && refused {
        return Err(ProviderFailure::Refused(
            code.unwrap_or_else(|| "moderation_blocked".into()),
        ));
    }
    Err(status_failure(&answer, code.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn maps_each_kind_of_answer() {
        let png_b64 = "iVBORw0KGgoAAAANSUhEUg==";
        let ok = interpret(answer(
            200,
            &format!(r#"{{"created":1,"data":[{{"b64_json":"{png_b64}"}}]}}"#),
        ))
        .unwrap();
        assert_eq!(ok.mime, "image/png");
        let blocked = r#"{"error":{"message":"Your request was rejected by the safety system.","type":"image_generation_user_error","param":null,"code":"moderation_blocked"}}"#;
        assert_eq!(
            interpret(answer(400, blocked)).unwrap_err(),
            ProviderFailure::Refused("moderation_blocked".into())
        );
        let dalle = r#"{"error":{"message":"x","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}"#;
        assert!(matches!(
            interpret(answer(400, dalle)),
            Err(ProviderFailure::Refused(_))
        ));
        let bad_key = r#"{"error":{"message":"Incorrect API key provided: sk-abc","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        let err = interpret(answer(401, bad_key)).unwrap_err().to_string();
        assert!(
            err.contains("401") && err.contains("invalid_api_key") && !err.contains("sk-abc"),
            "{err}"
        );
        assert!(matches!(
            interpret(answer(500, "oops")),
            Err(ProviderFailure::Upstream(_))
        ));
        assert!(matches!(
            interpret(answer(200, "{not json")),
            Err(ProviderFailure::Upstream(_))
        ));
        assert!(matches!(
            interpret(answer(200, r#"{"data":[]}"#)),
            Err(ProviderFailure::Upstream(_))
        ));
        assert!(matches!(
            interpret(answer(200, r#"{"data":[{"b64_json":"aGVsbG8="}]}"#)),
            Err(ProviderFailure::Upstream(_))
        ));
    }
}
