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

/// The YAML blocks of a README section, in order.
fn readme_yaml(heading: &str) -> Vec<Value> {
    let readme = readme();
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let section = section.split("\n#").next().unwrap();
    section
        .split("```yaml\n")
        .skip(1)
        .map(|block| {
            let text = block.split("```").next().unwrap();
            serde_norway::from_str(text)
                .unwrap_or_else(|e| panic!("a YAML block under {heading:?} does not parse: {e}"))
        })
        .collect()
}

#[test]
fn the_sharded_recipes_run_every_shard_of_one_seed_and_gate_on_the_merge() {
    let blocks = readme_yaml("### Sharded audits");
    assert_eq!(blocks.len(), 2, "a GitHub and a GitLab recipe");

    let gh = &blocks[0]["jobs"];
    let shards = gh["shard"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .unwrap()
        .len();
    assert!(shards >= 2);
    assert_eq!(gh["shard"]["strategy"]["fail-fast"].as_bool(), Some(false));
    let runs = |job: &Value| -> Vec<String> {
        job["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_owned))
            .collect()
    };
    let shard_runs = runs(&gh["shard"]);
    let audit = the_audit("README GitHub recipe", &shard_runs);
    assert!(
        audit.contains(&format!("--shard ${{{{ matrix.shard }}}}/{shards}"))
            && audit.contains("--seed ${{ github.run_id }}")
            && !audit.contains("||"),
        "{audit}"
    );
    assert_eq!(gh["merge"]["needs"].as_str(), Some("shard"));
    assert_eq!(
        gh["merge"]["if"].as_str(),
        Some("always()"),
        "a failing shard must still be merged"
    );
    let merge_runs = runs(&gh["merge"]);
    let merge = merge_runs
        .iter()
        .find(|r| r.contains("report --merge"))
        .expect("no merge step");
    assert!(
        merge.contains("--out reports/latest") && !merge.contains("||"),
        "{merge}"
    );

    let gl = &blocks[1];
    let shard_job = &gl["audit-shard"];
    assert!(shard_job["parallel"].as_u64().unwrap() >= 2);
    let script = strs(&shard_job["script"]);
    let audit = the_audit("README GitLab recipe", &script);
    assert!(
        audit.starts_with("setpriv --reuid=auditor")
            && audit.contains("--shard $CI_NODE_INDEX/$CI_NODE_TOTAL")
            && audit.contains("--seed $CI_PIPELINE_ID"),
        "{audit}"
    );
    let gate = &gl["audit"];
    assert_eq!(gate["when"].as_str(), Some("always"));
    assert_eq!(gate["needs"][0]["job"].as_str(), Some("audit-shard"));
    assert!(gate.get("allow_failure").is_none());
    let script = strs(&gate["script"]);
    assert!(
        script
            .iter()
            .any(|c| c.contains("report --merge reports/shard-*/report.json")),
        "{script:?}"
    );
    assert_eq!(
        gate["artifacts"]["reports"]["junit"].as_str(),
        Some("reports/latest/junit.xml")
    );
}
