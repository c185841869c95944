//! The faulty-pipeline suite (`tests/faulty/`): its expectations, read from `expected.toml`, an
//! audit of one of its pipelines as a given user, and the one judgement of that audit, shared by
//! the suite as the caller (`faulty.rs`) and as nobody (`rootless.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Extra, User, audit_command_as, config, report, root};

#[derive(Deserialize)]
struct Expected {
    pipeline: Vec<Entry>,
}

/// What the audit must report for one pipeline (`kinds`), and the side effects it may also
/// report (`may`); anything else is a false positive. With `error`, the audit cannot be
/// completed (exit 2) and one of its errors must contain that text.
#[derive(Deserialize)]
pub struct Entry {
    pub file: String,
    pub kinds: Vec<String>,
    pub may: Vec<String>,
    #[serde(default)]
    pub error: Option<String>,
}

pub fn dir() -> PathBuf {
    root().join("harness/tests/faulty")
}

/// Every pipeline of `expected.toml`, by name (its file without `.py`).
pub fn expected() -> BTreeMap<String, Entry> {
    let text = std::fs::read_to_string(dir().join("expected.toml")).unwrap();
    let e: Expected = toml::from_str(&text).unwrap();
    e.pipeline
        .into_iter()
        .map(|p| (p.file.trim_end_matches(".py").to_owned(), p))
        .collect()
}

/// Distinct seeds: audits running side by side must not share canaries.
pub fn seed_of(name: &str) -> u64 {
    name.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// An audit of `tests/faulty/<name>.py` on the suite's scenarios.
pub struct Audited {
    pub code: i32,
    /// The finding kinds, sorted, each once.
    pub kinds: Vec<String>,
    pub report: serde_json::Value,
}

/// Audits `tests/faulty/<name>.py` as `user`, with `extra` appended to the config (e.g.
/// `[[waiver]]` entries) and `args` added to the command line.
pub fn audit(name: &str, extra: &str, args: &[&str], user: User) -> Audited {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        &self::dir().join(format!("{name}.py")),
        &self::dir().join("scenarios/*.toml").display().to_string(),
        Extra {
            tail: extra,
            ..Extra::default()
        },
    );
    let output = audit_command_as(dir.path(), &config, args, user)
        .output()
        .unwrap();
    let report = report(dir.path(), &output);
    let mut kinds: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    Audited {
        code: output.status.code().unwrap_or(-1),
        kinds,
        report,
    }
}

/// Audits `name` as `user` with its own seed and panics unless the audit reports what
/// `expected.toml` says, with every monitor active: a degraded run never passes for a pass.
pub fn check(name: &str, user: User) {
    let entry = expected()
        .remove(name)
        .unwrap_or_else(|| panic!("{name} is not listed in tests/faulty/expected.toml"));
    let want = entry.kinds;
    let who = format!("{name} as uid {}", user.uid());
    let seed = seed_of(name).to_string();
    let Audited {
        code,
        kinds,
        report,
    } = audit(name, "", &["--seed", &seed], user);
    let summary = serde_json::to_string_pretty(&report["findings"]).unwrap();
    let inactive: Vec<_> = report["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] != "active")
        .collect();
    assert!(
        inactive.is_empty() && report["degraded"] == false,
        "{who}: monitors not active {inactive:?}"
    );
    let unexpected: Vec<_> = kinds
        .iter()
        .filter(|k| !want.contains(k) && !entry.may.contains(k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{who}: false positives {unexpected:?}\n{summary}"
    );
    if let Some(error) = &entry.error {
        let errors = report["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().unwrap().contains(error.as_str())),
            "{who}: expected an error containing {error:?}, got {errors:?}"
        );
        assert_eq!(
            report["verdict"], "incomplete",
            "{who}: {}",
            report["summary"]
        );
        assert_eq!(code, 2, "{who}: an incomplete audit must exit 2");
    } else if want.is_empty() {
        assert_eq!(
            kinds,
            Vec::<String>::new(),
            "{who}: the clean control got findings: {summary}\nerrors: {}",
            report["errors"]
        );
        assert_eq!(
            code, 0,
            "{who}: the clean control exited {code}, errors: {}",
            report["errors"]
        );
    } else {
        for k in &want {
            assert!(
                kinds.contains(k),
                "{who}: expected a {k} finding, got {kinds:?}\n{summary}\nerrors: {}",
                report["errors"]
            );
        }
        assert_eq!(code, 1, "{who}: a finding must exit 1");
    }
    eprintln!("{who}: exit {code}, findings {kinds:?}");
}
