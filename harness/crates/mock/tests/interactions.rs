//! The Gemini Interactions API over TLS: a create request with image input is recorded like
//! generateContent, answered with an image as one Interaction or as server-sent events, validated
//! and refused in the API's own envelope, and subject to scripted behaviours. A stored interaction
//! is retrieved and deleted by id, and continued through `previous_interaction_id`. A `background`
//! interaction answers `in_progress` until it has been polled, then finished; a cancel stops it.

mod common;

use common::*;
use serde_json::{Value, json};
use traceless_mock::{
    BACKGROUND_POLLS, Behaviour, Endpoint, KEPT_INTERACTIONS, MockOptions, Mocks, Provider,
};

const KEY: &str = "AIzaTestKey0000000000000000000000000";
const MODEL: &str = "gemini-3.1-flash-lite-image";
const PROMPT: &str = "put this person on a beach";

async fn start_keyed() -> Mocks {
    start_with(MockOptions {
        gemini_key: KEY.into(),
        ..Default::default()
    })
    .await
}

/// A create body as google-genai 3.6.1 sends `input=[image, text]`: one `user_input` step.
fn create(model: &str, image: &[u8], stream: bool) -> Value {
    json!({
        "model": model,
        "input": [{"type": "user_input", "content": [
            {"type": "image", "mime_type": "image/png", "data": b64(image)},
            {"type": "text", "text": PROMPT}]}],
        "response_modalities": ["image"],
        "stream": stream
    })
}

async fn post(mocks: &Mocks, key: Option<&str>, body: &Value) -> (u16, String, String) {
    let mut req = client(mocks)
        .post(format!("{}/v1beta/interactions", mocks.gemini_url()))
        .json(body);
    if let Some(key) = key {
        req = req.header("x-goog-api-key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    (status, content_type, res.text().await.unwrap())
}

/// The image content block of an Interaction's `model_output` step.
fn image_of(interaction: &Value) -> (String, Vec<u8>) {
    let steps = interaction["steps"].as_array().expect("steps");
    let block = steps
        .iter()
        .filter(|s| s["type"] == "model_output")
        .flat_map(|s| s["content"].as_array().unwrap())
        .find(|c| c["type"] == "image")
        .expect("an image content block");
    let mime = block["mime_type"].as_str().unwrap().to_owned();
    (mime, unb64(block["data"].as_str().unwrap()))
}

#[tokio::test]
async fn create_records_the_model_and_image_and_answers_an_interaction_with_an_image() {
    let mocks = start_keyed().await;
    let input = png(40, 30);
    let (status, content_type, text) = post(&mocks, Some(KEY), &create(MODEL, &input, false)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], MODEL);
    assert!(body["id"].as_str().unwrap().starts_with("v1_"));
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let (mime, image) = image_of(&body);
    assert_eq!(mime, "image/png");
    assert!(is_png(&image));

    let rec = mocks.recorded();
    assert_eq!(rec.len(), 1);
    let r = &rec[0];
    assert_eq!(
        (r.provider, r.endpoint, r.status),
        (Provider::Gemini, Endpoint::Interactions, 200)
    );
    assert_eq!(r.model.as_deref(), Some(MODEL));
    assert_eq!(r.images, vec![input]);
    assert_eq!(r.prompt.as_deref(), Some(PROMPT));
    assert_eq!(r.rejected, None);
    assert_eq!(r.store, None);
    assert_eq!(r.output_image.as_deref(), Some(image.as_slice()));
}

#[tokio::test]
async fn input_in_every_documented_shape_is_recorded() {
    let mocks = start_keyed().await;
    let (a, b) = (png(20, 20), jpeg(24, 16));
    let block =
        |img: &[u8], mime: &str| json!({"type": "image", "mime_type": mime, "data": b64(img)});
    let inputs = [
        json!("just text"),
        block(&a, "image/png"),
        json!([block(&a, "image/png"), {"type": "text", "text": "two"}, block(&b, "image/jpeg")]),
        json!([{"type": "user_input", "content": [block(&a, "image/png")]},
               {"type": "model_output", "content": [block(&b, "image/jpeg")]},
               {"type": "user_input", "content": [{"type": "text", "text": "again"}]}]),
    ];
    for input in &inputs {
        let body = json!({"model": MODEL, "input": input, "store": false});
        let (status, _, text) = post(&mocks, Some(KEY), &body).await;
        assert_eq!(status, 200, "{input}: {text}");
    }
    let rec = mocks.recorded();
    let images: Vec<_> = rec.iter().map(|r| r.images.clone()).collect();
    assert_eq!(
        images,
        vec![
            vec![],
            vec![a.clone()],
            vec![a.clone(), b.clone()],
            vec![a, b]
        ]
    );
    assert_eq!(rec[0].prompt.as_deref(), Some("just text"));
    assert!(rec.iter().all(|r| r.store == Some(false)));
}

#[tokio::test]
async fn an_unknown_or_retired_model_is_refused_404_model_not_found() {
    let mocks = start_keyed().await;
    let input = png(16, 16);
    for model in ["gemini-9-imaginary", "gemini-2.5-flash-image-preview"] {
        let (status, _, text) = post(&mocks, Some(KEY), &create(model, &input, false)).await;
        assert_eq!(status, 404, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], "model_not_found");
        assert!(body["error"]["message"].as_str().unwrap().contains(model));
    }
    // Refused, but what it carried is still evidence.
    let rec = mocks.recorded();
    assert!(rec.iter().all(|r| r.images == vec![input.clone()]));
    assert!(rec.iter().all(|r| r.rejected.is_some()));
}

