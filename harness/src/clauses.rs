//! The clause map (`fixtures/policy/clauses.toml`): which sentence of the policy each check verifies.
//! A clause with no check is reported `not-tested`, never passed.

use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::config::{FileError, finding_kinds};

pub use traceless_judge::plan::Clause;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    #[serde(default)]
    clause: Vec<Spanned<RawClause>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClause {
    id: String,
    section: String,
    title: String,
    sentence: String,
    #[serde(default)]
    checks: Vec<Spanned<String>>,
    testable: Option<bool>,
    reason: Option<String>,
}

/// Loads the clause map and checks it against the policy text it claims to quote.
pub fn load(path: &Path, policy_text: &str) -> Result<Vec<Clause>, FileError> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        FileError::new(path, None, None, format!("cannot read the clause map: {e}"))
    })?;
    let raw: RawMap =
        toml::from_str(&source).map_err(|e| FileError::from_toml(path, &source, &e))?;
    let policy = normalise(policy_text);
    let mut out: Vec<Clause> = Vec::new();
    for entry in raw.clause {
        let span = entry.span();
        let c = entry.into_inner();
        let at = |key: &str, msg: String| FileError::at_span(path, &source, span.clone(), key, msg);
        if out.iter().any(|o| o.id == c.id) {
            return Err(at("clause.id", format!("{:?} is used twice", c.id)));
        }
        if !policy.contains(&normalise(&c.sentence)) {
            return Err(at(
                "clause.sentence",
                format!("clause {:?}: the sentence is not in the policy text", c.id),
            ));
        }
        let mut checks = Vec::new();
        for k in c.checks {
            if !finding_kinds().contains(&k.get_ref().as_str()) {
                return Err(FileError::at_span(
                    path,
                    &source,
                    k.span(),
                    "clause.checks",
                    format!(
                        "unknown check {:?}; known: {}",
                        k.get_ref(),
                        finding_kinds().join(", ")
                    ),
                ));
            }
            checks.push(k.into_inner());
        }
        let untestable = match (c.testable, c.reason) {
            (Some(false), Some(reason)) => Some(reason),
            (Some(false), None) => {
                return Err(at(
                    "clause.reason",
                    format!("clause {:?} is untestable: say why", c.id),
                ));
            }
            _ => None,
        };
        if untestable.is_none() && checks.is_empty() {
            // Kept, and reported not-tested: an honest gap rather than a silent pass.
        }
        out.push(Clause {
            id: c.id,
            section: c.section,
            title: c.title,
            sentence: c.sentence,
            checks,
            untestable,
        });
    }
    if out.is_empty() {
        return Err(FileError::new(path, None, None, "no [[clause]] entries"));
    }
    Ok(out)
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
