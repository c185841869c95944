//! The real binary: start-up validation of provider URLs, and graceful shutdown on SIGTERM.

mod support;

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::process::PipelineProcess;
use support::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn base_env() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([("TRACELESS_LISTEN".to_string(), "127.0.0.1:0".to_string())])
}

#[test]
fn plaintext_provider_urls_are_refused_at_start_up_naming_the_variable() {
    let mut env = base_env();
    env.insert("OPENAI_BASE_URL".into(), "http://127.0.0.1:9/v1".into());
    let mut pipeline = PipelineProcess::spawn(&env);
    let status = pipeline.wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "a plaintext provider URL was accepted");
    let log = pipeline.stderr();
    assert!(log.contains("OPENAI_BASE_URL"), "{log}");
    assert!(log.contains("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS"), "{log}");
}

#[tokio::test]
async fn plaintext_provider_urls_are_accepted_when_allowed() {
    let mut env = base_env();
    env.insert("OPENAI_BASE_URL".into(), "http://127.0.0.1:9/v1".into());
    env.insert("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS".into(), "1".into());
    let mut pipeline = PipelineProcess::spawn(&env);
    let addr = pipeline.wait_ready(Duration::from_secs(10));
    let answer = http_client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_zero() {
    let openai = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/images/edits"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_ok_body(&output_png()))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&openai)
        .await;
    let mut env = env_for(&openai.uri(), "http://127.0.0.1:9");
    env.extend(base_env());
    let mut pipeline = PipelineProcess::spawn(&env);
    let addr = pipeline.wait_ready(Duration::from_secs(10));

    let form = Form::generation("openai", &random_png(32, 32));
    let in_flight = tokio::spawn(
        http_client()
            .post(format!("http://{addr}/v1/generations"))
            .header("content-type", Form::content_type())
            .body(form.body())
            .send(),
    );
    let arrived = poll_until(Duration::from_secs(10), || async {
        !openai.received_requests().await.unwrap().is_empty()
    })
    .await;
    assert!(
        arrived,
        "the request never reached the provider:\n{}",
        pipeline.stderr()
    );
    kill(Pid::from_raw(pipeline.pid() as i32), Signal::SIGTERM).unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was cut off");
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), output_png());
    let status = tokio::task::spawn_blocking(move || {
        let status = pipeline.wait_exit(Duration::from_secs(10));
        (status, pipeline.stderr())
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}", status.1);
}
