//! Vertex AI on the Gemini mock: the run's service account's signed assertion exchanged at the
//! mocked token endpoint (no other key gets a token), then publisher-model paths with that bearer
//! token, recorded like Gemini calls; and the Interactions API under
//! `/{version}/projects/{p}/locations/{l}/interactions`, where google-genai 3.6.1 sends it, its
//! `background` interactions polled to their end or cancelled there as on the Gemini API.

mod common;

use base64::Engine as _;
use common::*;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use serde_json::{Value, json};
use traceless_mock::{Endpoint, MockOptions, Mocks};

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
    let path = format!("{MODEL_PATH}:{method}");
    call(
        mocks,
        reqwest::Method::POST,
        &path,
        (bearer, None),
        Some(&body),
    )
    .await
}

/// One call on the Gemini mock, with a bearer token or an API key (or neither): status and body.
async fn call(
    mocks: &Mocks,
    method: reqwest::Method,
    path: &str,
    (bearer, key): (Option<&str>, Option<&str>),
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = client(mocks).request(method, format!("{}{path}", mocks.gemini_url()));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(key) = key {
        req = req.header("x-goog-api-key", key);
    }
    if let Some(body) = body {
        req = req.json(body);
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

/// A Vertex AI access token from the mocked token endpoint, for the run's service account.
async fn access_token(mocks: &Mocks) -> String {
    let account: Value = serde_json::from_str(&mocks.service_account_json().unwrap()).unwrap();
    let claims = json!({"iss": account["client_email"],
                        "scope": "https://www.googleapis.com/auth/cloud-platform",
                        "aud": "https://oauth2.googleapis.com/token",
                        "iat": now(), "exp": now() + 3600});
    let (status, body) = token(mocks, &account, &claims).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// One Interactions API call: status and the JSON answer.
async fn interactions_call(
    mocks: &Mocks,
    method: reqwest::Method,
    path: &str,
    credential: (Option<&str>, Option<&str>),
    body: Option<&Value>,
) -> (u16, Value) {
    let (status, text) = call(mocks, method, path, credential, body).await;
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn interactions_on_vertex_paths_are_created_retrieved_cancelled_and_deleted_per_project() {
    const KEY: &str = "AIzaVertexTestKey00000000000000000000";
    let mocks = start_with(MockOptions {
        gemini_key: KEY.into(),
        ..Default::default()
    })
    .await;
    let access = access_token(&mocks).await;
    let bearer = (Some(access.as_str()), None);
    let base = "/v1beta1/projects/audit-project/locations/us-central1/interactions";
    let image = png(24, 24);
    let body = json!({"model": "gemini-3.1-flash-lite-image",
                      "input": [{"type": "image", "mime_type": "image/png", "data": b64(&image)},
                                {"type": "text", "text": "vertex interaction"}]});
    use reqwest::Method;
    let (status, made) = interactions_call(&mocks, Method::POST, base, bearer, Some(&body)).await;
    assert_eq!(status, 200, "{made}");
    let id = made["id"].as_str().unwrap();
    let one = format!("{base}/{id}");

    let (status, got) = interactions_call(&mocks, Method::GET, &one, bearer, None).await;
    assert_eq!((status, &got), (200, &made));
    // A cancel, where google-genai sends it on Vertex AI: the finished interaction as it is; in
    // another project there is none to cancel.
    let cancel = format!("{one}/cancel");
    let (status, got) = interactions_call(&mocks, Method::POST, &cancel, bearer, None).await;
    assert_eq!((status, &got), (200, &made));
    let elsewhere =
        format!("/v1beta1/projects/other-project/locations/us-central1/interactions/{id}/cancel");
    let (status, _) = interactions_call(&mocks, Method::POST, &elsewhere, bearer, None).await;
    assert_eq!(status, 404);
    // Another project, or the Gemini API, holds no such interaction.
    let elsewhere =
        format!("/v1beta1/projects/other-project/locations/us-central1/interactions/{id}");
    let (status, _) = interactions_call(&mocks, Method::GET, &elsewhere, bearer, None).await;
    assert_eq!(status, 404);
    let gemini_api = format!("/v1beta/interactions/{id}");
    let keyed = (None, Some(KEY));
    let (status, _) = interactions_call(&mocks, Method::GET, &gemini_api, keyed, None).await;
    assert_eq!(status, 404);
    // No token: 401 in the Interactions API's envelope.
    let (status, err) = interactions_call(&mocks, Method::GET, &one, (None, None), None).await;
    assert_eq!(
        (status, &err["error"]["code"]),
        (401, &json!("authentication"))
    );

    let (status, _) = interactions_call(&mocks, Method::DELETE, &one, bearer, None).await;
    assert_eq!(status, 200);
    let (status, err) = interactions_call(&mocks, Method::GET, &one, bearer, None).await;
    assert_eq!((status, &err["error"]["code"]), (404, &json!("not_found")));

    let rec = mocks.recorded();
    let seen: Vec<(Endpoint, u16)> = rec.iter().map(|r| (r.endpoint, r.status)).collect();
    assert_eq!(
        seen,
        [
            (Endpoint::OAuthToken, 200),
            (Endpoint::Interactions, 200),
            (Endpoint::InteractionsGet, 200),
            (Endpoint::InteractionsCancel, 200),
            (Endpoint::InteractionsCancel, 404),
            (Endpoint::InteractionsGet, 404),
            (Endpoint::InteractionsGet, 404),
            (Endpoint::InteractionsGet, 401),
            (Endpoint::InteractionsDelete, 200),
            (Endpoint::InteractionsGet, 404)
        ]
    );
    assert_eq!(rec[1].images, vec![image]);
    assert_eq!(rec[1].prompt.as_deref(), Some("vertex interaction"));
}

#[tokio::test]
async fn background_interactions_on_vertex_paths_are_polled_to_completion_or_cancelled() {
    let mocks = start().await;
    let access = access_token(&mocks).await;
    let bearer = (Some(access.as_str()), None);
    let base = "/v1beta1/projects/audit-project/locations/us-central1/interactions";
    let image = png(24, 24);
    let body = json!({"model": "gemini-3.1-flash-lite-image", "background": true,
                      "input": [{"type": "image", "mime_type": "image/png", "data": b64(&image)},
                                {"type": "text", "text": "vertex background"}]});
    use reqwest::Method;
    // Polled: in progress at the create and the first get, completed with the image at the next.
    let (status, made) = interactions_call(&mocks, Method::POST, base, bearer, Some(&body)).await;
    assert_eq!(
        (status, &made["status"]),
        (200, &json!("in_progress")),
        "{made}"
    );
    assert_eq!(made["steps"], json!([]));
    let one = format!("{base}/{}", made["id"].as_str().unwrap());
    let (status, polled) = interactions_call(&mocks, Method::GET, &one, bearer, None).await;
    assert_eq!((status, &polled), (200, &made));
    // Another project holds no such interaction, and polling there does not advance it.
    let elsewhere = one.replace("audit-project", "other-project");
    let (status, _) = interactions_call(&mocks, Method::GET, &elsewhere, bearer, None).await;
    assert_eq!(status, 404);
    let (status, done) = interactions_call(&mocks, Method::GET, &one, bearer, None).await;
    assert_eq!(
        (status, &done["status"]),
        (200, &json!("completed")),
        "{done}"
    );
    let output = done["steps"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "image")
        .map(|c| unb64(c["data"].as_str().unwrap()))
        .expect("an image");
    assert!(is_png(&output));

    // Cancelled while running: cancelled, then and after, with no output.
    let (status, second) = interactions_call(&mocks, Method::POST, base, bearer, Some(&body)).await;
    assert_eq!((status, &second["status"]), (200, &json!("in_progress")));
    let two = format!("{base}/{}", second["id"].as_str().unwrap());
    let cancel = format!("{two}/cancel");
    let (status, cancelled) = interactions_call(&mocks, Method::POST, &cancel, bearer, None).await;
    assert_eq!(
        (status, &cancelled["status"]),
        (200, &json!("cancelled")),
        "{cancelled}"
    );
    assert_eq!(cancelled["steps"], json!([]));
    let (status, got) = interactions_call(&mocks, Method::GET, &two, bearer, None).await;
    assert_eq!((status, &got), (200, &cancelled));

    let rec = mocks.recorded();
    let seen: Vec<(Endpoint, u16)> = rec.iter().map(|r| (r.endpoint, r.status)).collect();
    assert_eq!(
        seen,
        [
            (Endpoint::OAuthToken, 200),
            (Endpoint::Interactions, 200),
            (Endpoint::InteractionsGet, 200),
            (Endpoint::InteractionsGet, 404),
            (Endpoint::InteractionsGet, 200),
            (Endpoint::Interactions, 200),
            (Endpoint::InteractionsCancel, 200),
            (Endpoint::InteractionsGet, 200)
        ]
    );
    // Each create carried the upload; the image went out only on the poll that completed the
    // first, and none was made for the cancelled one.
    for r in [&rec[1], &rec[5]] {
        assert_eq!(r.images, vec![image.clone()]);
        assert_eq!(r.prompt.as_deref(), Some("vertex background"));
        assert!(r.path.starts_with(base), "{}", r.path);
    }
    let outputs: Vec<bool> = rec.iter().map(|r| r.output_image.is_some()).collect();
    assert_eq!(
        outputs,
        [false, false, false, false, true, false, false, false]
    );
    assert_eq!(rec[4].output_image.as_deref(), Some(output.as_slice()));
}
