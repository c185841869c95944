//! `bench scale`: what an audit costs as it grows, side by side in one run.
//!
//! 1. The default audit (`traceless audit --config traceless.toml`, every scenario and its 256
//!    property cases): the harness's peak RSS.
//! 2. Property cases alone (one quick scenario, `--cases N`) at two lengths, 1,000 and 10,000
//!    unless `--cases A,B` says otherwise: peak RSS and time per case at each, printed as ratios.
//! 3. `traceless mocks`, fed 10,000 image-generation requests (`--requests N`): its RSS growth.
//!
//! The harness's peak RSS is its own `VmHWM` (not its children's: the pipeline, strace and the
//! mocks' clients are not the harness), sampled every 50 ms until it exits. Time per case is the
//! whole audit's wall time over its cases, start-up included, at both lengths alike.
//!
//! Targets: peak RSS <= 256 MB for the default audit and at the longer length; time per case at
//! the longer length within 1.2x of the shorter; <= 20 ms per case; the mocks grow < 20 MB.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::Targets;

const MB: f64 = 1024.0 * 1024.0;

struct Args {
    cases: (u32, u32),
    requests: u32,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        cases: (1_000, 10_000),
        requests: 10_000,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--cases" => {
                let (a, b) = value
                    .split_once(',')
                    .context("--cases A,B: two lengths, e.g. 1000,10000")?;
                parsed.cases = (a.parse()?, b.parse()?);
            }
            "--requests" => parsed.requests = value.parse()?,
            other => bail!(
                "unexpected argument {other:?}; usage: bench scale [--cases A,B] [--requests N]"
            ),
        }
    }
    Ok(parsed)
}

/// One audit: wall time, the harness's peak RSS in bytes, its exit code, its case count.
struct Run {
    secs: f64,
    peak: u64,
    code: Option<i32>,
    report_bytes: u64,
}

fn audit(extra: &[&str]) -> anyhow::Result<Run> {
    let traceless = crate::sibling("traceless")?;
    let dir = tempfile::Builder::new()
        .prefix("traceless-bench-scale")
        .tempdir()?;
    let out = dir.path().join("out");
    let started = Instant::now();
    let mut child = Command::new(&traceless)
        .args(["audit", "--config", "traceless.toml", "--out"])
        .arg(&out)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .context("starting traceless")?;
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = status_kb(child.id(), "VmHWM:") {
            peak = peak.max(hwm * 1024);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let report_bytes = std::fs::metadata(out.join("report.json")).map_or(0, |m| m.len());
    Ok(Run {
        secs: started.elapsed().as_secs_f64(),
        peak,
        code: status.code(),
        report_bytes,
    })
}

/// A `kB` line of `/proc/<pid>/status`.
fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = parse(args)?;
    if !Path::new("traceless.toml").is_file() {
        bail!("run from the repository root (through `cargo xtask bench scale`)");
    }
    let mut targets = Targets::new();

    println!("1. the default audit...");
    let default = audit(&[])?;
    println!(
        "default audit: {:.1} s, harness peak RSS {:.0} MB, report.json {:.0} KB, exit {:?}",
        default.secs,
        default.peak as f64 / MB,
        default.report_bytes as f64 / 1024.0,
        default.code
    );

    let (short, long) = args.cases;
    let mut runs = Vec::new();
    for cases in [short, long] {
        println!("2. {cases} property cases (scenario openai-happy-path)...");
        let n = cases.to_string();
        let r = audit(&[
            "--scenario",
            "openai-happy-path",
            "--cases",
            &n,
            "--seed",
            "1",
        ])?;
        println!(
            "{cases} cases: {:.1} s ({:.1} ms per case), harness peak RSS {:.0} MB, report.json {:.0} KB, exit {:?}",
            r.secs,
            r.secs * 1000.0 / f64::from(cases),
            r.peak as f64 / MB,
            r.report_bytes as f64 / 1024.0,
            r.code
        );
        runs.push((cases, r));
    }
    let per_case = |(cases, r): &(u32, Run)| r.secs * 1000.0 / f64::from(*cases);
    let (a, b) = (&runs[0], &runs[1]);
    println!(
        "side by side: {} vs {} cases: time per case {:.2}x, peak RSS {:.2}x",
        a.0,
        b.0,
        per_case(b) / per_case(a),
        b.1.peak as f64 / a.1.peak.max(1) as f64
    );
    println!("3. traceless mocks, {} requests...", args.requests);
    let growth = mocks_growth(args.requests)?;

    targets.check(
        "default audit harness peak RSS",
        default.peak as f64 <= 256.0 * MB,
        format!("{:.0} MB", default.peak as f64 / MB),
        "<= 256 MB",
    );
    targets.check(
        &format!("harness peak RSS at {} cases", b.0),
        b.1.peak as f64 <= 256.0 * MB,
        format!("{:.0} MB", b.1.peak as f64 / MB),
        "<= 256 MB",
    );
    targets.check(
        "time per case, longer vs shorter run",
        per_case(b) <= 1.2 * per_case(a),
        format!("{:.2}x", per_case(b) / per_case(a)),
        "<= 1.2x",
    );
    targets.check(
        &format!("time per case at {} cases", b.0),
        per_case(b) <= 20.0,
        format!("{:.1} ms", per_case(b)),
        "<= 20 ms",
    );
    targets.check(
        &format!("traceless mocks growth over {} requests", args.requests),
        growth < 20.0 * MB,
        format!("{:.1} MB", growth / MB),
        "< 20 MB",
    );
    targets.check(
        "every audit completed",
        [&default, &a.1, &b.1].iter().all(|r| r.code == Some(0)),
        format!("{:?}", [default.code, a.1.code, b.1.code]),
        "exit 0",
    );
    targets.finish()
}

