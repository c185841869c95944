//! `junit.xml` parsed back with an independent XML reader: suites, case counts, failures,
//! skips and the notes on waived clauses are what the report says.

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;
use traceless_report::{ClauseVerdict, Format, Report, render, sample};

/// What one `<testcase>` turned into.
#[derive(Debug, Default)]
struct Case {
    name: String,
    failure: Option<String>,
    error: Option<String>,
    skipped: Option<String>,
    system_out: String,
}

/// Suite name -> (the suite's own attributes, its cases).
type Suites = BTreeMap<String, (BTreeMap<String, String>, Vec<Case>)>;

fn attrs(e: &quick_xml::events::BytesStart<'_>) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.expect("well-formed attribute");
            (
                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                a.normalized_value(quick_xml::XmlVersion::default())
                    .expect("escaped value")
                    .into_owned(),
            )
        })
        .collect()
}

fn parse(xml: &str) -> Suites {
    let mut reader = Reader::from_str(xml);
    let mut suites = Suites::new();
    let mut suite: Option<String> = None;
    let mut in_system_out = false;
    loop {
        match reader.read_event().expect("junit.xml is well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let a = attrs(&e);
                match e.name().as_ref() {
                    b"testsuite" => {
                        let name = a["name"].clone();
                        suites.insert(name.clone(), (a, Vec::new()));
                        suite = Some(name);
                    }
                    b"testcase" => {
                        let s = suite.as_ref().expect("testcase inside a testsuite");
                        suites.get_mut(s).unwrap().1.push(Case {
                            name: a["name"].clone(),
                            ..Default::default()
                        });
                    }
                    tag @ (b"failure" | b"error" | b"skipped") => {
                        let s = suite.as_ref().unwrap();
                        let case = suites
                            .get_mut(s)
                            .unwrap()
                            .1
                            .last_mut()
                            .expect("result inside a testcase");
                        let message = a.get("message").cloned().unwrap_or_default();
                        match tag {
                            b"failure" => case.failure = Some(message),
                            b"error" => case.error = Some(message),
                            _ => case.skipped = Some(message),
                        }
                    }
                    b"system-out" => in_system_out = true,
                    _ => {}
                }
            }
            Event::Text(t) if in_system_out => {
                if let Some(case) = suite
                    .as_ref()
                    .and_then(|s| suites.get_mut(s).unwrap().1.last_mut())
                {
                    case.system_out.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) if in_system_out => {
                if let Some(case) = suite
                    .as_ref()
                    .and_then(|s| suites.get_mut(s).unwrap().1.last_mut())
                {
                    case.system_out
                        .push_str(&format!("&{};", r.decode().unwrap()));
                }
            }
            Event::End(e) if e.name().as_ref() == b"system-out" => in_system_out = false,
            Event::Eof => break,
            _ => {}
        }
    }
    suites
}

fn count(cases: &[Case], pick: impl Fn(&Case) -> bool) -> usize {
    cases.iter().filter(|c| pick(c)).count()
}

fn check(report: &Report) {
    let xml = render(report, Format::Junit).unwrap();
    let suites = parse(&xml);
    assert_eq!(
        suites.keys().map(String::as_str).collect::<Vec<_>>(),
        ["audit", "clauses", "scenarios"],
        "{xml}"
    );

    let (attrs, clauses) = &suites["clauses"];
    let verdicts = |v: ClauseVerdict| report.clauses.iter().filter(|c| c.verdict == v).count();
    assert_eq!(clauses.len(), report.clauses.len());
    assert_eq!(attrs["tests"], report.clauses.len().to_string());
    assert_eq!(
        count(clauses, |c| c.failure.is_some()),
        verdicts(ClauseVerdict::Fail)
    );
    assert_eq!(attrs["failures"], verdicts(ClauseVerdict::Fail).to_string());
    assert_eq!(
        count(clauses, |c| c.skipped.is_some()),
        verdicts(ClauseVerdict::NotTested)
    );
    assert_eq!(
        attrs["skipped"],
        verdicts(ClauseVerdict::NotTested).to_string()
    );
    for (case, clause) in clauses.iter().zip(&report.clauses) {
        assert!(
            case.name.starts_with(&clause.id),
            "case {} for clause {}",
            case.name,
            clause.id
        );
        match clause.verdict {
            ClauseVerdict::Fail => {
                let message = case.failure.as_deref().unwrap();
                for id in &clause.findings {
                    let f = report.findings.iter().find(|f| &f.id == id).unwrap();
                    assert_eq!(
                        message.contains(&f.summary),
                        !f.is_waived(),
                        "clause {} failure {message:?} vs {id}",
                        clause.id
                    );
                }
            }
            ClauseVerdict::NotTested => {
                assert!(
                    case.skipped
                        .as_deref()
                        .unwrap()
                        .contains(clause.reason.as_deref().unwrap()),
                    "{case:?}"
                );
            }
            ClauseVerdict::Waived => {
                assert!(case.failure.is_none() && case.skipped.is_none(), "{case:?}");
                assert!(case.system_out.starts_with("waived"), "{case:?}");
            }
            ClauseVerdict::Pass => {
                assert!(case.failure.is_none() && case.skipped.is_none(), "{case:?}")
            }
        }
    }

    let (attrs, scenarios) = &suites["scenarios"];
    let failed = report
        .scenarios
        .iter()
        .filter(|s| s.outcome != traceless_report::ScenarioOutcome::Pass)
        .count();
    assert_eq!(scenarios.len(), report.scenarios.len());
    assert_eq!(attrs["failures"], failed.to_string());
    assert_eq!(count(scenarios, |c| c.failure.is_some()), failed);

    let (_, audit) = &suites["audit"];
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].error.is_some(),
        report.exit_code() == 2,
        "{:?}",
        audit[0]
    );
}

#[test]
fn passing_report_has_no_failures() {
    let report = sample::passing();
    check(&report);
    let suites = parse(&render(&report, Format::Junit).unwrap());
    assert!(
        suites
            .values()
            .flat_map(|(_, cases)| cases)
            .all(|c| c.failure.is_none() && c.error.is_none())
    );
}

#[test]
fn failing_report_counts_match() {
    let report = sample::failing();
    check(&report);
    let suites = parse(&render(&report, Format::Junit).unwrap());
    // The failing sample's scenario with a wrong status code names it.
    let child = suites["scenarios"]
        .1
        .iter()
        .find(|c| c.name.starts_with("child-no-age-confirmation"))
        .unwrap();
    assert!(
        child
            .failure
            .as_deref()
            .unwrap()
            .contains("answered 200, expected 403"),
        "{child:?}"
    );
}

#[test]
fn incomplete_audit_is_an_error_case() {
    let mut report = sample::passing();
    report.monitors[2].state = "unavailable".into();
    report.monitors[2].reason = Some("namespaces refused".into());
    check(&report);
    let suites = parse(&render(&report, Format::Junit).unwrap());
    let audit = &suites["audit"].1[0];
    assert!(
        audit
            .error
            .as_deref()
            .unwrap()
            .contains("egress is unavailable: namespaces refused"),
        "{audit:?}"
    );
}
