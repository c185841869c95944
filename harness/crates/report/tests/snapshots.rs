//! insta snapshots of every format for both sample reports, redacted in one place
//! (`traceless_report::redact`) so they do not depend on the machine or the run.

use traceless_report::{Report, redact::redacted_renders, sample};

fn snapshot(name: &str, report: &Report) {
    for (name, text) in redacted_renders(name, report) {
        insta::assert_snapshot!(name, text);
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