#[tokio::test]
async fn malformed_requests_are_refused_400_in_the_interactions_envelope() {
    let mocks = start_keyed().await;
    let input = png(16, 16);
    let mut unknown = create(MODEL, &input, false);
    unknown["temperature"] = json!(0.5);
    let mut bad_b64 = create(MODEL, &input, false);
    bad_b64["input"][0]["content"][0]["data"] = json!("not base64 !!");
    let mut not_image = create(MODEL, &input, false);
    not_image["input"][0]["content"][0]["data"] = json!(b64(b"plain bytes, no picture"));
    let mut bad_ratio = create(MODEL, &input, false);
    bad_ratio["response_format"] = json!({"type": "image", "aspect_ratio": "7:3"});
    let text_model_image = create("gemini-2.5-flash", &input, false);
    let cases = [
        (json!({"input": "no model"}), "invalid_request"),
        (json!({"model": MODEL}), "invalid_request"),
        (unknown, "parameter_unknown"),
        (bad_b64, "invalid_request"),
        (not_image, "invalid_request"),
        (bad_ratio, "invalid_request"),
        (text_model_image, "invalid_request"),
        (
            json!({"model": MODEL, "input": [{"type": "hologram"}]}),
            "invalid_request",
        ),
    ];
    for (body, code) in &cases {
        let (status, _, text) = post(&mocks, Some(KEY), body).await;
        assert_eq!(status, 400, "{body}: {text}");
        let err: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(err["error"]["code"], *code, "{body}: {text}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let rec = mocks.recorded();
    assert_eq!(rec.len(), cases.len());
    assert!(rec.iter().all(|r| r.rejected.is_some() && r.status == 400));
}

#[tokio::test]
async fn a_refused_input_still_records_every_image_it_carried() {
    let mocks = start_keyed().await;
    let input = png(16, 16);
    let image = json!({"type": "image", "mime_type": "image/png", "data": b64(&input)});
    for list in [
        json!([42, image]),
        json!([{"type": "user_input", "content": ["x", image]}]),
    ] {
        let (status, _, text) =
            post(&mocks, Some(KEY), &json!({"model": MODEL, "input": list})).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("expected an object"), "{text}");
    }
    let rec = mocks.recorded();
    assert!(
        rec.iter()
            .all(|r| r.images == vec![input.clone()] && r.rejected.is_some())
    );
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_refused_401_authentication_but_recorded() {
    let mocks = start_keyed().await;
    let input = png(16, 16);
    for key in [None, Some("AIzaWrongKey000000000000000000000000")] {
        let (status, _, text) = post(&mocks, key, &create(MODEL, &input, false)).await;
        assert_eq!(status, 401, "{text}");
        let err: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(err["error"]["code"], "authentication");
    }
    // The key is also taken from the query, as for generateContent.
    let res = client(&mocks)
        .post(format!(
            "{}/v1beta/interactions?key={KEY}",
            mocks.gemini_url()
        ))
        .json(&create(MODEL, &input, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let rec = mocks.recorded();
    assert_eq!(
        rec.iter().map(|r| r.status).collect::<Vec<_>>(),
        [401, 401, 200]
    );
    assert!(rec.iter().all(|r| r.images == vec![input.clone()]));
}

#[tokio::test]
async fn scripted_behaviours_apply_as_for_generate_content() {
    let mocks = start_keyed().await;
    let input = png(16, 16);
    mocks.set_behaviour(
        Provider::Gemini,
        vec![
            Behaviour::RateLimited { retry_after_s: 7 },
            Behaviour::ServerError,
            Behaviour::SafetyBlock,
            Behaviour::Ok,
        ],
    );
    let res = client(&mocks)
        .post(format!("{}/v1beta/interactions", mocks.gemini_url()))
        .header("x-goog-api-key", KEY)
        .json(&create(MODEL, &input, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");

    let (status, _, text) = post(&mocks, Some(KEY), &create(MODEL, &input, false)).await;
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("\"api_error\""), "{text}");

    let (status, _, text) = post(&mocks, Some(KEY), &create(MODEL, &input, false)).await;
    assert_eq!(status, 200, "{text}");
    let blocked: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(blocked["status"], "failed");
    assert_eq!(blocked["errors"][0]["code"], "prohibited_content");
    assert_eq!(blocked["steps"], json!([]));

    let (status, _, text) = post(&mocks, Some(KEY), &create(MODEL, &input, false)).await;
    assert_eq!(status, 200, "{text}");
    let rec = mocks.recorded();
    let seen: Vec<_> = rec.iter().map(|r| (r.behaviour, r.status)).collect();
    assert_eq!(
        seen,
        [
            (Behaviour::RateLimited { retry_after_s: 7 }, 429),
            (Behaviour::ServerError, 500),
            (Behaviour::SafetyBlock, 200),
            (Behaviour::Ok, 200)
        ]
    );
    assert!(rec[2].output_image.is_none() && rec[3].output_image.is_some());
}

/// Splits an SSE body into (event name, data) pairs.
fn sse_events(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.to_owned();
                }
            }
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn a_streamed_create_answers_events_carrying_the_image() {
    let mocks = start_keyed().await;
    let input = png(40, 30);
    let mut body = create(MODEL, &input, true);
    body["response_format"] =
        json!({"type": "image", "aspect_ratio": "1:1", "mime_type": "image/jpeg"});
    let (status, content_type, text) = post(&mocks, Some(KEY), &body).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/event-stream");
    let events = sse_events(&text);
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last.1, "[DONE]");
    let parsed: Vec<Value> = rest
        .iter()
        .map(|(name, data)| {
            let event: Value = serde_json::from_str(data).unwrap();
            assert_eq!(event["event_type"], name.as_str());
            event
        })
        .collect();
    let names: Vec<&str> = parsed
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "interaction.created",
            "step.start",
            "step.delta",
            "step.delta",
            "step.stop",
            "interaction.completed"
        ]
    );
    assert_eq!(parsed[0]["interaction"]["status"], "in_progress");
    assert_eq!(
        parsed[0]["interaction"]["id"],
        parsed[5]["interaction"]["id"]
    );
    assert_eq!(parsed[5]["interaction"]["status"], "completed");
    let image = &parsed[3]["delta"];
    assert_eq!(
        (image["type"].as_str(), image["mime_type"].as_str()),
        (Some("image"), Some("image/jpeg"))
    );
    let image = unb64(image["data"].as_str().unwrap());
    assert!(image::load_from_memory_with_format(&image, image::ImageFormat::Jpeg).is_ok());
    let rec = mocks.recorded();
    assert_eq!(rec[0].images, vec![input]);
    assert_eq!(rec[0].output_image.as_deref(), Some(image.as_slice()));
}

/// `GET` or `DELETE` of `/{version}/interactions/{id}{query}` with the key: status and body.
async fn by_id(mocks: &Mocks, method: &str, path: &str) -> (u16, String) {
    by_id_with(mocks, method, path, Some(KEY)).await
}

async fn by_id_with(mocks: &Mocks, method: &str, path: &str, key: Option<&str>) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client(mocks).request(method, format!("{}{path}", mocks.gemini_url()));
    if let Some(key) = key {
        req = req.header("x-goog-api-key", key);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// Creates an interaction from `body` and returns it.
async fn created(mocks: &Mocks, body: &Value) -> Value {
    let (status, _, text) = post(mocks, Some(KEY), body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Creates an interaction with `store` as given (absent when None) and returns its id.
async fn created_id(mocks: &Mocks, store: Option<bool>) -> String {
    let mut body = create(MODEL, &png(16, 16), false);
    if let Some(store) = store {
        body["store"] = json!(store);
    }
    let interaction = created(mocks, &body).await;
    interaction["id"].as_str().unwrap().to_owned()
}

fn assert_not_found(status: u16, text: &str, id: &str) {
    assert_eq!(status, 404, "{text}");
    let err: Value = serde_json::from_str(text).unwrap();
    assert_eq!(err["error"]["code"], "not_found", "{text}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains(id),
        "{text}"
    );
}

#[tokio::test]
async fn a_stored_interaction_is_retrieved_until_deleted() {
    let mocks = start_keyed().await;
    let body = create(MODEL, &png(20, 20), false);
    let made = created(&mocks, &body).await;
    let id = made["id"].as_str().unwrap();

    // The same Interaction, on either version.
    for version in ["v1beta", "v1"] {
        let (status, text) = by_id(&mocks, "GET", &format!("/{version}/interactions/{id}")).await;
        assert_eq!(status, 200, "{text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got, made);
        assert!(got.get("input").is_none());
    }
    // include_input=true adds the create's input.
    let (status, text) = by_id(
        &mocks,
        "GET",
        &format!("/v1/interactions/{id}?include_input=true&stream=false"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["input"], body["input"]);
    // stream=true: the create's events again, from after last_event_id when given.
    let (status, text) = by_id(&mocks, "GET", &format!("/v1/interactions/{id}?stream=true")).await;
    assert_eq!(status, 200, "{text}");
    let names: Vec<String> = sse_events(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("interaction.created")
    );
    assert_eq!(names[names.len() - 2], "interaction.completed");
    let (_, text) = by_id(
        &mocks,
        "GET",
        &format!("/v1/interactions/{id}?stream=true&last_event_id=3"),
    )
    .await;
    let resumed: Vec<String> = sse_events(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(resumed, ["step.stop", "interaction.completed", ""]);

    let (status, text) = by_id(&mocks, "DELETE", &format!("/v1beta/interactions/{id}")).await;
    assert_eq!((status, text.as_str()), (200, "{}"));
    let (status, text) = by_id(&mocks, "GET", &format!("/v1beta/interactions/{id}")).await;
    assert_not_found(status, &text, id);
    let (status, text) = by_id(&mocks, "DELETE", &format!("/v1beta/interactions/{id}")).await;
    assert_not_found(status, &text, id);

    let rec = mocks.recorded();
    let seen: Vec<_> = rec
        .iter()
        .map(|r| (r.endpoint, r.method.as_str(), r.status))
        .collect();
    let get = Endpoint::InteractionsGet;
    let delete = Endpoint::InteractionsDelete;
    assert_eq!(
        seen,
        [
            (Endpoint::Interactions, "POST", 200),
            (get, "GET", 200),
            (get, "GET", 200),
            (get, "GET", 200),
            (get, "GET", 200),
            (get, "GET", 200),
            (delete, "DELETE", 200),
            (get, "GET", 404),
            (delete, "DELETE", 404)
        ]
    );
    // A get that answers the image again says so; nothing asked to store anything.
    assert_eq!(rec[1].output_image, rec[0].output_image);
    assert!(
        rec[1..]
            .iter()
            .all(|r| r.store.is_none() && r.rejected.is_none())
    );
}

#[tokio::test]
async fn an_unknown_id_or_one_created_with_store_false_is_404_not_found() {
    let mocks = start_keyed().await;
    let unstored = created_id(&mocks, Some(false)).await;
    let stored = created_id(&mocks, Some(true)).await;
    for id in [
        unstored.as_str(),
        "v1_NoSuchInteraction000000000000000000000000",
    ] {
        for method in ["GET", "DELETE"] {
            let (status, text) = by_id(&mocks, method, &format!("/v1beta/interactions/{id}")).await;
            assert_not_found(status, &text, id);
        }
    }
    let (status, text) = by_id(&mocks, "GET", &format!("/v1beta/interactions/{stored}")).await;
    assert_eq!(status, 200, "{text}");
    // Without the key: the Interactions API's 401, before anything is looked up.
    let path = format!("/v1beta/interactions/{stored}");
    let (status, text) = by_id_with(&mocks, "GET", &path, None).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains(r#""code":"authentication""#), "{text}");
}

#[tokio::test]
async fn previous_interaction_id_must_name_an_interaction_kept_here() {
    let mocks = start_keyed().await;
    let first = created_id(&mocks, None).await;
    let unstored = created_id(&mocks, Some(false)).await;
    let deleted = created_id(&mocks, None).await;
    let (status, _) = by_id(&mocks, "DELETE", &format!("/v1beta/interactions/{deleted}")).await;
    assert_eq!(status, 200);

    // A kept one is continued, and the answer says which.
    let mut body = create(MODEL, &png(16, 16), false);
    body["previous_interaction_id"] = json!(first);
    let (status, _, text) = post(&mocks, Some(KEY), &body).await;
    assert_eq!(status, 200, "{text}");
    let next: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(next["previous_interaction_id"], first.as_str());
    // The continuation is itself kept, and continues in turn.
    let second = next["id"].as_str().unwrap();
    let (status, text) = by_id(&mocks, "GET", &format!("/v1/interactions/{second}")).await;
    assert_eq!(status, 200, "{text}");

    let before = mocks.recorded().len();
    for id in [
        unstored.as_str(),
        deleted.as_str(),
        "v1_NoSuchInteraction000000000000000000000000",
    ] {
        body["previous_interaction_id"] = json!(id);
        let (status, _, text) = post(&mocks, Some(KEY), &body).await;
        assert_not_found(status, &text, id);
    }
    body["previous_interaction_id"] = json!(42);
    let (status, _, text) = post(&mocks, Some(KEY), &body).await;
    assert_eq!(status, 400, "{text}");
    let rec = mocks.recorded();
    assert!(
        rec[before..]
            .iter()
            .all(|r| r.rejected.is_some() && r.endpoint == Endpoint::Interactions)
    );
}

#[tokio::test]
async fn only_the_newest_interactions_are_kept() {
    let mocks = start_keyed().await;
    let mut ids = Vec::new();
    for i in 0..=KEPT_INTERACTIONS {
        let body = json!({"model": "gemini-2.5-flash", "input": format!("turn {i}")});
        let (status, _, text) = post(&mocks, Some(KEY), &body).await;
        assert_eq!(status, 200, "{text}");
        let made: Value = serde_json::from_str(&text).unwrap();
        ids.push(made["id"].as_str().unwrap().to_owned());
    }
    let (status, text) = by_id(&mocks, "GET", &format!("/v1beta/interactions/{}", ids[0])).await;
    assert_not_found(status, &text, &ids[0]);
    for id in [&ids[1], &ids[KEPT_INTERACTIONS]] {
        let (status, text) = by_id(&mocks, "GET", &format!("/v1beta/interactions/{id}")).await;
        assert_eq!(status, 200, "{text}");
    }
}

#[tokio::test]
async fn cancel_answers_a_kept_interaction_and_is_404_for_any_other() {
    let mocks = start_keyed().await;
    let made = created(&mocks, &create(MODEL, &png(20, 20), false)).await;
    let id = made["id"].as_str().unwrap();
    let unstored = created_id(&mocks, Some(false)).await;
    let deleted = created_id(&mocks, None).await;
    let (status, _) = by_id(&mocks, "DELETE", &format!("/v1beta/interactions/{deleted}")).await;
    assert_eq!(status, 200);
    let before = mocks.recorded().len();

    // google-genai's path, on either version, and the custom-method form: the kept Interaction,
    // which has finished, so is answered as it is.
    for path in [
        format!("/v1beta/interactions/{id}/cancel"),
        format!("/v1/interactions/{id}/cancel"),
        format!("/v1/interactions/{id}:cancel"),
    ] {
        let (status, text) = by_id(&mocks, "POST", &path).await;
        assert_eq!(status, 200, "{path}: {text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(got, made, "{path}");
        assert_eq!(got["status"], "completed");
    }
    // Still kept: a get answers it after the cancels.
    let (status, text) = by_id(&mocks, "GET", &format!("/v1/interactions/{id}")).await;
    assert_eq!(status, 200, "{text}");
    // Unknown, store=false and deleted ids: the API's 404, as a get of them.
    for other in [
        unstored.as_str(),
        deleted.as_str(),
        "v1_NoSuchInteraction000000000000000000000000",
    ] {
        let (status, text) = by_id(
            &mocks,
            "POST",
            &format!("/v1beta/interactions/{other}/cancel"),
        )
        .await;
        assert_not_found(status, &text, other);
    }
    // Without the key: the Interactions API's 401, before anything is looked up.
    let path = format!("/v1beta/interactions/{id}/cancel");
    let (status, text) = by_id_with(&mocks, "POST", &path, None).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains(r#""code":"authentication""#), "{text}");
    // Another method on the cancel path is no cancel.
    let (status, _) = by_id(&mocks, "GET", &path).await;
    assert_eq!(status, 404);

    // Each is recorded as a cancel, with its status; a cancel that answered the interaction
    // recorded its image, as a get does, and none takes a scripted behaviour.
    let rec = mocks.recorded();
    let seen: Vec<_> = rec[before..]
        .iter()
        .map(|r| (r.endpoint, r.method.as_str(), r.status))
        .collect();
    let cancel = Endpoint::InteractionsCancel;
    assert_eq!(
        seen,
        [
            (cancel, "POST", 200),
            (cancel, "POST", 200),
            (cancel, "POST", 200),
            (Endpoint::InteractionsGet, "GET", 200),
            (cancel, "POST", 404),
            (cancel, "POST", 404),
            (cancel, "POST", 404),
            (cancel, "POST", 401),
            (Endpoint::Unknown, "GET", 404)
        ]
    );
    let (_, made_image) = image_of(&made);
    for r in &rec[before..before + 3] {
        assert_eq!(r.output_image.as_ref(), Some(&made_image));
        assert!(r.images.is_empty() && r.model.is_none() && r.store.is_none());
    }
    assert!(rec[before + 4..].iter().all(|r| r.output_image.is_none()));
}

#[tokio::test]
async fn a_cancel_takes_no_scripted_behaviour() {
    let mocks = start_keyed().await;
    let id = created_id(&mocks, None).await;
    // The next generation is scripted to fail; a cancel is no generation, and leaves it there.
    mocks.set_behaviour(Provider::Gemini, vec![Behaviour::ServerError]);
    let (status, text) = by_id(&mocks, "POST", &format!("/v1beta/interactions/{id}/cancel")).await;
    assert_eq!(status, 200, "{text}");
    let (status, _, text) = post(&mocks, Some(KEY), &create(MODEL, &png(8, 8), false)).await;
    assert_eq!(status, 500, "{text}");
    let rec = mocks.recorded();
    assert_eq!(rec[1].behaviour, Behaviour::Ok);
    assert_eq!(rec[2].behaviour, Behaviour::ServerError);
}

/// A create body asking to run in the background.
fn background(image: &[u8]) -> Value {
    let mut body = create(MODEL, image, false);
    body["background"] = json!(true);
    body
}

/// A get (or cancel, with `/cancel`) of an interaction on the Gemini API: status and JSON answer.
async fn fetch(mocks: &Mocks, method: &str, path: &str) -> (u16, Value) {
    let (status, text) = by_id(mocks, method, path).await;
    (status, serde_json::from_str(&text).unwrap())
}

/// An interaction with no output: its steps are empty (and so carry no image).
fn assert_no_output(interaction: &Value) {
    assert_eq!(interaction["steps"], json!([]), "{interaction}");
}

#[tokio::test]
async fn a_background_create_answers_in_progress_then_a_poll_completes_it_with_the_image() {
    assert_eq!(BACKGROUND_POLLS, 1);
    let mocks = start_keyed().await;
    let input = png(40, 30);
    let made = created(&mocks, &background(&input)).await;
    // At once: in progress, nothing produced yet.
    assert_eq!(made["status"], "in_progress");
    assert_eq!(made["model"], MODEL);
    assert!(made["id"].as_str().unwrap().starts_with("v1_"));
    assert_no_output(&made);
    assert!(made.get("usage").is_none(), "{made}");
    let id = made["id"].as_str().unwrap();
    let path = format!("/v1beta/interactions/{id}");

    // The first poll: still in progress, as the create answered it.
    let (status, first) = fetch(&mocks, "GET", &path).await;
    assert_eq!((status, &first), (200, &made));
    // The second: completed, with the image.
    let (status, done) = fetch(&mocks, "GET", &path).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(
        (&done["id"], &done["created"]),
        (&made["id"], &made["created"])
    );
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let (mime, image) = image_of(&done);
    assert_eq!(mime, "image/png");
    assert!(is_png(&image));
    // From then on it stays as it finished, and a cancel answers it unchanged.
    let (_, again) = fetch(&mocks, "GET", &format!("/v1/interactions/{id}")).await;
    assert_eq!(again, done);
    let (status, cancelled) = fetch(&mocks, "POST", &format!("{path}/cancel")).await;
    assert_eq!((status, &cancelled), (200, &done));

    // The create carried the upload and is recorded as any create; the image went out on the
    // poll that completed the run, and each later answer that carried it again says so.
    let rec = mocks.recorded();
    use common::interaction::{cancel, create, get};
    let seen = common::interaction::calls(&rec);
    assert_eq!(
        seen,
        [create(200), get(200), get(200), get(200), cancel(200)]
    );
    assert_eq!(rec[0].images, vec![input]);
    assert_eq!(rec[0].prompt.as_deref(), Some(PROMPT));
    assert_eq!(rec[0].model.as_deref(), Some(MODEL));
    assert_eq!(
        (rec[0].behaviour, rec[0].rejected.as_deref()),
        (Behaviour::Ok, None)
    );
    assert_eq!(rec[0].output_image, None);
    assert_eq!(rec[1].output_image, None);
    for r in &rec[2..] {
        assert_eq!(r.output_image.as_deref(), Some(image.as_slice()));
    }
    // Each poll and the cancel name the interaction the create made, so the audit can give the
    // run's image to the requests the create carried.
    assert_eq!(rec[0].creates.as_deref(), Some(id));
    assert_eq!(rec[0].continues, None);
    for r in &rec[1..] {
        assert_eq!(
            (r.creates.as_deref(), r.continues.as_deref()),
            (None, Some(id))
        );
    }
}

#[tokio::test]
async fn cancelling_a_running_background_interaction_answers_cancelled_and_makes_no_image() {
    let mocks = start_keyed().await;
    let input = png(24, 24);
    let made = created(&mocks, &background(&input)).await;
    assert_eq!(made["status"], "in_progress");
    let id = made["id"].as_str().unwrap();
    let path = format!("/v1beta/interactions/{id}");

    let (status, cancelled) = fetch(&mocks, "POST", &format!("{path}/cancel")).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["id"], made["id"]);
    assert_no_output(&cancelled);
    // Every later get, however many, says cancelled, with no output.
    for _ in 0..3 {
        let (status, got) = fetch(&mocks, "GET", &path).await;
        assert_eq!((status, &got), (200, &cancelled));
    }
    // A second cancel has nothing left to stop: the cancelled interaction, unchanged.
    let (status, again) = fetch(&mocks, "POST", &format!("/v1/interactions/{id}:cancel")).await;
    assert_eq!((status, &again), (200, &cancelled));

    let rec = mocks.recorded();
    use common::interaction::{cancel, create, get};
    let seen = common::interaction::calls(&rec);
    assert_eq!(
        seen,
        [
            create(200),
            cancel(200),
            get(200),
            get(200),
            get(200),
            cancel(200)
        ]
    );
    assert_eq!(rec[0].images, vec![input]);
    assert_eq!(rec[0].prompt.as_deref(), Some(PROMPT));
    // No image was made for it, so none is recorded as sent.
    assert!(rec.iter().all(|r| r.output_image.is_none()));
    assert!(
        rec[1..]
            .iter()
            .all(|r| r.images.is_empty() && r.model.is_none())
    );
}

#[tokio::test]
async fn background_polls_are_counted_and_a_scripted_block_ends_the_run_failed() {
    let mocks = start_with(MockOptions {
        gemini_key: KEY.into(),
        background_polls: 3,
        ..Default::default()
    })
    .await;
    // The create takes the script; its run ends as the behaviour says, when polled to its end.
    mocks.set_behaviour(
        Provider::Gemini,
        vec![Behaviour::SafetyBlock, Behaviour::Ok],
    );
    let blocked = created(&mocks, &background(&png(16, 16))).await;
    let id = blocked["id"].as_str().unwrap();
    let path = format!("/v1beta/interactions/{id}");
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for _ in 0..5 {
        let (status, got) = fetch(&mocks, "GET", &path).await;
        assert_eq!(status, 200, "{got}");
        statuses.push(got["status"].as_str().unwrap().to_owned());
        last = got;
    }
    assert_eq!(
        statuses,
        [
            "in_progress",
            "in_progress",
            "in_progress",
            "failed",
            "failed"
        ]
    );
    assert_eq!(last["errors"][0]["code"], "prohibited_content");
    assert_no_output(&last);

    // A streamed get follows the run to its end, whatever polls are left.
    let made = created(&mocks, &background(&png(16, 16))).await;
    let id = made["id"].as_str().unwrap();
    let (status, text) = by_id(
        &mocks,
        "GET",
        &format!("/v1beta/interactions/{id}?stream=true"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "interaction.created",
            "step.start",
            "step.delta",
            "step.delta",
            "step.stop",
            "interaction.completed",
            ""
        ]
    );
    let (_, done) = fetch(&mocks, "GET", &format!("/v1beta/interactions/{id}")).await;
    assert_eq!(done["status"], "completed");
    let (_, image) = image_of(&done);

    let rec = mocks.recorded();
    assert_eq!(rec[0].behaviour, Behaviour::SafetyBlock);
    assert!(rec.iter().take(6).all(|r| r.output_image.is_none()));
    assert_eq!(rec[6].behaviour, Behaviour::Ok);
    assert_eq!(rec[6].output_image, None);
    assert_eq!(rec[7].output_image.as_deref(), Some(image.as_slice()));
    assert_eq!(rec[8].output_image.as_deref(), Some(image.as_slice()));
}

#[tokio::test]
async fn a_background_create_that_is_not_stored_is_refused_400() {
    let mocks = start_keyed().await;
    let input = png(16, 16);
    let mut body = background(&input);
    body["store"] = json!(false);
    let (status, _, text) = post(&mocks, Some(KEY), &body).await;
    assert_eq!(status, 400, "{text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["code"], "invalid_request");
    // Refused, but what it carried is still evidence.
    let rec = mocks.recorded();
    assert_eq!(rec[0].images, vec![input]);
    assert_eq!(rec[0].store, Some(false));
    assert!(rec[0].rejected.is_some() && rec[0].output_image.is_none());
}
