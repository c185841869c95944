//! `cargo xtask bench audit`: the whole default audit (every scenario and the configured property
//! cases) timed after the build, against the 60 s target.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Context as _;

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
