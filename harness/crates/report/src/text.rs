//! Text helpers shared by the sinks: Markdown escaping, code spans, durations.
//!
//! Everything a report carries came, at some remove, from the pipeline under audit (paths it
//! wrote, log lines, excerpts of leaked bytes), so every sink treats every string as hostile.

/// Escapes text for inline Markdown (GitHub flavoured), table cells included: markup
/// characters are backslash-escaped and line breaks become spaces, so a string can neither
/// format itself, inject HTML, nor break out of a table row.
pub fn md_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' | '$' => {
                out.push('\\');
                out.push(ch);
            }
            '\r' | '\n' | '\t' => out.push(' '),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown code span holding `text` verbatim, safe inside a table cell.
///
/// The fence is one backtick longer than the longest run inside; `|` is escaped because GFM
/// splits table cells before it parses code spans; control characters are shown escaped.
pub fn md_code(text: &str) -> String {
    if text.is_empty() {
        return "` `".to_owned();
    }
    let mut body = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' => body.push_str("\\|"),
            c if c.is_control() => body.push_str(&c.escape_default().to_string()),
            c => body.push(c),
        }
    }
    let longest_run = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// HTML text content, escaped (`&`, `<`, `>`).
pub fn html(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
}

/// An HTML attribute value for a double-quoted attribute, escaped.
pub fn attr(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// A duration for people: `850 ms`, `4.2 s`, `3 min 07 s`.
pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1_000, (ms % 1_000) / 100)
    } else {
        let s = ms / 1_000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// A time since the audit started: `+1.234 s`.
pub fn offset(ms: u64) -> String {
    format!("+{}.{:03} s", ms / 1_000, ms % 1_000)
}

/// `, with request(s) 1, 2 in flight`, or nothing when no request was in flight. Only numbers:
/// safe in every format as it is.
pub fn in_flight(requests: &[u32]) -> String {
    if requests.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = requests.iter().map(u32::to_string).collect();
    format!(", with request(s) {} in flight", ids.join(", "))
}

/// `1 word` / `n words`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Shortens long strings (commands, reasons) for table cells, on a character boundary.
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// What a report says of sharding, plain text for every sink to escape: which shard it covers,
/// or how many shard reports it was merged from. `None` for a whole audit.
pub fn sharding(p: &crate::model::Provenance) -> Option<String> {
    if let Some(shard) = p.shard {
        return Some(format!(
            "shard {shard} of a sharded audit: it covers only its share of the scenarios and property cases; `traceless report --merge` joins every shard's report into the audit's verdict"
        ));
    }
    (!p.merged_from.is_empty()).then(|| {
        format!(
            "merged from {} shard reports: {}",
            p.merged_from.len(),
            p.merged_from
                .iter()
                .map(|d| format!("{} (SHA-256 {})", d.path, d.sha256))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The evidence files behind a report, plain text for every sink to escape; `None` when none.
pub fn evidence_files(p: &crate::model::Provenance) -> Option<String> {
    (!p.evidence.is_empty()).then(|| {
        p.evidence
            .iter()
            .map(|d| format!("{} (SHA-256 {})", d.path, d.sha256))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// How many requests a scenario sent: the listed ones and the passing cases' counted ones.
pub fn requests_sent(s: &crate::model::ScenarioResult) -> usize {
    s.requests.len() + s.passing.as_ref().map_or(0, |p| p.requests as usize)
}

/// One sentence on the passing property cases' requests, plain text for every sink to escape.
pub fn passing_summary(p: &crate::model::PassingRequests) -> String {
    let counts = |m: &std::collections::BTreeMap<String, u32>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "{} requests of passing cases, counted not listed: providers {}; provider behaviours {}; statuses {}; durations {} (mean {} ms, longest {} ms); fingerprint {}",
        p.requests,
        counts(&p.providers),
        counts(&p.behaviours),
        counts(&p.statuses),
        {
            // By bound, not as text: le-10, le-50, le-100, ..., gt-10000.
            let mut buckets: Vec<_> = p.durations.iter().collect();
            buckets.sort_by_key(|(k, _)| {
                let bound = k.split_once('-').and_then(|(_, n)| n.parse::<u64>().ok());
                (k.starts_with("gt"), bound)
            });
            buckets
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        p.total_ms / u64::from(p.requests.max(1)),
        p.max_ms,
        p.fingerprint
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_format_or_break_tables() {
        let cases = [
            ("plain words 2c-no-sharing", "plain words 2c-no-sharing"),
            ("a|b", "a\\|b"),
            ("<script>x</script>", "\\<script\\>x\\</script\\>"),
            (
                "**bold** _it_ `code`",
                "\\*\\*bold\\*\\* \\_it\\_ \\`code\\`",
            ),
            ("line\nbreak", "line break"),
            ("[link](javascript:x)", "\\[link\\](javascript:x)"),
            ("&amp;", "\\&amp;"),
        ];
        for (input, expected) in cases {
            assert_eq!(md_text(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn code_spans_hold_anything() {
        let cases = [
            ("abc", "`abc`"),
            ("a`b", "``a`b``"),
            ("`x``", "``` `x`` ```"),
            ("a|b", "`a\\|b`"),
            ("\\x89PNG\\r\\n", "`\\x89PNG\\r\\n`"),
            ("tab\there", "`tab\\there`"),
            ("", "` `"),
        ];
        for (input, expected) in cases {
            assert_eq!(md_code(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(html("<b>&</b>"), "&lt;b&gt;&amp;&lt;/b&gt;");
        assert_eq!(attr("\"><script>"), "&quot;&gt;&lt;script&gt;");
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (0, "0 ms"),
            (850, "850 ms"),
            (1_000, "1.0 s"),
            (4_250, "4.2 s"),
            (187_000, "3 min 07 s"),
        ];
        for (ms, expected) in cases {
            assert_eq!(duration(ms), expected);
        }
        assert_eq!(offset(1_234), "+1.234 s");
        assert_eq!(offset(5), "+0.005 s");
    }

    #[test]
    fn clip_keeps_short_text_and_marks_cuts() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééééééé", 4), "ééé…");
    }
}
