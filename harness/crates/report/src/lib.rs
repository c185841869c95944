//! The audit report: schema `traceless.report/v1` and the sinks that write it.
//!
//! An audit ends in a [`Report`]: the verdict, the provenance of every input (digests of the
//! pipeline, config, policy, clause map and scenarios; seed, kernel, start time), the status of
//! every monitor, a verdict per policy clause, every finding with its evidence, and a timeline
//! per scenario. It is plain data: the JSON form *is* the schema, pinned by
//! `schema/report-v1.schema.json`, so a report can be re-read and re-rendered long after the
//! machine that produced it is gone.
//!
//! Three readers are served from the one value. A CI system reads `junit.xml` and the exit code
//! ([`Report::exit_code`]); an engineer reads `report.md` (also appended to the GitHub step
//! summary) to find the leak in a minute: verdict first, then the clause matrix, then each
//! finding with where, how encoded and an escaped excerpt; an auditor reads `report.html`, one
//! self-contained page that opens offline and prints, and can check its digests.
//!
//! **Architecture invariant:** this crate knows nothing of how evidence was gathered and judges
//! nothing: findings and clause verdicts come from `traceless-judge`, which also merges shard
//! reports. Sinks only read a finished report; they never steer an audit. The
//! verdict helpers ([`Report::derived_verdict`], [`Report::summary_line`]) only summarise what
//! the report already says, and every sink shows the stricter of the stated and derived verdict.
//!
//! **Architecture invariant:** every string in a report may have come from the pipeline under
//! audit, so every sink escapes every string for its format.

mod html;
mod junit;
mod markdown;
mod model;
#[cfg(feature = "samples")]
pub mod redact;
mod rows;
#[cfg(feature = "samples")]
pub mod sample;
mod text;
mod verdict;

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context as _, bail};

pub use model::{
    ClauseResult, ClauseVerdict, Crash, EvidenceItem, FileDigest, Finding, MONITOR_STATES,
    MonitorEntry, Orphan, PassingRequests, Provenance, Report, RequestResult, SCHEMA_ID,
    ScenarioOutcome, ScenarioResult, ServiceEntry, Shard, TimelineEntry, Verdict, WaiverEntry,
};
pub use verdict::Counts;

/// The JSON Schema (draft 2020-12) of the serialised report.
pub const JSON_SCHEMA: &str = include_str!("../schema/report-v1.schema.json");

/// The forms a report can be rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `report.json`, the schema itself.
    Json,
    /// `report.md`, GitHub-flavoured Markdown.
    Markdown,
    /// `report.html`, one self-contained page.
    Html,
    /// `junit.xml`.
    Junit,
}

impl Format {
    /// Every format, in the order [`write_all`] writes them.
    pub const ALL: [Format; 4] = [Format::Json, Format::Markdown, Format::Html, Format::Junit];

    /// The name used on the command line (`json`, `md`, `html`, `junit`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Junit => "junit",
        }
    }

    /// The file [`write_all`] writes it to.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Json => "report.json",
            Format::Markdown => "report.md",
            Format::Html => "report.html",
            Format::Junit => "junit.xml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "md" | "markdown" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            "junit" | "xml" => Ok(Format::Junit),
            _ => bail!("unknown report format {s:?}: expected one of json, md, html, junit"),
        }
    }
}

/// Renders the report in one format.
pub fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => {
            let mut json =
                serde_json::to_string_pretty(report).context("serialising the report as JSON")?;
            json.push('\n');
            json
        }
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report),
        Format::Junit => junit::render(report)?,
    })
}

/// Writes `report.json`, `report.md`, `report.html` and `junit.xml` into `out_dir` (created if
/// missing), then appends `report.md` to `$GITHUB_STEP_SUMMARY` when that variable is set.
pub fn write_all(report: &Report, out_dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(out_dir)
        .with_context(|| format!("creating the report directory {}", out_dir.display()))?;
    for format in Format::ALL {
        let path = out_dir.join(format.file_name());
        let text =
            render(report, format).with_context(|| format!("rendering {}", path.display()))?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        append_step_summary(report, Path::new(&summary))?;
    }
    Ok(())
}

/// Appends the Markdown report to a GitHub step summary file (created if missing).
pub fn append_step_summary(report: &Report, summary_file: &Path) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(summary_file)
        .with_context(|| {
            format!(
                "opening the step summary {} (GITHUB_STEP_SUMMARY)",
                summary_file.display()
            )
        })?;
    let mut md = markdown::render(report);
    md.push('\n');
    file.write_all(md.as_bytes())
        .with_context(|| format!("appending to the step summary {}", summary_file.display()))
}

/// Reads a `report.json` back, refusing another schema version and reports whose contents
/// contradict themselves (see [`Report::problems`]).
pub fn load(path: &Path) -> anyhow::Result<Report> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the report {}", path.display()))?;
    from_json(&text).with_context(|| format!("loading the report {}", path.display()))
}

/// Parses a serialised report, with the same checks as [`load`].
pub fn from_json(text: &str) -> anyhow::Result<Report> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("the report is not valid JSON")?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA_ID) => {}
        Some(other) => bail!("the report has schema {other:?}; this traceless reads {SCHEMA_ID:?}"),
        None => bail!("the report has no \"schema\" field; is it a traceless report?"),
    }
    let report: Report = serde_json::from_value(value)
        .context("the report does not match the traceless.report/v1 schema")?;
    let problems = report.problems();
    if !problems.is_empty() {
        bail!(
            "the report contradicts itself:\n  - {}",
            problems.join("\n  - ")
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
        }
        assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
        let err = "pdf".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("json, md, html, junit"), "{err}");
    }

    #[test]
    fn write_all_then_load_gives_the_same_report() {
        let dir = tempfile::tempdir().unwrap();
        let report = sample::failing();
        write_all(&report, dir.path()).unwrap();
        for format in Format::ALL {
            let written = fs::read_to_string(dir.path().join(format.file_name())).unwrap();
            assert_eq!(written, render(&report, format).unwrap(), "{format}");
        }
        assert_eq!(load(&dir.path().join("report.json")).unwrap(), report);
    }

    #[test]
    fn load_refuses_other_schemas_and_contradictions() {
        let mut value = serde_json::to_value(sample::passing()).unwrap();
        value["schema"] = "traceless.report/v2".into();
        let err = format!("{:#}", from_json(&value.to_string()).unwrap_err());
        assert!(err.contains("traceless.report/v2"), "{err}");

        let mut report = sample::passing();
        report.clauses[0].findings.push("F7".into());
        let err = format!(
            "{:#}",
            from_json(&serde_json::to_string(&report).unwrap()).unwrap_err()
        );
        assert!(err.contains("unknown finding F7"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = format!("{:#}", load(&missing).unwrap_err());
        assert!(err.contains("nope.json"), "{err}");
    }

    #[test]
    fn step_summary_is_appended_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let summary = dir.path().join("summary.md");
        fs::write(&summary, "earlier step\n").unwrap();
        append_step_summary(&sample::failing(), &summary).unwrap();
        let text = fs::read_to_string(&summary).unwrap();
        assert!(
            text.starts_with("earlier step\n## ❌ Traceless audit"),
            "{text}"
        );
    }
}
