//! The OpenAI error envelope, the headers every answer carries, and the answers to scripted faults.

use serde_json::{Value, json};

use crate::http::Reply;
use crate::ids;
use crate::types::Behaviour;

/// A 4xx/5xx answer in the real envelope `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ApiError {
    pub(super) fn invalid(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: code.map(str::to_owned),
        }
    }

    pub(super) fn missing(param: &str) -> ApiError {
        ApiError::invalid(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    pub(super) fn unknown_parameter(param: &str) -> ApiError {
        ApiError::invalid(
            format!("Unknown parameter: '{param}'."),
            Some(param),
            Some("unknown_parameter"),
        )
    }

    pub(super) fn invalid_value(param: &str, given: &str, supported: &[&str]) -> ApiError {
        let quoted: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
        let list = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
            Some((last, _)) => last.clone(),
            None => String::new(),
        };
        ApiError::invalid(
            format!("Invalid value: '{given}'. Supported values are: {list}."),
            Some(param),
            Some("invalid_value"),
        )
    }

    pub(super) fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        ApiError::invalid(
            format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
            Some(param),
            Some("invalid_type"),
        )
    }

    pub(super) fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

/// The headers every OpenAI answer carries.
pub(super) fn openai_reply(status: u16, body: &Value) -> Reply {
    with_openai_headers(Reply::json(status, body))
}

pub(super) fn with_openai_headers(reply: Reply) -> Reply {
    reply
        .header("x-request-id", format!("req_{}", ids::hex(32)))
        .header("openai-version", "2020-10-01")
        .header(
            "openai-processing-ms",
            rand::random_range(180..2400u32).to_string(),
        )
        .header("openai-organization", "user-tracelessmock")
        .header("openai-project", "proj_tracelessmock")
        .header("x-ratelimit-limit-requests", "50")
        .header("x-ratelimit-remaining-requests", "49")
        .header("x-ratelimit-reset-requests", "1.2s")
        .header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains; preload",
        )
}

pub(super) fn error_reply(err: &ApiError) -> Reply {
    openai_reply(err.status, &err.body())
}

/// The answer to an infrastructure fault; None for behaviours that need the request read first.
pub(super) fn fault(behaviour: Behaviour, model: Option<&str>) -> Option<Reply> {
    match behaviour {
        Behaviour::RateLimited { retry_after_s } => Some(rate_limited(model, retry_after_s)),
        Behaviour::ServerError => Some(error_reply(&server_error())),
        Behaviour::Unavailable => Some(error_reply(&ApiError {
            status: 503,
            message: "The engine is currently overloaded, please try again later.".into(),
            kind: "server_error",
            param: None,
            code: None,
        })),
        Behaviour::Timeout => Some(error_reply(&ApiError {
            status: 504,
            message: "Gateway timeout. The upstream did not answer in time.".into(),
            kind: "server_error",
            param: None,
            code: Some("timeout".into()),
        })),
        _ => None,
    }
}

fn server_error() -> ApiError {
    ApiError {
        status: 500,
        message: "The server had an error while processing your request. Sorry about that!".into(),
        kind: "server_error",
        param: None,
        code: None,
    }
}

fn rate_limited(model: Option<&str>, retry_after_s: u32) -> Reply {
    let err = ApiError {
        status: 429,
        message: format!(
            "Rate limit reached for {} in organization org-tracelessmock on images per min (IPM): Limit 5, Used 5, \
             Requested 1. Please try again in {retry_after_s}s. Visit https://platform.openai.com/account/rate-limits \
             to learn more.",
            model.unwrap_or(super::models::DEFAULT_IMAGE_MODEL)
        ),
        kind: "requests",
        param: None,
        code: Some("rate_limit_exceeded".into()),
    };
    error_reply(&err)
        .header("retry-after", retry_after_s.to_string())
        .header("x-ratelimit-remaining-requests", "0")
        .header("x-ratelimit-reset-requests", format!("{retry_after_s}s"))
}

/// The safety system's refusal. Its message names the request by the id `x-request-id` carries, so
/// a client can quote either.
pub(super) fn moderation_blocked(behaviour: Behaviour) -> Reply {
    let (violation, _stage) = match behaviour {
        Behaviour::SafetyBlockImage => ("sexual", "output"),
        _ => ("violence", "input"),
    };
    let request_id = format!("req_{}", ids::hex(32));
    let err = ApiError {
        status: 400,
        message: format!(
            "Your request was rejected by the safety system. If you believe this is an error, contact us at \
             help.openai.com and include the request ID {request_id}. safety_violations=[{violation}]."
        ),
        kind: "image_generation_user_error",
        param: None,
        code: Some("moderation_blocked".into()),
    };
    error_reply(&err).header("x-request-id", request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_have_all_four_keys() {
        let body = ApiError::missing("prompt").body();
        let err = body["error"].as_object().unwrap();
        for key in ["message", "type", "param", "code"] {
            assert!(err.contains_key(key), "{key} missing from {body}");
        }
        assert_eq!(err["code"], "missing_required_parameter");
        assert_eq!(
            ApiError::invalid_value("size", "1x1", &["a", "b", "c"]).message,
            "Invalid value: '1x1'. Supported values are: 'a', 'b', and 'c'."
        );
    }
}
