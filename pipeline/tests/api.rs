//! The HTTP API in process against wiremock providers: happy paths, what the providers receive,
//! every error mapping, the age gate and bad inputs.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::*;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

async fn mount_openai(harness: &Harness, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/v1/images/edits"))
        .and(header(
            "authorization",
            format!("Bearer {OPENAI_KEY}").as_str(),
        ))
        .respond_with(response)
        .mount(&harness.openai)
        .await;
}

async fn mount_gemini(harness: &Harness, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-2.5-flash-image:generateContent",
        ))
        .and(header("x-goog-api-key", GEMINI_KEY))
        .respond_with(response)
        .mount(&harness.gemini)
        .await;
}

/// Headers a client might send that identify it; none may reach a provider.
const CLIENT_IDENTIFIERS: [(&str, &str); 4] = [
    ("x-forwarded-for", "127.44.55.66"),
    ("x-device-id", "tl-dev-00aa11bb22cc33dd"),
    ("cookie", "session=tl-cookie-9911"),
    ("user-agent", "TracelessClient/tl-ua-4242"),
];

fn assert_no_client_identifiers(headers: &wiremock::http::HeaderMap, body: &[u8]) {
    for (name, value) in CLIENT_IDENTIFIERS {
        assert!(
            headers
                .get(name)
                .is_none_or(|v| !v.to_str().unwrap().contains(value)),
            "{name} forwarded"
        );
        assert!(
            !headers
                .values()
                .any(|v| v.to_str().is_ok_and(|v| v.contains(value))),
            "{value} forwarded in a header"
        );
        assert!(
            !body.windows(value.len()).any(|w| w == value.as_bytes()),
            "{value} forwarded in the body"
        );
    }
    for forbidden in [
        "x-forwarded-for",
        "x-real-ip",
        "forwarded",
        "x-device-id",
        "cookie",
    ] {
        assert!(
            headers.get(forbidden).is_none(),
            "{forbidden} header sent to the provider"
        );
    }
}

#[tokio::test]
async fn openai_receives_a_clean_image_and_no_identifiers() {
    let harness = Harness::start().await;
    let output = output_png();
    mount_openai(
        &harness,
        ResponseTemplate::new(200).set_body_json(openai_ok_body(&output)),
    )
    .await;
    let original = random_png(64, 48);
    let with_metadata = png_with_metadata(&original);

    let answer = harness
        .send_request(
            &Form::generation("openai", &with_metadata),
            &CLIENT_IDENTIFIERS,
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.header("content-type"), Some("image/png"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.body, output);

    let received = harness.openai.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        harness.gemini.received_requests().await.unwrap().len(),
        0,
        "sent to the other provider"
    );
    let request = &received[0];
    assert_no_client_identifiers(&request.headers, &request.body);
    let content_type = request
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let parts = parse_multipart(&content_type, request.body.clone()).await;
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert!(
        !names.contains(&"user") && !names.contains(&"store"),
        "{names:?}"
    );
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.0 == name)
            .unwrap_or_else(|| panic!("no {name} part"))
    };
    assert_eq!(field("model").3, b"gpt-image-2.5-sunburst");
    assert_eq!(field("prompt").3, b"Turn this into a watercolour");
    assert_eq!(field("n").3, b"1");
    let image = field("image");
    assert_eq!(
        image.1.as_deref(),
        Some("image.png"),
        "the client's file name must not be forwarded"
    );
    assert_eq!(image.2.as_deref(), Some("image/png"));
    assert_same_pixels_without_metadata(&image.3, &original);
    for chunk in [&b"eXIf"[..], b"tEXt", b"iTXt", b"tIME"] {
        assert!(
            !image.3.windows(4).any(|w| w == chunk),
            "{} chunk sent",
            String::from_utf8_lossy(chunk)
        );
    }
}

