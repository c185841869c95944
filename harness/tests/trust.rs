//! A PASS must mean the policy was exercised and held: these audits check that nothing short of
//! that reads as a pass, that a crash or a signal is reported as such with the evidence kept,
//! and that nothing of the audited pipeline outlives the audit.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    Extra, audit_command, clause, config, outcomes, processes_with, report, root, scenario_glob,
    script,
};

fn faulty(name: &str) -> PathBuf {
    script("faulty", name)
}

fn trust(name: &str) -> PathBuf {
    script("trust", name)
}

fn faulty_scenarios() -> String {
    scenario_glob("faulty")
}

fn trust_scenarios() -> String {
    scenario_glob("trust")
}

/// Runs an audit to its end: (exit code, report).
fn audit(dir: &Path, config_text: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let output = audit_command(dir, config_text, args).output().unwrap();
    let report = report(dir, &output);
    (output.status.code().unwrap_or(-1), report)
}

#[test]
fn a_clause_passes_only_when_its_check_was_exercised() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&faulty("clean"), &faulty_scenarios(), Extra::default());
    let (code, report) = audit(dir.path(), &cfg, &["--scenario", "both-providers"]);
    let (verdict, reason) = clause(&report, "7-no-child-data");
    assert_eq!(verdict, "not-tested", "{}", report["summary"]);
    assert!(
        reason.contains("no request without age confirmation was answered"),
        "{reason}"
    );
    assert_eq!(clause(&report, "2c-no-sharing").0, "pass");
    assert_eq!(code, 0, "{}", report["summary"]);

    let (code, report) = audit(dir.path(), &cfg, &["--scenario", "age-gate"]);
    assert_eq!(clause(&report, "7-no-child-data").0, "pass");
    // One refused request answers nothing with an image: nothing to leak into another answer.
    let (verdict, reason) = clause(&report, "4c-device-only");
    assert_eq!(verdict, "not-tested", "{reason}");
    assert!(reason.contains("cross-request-leak"), "{reason}");
    assert_eq!(code, 0, "{}", report["summary"]);
}

#[test]
fn a_pipeline_that_never_becomes_healthy_passes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken.py");
    std::fs::write(
        &script,
        "import sys\nsys.stderr.write('broken: no config here\\n')\nsys.exit(3)\n",
    )
    .unwrap();
    let cfg = config(&script, &faulty_scenarios(), Extra::default());
    let (code, report) = audit(dir.path(), &cfg, &[]);
    assert_eq!(code, 2, "{}", report["summary"]);
    assert_eq!(report["verdict"], "incomplete");
    let passed: Vec<_> = report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "not-tested")
        .map(|c| c["id"].clone())
        .collect();
    assert!(passed.is_empty(), "judged without evidence: {passed:?}");
    for (id, outcome) in outcomes(&report) {
        assert_eq!(outcome, "not-run", "{id}");
    }
    let errors = report["errors"].to_string();
    assert!(errors.contains("exit code 3"), "{errors}");
    assert!(errors.contains("broken: no config here"), "{errors}");
    // The same report, read back by `traceless report`, renders.
    let md = std::process::Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["report", "--format", "md", "--from"])
        .arg(dir.path().join("out/report.json"))
        .output()
        .unwrap();
    assert!(
        md.status.success(),
        "{}",
        String::from_utf8_lossy(&md.stderr)
    );
    assert!(String::from_utf8_lossy(&md.stdout).contains("not run"));
}

