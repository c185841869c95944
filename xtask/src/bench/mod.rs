//! `cargo xtask bench <name>`: each benchmark measures side by side in one run and prints ratios.

mod audit;
mod memory;
mod monitor;
mod pipeline;
mod scan;

use anyhow::bail;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("pipeline") => pipeline::run(&args[1..]),
        Some("scan") => scan::run(&args[1..]),
        Some("audit") => audit::run_audit(&args[1..]),
        Some("monitor") => monitor::run(&args[1..]),
        Some("memory") => memory::run(&args[1..]),
        Some(other) => {
            bail!("unknown benchmark {other:?}: expected pipeline, scan, memory, audit or monitor")
        }
        None => bail!("name a benchmark: pipeline, scan, memory, audit or monitor"),
    }
}
