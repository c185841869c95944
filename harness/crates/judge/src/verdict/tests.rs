//! Clause verdicts, waivers, scenario outcomes and the report's size, on hand-made evidence.

use super::*;
use crate::evidence::SentRequest;
use crate::plan::ClientBehaviour;

fn property_request(id: u32, status: u16) -> SentRequest {
    SentRequest {
        id,
        scenario: crate::plan::PROPERTY_SCENARIO.into(),
        provider: if id.is_multiple_of(2) {
            "openai"
        } else {
            "gemini"
        }
        .into(),
        age: Age::Confirmed,
        behaviour: vec![if id.is_multiple_of(5) { "429" } else { "ok" }.into()],
        client: ClientBehaviour::Normal,
        expected_status: None,
        status: Some(status),
        started_ms: u64::from(id) * 20,
        ended_ms: u64::from(id) * 20 + 15,
        response_bytes: 0,
        response_hits: Vec::new(),
        error: None,
        had_metadata: false,
        shared_prompt: false,
    }
}

/// `cases` property cases, one request each, the last case failed.
fn report_of(cases: u32) -> Report {
    let mut evidence = Evidence {
        requests: (1..=cases).map(|id| property_request(id, 200)).collect(),
        property_cases: (cases, cases),
        ..Evidence::default()
    };
    evidence.failed_case_requests.insert(cases);
    let scenarios = [ScenarioPlan {
        id: crate::plan::PROPERTY_SCENARIO.into(),
        title: format!("{cases} property cases"),
        ..ScenarioPlan::default()
    }];
    build(Inputs {
        scenarios: &scenarios,
        ..inputs(&evidence, &[])
    })
}

#[test]
fn passing_property_cases_are_counted_and_a_failing_one_keeps_its_row() {
    let report = report_of(10);
    let props = &report.scenarios[0];
    assert_eq!(
        props.requests.iter().map(|r| r.id).collect::<Vec<_>>(),
        [10]
    );
    let passing = props.passing.as_ref().unwrap();
    assert_eq!(passing.requests, 9);
    assert_eq!(passing.providers["gemini"], 5);
    assert_eq!(passing.behaviours["429"], 1);
    assert_eq!(passing.statuses["200"], 9);
    assert_eq!(passing.durations["le-50"], 9);
    assert_eq!((passing.total_ms, passing.max_ms), (135, 15));
    assert!(
        props.timeline.iter().all(|t| t.request == Some(10)),
        "a passing request's timeline was kept"
    );
    assert_ne!(
        report_of(11).scenarios[0]
            .passing
            .as_ref()
            .unwrap()
            .fingerprint,
        passing.fingerprint
    );
}

#[test]
fn a_report_of_100000_property_cases_stays_under_5_mb_in_every_format() {
    let report = report_of(100_000);
    for format in traceless_report::Format::ALL {
        let text = traceless_report::render(&report, format).unwrap();
        assert!(
            text.len() < 5 << 20,
            "{format}: {} bytes for 100,000 cases",
            text.len()
        );
    }
}

// ----- Clause verdicts, waivers and scenario outcomes, on the checks' own clean evidence. -----

use traceless_evidence::events::{EventKind, MonitorKind, MonitorStatus};
use traceless_evidence::hit::Subject;
use traceless_report::{ClauseVerdict, ScenarioOutcome, Verdict};

use crate::check::tests::{clean, event, hit};
use crate::plan::{Waiver, WaiverTarget};

const TODAY: time::Date = time::macros::date!(2026 - 06 - 01);

fn clause(id: &str, checks: &[&str]) -> Clause {
    Clause {
        id: id.into(),
        section: format!("section-of-{id}"),
        title: id.into(),
        sentence: format!("The sentence of {id}."),
        checks: checks.iter().map(|c| (*c).to_owned()).collect(),
        untestable: None,
    }
}

/// The map the tests judge: one clause per rule.
fn map() -> Vec<Clause> {
    vec![
        clause("disk", &["disk-persistence"]),
        clause("logs", &["log-leak"]),
        clause("unchecked", &[]),
        Clause {
            untestable: Some("the provider's own retention cannot be seen from outside".into()),
            ..clause("provider-side", &["provider-retention"])
        },
    ]
}

/// Clean evidence with an image written to disk: one disk-persistence finding.
fn written() -> Evidence {
    let mut ev = clean();
    ev.events.push(event(EventKind::FileWritten {
        path: "/tmp/u.png".into(),
        size: 900,
        hits: vec![hit(1, Subject::Image)],
        image_match: None,
    }));
    ev
}

fn waiver(target: WaiverTarget, expires: time::Date) -> Waiver {
    Waiver {
        target,
        justification: "accepted while the cache is replaced".into(),
        expires,
        line: 12,
    }
}

