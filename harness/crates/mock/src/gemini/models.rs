//! The models the Gemini mock lists, how it refuses a model it does not serve, and the Models API
//! (`GET /v1beta/models[/{name}]`). Which names it takes is `crate::models::ModelRules`.

use serde_json::{Value, json};

use super::ApiError;
use super::error::{error_reply, google_reply};
use crate::http::Reply;
use crate::models::{ModelRules, ModelStatus, matches_any};

/// Models listed by `GET /v1beta/models`: the names google-genai 3.6.1 documents today.
const LISTED_MODELS: &[&str] = &[
    "gemini-3.1-flash-lite-image",
    "gemini-3.1-flash-image",
    "gemini-3.1-flash-image-preview",
    "gemini-3-pro-image",
    "gemini-3-pro-image-preview",
    "gemini-2.5-flash-image",
    "gemini-3.1-pro",
    "gemini-3.1-flash",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
];

/// What a served model answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Image,
    Text,
}

/// Whether the mock serves `model`, and with what; None for a retired or unknown name (the API
/// answers both alike).
pub(super) fn kind(rules: &ModelRules, model: &str) -> Option<Kind> {
    if rules.status(model, &rules.gemini_image, &rules.gemini_retired) == ModelStatus::Accepted {
        Some(Kind::Image)
    } else if rules.status(model, &rules.gemini_text, &rules.gemini_retired)
        == ModelStatus::Accepted
    {
        Some(Kind::Text)
    } else {
        None
    }
}

/// The answer to a model that does not exist or was shut down.
pub(super) fn not_found(model: &str, version: &str) -> ApiError {
    ApiError {
        code: 404,
        status: "NOT_FOUND",
        message: format!(
            "models/{model} is not found for API version {version}, or is not supported for generateContent. \
             Call ListModels to see the list of available models and their supported methods."
        ),
        details: Vec::new(),
    }
}

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

pub(super) fn answer(rules: &ModelRules, name: Option<&str>) -> Reply {
    let Some(name) = name else {
        let models: Vec<Value> = LISTED_MODELS
            .iter()
            .filter(|m| !matches_any(&rules.gemini_retired, m))
            .map(|m| model_object(m))
            .collect();
        return google_reply(200, &json!({ "models": models }));
    };
    let name = name.trim_start_matches("models/");
    if kind(rules, name).is_some() {
        return google_reply(200, &model_object(name));
    }
    error_reply(&ApiError {
        code: 404,
        status: "NOT_FOUND",
        message: format!("models/{name} is not found for API version v1beta."),
        details: Vec::new(),
    })
}
