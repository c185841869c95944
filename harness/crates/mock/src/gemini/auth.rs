//! The API key check: `x-goog-api-key` or `?key=`, refused in the real API's words.

use serde_json::json;

use super::ApiError;
use crate::http::Incoming;
use crate::state::Shared;

pub(super) fn check(shared: &Shared, inc: &Incoming) -> Result<(), ApiError> {
    let key = inc
        .header("x-goog-api-key")
        .map(str::to_owned)
        .or_else(|| inc.query_param("key"));
    match key {
        Some(k) if k == shared.gemini_key => Ok(()),
        Some(_) => {
            let message = "API key not valid. Please pass a valid API key.";
            Err(ApiError {
                details: vec![
                    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                           "domain": "googleapis.com",
                           "metadata": {"service": "generativelanguage.googleapis.com"}}),
                    json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                           "message": message}),
                ],
                ..ApiError::invalid(message)
            })
        }
        None => Err(ApiError {
            code: 403,
            status: "PERMISSION_DENIED",
            message: "Method doesn't allow unregistered callers (callers without established identity). Please use \
                      API Key or other form of API consumer identity to call this API."
                .into(),
            details: Vec::new(),
        }),
    }
}
