//! `traceless init` end to end: a team's backend in an empty folder outside this repository, the
//! kit written from the curl command they use, only the kit's questions answered, and the audit
//! completes with the findings that backend deserves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn backends_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backends")
}

/// The Python packages the Flask example imports; missing ones fail with the command to run.
fn require_python_packages() {
    let out = Command::new("python3")
        .args(["-c", "import flask, waitress, openai"])
        .output()
        .unwrap_or_else(|e| panic!("python3 cannot be run ({e}): install Python 3.11 or newer"));
    assert!(
        out.status.success(),
        "the example backends' Python packages are missing:\n  python3 -m pip install -r harness/tests/backends/requirements.txt\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replaces `old` (one whole line) by `new`, after checking that the kit asked for it: walking up
/// from that line, a `QUESTION:` comment comes before any blank line.
fn answer(config: &str, old: &str, new: &str) -> String {
    let lines: Vec<&str> = config.lines().collect();
    let at: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == old).collect();
    assert_eq!(at.len(), 1, "{old:?} is not one line of the kit's config");
    let asked = lines[..at[0]]
        .iter()
        .rev()
        .take_while(|l| !l.trim().is_empty())
        .any(|l| l.contains("QUESTION:"));
    assert!(
        asked,
        "the kit does not ask about {old:?}: filling it is not answering it"
    );
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[at[0]] = new.to_owned();
    out.join("\n") + "\n"
}

#[test]
fn init_then_answers_only_then_an_audit_with_the_expected_findings() {
    require_python_packages();
    let dir = tempfile::tempdir().unwrap();
    let team = dir.path().join("team-backend");
    std::fs::create_dir(&team).unwrap();
    std::fs::copy(
        backends_dir().join("flask_openai/app.py"),
        team.join("app.py"),
    )
    .unwrap();

    let init = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .arg("init")
        .arg(&team)
        .args([
            "--from-curl",
            "curl -sS -F file=@photo.png -F 'prompt=make it a watercolour' -F age_ok=yes http://localhost:8000/generate -o out.png",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&init.stdout);
    assert!(
        init.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(stdout.contains("questions"), "{stdout}");
    for file in [
        "traceless.toml",
        "policy/privacy-policy.txt",
        "policy/clauses.toml",
        "scenarios/openai-photo.toml",
        "scenarios/reference/openai-happy-path.toml",
        ".github/workflows/traceless.yml",
    ] {
        assert!(team.join(file).is_file(), "init wrote no {file}");
    }

    // The request mapping came from the curl command: the kit does not ask about it.
    let mut config = std::fs::read_to_string(team.join("traceless.toml")).unwrap();
    for line in [
        "route = \"/generate\"",
        "image_field = \"file\"",
        "prompt_field = \"prompt\"",
        "age_field = \"age_ok\"",
        "age_true = \"yes\"",
        "age_false = \"no\"",
    ] {
        assert!(
            config.lines().any(|l| l == line),
            "{line} missing:\n{config}"
        );
    }
    // What only the team knows: its providers, how the app starts, the variables it reads.
    for (old, new) in [
        (
            "allowed_providers = [\"openai\", \"gemini\"]",
            "allowed_providers = [\"openai\"]",
        ),
        ("command = []", "command = [\"python3\", \"./app.py\"]"),
        (
            "# OPENAI_BASE_URL = \"{openai_url}/v1\"        # the openai SDKs (Python, Node)",
            "OPENAI_BASE_URL = \"{openai_url}/v1\"",
        ),
        (
            "# OPENAI_API_KEY = \"{openai_key}\"",
            "OPENAI_API_KEY = \"{openai_key}\"",
        ),
        ("# PYTHONMALLOC = \"malloc\"", "PYTHONMALLOC = \"malloc\""),
        (
            "# GLIBC_TUNABLES = \"glibc.malloc.perturb=165:glibc.malloc.tcache_count=0\"",
            "GLIBC_TUNABLES = \"glibc.malloc.perturb=165:glibc.malloc.tcache_count=0\"",
        ),
        (
            "scenarios = [\"scenarios/openai-*.toml\", \"scenarios/gemini-*.toml\"]",
            "scenarios = [\"scenarios/openai-*.toml\"]",
        ),
    ] {
        config = answer(&config, old, new);
    }
    std::fs::write(team.join("traceless.toml"), &config).unwrap();

    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = dir.path().join("out");
    let audit = Command::new(env!("CARGO_BIN_EXE_traceless"))
        .args([
            "audit",
            "--config",
            "traceless.toml",
            "--seed",
            "5",
            "--out",
        ])
        .arg(&out)
        .current_dir(&team)
        .env("TMPDIR", &tmp)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .unwrap();
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("report.json")).unwrap_or_else(|e| panic!("no report: {e}\n{log}")),
    )
    .unwrap();
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "the audit could not be completed: {}\n{log}",
        report["errors"]
    );
    let kinds: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // The planted bug (a shared ./output.png) and the photos forwarded with their metadata.
    for must in ["cross-request-leak", "disk-persistence"] {
        assert!(kinds.contains(must), "no {must} finding: {kinds:?}\n{log}");
    }
    let unexpected: Vec<_> = kinds
        .iter()
        .filter(|k| !["cross-request-leak", "disk-persistence", "personal-data"].contains(k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected findings {unexpected:?}\n{log}"
    );
    assert_eq!(audit.status.code(), Some(1), "{log}");
    // Every scenario the kit selected ran, against the backend's real API.
    let ids: BTreeSet<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            "openai-age-gate",
            "openai-burst",
            "openai-photo",
            "openai-provider-failure"
        ])
    );
    // The policy judged is the kit's copy (its path is relative to the audit's folder), and nothing was left in the temp dir.
    let policy = report["provenance"]["policy"]["path"].as_str().unwrap();
    assert_eq!(
        team.join(policy).canonicalize().ok(),
        team.join("policy/privacy-policy.txt").canonicalize().ok(),
        "{policy}"
    );
    let leftover: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftover.is_empty(), "left behind: {leftover:?}");
}
