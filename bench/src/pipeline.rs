//! `bench pipeline`: throughput, latency and memory of the release pipeline against the mock
//! providers, as it runs in production: it calls them over TLS (the mocks' certificate comes from
//! a CA made for the run, which the pipeline trusts through `TRACELESS_EXTRA_CA`, as it would a
//! corporate root) and each answer carries a fresh 1024 x 1024 PNG of random pixels (about 3 MiB,
//! 4 MiB as base64 in the JSON answer), the size a real generation answers with.
//!
//! Targets: peak RSS <= 64 MB + 3 x concurrency x image size, where the image size is the larger of
//! the upload and the generated answer (the pipeline holds both); RSS after 10,000 requests within
//! 10% of RSS after a warm-up (no growth per request).
//!
//! Flags: `--requests N` (requests in each concurrency phase, default 400), `--growth N` (the
//! growth run, default 10000), `--image-kib N` (upload size, default 1024), `--output-side N`
//! (side of the generated answer, default 1024).

use std::io::{BufRead, BufReader, Cursor};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use traceless_mock::{MockOptions, Mocks};

use crate::Targets;

type Bytes = Arc<[u8]>;

const BOUNDARY: &str = "bench-boundary-2b7e";
const MIB: f64 = 1024.0 * 1024.0;

