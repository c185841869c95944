//! Google's OAuth token endpoint (`POST https://oauth2.googleapis.com/token`), enough for a service
//! account: the client posts a JWT it signed with the account's key (`grant_type=
//! urn:ietf:params:oauth:grant-type:jwt-bearer`), and gets an access token that Vertex AI calls to
//! this mock must then carry. The assertion's claims are checked; its signature is not (the mock
//! does not hold the account's public key), so any key made for the audit will do.

use base64::Engine as _;
use serde_json::{Value, json};

use super::ApiError;
use super::error::google_reply;
use crate::http::{Incoming, Reply};
use crate::ids;
use crate::state::{Shared, lock};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token request read: the assertion's claims, or why it is refused (OAuth's own envelope).
#[derive(Debug)]
pub(crate) struct TokenRequest(Result<Value, (&'static str, String)>);

pub(super) fn examine(inc: &Incoming) -> Result<TokenRequest, ApiError> {
    let form = String::from_utf8_lossy(&inc.body);
    let field = |name: &str| {
        form.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    };
    let claims = match (field("grant_type").as_deref(), field("assertion")) {
        (Some(JWT_BEARER), Some(assertion)) => claims(&assertion).ok_or((
            "invalid_grant",
            "Invalid JWT: malformed assertion.".to_owned(),
        )),
        (Some(JWT_BEARER), None) => Err((
            "invalid_request",
            "Missing required parameter: assertion".into(),
        )),
        (Some(other), _) => Err((
            "unsupported_grant_type",
            format!("Invalid grant_type: {other}"),
        )),
        (None, _) => Err(("unsupported_grant_type", "Invalid grant_type: ".into())),
    };
    let claims = claims.and_then(|c| {
        let has = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        };
        if !has("iss") {
            return Err(("invalid_grant", "Invalid JWT: no issuer (iss).".into()));
        }
        if !has("scope") && !has("target_audience") {
            return Err((
                "invalid_scope",
                "Invalid OAuth scope or ID token audience provided.".into(),
            ));
        }
        Ok(c)
    });
    Ok(TokenRequest(claims))
}

/// The JSON claims of a compact JWT (`header.claims.signature`, base64url).
fn claims(jwt: &str) -> Option<Value> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [_, claims, _] = parts.as_slice() else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) fn answer(shared: &Shared, request: TokenRequest) -> Reply {
    match request.0 {
        Ok(_) => {
            let token = format!("ya29.c.traceless{}", ids::alnum(120));
            lock(&shared.google_tokens).insert(token.clone());
            google_reply(
                200,
                &json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
            )
        }
        Err((error, description)) => google_reply(
            400,
            &json!({"error": error, "error_description": description}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64(claims.to_string().as_bytes()),
            b64(b"signature")
        )
    }

    #[test]
    fn assertions_need_an_issuer_and_a_scope() {
        let ok = jwt(
            &json!({"iss": "sa@p.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/cloud-platform"}),
        );
        assert!(claims(&ok).is_some());
        assert!(claims("not-a-jwt").is_none());
        let no_scope = jwt(&json!({"iss": "sa@p.iam.gserviceaccount.com"}));
        let inc = |assertion: &str| {
            Incoming {
            tls: true,
            method: "POST".into(),
            path: "/token".into(),
            query: None,
            headers: vec![],
            body: format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}")
                .into_bytes(),
            host: None,
        }
        };
        assert!(examine(&inc(&ok)).unwrap().0.is_ok());
        assert_eq!(
            examine(&inc(&no_scope)).unwrap().0.unwrap_err().0,
            "invalid_scope"
        );
        assert_eq!(
            examine(&inc("x.y")).unwrap().0.unwrap_err().0,
            "invalid_grant"
        );
    }
}
