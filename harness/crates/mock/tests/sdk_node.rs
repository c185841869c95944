//! The official `openai` npm package (Node) against the OpenAI mock over TLS: every answer must parse
//! as the SDK expects, errors must surface as the SDK's own error classes, and what the SDK decoded
//! must be exactly what the mock sent.
//!
//! Needs Node and `npm ci --prefix harness/crates/mock/tests/sdk-node`; without them this test
//! fails, it never skips.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use traceless_mock::{Behaviour, Endpoint, MockOptions, Mocks, Provider};

const OPENAI_KEY: &str = "sk-proj-node-sdk-test-000000000000";
const INSTALL: &str = "npm ci --prefix harness/crates/mock/tests/sdk-node";

fn node() -> String {
    std::env::var("TRACELESS_NODE").unwrap_or_else(|_| "node".to_owned())
}

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-node")
}

/// The `openai` version package.json pins, which node_modules must hold.
fn pinned_version() -> String {
    let manifest = project().join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", manifest.display()));
    json["dependencies"]["openai"]
        .as_str()
        .unwrap_or_else(|| panic!("{} pins no `openai` dependency", manifest.display()))
        .to_owned()
}

/// Fails with the install line when Node or the SDK is missing, or the installed SDK is not the pinned one.
async fn require_sdk() {
    let out = tokio::process::Command::new(node())
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install Node.js (20 or newer) and run `{INSTALL}`",
                node()
            )
        });
    assert!(out.status.success(), "`{} --version` failed", node());
    let installed = project().join("node_modules/openai/package.json");
    let text = std::fs::read_to_string(&installed).unwrap_or_else(|e| {
        panic!(
            "the openai npm package is not installed ({}: {e}): run `{INSTALL}`",
            installed.display()
        )
    });
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", installed.display()));
    let pinned = pinned_version();
    assert_eq!(
        json["version"].as_str(),
        Some(pinned.as_str()),
        "node_modules holds another openai version than package.json pins: run `{INSTALL}`"
    );
}

/// Runs the script with nothing from the caller's environment able to divert or weaken it.
async fn run_script(env: &[(&str, String)]) -> String {
    let script = project().join("openai_sdk.mjs");
    let mut cmd = tokio::process::Command::new(node());
    cmd.arg(&script).current_dir(project());
    let unset = [
        "NODE_USE_ENV_PROXY",
        "NODE_OPTIONS",
        "NODE_PATH",
        // Turning verification off would make the CA check meaningless.
        "NODE_TLS_REJECT_UNAUTHORIZED",
        "NODE_EXTRA_CA_CERTS",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_LOG",
    ];
    run_sdk_script(cmd, &script.display().to_string(), &unset, env).await
}

