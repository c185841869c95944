//! Vertex AI on the Gemini mock: the run's service account's signed assertion exchanged at the
//! mocked token endpoint (no other key gets a token), then publisher-model paths with that bearer
//! token, recorded like Gemini calls.

mod common;

use base64::Engine as _;
use common::*;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};
use traceless_mock::{Endpoint, Mocks};

const MODEL_PATH: &str = "/v1/projects/audit-project/locations/us-central1/publishers/google/models/gemini-3.1-flash-lite-image";

/// A JWT signed with the private key of a service-account JSON, as google-auth signs one.
fn assertion(account: &Value, claims: &Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let pem = account["private_key"].as_str().unwrap();
    let key = SigningKey::<Sha256>::new(rsa::PrivateKey::from_pkcs8_pem(pem).unwrap());
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT","kid":"traceless-audit-key"}"#),
        b64(claims.to_string().as_bytes())
    );
    format!("{input}.{}", b64(&key.sign(input.as_bytes()).to_vec()))
}

async fn token(mocks: &Mocks, account: &Value, claims: &Value) -> (u16, Value) {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        assertion(account, claims)
    );
    let res = client(mocks)
        .post(format!("{}/token", mocks.gemini_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn generate(
    mocks: &Mocks,
    method: &str,
    bearer: Option<&str>,
    image: &[u8],
) -> (u16, String) {
    let body = json!({"contents": [{"role": "user", "parts": [
        {"text": "put this person on a beach"},
        {"inlineData": {"mimeType": "image/png", "data": b64(image)}}]}]});
    let mut req = client(mocks)
        .post(format!("{}{MODEL_PATH}:{method}", mocks.gemini_url()))
        .json(&body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

#[tokio::test]
async fn service_account_token_then_publisher_model_calls() {
    let mocks = start().await;
    let image = png(32, 32);
    let account: Value = serde_json::from_str(&mocks.service_account_json().unwrap()).unwrap();
    assert_eq!(
        account["token_uri"],
        format!("{}/token", mocks.gemini_url())
    );
    let email = account["client_email"].as_str().unwrap();
    let claims = json!({"iss": email,
                        "scope": "https://www.googleapis.com/auth/cloud-platform",
                        "aud": "https://oauth2.googleapis.com/token",
                        "iat": now(), "exp": now() + 3600});
    let (status, body) = token(&mocks, &account, &claims).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = token(&mocks, &account, &json!({"iss": email})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // The same claims signed by a key the mocks did not make get no token.
    let stranger = start().await;
    let other: Value = serde_json::from_str(&stranger.service_account_json().unwrap()).unwrap();
    stranger.shutdown().await;
    let (status, body) = token(&mocks, &other, &claims).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Invalid JWT Signature.")),
        "{body}"
    );

    let (status, body) = generate(&mocks, "generateContent", Some(&access), &image).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.get("inlineData").is_some())
    );
    let (status, body) = generate(
        &mocks,
        "streamGenerateContent?alt=sse",
        Some(&access),
        &image,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with("data: "));
    // No token, or one the endpoint never issued (the API key of the Gemini API is not one).
    let (status, _) = generate(&mocks, "generateContent", None, &image).await;
    assert_eq!(status, 401);
    let (status, _) = generate(&mocks, "generateContent", Some("ya29.forged"), &image).await;
    assert_eq!(status, 401);

    let rec = mocks.recorded();
    let endpoints: Vec<Endpoint> = rec.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            Endpoint::OAuthToken,
            Endpoint::OAuthToken,
            Endpoint::OAuthToken,
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
            Endpoint::GenerateContent,
            Endpoint::GenerateContent
        ]
    );
    assert_eq!(rec[3].model.as_deref(), Some("gemini-3.1-flash-lite-image"));
    assert_eq!(rec[3].images, vec![image.clone()]);
    assert!(rec[3].output_image.is_some() && rec[4].output_image.is_some());
    assert!(rec[5].rejected.is_some() && rec[6].rejected.is_some());
    mocks.shutdown().await;
}
