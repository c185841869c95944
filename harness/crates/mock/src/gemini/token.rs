//! Google's OAuth token endpoint (`POST https://oauth2.googleapis.com/token`), enough for a service
//! account: the client posts a JWT it signed with the account's key (`grant_type=
//! urn:ietf:params:oauth:grant-type:jwt-bearer`), and gets an access token that Vertex AI calls to
//! this mock must then carry. Only the account made for this run of the mocks (`super::account`)
//! gets one: the assertion must carry its RS256 signature, its issuer and a scope, and must not
//! have expired, as Google's endpoint requires.

use serde_json::{Value, json};

use super::ApiError;
use super::error::google_reply;
use crate::account::{self, Refused};
use crate::http::{Incoming, Reply};
use crate::ids;
use crate::state::{Shared, lock};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A token request read: the assertion's claims, or why it is refused (OAuth's own envelope).
#[derive(Debug)]
pub(crate) struct TokenRequest(Result<Value, (&'static str, String)>);

pub(super) fn examine(shared: &Shared, inc: &Incoming) -> Result<TokenRequest, ApiError> {
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
        (Some(JWT_BEARER), Some(assertion)) => verify(shared, &assertion),
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
    Ok(TokenRequest(claims.and_then(|c| judge_claims(c, now()))))
}

/// The assertion's claims, if the run's service account signed it.
fn verify(shared: &Shared, assertion: &str) -> Result<Value, (&'static str, String)> {
    let Some(account) = shared.service_account.get() else {
        return Err(("invalid_grant", "Invalid JWT Signature.".into()));
    };
    account.verify(assertion).map_err(|refused| match refused {
        Refused::Malformed => ("invalid_grant", "Invalid JWT: malformed assertion.".into()),
        Refused::Algorithm => (
            "invalid_grant",
            "Invalid JWT: unsupported algorithm.".into(),
        ),
        Refused::Signature => ("invalid_grant", "Invalid JWT Signature.".into()),
    })
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Google's rules for a signed assertion's claims: the account as issuer, a scope (or an ID token
/// audience), and a lifetime of at most an hour that has begun and not ended (a minute of skew).
fn judge_claims(c: Value, now: i64) -> Result<Value, (&'static str, String)> {
    let text = |k: &str| c.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if text("iss") != Some(account::CLIENT_EMAIL) {
        return Err(("invalid_grant", "Invalid grant: account not found".into()));
    }
    if text("scope").is_none() && text("target_audience").is_none() {
        return Err((
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.".into(),
        ));
    }
    let (iat, exp) = (
        c.get("iat").and_then(Value::as_i64),
        c.get("exp").and_then(Value::as_i64),
    );
    match (iat, exp) {
        (Some(iat), Some(exp)) if iat <= now + 60 && now < exp + 60 && exp - iat <= 3600 => Ok(c),
        _ => Err((
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
             timeframe. Check your iat and exp values in the JWT claim."
                .into(),
        )),
    }
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

    const HOUR: i64 = 3600;

    fn claims(iss: &str, scope: Option<&str>, iat: i64, exp: i64) -> Value {
        let mut c = json!({"iss": iss, "iat": iat, "exp": exp});
        if let Some(scope) = scope {
            c["scope"] = json!(scope);
        }
        c
    }

    #[test]
    fn claims_need_the_accounts_issuer_a_scope_and_a_current_lifetime() {
        let now = 1_800_000_000;
        let ok = claims(account::CLIENT_EMAIL, Some("s"), now, now + HOUR);
        assert!(judge_claims(ok, now).is_ok());
        let code = |c: Value| judge_claims(c, now).unwrap_err().0;
        let stranger = claims(
            "sa@other.iam.gserviceaccount.com",
            Some("s"),
            now,
            now + HOUR,
        );
        assert_eq!(code(stranger), "invalid_grant");
        let no_scope = claims(account::CLIENT_EMAIL, None, now, now + HOUR);
        assert_eq!(code(no_scope), "invalid_scope");
        let expired = claims(account::CLIENT_EMAIL, Some("s"), now - 2 * HOUR, now - HOUR);
        assert_eq!(code(expired), "invalid_grant");
        let too_long = claims(account::CLIENT_EMAIL, Some("s"), now, now + 2 * HOUR);
        assert_eq!(code(too_long), "invalid_grant");
    }

    #[test]
    fn without_the_runs_account_no_assertion_is_taken() {
        let shared = crate::state::tests::shared();
        let form =
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c";
        let inc = Incoming {
            tls: true,
            method: "POST".into(),
            path: "/token".into(),
            query: None,
            headers: vec![],
            body: form.as_bytes().to_vec(),
            host: None,
        };
        let refused = examine(&shared, &inc).unwrap().0.unwrap_err();
        assert_eq!(
            refused,
            ("invalid_grant", "Invalid JWT Signature.".to_owned())
        );
    }
}
