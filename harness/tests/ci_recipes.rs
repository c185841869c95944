//! The CI recipes (`.github/workflows/audit.yml`, `.gitlab-ci.yml`) parse, keep the report, gate on
//! the audit's exit code, run the audit without root, and run exactly the commands README documents.

use std::path::{Path, PathBuf};

use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn yaml(rel: &str) -> Value {
    let path = root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{rel} does not parse: {e}"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Every command must appear, as one line, in README.
fn documented(file: &str, commands: &[String]) {
    let readme = readme();
    for c in commands {
        assert!(
            readme.lines().any(|l| l.trim() == c.trim()
                || l.trim()
                    .trim_start_matches("- ")
                    .trim_start_matches("run: ")
                    == c.trim()),
            "{file} runs `{c}`, which README does not document"
        );
    }
}

/// The command that runs the audit: the only one mentioning it.
fn the_audit<'a>(file: &str, commands: &'a [String]) -> &'a str {
    let audits: Vec<&String> = commands
        .iter()
        .filter(|c| c.contains("xtask audit") || c.contains("traceless audit"))
        .collect();
    assert_eq!(
        audits.len(),
        1,
        "{file}: which command audits? {commands:?}"
    );
    audits[0]
}

#[test]
fn the_github_workflow_builds_audits_unprivileged_keeps_the_report_and_gates() {
    let file = ".github/workflows/audit.yml";
    let w = yaml(file);
    let steps = w["jobs"]["audit"]["steps"].as_sequence().unwrap();
    let runs: Vec<String> = steps
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .collect();
    let audit = the_audit(file, &runs);
    // no sudo, no `|| true`: the runner's ordinary user, and a failing audit fails the step
    assert!(!audit.contains("sudo") && !audit.contains("||"), "{audit}");
    assert!(audit.contains("--ci"), "{audit}");
    let audit_step = steps
        .iter()
        .find(|s| s["run"].as_str() == Some(audit))
        .unwrap();
    assert!(
        audit_step.get("continue-on-error").is_none(),
        "the audit's exit code must gate the job"
    );
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("no upload-artifact step");
    assert_eq!(
        upload["if"].as_str(),
        Some("always()"),
        "keep the report of a failing audit"
    );
    let paths = upload["with"]["path"].as_str().unwrap();
    for report in ["reports/latest/report.html", "reports/latest/junit.xml"] {
        assert!(paths.lines().any(|l| l.trim() == report), "{paths}");
    }
    documented(file, &runs);
}

#[test]
fn the_gitlab_job_does_the_same() {
    let file = ".gitlab-ci.yml";
    let g = yaml(file);
    let job = &g["audit"];
    let script = strs(&job["script"]);
    let audit = the_audit(file, &script);
    // run as the ordinary user the job creates
    assert!(audit.starts_with("setpriv --reuid=auditor"), "{audit}");
    assert!(audit.contains("--ci") && !audit.contains("||"), "{audit}");
    assert!(
        job.get("allow_failure").is_none(),
        "the audit's exit code must gate the job"
    );
    assert_eq!(job["artifacts"]["when"].as_str(), Some("always"));
    let paths = strs(&job["artifacts"]["paths"]);
    for report in ["reports/latest/report.html", "reports/latest/junit.xml"] {
        assert!(paths.iter().any(|p| p == report), "{paths:?}");
    }
    documented(file, &script);
}

#[test]
fn the_kit_workflow_parses_and_audits_the_kit_config() {
    let file = "harness/src/init/workflow.yml";
    let w = yaml(file);
    let steps = w["jobs"]["traceless"]["steps"].as_sequence().unwrap();
    let runs: Vec<String> = steps
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .collect();
    let audit = the_audit(file, &runs);
    assert_eq!(
        audit,
        "traceless audit --config traceless.toml --out reports/latest --ci"
    );
    assert!(steps.iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
            && s["if"].as_str() == Some("always()")
    }));
}
