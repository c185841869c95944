//! `report.md`: the verdict in one line, then the clause matrix, findings with evidence,
//! monitors, waivers, scenarios and provenance; GitHub-flavoured, fit for a step summary.

use std::fmt::Write as _;

use crate::model::{ClauseVerdict, Crash, Report, ScenarioOutcome, Verdict};
use crate::rows::{self, Answer, Cell, FindingRows, Markup, Pill, ScenarioRows, Table, WaiverUse};
use crate::text::{clip, duration, in_flight, md_code, md_text, offset, plural};

/// Renders the report as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> String {
    let mut md = String::new();
    headline(&mut md, report);
    counts(&mut md, report);
    errors(&mut md, report);
    run_state(&mut md, report);
    clauses(&mut md, report);
    findings(&mut md, report);
    monitors(&mut md, report);
    services(&mut md, report);
    waivers(&mut md, report);
    scenarios(&mut md, report);
    provenance(&mut md, report);
    md
}

fn verdict_icon(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "✅",
        Verdict::Fail => "❌",
        Verdict::Incomplete => "⚠️",
    }
}

fn clause_cell(verdict: ClauseVerdict) -> &'static str {
    match verdict {
        ClauseVerdict::Pass => "✅ pass",
        ClauseVerdict::Fail => "❌ **fail**",
        ClauseVerdict::NotTested => "⚪ not tested",
        ClauseVerdict::Waived => "🔶 waived",
    }
}

fn headline(md: &mut String, report: &Report) {
    let verdict = report.effective_verdict();
    let _ = writeln!(
        md,
        "## {} Traceless audit — {}\n",
        verdict_icon(verdict),
        md_text(&report.summary_line())
    );
    if !report.summary.is_empty() && report.summary != report.summary_line() {
        let _ = writeln!(md, "> {}\n", md_text(&report.summary));
    }
    if verdict != report.verdict {
        let _ = writeln!(
            md,
            "> ⚠️ The report states `{}` but its contents say `{}`; the stricter verdict is shown.\n",
            report.verdict, verdict
        );
    }
}

fn counts(md: &mut String, report: &Report) {
    let c = report.counts();
    md.push_str("| clauses | ✅ pass | ❌ fail | 🔶 waived | ⚪ not tested | findings | unwaived | scenarios failed | monitors not active |\n");
    md.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} | {} | {} of {} | {} of {} |\n",
        c.clauses,
        c.clauses_passed,
        c.clauses_failed,
        c.clauses_waived,
        c.clauses_not_tested,
        c.findings,
        c.findings_unwaived(),
        c.scenarios_failed,
        c.scenarios,
        c.monitors_not_active,
        c.monitors,
    );
}

fn errors(md: &mut String, report: &Report) {
    if report.errors.is_empty() {
        return;
    }
    md.push_str("### ⚠️ The audit could not be completed\n\n");
    for e in &report.errors {
        let _ = writeln!(md, "- {}", md_text(e));
    }
    md.push('\n');
}

/// What cut the run short or weakened it: a degraded run, an interruption, a crash, orphans.
fn run_state(md: &mut String, report: &Report) {
    if report.degraded {
        md.push_str(
            "### ⚠️ DEGRADED\n\nThe run accepted monitors that were not active \
             (`--allow-degraded`): what they would have seen was not judged.\n\n",
        );
    }
    if let Some(signal) = &report.interrupted {
        let _ = writeln!(
            md,
            "### ⚠️ Interrupted\n\nThe audit was stopped by {}: scenarios it did not reach are marked not run.\n",
            md_text(signal)
        );
    }
    if let Some(c) = &report.crash {
        crash(md, c);
    }
    if !report.orphans.is_empty() {
        md.push_str("### Processes that left the pipeline's tree\n\n");
        table(md, &rows::orphans(report));
    }
}

/// How the pipeline died, and the end of its stderr in a fence it cannot close.
fn crash(md: &mut String, c: &Crash) {
    let _ = writeln!(
        md,
        "### ⚠️ The pipeline died\n\n{} at {}{}{}; the requests after it were not sent.\n",
        md_text(&c.status),
        offset(c.at_ms),
        c.scenario
            .as_deref()
            .map(|s| format!(", during scenario {}", md_code(s)))
            .unwrap_or_default(),
        in_flight(&c.in_flight)
    );
    if !c.stderr_tail.is_empty() {
        // A fence the tail cannot close: one backtick longer than its longest run.
        let longest = c
            .stderr_tail
            .split(|ch| ch != '`')
            .map(str::len)
            .max()
            .unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        let _ = writeln!(
            md,
            "Its stderr ends with:\n\n{fence}text\n{}\n{fence}\n",
            c.stderr_tail
        );
    }
}

