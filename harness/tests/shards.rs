//! A sharded audit merged is the audit: `traceless audit --shard k/n` on every shard, then
//! `traceless report --merge`, gives the clause verdicts, scenario results, request ids and
//! property-case count of the unsharded run with the same seed; a missing shard or a shard of
//! another audit never merges into a pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Extra, audit_command, config, report, scenario_glob, script};
use serde_json::Value;

const SEED: &str = "4242";
const CASES: &str = "9";

fn faulty(name: &str) -> PathBuf {
    script("faulty", name)
}

fn scenarios() -> String {
    scenario_glob("faulty")
}

/// One audit of `pipeline` into `<dir>/out`: (exit code, report).
fn audit(dir: &Path, pipeline: &str, extra: &[&str]) -> (i32, Value) {
    let cfg = config(&faulty(pipeline), &scenarios(), Extra::default());
    let mut args = vec!["--cases", CASES, "--seed", SEED];
    args.extend_from_slice(extra);
    let output = audit_command(dir, &cfg, &args).output().unwrap();
    let report = report(dir, &output);
    (output.status.code().unwrap_or(-1), report)
}

/// Every shard of `count` audited (one after another; each has the machine to itself), then
/// merged: (the merge's exit code, the merged report, the shards' reports).
fn sharded(pipeline: &str, count: u32, keep: &tempfile::TempDir) -> (i32, Value, Vec<Value>) {
    let mut files = Vec::new();
    let mut shards = Vec::new();
    for index in 1..=count {
        let dir = keep.path().join(format!("shard-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (code, report) = audit(&dir, pipeline, &["--shard", &format!("{index}/{count}")]);
        assert!(
            code == 0 || code == 1,
            "shard {index}/{count} ended {code}: {}",
            report["summary"]
        );
        assert_eq!(
            report["provenance"]["shard"],
            serde_json::json!({"index": index, "count": count})
        );
        files.push(dir.join("out/report.json"));
        shards.push(report);
    }
    let (code, merged) = merge(&files, &keep.path().join("merged"));
    (code, merged, shards)
}

fn merge(files: &[PathBuf], out: &Path) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["report", "--merge"])
        .args(files)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let text = std::fs::read(out.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no merged report: {e}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    for file in ["report.md", "report.html", "junit.xml"] {
        assert!(out.join(file).is_file(), "the merge wrote no {file}");
    }
    (
        output.status.code().unwrap_or(-1),
        serde_json::from_slice(&text).unwrap(),
    )
}

type Essence = (
    Vec<(String, String)>,
    Vec<(String, String, Vec<u64>, Value, Value)>,
    Value,
);

/// What must be the same: each clause's verdict, each scenario's outcome and request ids in
/// order, the passing property cases' request count and fingerprint, the property-case count.
fn essence(report: &Value) -> Essence {
    let clauses = report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].to_string(), c["verdict"].to_string()))
        .collect();
    let scenarios = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ids = s["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_u64().unwrap())
                .collect();
            // Passing property cases are counted: their number and fingerprint of every
            // (id, provider, behaviour, status) must match.
            (
                s["id"].to_string(),
                s["outcome"].to_string(),
                ids,
                s["passing"]["requests"].clone(),
                s["passing"]["fingerprint"].clone(),
            )
        })
        .collect();
    (clauses, scenarios, report["provenance"]["cases"].clone())
}

fn unsharded_clean() -> &'static (i32, Value) {
    static RUN: OnceLock<(i32, Value)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        audit(dir.path(), "clean", &[])
    })
}

fn merged_equals_unsharded(count: u32) {
    let (code, whole) = unsharded_clean();
    assert_eq!(*code, 0, "{}: {}", whole["summary"], whole["errors"]);
    let keep = tempfile::tempdir().unwrap();
    let (merged_code, merged, shards) = sharded("clean", count, &keep);
    assert_eq!(merged_code, 0, "{}", merged["summary"]);
    assert_eq!(essence(&merged), essence(whole), "{count} shards");
    // Each shard did only its share: no scenario and no property case was run twice.
    let run: usize = shards
        .iter()
        .map(|s| s["provenance"]["scenarios"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        run,
        whole["provenance"]["scenarios"].as_array().unwrap().len()
    );
    assert_eq!(
        merged["provenance"]["merged-from"]
            .as_array()
            .unwrap()
            .len(),
        count as usize
    );
}

#[test]
fn two_shards_merge_into_the_unsharded_audit() {
    merged_equals_unsharded(2);
}

#[test]
fn three_shards_merge_into_the_unsharded_audit() {
    merged_equals_unsharded(3);
}

#[test]
fn a_finding_in_one_shard_fails_the_merge_and_a_missing_shard_leaves_it_incomplete() {
    let keep = tempfile::tempdir().unwrap();
    let (code, merged, shards) = sharded("log_prompt", 2, &keep);
    assert_eq!(code, 1, "{}", merged["summary"]);
    let kinds = |r: &Value| -> Vec<String> {
        let mut k: Vec<String> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].to_string())
            .collect();
        k.sort();
        k
    };
    assert!(
        kinds(&merged).contains(&"\"log-leak\"".to_owned()),
        "{merged:#}"
    );
    let total: usize = shards
        .iter()
        .map(|s| s["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(merged["findings"].as_array().unwrap().len(), total);

    // Shard 2 of 2 only: the first shard's work was never exercised.
    let (code, alone) = merge(
        &[keep.path().join("shard-2/out/report.json")],
        &keep.path().join("alone"),
    );
    assert_eq!(code, 1, "a finding still fails: {}", alone["summary"]);
    let clean = tempfile::tempdir().unwrap();
    let dir = clean.path().join("shard-1");
    std::fs::create_dir_all(&dir).unwrap();
    let (shard_code, _) = audit(&dir, "clean", &["--shard", "1/3"]);
    assert_eq!(shard_code, 0);
    let (code, partial) = merge(
        &[dir.join("out/report.json")],
        &clean.path().join("partial"),
    );
    assert_eq!(code, 2, "{}", partial["summary"]);
    assert_eq!(partial["verdict"], "incomplete");
    let errors = partial["errors"].to_string();
    assert!(
        errors.contains("shard 2/3 is missing") && errors.contains("shard 3/3 is missing"),
        "{errors}"
    );

    // A shard of another audit (here: another seed) is refused, naming the key.
    let other = clean.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let cfg = config(&faulty("clean"), &scenarios(), Extra::default());
    let out = audit_command(
        &other,
        &cfg,
        &["--cases", CASES, "--seed", "1", "--shard", "2/3"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let refused = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["report", "--merge"])
        .arg(dir.join("out/report.json"))
        .arg(other.join("out/report.json"))
        .arg("--out")
        .arg(clean.path().join("refused"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("provenance.seed"), "{stderr}");
}

#[test]
fn a_shard_needs_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&faulty("clean"), &scenarios(), Extra::default());
    let out = audit_command(dir.path(), &cfg, &["--shard", "1/2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--seed"), "{stderr}");
    let out = audit_command(dir.path(), &cfg, &["--shard", "3/2", "--seed", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("k/n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
