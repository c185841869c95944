//! The official SDKs (openai, google-genai for Python) against the mocks over TLS: every answer
//! must parse as the SDK expects, and errors must surface as the SDK's own exception types.
//!
//! Needs the SDKs pinned in `tests/sdk/requirements.txt` (`pip install -r ...`); without them this
//! test fails, it never skips.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use traceless_mock::{Behaviour, Endpoint, MockOptions, Mocks, Provider};

const OPENAI_KEY: &str = "sk-proj-sdk-test-0000000000000000";
const GEMINI_KEY: &str = "AIzaSdkTest000000000000000000000000";

fn python() -> String {
    std::env::var("TRACELESS_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

/// Fails with the install line when the SDKs are missing.
async fn require_sdks() {
    let out = tokio::process::Command::new(python())
        .args(["-c", "import openai, google.genai"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install Python 3 and run `pip install openai google-genai`",
                python()
            )
        });
    assert!(
        out.status.success(),
        "the official SDKs are missing: run `pip install openai google-genai`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn run_script(name: &str, env: &[(&str, String)]) -> String {
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(script(name));
    // No provider overrides from the caller either.
    let unset = [
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ];
    run_sdk_script(cmd, name, &unset, env).await
}

/// Both mocks, accepting the keys the scripts are given.
async fn start_keyed() -> Mocks {
    Mocks::start(MockOptions {
        openai_key: OPENAI_KEY.into(),
        gemini_key: GEMINI_KEY.into(),
        ..Default::default()
    })
    .await
    .expect("mocks start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_parse_every_answer() {
    require_sdks().await;
    let mocks = start_keyed().await;
    let input = png(40, 40);
    let files = sdk_files(&mocks, &input);
    let script_for = vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::RateLimited { retry_after_s: 1 },
        Behaviour::SafetyBlock,
        Behaviour::Ok,
    ];
    mocks.set_behaviour(Provider::OpenAi, script_for.clone());
    mocks.set_behaviour(Provider::Gemini, script_for);
    let common_env = [
        ("TRACELESS_CA_FILE", files.ca.display().to_string()),
        ("TRACELESS_INPUT_PNG", files.input.display().to_string()),
    ];

    let mut env = common_env.to_vec();
    env.push(("TRACELESS_OPENAI_URL", mocks.openai_url()));
    env.push(("TRACELESS_OPENAI_KEY", OPENAI_KEY.into()));
    let said = run_script("openai_sdk.py", &env).await;
    assert!(said.contains("all answers parsed"), "{said}");

    let mut env = common_env.to_vec();
    env.push(("TRACELESS_GEMINI_URL", mocks.gemini_url()));
    env.push(("TRACELESS_GEMINI_KEY", GEMINI_KEY.into()));
    let said = run_script("genai_sdk.py", &env).await;
    assert!(said.contains("all answers parsed"), "{said}");

    let rec = mocks.recorded();
    assert!(rec.iter().all(|r| r.tls), "every SDK request went over TLS");
    assert!(
        rec.iter().all(|r| r.rejected.is_none()),
        "the mocks rejected an SDK request: {:?}",
        rec.iter()
            .filter_map(|r| r.rejected.as_deref())
            .collect::<Vec<_>>()
    );

    let openai: Vec<_> = rec
        .iter()
        .filter(|r| r.provider == Provider::OpenAi)
        .collect();
    let endpoints: Vec<Endpoint> = openai.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        vec![
            Endpoint::Models,
            Endpoint::ImagesEdits,
            Endpoint::Responses,
            Endpoint::ImagesEdits,
            Endpoint::ImagesEdits,
            Endpoint::ImagesEdits,
            Endpoint::ImagesGenerations
        ]
    );
    let statuses: Vec<u16> = openai.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 400, 200, 200]);
    // Azure: the deployment path, the api-key header, the deployment recorded as the model.
    assert!(
        openai[5]
            .path
            .starts_with("/openai/deployments/team-images/")
    );
    assert!(openai[5].header("api-key").is_some());
    assert_eq!(openai[5].model.as_deref(), Some("team-images"));
    assert_eq!(openai[5].images, vec![input.clone()]);
    assert_eq!(openai[1].images, vec![input.clone()]);
    assert_eq!(
        openai[1].prompt.as_deref(),
        Some("sdk edit tlp-sdk00000001")
    );
    assert_eq!(openai[2].images, vec![input.clone()]);
    assert_eq!(openai[2].store, Some(false));
    assert_eq!(openai[2].user, None);

    let gemini: Vec<_> = rec
        .iter()
        .filter(|r| r.provider == Provider::Gemini)
        .collect();
    let endpoints: Vec<Endpoint> = gemini.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        vec![
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
            Endpoint::GenerateContent,
            Endpoint::GenerateContent
        ]
    );
    let statuses: Vec<u16> = gemini.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 429, 200]);
    for r in &gemini {
        assert_eq!(r.images, vec![input.clone()]);
        assert_eq!(r.prompt.as_deref(), Some("sdk gemini tlp-sdk00000003"));
        assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY));
    }
    assert_eq!(gemini[1].query.as_deref(), Some("alt=sse"));
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_genai_in_vertex_mode_with_a_service_account() {
    require_sdks().await;
    let mocks = Mocks::start(MockOptions::default())
        .await
        .expect("mocks start");
    let input = png(40, 40);
    let files = sdk_files(&mocks, &input);
    // The JSON a backend is given: the run's own service account.
    let account = files.ca.with_file_name("service-account.json");
    std::fs::write(&account, mocks.service_account_json().unwrap()).unwrap();
    let env = [
        ("TRACELESS_CA_FILE", files.ca.display().to_string()),
        ("TRACELESS_INPUT_PNG", files.input.display().to_string()),
        ("TRACELESS_GEMINI_URL", mocks.gemini_url()),
        ("TRACELESS_SERVICE_ACCOUNT", account.display().to_string()),
    ];
    let said = run_script("vertex_sdk.py", &env).await;
    assert!(said.contains("all answers parsed"), "{said}");
    let rec = mocks.recorded();
    let endpoints: Vec<Endpoint> = rec.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            Endpoint::OAuthToken,
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
            Endpoint::Interactions,
            Endpoint::InteractionsGet,
            Endpoint::InteractionsDelete,
            Endpoint::InteractionsGet,
            Endpoint::OAuthToken
        ],
        "{:?}",
        rec.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        rec[..6]
            .iter()
            .all(|r| r.status == 200 && r.rejected.is_none())
    );
    // google-genai 3.6.1 sends the Interactions API, on Vertex AI, under the project and location.
    let interactions = "/v1beta1/projects/traceless-audit/locations/us-central1/interactions";
    assert_eq!(rec[3].path, interactions);
    assert!(rec[4].path.starts_with(&format!("{interactions}/v1_")));
    assert_eq!(rec[3].images, vec![input.clone()]);
    // Deleted, it is gone.
    assert_eq!(rec[6].status, 404);
    // The account the script made itself got no token.
    assert_eq!(rec[7].status, 400);
    assert!(
        rec[1]
            .path
            .contains("/projects/traceless-audit/locations/us-central1/publishers/google/models/")
    );
    assert_eq!(rec[1].model.as_deref(), Some("gemini-3.1-flash-lite-image"));
    assert_eq!(rec[1].images, vec![input.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_genai_interactions_send_an_image_and_get_one_back() {
    require_sdks().await;
    let mocks = start_keyed().await;
    let input = png(40, 40);
    let files = sdk_files(&mocks, &input);
    // Five creates answer normally, the sixth is rate limited, the two background ones after it
    // answer normally (gets, cancels and deletes take no script).
    let mut script = vec![Behaviour::Ok; 5];
    script.push(Behaviour::RateLimited { retry_after_s: 1 });
    script.push(Behaviour::Ok);
    mocks.set_behaviour(Provider::Gemini, script);
    let env = [
        ("TRACELESS_CA_FILE", files.ca.display().to_string()),
        ("TRACELESS_INPUT_PNG", files.input.display().to_string()),
        ("TRACELESS_GEMINI_URL", mocks.gemini_url()),
        ("TRACELESS_GEMINI_KEY", GEMINI_KEY.into()),
    ];
    let said = run_script("interactions_sdk.py", &env).await;
    assert!(said.contains("all interactions answers parsed"), "{said}");

    let rec = mocks.recorded();
    use common::interaction::{cancel, create, delete, get};
    let seen = common::interaction::calls(&rec);
    // google-genai 3.6.1 calls the Interactions API on its default version, v1.
    assert_eq!(
        seen,
        [
            create(200),
            create(200),
            get(200),
            get(200),
            cancel(200),
            create(200),
            delete(200),
            get(404),
            create(404),
            create(200),
            get(404),
            cancel(404),
            create(429),
            create(200),
            get(200),
            get(200),
            create(200),
            cancel(200),
            get(200)
        ]
    );
    assert_eq!(rec[0].path, "/v1/interactions");
    let id = &rec[2].path["/v1/interactions/".len()..];
    assert!(id.starts_with("v1_"), "{}", rec[2].path);
    for r in &rec {
        assert!(r.tls, "{}", r.path);
        assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY));
        assert!(r.path.starts_with("/v1/interactions"), "{}", r.path);
        if r.endpoint != Endpoint::Interactions {
            continue;
        }
        assert_eq!(r.model.as_deref(), Some("gemini-3.1-flash-lite-image"));
        assert_eq!(r.images, vec![input.clone()]);
        assert_eq!(
            r.prompt.as_deref(),
            Some("sdk interactions tlp-sdk00000005")
        );
    }
    // Only the create continuing a deleted interaction was refused as the API would.
    let refused: Vec<usize> = (0..rec.len())
        .filter(|&i| rec[i].rejected.is_some())
        .collect();
    assert_eq!(refused, [8]);
    assert_eq!(rec[9].store, Some(false));
    assert!(rec[0].output_image.is_some() && rec[1].output_image.is_some());
    // google-genai's cancel path; the cancel answered the interaction, image and all.
    assert_eq!(rec[4].path, format!("/v1/interactions/{id}/cancel"));
    assert_eq!(rec[4].output_image, rec[0].output_image);
    assert!(rec[11].path.ends_with("/cancel"), "{}", rec[11].path);
    // The background creates asked for it in the body; the first was polled twice (in progress,
    // then completed), the second cancelled while it ran, then got.
    for r in [&rec[13], &rec[16]] {
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON body");
        assert_eq!(body["background"], true);
    }
    let polled = format!(
        "/v1/interactions/{}",
        &rec[14].path["/v1/interactions/".len()..]
    );
    assert_eq!(rec[15].path, polled);
    let running = &rec[18].path["/v1/interactions/".len()..];
    assert_eq!(rec[17].path, format!("/v1/interactions/{running}/cancel"));
    // Only the poll that completed the run sent an image; none was made for the cancelled one.
    let outputs: Vec<bool> = rec[13..].iter().map(|r| r.output_image.is_some()).collect();
    assert_eq!(outputs, [false, false, true, false, false, false]);
    mocks.shutdown().await;
}
