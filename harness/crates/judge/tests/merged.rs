//! The merge of shard reports, through every sink: insta snapshots of a merged report (redacted
//! like the report crate's own snapshots) and its validity against the report schema.

use jsonschema::{Draft, Validator};
use serde_json::Value;
use traceless_judge::merge::{Part, merge};
use traceless_report::{Format, JSON_SCHEMA, Report, redact::redacted_renders, render, sample};

/// Where `report`'s JSON breaks the report schema (draft 2020-12, formats checked).
fn schema_errors(report: &Report) -> Vec<String> {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
    let validator: Validator = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let instance: Value = serde_json::from_str(&render(report, Format::Json).unwrap()).unwrap();
    let errors = validator.iter_errors(&instance);
    errors
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

fn snapshot(name: &str, report: &Report) {
    for (name, text) in redacted_renders(name, report) {
        insta::assert_snapshot!(name, text);
    }
}

/// Two shards of the passing audit (`--shard 1/2`, `--shard 2/2`), one with a finding in its scenario,
/// merged by `traceless report --merge`: the sinks name the shard reports it was made from.
#[test]
fn merged_shards() {
    use traceless_report::{FileDigest, PassingRequests, Shard};
    let whole = sample::passing();
    let failing = sample::failing();
    let parts = (1..=2u32)
        .map(|index| {
            let shard = Shard { index, count: 2 };
            let mut report = whole.clone();
            report.provenance.shard = Some(shard);
            report.scenarios = whole
                .scenarios
                .iter()
                .enumerate()
                .filter(|(i, _)| shard.owns(*i as u64, whole.provenance.seed))
                .map(|(_, s)| s.clone())
                .collect();
            // Its share of 8 passing property cases, one request each, counted not listed.
            let mut passing = PassingRequests::default();
            for id in (4..12u32).filter(|&id| shard.owns(u64::from(id), whole.provenance.seed)) {
                passing.add(&PassingRequests {
                    requests: 1,
                    providers: [(if id % 2 == 0 { "openai" } else { "gemini" }.to_owned(), 1)]
                        .into(),
                    behaviours: [(if id % 3 == 0 { "429,ok" } else { "ok" }.to_owned(), 1)].into(),
                    statuses: [("200".to_owned(), 1)].into(),
                    durations: [(PassingRequests::bucket(u64::from(id) * 9), 1)].into(),
                    total_ms: u64::from(id) * 9,
                    max_ms: u64::from(id) * 9,
                    fingerprint: format!("{:016x}", u64::from(id) << 40),
                });
            }
            report.scenarios.push(traceless_report::ScenarioResult {
                id: "properties".into(),
                title: format!("{} of 8 property cases (shard {shard})", passing.requests),
                clauses: Vec::new(),
                outcome: traceless_report::ScenarioOutcome::Pass,
                requests_not_sent: 0,
                requests: Vec::new(),
                timeline: Vec::new(),
                passing: Some(passing),
            });
            report.provenance.cases = 8;
            report.provenance.evidence = vec![FileDigest {
                path: "evidence.jsonl".into(),
                sha256: format!("{:064x}", 16 + index),
            }];
            if shard.owns(0, whole.provenance.seed) {
                // The failing sample's first finding, seen in `openai-ok`, this shard's first.
                assert_eq!(report.scenarios[0].id, "openai-ok");
                report.scenarios[0].outcome = traceless_report::ScenarioOutcome::Fail;
                report.findings = vec![failing.findings[0].clone()];
                for c in &mut report.clauses {
                    if c.checks.contains(&report.findings[0].kind) {
                        c.verdict = traceless_report::ClauseVerdict::Fail;
                        c.findings = vec![report.findings[0].id.clone()];
                    }
                }
            }
            report.verdict = report.derived_verdict();
            report.summary = report.summary_line();
            Part {
                file: FileDigest {
                    path: format!("shard-{index}/report.json"),
                    sha256: format!("{index:064x}"),
                },
                report,
            }
        })
        .collect();
    let merged = merge(parts).unwrap();
    assert_eq!(merged.exit_code(), 1, "{}", merged.summary);
    snapshot("merged", &merged);
}

#[test]
fn shard_and_merged_reports_validate() {
    use traceless_report::{FileDigest, Shard};
    let parts: Vec<Part> = (1..=2)
        .map(|index| {
            let mut report = sample::failing();
            report.provenance.shard = Some(Shard { index, count: 2 });
            Part {
                file: FileDigest {
                    path: format!("shard-{index}/report.json"),
                    sha256: "a".repeat(64),
                },
                report,
            }
        })
        .collect();
    assert_eq!(schema_errors(&parts[0].report), Vec::<String>::new());
    let merged = merge(parts).unwrap();
    assert_eq!(merged.provenance.merged_from.len(), 2);
    assert_eq!(schema_errors(&merged), Vec::<String>::new());
}