#[tokio::test]
async fn gemini_receives_inline_data_without_metadata_or_identifiers() {
    let harness = Harness::start().await;
    let output = output_png();
    mount_gemini(
        &harness,
        ResponseTemplate::new(200).set_body_json(gemini_ok_body(&output)),
    )
    .await;
    let original = random_png(40, 40);

    let answer = harness
        .send_request(
            &Form::generation("gemini", &png_with_metadata(&original)),
            &CLIENT_IDENTIFIERS,
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.body, output);
    assert_eq!(answer.header("cache-control"), Some("no-store"));

    let received = harness.gemini.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(harness.openai.received_requests().await.unwrap().len(), 0);
    let request = &received[0];
    assert_no_client_identifiers(&request.headers, &request.body);
    assert!(
        request.url.query().is_none(),
        "the key must travel in x-goog-api-key, not the URL"
    );
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let object = json.as_object().unwrap();
    assert!(
        !object.contains_key("user")
            && !object.contains_key("store")
            && !object.contains_key("cachedContent")
    );
    assert_eq!(
        json["generationConfig"]["responseModalities"],
        serde_json::json!(["TEXT", "IMAGE"])
    );
    let parts = json["contents"][0]["parts"].as_array().unwrap();
    assert_eq!(json["contents"][0]["role"], "user");
    assert_eq!(parts[0]["text"], "Turn this into a watercolour");
    assert_eq!(parts[1]["inline_data"]["mime_type"], "image/png");
    assert!(
        !String::from_utf8_lossy(&request.body).contains("file_data"),
        "Files API reference sent"
    );
    let sent = unb64(parts[1]["inline_data"]["data"].as_str().unwrap());
    assert_same_pixels_without_metadata(&sent, &original);
}

#[tokio::test]
async fn jpeg_and_webp_uploads_are_forwarded_with_their_own_type() {
    let harness = Harness::start().await;
    mount_openai(
        &harness,
        ResponseTemplate::new(200).set_body_json(openai_ok_body(&output_png())),
    )
    .await;
    let pixels = image::load_from_memory(&random_png(32, 32)).unwrap();
    for (format, mime, file_name) in [
        (image::ImageFormat::Jpeg, "image/jpeg", "image.jpg"),
        (image::ImageFormat::WebP, "image/webp", "image.webp"),
    ] {
        let bytes = encode(pixels.clone(), format);
        // The client's declared type is ignored: the bytes decide.
        let form = Form::new()
            .text("age_confirmed", "true")
            .text("provider", "openai")
            .text("prompt", "p")
            .file("image", "photo", "application/octet-stream", &bytes);
        let answer = harness.send(&form).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{mime}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let request = harness
            .openai
            .received_requests()
            .await
            .unwrap()
            .pop()
            .unwrap();
        let content_type = request
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let parts = parse_multipart(&content_type, request.body).await;
        let image = parts.iter().find(|p| p.0 == "image").unwrap();
        assert_eq!(
            (image.1.as_deref(), image.2.as_deref()),
            (Some(file_name), Some(mime))
        );
        assert_same_pixels_without_metadata(&image.3, &bytes);
    }
}

struct ErrorCase {
    name: &'static str,
    provider: &'static str,
    response: ResponseTemplate,
    status: StatusCode,
    code: &'static str,
    retry_after: Option<&'static str>,
}

