//! What the audit tests share: the repository root, a config for a Python pipeline of the
//! faulty-pipeline family, and running `traceless audit` on it.

#![allow(dead_code)] // each test crate uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
