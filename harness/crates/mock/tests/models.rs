//! Models by family pattern: current names accepted, retired ones answered as the providers answer
//! them today, every list replaceable, and the model of every call recorded.

mod common;

use common::*;
use serde_json::{Value, json};
use traceless_mock::{MockOptions, Mocks, ModelRules};

const OPENAI_KEY: &str = "sk-proj-models-test-0001";
const GEMINI_KEY: &str = "AIzaModelsTest00000000000000000000000";

async fn start_rules(models: ModelRules) -> Mocks {
    start_with(MockOptions {
        openai_key: OPENAI_KEY.into(),
        gemini_key: GEMINI_KEY.into(),
        models,
        ..Default::default()
    })
    .await
}

async fn openai(mocks: &Mocks, path: &str, body: Value) -> (u16, Value) {
    let res = client(mocks)
        .post(format!("{}{path}", mocks.openai_url()))
        .bearer_auth(OPENAI_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn gemini(mocks: &Mocks, model: &str) -> (u16, Value) {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "a lighthouse"}]}]});
    let res = client(mocks)
        .post(format!(
            "{}/v1beta/models/{model}:generateContent",
            mocks.gemini_url()
        ))
        .header("x-goog-api-key", GEMINI_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// (model, status, error code) for an Images generation with that model.
async fn check_images(mocks: &Mocks, cases: &[(&str, u16, Option<&str>)]) {
    for (model, status, code) in cases {
        let (got, body) = openai(
            mocks,
            "/v1/images/generations",
            json!({"model": model, "prompt": "a lighthouse"}),
        )
        .await;
        assert_eq!(got, *status, "{model}: {body}");
        assert_eq!(body["error"]["code"].as_str(), *code, "{model}: {body}");
    }
}

async fn check_responses(mocks: &Mocks, cases: &[(&str, u16)]) {
    for (model, status) in cases {
        let (got, body) = openai(
            mocks,
            "/v1/responses",
            json!({"model": model, "input": "hello", "tools": [{"type": "image_generation"}]}),
        )
        .await;
        assert_eq!(got, *status, "{model}: {body}");
    }
}

async fn check_gemini(mocks: &Mocks, cases: &[(&str, u16, bool)]) {
    for (model, status, image) in cases {
        let (got, body) = gemini(mocks, model).await;
        assert_eq!(got, *status, "{model}: {body}");
        let has_image = body["candidates"][0]["content"]["parts"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|p| p.get("inlineData").is_some()));
        assert_eq!(has_image, *image, "{model}: {body}");
    }
}

#[tokio::test]
async fn current_families_pass_and_retired_models_get_todays_answer() {
    let mocks = start_rules(ModelRules::default()).await;
    check_images(
        &mocks,
        &[
            ("gpt-image-2.5-sunburst", 200, None),
            ("gpt-image-2.5-flare", 200, None),
            ("gpt-image-2.6-sunburst", 200, None),
            ("gpt-image-2.5-flare-2026-09-08", 200, None),
            ("gpt-image-1-mini", 200, None),
            ("chatgpt-image-latest", 200, None),
            ("gpt-image-1", 404, Some("model_not_found")),
            ("dall-e-2", 404, Some("model_not_found")),
            ("dall-e-3", 404, Some("model_not_found")),
            ("gpt-5.5", 400, Some("invalid_value")),
        ],
    )
    .await;
    let (_, body) = openai(
        &mocks,
        "/v1/images/generations",
        json!({"model": "gpt-image-1", "prompt": "x"}),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has been deprecated"),
        "{body}"
    );
    check_responses(
        &mocks,
        &[
            ("gpt-5.5", 200),
            ("gpt-5.2", 200),
            ("gpt-5.6-sol", 200),
            ("gpt-6-luna", 200),
            ("gpt-6.2-astra", 200),
            ("gpt-image-2.5-sunburst", 400),
            ("claude-9", 400),
        ],
    )
    .await;
    check_gemini(
        &mocks,
        &[
            ("gemini-3.1-flash-lite-image", 200, true),
            ("gemini-3-pro-image", 200, true),
            ("gemini-2.5-flash-image", 200, true),
            ("gemini-2.5-flash", 200, false),
            ("gemini-2.5-flash-image-preview", 404, false),
            ("gemini-2.0-flash-preview-image-generation", 404, false),
            ("gemini-9-ultra", 404, false),
        ],
    )
    .await;

    // The model of every call is recorded, refused calls included.
    let rec = mocks.recorded();
    let models: Vec<&str> = rec.iter().filter_map(|r| r.model.as_deref()).collect();
    assert_eq!(models.len(), rec.len(), "a call without its model: {rec:?}");
    assert!(models.contains(&"gpt-image-1"));
    assert!(models.contains(&"gemini-3.1-flash-lite-image"));
    mocks.shutdown().await;
}

#[tokio::test]
async fn every_list_can_be_replaced() {
    let mocks = start_rules(ModelRules {
        openai_image: vec!["gpt-image-9*".into()],
        openai_responses: vec!["gpt-7*".into()],
        openai_retired: vec!["gpt-image-9-old".into()],
        gemini_image: vec!["gemini-9-*".into()],
        gemini_text: vec![],
        gemini_retired: vec!["gemini-9-gone".into()],
    })
    .await;
    check_images(
        &mocks,
        &[
            ("gpt-image-9", 200, None),
            ("gpt-image-9-old", 404, Some("model_not_found")),
            ("gpt-image-2.5-sunburst", 400, Some("invalid_value")),
            // No longer retired once the list says so; still not an accepted family.
            ("gpt-image-1", 400, Some("invalid_value")),
        ],
    )
    .await;
    check_responses(&mocks, &[("gpt-7", 200), ("gpt-5.5", 400)]).await;
    check_gemini(
        &mocks,
        &[
            ("gemini-9-ultra", 200, true),
            ("gemini-9-gone", 404, false),
            ("gemini-2.5-flash", 404, false),
        ],
    )
    .await;
    mocks.shutdown().await;
}
