//! The models the OpenAI mock lists, how it refuses a model it does not serve, and the Models API
//! (`GET /v1/models[/{id}]`). Which names each API takes is `crate::models::ModelRules`.

use serde_json::{Value, json};

use super::ApiError;
use super::error::{error_reply, openai_reply};
use crate::http::Reply;
use crate::models::{ModelRules, ModelStatus, matches_any};

/// Models listed by `GET /v1/models`: the names the SDK documents today (openai 3.60).
const LISTED_MODELS: &[&str] = &[
    "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-flare-2026-09-08",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-1.5",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
    "gpt-6-sol",
    "gpt-6-luna",
    "gpt-6-astra",
    "gpt-5.6-sol",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
    "gpt-5.5",
    "gpt-5.5-2026-04-23",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5.2",
    "gpt-5.1",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
];

/// The image model the Images API uses when the request names none.
pub(super) const DEFAULT_IMAGE_MODEL: &str = "gpt-image-1.5";
/// The image model the Responses `image_generation` tool uses when it names none.
pub(super) const DEFAULT_TOOL_MODEL: &str = "gpt-image-2.6-sunburst";

/// The answer to a model that was shut down, as the API gives it today.
pub(super) fn retired(model: &str) -> ApiError {
    ApiError {
        status: 404,
        message: format!(
            "The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations"
        ),
        kind: "invalid_request_error",
        param: Some("model".into()),
        code: Some("model_not_found".into()),
    }
}

/// Whether `model` may be used with the Images API (and the Responses image tool).
pub(super) fn check_image_model(
    rules: &ModelRules,
    param: &str,
    model: &str,
) -> Result<(), ApiError> {
    match rules.status(model, &rules.openai_image, &rules.openai_retired) {
        ModelStatus::Accepted => Ok(()),
        ModelStatus::Retired => Err(retired(model)),
        ModelStatus::Unknown => {
            let families: Vec<&str> = rules.openai_image.iter().map(String::as_str).collect();
            Err(ApiError::invalid_value(param, model, &families))
        }
    }
}

/// Whether `model` may drive the Responses API (the image models' names are no family of it).
pub(super) fn check_responses_model(rules: &ModelRules, model: &str) -> Result<(), ApiError> {
    match rules.status(model, &rules.openai_responses, &rules.openai_retired) {
        ModelStatus::Accepted => Ok(()),
        ModelStatus::Retired => Err(retired(model)),
        _ => Err(ApiError {
            status: 400,
            message: format!("The requested model '{model}' does not exist."),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found".into()),
        }),
    }
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_698_785_189, "owned_by": "openai"})
}

pub(super) fn answer(rules: &ModelRules, id: Option<&str>) -> Reply {
    let Some(id) = id else {
        let data: Vec<Value> = LISTED_MODELS
            .iter()
            .filter(|m| !matches_any(&rules.openai_retired, m))
            .map(|m| model_object(m))
            .collect();
        return openai_reply(200, &json!({"object": "list", "data": data}));
    };
    let served = [&rules.openai_image, &rules.openai_responses]
        .iter()
        .any(|accepted| rules.status(id, accepted, &rules.openai_retired) == ModelStatus::Accepted);
    if served {
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
