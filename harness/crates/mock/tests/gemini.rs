//! The Gemini mock over TLS: generateContent in both spellings, SSE streaming, the Files API,
//! validation, auth and scripted behaviours.

mod common;

use common::*;
use serde_json::{Value, json};
use traceless_mock::{Behaviour, Endpoint, MockOptions, Mocks, Provider};

const KEY: &str = "AIzaTestKey0000000000000000000000000";
const MODEL: &str = "gemini-2.5-flash-image";

async fn start_keyed() -> Mocks {
    start_with(MockOptions {
        gemini_key: KEY.into(),
        ..Default::default()
    })
    .await
}

fn request(image: &[u8], snake: bool) -> Value {
    if snake {
        json!({"contents": [{"role": "user", "parts": [
            {"text": "put this person on a beach"},
            {"inline_data": {"mime_type": "image/png", "data": b64(image)}}]}],
          "generation_config": {"response_modalities": ["TEXT", "IMAGE"]}})
    } else {
        json!({"contents": [{"role": "user", "parts": [
            {"text": "put this person on a beach"},
            {"inlineData": {"mimeType": "image/png", "data": b64(image)}}]}],
          "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "1:1"}}})
    }
}

async fn generate(
    mocks: &Mocks,
    path: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, String) {
    let res = client(mocks)
        .post(format!("{}{path}", mocks.gemini_url()))
        .header("x-goog-api-key", KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

fn image_of(response: &Value) -> Vec<u8> {
    let parts = response["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    let data = parts
        .iter()
        .find_map(|p| p["inlineData"]["data"].as_str())
        .expect("an inlineData part");
    unb64(data)
}

#[tokio::test]
async fn generate_content_accepts_both_spellings_and_answers_the_real_shape() {
    let mocks = start_keyed().await;
    let input = png(40, 30);
    for (snake, path) in [
        (false, format!("/v1beta/models/{MODEL}:generateContent")),
        (true, format!("/v1/models/{MODEL}:generateContent")),
    ] {
        let (status, headers, text) = generate(&mocks, &path, &request(&input, snake)).await;
        assert_eq!(status, 200, "{text}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        let cand = &body["candidates"][0];
        assert_eq!(cand["finishReason"], "STOP");
        assert_eq!(cand["content"]["role"], "model");
        assert!(cand["content"]["parts"][0]["text"].is_string());
        assert_eq!(
            cand["content"]["parts"][1]["inlineData"]["mimeType"],
            "image/png"
        );
        assert!(is_png(&image_of(&body)));
        assert_eq!(body["modelVersion"], MODEL);
        assert!(body["responseId"].is_string());
        assert!(body["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
        assert!(!text.contains("inline_data"), "answers are camelCase");
    }
    // The key may also come in the query string.
    let res = client(&mocks)
        .post(format!(
            "{}/v1beta/models/{MODEL}:generateContent?key={KEY}",
            mocks.gemini_url()
        ))
        .json(&request(&input, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let rec = mocks.recorded();
    assert_eq!(rec.len(), 3);
    for r in &rec {
        assert_eq!(r.provider, Provider::Gemini);
        assert_eq!(r.endpoint, Endpoint::GenerateContent);
        assert_eq!(r.model.as_deref(), Some(MODEL));
        assert_eq!(r.images, vec![input.clone()]);
        assert_eq!(r.prompt.as_deref(), Some("put this person on a beach"));
        assert!(r.tls && r.rejected.is_none() && r.output_image.as_deref().is_some_and(is_png));
    }
    mocks.shutdown().await;
}

fn sse_chunks(text: &str) -> Vec<Value> {
    text.split("\r\n\r\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test]
async fn stream_generate_content_sends_the_image_in_its_own_chunk() {
    let mocks = start_keyed().await;
    let path = format!("/v1/models/{MODEL}:streamGenerateContent?alt=sse");
    let (status, headers, text) = generate(&mocks, &path, &request(&png(8, 8), false)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let chunks = sse_chunks(&text);
    assert_eq!(chunks.len(), 3, "{text}");
    let image_chunk = chunks
        .iter()
        .position(|c| c["candidates"][0]["content"]["parts"][0]["inlineData"].is_object())
        .expect("an image chunk");
    assert_eq!(
        chunks[image_chunk]["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        chunks.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["candidates"][0]["finishReason"].is_null())
    );
    let out = image_of(&chunks[image_chunk]);

    // Without alt=sse the stream is one JSON array.
    let path = format!("/v1beta/models/{MODEL}:streamGenerateContent");
    let (status, _, text) = generate(&mocks, &path, &request(&png(8, 8), false)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let rec = mocks.recorded();
    assert_eq!(rec[0].endpoint, Endpoint::StreamGenerateContent);
    assert_eq!(rec[0].output_image.as_deref(), Some(&out[..]));
    mocks.shutdown().await;
}

#[tokio::test]
async fn validation_and_auth_errors_use_the_google_envelope() {
    let mocks = start_keyed().await;
    let path = format!("/v1beta/models/{MODEL}:generateContent");
    let part = |p: Value| json!({"contents": [{"role": "user", "parts": [{"text": "x"}, p]}]});
    let cases = vec![
        (
            "unknown part field",
            part(json!({"inlinedata": {}})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "bad base64",
            part(json!({"inlineData": {"mimeType": "image/png", "data": "!!!"}})),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "not an image",
            part(
                json!({"inlineData": {"mimeType": "image/png", "data": b64(b"not an image at all")}}),
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unsupported mime",
            part(
                json!({"inlineData": {"mimeType": "application/octet-stream", "data": b64(&png(4, 4))}}),
            ),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "no contents",
            json!({"generationConfig": {}}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unknown top-level field",
            json!({"contents": [], "user": "u"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unknown file",
            part(
                json!({"fileData": {"mimeType": "image/png", "fileUri": "https://host/v1beta/files/nope"}}),
            ),
            403,
            "PERMISSION_DENIED",
        ),
    ];
    let count = cases.len();
    for (what, body, code, status_name) in cases {
        let (status, _, text) = generate(&mocks, &path, &body).await;
        assert_eq!(status, code, "{what}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], code, "{what}");
        assert_eq!(body["error"]["status"], status_name, "{what}");
        assert!(body["error"]["message"].is_string());
    }
    let (status, _, text) = generate(
        &mocks,
        "/v1beta/models/gemini-9-ultra:generateContent",
        &request(&png(4, 4), false),
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("is not found for API version v1beta"));

    let res = client(&mocks)
        .post(format!("{}{path}", mocks.gemini_url()))
        .header("x-goog-api-key", "AIzaWrong")
        .json(&request(&png(4, 4), false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");
    let res = client(&mocks)
        .post(format!("{}{path}", mocks.gemini_url()))
        .json(&request(&png(4, 4), false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let rec = mocks.recorded();
    assert_eq!(rec.len(), count + 3);
    assert!(
        rec.iter()
            .all(|r| r.rejected.is_some() && r.output_image.is_none())
    );
    // The unsupported blob was still an image the request carried.
    assert_eq!(rec[3].images.len(), 1);
    mocks.shutdown().await;
}

#[tokio::test]
async fn scripted_behaviours() {
    let mocks = start_keyed().await;
    mocks.set_behaviour(
        Provider::Gemini,
        vec![
            Behaviour::RateLimited { retry_after_s: 9 },
            Behaviour::ServerError,
            Behaviour::Unavailable,
            Behaviour::SafetyBlock,
            Behaviour::SafetyBlockImage,
            Behaviour::Malformed,
            Behaviour::Ok,
        ],
    );
    let path = format!("/v1beta/models/{MODEL}:generateContent");
    let body = request(&png(8, 8), false);

    let (status, headers, text) = generate(&mocks, &path, &body).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "9");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");
    let types: Vec<&str> = err["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["@type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"type.googleapis.com/google.rpc.QuotaFailure"));
    let retry = err["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["retryDelay"].is_string())
        .unwrap();
    assert_eq!(retry["retryDelay"], "9s");

    let (status, _, text) = generate(&mocks, &path, &body).await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap()["error"]["status"].clone()
        ),
        (500, json!("INTERNAL"))
    );
    let (status, _, text) = generate(&mocks, &path, &body).await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap()["error"]["status"].clone()
        ),
        (503, json!("UNAVAILABLE"))
    );

    let (status, _, text) = generate(&mocks, &path, &body).await;
    assert_eq!(status, 200);
    let blocked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        blocked["promptFeedback"]["blockReason"],
        "PROHIBITED_CONTENT"
    );
    assert!(blocked.get("candidates").is_none());

    let (status, _, text) = generate(&mocks, &path, &body).await;
    assert_eq!(status, 200);
    let blocked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(blocked["candidates"][0]["finishReason"], "IMAGE_SAFETY");
    assert!(!text.contains("inlineData"));

    let (status, _, text) = generate(&mocks, &path, &body).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&text).is_err());

    let (status, _, _) = generate(&mocks, &path, &body).await;
    assert_eq!(status, 200);

    let rec = mocks.recorded();
    let outputs: Vec<bool> = rec.iter().map(|r| r.output_image.is_some()).collect();
    assert_eq!(outputs, vec![false, false, false, false, false, true, true]);
    assert_eq!(rec[4].behaviour, Behaviour::SafetyBlockImage);
    mocks.shutdown().await;
}

#[tokio::test]
async fn files_api_resumable_upload_get_delete_and_use() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let image = png(12, 12);
    let res = http
        .post(format!("{}/upload/v1beta/files", mocks.gemini_url()))
        .header("x-goog-api-key", KEY)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header(
            "x-goog-upload-header-content-length",
            image.len().to_string(),
        )
        .header("x-goog-upload-header-content-type", "image/png")
        .json(&json!({"file": {"display_name": "face"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let upload_url = res.headers()["x-goog-upload-url"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(upload_url.starts_with(&format!(
        "{}/upload/v1beta/files?upload_id=",
        mocks.gemini_url()
    )));

    let res = http
        .post(&upload_url)
        .header("x-goog-upload-command", "upload, finalize")
        .header("x-goog-upload-offset", "0")
        .body(image.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-goog-upload-status"], "final");
    let file: Value = res.json().await.unwrap();
    let file = &file["file"];
    assert_eq!(file["mimeType"], "image/png");
    assert_eq!(file["sizeBytes"], image.len().to_string());
    assert_eq!(file["state"], "ACTIVE");
    assert_eq!(file["displayName"], "face");
    let name = file["name"].as_str().unwrap().to_owned();
    let uri = file["uri"].as_str().unwrap().to_owned();

    let with_file = json!({"contents": [{"parts": [{"text": "edit"},
        {"file_data": {"mime_type": "image/png", "file_uri": uri}}]}]});
    let (status, _, text) = generate(
        &mocks,
        &format!("/v1beta/models/{MODEL}:generateContent"),
        &with_file,
    )
    .await;
    assert_eq!(status, 200, "{text}");

    let url = format!("{}/v1beta/{name}", mocks.gemini_url());
    let got: Value = http
        .get(&url)
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], name.as_str());
    let res = http
        .delete(&url)
        .header("x-goog-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        http.get(&url)
            .header("x-goog-api-key", KEY)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let rec = mocks.recorded();
    let endpoints: Vec<Endpoint> = rec.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        vec![
            Endpoint::FilesUpload,
            Endpoint::FilesUpload,
            Endpoint::GenerateContent,
            Endpoint::FilesGet,
            Endpoint::FilesDelete,
            Endpoint::FilesGet
        ]
    );
    assert_eq!(rec[1].images, vec![image]);
    mocks.shutdown().await;
}
