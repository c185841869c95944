//! insta snapshots of every format for both sample reports, redacted in one place
//! (`traceless_report::redact`) so they do not depend on the machine or the run.

use traceless_report::{Format, Report, redact::redact, render, sample};

fn snapshot(name: &str, report: &Report) {
    let report = redact(report);
    for format in Format::ALL {
        let text = render(&report, format).unwrap();
        insta::assert_snapshot!(format!("{name}.{}", format.name()), text);
    }
}

#[test]
fn passing_audit() {
    snapshot("passing", &sample::passing());
}

#[test]
fn failing_audit() {
    snapshot("failing", &sample::failing());
}

#[test]
fn audit_cut_short_by_a_crash() {
    let report = sample::cut_short();
    assert_eq!(report.exit_code(), 2, "{}", report.summary);
    snapshot("cut-short", &report);
}

/// Two shards of the passing audit (`--shard 1/2`, `--shard 2/2`), one with a finding in its scenario,
/// merged by `traceless report --merge`: the sinks name the shard reports it was made from.
#[test]
fn merged_shards() {
    use traceless_report::merge::{Part, merge};
    use traceless_report::{FileDigest, Shard};
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