fn error_cases() -> Vec<ErrorCase> {
    let json =
        |status: u16, body: serde_json::Value| ResponseTemplate::new(status).set_body_json(body);
    let openai_error = |code: &str, kind: &str| serde_json::json!({"error": {"message": "Incorrect API key provided: sk-tes*****. Rejected.", "type": kind, "param": null, "code": code}});
    vec![
        ErrorCase {
            name: "openai 429 keeps retry-after",
            provider: "openai",
            response: json(429, openai_error("rate_limit_exceeded", "requests"))
                .insert_header("retry-after", "12"),
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            retry_after: Some("12"),
        },
        ErrorCase {
            name: "openai moderation_blocked",
            provider: "openai",
            response: json(
                400,
                openai_error("moderation_blocked", "image_generation_user_error"),
            ),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "content_refused",
            retry_after: None,
        },
        ErrorCase {
            name: "openai content_policy_violation",
            provider: "openai",
            response: json(
                400,
                openai_error("content_policy_violation", "invalid_request_error"),
            ),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "content_refused",
            retry_after: None,
        },
        ErrorCase {
            name: "openai invalid key",
            provider: "openai",
            response: json(
                401,
                openai_error("invalid_api_key", "invalid_request_error"),
            ),
            status: StatusCode::BAD_GATEWAY,
            code: "provider_error",
            retry_after: None,
        },
        ErrorCase {
            name: "openai 500",
            provider: "openai",
            response: json(
                500,
                serde_json::json!({"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}}),
            ),
            status: StatusCode::BAD_GATEWAY,
            code: "provider_error",
            retry_after: None,
        },
        ErrorCase {
            name: "openai malformed 200",
            provider: "openai",
            response: ResponseTemplate::new(200).set_body_string("{\"data\": [{\"b64_json\": 12"),
            status: StatusCode::BAD_GATEWAY,
            code: "provider_error",
            retry_after: None,
        },
        ErrorCase {
            name: "openai slower than the timeout",
            provider: "openai",
            response: json(200, openai_ok_body(&output_png()))
                .set_delay(Duration::from_millis(1500)),
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "provider_timeout",
            retry_after: None,
        },
        ErrorCase {
            name: "gemini 429 with RetryInfo",
            provider: "gemini",
            response: json(
                429,
                serde_json::json!({"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}),
            ),
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            retry_after: Some("37"),
        },
        ErrorCase {
            name: "gemini 200 with promptFeedback.blockReason",
            provider: "gemini",
            response: json(
                200,
                serde_json::json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []}, "usageMetadata": {"promptTokenCount": 10}}),
            ),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "content_refused",
            retry_after: None,
        },
        ErrorCase {
            name: "gemini 200 with finishReason IMAGE_SAFETY",
            provider: "gemini",
            response: json(
                200,
                serde_json::json!({"candidates": [{"content": {"parts": [{"text": "I can't help with that"}]}, "finishReason": "IMAGE_SAFETY"}]}),
            ),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "content_refused",
            retry_after: None,
        },
        ErrorCase {
            name: "gemini bad key (400)",
            provider: "gemini",
            response: json(
                400,
                serde_json::json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}),
            ),
            status: StatusCode::BAD_GATEWAY,
            code: "provider_error",
            retry_after: None,
        },
        ErrorCase {
            name: "gemini 503",
            provider: "gemini",
            response: json(
                503,
                serde_json::json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
            ),
            status: StatusCode::BAD_GATEWAY,
            code: "provider_error",
            retry_after: None,
        },
        ErrorCase {
            name: "gemini malformed 200",
            provider: "gemini",
            response: ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            status: StatusCode::BAD_GATEWAY,
            code: "provider_error",
            retry_after: None,
        },
        ErrorCase {
            name: "gemini slower than the timeout",
            provider: "gemini",
            response: json(200, gemini_ok_body(&output_png()))
                .set_delay(Duration::from_millis(1500)),
            status: StatusCode::GATEWAY_TIMEOUT,
            code: "provider_timeout",
            retry_after: None,
        },
    ]
}

#[tokio::test]
async fn every_provider_failure_maps_to_its_documented_error() {
    for case in error_cases() {
        let harness = Harness::start_with(|env| {
            env.insert("TRACELESS_PROVIDER_TIMEOUT_MS".into(), "400".into());
        })
        .await;
        match case.provider {
            "openai" => mount_openai(&harness, case.response).await,
            _ => mount_gemini(&harness, case.response).await,
        }
        let answer = harness
            .send(&Form::generation(case.provider, &random_png(16, 16)))
            .await;
        assert_eq!(
            answer.status,
            case.status,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.code(), case.code, "{}", case.name);
        assert!(!answer.message().is_empty(), "{}", case.name);
        assert_eq!(
            answer.header("retry-after"),
            case.retry_after
                .or((case.code == "rate_limited").then_some("30")),
            "{}",
            case.name
        );
        assert_eq!(
            answer.header("cache-control"),
            Some("no-store"),
            "{}",
            case.name
        );
        assert!(
            !answer.message().contains("sk-tes"),
            "{}: a provider message was passed through",
            case.name
        );
        assert_eq!(
            harness.provider_requests().await,
            1,
            "{}: the image is sent exactly once",
            case.name
        );
    }
}

#[tokio::test]
async fn without_age_confirmation_nothing_reaches_a_provider() {
    let harness = Harness::start().await;
    mount_openai(
        &harness,
        ResponseTemplate::new(200).set_body_json(openai_ok_body(&output_png())),
    )
    .await;
    let image = random_png(16, 16);
    let forms = [
        // Missing entirely, image first.
        Form::new()
            .text("provider", "openai")
            .text("prompt", "p")
            .file("image", "a.png", "image/png", &image),
        // Declined before the image.
        Form::new()
            .text("age_confirmed", "false")
            .text("provider", "openai")
            .text("prompt", "p")
            .file("image", "a.png", "image/png", &image),
        // Declined after the image, with other problems that must not take precedence.
        Form::new()
            .text("provider", "nobody")
            .text("prompt", "")
            .file("image", "a.png", "image/png", b"not an image")
            .text("age_confirmed", "no"),
        Form::new()
            .text("age_confirmed", "")
            .text("provider", "openai")
            .text("prompt", "p")
            .file("image", "a.png", "image/png", &image),
    ];
    for (i, form) in forms.iter().enumerate() {
        let answer = harness.send(form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "form {i}");
        assert_eq!(answer.code(), "age_confirmation_required", "form {i}");
        assert!(
            answer.message().contains("13"),
            "form {i}: {}",
            answer.message()
        );
    }
    assert_eq!(harness.provider_requests().await, 0);
}

