//! The harness catches each deliberately faulty pipeline in `tests/faulty/` with the right
//! finding kind, and passes the clean control. Each pipeline is audited from a config alone.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::root;

use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    pipeline: Vec<Entry>,
}

/// What the audit must report for one pipeline (`kinds`), and the side effects it may also
/// report (`may`); anything else is a false positive. With `error`, the audit cannot be
/// completed (exit 2) and one of its errors must contain that text.
#[derive(Deserialize)]
struct Entry {
    file: String,
    kinds: Vec<String>,
    may: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

fn faulty_dir() -> PathBuf {
    root().join("harness/tests/faulty")
}

fn expected() -> BTreeMap<String, Entry> {
    let text = std::fs::read_to_string(faulty_dir().join("expected.toml")).unwrap();
    let e: Expected = toml::from_str(&text).unwrap();
    e.pipeline
        .into_iter()
        .map(|p| (p.file.trim_end_matches(".py").to_owned(), p))
        .collect()
}

/// Audits `tests/faulty/<name>.py` and returns (exit code, finding kinds, report).
fn audit(name: &str) -> (i32, Vec<String>, serde_json::Value) {
    audit_with(name, "")
}

/// Audits with `extra` appended to the config (e.g. `[[waiver]]` entries).
fn audit_with(name: &str, extra: &str) -> (i32, Vec<String>, serde_json::Value) {
    // Distinct seeds: audits running side by side must not share canaries.
    audit_args(name, extra, &["--seed", &seed_of(name).to_string()])
}

/// Audits with `extra` appended to the config and `args` added to the command line.
fn audit_args(name: &str, extra: &str, args: &[&str]) -> (i32, Vec<String>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(
        &faulty_dir().join(format!("{name}.py")),
        &faulty_dir().join("scenarios/*.toml").display().to_string(),
        common::Extra {
            tail: extra,
            ..common::Extra::default()
        },
    );
    let output = common::audit_command(dir.path(), &config, args)
        .output()
        .unwrap();
    let report = common::report(dir.path(), &output);
    let mut kinds: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    (output.status.code().unwrap_or(-1), kinds, report)
}

fn seed_of(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn check(name: &str) {
    let entry = expected()
        .remove(name)
        .unwrap_or_else(|| panic!("{name} is not listed in tests/faulty/expected.toml"));
    let want = entry.kinds;
    let (code, kinds, report) = audit(name);
    let summary = serde_json::to_string_pretty(&report["findings"]).unwrap();
    let unexpected: Vec<_> = kinds
        .iter()
        .filter(|k| !want.contains(k) && !entry.may.contains(k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{name}: false positives {unexpected:?}\n{summary}"
    );
    if let Some(error) = &entry.error {
        let errors = report["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().unwrap().contains(error.as_str())),
            "{name}: expected an error containing {error:?}, got {errors:?}"
        );
        assert_eq!(
            report["verdict"], "incomplete",
            "{name}: {}",
            report["summary"]
        );
        assert_eq!(code, 2, "{name}: an incomplete audit must exit 2");
    } else if want.is_empty() {
        assert_eq!(
            kinds,
            Vec::<String>::new(),
            "the clean control got findings: {summary}\nerrors: {}",
            report["errors"]
        );
        assert_eq!(
            code, 0,
            "clean control: exit {code}, errors: {}",
            report["errors"]
        );
    } else {
        for k in &want {
            assert!(
                kinds.contains(k),
                "{name}: expected a {k} finding, got {kinds:?}\n{summary}\nerrors: {}",
                report["errors"]
            );
        }
        assert_eq!(code, 1, "{name}: a finding must exit 1");
    }
}

macro_rules! faulty {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { check(stringify!($name)); } )*
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

faulty!(
    clean,
    disk_tmp_brief,
    disk_outside_roots,
    disk_thumbnail,
    log_prompt,
    log_base64,
    log_file_headers,
    no_age_gate,
    wrong_recipient,
    openai_user_field,
    responses_store,
    gemini_files_api,
    metadata_forwarded,
    egress_analytics,
    egress_dns,
    egress_curl,
    plaintext_accepted,
    memory_cache,
    daemon_keeper,
    shared_output,
    static_workdir,
    static_traversal,
    pinned_certificate,
);

#[test]
fn every_faulty_pipeline_has_a_test_and_an_expectation() {
    let mut on_disk: Vec<String> = std::fs::read_dir(faulty_dir())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".py")
                .map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/faulty/*.py and the faulty! list differ"
    );
    let exp: Vec<String> = expected().into_keys().collect();
    assert_eq!(
        exp, listed,
        "tests/faulty/expected.toml and the faulty! list differ"
    );
}

#[test]
fn a_waived_finding_is_shown_and_does_not_fail_the_gate() {
    let waiver = "[[waiver]]\nkind = \"log-leak\"\njustification = \"prompt logging is removed in 2.4\"\nexpires = \"2999-01-31\"\n";
    let (code, kinds, report) = audit_with("log_prompt", waiver);
    assert_eq!(kinds, ["log-leak"]);
    assert_eq!(code, 0, "{}", report["summary"]);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["waiver"].is_string())
    );
    assert_eq!(report["waivers"][0]["used"], true);
}

#[test]
fn an_expired_waiver_fails_loudly() {
    let waiver = "[[waiver]]\nkind = \"log-leak\"\njustification = \"prompt logging is removed in 2.4\"\nexpires = \"2020-01-31\"\n";
    let (code, _, report) = audit_with("log_prompt", waiver);
    assert_eq!(code, 1, "{}", report["summary"]);
    assert_eq!(report["waivers"][0]["expired"], true);
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["waiver"].is_null())
    );
    assert!(
        report["errors"].to_string().contains("expired"),
        "{}",
        report["errors"]
    );
}

#[test]
fn a_failing_property_case_shrinks_and_replays_exactly_from_its_seed() {
    // Every case of this pipeline leaks its prompt to a log, so every case fails and shrinks.
    let run = |seed: u64| {
        let seed = seed.to_string();
        let args = ["--scenario", "age-gate", "--cases", "4", "--seed", &seed];
        audit_args("log_prompt", "", &args)
    };
    let failure = |report: &serde_json::Value| -> String {
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .find(|e| e.starts_with("property case failed"))
            .unwrap_or_else(|| panic!("no property failure in {}", report["errors"]))
            .to_owned()
    };
    // What was drawn and sent, in order: providers, provider answers, statuses.
    let draws = |report: &serde_json::Value| -> Vec<String> {
        report["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["id"] == "properties")
            .flat_map(|s| s["requests"].as_array().unwrap().iter())
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["provider"], r["provider-behaviour"], r["status"]
                )
            })
            .collect()
    };
    let minimal = |failure: &str| -> String {
        failure
            .split("minimal case: ")
            .nth(1)
            .unwrap_or_else(|| panic!("no minimal case in {failure}"))
            .to_owned()
    };

    let (code, kinds, first) = run(41);
    assert_eq!(code, 1, "{}", first["summary"]);
    assert!(kinds.contains(&"log-leak".to_owned()), "{kinds:?}");
    let failed = failure(&first);
    assert!(
        failed.contains("replay: traceless audit --seed 41"),
        "{failed}"
    );
    // Shrunk: the minimal case has a single request with a one-character prompt.
    let case = minimal(&failed);
    assert_eq!(case.matches("CaseRequest").count(), 1, "{case}");
    assert!(
        case.contains("prompt: \"")
            && case.split("prompt: \"").nth(1).unwrap().chars().nth(1) == Some('"'),
        "{case}"
    );

    let (_, _, again) = run(41);
    assert_eq!(
        minimal(&failure(&again)),
        case,
        "the same seed shrank to another case"
    );
    assert_eq!(
        draws(&again),
        draws(&first),
        "the same seed drew other cases"
    );

    let (_, _, other) = run(42);
    assert_ne!(
        draws(&other),
        draws(&first),
        "another seed drew the same cases"
    );
}
