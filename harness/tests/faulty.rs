//! The harness catches each deliberately faulty pipeline in `tests/faulty/` with the right
//! finding kind, and passes the clean control, with every monitor active. Each pipeline is
//! audited from a config alone, as the user running the test; `rootless.rs` runs the same suite,
//! judged by the same rule (`common::faulty`), as nobody.

mod common;

use common::User;
use common::faulty::{Audited, audit, check, dir as faulty_dir, expected, seed_of};

/// Audits with `extra` appended to the config (e.g. `[[waiver]]` entries), with its own seed.
fn audit_with(name: &str, extra: &str) -> (i32, Vec<String>, serde_json::Value) {
    audit_args(name, extra, &["--seed", &seed_of(name).to_string()])
}

/// Audits with `extra` appended to the config and `args` added to the command line.
fn audit_args(name: &str, extra: &str, args: &[&str]) -> (i32, Vec<String>, serde_json::Value) {
    let Audited {
        code,
        kinds,
        report,
    } = audit(name, extra, args, User::Caller);
    (code, kinds, report)
}

macro_rules! faulty {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { check(stringify!($name), User::Caller); } )*
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
