//! Azure OpenAI on the OpenAI mock: `/openai/deployments/{d}/...?api-version=...` and
//! `/openai/v1/...`, with the `api-key` header, recorded like any OpenAI call.

mod common;

use common::*;
use reqwest::multipart::Form;
use serde_json::{Value, json};
use traceless_mock::{Endpoint, MockOptions, Mocks};

const KEY: &str = "azure-test-key-0000000000000000";

async fn start_keyed() -> Mocks {
    start_with(MockOptions {
        openai_key: KEY.into(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn deployment_and_v1_paths_answer_with_the_api_key_header() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let input = png(40, 24);
    let edit = |key: &'static str, query: &'static str| {
        let form = Form::new()
            .part("image", part(input.clone(), "face.png", "image/png"))
            .text("prompt", "a watercolour tlp-azure0000001");
        http.post(format!(
            "{}/openai/deployments/team-images/images/edits{query}",
            mocks.openai_url()
        ))
        .header("api-key", key)
        .multipart(form)
        .send()
    };
    let res = edit(KEY, "?api-version=2025-04-01-preview").await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(is_png(&unb64(
        body["data"][0]["b64_json"].as_str().unwrap()
    )));
    // Azure's answers to a call without api-version, and to a wrong key.
    let res = edit(KEY, "").await.unwrap();
    assert_eq!(res.status(), 404);
    let res = edit("wrong-key", "?api-version=2025-04-01-preview")
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Access denied")
    );

    // The v1 path takes deployment names as models, with a bearer key too.
    let res = http
        .post(format!("{}/openai/v1/responses", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "team-gpt", "input": "hello", "tools": [{"type": "image_generation"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The plain OpenAI path still refuses a name that is no model.
    let res = http
        .post(format!("{}/v1/responses", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "team-gpt", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let rec = mocks.recorded();
    assert_eq!(rec[0].endpoint, Endpoint::ImagesEdits);
    assert_eq!(rec[0].model.as_deref(), Some("team-images"));
    assert_eq!(rec[0].images, vec![input.clone()]);
    assert!(rec[0].output_image.is_some());
    assert_eq!(rec[1].status, 404);
    assert_eq!(rec[2].status, 401);
    assert_eq!(rec[3].endpoint, Endpoint::Responses);
    assert_eq!(rec[3].model.as_deref(), Some("team-gpt"));
    assert!(rec[3].output_image.is_some());
    mocks.shutdown().await;
}
