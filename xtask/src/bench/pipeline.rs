//! `cargo xtask bench pipeline`: throughput, latency and memory of the release pipeline against
//! zero-latency mock providers, checked against SPEC section 9 (peak RSS <= 64 MB + 3 x
//! concurrency x image size; no RSS growth over 10,000 requests).
//!
//! Flags: `--requests N` (requests in each concurrency phase, default 400), `--growth N` (the
//! growth run, default 10000), `--image-kib N` (upload size, default 1024).

use std::io::{BufRead, BufReader, Cursor};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUNDARY: &str = "bench-boundary-2b7e";
const MIB: f64 = 1024.0 * 1024.0;

struct Options {
    requests: usize,
    growth: usize,
    image_bytes: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        requests: 400,
        growth: 10_000,
        image_bytes: 1024 * 1024,
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
            other => {
                bail!("unknown flag {other}; expected --requests N, --growth N, --image-kib N")
            }
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let binary = build_pipeline()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(&binary, &options))
}

/// Builds the pipeline in release; returns the binary's path.
pub(super) fn build_pipeline() -> anyhow::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "traceless-pipeline"])
        .current_dir(&root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p traceless-pipeline failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/traceless-pipeline"))
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
    Bytes::from(request)
}

/// Mock OpenAI and Gemini answering at once with a small PNG; returns the origin.
pub(super) async fn start_mock() -> anyhow::Result<SocketAddr> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let openai = serde_json::json!({"created": 1, "data": [{"b64_json": b64}]}).to_string();
    let gemini = serde_json::json!({"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": b64}}]}, "finishReason": "STOP"}]}).to_string();
    let json = |text: String| {
        move |_body: Bytes| async move { ([("content-type", "application/json")], text) }
    };
    let app = Router::new()
        .route("/v1/images/edits", post(json(openai)))
        .route("/v1beta/models/{model}", post(json(gemini)))
        .layer(DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
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
    binary: &PathBuf,
    mock: SocketAddr,
    concurrency: usize,
) -> anyhow::Result<Pipeline> {
    let mut child = Command::new(binary)
        .env_clear()
        .envs([
            ("TRACELESS_LISTEN", "127.0.0.1:0".to_string()),
            ("OPENAI_BASE_URL", format!("http://{mock}/v1")),
            ("GEMINI_BASE_URL", format!("http://{mock}/v1beta")),
            ("OPENAI_API_KEY", "sk-bench".into()),
            ("GEMINI_API_KEY", "bench".into()),
            ("TRACELESS_ALLOW_PLAINTEXT_PROVIDERS", "1".into()),
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

/// Sends `total` requests with `concurrency` clients; returns each latency.
async fn load(
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
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn bench(binary: &PathBuf, options: &Options) -> anyhow::Result<()> {
    let mock = start_mock().await?;
    let images: Vec<Vec<u8>> = (0..4)
        .map(|_| random_png(options.image_bytes))
        .collect::<anyhow::Result<_>>()?;
    let image_bytes = images[0].len();
    println!(
        "pipeline bench: {} images of {:.2} MiB, mock providers at {mock}",
        images.len(),
        image_bytes as f64 / MIB
    );
    let mut failures = Vec::new();

    for concurrency in [1usize, 16] {
        let pipeline = start_pipeline(binary, mock, 16)?;
        let requests: Arc<Vec<Bytes>> = Arc::new(
            images
                .iter()
                .enumerate()
                .map(|(i, img)| {
                    request_bytes(
                        pipeline.addr,
                        if i % 2 == 0 { "openai" } else { "gemini" },
                        img,
                    )
                })
                .collect(),
        );
        let started = Instant::now();
        let mut latencies = load(
            pipeline.addr,
            Arc::clone(&requests),
            options.requests,
            concurrency,
        )
        .await?;
        let elapsed = started.elapsed();
        latencies.sort();
        let (_, peak) = memory(pipeline.child.id())?;
        let target = 64.0 * MIB + 3.0 * concurrency as f64 * image_bytes as f64;
        let ok = (peak as f64) <= target;
        println!(
            "concurrency {concurrency:>2}: {:>7.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  peak RSS {:>6.1} MiB (target <= {:.1} MiB) {}",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            peak as f64 / MIB,
            target / MIB,
            if ok { "ok" } else { "OVER" },
        );
        if !ok {
            failures.push(format!("peak RSS at concurrency {concurrency}"));
        }
    }

    let pipeline = start_pipeline(binary, mock, 16)?;
    let requests: Arc<Vec<Bytes>> = Arc::new(
        images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                request_bytes(
                    pipeline.addr,
                    if i % 2 == 0 { "openai" } else { "gemini" },
                    img,
                )
            })
            .collect(),
    );
    let warm_up = (options.growth / 10).max(1);
    load(pipeline.addr, Arc::clone(&requests), warm_up, 16).await?;
    let (after_warm_up, _) = memory(pipeline.child.id())?;
    let started = Instant::now();
    load(pipeline.addr, Arc::clone(&requests), options.growth, 16).await?;
    let (after_all, peak) = memory(pipeline.child.id())?;
    let ratio = after_all as f64 / after_warm_up as f64;
    // Allocator fragmentation moves RSS a little either way; growth per request would not stay under 10%.
    let ok = ratio <= 1.10;
    println!(
        "growth: RSS after {warm_up} warm-up requests {:.1} MiB, after {} more {:.1} MiB (ratio {ratio:.3}, peak {:.1} MiB, {:.1} s) {}",
        after_warm_up as f64 / MIB,
        options.growth,
        after_all as f64 / MIB,
        peak as f64 / MIB,
        started.elapsed().as_secs_f64(),
        if ok { "ok" } else { "GROWING" },
    );
    if !ok {
        failures.push("RSS growth".into());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("pipeline bench over target: {}", failures.join(", "))
    }
}