/// A state as an icon and words.
fn state(state: &Pill, text: &str) -> String {
    match *state {
        Pill::Clause(verdict) => clause_cell(verdict).to_owned(),
        Pill::Scenario { outcome, not_sent } => match outcome {
            ScenarioOutcome::Pass => "✅ passed".to_owned(),
            ScenarioOutcome::Fail => "❌ **failed**".to_owned(),
            ScenarioOutcome::NotRun => "⚪ not run".to_owned(),
            ScenarioOutcome::Incomplete => format!("⚠️ incomplete ({not_sent} not sent)"),
        },
        Pill::Finding { waived: true } => "🔶 waived".to_owned(),
        Pill::Finding { waived: false } => "❌".to_owned(),
        Pill::Monitor { active: true } => format!("✅ {}", md_text(text)),
        Pill::Monitor { active: false } => format!("⚠️ **{}**", md_text(text)),
        Pill::Waiver(WaiverUse::Expired) => "⚠️ expired (waives nothing)".to_owned(),
        Pill::Waiver(WaiverUse::Used) => "used".to_owned(),
        Pill::Waiver(WaiverUse::Unused) => "unused".to_owned(),
    }
}

/// Markdown's markup for the rows' spans.
struct Md;

impl Markup for Md {
    fn text(&self, text: &str) -> String {
        md_text(text)
    }
    fn code(&self, text: &str) -> String {
        md_code(text)
    }
    fn long_code(&self, text: &str) -> String {
        md_code(text)
    }
    fn em(&self, text: &str) -> String {
        format!("_{}_", md_text(text))
    }
    fn strong(&self, text: &str) -> String {
        format!("**{}**", md_text(text))
    }
    fn line_break(&self) -> String {
        " — ".to_owned()
    }
    fn finding_link(&self, id: &str) -> String {
        format!("[{}](#{})", md_text(id), anchor(id))
    }
    /// GitHub gives scenarios no anchor: the id, as code.
    fn scenario_link(&self, id: &str) -> String {
        md_code(id)
    }
    /// GitHub gives clause rows no anchor: section and id, as text.
    fn clause_link(&self, id: &str, section: &str) -> String {
        format!("§{} {}", md_text(section), md_code(id))
    }
    fn quote(&self, sentence: &str) -> String {
        format!("“{}”", md_text(sentence))
    }
    fn pill(&self, pill: &Pill, text: &str) -> String {
        state(pill, text)
    }
}

fn cell(c: &Cell) -> String {
    rows::cell(&Md, c)
}