#[test]
fn a_crash_mid_audit_is_reported_with_its_status_request_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &trust("crash_after_three"),
        &trust_scenarios(),
        Extra::default(),
    );
    let (code, report) = audit(dir.path(), &cfg, &[]);
    assert_eq!(code, 2, "{}", report["summary"]);
    let crash = &report["crash"];
    assert!(crash["status"] == "exit code 70", "{crash}");
    assert_eq!(crash["scenario"], "a-three-then-more", "{crash}");
    assert!(
        crash["stderr-tail"]
            .as_str()
            .unwrap()
            .contains("giving up after three answers"),
        "{crash}"
    );
    let outcomes = outcomes(&report);
    assert_ne!(outcomes[0].1, "pass", "{outcomes:?}");
    assert_eq!(outcomes[1], ("b-after-the-crash".into(), "not-run".into()));
    assert!(
        report["summary"]
            .as_str()
            .unwrap()
            .contains("the pipeline died: exit code 70"),
        "{}",
        report["summary"]
    );
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
    let sent = report["scenarios"][0]["requests"].as_array().unwrap();
    assert!(
        (3..=4).contains(&sent.len()),
        "nothing is sent to a dead pipeline: {sent:?}"
    );
}

#[test]
fn a_provider_the_policy_does_not_list_is_a_wrong_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &faulty("clean"),
        &faulty_scenarios(),
        Extra {
            policy: "allowed_providers = [\"openai\"]",
            ..Extra::default()
        },
    );
    let (code, report) = audit(dir.path(), &cfg, &["--scenario", "both-providers"]);
    let findings = report["findings"].as_array().unwrap();
    let unlisted: Vec<_> = findings
        .iter()
        .filter(|f| {
            f["kind"] == "wrong-recipient"
                && f["summary"]
                    .as_str()
                    .unwrap()
                    .contains("went to gemini, which the policy does not list")
        })
        .collect();
    assert!(!unlisted.is_empty(), "{findings:#?}");
    // Findings name the clause map's ids, which the report loader accepts.
    let clauses = unlisted[0]["clauses"].as_array().unwrap();
    assert!(clauses.contains(&"2c-no-sharing".into()), "{clauses:?}");
    assert_eq!(code, 1);
    let html = std::process::Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["report", "--format", "html", "--from"])
        .arg(dir.path().join("out/report.json"))
        .output()
        .unwrap();
    assert!(
        html.status.success(),
        "{}",
        String::from_utf8_lossy(&html.stderr)
    );
}

#[test]
fn a_skipped_plaintext_probe_leaves_transmission_not_tested() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &faulty("clean"),
        &faulty_scenarios(),
        Extra {
            pipeline: "refuses_plaintext_providers = false",
            ..Extra::default()
        },
    );
    let (_, report) = audit(dir.path(), &cfg, &["--scenario", "both-providers"]);
    let (verdict, reason) = clause(&report, "6-transmission-encrypted");
    assert_eq!(verdict, "not-tested");
    assert!(
        reason.contains("refuses_plaintext_providers = false"),
        "{reason}"
    );
}

