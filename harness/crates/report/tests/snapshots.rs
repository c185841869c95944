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
