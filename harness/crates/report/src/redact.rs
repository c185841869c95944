//! Redaction of what varies from machine to machine and run to run (times, durations, pids,
//! digests, commit, kernel, version, temp paths, loopback ports, canary ids), in one place, so
//! every snapshot of a report (ours, and end-to-end audits in other crates) stays stable.
//!
//! Redaction works on the report itself, before any sink renders it, so one set of rules serves
//! every format. Numbers are set to 0; strings become `[what]` markers.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::model::Report;

/// Fields (serialised names) whose numbers depend on timing or the machine: set to 0.
const ZEROED: [&str; 4] = ["duration-ms", "t-ms", "at-ms", "pid"];

/// Fields whose whole string value depends on the machine or the build.
const REPLACED: [(&str, &str); 2] = [("kernel", "[kernel]"), ("harness-version", "[version]")];

/// Patterns that may appear inside any string: (pattern, replacement).
static PATTERNS: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    let mut temp_dirs = vec![
        std::env::temp_dir()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned(),
    ];
    if temp_dirs[0] != "/tmp" {
        temp_dirs.push("/tmp".to_owned());
    }
    let mut patterns: Vec<(Regex, String)> = temp_dirs
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| {
            (
                regex(&format!(r#"{}/[^/\s"'<>|`]+"#, regex::escape(d))),
                "[tmp]".to_owned(),
            )
        })
        .collect();
    patterns.extend(
        [
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[timestamp]",
            ),
            (r"\b[0-9a-f]{64}\b", "[sha256]"),
            (r"\b[0-9a-f]{40}\b", "[commit]"),
            (
                r"(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}\b",
                "$1:[port]",
            ),
            (r"\btl-dev-[0-9a-f]{16}\b", "tl-dev-[device-id]"),
            (r"\btlp-[0-9a-f]{12}\b", "tlp-[prompt-marker]"),
        ]
        .map(|(p, r)| (regex(p), r.to_owned())),
    );
    patterns
});

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("redaction pattern {pattern:?} is invalid: {e}"))
}

/// A copy of the report with everything machine- or run-specific replaced by markers.
pub fn redact(report: &Report) -> Report {
    let mut value = serde_json::to_value(report).expect("a Report always serialises");
    walk(&mut value, None);
    serde_json::from_value(value).expect("redaction keeps the report's shape")
}

/// Every format of `report`, redacted, named for a snapshot (`{name}.{format}`): what the
/// snapshot tests of this crate and of the merge compare.
pub fn redacted_renders(name: &str, report: &Report) -> Vec<(String, String)> {
    let report = redact(report);
    crate::Format::ALL
        .into_iter()
        .map(|format| {
            let text = crate::render(&report, format).expect("a report renders in every format");
            (format!("{name}.{}", format.name()), text)
        })
        .collect()
}

/// Applies the in-string patterns to one string (for text that is not part of a report).
pub fn redact_text(text: &str) -> String {
    let mut out = text.to_owned();
    for (pattern, replacement) in PATTERNS.iter() {
        if pattern.is_match(&out) {
            out = pattern.replace_all(&out, replacement.as_str()).into_owned();
        }
    }
    out
}

fn walk(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                walk(v, Some(k));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key)),
        Value::Number(_) if key.is_some_and(|k| ZEROED.contains(&k)) => *value = Value::from(0),
        Value::String(s) => {
            if let Some((_, marker)) = REPLACED.iter().find(|(k, _)| Some(*k) == key) {
                *s = (*marker).to_owned();
            } else {
                *s = redact_text(s);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_lose_what_varies() {
        let tmp = std::env::temp_dir();
        let tmp = tmp.to_string_lossy().trim_end_matches('/').to_owned();
        let cases = [
            (
                format!("{tmp}/.tmpAb12Cd/home/x.png"),
                "[tmp]/home/x.png".to_owned(),
            ),
            (
                "started 2026-11-29T08:31:33.123456Z".to_owned(),
                "started [timestamp]".to_owned(),
            ),
            (
                format!("sha {}", "ab".repeat(32)),
                "sha [sha256]".to_owned(),
            ),
            (
                format!("commit {}", "c0".repeat(20)),
                "commit [commit]".to_owned(),
            ),
            (
                "POST https://127.0.0.1:40123/v1".to_owned(),
                "POST https://127.0.0.1:[port]/v1".to_owned(),
            ),
            (
                "device tl-dev-0123456789abcdef".to_owned(),
                "device tl-dev-[device-id]".to_owned(),
            ),
            (
                "marker tlp-0123456789ab!".to_owned(),
                "marker tlp-[prompt-marker]!".to_owned(),
            ),
            (
                "nothing to hide: F1 2c-no-sharing 429".to_owned(),
                "nothing to hide: F1 2c-no-sharing 429".to_owned(),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_text(&input), expected, "input {input:?}");
        }
    }

    #[test]
    fn report_fields_are_redacted_and_the_rest_kept() {
        let report = crate::sample::failing();
        let redacted = redact(&report);
        assert_eq!(redacted.provenance.kernel, "[kernel]");
        assert_eq!(redacted.provenance.started_at, "[timestamp]");
        assert_eq!(redacted.provenance.duration_ms, 0);
        assert_eq!(redacted.provenance.config.sha256, "[sha256]");
        assert_eq!(
            redacted.provenance.harness_commit.as_deref(),
            Some("[commit]")
        );
        assert!(
            redacted
                .findings
                .iter()
                .flat_map(|f| &f.evidence)
                .all(|e| e.pid.is_none_or(|p| p == 0))
        );
        assert_eq!(redacted.findings.len(), report.findings.len());
        assert_eq!(redacted.findings[0].summary, report.findings[0].summary);
        assert_eq!(redacted.verdict, report.verdict);
    }
}
