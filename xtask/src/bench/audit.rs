//! `cargo xtask bench audit`: the whole default audit (every scenario and the configured property
//! cases) timed after the build, against the 60 s target; and the pipeline's median latency with
//! every monitor on vs off, measured side by side in the same run (target <= 1.25x).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::run;

pub fn run_audit(_args: &[String]) -> anyhow::Result<()> {
    build()?;
    let dir = tempdir("traceless-bench-audit")?;
    let out = dir.path().join("out");
    let started = Instant::now();
    let status = Command::new("target/release/traceless")
        .args(["audit", "--config", "traceless.toml", "--out"])
        .arg(&out)
        .status()
        .context("starting traceless")?;
    let secs = started.elapsed().as_secs_f64();
    let report = read_report(&out)?;
    let requests: usize = report["scenarios"].as_array().map_or(0, |s| {
        s.iter()
            .map(|s| s["requests"].as_array().map_or(0, Vec::len))
            .sum()
    });
    println!(
        "default audit: {secs:.1} s wall ({requests} requests, {} property cases), exit {status}",
        report["provenance"]["cases"]
    );
    println!(
        "target <= 60 s after build: {}",
        if secs <= 60.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

pub fn run_monitor(args: &[String]) -> anyhow::Result<()> {
    build()?;
    let requests: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let tmp = tempdir("traceless-bench-monitor")?;
    let dir = tmp.path();
    let scenario_dir = dir.join("scenarios");
    std::fs::create_dir_all(&scenario_dir)?;
    std::fs::write(
        scenario_dir.join("latency.toml"),
        format!(
            "id = \"latency\"\ntitle = \"sequential requests for latency\"\n[[request]]\nprovider = \"openai\"\n\
             image = {{ generate = \"png\", width = 256, height = 256 }}\nexpect_status = 200\nrepeat = {requests}\n"
        ),
    )?;
    let root = std::env::current_dir()?;
    let config = std::fs::read_to_string("traceless.toml")?
        .replace(
            "\"target/release/",
            &format!("\"{}/target/release/", root.display()),
        )
        .replace("\"fixtures/", &format!("\"{}/fixtures/", root.display()))
        .replace(
            "fixtures = \"",
            &format!("fixtures = \"{}/", root.display()),
        );
    std::fs::write(dir.join("traceless.toml"), config)?;
    let mut medians = Vec::new();
    for monitors in ["on", "off"] {
        let out = dir.join(format!("out-{monitors}"));
        let mut cmd = Command::new(root.join("target/release/traceless"));
        cmd.args(["audit", "--config"])
            .arg(dir.join("traceless.toml"))
            .arg("--out")
            .arg(&out)
            .args(["--cases", "0"]);
        if monitors == "off" {
            cmd.arg("--no-monitors");
        }
        cmd.status().context("starting traceless")?;
        let report = read_report(&out)?;
        let mut ms: Vec<u64> = report["scenarios"][0]["requests"]
            .as_array()
            .context("no requests in the report")?
            .iter()
            .filter_map(|r| r["duration-ms"].as_u64())
            .collect();
        if ms.is_empty() {
            bail!("the {monitors} run recorded no request durations");
        }
        ms.sort_unstable();
        let median = ms[ms.len() / 2];
        println!(
            "monitors {monitors}: median {median} ms, p90 {} ms over {} requests",
            ms[ms.len() * 9 / 10],
            ms.len()
        );
        medians.push(median.max(1) as f64);
    }
    let ratio = medians[0] / medians[1];
    println!(
        "overhead: {ratio:.2}x (target <= 1.25x): {}",
        if ratio <= 1.25 { "met" } else { "NOT met" }
    );
    Ok(())
}

fn build() -> anyhow::Result<()> {
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
            "build",
            "--release",
            "-p",
            "traceless-pipeline",
            "-p",
            "traceless",
        ]),
    )
}

fn tempdir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?)
}

fn read_report(out: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("report.json"))
        .with_context(|| format!("no report in {}", out.display()))?;
    Ok(serde_json::from_str(&text)?)
}
