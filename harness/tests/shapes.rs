//! Request shapes beyond one photo and one prompt: extra image parts (each a canary of its own
//! request), a prompt two users share (sent without a marker, and the report says what that
//! hides), and a user's pause between requests.

mod common;

use std::path::{Path, PathBuf};

use common::{Extra, audit_command, config, report, scenario_glob, script};

fn pipeline(dir: &str, name: &str) -> PathBuf {
    script(dir, name)
}

fn scenarios() -> String {
    scenario_glob("shapes")
}

fn audit(dir: &Path, script: &Path, tail: &str, scenario: &str) -> (i32, serde_json::Value) {
    let cfg = config(
        script,
        &scenarios(),
        Extra {
            tail,
            ..Extra::default()
        },
    );
    let output = audit_command(dir, &cfg, &["--scenario", scenario])
        .output()
        .unwrap();
    let report = report(dir, &output);
    (output.status.code().unwrap_or(-1), report)
}

fn findings(report: &serde_json::Value) -> Vec<(String, Option<u64>)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["request"].as_u64(),
            )
        })
        .collect()
}

const MASK: &str = "[[pipeline.request.images]]\nfield = \"mask\"\nwidth = 48\nheight = 48\n";

#[test]
fn a_kept_mask_is_found_as_its_own_requests_image() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = audit(
        dir.path(),
        &pipeline("shapes", "disk_mask"),
        MASK,
        "two-with-a-mask",
    );
    let found = findings(&report);
    assert_eq!(code, 1, "{}", report["summary"]);
    let requests: Vec<Option<u64>> = report["scenarios"][0]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64())
        .collect();
    // One kept mask per request, each named by the request whose mask it is.
    for r in &requests {
        assert!(
            found.contains(&("disk-persistence".to_owned(), *r)),
            "no disk-persistence for request {r:?}: {found:?}"
        );
    }
    assert!(
        found.iter().all(|(k, _)| k == "disk-persistence"),
        "{found:?}"
    );
}

#[test]
fn the_clean_pipeline_with_a_mask_part_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = audit(
        dir.path(),
        &pipeline("faulty", "clean"),
        MASK,
        "two-with-a-mask",
    );
    assert_eq!(findings(&report), vec![], "{}", report["summary"]);
    assert_eq!(code, 0, "{}", report["summary"]);
}

#[test]
fn a_shared_prompt_is_not_looked_for_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // log_prompt writes every prompt to stdout: with a marker, a log-leak (the faulty suite).
    let (_, report) = audit(
        dir.path(),
        &pipeline("faulty", "log_prompt"),
        "",
        "shared-prompt",
    );
    assert_eq!(findings(&report), vec![], "{}", report["summary"]);
    for r in report["scenarios"][0]["requests"].as_array().unwrap() {
        let note = r["note"].as_str().unwrap_or_default();
        assert!(note.contains("shared prompt"), "{r}");
        assert!(note.contains("not looked for"), "{r}");
    }
}

#[test]
fn a_pause_separates_the_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = audit(dir.path(), &pipeline("faulty", "clean"), "", "paused");
    assert_eq!(code, 0, "{}", report["summary"]);
    let timeline = report["scenarios"][0]["timeline"].as_array().unwrap();
    let at = |what: &str| {
        timeline
            .iter()
            .find(|e| e["what"].as_str().is_some_and(|w| w.starts_with(what)))
            .and_then(|e| e["t-ms"].as_u64())
            .unwrap_or_else(|| panic!("no {what:?} in {timeline:#?}"))
    };
    let requests = report["scenarios"][0]["requests"].as_array().unwrap();
    let (first, second) = (&requests[0]["id"], &requests[1]["id"]);
    let first_answered = at(&format!("request {first} answered"));
    let second_sent = at(&format!("request {second} sent"));
    assert!(
        second_sent >= first_answered + 400,
        "request {second} sent at {second_sent} ms, {first} answered at {first_answered} ms"
    );
}
