//! Rootless audits: run by the unprivileged user `nobody`, the harness makes its own user, network,
//! mount and PID namespaces, every monitor works as under root, and the verdicts are the same: the
//! reference pipeline passes, faulty ones are caught with the same finding kinds. A kernel that
//! forbids unprivileged user namespaces ends the audit with exit 2 and the setting to change.
//!
//! Run as root (as CI does), each audit runs twice, as root and as nobody; run by an ordinary user,
//! each audit is already the rootless one and must match the expected verdicts. The whole
//! faulty-pipeline suite runs as nobody too, each pipeline judged by the rule `faulty.rs` applies
//! as root (`common::faulty::check`).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::{User, is_root, root, shared_dir};

/// The pipeline binary cargo built beside this test.
fn pipeline_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("traceless-pipeline");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p traceless-pipeline` (or `cargo test --workspace`)",
        bin.display()
    );
    bin
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Option<i32>,
    verdict: String,
    kinds: BTreeSet<String>,
    /// Monitors that were not active, with their reasons.
    inactive: Vec<String>,
    errors: Vec<String>,
}

/// Runs `traceless audit` on `config` (text written to a fresh folder), as nobody when `as_nobody`.
fn audit(config: &str, args: &[&str], as_nobody: bool) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let user = if as_nobody {
        User::Nobody
    } else {
        User::Caller
    };
    let output = common::audit_command_as(dir.path(), config, args, user)
        .output()
        .unwrap();
    let log = format!(
        "as nobody: {as_nobody}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = common::report(dir.path(), &output);
    let tmp = dir.path().join("tmp");
    let leftover: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftover.is_empty(), "left behind: {leftover:?}\n{log}");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default()
    };
    Outcome {
        code: output.status.code(),
        verdict: report["verdict"].as_str().unwrap_or("?").to_owned(),
        kinds: report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap().to_owned())
            .collect(),
        inactive: report["monitors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|m| m["state"] != "active")
                    .map(|m| m.to_string())
                    .collect()
            })
            .unwrap_or_default(),
        errors: strings(&report["errors"]),
    }
}

/// The same audit as root and as nobody (or once, as the unprivileged caller): same outcome.
fn rootless_matches_root(config: &str, args: &[&str]) -> Outcome {
    if !is_root() {
        return audit(config, args, false);
    }
    let as_root = audit(config, args, false);
    let as_nobody = audit(config, args, true);
    assert_eq!(
        as_nobody, as_root,
        "as nobody (left) and as root (right) differ"
    );
    as_nobody
}

fn reference_config() -> String {
    let r = root();
    std::fs::read_to_string(r.join("traceless.toml"))
        .unwrap()
        .replace(
            "\"target/release/traceless-pipeline\"",
            &format!("{:?}", pipeline_binary().display().to_string()),
        )
        .replace("\"fixtures/", &format!("\"{}/fixtures/", r.display()))
        .replace("\"scenarios/", &format!("\"{}/scenarios/", r.display()))
        .replace(
            "fixtures = \"fixtures\"",
            &format!("fixtures = \"{}/fixtures\"", r.display()),
        )
}

/// A faulty pipeline of `tests/faulty/`, on its scenarios.
fn faulty_config(name: &str) -> String {
    let faulty = common::faulty::dir();
    common::config(
        &faulty.join(format!("{name}.py")),
        &faulty.join("scenarios/*.toml").display().to_string(),
        common::Extra::default(),
    )
}

#[test]
fn the_reference_pipeline_passes_rootless_as_under_root() {
    let o = rootless_matches_root(
        &reference_config(),
        &["--seed", "21", "--cases", "8", "--ci"],
    );
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.verdict, "pass");
    assert!(o.inactive.is_empty(), "{o:?}");
}

#[test]
fn faulty_pipelines_are_caught_rootless_as_under_root() {
    // Each needs a different monitor: the filesystem and strace, memory (/proc/PID/mem), logs.
    for (name, must) in [
        ("disk_tmp_brief", "disk-persistence"),
        ("memory_cache", "memory-retention"),
        ("log_prompt", "log-leak"),
    ] {
        let o = rootless_matches_root(&faulty_config(name), &["--seed", "22", "--ci"]);
        assert_eq!(o.kinds, BTreeSet::from([must.to_owned()]), "{name}: {o:?}");
        assert_eq!(o.code, Some(1), "{name}: {o:?}");
        assert!(
            o.errors.is_empty() && o.inactive.is_empty(),
            "{name}: {o:?}"
        );
    }
}

/// The whole faulty-pipeline suite as nobody: every pipeline of `tests/faulty/expected.toml`,
/// the clean control included, gets what `faulty.rs` requires of it, with every monitor active.
/// As many audits run side by side as `faulty.rs` runs tests.
#[test]
fn the_faulty_suite_gives_its_expected_verdicts_as_nobody() {
    let names: Vec<String> = common::faulty::expected().into_keys().collect();
    let threads = std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                    // Its panic message is printed; the others still run.
                    let run = || common::faulty::check(name, User::Nobody);
                    if std::panic::catch_unwind(run).is_err() {
                        failed.lock().unwrap().push(name.as_str());
                    }
                }
            });
        }
    });
    eprintln!(
        "{} faulty pipelines as nobody, {threads} at a time: {:.1?}",
        names.len(),
        started.elapsed()
    );
    let failed = failed.into_inner().unwrap();
    assert!(failed.is_empty(), "failed as nobody: {failed:?}");
}

/// As nobody, inside a user namespace whose `user.max_user_namespaces` allows exactly one more,
/// spent on a nested one where the audit runs as uid 1000: its own user namespace is refused.
#[test]
fn forbidden_user_namespaces_end_the_audit_with_exit_2_and_the_setting_to_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.path().join("traceless.toml");
    std::fs::write(&cfg, faulty_config("clean")).unwrap();
    let tmp = shared_dir(dir.path(), "tmp");
    // The report folder is checked for writing before anything starts: one the audit can write.
    let out = shared_dir(dir.path(), "out");
    let script = "echo 1 > /proc/sys/user/max_user_namespaces && \
                  exec unshare --user --map-user=1000 --map-group=1000 \"$@\"";
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
        ]);
        c
    } else {
        Command::new("unshare")
    };
    let output = cmd
        .args(["--user", "--map-root-user", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_traceless"))
        .args(["audit", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .env("HOME", "/nonexistent")
        .env("TMPDIR", &tmp)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("user namespace"), "{stderr}");
    assert!(stderr.contains("user.max_user_namespaces"), "{stderr}");
    assert!(
        stderr.contains("kernel.apparmor_restrict_unprivileged_userns"),
        "{stderr}"
    );
}