/// The inputs of a judgement of `ev` against `clauses`, with its checks' drafts and nothing else.
fn inputs<'a>(ev: &'a Evidence, clauses: &'a [Clause]) -> Inputs<'a> {
    Inputs {
        evidence: ev,
        drafts: check::run_all(ev),
        clauses,
        scenarios: &[],
        waivers: &[],
        today: TODAY,
        required_monitors: &[],
        allow_degraded: false,
        interrupted: None,
        errors: Vec::new(),
        provenance: Provenance::default(),
    }
}

fn judged(ev: &Evidence, waivers: &[Waiver], plans: &[ScenarioPlan]) -> Report {
    let map = map();
    build(Inputs {
        waivers,
        scenarios: plans,
        ..inputs(ev, &map)
    })
}

fn verdict_of(report: &Report, id: &str) -> (ClauseVerdict, Option<String>) {
    let c = report.clauses.iter().find(|c| c.id == id).unwrap();
    (c.verdict, c.reason.clone())
}

#[test]
fn a_clause_passes_when_its_checks_ran_and_found_nothing() {
    let report = judged(&clean(), &[], &[]);
    assert_eq!(verdict_of(&report, "disk"), (ClauseVerdict::Pass, None));
    assert_eq!(verdict_of(&report, "logs"), (ClauseVerdict::Pass, None));
    assert!(report.findings.is_empty());
    assert_eq!(report.verdict, Verdict::Pass);
}

#[test]
fn a_clause_without_a_check_or_marked_untestable_is_never_passed() {
    let report = judged(&clean(), &[], &[]);
    assert_eq!(
        verdict_of(&report, "unchecked"),
        (
            ClauseVerdict::NotTested,
            Some("no check covers this sentence".into())
        )
    );
    let (verdict, reason) = verdict_of(&report, "provider-side");
    assert_eq!(verdict, ClauseVerdict::NotTested);
    assert!(reason.unwrap().contains("cannot be seen from outside"));
}

#[test]
fn a_clause_whose_check_was_not_exercised_is_not_tested_with_the_reason() {
    // The filesystem and syscall monitors never ran: nothing says no file was written.
    let mut ev = clean();
    ev.monitors
        .retain(|m| !matches!(m.monitor, MonitorKind::Filesystem | MonitorKind::Syscall));
    let report = judged(&ev, &[], &[]);
    let (verdict, reason) = verdict_of(&report, "disk");
    assert_eq!(verdict, ClauseVerdict::NotTested);
    assert!(reason.unwrap().starts_with("disk-persistence: "));
    // The clause the missing monitors do not concern is still judged.
    assert_eq!(verdict_of(&report, "logs"), (ClauseVerdict::Pass, None));

    // A monitor that ran degraded is not evidence either.
    let mut ev = clean();
    for m in &mut ev.monitors {
        if m.monitor == MonitorKind::Logs {
            *m = MonitorStatus::degraded(MonitorKind::Logs, "stderr was not captured");
        }
    }
    let (verdict, _) = verdict_of(&judged(&ev, &[], &[]), "logs");
    assert_eq!(verdict, ClauseVerdict::NotTested);
}

#[test]
fn an_unwaived_finding_fails_its_clause_and_the_audit() {
    let report = judged(&written(), &[], &[]);
    assert_eq!(report.findings.len(), 1);
    let f = &report.findings[0];
    assert_eq!((f.id.as_str(), f.kind.as_str()), ("F1", "disk-persistence"));
    assert_eq!(f.clauses, ["disk"]);
    assert_eq!(f.waiver, None);
    assert_eq!(f.request, Some(1));
    assert_eq!(f.scenario.as_deref(), Some("s1"));
    let c = report.clauses.iter().find(|c| c.id == "disk").unwrap();
    assert_eq!(
        (c.verdict, c.findings.clone()),
        (ClauseVerdict::Fail, vec!["F1".to_owned()])
    );
    assert_eq!(verdict_of(&report, "logs"), (ClauseVerdict::Pass, None));
    assert_eq!(report.verdict, Verdict::Fail);
}

#[test]
fn a_waiver_by_kind_covers_its_findings_until_it_expires() {
    let by_kind = |expires| waiver(WaiverTarget::Kind("disk-persistence".into()), expires);

    let report = judged(
        &written(),
        &[by_kind(time::macros::date!(2026 - 12 - 31))],
        &[],
    );
    assert_eq!(
        report.findings[0].waiver.as_deref(),
        Some("accepted while the cache is replaced")
    );
    assert_eq!(verdict_of(&report, "disk").0, ClauseVerdict::Waived);
    assert!(report.waivers[0].used && !report.waivers[0].expired);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.verdict, Verdict::Pass);

    // Expired yesterday: the finding counts again, and the expiry is an error of its own.
    let report = judged(
        &written(),
        &[by_kind(time::macros::date!(2026 - 05 - 31))],
        &[],
    );
    assert_eq!(report.findings[0].waiver, None);
    assert_eq!(verdict_of(&report, "disk").0, ClauseVerdict::Fail);
    assert!(report.waivers[0].expired && !report.waivers[0].used);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].contains("config line 12"),
        "{}",
        report.errors[0]
    );
    assert_eq!(report.verdict, Verdict::Fail);

    // Expiring today still holds.
    let report = judged(&written(), &[by_kind(TODAY)], &[]);
    assert_eq!(verdict_of(&report, "disk").0, ClauseVerdict::Waived);
}

