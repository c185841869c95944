//! `bench monitor`: the pipeline's latency with every in-path monitor on (syscall tracing, PID
//! namespace, filesystem watch, output scanning, as an audit runs it), with all of them but
//! syscall tracing, and started bare, side by side in one run: requests rotate between the three
//! instances, so machine noise falls on all alike. The providers are the TLS mocks of `bench
//! pipeline`, answering 1024 x 1024 PNGs. Target: median latency with every monitor <= 1.25 x
//! bare.
//!
//! Flags: `--requests N` (per instance, default 400), `--image-kib N` (upload size, default 256).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use traceless_sandbox::events::EventLog;
use traceless_sandbox::supervisor::{PipelineSpec, Supervisor};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

use crate::Targets;
use crate::pipeline::{
    Providers, one_request, percentile, random_png, request_bytes, start_mocks, start_pipeline,
};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut requests = 400usize;
    let mut image_kib = 256usize;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--requests" => requests = value.parse().context("--requests")?,
            "--image-kib" => image_kib = value.parse().context("--image-kib")?,
            other => bail!("unknown flag {other}: expected --requests or --image-kib"),
        }
    }
    let binary = crate::sibling("traceless-pipeline")?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(binary, requests, image_kib * 1024))
}

async fn bench(binary: PathBuf, requests: usize, image_bytes: usize) -> anyhow::Result<()> {
    let providers = start_mocks(1024).await?;
    let bare = start_pipeline(&binary, &providers, 16)?;
    let images: Vec<Vec<u8>> = (0..8)
        .map(|_| random_png(image_bytes))
        .collect::<anyhow::Result<_>>()?;
    // The scanner holds what an audit's would: every upload's image, so output is really scanned.
    let mut scanner = Scanner::new();
    for (i, image) in images.iter().enumerate() {
        let id = NeedleId {
            request: i as u32 + 1,
            subject: Subject::Image,
        };
        scanner.add_image(id, image);
    }
    let scanner = Arc::new(RwLock::new(scanner));
    let dirs = tempfile::Builder::new()
        .prefix("traceless-bench-monitor-")
        .tempdir()?;
    // Every monitor, and every monitor but syscall tracing: the difference is strace's share.
    let traced = supervise(&binary, &providers, dirs.path(), "traced", true, &scanner).await?;
    let untraced = supervise(
        &binary,
        &providers,
        dirs.path(),
        "untraced",
        false,
        &scanner,
    )
    .await?;
    let instances = [bare.addr, untraced.1, traced.1];
    let measured = alternate(&providers, &instances, &images, requests).await;
    let statuses = traced.0.statuses();
    traced.0.stop(Duration::from_secs(3)).await;
    untraced.0.stop(Duration::from_secs(3)).await;
    let mut measured = measured?;
    for s in &statuses {
        println!("monitor {:?}: {:?}", s.monitor, s.state);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let names = ["off", "on without syscall tracing", "on"];
    for (name, l) in names.iter().zip(measured.iter_mut()) {
        l.sort_unstable();
        println!(
            "monitors {name}: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms over {} requests ({} KiB uploads)",
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.9)),
            ms(percentile(l, 0.99)),
            l.len(),
            image_bytes / 1024
        );
    }
    let median = |l: &Vec<Duration>| ms(percentile(l, 0.5));
    let untraced_ratio = median(&measured[1]) / median(&measured[0]);
    let ratio = median(&measured[2]) / median(&measured[0]);
    println!("overhead without syscall tracing (median): {untraced_ratio:.2}x");
    let mut targets = Targets::new();
    targets.check(
        "overhead, every monitor (median, on / off)",
        ratio <= 1.25,
        format!("{ratio:.2}x"),
        "<= 1.25x",
    );
    targets.finish()
}

/// The pipeline under the supervisor, as an audit runs it; returns it and its address.
async fn supervise(
    binary: &Path,
    providers: &Providers,
    dir: &Path,
    name: &str,
    trace_syscalls: bool,
    scanner: &Arc<RwLock<Scanner>>,
) -> anyhow::Result<(Supervisor, SocketAddr)> {
    let [work, tmp, home] = ["work", "tmp", "home"].map(|d| dir.join(name).join(d));
    for d in [&work, &tmp, &home] {
        std::fs::create_dir_all(d)?;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let spec = PipelineSpec {
        command: vec![binary.display().to_string()],
        env: [("TRACELESS_LISTEN".to_string(), addr.to_string())]
            .into_iter()
            .chain(providers.env.iter().cloned())
            .collect(),
        workdir: work,
        tmpdir: tmp,
        home,
        watch_roots: vec![],
        trace_syscalls,
        pid_namespace: true,
        ignore_paths: vec![],
        unwatched_files: false,
    };
    let supervisor = Supervisor::start(spec, scanner.clone(), EventLog::new()).await?;
    let health = format!("http://{addr}/healthz");
    if let Err(e) = supervisor
        .wait_healthy(&health, Duration::from_secs(20))
        .await
    {
        supervisor.stop(Duration::from_secs(3)).await;
        return Err(e.context(format!("the {name} pipeline did not become healthy")));
    }
    Ok((supervisor, addr))
}

/// Sends `n` requests to each instance in turn, rotating which goes first; returns each one's
/// latencies.
async fn alternate(
    providers: &Providers,
    instances: &[SocketAddr],
    images: &[Vec<u8>],
    n: usize,
) -> anyhow::Result<Vec<Vec<Duration>>> {
    let bodies: Vec<Vec<_>> = instances
        .iter()
        .map(|&addr| {
            images
                .iter()
                .map(|img| request_bytes(addr, "openai", img))
                .collect()
        })
        .collect();
    let mut latencies = vec![Vec::with_capacity(n); instances.len()];
    let mut response = Vec::new();
    for i in 0..n {
        for k in 0..instances.len() {
            let which = (i + k) % instances.len();
            let addr = instances[which];
            let started = Instant::now();
            one_request(addr, &bodies[which][i % images.len()], &mut response)
                .await
                .with_context(|| format!("request {i} to {addr}"))?;
            latencies[which].push(started.elapsed());
        }
        providers.mocks.forget_recorded();
    }
    Ok(latencies)
}
