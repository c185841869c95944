//! The reference pipeline passes the default audit (`traceless.toml`, every scenario), and the
//! audit leaves nothing behind: no process, no temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The pipeline binary cargo built beside this test (`cargo test --workspace` builds it).
fn pipeline_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("traceless-pipeline");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p traceless-pipeline` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

#[test]
fn the_reference_pipeline_passes_the_default_audit() {
    let dir = tempfile::tempdir().unwrap();
    let default = std::fs::read_to_string(root().join("traceless.toml")).unwrap();
    let config = default
        .replace(
            "\"target/release/traceless-pipeline\"",
            &format!("{:?}", pipeline_binary().display().to_string()),
        )
        .replace("\"fixtures/", &format!("\"{}/fixtures/", root().display()))
        .replace(
            "\"scenarios/",
            &format!("\"{}/scenarios/", root().display()),
        )
        .replace(
            "fixtures = \"fixtures\"",
            &format!("fixtures = \"{}/fixtures\"", root().display()),
        );
    let cfg = dir.path().join("traceless.toml");
    std::fs::write(&cfg, config).unwrap();
    // The audit's own temp dir goes here, so leftovers are seen whatever else runs at once.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args(["audit", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .args(["--seed", "11", "--cases", "16"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}\nfindings: {}\nscenarios failing: {}",
        String::from_utf8_lossy(&output.stderr),
        serde_json::to_string_pretty(&report["findings"]).unwrap(),
        serde_json::to_string_pretty(
            &report["scenarios"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["outcome"] != "pass")
                .collect::<Vec<_>>()
        )
        .unwrap()
    );
    assert_eq!(report["verdict"], "pass");
    // A real audit's report validates against the published schema, not only the samples do.
    let schema: serde_json::Value = serde_json::from_str(traceless_report::JSON_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "report.json breaks its schema: {problems:#?}"
    );
    let reloaded = traceless_report::load(&out.join("report.json")).expect("the report loads back");
    assert_eq!(reloaded.verdict.as_str(), "pass");
    for file in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let clauses = report["clauses"].as_array().unwrap();
    assert!(clauses.iter().any(|c| c["verdict"] == "pass"));
    assert!(clauses.iter().all(|c| c["verdict"] != "fail"));
    let leftover: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        leftover.is_empty(),
        "the audit left files behind: {leftover:?}"
    );
}
