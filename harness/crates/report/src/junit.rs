//! `junit.xml`: the verdicts as test results a CI system understands. Suite `clauses` has a
//! case per clause, suite `scenarios` a case per scenario, suite `audit` one case saying
//! whether the audit could be completed (so an incomplete audit is never all green).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use quick_junit::{
    NonSuccessKind, Property, Report as JunitReport, TestCase, TestCaseStatus, TestSuite,
};

use crate::model::{ClauseVerdict, Finding, Report, ScenarioOutcome, Verdict};
use crate::text::{clip, offset};

/// Renders the report as JUnit XML.
pub fn render(report: &Report) -> anyhow::Result<String> {
    let findings: HashMap<&str, &Finding> =
        report.findings.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut junit = JunitReport::new("traceless");
    junit.set_time(Duration::from_millis(report.provenance.duration_ms));

    let mut clauses = TestSuite::new("clauses");
    clauses.add_properties(provenance_properties(report));
    for c in &report.clauses {
        let listed: Vec<&Finding> = c
            .findings
            .iter()
            .filter_map(|id| findings.get(id.as_str()).copied())
            .collect();
        let status = match c.verdict {
            ClauseVerdict::Pass => TestCaseStatus::success(),
            ClauseVerdict::Fail => {
                let unwaived: Vec<&Finding> =
                    listed.iter().copied().filter(|f| !f.is_waived()).collect();
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let message = if unwaived.is_empty() {
                    c.reason
                        .clone()
                        .unwrap_or_else(|| "the clause failed".to_owned())
                } else {
                    unwaived
                        .iter()
                        .map(|f| format!("{} {}: {}", f.id, f.code, f.summary))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                status.set_message(message);
                status.set_type(
                    unwaived
                        .first()
                        .map(|f| f.kind.as_str())
                        .unwrap_or("clause"),
                );
                status.set_description(describe_findings(&unwaived));
                status
            }
            ClauseVerdict::NotTested => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(format!(
                    "not tested: {}",
                    c.reason
                        .as_deref()
                        .unwrap_or("no check verifies this clause")
                ));
                status
            }
            ClauseVerdict::Waived => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(format!("{} {}", c.id, c.title), status);
        case.set_classname(format!("clauses.{}", c.section));
        if c.verdict == ClauseVerdict::Waived {
            let mut note = String::from("waived: this clause passes only because of waivers\n");
            if let Some(reason) = &c.reason {
                let _ = writeln!(note, "reason: {reason}");
            }
            for f in &listed {
                let _ = writeln!(
                    note,
                    "{} {} {}: {} (waiver: {})",
                    f.id,
                    f.code,
                    f.kind,
                    f.summary,
                    f.waiver.as_deref().unwrap_or("none")
                );
            }
            case.set_system_out(note);
        }
        clauses.add_test_case(case);
    }
    junit.add_test_suite(clauses);

    let mut scenarios = TestSuite::new("scenarios");
    for s in &report.scenarios {
        let status = if s.outcome == ScenarioOutcome::Pass {
            TestCaseStatus::success()
        } else if s.outcome == ScenarioOutcome::NotRun {
            let mut status = TestCaseStatus::skipped();
            status.set_message("not run: no request of this scenario was sent");
            status
        } else if s.outcome == ScenarioOutcome::Incomplete {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(format!(
                "not run to the end: {} of its requests were never sent",
                s.requests_not_sent
            ));
            status.set_type("incomplete");
            status
        } else {
            let mut why = Vec::new();
            for r in &s.requests {
                if let Some(want) = r.expected_status
                    && r.status != Some(want)
                {
                    let got = r
                        .status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "no answer".to_owned());
                    why.push(format!("request {} answered {got}, expected {want}", r.id));
                }
            }
            let theirs: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.scenario.as_deref() == Some(s.id.as_str()) && !f.is_waived())
                .collect();
            for f in &theirs {
                why.push(format!("{} {}: {}", f.id, f.code, f.summary));
            }
            if why.is_empty() {
                why.push("the scenario did not pass".to_owned());
            }
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(why.join("; "));
            status.set_type(if theirs.is_empty() {
                "unexpected-status"
            } else {
                "finding"
            });
            status.set_description(describe_findings(&theirs));
            status
        };
        let mut case = TestCase::new(format!("{} {}", s.id, s.title), status);
        case.set_classname("scenarios");
        case.set_time(Duration::from_millis(
            s.requests.iter().map(|r| r.duration_ms).sum::<u64>()
                + s.passing.as_ref().map_or(0, |p| p.total_ms),
        ));
        if let Some(p) = &s.passing {
            case.set_system_out(crate::text::passing_summary(p));
        }
        scenarios.add_test_case(case);
    }
    junit.add_test_suite(scenarios);

    let mut audit = TestSuite::new("audit");
    let mut gaps: Vec<String> = report.errors.clone();
    if let Some(signal) = &report.interrupted {
        gaps.push(format!("interrupted by {signal}"));
    }
    if let Some(c) = &report.crash {
        gaps.push(format!("the pipeline died: {}", c.status));
    }
    for m in report
        .monitors
        .iter()
        .filter(|m| m.required && !m.is_active())
    {
        gaps.push(format!(
            "required monitor {} is {}{}",
            m.name,
            m.state,
            m.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    let status = if report.effective_verdict() == Verdict::Incomplete || !gaps.is_empty() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        if gaps.is_empty() {
            gaps.push("the report marks the audit incomplete".to_owned());
        }
        status.set_message(gaps.join("; "));
        status.set_type("incomplete");
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new("audit completed with every required monitor active", status);
    case.set_classname("audit");
    audit.add_test_case(case);
    junit.add_test_suite(audit);

    junit.to_string().context("serialising the JUnit report")
}

fn provenance_properties(report: &Report) -> Vec<Property> {
    let p = &report.provenance;
    let mut props = vec![
        Property::new("schema", report.schema.as_str()),
        Property::new("verdict", report.effective_verdict().as_str()),
        Property::new("harness-version", p.harness_version.as_str()),
        Property::new("seed", p.seed.to_string()),
        Property::new("cases", p.cases.to_string()),
        Property::new("started-at", p.started_at.as_str()),
    ];
    for d in &p.evidence {
        props.push(Property::new("evidence-sha256", d.sha256.as_str()));
    }
    if let Some(shard) = p.shard {
        props.push(Property::new("shard", shard.to_string()));
    }
    if !p.merged_from.is_empty() {
        props.push(Property::new(
            "merged-from",
            p.merged_from.len().to_string(),
        ));
    }
    if let Some(commit) = &p.harness_commit {
        props.push(Property::new("harness-commit", commit.as_str()));
    }
    if let Some(sha) = &p.pipeline_sha256 {
        props.push(Property::new("pipeline-sha256", sha.as_str()));
    }
    for s in &report.services {
        props.push(Property::new(
            format!("service.{}", s.name),
            format!(
                "{} file(s), {} byte(s) read in {}",
                s.files_scanned, s.bytes_scanned, s.data_dir
            ),
        ));
    }
    props
}

/// The failure body: each finding with its evidence, one line per item.
fn describe_findings(findings: &[&Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "{} {} {}: {}", f.id, f.code, f.kind, f.summary);
        if let Some(s) = &f.scenario {
            let _ = writeln!(
                out,
                "  scenario {s}{}",
                f.request
                    .map(|r| format!(", request {r}"))
                    .unwrap_or_default()
            );
        }
        for e in &f.evidence {
            let _ = write!(out, "  {}", e.source);
            if let Some(at) = e.at_ms {
                let _ = write!(out, " {}", offset(at));
            }
            if let Some(pid) = e.pid {
                let _ = write!(out, " pid {pid}");
            }
            let _ = write!(out, " {}: {}", e.location, e.detail);
            if let Some(enc) = &e.encoding {
                let _ = write!(out, " [{enc}");
                if let Some(n) = e.matched_bytes {
                    let _ = write!(out, ", {n} bytes");
                }
                out.push(']');
            }
            if let Some(x) = &e.excerpt {
                let _ = write!(out, " {}", clip(x, 160));
            }
            out.push('\n');
        }
    }
    out
}
