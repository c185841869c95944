//! The rows `report.md` and `report.html` both show: a finished report selected, ordered and
//! worded into plain-text cells with semantic tags, which each sink only escapes and lays out.
//!
//! Nothing here judges: the report already has. A cell is plain text in spans, each tagged with
//! what it is (code, a link to a finding, a verdict), never with how a format shows it.

mod markup;

use std::collections::HashMap;

use crate::model::{
    ClauseResult, ClauseVerdict, EvidenceItem, FileDigest, Finding, Provenance, Report,
    RequestResult, ScenarioOutcome, ScenarioResult, WaiverEntry,
};
use crate::text::{clip, duration, offset, passing_summary, requests_sent};

pub use markup::{Markup, cell, item};

/// No excerpt is shown longer than this, whatever the report holds.
const EXCERPT_MAX_CHARS: usize = 160;
/// Commands are clipped to this in table cells.
const COMMAND_MAX_CHARS: usize = 120;

/// What the findings section says when there are none.
pub const NO_FINDINGS: &str = "None: no monitor saw a canary where the policy forbids it.";
/// What the clauses section says when there is no clause map.
pub const NO_CLAUSES: &str = "No clause map was loaded.";
/// What the scenarios section says when none ran.
pub const NO_SCENARIOS: &str = "No scenario ran.";
/// What the monitors section says when none reported.
pub const NO_MONITORS: &str = "No monitor reported its status.";
/// What a finding without evidence says.
pub const NO_EVIDENCE: &str = "No evidence recorded.";
/// The note above the local services' table.
pub const SERVICES_NOTE: &str = "Each folder was read whole, once the service had stopped.";

/// What a span of text is; the sink decides how that looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Words.
    Text,
    /// A short identifier, shown monospace.
    Code,
    /// A long monospace string (a path, a digest, an excerpt) that may wrap.
    LongCode,
    /// Words set off from the rest (a reason).
    Em,
    /// A link to the finding or scenario whose id is the span's text.
    Link(Target),
    /// A state; the span's text is the report's word for it.
    Pill(Pill),
    /// A break between two parts of a cell (no text).
    Break,
}

/// What a link points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Finding,
    Scenario,
}

/// A state the report holds, shown as a badge or an icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pill {
    Clause(ClauseVerdict),
    Scenario {
        outcome: ScenarioOutcome,
        not_sent: u32,
    },
    Finding {
        waived: bool,
    },
    Monitor {
        active: bool,
    },
    Waiver(WaiverUse),
}

/// What became of a waiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaiverUse {
    Expired,
    Used,
    Unused,
}

/// Plain text and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub tag: Tag,
}

/// A table cell, or any inline run: spans in order.
pub type Cell = Vec<Span>;

fn span(tag: Tag, text: impl Into<String>) -> Span {
    Span {
        text: text.into(),
        tag,
    }
}

/// A cell of one span.
fn one(tag: Tag, text: impl Into<String>) -> Cell {
    vec![span(tag, text)]
}

/// A cell of words.
fn words(text: impl Into<String>) -> Cell {
    one(Tag::Text, text)
}

/// A cell of one tagged span, or an empty cell when there is nothing.
fn maybe(tag: Tag, text: Option<String>) -> Cell {
    text.map(|t| one(tag, t)).unwrap_or_default()
}

/// A column heading; numeric columns align right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub numeric: bool,
}

const fn col(name: &'static str) -> Column {
    Column {
        name,
        numeric: false,
    }
}

const fn num(name: &'static str) -> Column {
    Column {
        name,
        numeric: true,
    }
}

/// One row; `flagged` rows show something the report marks as wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub flagged: bool,
}

/// A table: headings and rows of as many cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: &'static [Column],
    pub rows: Vec<Row>,
}

impl Table {
    fn new<T>(
        columns: &'static [Column],
        items: &[T],
        row: impl Fn(&T) -> (Vec<Cell>, bool),
    ) -> Table {
        let rows = items
            .iter()
            .map(|item| {
                let (cells, flagged) = row(item);
                Row { cells, flagged }
            })
            .collect();
        Table { columns, rows }
    }
}