/// RSS growth of `traceless mocks --plaintext` from after 200 warm-up requests to after `n` more.
fn mocks_growth(n: u32) -> anyhow::Result<f64> {
    let traceless = crate::sibling("traceless")?;
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(&traceless)
        .args(["mocks", "--plaintext", "--ca-out"])
        .arg(dir.path().join("ca.pem"))
        // Its service-account file too, or it is left in the working directory.
        .arg("--service-account-out")
        .arg(dir.path().join("service-account.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting traceless mocks")?;
    let mut stdout = child.stdout.take().context("mocks stdout")?;
    let mut announced = String::new();
    let mut buf = [0u8; 4096];
    while !announced.contains("# ready") {
        let k = stdout.read(&mut buf)?;
        if k == 0 {
            bail!("traceless mocks ended before it was ready: {announced}");
        }
        announced.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    let base = announced
        .lines()
        .find_map(|l| l.strip_prefix("OPENAI_BASE_URL=http://"))
        .context("no OPENAI_BASE_URL announced")?;
    let addr = base.trim_end_matches("/v1").to_owned();
    let key = announced
        .lines()
        .find_map(|l| l.strip_prefix("OPENAI_API_KEY="))
        .context("no OPENAI_API_KEY announced")?
        .to_owned();
    let pid = child.id();
    let send = |i: u32| -> anyhow::Result<()> {
        let body = format!(
            r#"{{"model":"gpt-image-2.5-sunburst","prompt":"a lighthouse at dusk, request {i}","size":"1024x1024"}}"#
        );
        let mut s = TcpStream::connect(&addr)?;
        write!(
            s,
            "POST /v1/images/generations HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        if !answer.starts_with(b"HTTP/1.1 200") {
            bail!(
                "the mock answered {}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            );
        }
        Ok(())
    };
    for i in 0..200 {
        send(i)?;
    }
    let before = status_kb(pid, "VmRSS:").context("mocks RSS")? as f64 * 1024.0;
    let started = Instant::now();
    for i in 0..n {
        send(200 + i)?;
    }
    let after = status_kb(pid, "VmRSS:").context("mocks RSS")? as f64 * 1024.0;
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "traceless mocks: RSS {:.1} MB after 200 requests, {:.1} MB after {n} more ({:.1} s): {:+.1} MB, {:.1} KB per request",
        before / MB,
        after / MB,
        started.elapsed().as_secs_f64(),
        (after - before) / MB,
        (after - before) / 1024.0 / f64::from(n)
    );
    Ok(after - before)
}
