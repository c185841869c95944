//! The API key check: `Authorization: Bearer <key>` (OpenAI and Azure OpenAI) or `api-key: <key>`
//! (Azure OpenAI), refused in the real API's words.

use super::ApiError;
use crate::http::Incoming;
use crate::state::Shared;

pub(super) fn check(shared: &Shared, inc: &Incoming, azure: bool) -> Result<(), ApiError> {
    if azure {
        let key = inc.header("api-key").map(str::trim).or_else(|| {
            inc.header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::trim)
        });
        if key == Some(shared.openai_key.as_str()) {
            return Ok(());
        }
        return Err(ApiError {
            status: 401,
            message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a \
                      valid key for an active subscription and use a correct regional API endpoint for your resource."
                .into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("401".into()),
        });
    }
    let unauthorized = |message: String, code: Option<&str>| ApiError {
        status: 401,
        message,
        kind: "invalid_request_error",
        param: None,
        code: code.map(str::to_owned),
    };
    let Some(auth) = inc.header("authorization") else {
        return Err(unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if \
             you're accessing the API from your browser and are prompted for a username and password. You can \
             obtain an API key from https://platform.openai.com/account/api-keys."
                .into(),
            None,
        ));
    };
    let key = auth.strip_prefix("Bearer ").unwrap_or("").trim();
    if key == shared.openai_key {
        return Ok(());
    }
    Err(unauthorized(
        format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            mask_key(key)
        ),
        Some("invalid_api_key"),
    ))
}

/// The real API shows only the ends of a wrong key.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_keys_are_masked() {
        let masked = mask_key("sk-proj-abcdefgh1234");
        assert!(masked.starts_with("sk-") && masked.ends_with("1234"));
        assert!(!masked.contains("abcdefgh"));
    }
}