#[test]
fn a_waiver_by_clause_id_or_section_waives_the_clause_and_its_findings() {
    let until = time::macros::date!(2027 - 01 - 01);
    for target in ["disk", "section-of-disk"] {
        let report = judged(
            &written(),
            &[waiver(WaiverTarget::Clause(target.into()), until)],
            &[],
        );
        assert_eq!(
            verdict_of(&report, "disk").0,
            ClauseVerdict::Waived,
            "{target}"
        );
        assert_eq!(report.verdict, Verdict::Pass, "{target}");
    }
    // A waiver of another clause leaves this one failed, and is reported unused.
    let report = judged(
        &written(),
        &[waiver(WaiverTarget::Clause("logs".into()), until)],
        &[],
    );
    assert_eq!(verdict_of(&report, "disk").0, ClauseVerdict::Fail);
    assert!(!report.waivers[0].used);
}

#[test]
fn a_scenario_passes_only_when_it_sent_everything_as_expected_without_a_finding() {
    let plan = |id: &str, requests| ScenarioPlan {
        id: id.into(),
        title: id.into(),
        requests,
        ..ScenarioPlan::default()
    };
    // clean(): s1 and s3 sent their one request each; s2's answered 403 where 200 was expected.
    let plans = [
        plan("s1", 1),
        plan("s2", 1),
        plan("s3", 2),
        plan("never", 4),
    ];
    let outcomes = |report: &Report| -> Vec<ScenarioOutcome> {
        report.scenarios.iter().map(|s| s.outcome).collect()
    };
    let report = judged(&clean(), &[], &plans);
    assert_eq!(
        outcomes(&report),
        [
            ScenarioOutcome::Pass,
            ScenarioOutcome::Fail,
            ScenarioOutcome::Incomplete,
            ScenarioOutcome::NotRun
        ]
    );
    assert_eq!(report.scenarios[2].requests_not_sent, 1);
    // A scenario that sent nothing was not exercised: that outweighs the failed one.
    assert_eq!(report.verdict, Verdict::Incomplete);

    // The finding on request 1 fails s1; waived, it does not.
    assert_eq!(
        outcomes(&judged(&written(), &[], &plans))[0],
        ScenarioOutcome::Fail
    );
    let waived = [waiver(
        WaiverTarget::Kind("disk-persistence".into()),
        time::macros::date!(2027 - 01 - 01),
    )];
    assert_eq!(
        outcomes(&judged(&written(), &waived, &plans))[0],
        ScenarioOutcome::Pass
    );
}

#[test]
fn a_required_monitor_that_is_not_active_makes_the_audit_incomplete_unless_allowed() {
    let mut ev = clean();
    for m in &mut ev.monitors {
        if m.monitor == MonitorKind::Memory {
            *m = MonitorStatus::unavailable(MonitorKind::Memory, "ptrace is not permitted");
        }
    }
    let required = ["memory".to_owned()];
    let map = map();
    let with = |allow_degraded| {
        build(Inputs {
            required_monitors: &required,
            allow_degraded,
            ..inputs(&ev, &map)
        })
    };
    let strict = with(false);
    assert_eq!(strict.verdict, Verdict::Incomplete);
    assert!(!strict.degraded);
    let memory = strict.monitors.iter().find(|m| m.name == "memory").unwrap();
    assert!(memory.required && memory.state == "unavailable");

    let allowed = with(true);
    assert!(allowed.degraded);
    assert_eq!(allowed.verdict, Verdict::Pass);
}

#[test]
fn an_interruption_or_an_error_is_never_a_pass() {
    let ev = clean();
    let map = map();
    assert_eq!(build(inputs(&ev, &map)).verdict, Verdict::Pass);
    let interrupted = build(Inputs {
        interrupted: Some("SIGTERM".into()),
        ..inputs(&ev, &map)
    });
    assert_eq!(interrupted.verdict, Verdict::Incomplete);
    let errored = build(Inputs {
        errors: vec!["the evidence file could not be written".into()],
        ..inputs(&ev, &map)
    });
    assert_eq!(errored.verdict, Verdict::Incomplete);
    // No clause judged at all: nothing was shown to hold.
    assert_eq!(build(inputs(&ev, &[])).verdict, Verdict::Incomplete);
}
