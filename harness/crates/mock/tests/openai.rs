//! The OpenAI mock over TLS: every endpoint, validation rejections, auth, and scripted behaviours.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use reqwest::multipart::Form;
use serde_json::{Value, json};
use traceless_mock::{Behaviour, Endpoint, Provider};

#[tokio::test]
async fn images_edit_multipart_answers_a_fresh_png_and_records_everything() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let input = png(48, 32);
    let form = Form::new()
        .part("image", part(input.clone(), "face.png", "image/png"))
        .text("prompt", "make it a watercolour tlp-0123456789ab")
        .text("model", "gpt-image-2.5-sunburst")
        .text("n", "1")
        .text("size", "1024x1024")
        .text("quality", "low")
        .text("user", "user-42");
    let res = http
        .post(format!("{}/v1/images/edits", mocks.openai_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(res.headers().get("openai-version").unwrap(), "2020-10-01");
    assert!(res.headers().contains_key("openai-processing-ms"));
    let body: Value = res.json().await.unwrap();
    let out = unb64(body["data"][0]["b64_json"].as_str().unwrap());
    assert!(is_png(&out));
    assert_eq!(body["quality"], "low");
    assert_eq!(body["output_format"], "png");
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let rec = mocks.recorded();
    assert_eq!(rec.len(), 1);
    let r = &rec[0];
    assert_eq!(r.provider, Provider::OpenAi);
    assert!(r.tls);
    assert_eq!(r.endpoint, Endpoint::ImagesEdits);
    assert_eq!(r.images, vec![input]);
    assert_eq!(
        r.prompt.as_deref(),
        Some("make it a watercolour tlp-0123456789ab")
    );
    assert_eq!(r.user.as_deref(), Some("user-42"));
    assert_eq!(r.model.as_deref(), Some("gpt-image-2.5-sunburst"));
    assert_eq!(r.rejected, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.output_image.as_deref(), Some(&out[..]));
    mocks.shutdown().await;
}

const KEY: &str = "sk-proj-test-key-0001";

async fn start_keyed() -> traceless_mock::Mocks {
    start_with(traceless_mock::MockOptions {
        openai_key: KEY.into(),
        ..Default::default()
    })
    .await
}

async fn post_edit(mocks: &traceless_mock::Mocks, form: Form) -> (u16, Value) {
    let res = client(mocks)
        .post(format!("{}/v1/images/edits", mocks.openai_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn several_image_parts_and_json_edits_are_all_recorded() {
    let mocks = start_keyed().await;
    let (a, b) = (png(16, 16), jpeg(16, 16));
    let form = Form::new()
        .part("image[]", part(a.clone(), "a.png", "image/png"))
        .part("image[]", part(b.clone(), "b.jpg", "image/jpeg"))
        .text("prompt", "combine");
    let (status, _) = post_edit(&mocks, form).await;
    assert_eq!(status, 200);

    let c = png(20, 20);
    let res = client(&mocks)
        .post(format!("{}/v1/images/edits", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(
            &json!({"model": "gpt-image-2.5-sunburst", "prompt": "json edit",
                      "images": [{"image_url": format!("data:image/png;base64,{}", b64(&c))}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rec = mocks.recorded();
    assert_eq!(rec[0].images, vec![a, b]);
    assert_eq!(rec[1].images, vec![c]);
    assert_eq!(rec[1].endpoint, Endpoint::ImagesEdits);
    mocks.shutdown().await;
}

#[tokio::test]
async fn edit_validation_rejects_what_the_real_api_rejects() {
    let mocks = start_keyed().await;
    let ok_image = || part(png(8, 8), "a.png", "image/png");
    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "missing prompt",
            Form::new().part("image", ok_image()),
            "missing_required_parameter",
        ),
        (
            "missing image",
            Form::new().text("prompt", "x"),
            "missing_required_parameter",
        ),
        (
            "unknown model",
            Form::new()
                .part("image", ok_image())
                .text("prompt", "x")
                .text("model", "gpt-9"),
            "invalid_value",
        ),
        (
            "prompt too long",
            Form::new()
                .part("image", ok_image())
                .text("prompt", "x".repeat(32_001)),
            "string_above_max_length",
        ),
        (
            "not an image",
            Form::new()
                .part(
                    "image",
                    part(b"not-an-image".to_vec(), "a.png", "image/png"),
                )
                .text("prompt", "x"),
            "invalid_image_file",
        ),
        (
            "truncated png",
            Form::new()
                .part(
                    "image",
                    part(png(32, 32)[..100].to_vec(), "a.png", "image/png"),
                )
                .text("prompt", "x"),
            "invalid_image_file",
        ),
        (
            "octet-stream part",
            Form::new()
                .part("image", part(png(8, 8), "a", "application/octet-stream"))
                .text("prompt", "x"),
            "unsupported_file_mimetype",
        ),
        (
            "n too large",
            Form::new()
                .part("image", ok_image())
                .text("prompt", "x")
                .text("n", "11"),
            "integer_above_max_value",
        ),
        (
            "bad size",
            Form::new()
                .part("image", ok_image())
                .text("prompt", "x")
                .text("size", "999x999"),
            "invalid_value",
        ),
        (
            "unknown field",
            Form::new()
                .part("image", ok_image())
                .text("prompt", "x")
                .text("device_id", "d"),
            "unknown_parameter",
        ),
        (
            "response_format on gpt-image",
            Form::new()
                .part("image", ok_image())
                .text("prompt", "x")
                .text("model", "gpt-image-2.5-sunburst")
                .text("response_format", "b64_json"),
            "unknown_parameter",
        ),
    ];
    let count = cases.len();
    for (what, form, code) in cases {
        let (status, body) = post_edit(&mocks, form).await;
        assert_eq!(status, 400, "{what}: {body}");
        let err = &body["error"];
        assert_eq!(err["code"], code, "{what}: {body}");
        for key in ["message", "type", "param", "code"] {
            assert!(err.get(key).is_some(), "{what}: {key} missing in {body}");
        }
    }
    let rec = mocks.recorded();
    assert_eq!(rec.len(), count);
    assert!(
        rec.iter()
            .all(|r| r.rejected.is_some() && r.status == 400 && r.output_image.is_none())
    );
    // The unreadable image was still recorded: it is what the client sent.
    assert_eq!(rec[4].images, vec![b"not-an-image".to_vec()]);
    mocks.shutdown().await;
}

#[tokio::test]
async fn auth_failures_answer_401_in_the_real_envelope() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let res = http
        .get(format!("{}/v1/models", mocks.openai_url()))
        .bearer_auth("sk-wrong-key-abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Incorrect API key provided")
    );
    let res = http
        .get(format!("{}/v1/models", mocks.openai_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let rec = mocks.recorded();
    assert!(rec.iter().all(|r| r.status == 401 && r.rejected.is_some()));
    mocks.shutdown().await;
}

#[tokio::test]
async fn generations_and_models() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let res = http
        .post(format!("{}/v1/images/generations", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "gpt-image-2.5-sunburst", "prompt": "a red circle", "user": "u-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(is_png(&unb64(
        body["data"][0]["b64_json"].as_str().unwrap()
    )));

    let res = http
        .get(format!("{}/v1/models", mocks.openai_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"gpt-image-2.5-sunburst"));
    assert_eq!(body["object"], "list");
    let rec = mocks.recorded();
    assert_eq!(rec[0].endpoint, Endpoint::ImagesGenerations);
    assert_eq!(rec[0].user.as_deref(), Some("u-1"));
    assert_eq!(rec[1].endpoint, Endpoint::Models);
    mocks.shutdown().await;
}

#[tokio::test]
async fn responses_image_generation_call_and_store_as_sent() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let input = png(24, 24);
    let request = |store: Option<bool>| {
        let mut body = json!({
            "model": "gpt-5",
            "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "turn this into a sketch"},
                {"type": "input_image", "image_url": format!("data:image/png;base64,{}", b64(&input))}
            ]}],
            "tools": [{"type": "image_generation", "quality": "low"}],
            "tool_choice": {"type": "image_generation"},
            "safety_identifier": "hashed-user"
        });
        if let Some(store) = store {
            body["store"] = json!(store);
        }
        body
    };
    for store in [None, Some(false), Some(true)] {
        let res = http
            .post(format!("{}/v1/responses", mocks.openai_url()))
            .bearer_auth(KEY)
            .json(&request(store))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["object"], "response");
        assert_eq!(body["store"], json!(store.unwrap_or(true)));
        let call = &body["output"][0];
        assert_eq!(call["type"], "image_generation_call");
        assert_eq!(call["status"], "completed");
        assert_eq!(call["action"], "edit");
        assert_eq!(call["quality"], "low");
        assert!(call["id"].as_str().unwrap().starts_with("ig_"));
        assert!(is_png(&unb64(call["result"].as_str().unwrap())));
        assert_eq!(body["tools"][0]["model"], "gpt-image-2.6-sunburst");
    }
    let rec = mocks.recorded();
    assert_eq!(
        rec.iter().map(|r| r.store).collect::<Vec<_>>(),
        vec![None, Some(false), Some(true)]
    );
    for r in &rec {
        assert_eq!(r.endpoint, Endpoint::Responses);
        assert_eq!(r.images, vec![input.clone()]);
        assert_eq!(r.prompt.as_deref(), Some("turn this into a sketch"));
        assert_eq!(r.user.as_deref(), Some("hashed-user"));
        assert!(r.output_image.as_deref().is_some_and(is_png));
    }

    let res = http
        .post(format!("{}/v1/responses", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(
            &json!({"model": "gpt-5", "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:text/plain;base64,aGVsbG8="}]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http
        .post(format!("{}/v1/responses", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(&json!({"input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["param"], "model");
    mocks.shutdown().await;
}

#[tokio::test]
async fn files_upload_get_delete() {
    let mocks = start_keyed().await;
    let http = client(&mocks);
    let image = png(16, 16);
    let form = Form::new()
        .text("purpose", "vision")
        .part("file", part(image.clone(), "face.png", "image/png"));
    let res = http
        .post(format!("{}/v1/files", mocks.openai_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let file: Value = res.json().await.unwrap();
    assert_eq!(file["object"], "file");
    assert_eq!(file["bytes"], image.len());
    assert_eq!(file["filename"], "face.png");
    let id = file["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("file-"));

    let url = format!("{}/v1/files/{id}", mocks.openai_url());
    let got: Value = http
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], id);
    let deleted: Value = http
        .delete(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["deleted"], true);
    assert_eq!(
        http.get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let rec = mocks.recorded();
    let endpoints: Vec<Endpoint> = rec.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        vec![
            Endpoint::Files,
            Endpoint::FilesGet,
            Endpoint::FilesDelete,
            Endpoint::FilesGet
        ]
    );
    assert_eq!(rec[0].images, vec![image]);
    mocks.shutdown().await;
}

async fn edit_once(mocks: &traceless_mock::Mocks) -> reqwest::Response {
    client(mocks)
        .post(format!("{}/v1/images/edits", mocks.openai_url()))
        .bearer_auth(KEY)
        .multipart(
            Form::new()
                .part("image", part(png(8, 8), "a.png", "image/png"))
                .text("prompt", "x"),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn scripted_behaviours_in_order_the_last_repeating() {
    let mocks = start_keyed().await;
    mocks.set_behaviour(
        Provider::OpenAi,
        vec![
            Behaviour::RateLimited { retry_after_s: 7 },
            Behaviour::ServerError,
            Behaviour::Unavailable,
            Behaviour::SafetyBlock,
            Behaviour::Malformed,
            Behaviour::Ok,
        ],
    );
    let res = edit_once(&mocks).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers().get("retry-after").unwrap(), "7");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");

    let res = edit_once(&mocks).await;
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error");

    assert_eq!(edit_once(&mocks).await.status(), 503);

    let res = edit_once(&mocks).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "moderation_blocked");
    assert_eq!(body["error"]["type"], "image_generation_user_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected by the safety system")
    );

    let res = edit_once(&mocks).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "malformed body parsed: {text}"
    );

    for _ in 0..2 {
        assert_eq!(edit_once(&mocks).await.status(), 200);
    }
    // Models and files are not scripted.
    mocks.set_behaviour(Provider::OpenAi, vec![Behaviour::ServerError]);
    let res = client(&mocks)
        .get(format!("{}/v1/models", mocks.openai_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let rec = mocks.recorded();
    let seen: Vec<(String, u16)> = rec
        .iter()
        .map(|r| (r.behaviour.to_string(), r.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("429:7".into(), 429),
            ("500".into(), 500),
            ("503".into(), 503),
            ("safety-block".into(), 400),
            ("malformed".into(), 200),
            ("ok".into(), 200),
            ("ok".into(), 200),
            ("ok".into(), 200),
        ]
    );
    assert!(rec.iter().map(|r| r.seq).eq(0..rec.len() as u64));
    mocks.shutdown().await;
}

#[tokio::test]
async fn slow_answers_after_the_delay_and_timeout_holds_until_shutdown() {
    let mocks = start_with(traceless_mock::MockOptions {
        openai_key: KEY.into(),
        timeout_hold: Duration::from_secs(600),
        ..Default::default()
    })
    .await;
    mocks.set_behaviour(
        Provider::OpenAi,
        vec![Behaviour::Slow { delay_ms: 400 }, Behaviour::Timeout],
    );
    let started = Instant::now();
    assert_eq!(edit_once(&mocks).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    let held = client_with_timeout(&mocks, Duration::from_secs(120))
        .post(format!("{}/v1/images/edits", mocks.openai_url()))
        .bearer_auth(KEY)
        .multipart(
            Form::new()
                .part("image", part(png(8, 8), "a.png", "image/png"))
                .text("prompt", "x"),
        )
        .send();
    let held = tokio::spawn(held);
    let recorded_both = || mocks.recorded().len() == 2;
    wait_for(
        "the held request to be recorded",
        Duration::from_secs(10),
        recorded_both,
    )
    .await;
    assert!(!held.is_finished(), "the timeout behaviour answered early");
    assert_eq!(mocks.recorded()[1].behaviour, Behaviour::Timeout);

    let shutdown_started = Instant::now();
    mocks.shutdown().await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("shutdown released the held request")
        .unwrap();
    assert!(
        outcome.is_err(),
        "a held request got an answer: {outcome:?}"
    );
    assert!(shutdown_started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn output_side_sets_the_answer_size_and_forgotten_recordings_are_gone() {
    let mocks = start_with(traceless_mock::MockOptions {
        openai_key: KEY.into(),
        output_side: 1024,
        ..Default::default()
    })
    .await;
    let edit = || {
        Form::new()
            .part("image", part(png(8, 8), "a.png", "image/png"))
            .text("prompt", "bigger")
    };
    let (status, body) = post_edit(&mocks, edit()).await;
    assert_eq!(status, 200, "{body}");
    let out = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    let img = image::load_from_memory(&out).unwrap();
    assert_eq!((img.width(), img.height()), (1024, 1024));
    assert_eq!(mocks.recorded().len(), 1);

    mocks.forget_recorded();
    assert!(mocks.recorded().is_empty());
    let (status, _) = post_edit(&mocks, edit()).await;
    assert_eq!(status, 200);
    let rec = mocks.recorded();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].seq, 0);
    assert_eq!(rec[0].prompt.as_deref(), Some("bigger"));
    mocks.shutdown().await;
}
