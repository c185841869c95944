//! Writes the two sample reports in every format, to look at them: `cargo run -p traceless-report --example write_samples -- DIR`.

use std::path::PathBuf;

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .context("usage: write_samples DIR")?,
    );
    for (name, report) in [
        ("passing", traceless_report::sample::passing()),
        ("failing", traceless_report::sample::failing()),
    ] {
        let dir = out.join(name);
        traceless_report::write_all(&report, &dir)?;
        println!(
            "{}: exit code {}, {}",
            dir.display(),
            report.exit_code(),
            report.summary_line()
        );
    }
    Ok(())
}
