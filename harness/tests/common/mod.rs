//! What the audit tests share: the repository root, a config for a Python pipeline of the
//! faulty-pipeline family, and running `traceless audit` on it.

#![allow(dead_code)] // each test crate uses its own part

pub mod faulty;

use std::os::unix::fs::{PermissionsExt as _, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOBODY: u32 = 65534;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Lines added to the sections of [`config`].
#[derive(Default, Clone, Copy)]
pub struct Extra<'a> {
    pub policy: &'a str,
    pub pipeline: &'a str,
    pub env: &'a str,
    /// At the end, e.g. `[[waiver]]` entries.
    pub tail: &'a str,
}

/// A config auditing `script` (a pipeline built on `tests/faulty/common`) with the scenarios
/// matching `scenarios`.
pub fn config(script: &Path, scenarios: &str, extra: Extra<'_>) -> String {
    let Extra {
        policy,
        pipeline,
        env,
        tail,
    } = extra;
    let r = root();
    format!(
        r#"[policy]
text = "{policy_text}"
clauses = "{clauses}"
memory_grace_ms = 500
{policy}

[pipeline]
command = ["python3", "{script}"]
startup_timeout_ms = 15000
shutdown_grace_ms = 3000
{pipeline}

[pipeline.env]
TRACELESS_LISTEN = "127.0.0.1:{{port}}"
OPENAI_BASE_URL = "{{openai_url}}/v1"
GEMINI_BASE_URL = "{{gemini_url}}/v1beta"
OPENAI_API_KEY = "{{openai_key}}"
GEMINI_API_KEY = "{{gemini_key}}"
TRACELESS_EXTRA_CA = "{{ca_file}}"
PYTHONDONTWRITEBYTECODE = "1"
{env}

[audit]
scenarios = ["{scenarios}"]
cases = 0

{tail}
"#,
        policy_text = r.join("fixtures/policy/privacy-policy.txt").display(),
        clauses = r.join("fixtures/policy/clauses.toml").display(),
        script = script.display(),
    )
}

/// `traceless audit --config <dir>/traceless.toml --out <dir>/out ARGS`, prepared, not started.
pub fn audit_command(dir: &Path, config_text: &str, args: &[&str]) -> Command {
    let cfg = dir.join("traceless.toml");
    std::fs::write(&cfg, config_text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_traceless"));
    cmd.args(["audit", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.join("out"))
        .args(args);
    cmd
}

/// Who runs an audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// The user running the test.
    Caller,
    /// `nobody`, through `setpriv`, when the test runs as root; otherwise the caller, who is
    /// then unprivileged already.
    Nobody,
}

impl User {
    /// The user id the audit runs as.
    pub fn uid(self) -> u32 {
        if self == User::Nobody && is_root() {
            NOBODY
        } else {
            nix::unistd::geteuid().as_raw()
        }
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A folder `<parent>/<name>` an audit can write into as either user (`parent` is the test's).
pub fn shared_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    if is_root() {
        chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    dir
}

/// [`audit_command`] run by `user`, with its own `TMPDIR` (`<dir>/tmp`, empty when the audit is
/// over) and `HOME` (`<dir>/home`); `<dir>/out` is made for it, since the audit checks the
/// report folder for writing before anything starts.
pub fn audit_command_as(dir: &Path, config_text: &str, args: &[&str], user: User) -> Command {
    // A temp dir is 0700: let nobody through to the folders made for it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = shared_dir(dir, "tmp");
    let home = shared_dir(dir, "home");
    shared_dir(dir, "out");
    let audit = audit_command(dir, config_text, args);
    let mut cmd = if user == User::Nobody && is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(audit.get_program())
            .args(audit.get_args());
        c
    } else {
        audit
    };
    cmd.env("TMPDIR", &tmp)
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME");
    cmd
}

/// The report an audit wrote into `<dir>/out`, with the process output for a failing message.
pub fn report(dir: &Path, output: &Output) -> serde_json::Value {
    let text = std::fs::read(dir.join("out/report.json")).unwrap_or_else(|e| {
        panic!(
            "no report: {e}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_slice(&text).unwrap()
}

/// The verdict of clause `id` in a report, with its reason.
pub fn clause<'r>(report: &'r serde_json::Value, id: &str) -> (&'r str, &'r str) {
    let c = report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no clause {id}"));
    (
        c["verdict"].as_str().unwrap(),
        c["reason"].as_str().unwrap_or(""),
    )
}

/// The outcome of every scenario, by id.
pub fn outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Processes whose environment contains `needle` (a variable only one test sets), other than
/// this test process: (pid, command line).
pub fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            if !String::from_utf8_lossy(&env).contains(needle) {
                return None;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            Some((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect()
}

/// `harness/tests/<dir>/<name>.py`: a pipeline of the faulty-pipeline family.
pub fn script(dir: &str, name: &str) -> PathBuf {
    root().join(format!("harness/tests/{dir}/{name}.py"))
}

/// The glob of the scenario files in `harness/tests/<dir>/scenarios/`.
pub fn scenario_glob(dir: &str) -> String {
    root()
        .join(format!("harness/tests/{dir}/scenarios/*.toml"))
        .display()
        .to_string()
}
