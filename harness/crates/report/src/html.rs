//! `report.html`: one self-contained page (inline CSS, no scripts, nothing fetched) that reads
//! offline and prints with a page per section. Every string from the report is escaped.

use std::fmt::Write as _;

use crate::model::{ClauseVerdict, Crash, Report, ScenarioOutcome, Verdict};
use crate::rows::{self, Cell, Column, FindingRows, Markup, Pill, ScenarioRows, Table, WaiverUse};
use crate::text::{attr, clip, duration, html, in_flight, offset, plural};

/// Timelines longer than this are folded into a `<details>` element.
const TIMELINE_FOLD: usize = 12;

const STYLE: &str = r#"
:root { --fail: #b42318; --fail-bg: #fde8e7; --pass: #067647; --pass-bg: #e3f6ec; --warn: #93370d;
  --warn-bg: #fef0c7; --muted: #5d6b7e; --line: #d0d5dd; --ink: #101828; --code-bg: #f2f4f7; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem; color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
h1, h2, h3 { line-height: 1.25; }
h2 { margin-top: 2.5rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
h3 { margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f9fafb; }
table.evidence { table-layout: fixed; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; background: var(--code-bg);
  padding: .05rem .25rem; border-radius: 3px; white-space: nowrap; }
code.wrap { white-space: pre-wrap; word-break: break-all; }
a { color: inherit; }
.banner { border-radius: 10px; padding: 1.25rem 1.5rem; margin-bottom: 1rem; border: 2px solid;
  print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.banner.pass { background: var(--pass-bg); border-color: var(--pass); }
.banner.fail { background: var(--fail-bg); border-color: var(--fail); }
.banner.incomplete { background: var(--warn-bg); border-color: var(--warn); }
.banner .verdict { font-size: 2.4rem; font-weight: 800; letter-spacing: .04em; margin: 0; }
.banner.pass .verdict { color: var(--pass); } .banner.fail .verdict { color: var(--fail); }
.banner.incomplete .verdict { color: var(--warn); }
.banner .summary { font-size: 1.15rem; font-weight: 600; margin: .25rem 0 .5rem; }
.banner .meta { color: var(--muted); margin: 0; }
.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(7.5rem, 1fr)); gap: .5rem; margin: 1rem 0; }
.counts div { border: 1px solid var(--line); border-radius: 8px; padding: .5rem .75rem; }
.counts b { display: block; font-size: 1.5rem; }
.pill { display: inline-block; padding: 0 .5rem; border-radius: 999px; font-weight: 700; font-size: 13px;
  white-space: nowrap; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.pill.pass { background: var(--pass-bg); color: var(--pass); }
.pill.fail { background: var(--fail-bg); color: var(--fail); }
.pill.waived, .pill.degraded, .pill.incomplete, .pill.expired { background: var(--warn-bg); color: var(--warn); }
.pill.not-tested, .pill.unused { background: var(--code-bg); color: var(--muted); }
.pill.unavailable { background: var(--fail-bg); color: var(--fail); }
.sentence { color: var(--muted); font-style: italic; }
.finding { border: 1px solid var(--line); border-left: 6px solid var(--fail); border-radius: 6px; padding: .25rem 1rem .5rem;
  margin: 1rem 0; break-inside: avoid; }
.finding.waived { border-left-color: var(--warn); }
.finding h3 { margin-top: .75rem; }
.errors { border: 2px solid var(--warn); background: var(--warn-bg); border-radius: 8px; padding: .5rem 1rem; }
tr.bad td { background: var(--fail-bg); }
details > summary { cursor: pointer; color: var(--muted); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
@media print {
  body { max-width: none; padding: 0; font-size: 12px; }
  section { break-before: page; }
  section.first { break-before: auto; }
  details::details-content { content-visibility: visible; display: block; }
  details > summary { display: none; }
  tr, .finding { break-inside: avoid; }
  a { text-decoration: none; }
}
"#;

/// Renders the report as one self-contained HTML page.
pub fn render(report: &Report) -> String {
    let mut h = String::with_capacity(32 * 1024);
    let verdict = report.effective_verdict();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Traceless audit: {} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        verdict.as_str().to_uppercase(),
        html(&report.summary_line())
    );
    banner(&mut h, report);
    errors(&mut h, report);
    run_state(&mut h, report);
    clauses(&mut h, report);
    findings(&mut h, report);
    scenarios(&mut h, report);
    monitors(&mut h, report);
    services(&mut h, report);
    waivers(&mut h, report);
    provenance(&mut h, report);
    h.push_str("</body>\n</html>\n");
    h
}

fn banner(h: &mut String, report: &Report) {
    let verdict = report.effective_verdict();
    let p = &report.provenance;
    let _ = writeln!(
        h,
        "<header class=\"banner {0}\" id=\"verdict\">\n<p class=\"verdict\">{1}</p>\n<p class=\"summary\">{2}</p>",
        verdict.as_str(),
        verdict_words(verdict),
        html(&report.summary_line())
    );
    if !report.summary.is_empty() && report.summary != report.summary_line() {
        let _ = writeln!(h, "<p>{}</p>", html(&report.summary));
    }
    if verdict != report.verdict {
        let _ = writeln!(
            h,
            "<p><strong>The report states “{}” but its contents say “{}”; the stricter verdict is shown.</strong></p>",
            report.verdict, verdict
        );
    }
    let _ = writeln!(
        h,
        "<p class=\"meta\">Audit of <code class=\"wrap\">{}</code> · started {} · took {} · traceless {} · schema {}</p>\n</header>",
        html(&clip(&p.pipeline_command.join(" "), 120)),
        html(&p.started_at),
        duration(p.duration_ms),
        html(&p.harness_version),
        html(&report.schema)
    );
    let c = report.counts();
    h.push_str("<div class=\"counts\">\n");
    let tiles = [
        (c.clauses_passed, "clauses passed"),
        (c.clauses_failed, "clauses failed"),
        (c.clauses_waived, "clauses waived"),
        (c.clauses_not_tested, "clauses not tested"),
        (c.findings_unwaived(), "unwaived findings"),
        (c.findings_waived, "waived findings"),
        (c.scenarios_failed, "scenarios failed"),
        (c.monitors_not_active, "monitors not active"),
    ];
    for (n, what) in tiles {
        let _ = writeln!(h, "<div><b>{n}</b>{what}</div>");
    }
    let _ = writeln!(
        h,
        "</div>\n<p>{} in the clause map, {} run, {} watching.</p>",
        plural(c.clauses, "clause"),
        plural(c.scenarios, "scenario"),
        plural(c.monitors, "monitor")
    );
}

fn verdict_words(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS — the policy held under audit",
        Verdict::Fail => "FAIL — the policy was broken",
        Verdict::Incomplete => "INCOMPLETE — the audit could not judge",
    }
}

fn pill(class: &str, text: &str) -> String {
    format!("<span class=\"pill {}\">{}</span>", attr(class), html(text))
}

fn outcome_pill(outcome: ScenarioOutcome, not_sent: u32) -> String {
    match outcome {
        ScenarioOutcome::Pass => pill("pass", "passed"),
        ScenarioOutcome::Fail => pill("fail", "failed"),
        ScenarioOutcome::NotRun => pill("not-tested", "not run"),
        ScenarioOutcome::Incomplete => {
            pill("incomplete", &format!("incomplete: {not_sent} not sent"))
        }
    }
}

/// HTML's markup for the rows' spans.
struct Html;

impl Markup for Html {
    fn text(&self, text: &str) -> String {
        html(text)
    }
    fn code(&self, text: &str) -> String {
        format!("<code>{}</code>", html(text))
    }
    fn long_code(&self, text: &str) -> String {
        format!("<code class=\"wrap\">{}</code>", html(text))
    }
    fn em(&self, text: &str) -> String {
        format!("<em>{}</em>", html(text))
    }
    fn strong(&self, text: &str) -> String {
        format!("<strong>{}</strong>", html(text))
    }
    fn line_break(&self) -> String {
        "<br>".to_owned()
    }
    fn finding_link(&self, id: &str) -> String {
        format!(
            "<a href=\"#{}\">{}</a>",
            attr(&finding_anchor(id)),
            html(id)
        )
    }
    fn scenario_link(&self, id: &str) -> String {
        format!(
            "<a href=\"#scenario-{}\"><code>{}</code></a>",
            attr(id),
            html(id)
        )
    }
    fn clause_link(&self, id: &str, section: &str) -> String {
        format!(
            "<a href=\"#clause-{}\">§{} <code>{}</code></a>",
            attr(id),
            html(section),
            html(id)
        )
    }
    fn quote(&self, sentence: &str) -> String {
        format!("<span class=\"sentence\">“{}”</span>", html(sentence))
    }
    fn pill(&self, state: &Pill, text: &str) -> String {
        state_pill(state, text)
    }
}

/// A state as a coloured pill: its class, and the words on it.
fn state_pill(state: &Pill, text: &str) -> String {
    match *state {
        Pill::Clause(ClauseVerdict::NotTested) => pill("not-tested", "not tested"),
        Pill::Clause(verdict) => pill(verdict.as_str(), verdict.as_str()),
        Pill::Scenario { outcome, not_sent } => outcome_pill(outcome, not_sent),
        Pill::Finding { waived: true } => pill("waived", "waived"),
        Pill::Finding { waived: false } => pill("fail", "fail"),
        Pill::Monitor { active: true } => pill("pass", text),
        Pill::Monitor { active: false } => pill(text, text),
        Pill::Waiver(WaiverUse::Expired) => pill("expired", "expired: waives nothing"),
        Pill::Waiver(WaiverUse::Used) => pill("waived", "used"),
        Pill::Waiver(WaiverUse::Unused) => pill("unused", "unused"),
    }
}

fn cell(c: &Cell) -> String {
    rows::cell(&Html, c)
}

/// `<td>`, or `<td class="num">` in a numeric column (likewise `<th>`).
fn open(element: &str, column: &Column) -> String {
    if column.numeric {
        format!("<{element} class=\"num\">")
    } else {
        format!("<{element}>")
    }
}

/// A table after its opening tag (which may carry a class and columns): head, rows, end.
fn table(h: &mut String, opening: &str, t: &Table) {
    h.push_str(opening);
    h.push_str("<thead><tr>");
    for c in t.columns {
        let _ = write!(h, "{}{}</th>", open("th", c), html(c.name));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        h.push_str(if row.flagged {
            "<tr class=\"bad\">"
        } else {
            "<tr>"
        });
        for (c, column) in row.cells.iter().zip(t.columns) {
            let _ = write!(h, "{}{}</td>", open("td", column), cell(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

fn errors(h: &mut String, report: &Report) {
    if report.errors.is_empty() {
        return;
    }
    h.push_str(
        "<div class=\"errors\" id=\"errors\">\n<h2>The audit could not be completed</h2>\n<ul>\n",
    );
    for e in &report.errors {
        let _ = writeln!(h, "<li>{}</li>", html(e));
    }
    h.push_str("</ul>\n</div>\n");
}

/// What cut the run short or weakened it: a degraded run, an interruption, a crash, orphans.
fn run_state(h: &mut String, report: &Report) {
    let mut parts = Vec::new();
    if report.degraded {
        parts.push("<h2>DEGRADED</h2>\n<p>The run accepted monitors that were not active (<code>--allow-degraded</code>): what they would have seen was not judged.</p>".to_owned());
    }
    if let Some(signal) = &report.interrupted {
        parts.push(format!(
            "<h2>Interrupted</h2>\n<p>The audit was stopped by {}: scenarios it did not reach are marked not run.</p>",
            html(signal)
        ));
    }
    if let Some(c) = &report.crash {
        parts.push(crash(c));
    }
    if !report.orphans.is_empty() {
        let mut t = "<h2>Processes that left the pipeline's tree</h2>\n".to_owned();
        table(&mut t, "<table>\n", &rows::orphans(report));
        t.pop();
        parts.push(t);
    }
    if !parts.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"errors\" id=\"run-state\">\n{}\n</div>",
            parts.join("\n")
        );
    }
}

fn crash(c: &Crash) -> String {
    format!(
        "<h2>The pipeline died</h2>\n<p>{} at {}{}{}; the requests after it were not sent.</p>\n<pre>{}</pre>",
        html(&c.status),
        html(&offset(c.at_ms)),
        c.scenario
            .as_deref()
            .map(|s| format!(", during scenario <code>{}</code>", html(s)))
            .unwrap_or_default(),
        in_flight(&c.in_flight),
        html(&c.stderr_tail)
    )
}

fn clauses(h: &mut String, report: &Report) {
    h.push_str("<section class=\"first\" id=\"clauses\">\n<h2>Policy clauses</h2>\n");
    if report.clauses.is_empty() {
        let _ = writeln!(h, "<p>{}</p>\n</section>", rows::NO_CLAUSES);
        return;
    }
    h.push_str("<table>\n<thead><tr><th>§</th><th>clause</th><th>verdict</th><th>checks</th><th>findings / reason</th></tr></thead>\n<tbody>\n");
    for c in rows::clauses(report) {
        let _ = writeln!(
            h,
            "<tr id=\"clause-{}\"><td>{}</td><td><strong>{}</strong> <code>{}</code><br>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            attr(c.id),
            html(c.section),
            html(c.title),
            html(c.id),
            Html.quote(c.sentence),
            state_pill(&Pill::Clause(c.verdict), ""),
            cell(&c.checks),
            cell(&c.findings)
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

fn finding_anchor(id: &str) -> String {
    format!("finding-{id}")
}

fn findings(h: &mut String, report: &Report) {
    h.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if report.findings.is_empty() {
        let _ = writeln!(h, "<p>{}</p>\n</section>", rows::NO_FINDINGS);
        return;
    }
    for f in rows::findings(report) {
        finding(h, &f);
    }
    h.push_str("</section>\n");
}

const EVIDENCE_TABLE: &str = "<table class=\"evidence\">\n<colgroup><col style=\"width:9%\"><col style=\"width:9%\"><col style=\"width:6%\"><col style=\"width:20%\">\
     <col style=\"width:18%\"><col style=\"width:10%\"><col style=\"width:10%\"><col style=\"width:18%\"></colgroup>\n";

fn finding(h: &mut String, f: &FindingRows) {
    let waived = f.pill == Pill::Finding { waived: true };
    let _ = writeln!(
        h,
        "<article class=\"finding{}\" id=\"{}\">\n<h3>{} {} <code>{}</code> <code>{}</code><br>{}</h3>",
        if waived { " waived" } else { "" },
        attr(&finding_anchor(f.id)),
        html(f.id),
        state_pill(&f.pill, ""),
        html(f.code),
        html(f.kind),
        html(f.summary)
    );
    h.push_str("<ul>\n");
    for item in &f.items {
        let _ = writeln!(h, "<li>{}</li>", rows::item(&Html, item));
    }
    h.push_str("</ul>\n");
    if f.evidence.rows.is_empty() {
        let _ = writeln!(h, "<p><em>{}</em></p>\n</article>", rows::NO_EVIDENCE);
        return;
    }
    table(h, EVIDENCE_TABLE, &f.evidence);
    h.push_str("</article>\n");
}

fn scenarios(h: &mut String, report: &Report) {
    h.push_str("<section id=\"scenarios\">\n<h2>Scenarios</h2>\n");
    if report.scenarios.is_empty() {
        let _ = writeln!(h, "<p>{}</p>\n</section>", rows::NO_SCENARIOS);
        return;
    }
    h.push_str(
        "<table>\n<thead><tr><th>scenario</th><th>result</th><th>clauses</th><th class=\"num\">requests</th><th>findings</th></tr></thead>\n<tbody>\n",
    );
    let scenarios = rows::scenarios(report);
    for s in &scenarios {
        let _ = writeln!(
            h,
            "<tr{}><td><a href=\"#scenario-{}\"><code>{}</code></a> {}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if s.flagged { " class=\"bad\"" } else { "" },
            attr(s.id),
            html(s.id),
            html(s.title),
            state_pill(&s.pill, ""),
            html(&s.clauses),
            s.requests_sent,
            cell(&s.findings)
        );
    }
    h.push_str("</tbody>\n</table>\n");
    for s in &scenarios {
        scenario(h, s);
    }
    h.push_str("</section>\n");
}

fn scenario(h: &mut String, s: &ScenarioRows) {
    let _ = writeln!(
        h,
        "<article id=\"scenario-{}\">\n<h3><code>{}</code> {} {}</h3>",
        attr(s.id),
        html(s.id),
        state_pill(&s.pill, ""),
        html(s.title)
    );
    if let Some(p) = &s.passing {
        let _ = writeln!(h, "<p>{}</p>", html(p));
    }
    if !s.requests.rows.is_empty() {
        table(h, "<table>\n", &s.requests);
    }
    timeline(h, &s.timeline);
    h.push_str("</article>\n");
}

fn timeline(h: &mut String, t: &Table) {
    if t.rows.is_empty() {
        h.push_str("<p><em>No timeline recorded.</em></p>\n");
        return;
    }
    let fold = t.rows.len() > TIMELINE_FOLD;
    if fold {
        let _ = writeln!(
            h,
            "<details>\n<summary>Timeline: {}</summary>",
            plural(t.rows.len(), "event")
        );
    } else {
        h.push_str("<p>Timeline</p>\n");
    }
    table(h, "<table>\n", t);
    if fold {
        h.push_str("</details>\n");
    }
}

fn monitors(h: &mut String, report: &Report) {
    h.push_str("<section id=\"monitors\">\n<h2>Monitors</h2>\n");
    if report.monitors.is_empty() {
        let _ = writeln!(
            h,
            "<p><strong>{}</strong></p>\n</section>",
            rows::NO_MONITORS
        );
        return;
    }
    table(h, "<table>\n", &rows::monitors(report));
    h.push_str("</section>\n");
}

fn services(h: &mut String, report: &Report) {
    if report.services.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<section id=\"services\">\n<h2>Local services</h2>\n<p>{}</p>",
        rows::SERVICES_NOTE
    );
    table(h, "<table>\n", &rows::services(report));
    h.push_str("</section>\n");
}

fn waivers(h: &mut String, report: &Report) {
    h.push_str("<section id=\"waivers\">\n<h2>Waivers</h2>\n");
    if report.waivers.is_empty() {
        h.push_str("<p>None configured.</p>\n</section>\n");
        return;
    }
    table(h, "<table>\n", &rows::waivers(report));
    h.push_str("</section>\n");
}

fn provenance(h: &mut String, report: &Report) {
    let p = &report.provenance;
    h.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n<dl>\n");
    for (k, v) in provenance_list(report) {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", html(k), v);
    }
    h.push_str("</dl>\n");
    if !p.scenarios.is_empty() {
        let _ = writeln!(
            h,
            "<details>\n<summary>{} and their SHA-256</summary>",
            plural(p.scenarios.len(), "scenario file")
        );
        table(h, "<table>\n", &rows::scenario_files(p));
        h.push_str("</details>\n");
    }
    h.push_str("</section>\n");
}

/// The provenance as terms and their (HTML) descriptions.
fn provenance_list(report: &Report) -> Vec<(&'static str, String)> {
    let p = &report.provenance;
    let code = |s: &str| Html.long_code(s);
    let mut list = vec![
        ("harness", format!("traceless {}", html(&p.harness_version))),
        (
            "harness commit",
            p.harness_commit
                .as_deref()
                .map_or_else(|| "unknown".to_owned(), code),
        ),
        ("pipeline command", code(&p.pipeline_command.join(" "))),
        (
            "pipeline SHA-256",
            p.pipeline_sha256
                .as_deref()
                .map_or_else(|| "not a file".to_owned(), code),
        ),
    ];
    for (k, d) in rows::inputs(p) {
        list.push((
            k,
            format!("{}<br>SHA-256 {}", code(&d.path), code(&d.sha256)),
        ));
    }
    list.extend(run_list(report));
    list
}

/// The provenance of the run itself: seed, start, kernel, mode, evidence, sharding, schema.
fn run_list(report: &Report) -> Vec<(&'static str, String)> {
    let p = &report.provenance;
    let code = |s: &str| Html.long_code(s);
    let seed = format!(
        "{} ({}; replay with {})",
        p.seed,
        plural(p.cases as usize, "property case"),
        code(&rows::replay_command(p))
    );
    let mode = if p.ci {
        "CI (<code>--ci</code>)"
    } else {
        "local"
    };
    let mut list = vec![
        ("seed", seed),
        ("started", html(&p.started_at)),
        ("duration", duration(p.duration_ms)),
        ("kernel", code(&p.kernel)),
        ("mode", mode.to_owned()),
    ];
    list.extend(crate::text::evidence_files(p).map(|f| ("evidence", html(&f))));
    list.extend(crate::text::sharding(p).map(|s| ("sharding", html(&s))));
    list.push(("schema", code(&report.schema)));
    list
}