/// The processes that left the pipeline's tree.
pub fn orphans(report: &Report) -> Table {
    const COLUMNS: &[Column] = &[num("pid"), col("command"), col("what it did")];
    Table::new(COLUMNS, &report.orphans, |o| {
        let command = clip(&o.argv.join(" "), COMMAND_MAX_CHARS);
        let cells = vec![
            words(o.pid.to_string()),
            one(Tag::Code, command),
            words(&*o.detail),
        ];
        (cells, false)
    })
}

/// One clause of the clause map, its verdict, checks and findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseRow<'a> {
    pub id: &'a str,
    pub section: &'a str,
    pub title: &'a str,
    pub sentence: &'a str,
    pub verdict: ClauseVerdict,
    /// The checks as code, or a dash when none verifies the clause.
    pub checks: Cell,
    /// Links to the findings against it, then the reason it is not tested or waived.
    pub findings: Cell,
}

/// The clause matrix, in the clause map's order.
pub fn clauses(report: &Report) -> Vec<ClauseRow<'_>> {
    report.clauses.iter().map(clause).collect()
}

fn clause(c: &ClauseResult) -> ClauseRow<'_> {
    ClauseRow {
        id: &c.id,
        section: &c.section,
        title: &c.title,
        sentence: &c.sentence,
        verdict: c.verdict,
        checks: separated(c.checks.iter().map(|k| one(Tag::Code, k)), " ", "—"),
        findings: clause_findings(c),
    }
}

fn clause_findings(c: &ClauseResult) -> Cell {
    let links = c
        .findings
        .iter()
        .map(|f| one(Tag::Link(Target::Finding), f));
    let mut cell = separated(links, ", ", "");
    if let Some(reason) = &c.reason {
        if !cell.is_empty() {
            cell.push(span(Tag::Break, ""));
        }
        cell.push(span(Tag::Em, reason));
    }
    cell
}

/// The cells joined by `sep` into one, or `none` as words when there are none.
fn separated(cells: impl Iterator<Item = Cell>, sep: &str, none: &str) -> Cell {
    let mut out = Cell::new();
    for cell in cells {
        if !out.is_empty() {
            out.push(span(Tag::Text, sep));
        }
        out.extend(cell);
    }
    if out.is_empty() && !none.is_empty() {
        out = words(none);
    }
    out
}

/// One finding: its heading, what it breaks and where, and its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRows<'a> {
    pub id: &'a str,
    pub code: &'a str,
    pub kind: &'a str,
    pub summary: &'a str,
    pub pill: Pill,
    pub items: Vec<FindingItem<'a>>,
    pub evidence: Table,
}

/// A line under a finding's heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingItem<'a> {
    /// A clause it breaks: its id, and its section and sentence when the clause map has it.
    Breaks {
        id: &'a str,
        clause: Option<(&'a str, &'a str)>,
    },
    /// The scenario (a link) and request it was seen in.
    Scenario(Cell),
    /// The waiver's justification.
    Waived(&'a str),
}

/// Every finding, waived ones included, in report order.
pub fn findings(report: &Report) -> Vec<FindingRows<'_>> {
    let clauses: HashMap<&str, &ClauseResult> =
        report.clauses.iter().map(|c| (c.id.as_str(), c)).collect();
    report
        .findings
        .iter()
        .map(|f| finding(f, &clauses))
        .collect()
}

fn finding<'a>(f: &'a Finding, clauses: &HashMap<&str, &'a ClauseResult>) -> FindingRows<'a> {
    FindingRows {
        id: &f.id,
        code: &f.code,
        kind: &f.kind,
        summary: &f.summary,
        pill: Pill::Finding {
            waived: f.is_waived(),
        },
        items: finding_items(f, clauses),
        evidence: evidence(&f.evidence),
    }
}

