//! The row builder on the sample reports and small hand-made ones: what each row carries, not
//! how a sink shows it.

use std::collections::BTreeMap;

use super::*;
use crate::model::{MonitorEntry, PassingRequests};
use crate::sample;

/// A cell's text, tags dropped.
fn plain(cell: &Cell) -> String {
    cell.iter().map(|s| s.text.as_str()).collect()
}

fn tags(cell: &Cell) -> Vec<&Tag> {
    cell.iter().map(|s| &s.tag).collect()
}

#[test]
fn a_findings_rows_carry_its_evidence_and_clause_links() {
    let report = sample::failing();
    let rows = findings(&report);
    assert_eq!(rows.len(), report.findings.len());
    let f1 = &rows[0];
    assert_eq!((f1.id, f1.code), ("F1", "TL-LOG-001"));
    assert_eq!(f1.pill, Pill::Finding { waived: false });

    let cells: Vec<String> = f1.evidence.rows[0].cells.iter().map(plain).collect();
    assert_eq!(
        cells[..7],
        [
            "+2.311 s",
            "log",
            "4242",
            "stderr@4096",
            "debug line of the request body",
            "base64",
            "24576 B"
        ]
    );
    assert_eq!(tags(&f1.evidence.rows[0].cells[3]), [&Tag::LongCode]);
    assert_eq!(tags(&f1.evidence.rows[0].cells[5]), [&Tag::Code]);
    assert_eq!(f1.evidence.rows.len(), 2);
    assert_eq!(f1.evidence.columns.len(), cells.len());

    let breaks: Vec<&str> = f1
        .items
        .iter()
        .filter_map(|item| match item {
            FindingItem::Breaks { id, clause } => {
                let c = report.clauses.iter().find(|c| c.id == *id).unwrap();
                assert_eq!(*clause, Some((c.section.as_str(), c.sentence.as_str())));
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(breaks, report.findings[0].clauses);
    let scenario = vec![
        span(Tag::Link(Target::Scenario), "openai-ok"),
        span(Tag::Text, ", request 1"),
    ];
    assert!(
        f1.items.contains(&FindingItem::Scenario(scenario)),
        "{:?}",
        f1.items
    );
}

#[test]
fn a_finding_without_evidence_or_known_clause_says_so() {
    let mut report = sample::failing();
    report.findings[0].evidence.clear();
    report.findings[0].clauses = vec!["zz-unknown".into()];
    report.findings[0].request = None;
    let f1 = &findings(&report)[0];
    assert!(f1.evidence.rows.is_empty());
    assert_eq!(
        f1.items[..2],
        [
            FindingItem::Breaks {
                id: "zz-unknown",
                clause: None
            },
            FindingItem::Scenario(one(Tag::Link(Target::Scenario), "openai-ok")),
        ]
    );
}

#[test]
fn a_waived_finding_is_marked_and_says_why() {
    let report = sample::failing();
    let waived = findings(&report)
        .into_iter()
        .find(|f| f.pill == Pill::Finding { waived: true })
        .expect("the failing sample has a waived finding");
    let why = report.findings.iter().find(|f| f.id == waived.id).unwrap();
    assert_eq!(
        waived.items.last(),
        Some(&FindingItem::Waived(why.waiver.as_deref().unwrap()))
    );
}

#[test]
fn a_not_tested_clause_row_carries_its_reason() {
    let report = sample::passing();
    let rows = clauses(&report);
    assert_eq!(rows.len(), report.clauses.len());
    let row = rows
        .iter()
        .find(|c| c.id == "9-contact")
        .expect("the sample has clause 9");
    assert_eq!(row.verdict, ClauseVerdict::NotTested);
    assert_eq!(row.checks, words("—"));
    assert_eq!(
        row.findings,
        one(Tag::Em, "contact details, not a behaviour")
    );
}

/// The failing sample's clause 6: every finding against it is waived.
fn waived_clause(report: &Report) -> ClauseRow<'_> {
    clauses(report)
        .into_iter()
        .find(|c| c.id == "6-encrypted-transport")
        .unwrap()
}

#[test]
fn a_clause_row_links_its_findings_before_its_reason() {
    let report = sample::failing();
    let row = waived_clause(&report);
    assert_eq!(row.verdict, ClauseVerdict::Waived);
    assert_eq!(plain(&row.checks), "insecure-transport public-exposure");
    assert_eq!(
        tags(&row.findings),
        [&Tag::Link(Target::Finding), &Tag::Break, &Tag::Em]
    );
    assert_eq!(plain(&row.findings), "F6every finding against it is waived");
}

#[test]
fn a_passing_scenarios_requests_are_counted_not_listed() {
    let mut report = sample::passing();
    let count = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
        pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
    };
    report.scenarios.push(ScenarioResult {
        id: "properties".into(),
        passing: Some(PassingRequests {
            requests: 3,
            providers: count(&[("openai", 2), ("gemini", 1)]),
            behaviours: count(&[("ok", 3)]),
            statuses: count(&[("200", 3)]),
            durations: count(&[("gt-10000", 1), ("le-100", 1), ("le-50", 1)]),
            total_ms: 12_090,
            max_ms: 12_000,
            fingerprint: "00000000000000ff".into(),
        }),
        ..Default::default()
    });
    let rows = scenarios(&report);
    let s = rows.last().unwrap();
    assert_eq!(s.requests_sent, 3);
    assert!(s.requests.rows.is_empty() && s.timeline.rows.is_empty());
    assert!(s.answers.is_empty());
    assert_eq!(
        s.passing.as_deref(),
        Some(
            "3 requests of passing cases, counted not listed: providers gemini 1, openai 2; \
             provider behaviours ok 3; statuses 200 3; durations le-50 1, le-100 1, gt-10000 1 \
             (mean 4030 ms, longest 12000 ms); fingerprint 00000000000000ff"
        )
    );
    assert!(rows[..rows.len() - 1].iter().all(|s| s.passing.is_none()));
}

#[test]
fn a_scenario_row_links_its_findings_and_flags_wrong_answers() {
    let report = sample::failing();
    let rows = scenarios(&report);
    let ok = rows.iter().find(|s| s.id == "openai-ok").unwrap();
    assert!(ok.flagged);
    assert_eq!(plain(&ok.findings), "F1, F2");
    assert_eq!(ok.clauses, "1, 2c, 2d, 3, 4b, 5, 6");
    assert_eq!(ok.timeline.rows.len(), report.scenarios[0].timeline.len());

    let child = rows
        .iter()
        .find(|s| s.id == "child-no-age-confirmation")
        .unwrap();
    let answer = Answer {
        got: "200".into(),
        wanted: Some(403),
    };
    assert_eq!(child.answers, [answer]);
    assert!(child.requests.rows.iter().all(|r| r.flagged));
    let passed = rows.iter().find(|s| s.id == "gemini-safety-block").unwrap();
    assert!(!passed.flagged && passed.requests.rows.iter().all(|r| !r.flagged));
    assert!(passed.answers.iter().all(|a| a.wanted.is_none()));
}

#[test]
fn monitors_and_waivers_carry_their_states() {
    let report = Report {
        monitors: vec![
            MonitorEntry {
                name: "logs".into(),
                state: "active".into(),
                ..Default::default()
            },
            MonitorEntry {
                name: "syscall".into(),
                state: "degraded".into(),
                reason: Some("no ptrace".into()),
                required: true,
            },
        ],
        waivers: sample::failing().waivers,
        ..Default::default()
    };
    let m = monitors(&report);
    let flagged: Vec<bool> = m.rows.iter().map(|r| r.flagged).collect();
    assert_eq!(flagged, [false, true]);
    assert_eq!(
        m.rows[1].cells[1],
        one(Tag::Pill(Pill::Monitor { active: false }), "degraded")
    );
    assert_eq!(plain(&m.rows[1].cells[2]), "yes");
    let w = waivers(&report);
    let states: Vec<&Tag> = w.rows.iter().map(|r| &r.cells[3][0].tag).collect();
    assert_eq!(
        states,
        [
            &Tag::Pill(Pill::Waiver(WaiverUse::Used)),
            &Tag::Pill(Pill::Waiver(WaiverUse::Expired)),
            &Tag::Pill(Pill::Waiver(WaiverUse::Unused)),
        ]
    );
}

#[test]
fn an_empty_report_has_no_rows() {
    let report = Report::default();
    assert!(clauses(&report).is_empty() && findings(&report).is_empty());
    assert!(scenarios(&report).is_empty());
    for table in [
        orphans(&report),
        monitors(&report),
        services(&report),
        waivers(&report),
    ] {
        assert!(table.rows.is_empty());
    }
}

/// Marks each span kind, to see how cells and finding lines are put together.
struct Marks;

impl Markup for Marks {
    fn text(&self, text: &str) -> String {
        text.to_owned()
    }
    fn code(&self, text: &str) -> String {
        format!("<c:{text}>")
    }
    fn long_code(&self, text: &str) -> String {
        format!("<lc:{text}>")
    }
    fn em(&self, text: &str) -> String {
        format!("<em:{text}>")
    }
    fn strong(&self, text: &str) -> String {
        format!("<b:{text}>")
    }
    fn line_break(&self) -> String {
        "<br>".to_owned()
    }
    fn finding_link(&self, id: &str) -> String {
        format!("<f:{id}>")
    }
    fn scenario_link(&self, id: &str) -> String {
        format!("<s:{id}>")
    }
    fn clause_link(&self, id: &str, section: &str) -> String {
        format!("<cl:{section}/{id}>")
    }
    fn quote(&self, sentence: &str) -> String {
        format!("<q:{sentence}>")
    }
    fn pill(&self, pill: &Pill, text: &str) -> String {
        format!("<p:{pill:?}:{text}>")
    }
}

#[test]
fn cells_and_finding_lines_are_put_together_from_the_sinks_markup() {
    let report = sample::failing();
    let row = waived_clause(&report);
    assert_eq!(
        cell(&Marks, &row.findings),
        "<f:F6><br><em:every finding against it is waived>"
    );
    assert_eq!(
        cell(&Marks, &row.checks),
        "<c:insecure-transport> <c:public-exposure>"
    );
    let breaks = FindingItem::Breaks {
        id: "6-x",
        clause: Some(("6", "We encrypt.")),
    };
    assert_eq!(item(&Marks, &breaks), "Breaks <cl:6/6-x>: <q:We encrypt.>");
    assert_eq!(item(&Marks, &FindingItem::Waived("why")), "<b:Waived:> why");
}