#[tokio::test]
async fn bad_inputs_are_refused_before_any_provider_call() {
    let harness = Harness::start().await;
    let png = random_png(32, 32);
    let mut bomb = random_png(1, 1);
    bomb[16..24].copy_from_slice(&[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]); // 100000 x 100000
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let with = |provider: &str, prompt: &[u8], image: &[u8]| {
        Form::new()
            .text("age_confirmed", "true")
            .text("provider", provider)
            .text("prompt", prompt)
            .file("image", "x.png", "image/png", image)
    };
    let cases: Vec<(&str, Form, StatusCode, &str)> = vec![
        (
            "not an image",
            with("openai", b"p", b"GIF89a, or rather plain text"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_image",
        ),
        (
            "truncated header",
            with("openai", b"p", &png[..30]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "truncated data",
            with("gemini", b"p", &png[..png.len() - 20]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "bomb",
            with("openai", b"p", &bomb),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "no image",
            Form::new()
                .text("age_confirmed", "true")
                .text("provider", "openai")
                .text("prompt", "p"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_image",
        ),
        (
            "empty prompt",
            with("openai", b"", &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_prompt",
        ),
        (
            "blank prompt",
            with("openai", b"  \n ", &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_prompt",
        ),
        (
            "4001-char prompt",
            with("openai", "a".repeat(4001).as_bytes(), &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_prompt",
        ),
        (
            "huge prompt",
            with("openai", "é".repeat(20_000).as_bytes(), &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_prompt",
        ),
        (
            "invalid UTF-8 prompt",
            with("openai", b"caf\xff\xfe", &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_prompt",
        ),
        (
            "unknown provider",
            with("midjourney", b"p", &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_provider",
        ),
        (
            "no provider",
            Form::new()
                .text("age_confirmed", "true")
                .text("prompt", "p")
                .file("image", "x.png", "image/png", &png),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_provider",
        ),
    ];
    for (name, form, status, code) in cases {
        let started = Instant::now();
        let answer = harness.send(&form).await;
        assert_eq!(
            answer.status,
            status,
            "{name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(answer.code(), code, "{name}");
        assert!(!answer.message().is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(harness.provider_requests().await, 0);
}

#[tokio::test]
async fn prompts_are_counted_in_characters_not_bytes() {
    let harness = Harness::start().await;
    mount_gemini(
        &harness,
        ResponseTemplate::new(200).set_body_json(gemini_ok_body(&output_png())),
    )
    .await;
    let prompt = "é".repeat(4000); // 8000 bytes, 4000 characters
    let form = Form::new()
        .text("age_confirmed", "true")
        .text("provider", "gemini")
        .text("prompt", &prompt)
        .file("image", "x.png", "image/png", &random_png(8, 8));
    assert_eq!(harness.send(&form).await.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_uploads_are_refused_with_413() {
    let harness = Harness::start().await;
    // 30 MB declared in Content-Length: refused before the form is read.
    let mut big = random_png(8, 8);
    big.resize(30_000_000, 0);
    let answer = harness.send(&Form::generation("openai", &big)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // The same without Content-Length (chunked): the stream limit catches it.
    let body = Form::generation("openai", &big).body();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = body
        .chunks(1 << 20)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let request = Request::post("/v1/generations")
        .header("content-type", Form::content_type())
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let answer = harness.call(request).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // An image one byte over 20 MB inside a body that fits the body limit.
    big.truncate(20_000_001);
    let answer = harness.send(&Form::generation("openai", &big)).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert!(
        answer.message().contains("20000000"),
        "{}",
        answer.message()
    );
    assert_eq!(harness.provider_requests().await, 0);
}

#[tokio::test]
async fn requests_that_are_not_forms_and_unknown_routes_get_json_errors() {
    let harness = Harness::start().await;
    let request = Request::post("/v1/generations")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let answer = harness.call(request).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request")
    );
    let answer = harness
        .call(Request::get("/v1/files").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let answer = harness
        .call(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_provider_without_a_key_is_refused_without_contacting_it() {
    let harness = Harness::start_with(|env| {
        env.remove("GEMINI_API_KEY");
    })
    .await;
    let answer = harness
        .send(&Form::generation("gemini", &random_png(8, 8)))
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (StatusCode::BAD_GATEWAY, "provider_error")
    );
    assert!(
        answer.message().contains("not configured"),
        "{}",
        answer.message()
    );
    assert_eq!(harness.provider_requests().await, 0);
}