fn finding_items<'a>(
    f: &'a Finding,
    clauses: &HashMap<&str, &'a ClauseResult>,
) -> Vec<FindingItem<'a>> {
    let mut items: Vec<FindingItem> = f
        .clauses
        .iter()
        .map(|id| FindingItem::Breaks {
            id,
            clause: clauses
                .get(id.as_str())
                .map(|c| (c.section.as_str(), c.sentence.as_str())),
        })
        .collect();
    if let Some(s) = &f.scenario {
        let mut cell = one(Tag::Link(Target::Scenario), s);
        if let Some(r) = f.request {
            cell.push(span(Tag::Text, format!(", request {r}")));
        }
        items.push(FindingItem::Scenario(cell));
    }
    items.extend(f.waiver.as_deref().map(FindingItem::Waived));
    items
}

/// A finding's evidence: when, what, where, how encoded, an excerpt.
pub fn evidence(items: &[EvidenceItem]) -> Table {
    const COLUMNS: &[Column] = &[
        num("at"),
        col("source"),
        num("pid"),
        col("location"),
        col("detail"),
        col("encoding"),
        num("matched"),
        col("excerpt"),
    ];
    Table::new(COLUMNS, items, |e| (evidence_cells(e), false))
}

fn evidence_cells(e: &EvidenceItem) -> Vec<Cell> {
    vec![
        words(e.at_ms.map(offset).unwrap_or_default()),
        words(&*e.source),
        words(e.pid.map(|p| p.to_string()).unwrap_or_default()),
        one(Tag::LongCode, &e.location),
        words(&*e.detail),
        maybe(Tag::Code, e.encoding.clone()),
        words(
            e.matched_bytes
                .map(|b| format!("{b} B"))
                .unwrap_or_default(),
        ),
        maybe(
            Tag::LongCode,
            e.excerpt.as_deref().map(|x| clip(x, EXCERPT_MAX_CHARS)),
        ),
    ]
}

/// One scenario: its summary row, its requests and its timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioRows<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub pill: Pill,
    /// The outcome is not a pass.
    pub flagged: bool,
    /// The policy sections it exercises.
    pub clauses: String,
    /// How many requests it sent, counted ones included.
    pub requests_sent: usize,
    /// Each listed request's answer.
    pub answers: Vec<Answer>,
    /// Links to the findings seen in it, waived ones marked.
    pub findings: Cell,
    /// The passing property cases' requests, counted not listed, in one sentence.
    pub passing: Option<String>,
    pub requests: Table,
    pub timeline: Table,
}

/// A request's answer: the status it got, and the one it should have got when they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub got: String,
    pub wanted: Option<u16>,
}

/// Every scenario, in report order.
pub fn scenarios(report: &Report) -> Vec<ScenarioRows<'_>> {
    report
        .scenarios
        .iter()
        .map(|s| scenario(report, s))
        .collect()
}

fn scenario<'a>(report: &'a Report, s: &'a ScenarioResult) -> ScenarioRows<'a> {
    ScenarioRows {
        id: &s.id,
        title: &s.title,
        pill: Pill::Scenario {
            outcome: s.outcome,
            not_sent: s.requests_not_sent,
        },
        flagged: s.outcome != ScenarioOutcome::Pass,
        clauses: s.clauses.join(", "),
        requests_sent: requests_sent(s),
        answers: s.requests.iter().map(answer).collect(),
        findings: scenario_findings(report, &s.id),
        passing: s.passing.as_ref().map(passing_summary),
        requests: requests(&s.requests),
        timeline: timeline(s),
    }
}

fn scenario_findings(report: &Report, id: &str) -> Cell {
    let links = report
        .findings
        .iter()
        .filter(|f| f.scenario.as_deref() == Some(id))
        .map(|f| {
            let mut cell = one(Tag::Link(Target::Finding), &f.id);
            if f.is_waived() {
                cell.push(span(Tag::Text, " (waived)"));
            }
            cell
        });
    separated(links, ", ", "")
}

/// A status, or a dash when there is none.
fn status(status: Option<u16>) -> String {
    status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "—".to_owned())
}

/// The answer did not have the status the scenario expects.
fn wrong(r: &RequestResult) -> bool {
    matches!(r.expected_status, Some(want) if r.status != Some(want))
}

fn answer(r: &RequestResult) -> Answer {
    Answer {
        got: status(r.status),
        wanted: r.expected_status.filter(|_| wrong(r)),
    }
}

