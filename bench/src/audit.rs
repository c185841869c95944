//! `bench audit`: the whole default audit (every scenario and the configured property cases), as
//! `traceless audit --config traceless.toml` runs it after the build. Targets: <= 60 s on 2 cores,
//! with >= 256 property cases, and the audit passes.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::Targets;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if !args.is_empty() {
        bail!("unexpected arguments {args:?}; usage: bench audit");
    }
    let traceless = crate::sibling("traceless")?;
    let dir = tempfile::Builder::new()
        .prefix("traceless-bench-audit")
        .tempdir()?;
    let out = dir.path().join("out");
    let started = Instant::now();
    let status = Command::new(&traceless)
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
    let cases = report["provenance"]["cases"].as_u64().unwrap_or(0);
    println!(
        "default audit: {secs:.1} s wall ({requests} requests, {cases} property cases), {status}"
    );
    let mut targets = Targets::new();
    targets.check(
        "audit passes",
        status.success(),
        format!("{status}"),
        "exit 0",
    );
    targets.check("property cases", cases >= 256, cases.to_string(), ">= 256");
    targets.check(
        "whole default audit",
        secs <= 60.0,
        format!("{secs:.1} s"),
        "<= 60 s",
    );
    targets.finish()
}

fn read_report(out: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("report.json"))
        .with_context(|| format!("no report in {}", out.display()))?;
    Ok(serde_json::from_str(&text)?)
}
