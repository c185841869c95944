//! `traceless-bench <name>`: the performance targets, each measured side by side in one run.
//!
//! Run it through `cargo xtask bench <name> [flags]`, which first builds this crate together with
//! the release binaries it measures (`traceless`, `traceless-pipeline`); they are found beside
//! this binary. Every benchmark prints what it compared and how, and exits non-zero when it
//! misses its target, so a regression fails the command that measured it.

mod audit;
mod memory;
mod monitor;
mod pipeline;
mod scale;
mod scan;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("pipeline") => pipeline::run(&args[1..]),
        Some("scan") => scan::run(&args[1..]),
        Some("audit") => audit::run(&args[1..]),
        Some("monitor") => monitor::run(&args[1..]),
        Some("memory") => memory::run(&args[1..]),
        Some("scale") => scale::run(&args[1..]),
        Some(other) => {
            bail!(
                "unknown benchmark {other:?}: expected pipeline, scan, memory, audit, monitor or scale"
            )
        }
        None => bail!("name a benchmark: pipeline, scan, memory, audit, monitor or scale"),
    }
}

/// A release binary built with this one (`cargo xtask bench` builds them together).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating this binary")?;
    let path = me.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} is missing: run the benchmarks through `cargo xtask bench`, which builds it",
            path.display()
        );
    }
    Ok(path)
}

/// Targets met or missed, printed in one form by every benchmark.
#[derive(Default)]
pub struct Targets {
    missed: Vec<String>,
}

impl Targets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Prints `what: measured (target)` with its outcome and remembers a miss.
    pub fn check(&mut self, what: &str, ok: bool, measured: String, target: &str) {
        println!(
            "target {what}: {measured} (target {target}): {}",
            if ok { "met" } else { "MISSED" }
        );
        if !ok {
            self.missed
                .push(format!("{what}: {measured}, target {target}"));
        }
    }

    /// An error naming every missed target, if any.
    pub fn finish(self) -> anyhow::Result<()> {
        if self.missed.is_empty() {
            Ok(())
        } else {
            bail!("targets missed: {}", self.missed.join("; "))
        }
    }
}