fn requests(requests: &[RequestResult]) -> Table {
    const COLUMNS: &[Column] = &[
        num("#"),
        col("provider"),
        col("provider behaviour"),
        col("client"),
        col("age confirmed"),
        num("status"),
        num("expected"),
        num("duration"),
        col("note"),
    ];
    Table::new(COLUMNS, requests, |r| (request_cells(r), wrong(r)))
}

fn request_cells(r: &RequestResult) -> Vec<Cell> {
    vec![
        words(r.id.to_string()),
        words(&*r.provider),
        words(r.provider_behaviour.join(", ")),
        words(&*r.client),
        words(if r.age_confirmed { "yes" } else { "no" }),
        words(status(r.status)),
        words(status(r.expected_status)),
        words(duration(r.duration_ms)),
        words(r.note.as_deref().unwrap_or_default()),
    ]
}

fn timeline(s: &ScenarioResult) -> Table {
    const COLUMNS: &[Column] = &[num("t"), col("source"), num("request"), col("what")];
    Table::new(COLUMNS, &s.timeline, |t| {
        let request = t.request.map(|r| r.to_string()).unwrap_or_default();
        let cells = vec![
            words(offset(t.t_ms)),
            words(&*t.source),
            words(request),
            words(&*t.what),
        ];
        (cells, false)
    })
}

/// Every monitor and its state; monitors not active are flagged.
pub fn monitors(report: &Report) -> Table {
    const COLUMNS: &[Column] = &[col("monitor"), col("state"), col("required"), col("reason")];
    Table::new(COLUMNS, &report.monitors, |m| {
        let active = m.is_active();
        let cells = vec![
            words(&*m.name),
            one(Tag::Pill(Pill::Monitor { active }), &m.state),
            words(if m.required { "yes" } else { "no" }),
            words(m.reason.as_deref().unwrap_or_default()),
        ];
        (cells, !active)
    })
}

/// The declared local services and how much of their folders was read.
pub fn services(report: &Report) -> Table {
    const COLUMNS: &[Column] = &[
        col("service"),
        col("data folder"),
        num("files read"),
        num("bytes read"),
    ];
    Table::new(COLUMNS, &report.services, |s| {
        let cells = vec![
            words(&*s.name),
            one(Tag::Code, &s.data_dir),
            words(s.files_scanned.to_string()),
            words(s.bytes_scanned.to_string()),
        ];
        (cells, false)
    })
}

/// Every configured waiver, used or not.
pub fn waivers(report: &Report) -> Table {
    const COLUMNS: &[Column] = &[
        col("target"),
        col("justification"),
        col("expires"),
        col("status"),
    ];
    Table::new(COLUMNS, &report.waivers, |w| {
        let cells = vec![
            one(Tag::Code, &w.target),
            words(&*w.justification),
            words(&*w.expires),
            waiver_status(w),
        ];
        (cells, false)
    })
}

fn waiver_status(w: &WaiverEntry) -> Cell {
    let (state, word) = match (w.expired, w.used) {
        (true, _) => (WaiverUse::Expired, "expired"),
        (false, true) => (WaiverUse::Used, "used"),
        (false, false) => (WaiverUse::Unused, "unused"),
    };
    one(Tag::Pill(Pill::Waiver(state)), word)
}

/// The audit's digested inputs besides the pipeline and the scenarios, in order.
pub fn inputs(p: &Provenance) -> [(&'static str, &FileDigest); 3] {
    [
        ("config", &p.config),
        ("policy", &p.policy),
        ("clause map", &p.clause_map),
    ]
}

/// The command that replays the audit's property cases.
pub fn replay_command(p: &Provenance) -> String {
    format!("traceless audit --seed {}", p.seed)
}

/// Every scenario file and its SHA-256.
pub fn scenario_files(p: &Provenance) -> Table {
    const COLUMNS: &[Column] = &[col("file"), col("SHA-256")];
    Table::new(COLUMNS, &p.scenarios, |d| {
        let cells = vec![one(Tag::LongCode, &d.path), one(Tag::LongCode, &d.sha256)];
        (cells, false)
    })
}

#[cfg(test)]
mod tests;
