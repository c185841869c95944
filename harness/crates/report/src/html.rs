//! `report.html`: one self-contained page (inline CSS, no scripts, nothing fetched) that reads
//! offline and prints with a page per section. Every string from the report is escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::{
    ClauseResult, ClauseVerdict, Finding, Report, ScenarioOutcome, ScenarioResult, Verdict,
};
use crate::text::{attr, clip, duration, html, in_flight, offset, plural};

/// Timelines longer than this are folded into a `<details>` element.
const TIMELINE_FOLD: usize = 12;
/// No excerpt is shown longer than this, whatever the report holds.
const EXCERPT_MAX_CHARS: usize = 160;

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

fn clause_pill(verdict: ClauseVerdict) -> String {
    let text = match verdict {
        ClauseVerdict::NotTested => "not tested",
        other => other.as_str(),
    };
    pill(verdict.as_str(), text)
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
        parts.push(format!(
            "<h2>The pipeline died</h2>\n<p>{} at {}{}{}; the requests after it were not sent.</p>\n<pre>{}</pre>",
            html(&c.status),
            html(&offset(c.at_ms)),
            c.scenario
                .as_deref()
                .map(|s| format!(", during scenario <code>{}</code>", html(s)))
                .unwrap_or_default(),
            in_flight(&c.in_flight),
            html(&c.stderr_tail)
        ));
    }
    if !report.orphans.is_empty() {
        let mut t = "<h2>Processes that left the pipeline's tree</h2>\n<table>\n<thead><tr><th class=\"num\">pid</th><th>command</th><th>what it did</th></tr></thead>\n<tbody>\n".to_owned();
        for o in &report.orphans {
            let _ = writeln!(
                t,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                o.pid,
                html(&clip(&o.argv.join(" "), 120)),
                html(&o.detail)
            );
        }
        t.push_str("</tbody>\n</table>");
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

fn clauses(h: &mut String, report: &Report) {
    h.push_str("<section class=\"first\" id=\"clauses\">\n<h2>Policy clauses</h2>\n");
    if report.clauses.is_empty() {
        h.push_str("<p>No clause map was loaded.</p>\n</section>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr><th>§</th><th>clause</th><th>verdict</th><th>checks</th><th>findings / reason</th></tr></thead>\n<tbody>\n");
    for c in &report.clauses {
        let checks = if c.checks.is_empty() {
            "—".to_owned()
        } else {
            c.checks
                .iter()
                .map(|k| format!("<code>{}</code>", html(k)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut findings = c
            .findings
            .iter()
            .map(|f| format!("<a href=\"#{}\">{}</a>", attr(&finding_anchor(f)), html(f)))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(reason) = &c.reason {
            let _ = write!(
                findings,
                "{}<em>{}</em>",
                if findings.is_empty() { "" } else { "<br>" },
                html(reason)
            );
        }
        let _ = writeln!(
            h,
            "<tr id=\"clause-{}\"><td>{}</td><td><strong>{}</strong> <code>{}</code><br><span class=\"sentence\">“{}”</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            attr(&c.id),
            html(&c.section),
            html(&c.title),
            html(&c.id),
            html(&c.sentence),
            clause_pill(c.verdict),
            checks,
            findings
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
        h.push_str(
            "<p>None: no monitor saw a canary where the policy forbids it.</p>\n</section>\n",
        );
        return;
    }
    let clauses: HashMap<&str, &ClauseResult> =
        report.clauses.iter().map(|c| (c.id.as_str(), c)).collect();
    for f in &report.findings {
        finding(h, f, &clauses);
    }
    h.push_str("</section>\n");
}

fn finding(h: &mut String, f: &Finding, clauses: &HashMap<&str, &ClauseResult>) {
    let _ = writeln!(
        h,
        "<article class=\"finding{}\" id=\"{}\">\n<h3>{} {} <code>{}</code> <code>{}</code><br>{}</h3>",
        if f.is_waived() { " waived" } else { "" },
        attr(&finding_anchor(&f.id)),
        html(&f.id),
        if f.is_waived() {
            pill("waived", "waived")
        } else {
            pill("fail", "fail")
        },
        html(&f.code),
        html(&f.kind),
        html(&f.summary)
    );
    h.push_str("<ul>\n");
    for id in &f.clauses {
        match clauses.get(id.as_str()) {
            Some(c) => {
                let _ = writeln!(
                    h,
                    "<li>Breaks <a href=\"#clause-{}\">§{} <code>{}</code></a>: <span class=\"sentence\">“{}”</span></li>",
                    attr(id),
                    html(&c.section),
                    html(id),
                    html(&c.sentence)
                );
            }
            None => {
                let _ = writeln!(h, "<li>Breaks <code>{}</code></li>", html(id));
            }
        }
    }
    if let Some(s) = &f.scenario {
        let request = f
            .request
            .map(|r| format!(", request {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<li>Scenario <a href=\"#scenario-{}\"><code>{}</code></a>{request}</li>",
            attr(s),
            html(s)
        );
    }
    if let Some(w) = &f.waiver {
        let _ = writeln!(h, "<li><strong>Waived:</strong> {}</li>", html(w));
    }
    h.push_str("</ul>\n");
    if f.evidence.is_empty() {
        h.push_str("<p><em>No evidence recorded.</em></p>\n</article>\n");
        return;
    }
    h.push_str(
        "<table class=\"evidence\">\n<colgroup><col style=\"width:9%\"><col style=\"width:9%\"><col style=\"width:6%\"><col style=\"width:20%\">\
         <col style=\"width:18%\"><col style=\"width:10%\"><col style=\"width:10%\"><col style=\"width:18%\"></colgroup>\n\
         <thead><tr><th class=\"num\">at</th><th>source</th><th class=\"num\">pid</th><th>location</th><th>detail</th>\
         <th>encoding</th><th class=\"num\">matched</th><th>excerpt</th></tr></thead>\n<tbody>\n",
    );
    for e in &f.evidence {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td><code class=\"wrap\">{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            e.at_ms.map(offset).unwrap_or_default(),
            html(&e.source),
            e.pid.map(|p| p.to_string()).unwrap_or_default(),
            html(&e.location),
            html(&e.detail),
            e.encoding
                .as_deref()
                .map(|x| format!("<code>{}</code>", html(x)))
                .unwrap_or_default(),
            e.matched_bytes
                .map(|b| format!("{b} B"))
                .unwrap_or_default(),
            e.excerpt
                .as_deref()
                .map(|x| format!(
                    "<code class=\"wrap\">{}</code>",
                    html(&clip(x, EXCERPT_MAX_CHARS))
                ))
                .unwrap_or_default(),
        );
    }
    h.push_str("</tbody>\n</table>\n</article>\n");
}

fn scenarios(h: &mut String, report: &Report) {
    h.push_str("<section id=\"scenarios\">\n<h2>Scenarios</h2>\n");
    if report.scenarios.is_empty() {
        h.push_str("<p>No scenario ran.</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table>\n<thead><tr><th>scenario</th><th>result</th><th>clauses</th><th class=\"num\">requests</th><th>findings</th></tr></thead>\n<tbody>\n",
    );
    for s in &report.scenarios {
        let findings = report
            .findings
            .iter()
            .filter(|f| f.scenario.as_deref() == Some(s.id.as_str()))
            .map(|f| {
                let waived = if f.is_waived() { " (waived)" } else { "" };
                format!(
                    "<a href=\"#{}\">{}</a>{waived}",
                    attr(&finding_anchor(&f.id)),
                    html(&f.id)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            h,
            "<tr{}><td><a href=\"#scenario-{}\"><code>{}</code></a> {}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if s.outcome == ScenarioOutcome::Pass {
                ""
            } else {
                " class=\"bad\""
            },
            attr(&s.id),
            html(&s.id),
            html(&s.title),
            outcome_pill(s),
            html(&s.clauses.join(", ")),
            crate::text::requests_sent(s),
            findings
        );
    }
    h.push_str("</tbody>\n</table>\n");
    for s in &report.scenarios {
        scenario(h, s);
    }
    h.push_str("</section>\n");
}

fn outcome_pill(s: &ScenarioResult) -> String {
    match s.outcome {
        ScenarioOutcome::Pass => pill("pass", "passed"),
        ScenarioOutcome::Fail => pill("fail", "failed"),
        ScenarioOutcome::NotRun => pill("not-tested", "not run"),
        ScenarioOutcome::Incomplete => pill(
            "incomplete",
            &format!("incomplete: {} not sent", s.requests_not_sent),
        ),
    }
}

fn scenario(h: &mut String, s: &ScenarioResult) {
    let _ = writeln!(
        h,
        "<article id=\"scenario-{}\">\n<h3><code>{}</code> {} {}</h3>",
        attr(&s.id),
        html(&s.id),
        outcome_pill(s),
        html(&s.title)
    );
    if let Some(p) = &s.passing {
        let _ = writeln!(h, "<p>{}</p>", html(&crate::text::passing_summary(p)));
    }
    if !s.requests.is_empty() {
        h.push_str(
            "<table>\n<thead><tr><th class=\"num\">#</th><th>provider</th><th>provider behaviour</th><th>client</th><th>age confirmed</th>\
             <th class=\"num\">status</th><th class=\"num\">expected</th><th class=\"num\">duration</th><th>note</th></tr></thead>\n<tbody>\n",
        );
        for r in &s.requests {
            let wrong = matches!(r.expected_status, Some(want) if r.status != Some(want));
            let _ = writeln!(
                h,
                "<tr{}><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                if wrong { " class=\"bad\"" } else { "" },
                r.id,
                html(&r.provider),
                html(&r.provider_behaviour.join(", ")),
                html(&r.client),
                if r.age_confirmed { "yes" } else { "no" },
                r.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".to_owned()),
                r.expected_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".to_owned()),
                duration(r.duration_ms),
                html(r.note.as_deref().unwrap_or_default())
            );
        }
        h.push_str("</tbody>\n</table>\n");
    }
    if s.timeline.is_empty() {
        h.push_str("<p><em>No timeline recorded.</em></p>\n</article>\n");
        return;
    }
    let fold = s.timeline.len() > TIMELINE_FOLD;
    if fold {
        let _ = writeln!(
            h,
            "<details>\n<summary>Timeline: {}</summary>",
            plural(s.timeline.len(), "event")
        );
    } else {
        h.push_str("<p>Timeline</p>\n");
    }
    h.push_str("<table>\n<thead><tr><th class=\"num\">t</th><th>source</th><th class=\"num\">request</th><th>what</th></tr></thead>\n<tbody>\n");
    for t in &s.timeline {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            offset(t.t_ms),
            html(&t.source),
            t.request.map(|r| r.to_string()).unwrap_or_default(),
            html(&t.what)
        );
    }
    h.push_str("</tbody>\n</table>\n");
    if fold {
        h.push_str("</details>\n");
    }
    h.push_str("</article>\n");
}

fn monitors(h: &mut String, report: &Report) {
    h.push_str("<section id=\"monitors\">\n<h2>Monitors</h2>\n");
    if report.monitors.is_empty() {
        h.push_str("<p><strong>No monitor reported its status.</strong></p>\n</section>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr><th>monitor</th><th>state</th><th>required</th><th>reason</th></tr></thead>\n<tbody>\n");
    for m in &report.monitors {
        let class = if m.is_active() {
            "pass"
        } else {
            m.state.as_str()
        };
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if m.is_active() { "" } else { " class=\"bad\"" },
            html(&m.name),
            pill(class, &m.state),
            if m.required { "yes" } else { "no" },
            html(m.reason.as_deref().unwrap_or_default())
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

fn services(h: &mut String, report: &Report) {
    if report.services.is_empty() {
        return;
    }
    h.push_str("<section id=\"services\">\n<h2>Local services</h2>\n<p>Each folder was read whole, once the service had stopped.</p>\n<table>\n<thead><tr><th>service</th><th>data folder</th><th class=\"num\">files read</th><th class=\"num\">bytes read</th></tr></thead>\n<tbody>\n");
    for s in &report.services {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            html(&s.name),
            html(&s.data_dir),
            s.files_scanned,
            s.bytes_scanned
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

fn waivers(h: &mut String, report: &Report) {
    h.push_str("<section id=\"waivers\">\n<h2>Waivers</h2>\n");
    if report.waivers.is_empty() {
        h.push_str("<p>None configured.</p>\n</section>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr><th>target</th><th>justification</th><th>expires</th><th>status</th></tr></thead>\n<tbody>\n");
    for w in &report.waivers {
        let status = match (w.expired, w.used) {
            (true, _) => pill("expired", "expired: waives nothing"),
            (false, true) => pill("waived", "used"),
            (false, false) => pill("unused", "unused"),
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&w.target),
            html(&w.justification),
            html(&w.expires),
            status
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

fn provenance(h: &mut String, report: &Report) {
    let p = &report.provenance;
    h.push_str("<section id=\"provenance\">\n<h2>Provenance</h2>\n<dl>\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", html(k), v);
    };
    let code = |s: &str| format!("<code class=\"wrap\">{}</code>", html(s));
    row("harness", format!("traceless {}", html(&p.harness_version)));
    row(
        "harness commit",
        p.harness_commit
            .as_deref()
            .map(code)
            .unwrap_or_else(|| "unknown".to_owned()),
    );
    row("pipeline command", code(&p.pipeline_command.join(" ")));
    row(
        "pipeline SHA-256",
        p.pipeline_sha256
            .as_deref()
            .map(code)
            .unwrap_or_else(|| "not a file".to_owned()),
    );
    for (k, d) in [
        ("config", &p.config),
        ("policy", &p.policy),
        ("clause map", &p.clause_map),
    ] {
        row(
            k,
            format!("{}<br>SHA-256 {}", code(&d.path), code(&d.sha256)),
        );
    }
    row(
        "seed",
        format!(
            "{} ({}; replay with {})",
            p.seed,
            plural(p.cases as usize, "property case"),
            code(&format!("traceless audit --seed {}", p.seed))
        ),
    );
    row("started", html(&p.started_at));
    row("duration", duration(p.duration_ms));
    row("kernel", code(&p.kernel));
    row(
        "mode",
        if p.ci {
            "CI (<code>--ci</code>)".to_owned()
        } else {
            "local".to_owned()
        },
    );
    if let Some(files) = crate::text::evidence_files(p) {
        row("evidence", html(&files));
    }
    if let Some(line) = crate::text::sharding(p) {
        row("sharding", html(&line));
    }
    row("schema", code(&report.schema));
    h.push_str("</dl>\n");
    if !p.scenarios.is_empty() {
        let _ = writeln!(
            h,
            "<details>\n<summary>{} and their SHA-256</summary>",
            plural(p.scenarios.len(), "scenario file")
        );
        h.push_str("<table>\n<thead><tr><th>file</th><th>SHA-256</th></tr></thead>\n<tbody>\n");
        for d in &p.scenarios {
            let _ = writeln!(
                h,
                "<tr><td><code class=\"wrap\">{}</code></td><td><code class=\"wrap\">{}</code></td></tr>",
                html(&d.path),
                html(&d.sha256)
            );
        }
        h.push_str("</tbody>\n</table>\n</details>\n");
    }
    h.push_str("</section>\n");
}