/// A GFM table (numeric columns aligned right), then a blank line.
fn table(md: &mut String, t: &Table) {
    let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
    let rules: Vec<&str> = t
        .columns
        .iter()
        .map(|c| if c.numeric { "---:" } else { "---" })
        .collect();
    let _ = writeln!(md, "| {} |\n| {} |", names.join(" | "), rules.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = row.cells.iter().map(cell).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    md.push('\n');
}

fn clauses(md: &mut String, report: &Report) {
    md.push_str("### Clauses\n\n");
    if report.clauses.is_empty() {
        let _ = writeln!(md, "{}\n", rows::NO_CLAUSES);
        return;
    }
    md.push_str("| clause | verdict | checks | findings / reason |\n| --- | --- | --- | --- |\n");
    for c in rows::clauses(report) {
        let _ = writeln!(
            md,
            "| §{} {} {} | {} | {} | {} |",
            md_text(c.section),
            md_text(c.title),
            md_code(c.id),
            clause_cell(c.verdict),
            cell(&c.checks),
            cell(&c.findings),
        );
    }
    md.push('\n');
}

/// The anchor GitHub derives from a finding's heading (`### F1 ...` -> `f1-...`) is unstable, so
/// findings carry an explicit one.
fn anchor(finding_id: &str) -> String {
    finding_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_lowercase()
}

fn findings(md: &mut String, report: &Report) {
    md.push_str("### Findings\n\n");
    if report.findings.is_empty() {
        let _ = writeln!(md, "{}\n", rows::NO_FINDINGS);
        return;
    }
    for f in rows::findings(report) {
        finding(md, &f);
    }
}

fn finding(md: &mut String, f: &FindingRows) {
    let _ = writeln!(
        md,
        "#### <a id=\"{}\"></a>{} {} {} {} — {}\n",
        anchor(f.id),
        state(&f.pill, ""),
        md_text(f.id),
        md_code(f.code),
        md_code(f.kind),
        md_text(f.summary)
    );
    for item in &f.items {
        let _ = writeln!(md, "- {}", rows::item(&Md, item));
    }
    md.push('\n');
    if f.evidence.rows.is_empty() {
        let _ = writeln!(md, "_{}_\n", rows::NO_EVIDENCE);
        return;
    }
    table(md, &f.evidence);
}

fn monitors(md: &mut String, report: &Report) {
    md.push_str("### Monitors\n\n");
    if report.monitors.is_empty() {
        let _ = writeln!(md, "⚠️ {}\n", rows::NO_MONITORS);
        return;
    }
    table(md, &rows::monitors(report));
}

fn services(md: &mut String, report: &Report) {
    if report.services.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Local services\n\n{}\n", rows::SERVICES_NOTE);
    table(md, &rows::services(report));
}

fn waivers(md: &mut String, report: &Report) {
    if report.waivers.is_empty() {
        return;
    }
    md.push_str("### Waivers\n\n");
    table(md, &rows::waivers(report));
}

fn scenarios(md: &mut String, report: &Report) {
    md.push_str("### Scenarios\n\n");
    if report.scenarios.is_empty() {
        let _ = writeln!(md, "{}\n", rows::NO_SCENARIOS);
        return;
    }
    md.push_str("| scenario | result | clauses | requests | answers | findings |\n| --- | --- | --- | ---: | --- | --- |\n");
    let scenarios = rows::scenarios(report);
    for s in &scenarios {
        let _ = writeln!(
            md,
            "| {} {} | {} | {} | {} | {} | {} |",
            md_code(s.id),
            md_text(s.title),
            state(&s.pill, ""),
            md_text(&s.clauses),
            s.requests_sent,
            answers(&s.answers),
            cell(&s.findings),
        );
    }
    md.push('\n');
    passing(md, &scenarios);
}

/// Each request's status, wrong ones in bold with the expected one, clipped to a cell.
fn answers(answers: &[Answer]) -> String {
    let words: Vec<String> = answers
        .iter()
        .map(|a| match a.wanted {
            Some(want) => format!("**{} ≠ {want}**", a.got),
            None => a.got.clone(),
        })
        .collect();
    clip(&words.join(" "), 120)
}

/// The passing property cases of each scenario that has some, one line each.
fn passing(md: &mut String, scenarios: &[ScenarioRows]) {
    for s in scenarios {
        if let Some(p) = &s.passing {
            let _ = writeln!(md, "- {}: {}", md_code(s.id), md_text(p));
        }
    }
    if scenarios.iter().any(|s| s.passing.is_some()) {
        md.push('\n');
    }
}

fn provenance(md: &mut String, report: &Report) {
    let p = &report.provenance;
    md.push_str("### Provenance\n\n");
    let _ = writeln!(
        md,
        "- Harness: traceless {}{}",
        md_text(&p.harness_version),
        p.harness_commit
            .as_deref()
            .map(|c| format!(" at {}", md_code(c)))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "- Pipeline: {}", md_code(&p.pipeline_command.join(" ")));
    if let Some(sha) = &p.pipeline_sha256 {
        let _ = writeln!(md, "- Pipeline SHA-256: {}", md_code(sha));
    }
    for (what, d) in rows::inputs(p) {
        let _ = writeln!(
            md,
            "- {}: {} SHA-256 {}",
            capitalised(what),
            md_code(&d.path),
            md_code(&d.sha256)
        );
    }
    run_lines(md, report);
    if !p.scenarios.is_empty() {
        let _ = writeln!(
            md,
            "\n<details><summary>Digests of {}</summary>\n",
            plural(p.scenarios.len(), "scenario file")
        );
        table(md, &rows::scenario_files(p));
        md.push_str("</details>\n");
    }
}

/// `clause map` -> `Clause map`.
fn capitalised(words: &str) -> String {
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The provenance of the run itself: seed, start, kernel, evidence, sharding, schema.
fn run_lines(md: &mut String, report: &Report) {
    let p = &report.provenance;
    let _ = writeln!(
        md,
        "- Seed {} with {} (replay: {})",
        p.seed,
        plural(p.cases as usize, "property case"),
        md_code(&rows::replay_command(p))
    );
    let _ = writeln!(
        md,
        "- Started {}, took {}, kernel {}{}",
        md_text(&p.started_at),
        duration(p.duration_ms),
        md_code(&p.kernel),
        if p.ci { ", `--ci`" } else { "" }
    );
    if let Some(files) = crate::text::evidence_files(p) {
        let _ = writeln!(md, "- Evidence: {}", md_text(&files));
    }
    if let Some(line) = crate::text::sharding(p) {
        let _ = writeln!(md, "- Sharding: {}", md_text(&line));
    }
    let _ = writeln!(md, "- Schema `{}`", md_text(&report.schema));
}
