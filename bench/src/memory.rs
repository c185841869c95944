//! `bench memory`: the memory-retention scan on a child holding 200 MiB, against reading alone.
//!
//! The child (this binary again, `bench memory --child`) holds 200 MiB of random bytes with three canaries
//! planted in it (an image's file bytes, another's base64 text, a third's decoded pixels, plus a prompt marker),
//! 64 MiB of touched zero pages, and 512 MiB allocated but never touched. The scanner holds what an audit's
//! does: 300 canary images at the scenarios' usual 64x48 and 4 at 512x384, in every form, and each request's
//! tokens (prompt marker, device id, forwarded-for address, metadata marker).
//!
//! Side by side in one run, three times: the whole scan (`memory::scan_processes`, every core) and reading the
//! same pages alone (`memory::read_processes`, every core), each as milliseconds per 100 MB actually read (the
//! pages the process wrote; untouched pages are skipped, not read) and, for comparison only, per 100 MB of
//! readable mappings; and the scanner alone on one core over 200 MiB of random bytes in our own memory.
//!
//! Target: the median run's scan <= 50 ms per 100 MB actually read, every plant found, nothing else reported.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};

use crate::Targets;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use traceless_sandbox::memory;
use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image, personal};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

const HELD: usize = 200 << 20;
const TOUCHED_ZEROS: usize = 64 << 20;
const UNTOUCHED: usize = 512 << 20;
const SMALL_IMAGES: usize = 300;
const LARGE_IMAGES: usize = 4;
const RUNS: usize = 3;

