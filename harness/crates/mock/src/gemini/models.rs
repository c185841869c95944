//! The models the Gemini mock knows, and the Models API (`GET /v1beta/models[/{name}]`).

use serde_json::{Value, json};

use super::ApiError;
use super::error::{error_reply, google_reply};
use crate::http::Reply;

/// Models that can answer with images.
pub(super) const IMAGE_MODELS: &[&str] = &[
    "gemini-2.5-flash-image",
    "gemini-2.5-flash-image-preview",
    "gemini-2.0-flash-preview-image-generation",
    "gemini-2.0-flash-exp-image-generation",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
];

/// Text-only models that exist (a request for IMAGE output from them is refused as the real API does).
pub(super) const TEXT_MODELS: &[&str] = &[
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
];

fn model_object(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": name,
        "inputTokenLimit": 32768,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens"]
    })
}

pub(super) fn answer(name: Option<&str>) -> Reply {
    let Some(name) = name else {
        let models: Vec<Value> = IMAGE_MODELS
            .iter()
            .chain(TEXT_MODELS)
            .map(|m| model_object(m))
            .collect();
        return google_reply(200, &json!({ "models": models }));
    };
    let name = name.trim_start_matches("models/");
    if IMAGE_MODELS.contains(&name) || TEXT_MODELS.contains(&name) {
        return google_reply(200, &model_object(name));
    }
    error_reply(&ApiError {
        code: 404,
        status: "NOT_FOUND",
        message: format!("models/{name} is not found for API version v1beta."),
        details: Vec::new(),
    })
}