/// The JSON fact line the script printed for `step`.
fn fact<'a>(facts: &'a [Value], step: &str) -> &'a Value {
    facts
        .iter()
        .find(|f| f["step"] == step)
        .unwrap_or_else(|| panic!("the script said nothing about {step}: {facts:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_sdk_parses_every_answer() {
    require_sdk().await;
    let mocks = Mocks::start(MockOptions {
        openai_key: OPENAI_KEY.into(),
        ..Default::default()
    })
    .await
    .expect("mocks start");
    let input = png(48, 32);
    let files = sdk_files(&mocks, &input);
    mocks.set_behaviour(
        Provider::OpenAi,
        vec![
            Behaviour::Ok,
            Behaviour::Ok,
            Behaviour::Ok,
            Behaviour::RateLimited { retry_after_s: 1 },
            Behaviour::SafetyBlock,
            Behaviour::Ok,
        ],
    );

    let said = run_script(&[
        ("NODE_EXTRA_CA_CERTS", files.ca.display().to_string()),
        ("TRACELESS_OPENAI_URL", mocks.openai_url()),
        ("TRACELESS_OPENAI_KEY", OPENAI_KEY.into()),
        ("TRACELESS_INPUT_PNG", files.input.display().to_string()),
    ])
    .await;
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("openai-node ") && last.ends_with(": all answers parsed"),
        "{said}"
    );
    let facts: Vec<Value> = said
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad fact line {l:?}: {e}")))
        .collect();

    let rec = mocks.recorded();
    assert!(rec.iter().all(|r| r.tls), "every SDK request went over TLS");
    assert!(rec.iter().all(|r| r.provider == Provider::OpenAi));
    let endpoints: Vec<Endpoint> = rec.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        vec![
            Endpoint::Models,
            Endpoint::ImagesEdits,
            Endpoint::ImagesGenerations,
            Endpoint::Responses,
            Endpoint::ImagesEdits,
            Endpoint::ImagesGenerations,
            Endpoint::ImagesEdits,
        ]
    );
    let statuses: Vec<u16> = rec.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 400, 400]);
    for r in &rec {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {OPENAI_KEY}").as_str())
        );
        let agent = r.header("user-agent").unwrap_or_default();
        assert!(agent.starts_with("OpenAI/JS "), "user-agent {agent:?}");
        assert_eq!(r.header("x-stainless-lang"), Some("js"));
    }
    // Every well-formed request was accepted; the untyped upload was refused, as the real API does.
    assert!(
        rec[..6].iter().all(|r| r.rejected.is_none()),
        "the mock rejected an SDK request: {:?}",
        rec.iter()
            .filter_map(|r| r.rejected.as_deref())
            .collect::<Vec<_>>()
    );
    let refusal = rec[6].rejected.as_deref().unwrap_or_default();
    assert!(
        refusal.contains("unsupported mimetype ('application/octet-stream')"),
        "{refusal:?}"
    );

    let models = fact(&facts, "models.list");
    let ids: Vec<&str> = models["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ids.contains(&"gpt-image-2.5-sunburst") && ids.contains(&"gpt-5"),
        "{ids:?}"
    );

    // What the SDK decoded is, byte for byte, the image the mock sent.
    for (step, r) in [
        ("images.edit", &rec[1]),
        ("images.generate", &rec[2]),
        ("responses.create", &rec[3]),
    ] {
        let f = fact(&facts, step);
        let decoded = unb64(f["image"].as_str().expect("image"));
        assert!(is_png(&decoded), "{step}: the SDK's image is no PNG");
        assert_eq!(
            Some(&decoded),
            r.output_image.as_ref(),
            "{step}: the SDK decoded another image than the mock sent"
        );
    }
    let edit = fact(&facts, "images.edit");
    assert_eq!(edit["quality"], "low");
    assert_eq!(edit["size"], "1024x1024");
    assert_eq!(edit["output_tokens"], 272);
    assert!(
        edit["request_id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("req_")
    );
    assert_eq!(rec[1].images, vec![input.clone()]);
    assert_eq!(rec[1].prompt.as_deref(), Some("node edit tlp-node0000001"));
    assert_eq!(rec[1].model.as_deref(), Some("gpt-image-2.5-sunburst"));

    let generate = fact(&facts, "images.generate");
    assert_eq!(generate["size"], "1536x1024");
    assert_eq!(generate["quality"], "medium");
    assert_eq!(generate["output_tokens"], 1056);
    assert!(rec[2].images.is_empty());
    assert_eq!(
        rec[2].prompt.as_deref(),
        Some("node generate tlp-node0000002")
    );

    let responses = fact(&facts, "responses.create");
    assert_eq!(responses["status"], "completed");
    assert_eq!(responses["store"], false);
    assert!(
        responses["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("resp_")
    );
    assert!(
        !responses["output_text"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(rec[3].images, vec![input.clone()]);
    assert_eq!(rec[3].store, Some(false));
    assert_eq!(rec[3].user, None);
    assert_eq!(
        rec[3].prompt.as_deref(),
        Some("node responses tlp-node0000003")
    );

    let limited = fact(&facts, "rate-limited");
    assert_eq!(limited["class"], "RateLimitError");
    assert_eq!(limited["status"], 429);
    assert_eq!(limited["code"], "rate_limit_exceeded");
    assert_eq!(limited["type"], "requests");
    assert_eq!(limited["retry_after"], "1");
    assert!(
        limited["request_id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("req_")
    );

    let blocked = fact(&facts, "safety-block");
    assert_eq!(blocked["class"], "BadRequestError");
    assert_eq!(blocked["status"], 400);
    assert_eq!(blocked["code"], "moderation_blocked");
    assert_eq!(blocked["type"], "image_generation_user_error");
    assert!(
        blocked["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Your request was rejected by the safety system."),
        "{blocked}"
    );
    let block_id = blocked["request_id"].as_str().unwrap_or_default();
    assert!(
        block_id.starts_with("req_")
            && blocked["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("include the request ID {block_id}.")),
        "the refusal must quote its own x-request-id: {blocked}"
    );

    let untyped = fact(&facts, "untyped-file");
    assert_eq!(untyped["class"], "BadRequestError");
    assert_eq!(untyped["status"], 400);
    assert_eq!(untyped["code"], "unsupported_file_mimetype");
    assert_eq!(untyped["param"], "image");
    mocks.shutdown().await;
}
