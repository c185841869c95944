//! The models the OpenAI mock knows, and the Models API (`GET /v1/models[/{id}]`).

use serde_json::{Value, json};

use super::ApiError;
use super::error::{error_reply, openai_reply};
use crate::http::Reply;

/// Image models the Images API knows.
pub(super) const IMAGE_MODELS: &[&str] = &[
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "chatgpt-image-latest",
    "dall-e-2",
    "dall-e-3",
];

/// Models listed by `GET /v1/models` (and accepted by the Responses API, with the families below).
pub(super) const LISTED_MODELS: &[&str] = &[
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-2",
    "chatgpt-image-latest",
    "dall-e-2",
    "dall-e-3",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-5.1",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
];

/// Families of Responses models: the real list changes often, so a dated snapshot of a known family passes.
pub(super) const RESPONSES_MODEL_FAMILIES: &[&str] =
    &["gpt-5", "gpt-4.1", "gpt-4o", "o3", "o4-mini", "o1"];

fn model_object(id: &str) -> Value {
    let owned_by = if id.starts_with("dall-e") {
        "system"
    } else {
        "openai"
    };
    json!({"id": id, "object": "model", "created": 1_698_785_189, "owned_by": owned_by})
}

pub(super) fn answer(id: Option<&str>) -> Reply {
    let Some(id) = id else {
        let data: Vec<Value> = LISTED_MODELS.iter().map(|m| model_object(m)).collect();
        return openai_reply(200, &json!({"object": "list", "data": data}));
    };
    if LISTED_MODELS.contains(&id) {
        return openai_reply(200, &model_object(id));
    }
    error_reply(&ApiError {
        status: 404,
        message: format!("The model '{id}' does not exist"),
        kind: "invalid_request_error",
        param: Some("model".into()),
        code: Some("model_not_found".into()),
    })
}
