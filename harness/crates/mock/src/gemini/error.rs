//! Google's error envelope, the headers every answer carries, and the answers to scripted faults.

use serde_json::{Value, json};

use crate::http::Reply;
use crate::types::Behaviour;

/// An error in Google's envelope `{"error":{"code","message","status","details"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
    pub details: Vec<Value>,
}

impl ApiError {
    pub(super) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            status: "INVALID_ARGUMENT",
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// An unknown JSON field, worded as the real proto parser words it.
    pub(super) fn unknown_field(name: &str, at: &str) -> ApiError {
        let message = if at.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
        } else {
            format!(
                "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
            )
        };
        ApiError {
            details: vec![json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": at, "description": message}]
            })],
            ..ApiError::invalid(message.clone())
        }
    }

    pub(super) fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }
}

pub(super) fn google_reply(status: u16, body: &Value) -> Reply {
    with_google_headers(Reply::new(
        status,
        "application/json; charset=UTF-8",
        body.to_string().into_bytes(),
    ))
}

pub(super) fn with_google_headers(reply: Reply) -> Reply {
    reply
        .header("vary", "Origin, X-Origin, Referer")
        .header("server", "scaffolding on HTTPServer2")
        .header(
            "server-timing",
            format!("gfet4t7; dur={}", rand::random_range(800..9000u32)),
        )
        .header("x-xss-protection", "0")
        .header("x-frame-options", "SAMEORIGIN")
        .header("x-content-type-options", "nosniff")
}

pub(super) fn error_reply(err: &ApiError) -> Reply {
    google_reply(err.code, &err.body())
}

/// The answer to an infrastructure fault, in the envelope `render` writes; None for behaviours that
/// need the request read first.
pub(super) fn fault(
    behaviour: Behaviour,
    model: Option<&str>,
    render: fn(&ApiError) -> Reply,
) -> Option<Reply> {
    let err = match behaviour {
        Behaviour::RateLimited { retry_after_s } => {
            let reply = render(&rate_limited(model, retry_after_s));
            return Some(reply.header("retry-after", retry_after_s.to_string()));
        }
        Behaviour::ServerError => ApiError {
            code: 500,
            status: "INTERNAL",
            message: "An internal error has occurred. Please retry or report in \
                      https://developers.generativeai.google/guide/troubleshooting"
                .into(),
            details: Vec::new(),
        },
        Behaviour::Unavailable => ApiError {
            code: 503,
            status: "UNAVAILABLE",
            message: "The model is overloaded. Please try again later.".into(),
            details: Vec::new(),
        },
        Behaviour::Timeout => ApiError {
            code: 504,
            status: "DEADLINE_EXCEEDED",
            message: "Deadline expired before operation could complete.".into(),
            details: Vec::new(),
        },
        _ => return None,
    };
    Some(render(&err))
}

fn rate_limited(model: Option<&str>, retry_after_s: u32) -> ApiError {
    let model = model.unwrap_or("gemini-2.5-flash-image");
    ApiError {
        code: 429,
        status: "RESOURCE_EXHAUSTED",
        message: "You exceeded your current quota, please check your plan and billing details. For more information \
                  on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
            .into(),
        details: vec![
            json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": "10"}]}),
            json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_after_s}s")}),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_names_the_place() {
        let e = ApiError::unknown_field("inlinedata", "contents[0].parts[1]");
        assert_eq!(
            e.message,
            "Invalid JSON payload received. Unknown name \"inlinedata\" at 'contents[0].parts[1]': Cannot find field."
        );
        assert_eq!(e.body()["error"]["status"], "INVALID_ARGUMENT");
    }
}