struct Options {
    requests: usize,
    growth: usize,
    image_bytes: usize,
    output_side: u32,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        requests: 400,
        growth: 10_000,
        image_bytes: 1024 * 1024,
        output_side: 1024,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || -> anyhow::Result<usize> {
            args.next()
                .with_context(|| format!("{flag} needs a value"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--requests" => options.requests = value()?,
            "--growth" => options.growth = value()?,
            "--image-kib" => options.image_bytes = value()? * 1024,
            "--output-side" => options.output_side = value()?.try_into()?,
            other => {
                bail!(
                    "unknown flag {other}; expected --requests N, --growth N, --image-kib N, --output-side N"
                )
            }
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let binary = crate::sibling("traceless-pipeline")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(&binary, &options))
}

/// A PNG of random pixels of about `bytes` bytes (random data does not compress).
pub(super) fn random_png(bytes: usize) -> anyhow::Result<Vec<u8>> {
    let side = ((bytes / 3) as f64).sqrt() as u32;
    let mut pixels = vec![0u8; (side * side * 3) as usize];
    rand::fill(&mut pixels[..]);
    let img = image::RgbImage::from_raw(side, side, pixels).context("image buffer")?;
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)?;
    Ok(out)
}

pub(super) fn request_bytes(addr: SocketAddr, provider: &str, image: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(image.len() + 1024);
    for (name, value) in [
        ("age_confirmed", "true"),
        ("provider", provider),
        ("prompt", "a watercolour of this"),
    ] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(image);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut request = format!(
        "POST /v1/generations HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request.into()
}

/// The mock providers behind TLS, as an audit runs them, and what a pipeline needs to reach them.
pub(super) struct Providers {
    pub(super) mocks: Mocks,
    /// The pipeline's environment: provider URLs, keys, and the CA file as `TRACELESS_EXTRA_CA`.
    pub(super) env: Vec<(String, String)>,
    /// Holds the CA file.
    _dir: tempfile::TempDir,
}

/// Starts both mocks over TLS, each answer carrying a fresh `side` x `side` PNG.
pub(super) async fn start_mocks(side: u32) -> anyhow::Result<Providers> {
    let options = MockOptions {
        output_side: side,
        ..MockOptions::default()
    };
    let (openai_key, gemini_key) = (options.openai_key.clone(), options.gemini_key.clone());
    let mocks = Mocks::start(options).await?;
    let dir = tempfile::Builder::new()
        .prefix("traceless-bench-ca")
        .tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, mocks.ca_pem().context("the mocks run without TLS")?)?;
    let env = vec![
        (
            "OPENAI_BASE_URL".into(),
            format!("{}/v1", mocks.openai_url()),
        ),
        (
            "GEMINI_BASE_URL".into(),
            format!("{}/v1beta", mocks.gemini_url()),
        ),
        ("OPENAI_API_KEY".into(), openai_key),
        ("GEMINI_API_KEY".into(), gemini_key),
        ("TRACELESS_EXTRA_CA".into(), ca.display().to_string()),
    ];
    Ok(Providers {
        mocks,
        env,
        _dir: dir,
    })
}

pub(super) struct Pipeline {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_pipeline(
    binary: &Path,
    providers: &Providers,
    concurrency: usize,
) -> anyhow::Result<Pipeline> {
    let mut child = Command::new(binary)
        .env_clear()
        .envs(providers.env.iter().cloned())
        .envs([
            ("TRACELESS_LISTEN", "127.0.0.1:0".to_string()),
            ("TRACELESS_MAX_CONCURRENCY", concurrency.to_string()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let mut seen = String::new();
    let addr = loop {
        let Some(line) = lines.next() else {
            bail!("the pipeline exited before it was ready:\n{seen}");
        };
        let line = line?;
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
        {
            break addr.parse()?;
        }
        seen.push_str(&line);
        seen.push('\n');
    };
    // Keep draining the access log so the pipeline never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok(Pipeline { child, addr })
}

/// (VmRSS, VmHWM) in bytes.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name}"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("value")?
            .parse::<u64>()?
            * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

pub(super) async fn one_request(
    addr: SocketAddr,
    request: &[u8],
    response: &mut Vec<u8>,
) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    response.clear();
    stream.read_to_end(response).await?;
    if !response.starts_with(b"HTTP/1.1 200") {
        bail!(
            "pipeline answered {}",
            String::from_utf8_lossy(&response[..response.len().min(200)])
        );
    }
    Ok(())
}

/// Sends `total` requests with `concurrency` clients; returns each latency. The mocks' recordings
/// are dropped as they come, so the benchmark's own memory stays flat.
async fn load(
    mocks: &Mocks,
    addr: SocketAddr,
    requests: Arc<Vec<Bytes>>,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, requests) = (Arc::clone(&next), Arc::clone(&requests));
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut response = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(latencies);
                }
                let started = Instant::now();
                one_request(addr, &requests[i % requests.len()], &mut response).await?;
                latencies.push(started.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    let mut forget = tokio::time::interval(Duration::from_millis(200));
    for worker in workers {
        tokio::pin!(worker);
        loop {
            tokio::select! {
                done = &mut worker => {
                    all.extend(done??);
                    break;
                }
                _ = forget.tick() => mocks.forget_recorded(),
            }
        }
    }
    mocks.forget_recorded();
    Ok(all)
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The requests of one run: the images in turn, alternating providers.
fn requests_for(addr: SocketAddr, images: &[Vec<u8>]) -> Arc<Vec<Bytes>> {
    Arc::new(
        images
            .iter()
            .enumerate()
            .map(|(i, img)| request_bytes(addr, if i % 2 == 0 { "openai" } else { "gemini" }, img))
            .collect(),
    )
}

/// The generated image in a pipeline's answer: the body after the headers.
fn answer_body(response: &[u8]) -> &[u8] {
    response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[], |at| &response[at + 4..])
}

async fn bench(binary: &Path, options: &Options) -> anyhow::Result<()> {
    let providers = start_mocks(options.output_side).await?;
    let images: Vec<Vec<u8>> = (0..4)
        .map(|_| random_png(options.image_bytes))
        .collect::<anyhow::Result<_>>()?;
    let upload_bytes = images[0].len();

    // One request first: what the answer really is, and what making it costs the mock.
    let probe = start_pipeline(binary, &providers, 16)?;
    let mut response = Vec::new();
    one_request(
        probe.addr,
        &requests_for(probe.addr, &images)[0],
        &mut response,
    )
    .await
    .context("the first request")?;
    let answer = image::load_from_memory(answer_body(&response)).context("decoding the answer")?;
    let answer_bytes = answer_body(&response).len();
    drop(probe);
    let calls = providers.mocks.recorded();
    let tls = calls.iter().all(|c| c.tls);
    providers.mocks.forget_recorded();
    let image_bytes = upload_bytes.max(answer_bytes);
    println!(
        "pipeline bench: uploads of {:.2} MiB (4 random PNGs), answers {}x{} PNG of {:.2} MiB; \
         mock providers over {} ({} call(s) for the first request)",
        upload_bytes as f64 / MIB,
        answer.width(),
        answer.height(),
        answer_bytes as f64 / MIB,
        if tls {
            "TLS, CA trusted via TRACELESS_EXTRA_CA"
        } else {
            "PLAINTEXT"
        },
        calls.len(),
    );
    if !tls || calls.is_empty() {
        bail!(
            "the pipeline did not reach the mocks over TLS: {} call(s)",
            calls.len()
        );
    }
    println!(
        "asymmetry: the mocks run in this process and make a fresh random PNG per answer; that cost \
         is in every latency below"
    );
    let mut targets = Targets::new();

    for concurrency in [1usize, 16] {
        let pipeline = start_pipeline(binary, &providers, 16)?;
        let requests = requests_for(pipeline.addr, &images);
        let started = Instant::now();
        let mut latencies = load(
            &providers.mocks,
            pipeline.addr,
            requests,
            options.requests,
            concurrency,
        )
        .await?;
        let elapsed = started.elapsed();
        latencies.sort();
        let (_, peak) = memory(pipeline.child.id())?;
        let target = 64.0 * MIB + 3.0 * concurrency as f64 * image_bytes as f64;
        println!(
            "concurrency {concurrency:>2}: {:>7.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  peak RSS {:>6.1} MiB",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            peak as f64 / MIB,
        );
        targets.check(
            &format!("peak RSS at concurrency {concurrency}"),
            (peak as f64) <= target,
            format!("{:.1} MiB", peak as f64 / MIB),
            &format!(
                "<= 64 MiB + 3 x {concurrency} x {:.2} MiB = {:.1} MiB",
                image_bytes as f64 / MIB,
                target / MIB
            ),
        );
    }

    let pipeline = start_pipeline(binary, &providers, 16)?;
    let requests = requests_for(pipeline.addr, &images);
    let warm_up = (options.growth / 10).max(1);
    load(
        &providers.mocks,
        pipeline.addr,
        Arc::clone(&requests),
        warm_up,
        16,
    )
    .await?;
    let (after_warm_up, _) = memory(pipeline.child.id())?;
    let started = Instant::now();
    load(
        &providers.mocks,
        pipeline.addr,
        requests,
        options.growth,
        16,
    )
    .await?;
    let (after_all, peak) = memory(pipeline.child.id())?;
    let ratio = after_all as f64 / after_warm_up as f64;
    println!(
        "growth: RSS after {warm_up} warm-up requests {:.1} MiB, after {} more {:.1} MiB (peak {:.1} MiB, {:.1} s)",
        after_warm_up as f64 / MIB,
        options.growth,
        after_all as f64 / MIB,
        peak as f64 / MIB,
        started.elapsed().as_secs_f64(),
    );
    // Allocator fragmentation moves RSS a little either way; growth per request would not stay under 10%.
    targets.check(
        &format!("RSS growth over {} requests", options.growth),
        ratio <= 1.10,
        format!("{ratio:.3}x"),
        "<= 1.10x after warm-up",
    );
    targets.finish()
}
