//! The public-exposure probe follows what the pipeline's answers named: a result kept behind the
//! link its answer gave, still served after the request, is found though no file leads to it.

mod common;

use common::{Extra, audit_command, config, report, root};

fn audit(env: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &root().join("harness/tests/exposure/results_by_link.py"),
        &root()
            .join("harness/tests/faulty/scenarios/*.toml")
            .display()
            .to_string(),
        Extra {
            env,
            tail: "[pipeline.response]\nimage = \"url\"\npointer = \"/url\"\n",
            ..Extra::default()
        },
    );
    let output = audit_command(dir.path(), &cfg, &["--scenario", "both-providers"])
        .output()
        .unwrap();
    report(dir.path(), &output)
}

fn kinds(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_result_still_served_at_its_answers_link_is_exposed() {
    let report = audit("");
    let exposed: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "public-exposure")
        .collect();
    // Both requests' results, each named by its request and its link.
    assert_eq!(exposed.len(), 2, "{:#?}", report["findings"]);
    for f in exposed {
        let summary = f["summary"].as_str().unwrap();
        assert!(summary.contains("answer named (/r/"), "{summary}");
        assert!(f["request"].is_u64(), "{f}");
    }
    // Kept results are in memory as well.
    assert!(
        kinds(&report)
            .iter()
            .all(|k| k == "public-exposure" || k == "memory-retention"),
        "{:#?}",
        report["findings"]
    );
    // The results were read as images through the link: the scenario's statuses held.
    assert_eq!(report["scenarios"][0]["outcome"], "fail");
}

#[test]
fn a_result_served_once_is_not_exposed() {
    let report = audit("RESULTS_ONCE = \"1\"");
    assert_eq!(
        kinds(&report),
        Vec::<String>::new(),
        "{}",
        report["summary"]
    );
    assert_eq!(report["verdict"], "pass", "{}", report["summary"]);
}
