//! `report.md`: the verdict in one line, then the clause matrix, findings with evidence,
//! monitors, waivers, scenarios and provenance; GitHub-flavoured, fit for a step summary.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::{ClauseResult, ClauseVerdict, Finding, Report, ScenarioOutcome, Verdict};
use crate::text::{clip, duration, in_flight, md_code, md_text, offset, plural};

/// No excerpt is shown longer than this, whatever the report holds.
const EXCERPT_MAX_CHARS: usize = 160;

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
    if !report.orphans.is_empty() {
        md.push_str(
            "### Processes that left the pipeline's tree\n\n| pid | command | what it did |\n| ---: | --- | --- |\n",
        );
        for o in &report.orphans {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                o.pid,
                md_code(&clip(&o.argv.join(" "), 120)),
                md_text(&o.detail)
            );
        }
        md.push('\n');
    }
}

fn clauses(md: &mut String, report: &Report) {
    md.push_str("### Clauses\n\n");
    if report.clauses.is_empty() {
        md.push_str("No clause map was loaded.\n\n");
        return;
    }
    md.push_str("| clause | verdict | checks | findings / reason |\n| --- | --- | --- | --- |\n");
    for c in &report.clauses {
        let checks = if c.checks.is_empty() {
            "—".to_owned()
        } else {
            c.checks
                .iter()
                .map(|k| md_code(k))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut findings = c
            .findings
            .iter()
            .map(|f| format!("[{0}](#{1})", md_text(f), anchor(f)))
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(reason) = &c.reason {
            if !findings.is_empty() {
                findings.push_str(" — ");
            }
            let _ = write!(findings, "_{}_", md_text(reason));
        }
        let _ = writeln!(
            md,
            "| §{} {} {} | {} | {} | {} |",
            md_text(&c.section),
            md_text(&c.title),
            md_code(&c.id),
            clause_cell(c.verdict),
            checks,
            findings,
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
    if report.findings.is_empty() {
        md.push_str(
            "### Findings\n\nNone: no monitor saw a canary where the policy forbids it.\n\n",
        );
        return;
    }
    let clauses: HashMap<&str, &ClauseResult> =
        report.clauses.iter().map(|c| (c.id.as_str(), c)).collect();
    md.push_str("### Findings\n\n");
    for f in &report.findings {
        finding(md, f, &clauses);
    }
}

fn finding(md: &mut String, f: &Finding, clauses: &HashMap<&str, &ClauseResult>) {
    let mark = if f.is_waived() { "🔶 waived" } else { "❌" };
    let _ = writeln!(
        md,
        "#### <a id=\"{}\"></a>{} {} {} {} — {}\n",
        anchor(&f.id),
        mark,
        md_text(&f.id),
        md_code(&f.code),
        md_code(&f.kind),
        md_text(&f.summary)
    );
    for id in &f.clauses {
        match clauses.get(id.as_str()) {
            Some(c) => {
                let _ = writeln!(
                    md,
                    "- Breaks §{} {}: “{}”",
                    md_text(&c.section),
                    md_code(id),
                    md_text(&c.sentence)
                );
            }
            None => {
                let _ = writeln!(md, "- Breaks {}", md_code(id));
            }
        }
    }
    if let Some(s) = &f.scenario {
        let _ = write!(md, "- Scenario {}", md_code(s));
        if let Some(r) = f.request {
            let _ = write!(md, ", request {r}");
        }
        md.push('\n');
    }
    if let Some(w) = &f.waiver {
        let _ = writeln!(md, "- **Waived:** {}", md_text(w));
    }
    md.push('\n');
    if f.evidence.is_empty() {
        md.push_str("_No evidence recorded._\n\n");
        return;
    }
    md.push_str("| at | source | pid | location | detail | encoding | matched | excerpt |\n");
    md.push_str("| ---: | --- | ---: | --- | --- | --- | ---: | --- |\n");
    for e in &f.evidence {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            e.at_ms.map(offset).unwrap_or_default(),
            md_text(&e.source),
            e.pid.map(|p| p.to_string()).unwrap_or_default(),
            md_code(&e.location),
            md_text(&e.detail),
            e.encoding.as_deref().map(md_code).unwrap_or_default(),
            e.matched_bytes
                .map(|b| format!("{b} B"))
                .unwrap_or_default(),
            e.excerpt
                .as_deref()
                .map(|x| md_code(&clip(x, EXCERPT_MAX_CHARS)))
                .unwrap_or_default(),
        );
    }
    md.push('\n');
}

fn monitors(md: &mut String, report: &Report) {
    md.push_str("### Monitors\n\n");
    if report.monitors.is_empty() {
        md.push_str("⚠️ No monitor reported its status.\n\n");
        return;
    }
    md.push_str("| monitor | state | required | reason |\n| --- | --- | --- | --- |\n");
    for m in &report.monitors {
        let state = match m.state.as_str() {
            "active" => "✅ active".to_owned(),
            other => format!("⚠️ **{}**", md_text(other)),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            md_text(&m.name),
            state,
            if m.required { "yes" } else { "no" },
            m.reason.as_deref().map(md_text).unwrap_or_default()
        );
    }
    md.push('\n');
}

fn services(md: &mut String, report: &Report) {
    if report.services.is_empty() {
        return;
    }
    md.push_str(
        "### Local services\n\nEach folder was read whole, once the service had stopped.\n\n\
         | service | data folder | files read | bytes read |\n| --- | --- | ---: | ---: |\n",
    );
    for s in &report.services {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            md_text(&s.name),
            md_code(&s.data_dir),
            s.files_scanned,
            s.bytes_scanned
        );
    }
    md.push('\n');
}

fn waivers(md: &mut String, report: &Report) {
    if report.waivers.is_empty() {
        return;
    }
    md.push_str(
        "### Waivers\n\n| target | justification | expires | status |\n| --- | --- | --- | --- |\n",
    );
    for w in &report.waivers {
        let status = match (w.expired, w.used) {
            (true, _) => "⚠️ expired (waives nothing)",
            (false, true) => "used",
            (false, false) => "unused",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            md_code(&w.target),
            md_text(&w.justification),
            md_text(&w.expires),
            status
        );
    }
    md.push('\n');
}

fn scenarios(md: &mut String, report: &Report) {
    md.push_str("### Scenarios\n\n");
    if report.scenarios.is_empty() {
        md.push_str("No scenario ran.\n\n");
        return;
    }
    md.push_str("| scenario | result | clauses | requests | answers | findings |\n| --- | --- | --- | ---: | --- | --- |\n");
    for s in &report.scenarios {
        let answers = s
            .requests
            .iter()
            .map(|r| {
                let got = r
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".to_owned());
                match r.expected_status {
                    Some(want) if r.status != Some(want) => format!("**{got} ≠ {want}**"),
                    _ => got,
                }
            })
            .collect::<Vec<_>>();
        let answers = clip(&answers.join(" "), 120);
        let findings = report
            .findings
            .iter()
            .filter(|f| f.scenario.as_deref() == Some(s.id.as_str()))
            .map(|f| {
                format!(
                    "[{}](#{}){}",
                    md_text(&f.id),
                    anchor(&f.id),
                    if f.is_waived() { " (waived)" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            md,
            "| {} {} | {} | {} | {} | {} | {} |",
            md_code(&s.id),
            md_text(&s.title),
            match s.outcome {
                ScenarioOutcome::Pass => "✅ passed".to_owned(),
                ScenarioOutcome::Fail => "❌ **failed**".to_owned(),
                ScenarioOutcome::NotRun => "⚪ not run".to_owned(),
                ScenarioOutcome::Incomplete =>
                    format!("⚠️ incomplete ({} not sent)", s.requests_not_sent),
            },
            s.clauses
                .iter()
                .map(|c| md_text(c))
                .collect::<Vec<_>>()
                .join(", "),
            crate::text::requests_sent(s),
            answers,
            findings,
        );
    }
    md.push('\n');
    for s in &report.scenarios {
        if let Some(p) = &s.passing {
            let _ = writeln!(
                md,
                "- {}: {}",
                md_code(&s.id),
                md_text(&crate::text::passing_summary(p))
            );
        }
    }
    if report.scenarios.iter().any(|s| s.passing.is_some()) {
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
    for (what, d) in [
        ("Config", &p.config),
        ("Policy", &p.policy),
        ("Clause map", &p.clause_map),
    ] {
        let _ = writeln!(
            md,
            "- {what}: {} SHA-256 {}",
            md_code(&d.path),
            md_code(&d.sha256)
        );
    }
    let _ = writeln!(
        md,
        "- Seed {} with {} (replay: {})",
        p.seed,
        plural(p.cases as usize, "property case"),
        md_code(&format!("traceless audit --seed {}", p.seed))
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
    if !p.scenarios.is_empty() {
        let _ = writeln!(
            md,
            "\n<details><summary>Digests of {}</summary>\n",
            plural(p.scenarios.len(), "scenario file")
        );
        md.push_str("| file | SHA-256 |\n| --- | --- |\n");
        for d in &p.scenarios {
            let _ = writeln!(md, "| {} | {} |", md_code(&d.path), md_code(&d.sha256));
        }
        md.push_str("\n</details>\n");
    }
}
