//! Transport: plaintext caught at the TLS port, the plain mode, the certificate's names, and the
//! recording's serialised form.

mod common;

use common::*;
use reqwest::multipart::Form;
use serde_json::json;
use std::time::Duration;
use traceless_mock::{
    Behaviour, Endpoint, MockOptions, Mocks, PLAINTEXT_REJECTION, Provider, RecordedRequest,
};

#[tokio::test]
async fn plaintext_at_the_tls_port_is_recorded_as_insecure_evidence() {
    let mocks = start().await;
    let image = png(16, 16);
    let plain_origin = format!("http://{}", mocks.openai_addr());
    let res = plain_client()
        .post(format!("{plain_origin}/v1/images/edits"))
        .bearer_auth("sk-anything")
        .multipart(
            Form::new()
                .part("image", part(image.clone(), "a.png", "image/png"))
                .text("prompt", "sent in the clear"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let gemini_plain = format!(
        "http://{}/v1beta/models/gemini-2.5-flash-image:generateContent",
        mocks.gemini_addr()
    );
    let res = plain_client()
        .post(gemini_plain)
        .json(&json!({"contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": b64(&image)}}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // TLS still works on the same port afterwards.
    let res = client(&mocks)
        .get(format!("{}/v1/models", mocks.openai_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let rec = mocks.recorded();
    assert_eq!(rec.len(), 3);
    let (openai, gemini) = (&rec[0], &rec[1]);
    assert!(!openai.tls && !gemini.tls && rec[2].tls);
    assert_eq!(
        (openai.provider, gemini.provider),
        (Provider::OpenAi, Provider::Gemini)
    );
    assert_eq!(openai.method, "POST");
    assert_eq!(openai.path, "/v1/images/edits");
    assert_eq!(openai.endpoint, Endpoint::ImagesEdits);
    assert_eq!(openai.images, vec![image.clone()]);
    assert_eq!(openai.prompt.as_deref(), Some("sent in the clear"));
    assert_eq!(openai.header("authorization"), Some("Bearer sk-anything"));
    assert_eq!(openai.rejected.as_deref(), Some(PLAINTEXT_REJECTION));
    assert_eq!(openai.status, 400);
    assert_eq!(gemini.endpoint, Endpoint::GenerateContent);
    assert_eq!(gemini.images, vec![image]);
    mocks.shutdown().await;
}

#[tokio::test]
async fn plain_mode_serves_http_directly() {
    let mocks = start_with(MockOptions {
        tls: false,
        openai_key: "sk-plain".into(),
        ..Default::default()
    })
    .await;
    assert!(mocks.ca_pem().is_none());
    assert!(mocks.openai_url().starts_with("http://127.0.0.1:"));
    let res = plain_client()
        .get(format!("{}/v1/models", mocks.openai_url()))
        .bearer_auth("sk-plain")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rec = mocks.recorded();
    assert_eq!(rec.len(), 1);
    assert!(!rec[0].tls);
    assert_eq!(rec[0].endpoint, Endpoint::Models);
    mocks.shutdown().await;
}

#[tokio::test]
async fn the_certificate_is_valid_for_localhost_and_extra_names() {
    let mocks = start_with(MockOptions {
        extra_hostnames: vec!["mock.traceless.test".into()],
        openai_key: "k".into(),
        ..Default::default()
    })
    .await;
    let port = mocks.openai_addr().port();
    // reqwest resolves the names to loopback, so no lookup leaves the machine.
    for host in ["localhost", "api.openai.com", "mock.traceless.test"] {
        let http = {
            reqwest::Client::builder()
                .use_preconfigured_tls(ca_only_tls(&mocks))
                .no_proxy()
                .resolve(host, mocks.openai_addr())
                .build()
                .unwrap()
        };
        let res = http
            .get(format!("https://{host}:{port}/v1/models"))
            .bearer_auth("k")
            .send()
            .await
            .unwrap_or_else(|e| panic!("TLS to {host} failed: {e:?}"));
        assert_eq!(res.status(), 200, "{host}");
    }
    mocks.shutdown().await;
}

#[tokio::test]
async fn recordings_round_trip_through_json() {
    let mocks = start_with(MockOptions {
        openai_key: "k".into(),
        ..Default::default()
    })
    .await;
    mocks.set_behaviour(Provider::OpenAi, vec!["429:3".parse().unwrap()]);
    let image = png(8, 8);
    let res = client(&mocks)
        .post(format!("{}/v1/images/edits", mocks.openai_url()))
        .bearer_auth("k")
        .multipart(
            Form::new()
                .part("image", part(image.clone(), "a.png", "image/png"))
                .text("prompt", "p"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let rec = mocks.recorded();
    let text = serde_json::to_string(&rec).unwrap();
    assert!(text.contains("\"behaviour\":\"429:3\""), "{text}");
    assert!(text.contains("\"endpoint\":\"images-edits\""));
    assert!(text.contains(&b64(&image)), "images are base64 in JSON");
    let back: Vec<RecordedRequest> = serde_json::from_str(&text).unwrap();
    assert_eq!(back[0].images, vec![image]);
    assert_eq!(
        back[0].behaviour,
        Behaviour::RateLimited { retry_after_s: 3 }
    );
    assert_eq!(back[0].body, rec[0].body);
    mocks.shutdown().await;
}

#[test]
fn behaviour_names_round_trip() {
    for name in [
        "ok",
        "429",
        "429:30",
        "500",
        "503",
        "timeout",
        "safety-block",
        "safety-block-image",
        "malformed",
        "slow",
        "slow:250",
    ] {
        let b: Behaviour = name.parse().unwrap();
        assert_eq!(b.to_string(), name);
    }
    assert_eq!(
        "slow:1500".parse::<Behaviour>().unwrap(),
        Behaviour::Slow { delay_ms: 1500 }
    );
    assert!("418".parse::<Behaviour>().is_err());
    assert!(
        "slow:fast"
            .parse::<Behaviour>()
            .unwrap_err()
            .to_string()
            .contains("slow:<ms>")
    );
    assert_eq!(
        serde_json::to_string(&Provider::OpenAi).unwrap(),
        "\"openai\""
    );
    assert_eq!(Provider::Gemini.to_string(), "gemini");
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Mocks>();
}

#[tokio::test]
async fn a_client_refusing_the_certificate_is_recorded() {
    let options = MockOptions::default();
    let key = options.openai_key.clone();
    let mocks = start_with(options).await;
    // A client that does not trust the audit's CA says so with an alert.
    let url = format!("{}/v1/models", mocks.openai_url());
    assert!(plain_client().get(&url).send().await.is_err());
    wait_for("the alert's record", Duration::from_secs(10), || {
        !mocks.tls_refusals().is_empty()
    })
    .await;
    let refusals = mocks.tls_refusals();
    assert_eq!(refusals[0].provider, Provider::OpenAi);
    assert!(refusals[0].alert, "{refusals:?}");
    assert!(refusals[0].how.contains("UnknownCA"), "{refusals:?}");

    // Fingerprint pinning: the handshake completes, then the client hangs up without a request.
    let config = ca_only_tls(&mocks);
    let tcp = tokio::net::TcpStream::connect(mocks.gemini_addr())
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    drop(tls);
    wait_for("the hang-up's record", Duration::from_secs(10), || {
        mocks.tls_refusals().len() == 2
    })
    .await;
    let hang_up = &mocks.tls_refusals()[1];
    assert_eq!(hang_up.provider, Provider::Gemini);
    assert!(!hang_up.alert, "{hang_up:?}");

    // A client that trusts the CA and sends a request is no refusal.
    let ok = client(&mocks)
        .get(format!("{}/v1/models", mocks.openai_url()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(mocks.tls_refusals().len(), 2);
}
