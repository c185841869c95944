//! The credential checks: an API key (`x-goog-api-key` or `?key=`) for the Gemini API, an OAuth
//! access token from the mocked token endpoint for Vertex AI, refused in the real APIs' words.

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

/// Vertex AI: `Authorization: Bearer <token>` with a token the mocked token endpoint issued.
pub(super) fn check_token(shared: &Shared, inc: &Incoming) -> Result<(), ApiError> {
    let token = inc
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim);
    if token.is_some_and(|t| crate::state::lock(&shared.google_tokens).contains(t)) {
        return Ok(());
    }
    Err(ApiError {
        code: 401,
        status: "UNAUTHENTICATED",
        message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
                  or other valid authentication credential. See \
                  https://developers.google.com/identity/sign-in/web/devconsole-project."
            .into(),
        details: vec![json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com"})],
    })
}