/// The benchmarked child; killed when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args {
        [flag] if flag == "--child" => return child(),
        [] => {}
        other => bail!("unexpected arguments {other:?}; usage: bench memory"),
    }
    let mut rng = StdRng::seed_from_u64(0x3e3_0123);
    println!(
        "generating {SMALL_IMAGES} + {LARGE_IMAGES} canary images and their tokens, indexing them..."
    );
    let started = Instant::now();
    let mut scanner = Scanner::new();
    let formats = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];
    let mut images = Vec::new();
    for i in 0..SMALL_IMAGES + LARGE_IMAGES {
        let (width, height) = if i < SMALL_IMAGES {
            (64, 48)
        } else {
            (512, 384)
        };
        let spec = ImageSpec {
            format: formats[i % 3],
            width,
            height,
            metadata: true,
        };
        let canary = generate_image(&spec, &mut rng).context("generating a canary")?;
        let id = |subject| NeedleId {
            request: i as u32,
            subject,
        };
        scanner.add_image(id(Subject::Image), &canary.bytes);
        let who = personal(&mut rng);
        scanner.add_token(id(Subject::Prompt), &who.prompt_marker);
        scanner.add_token(id(Subject::DeviceId), &who.device_id);
        scanner.add_token(id(Subject::ForwardedFor), &who.forwarded_for);
        if let Some(marker) = &canary.metadata_marker {
            scanner.add_token(id(Subject::Metadata), marker);
        }
        images.push((canary.bytes, who.prompt_marker));
    }
    println!("scanner ready in {:.1} s", started.elapsed().as_secs_f64());

    // Planted: image 10's file bytes, image 20's base64, image 30's pixels, image 40's prompt marker.
    let pixels = image::load_from_memory(&images[30].0)?.to_rgb8().into_raw();
    let plants: Vec<(u32, Vec<u8>)> = vec![
        (10, images[10].0.clone()),
        (20, STANDARD.encode(&images[20].0).into_bytes()),
        (30, pixels),
        (40, images[40].1.clone().into_bytes()),
    ];
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut child = Holder(
        Command::new(exe)
            .args(["memory", "--child"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the memory holder")?,
    );
    {
        let stdin = child.0.stdin.as_mut().context("the holder's stdin")?;
        for (_, bytes) in &plants {
            stdin.write_all(&(bytes.len() as u64).to_le_bytes())?;
            stdin.write_all(bytes)?;
        }
        stdin.write_all(&0u64.to_le_bytes())?;
        stdin.flush()?;
    }
    let mut ready = String::new();
    BufReader::new(child.0.stdout.as_mut().context("the holder's stdout")?)
        .read_line(&mut ready)?;
    ensure!(
        ready.trim() == "ready",
        "the holder did not get ready: {ready:?}"
    );
    let pid = child.0.id();
    let readable: u64 = memory::mappings(pid)
        .iter()
        .filter(|m| m.perms.starts_with('r'))
        .map(|m| m.end - m.start)
        .sum();
    println!(
        "holder pid {pid}: {:.1} MB readable mappings ({} MiB random, {} MiB touched zeros, {} MiB never touched)",
        readable as f64 / 1e6,
        HELD >> 20,
        TOUCHED_ZEROS >> 20,
        UNTOUCHED >> 20
    );

    let per_100mb = |secs: f64, bytes: u64| secs * 1000.0 / (bytes as f64 / 1e8);
    // The scanner alone on one core, over the same kind of bytes held in our own memory.
    let mut local = vec![0u8; HELD];
    rng.fill_bytes(&mut local);
    let mut failures = Vec::new();
    let mut per_read = Vec::new();
    for run in 1..=RUNS {
        let t = Instant::now();
        let mut stray = 0;
        for chunk in local.chunks(8 << 20) {
            stray += scanner.scan(chunk).len();
        }
        let local_secs = t.elapsed().as_secs_f64();
        if stray > 0 {
            failures.push(format!("run {run}: {stray} hits in random bytes"));
        }
        let t = Instant::now();
        let scan = memory::scan_processes(&[pid], &scanner);
        let scan_secs = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let read = memory::read_processes(&[pid]);
        let read_secs = t.elapsed().as_secs_f64();
        ensure!(
            scan.refused.is_empty(),
            "memory not readable: {:?}",
            scan.refused
        );
        per_read.push(per_100mb(scan_secs, scan.bytes));
        println!(
            "run {run}: scan {:.1} ms = {:.1} ms per 100 MB read ({:.1} per 100 MB readable); \
             read alone {:.1} ms = {:.1} ms per 100 MB read ({:.1} per 100 MB readable); \
             {:.1} MB read, {:.1} MB skipped; scanner alone, one core: {:.1} ms per 100 MB",
            scan_secs * 1000.0,
            per_100mb(scan_secs, scan.bytes),
            per_100mb(scan_secs, readable),
            read_secs * 1000.0,
            per_100mb(read_secs, read.bytes),
            per_100mb(read_secs, readable),
            scan.bytes as f64 / 1e6,
            scan.skipped as f64 / 1e6,
            per_100mb(local_secs, HELD as u64),
        );
        for (request, bytes) in &plants {
            let hits: Vec<_> = scan
                .found
                .iter()
                .flat_map(|m| &m.hits)
                .filter(|h| h.needle.request == *request)
                .collect();
            let covered: u64 = hits.iter().map(|h| h.source_len).sum();
            if run == 1 {
                println!(
                    "  request {request}: {} hit(s) covering {covered} needle bytes in all (plant: {} bytes) {:?}",
                    hits.len(),
                    bytes.len(),
                    hits.iter()
                        .map(|h| (h.needle.subject, h.encoding))
                        .collect::<Vec<_>>()
                );
            }
            if hits.is_empty() {
                failures.push(format!("run {run}: request {request}'s plant not found"));
            }
        }
        let unexpected: Vec<_> = scan
            .found
            .iter()
            .flat_map(|m| &m.hits)
            .filter(|h| !plants.iter().any(|(r, _)| *r == h.needle.request))
            .collect();
        if !unexpected.is_empty() {
            failures.push(format!(
                "run {run}: {} hits of needles never planted",
                unexpected.len()
            ));
        }
    }
    drop(child);
    per_read.sort_by(f64::total_cmp);
    let median = per_read[per_read.len() / 2];
    let mut targets = Targets::new();
    targets.check(
        "memory scan, median run",
        median <= 50.0,
        format!("{median:.1} ms per 100 MB read"),
        "<= 50 ms per 100 MB actually read",
    );
    targets.check(
        "plants found, nothing else reported",
        failures.is_empty(),
        format!("{failures:?}"),
        "[]",
    );
    targets.finish()
}

/// The holder: reads the plants from stdin, builds its memory, says "ready", and waits for stdin to close.
fn child() -> anyhow::Result<()> {
    let mut stdin = std::io::stdin().lock();
    let mut plants = Vec::new();
    loop {
        let mut len = [0u8; 8];
        stdin.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len) as usize;
        if len == 0 {
            break;
        }
        let mut bytes = vec![0u8; len];
        stdin.read_exact(&mut bytes)?;
        plants.push(bytes);
    }
    let mut rng = StdRng::seed_from_u64(0x401d);
    let mut held = vec![0u8; HELD];
    rng.fill_bytes(&mut held);
    // Each plant in its own eighth of the block, so none overwrites another.
    for (i, bytes) in plants.iter().enumerate() {
        let slot = HELD / 8;
        let at = i * slot + rng.random_range(0..slot - bytes.len());
        held[at..at + bytes.len()].copy_from_slice(bytes);
    }
    drop(plants);
    let mut touched = vec![0u8; TOUCHED_ZEROS];
    for page in touched.chunks_mut(4096) {
        // A zero the compiler cannot see is zero: the store is kept and makes the page present.
        page[0] = std::hint::black_box(0);
    }
    let untouched = vec![0u8; UNTOUCHED];
    println!("ready");
    std::io::stdout().flush()?;
    let mut rest = Vec::new();
    let _ = stdin.read_to_end(&mut rest);
    std::hint::black_box((&held, &touched, &untouched));
    Ok(())
}