#[test]
fn a_report_folder_that_cannot_be_written_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let script = dir.path().join("marker.py");
    std::fs::write(
        &script,
        format!("open({:?}, 'w').close()\n", marker.display().to_string()),
    )
    .unwrap();
    let cfg = config(&script, &faulty_scenarios(), Extra::default());
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let output = audit_command(dir.path(), &cfg, &[])
        .args(["--out"])
        .arg(dir.path().join("a-file"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--out"), "{stderr}");
    assert!(!marker.exists(), "the pipeline was started");
}

/// Interrupts an audit of a pipeline that ignores SIGTERM and left a daemon behind, once the
/// daemon runs; returns (exit code, report, the pipeline's TMPDIR, its marker variable).
fn interrupt(signal: nix::sys::signal::Signal) -> (i32, serde_json::Value, PathBuf, String) {
    let (code, report, tmpdir, needle) = interrupt_without_report(signal);
    (code, report.expect("no report"), tmpdir, needle)
}

fn interrupt_without_report(
    signal: nix::sys::signal::Signal,
) -> (i32, Option<serde_json::Value>, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let env = format!("TRUST_MARKER = {:?}", marker.display().to_string());
    // A declared service carries the marker too: it must end with everything else.
    let service = format!(
        "[[service]]\nname = \"idle\"\ncommand = [\"sleep\", \"600\"]\nready = [\"true\"]\nenv = {{ {env} }}\n"
    );
    let cfg = config(
        &trust("stubborn_daemon"),
        &trust_scenarios(),
        Extra {
            env: &env,
            tail: &service,
            ..Extra::default()
        },
    );
    let mut child = audit_command(dir.path(), &cfg, &["--scenario", "long-run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let written = |m: &Path| std::fs::read_to_string(m).is_ok_and(|t| t.ends_with("daemon\n"));
    while !written(&marker) {
        assert!(
            Instant::now() < deadline,
            "the pipeline never started its daemon"
        );
        assert!(child.try_wait().unwrap().is_none(), "the audit ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tmpdir = PathBuf::from(
        std::fs::read_to_string(&marker)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let output = child.wait_with_output().unwrap();
    let report = dir
        .path()
        .join("out/report.json")
        .exists()
        .then(|| report(dir.path(), &output));
    let needle = format!("TRUST_MARKER={}", marker.display());
    (output.status.code().unwrap_or(-1), report, tmpdir, needle)
}

/// No process carrying this test's marker variable is left, nor the pipeline's TMPDIR.
fn nothing_outlived(tmpdir: &Path, needle: &str) {
    let left = processes_with(needle);
    assert!(left.is_empty(), "left running: {left:?}");
    assert!(!tmpdir.exists(), "{} was left behind", tmpdir.display());
}

#[test]
fn sigterm_stops_everything_and_writes_an_interrupted_report() {
    let (code, report, tmpdir, needle) = interrupt(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, 143, "{}", report["summary"]);
    assert_eq!(report["interrupted"], "SIGTERM");
    assert_eq!(
        report["verdict"], "incomplete",
        "findings: {}\nmonitors: {}",
        report["findings"], report["monitors"]
    );
    assert_eq!(
        outcomes(&report)[0].1,
        "incomplete",
        "{}",
        report["summary"]
    );
    // The pipeline was stopped by the harness, not dropped: its monitors gave their statuses
    // (a memory scan under way when the signal came must not keep the supervisor from stopping).
    let monitors = report["monitors"].as_array().map_or(0, Vec::len);
    assert!(monitors >= 5, "monitors: {}", report["monitors"]);
    assert_eq!(
        report["errors"],
        serde_json::json!(["the audit was interrupted by SIGTERM before it finished"])
    );
    nothing_outlived(&tmpdir, &needle);
}

#[test]
fn sigint_stops_everything_and_writes_an_interrupted_report() {
    let (code, report, tmpdir, needle) = interrupt(nix::sys::signal::Signal::SIGINT);
    assert_eq!(code, 130, "{}", report["summary"]);
    assert_eq!(report["interrupted"], "SIGINT");
    nothing_outlived(&tmpdir, &needle);
}

#[test]
fn sigkill_of_the_harness_takes_the_pipeline_with_it_and_the_next_audit_cleans_up() {
    let (code, _, tmpdir, needle) = interrupt_without_report(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(code, -1, "killed by a signal, no exit code");
    // The kernel ends the tree once its parent is gone: give it a bounded time to do so.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_with(&needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            processes_with(&needle)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only the audit's folder may stay behind a SIGKILL; the next audit removes it.
    let audit_dir = tmpdir.parent().unwrap().to_path_buf();
    assert!(audit_dir.exists());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken.py");
    std::fs::write(&script, "import sys\nsys.exit(3)\n").unwrap();
    let cfg = config(&script, &faulty_scenarios(), Extra::default());
    let (code, _) = audit(dir.path(), &cfg, &[]);
    assert_eq!(code, 2);
    assert!(
        !audit_dir.exists(),
        "{} was not removed by the next audit",
        audit_dir.display()
    );
}

#[test]
fn a_daemon_is_reported_with_the_request_it_outlived() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &trust("lingering_daemon"),
        &faulty_scenarios(),
        Extra::default(),
    );
    let (_, report) = audit(dir.path(), &cfg, &["--scenario", "both-providers"]);
    let orphans = report["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{orphans:#?}");
    let first = &report["scenarios"][0]["requests"][0]["id"];
    // Started before the first request was answered, found as soon as that answer was in.
    assert_eq!(orphans[0]["scenario"], "both-providers", "{orphans:#?}");
    assert_eq!(
        orphans[0]["requests"],
        serde_json::json!([first]),
        "{orphans:#?}"
    );
    let detail = orphans[0]["detail"].as_str().unwrap();
    assert!(detail.contains("still running at the stop"), "{detail}");
}

#[test]
fn a_seed_replays_concurrent_property_cases_exactly() {
    let cfg = config(&faulty("clean"), &faulty_scenarios(), Extra::default());
    let run_with = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        let (code, report) = audit(
            dir.path(),
            &cfg,
            &["--scenario", "age-gate", "--cases", "12", "--seed", seed],
        );
        assert_eq!(code, 0, "{}", report["summary"]);
        let props = report["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == "properties")
            .unwrap()
            .clone();
        // Passing cases are counted, not listed: their fingerprint covers each request's id,
        // provider, scripted behaviour and status.
        (
            props["passing"]["requests"].as_u64().unwrap(),
            props["passing"]["fingerprint"].as_str().unwrap().to_owned(),
            props["passing"]["behaviours"].clone(),
            props["requests"].as_array().unwrap().len(),
        )
    };
    let run = || run_with("77");
    let first = run();
    assert!(
        first.0 > 12,
        "no case sent requests at once: {} requests for 12 cases",
        first.0
    );
    assert_eq!(first.3, 0, "a passing case's request was listed");
    assert_eq!(first, run(), "the same seed drew or answered differently");
    assert_ne!(
        first.1,
        run_with("78").1,
        "another seed gave the same fingerprint: it pins nothing"
    );
}

#[test]
fn the_evidence_file_holds_every_request_the_report_counts() {
    use sha2::Digest as _;
    let cfg = config(&faulty("clean"), &faulty_scenarios(), Extra::default());
    let dir = tempfile::tempdir().unwrap();
    let (code, report) = audit(dir.path(), &cfg, &["--cases", "10", "--seed", "5"]);
    assert_eq!(code, 0, "{}", report["summary"]);
    let listed = &report["provenance"]["evidence"][0];
    assert_eq!(listed["path"], "evidence.jsonl");
    let text = std::fs::read(dir.path().join("out/evidence.jsonl")).unwrap();
    assert_eq!(
        listed["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&text)),
        "the report's digest is not the file's"
    );
    let records: Vec<serde_json::Value> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(records[0]["schema"], "traceless.evidence/v1");
    assert_eq!(records[0]["seed"], 5);
    let requests_in_file = |scenario: &str| {
        records
            .iter()
            .filter(|r| r["record"] == "request" && r["scenario"] == scenario)
            .count() as u64
    };
    for s in report["scenarios"].as_array().unwrap() {
        let counted = s["passing"]["requests"].as_u64().unwrap_or(0);
        let listed = s["requests"].as_array().unwrap().len() as u64;
        assert_eq!(
            requests_in_file(s["id"].as_str().unwrap()),
            counted + listed,
            "scenario {}",
            s["id"]
        );
    }
    assert!(
        records.iter().any(|r| r["record"] == "provider-call"),
        "no provider call in the evidence file"
    );
}

#[test]
fn the_committed_example_reports_round_trip_through_traceless_report() {
    let examples = root().join("reports/example");
    let mut seen = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let json = entry.unwrap().path().join("report.json");
        if !json.is_file() {
            continue;
        }
        seen += 1;
        for format in ["json", "md", "html", "junit"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_traceless"))
                .args(["report", "--format", format, "--from"])
                .arg(&json)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} as {format}: {}",
                json.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            if format == "json" {
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout),
                    std::fs::read_to_string(&json).unwrap(),
                    "{} does not round-trip",
                    json.display()
                );
            }
        }
    }
    assert!(seen >= 2, "no example reports under {}", examples.display());
}

/// A declared service that cannot be started leaves the audit incomplete, naming the service and
/// why, and leaves nothing behind: neither its processes nor its folder.
#[test]
fn a_service_that_cannot_start_passes_nothing_and_leaves_nothing() {
    for (table, why) in [
        (
            "command = [\"sleep\", \"600\"]\nready_timeout_ms = 300",
            "service stuck: it did not become ready",
        ),
        (
            "command = [\"sleep\", \"600\"]\nsetup = [[\"sh\", \"-c\", \"echo no initdb here >&2; exit 3\"]]",
            "service stuck: a setup command: `sh -c echo no initdb here >&2; exit 3` failed (exit status: 3): no initdb here",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let needle = format!("TRUST_SERVICE={}", dir.path().display());
        let tail = format!(
            "[[service]]\nname = \"stuck\"\n{table}\nenv = {{ TRUST_SERVICE = {:?} }}\n",
            dir.path().display().to_string()
        );
        let cfg = config(
            &faulty("clean"),
            &faulty_scenarios(),
            Extra {
                tail: &tail,
                ..Extra::default()
            },
        );
        let output = audit_command(dir.path(), &cfg, &["--scenario", "both-providers"])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        let report = report(dir.path(), &output);
        assert_eq!(output.status.code(), Some(2), "{}", report["summary"]);
        assert_eq!(report["verdict"], "incomplete");
        let errors = report["errors"].to_string();
        assert!(
            errors.contains("starting the declared services: "),
            "{errors}"
        );
        assert!(errors.contains(why), "{errors}");
        assert_eq!(outcomes(&report)[0].1, "not-run");
        let left = processes_with(&needle);
        assert!(left.is_empty(), "left running: {left:?}");
        let files: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
        assert!(files.is_empty(), "left behind: {files:?}");
    }
}

/// Audits a backend with `live_requests = 2` on the twelve-request scenario, checking that
/// needles were actually retired (else the audit proves nothing about the sweep).
fn audit_with_retired_needles(backend: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let glob = root()
        .join("harness/tests/trust/retire/*.toml")
        .display()
        .to_string();
    let cfg = config(
        &trust(backend),
        &glob,
        Extra {
            tail: "live_requests = 2",
            ..Extra::default()
        },
    );
    let output = audit_command(dir.path(), &cfg, &[])
        .env("TRACELESS_LOG", "warn,traceless=info")
        .output()
        .unwrap();
    let report = report(dir.path(), &output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("requests were retired to disk"),
        "no needle was retired, so this audit proves nothing about the sweep: {stderr}"
    );
    assert_eq!(output.status.code(), Some(1), "{}", report["summary"]);
    report
}

#[test]
fn a_copy_written_after_its_request_was_retired_is_still_found_by_the_end_of_run_sweep() {
    let report = audit_with_retired_needles("write_behind");
    let backlog = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "disk-persistence")
        .unwrap_or_else(|| panic!("no disk finding: {}", report["findings"]));
    // Live scans alone (requests 8..=12 when the file was written) would cover five of its
    // twelve images.
    let summary = backlog["summary"].as_str().unwrap();
    let covered: u64 = summary
        .split(" holds ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        covered > 11 * 9000,
        "the backlog holds twelve images of about 9.3 KB: {summary}"
    );
    assert_eq!(backlog["request"], 1, "{summary}");
}

#[test]
fn a_copy_printed_after_its_request_was_retired_is_still_found_by_the_end_of_run_sweep() {
    let report = audit_with_retired_needles("print_behind");
    let logged: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "log-leak")
        .collect();
    // Live scans alone (requests 11 and 12 live when the backlog was printed) name neither
    // request 1 nor any request before 11.
    let requests: std::collections::BTreeSet<u64> = logged
        .iter()
        .flat_map(|f| f["evidence"].as_array().unwrap())
        .filter_map(|item| item["request"].as_u64())
        .chain(logged.iter().filter_map(|f| f["request"].as_u64()))
        .collect();
    assert!(
        requests.contains(&1),
        "request 1's image was printed in base64: {requests:?} {logged:?}"
    );
}
