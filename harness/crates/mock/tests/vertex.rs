//! Vertex AI on the Gemini mock: a service account's signed assertion exchanged at the mocked
//! token endpoint, then publisher-model paths with that bearer token, recorded like Gemini calls.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use traceless_mock::{Endpoint, Mocks};

const MODEL_PATH: &str = "/v1/projects/audit-project/locations/us-central1/publishers/google/models/gemini-3.1-flash-lite-image";

fn assertion(claims: &Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"signed-by-a-key-made-for-the-audit")
    )
}

async fn token(mocks: &Mocks, claims: &Value) -> (u16, Value) {
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
        assertion(claims)
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
    let claims = json!({"iss": "audit@audit-project.iam.gserviceaccount.com",
                        "scope": "https://www.googleapis.com/auth/cloud-platform",
                        "aud": "https://oauth2.googleapis.com/token"});
    let (status, body) = token(&mocks, &claims).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = token(&mocks, &json!({"iss": "x"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
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
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
            Endpoint::GenerateContent,
            Endpoint::GenerateContent
        ]
    );
    assert_eq!(rec[2].model.as_deref(), Some("gemini-3.1-flash-lite-image"));
    assert_eq!(rec[2].images, vec![image.clone()]);
    assert!(rec[2].output_image.is_some() && rec[3].output_image.is_some());
    assert!(rec[4].rejected.is_some() && rec[5].rejected.is_some());
    mocks.shutdown().await;
}
