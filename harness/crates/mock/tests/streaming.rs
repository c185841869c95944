//! Streaming with partial images (Images API and Responses `image_generation`): the events the
//! SDKs parse, and the recorded output image being what every partial and the final event carry.

mod common;

use common::*;
use serde_json::{Value, json};
use traceless_mock::{Endpoint, MockOptions, Mocks};

const KEY: &str = "sk-proj-stream-test-0001";

async fn start_keyed() -> Mocks {
    start_with(MockOptions {
        openai_key: KEY.into(),
        ..Default::default()
    })
    .await
}

/// Posts `body` and parses the answer as server-sent events: (event name, data).
async fn stream(mocks: &Mocks, path: &str, body: Value) -> Vec<(String, Value)> {
    let res = client(mocks)
        .post(format!("{}{path}", mocks.openai_url()))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = res.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn image_generation_streams_partials_then_the_final_image() {
    let mocks = start_keyed().await;
    let events = stream(
        &mocks,
        "/v1/images/generations",
        json!({"model": "gpt-image-2.5-flare", "prompt": "a lighthouse", "stream": true, "partial_images": 2}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed"
        ]
    );
    assert_eq!(events[1].1["partial_image_index"], 1);
    let rec = mocks.recorded();
    let output = rec[0].output_image.clone().expect("the output is recorded");
    for (_, data) in &events {
        assert_eq!(unb64(data["b64_json"].as_str().unwrap()), output);
    }
    // Without partials, one event.
    let events = stream(
        &mocks,
        "/v1/images/generations",
        json!({"model": "gpt-image-2.5-flare", "prompt": "a lighthouse", "stream": true}),
    )
    .await;
    assert_eq!(events.len(), 1);
    mocks.shutdown().await;
}

#[tokio::test]
async fn responses_stream_partial_images_of_the_generated_image() {
    let mocks = start_keyed().await;
    let input = png(32, 32);
    let events = stream(
        &mocks,
        "/v1/responses",
        json!({"model": "gpt-5.5", "stream": true,
               "input": [{"role": "user", "content": [
                   {"type": "input_text", "text": "make it a watercolour"},
                   {"type": "input_image", "image_url": format!("data:image/png;base64,{}", b64(&input))}]}],
               "tools": [{"type": "image_generation", "partial_images": 3}]}),
    )
    .await;
    let partials: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "response.image_generation_call.partial_image")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(partials.len(), 3);
    let seqs: Vec<u64> = events
        .iter()
        .map(|(_, d)| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(events.last().unwrap().0, "response.completed");
    let rec = mocks.recorded();
    assert_eq!(rec[0].endpoint, Endpoint::Responses);
    assert_eq!(rec[0].model.as_deref(), Some("gpt-5.5"));
    assert_eq!(rec[0].images, vec![input]);
    let output = rec[0].output_image.clone().expect("the output is recorded");
    for p in partials {
        assert_eq!(unb64(p["partial_image_b64"].as_str().unwrap()), output);
    }
    mocks.shutdown().await;
}
