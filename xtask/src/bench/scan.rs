//! `cargo xtask bench scan`: scanner throughput with 1,024 canary patterns, against `rg -F -c -f` on the same data.
//!
//! 64 canary images x 16 encodings = 1,024 patterns. The data is 1 GiB of log-like text (plain lines, JSON lines,
//! base64 blobs of unrelated bytes) with canary fragments planted in it, written to a temporary file. Our scanner
//! runs on one thread over the data in memory; ripgrep searches the file (page-cached, one file = one thread).
//!
//! Fairness: ripgrep gets one printable 96-byte pattern per image and encoding, a fragment from the middle of the
//! encoded form. Raw forms (file bytes, pixel rows) cannot be a line of a pattern file, so ripgrep gets the same
//! bytes' hex fragment instead; wrapped base64 gets one full line (76 characters). ripgrep thus searches for
//! 1,024 fixed strings, while our scanner looks for every 64-byte run of each image in every encoding.
//!
//! Both wall time and CPU time are reported: on a shared machine CPU time (getrusage) is the steadier figure, and
//! the ratio is taken from CPU time.

use std::io::Write as _;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

const IMAGES: usize = 64;
const ENCODINGS: usize = 16;
const DATA_BYTES: usize = 1 << 30;
const PATTERN_LEN: usize = 96;
const PLANTS: usize = 48;

/// One image in one encoding: the text (or bytes) a leak would contain, and the fragment ripgrep looks for.
struct Encoded {
    bytes: Vec<u8>,
    rg_pattern: Vec<u8>,
}

fn middle(bytes: &[u8], len: usize) -> Vec<u8> {
    let start = bytes.len().saturating_sub(len) / 2;
    bytes[start..(start + len).min(bytes.len())].to_vec()
}

fn wrap(text: &str, width: usize, eol: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(eol)
        .into_bytes()
}

fn lower_escapes(upper: &str) -> Vec<u8> {
    let mut digits = 0u8;
    upper
        .bytes()
        .map(|b| {
            let out = if digits > 0 {
                b.to_ascii_lowercase()
            } else {
                b
            };
            digits = if b == b'%' {
                2
            } else {
                digits.saturating_sub(1)
            };
            out
        })
        .collect()
}

fn encodings(file: &[u8], pixels: &[u8]) -> Vec<Encoded> {
    let text = |bytes: Vec<u8>| Encoded {
        rg_pattern: middle(&bytes, PATTERN_LEN),
        bytes,
    };
    let raw = |bytes: &[u8]| Encoded {
        rg_pattern: middle(hex::encode(bytes).as_bytes(), PATTERN_LEN),
        bytes: bytes.to_vec(),
    };
    let pct = percent_encode(file, NON_ALPHANUMERIC).to_string();
    let b64 = STANDARD.encode(file);
    let wrapped = |eol: &str| {
        let bytes = wrap(&b64, 76, eol);
        let k = b64.len() / 76 / 2;
        let line = b64.as_bytes()[76 * k..(76 * k + 76).min(b64.len())].to_vec();
        Encoded {
            rg_pattern: line,
            bytes,
        }
    };
    vec![
        raw(file),
        text(b64.clone().into_bytes()),
        text(STANDARD.encode(&file[1..]).into_bytes()),
        text(STANDARD.encode(&file[2..]).into_bytes()),
        text(URL_SAFE_NO_PAD.encode(file).into_bytes()),
        text(URL_SAFE_NO_PAD.encode(&file[1..]).into_bytes()),
        text(URL_SAFE_NO_PAD.encode(&file[2..]).into_bytes()),
        text(hex::encode(file).into_bytes()),
        text(hex::encode_upper(file).into_bytes()),
        text(pct.clone().into_bytes()),
        text(lower_escapes(&pct)),
        wrapped("\n"),
        wrapped("\r\n"),
        raw(pixels),
        text(STANDARD.encode(pixels).into_bytes()),
        text(
            percent_encode(b64.as_bytes(), NON_ALPHANUMERIC)
                .to_string()
                .into_bytes(),
        ),
    ]
}

fn log_line(rng: &mut impl Rng, out: &mut Vec<u8>) {
    const LEVELS: [&str; 4] = ["INFO", "DEBUG", "WARN", "ERROR"];
    const WHAT: [&str; 6] = [
        "request completed",
        "provider call finished",
        "connection pool resized",
        "cache miss for key",
        "upstream answered slowly",
        "rate limiter tick",
    ];
    let n: u32 = rng.random();
    match rng.random_range(0..3) {
        0 => out.extend_from_slice(
            format!(
                "2026-11-29T12:{:02}:{:02}.{:03}Z {} traceless_pipeline::http: {} id={:08x} took={}ms status=200\n",
                n % 60,
                (n >> 8) % 60,
                n % 1000,
                LEVELS[(n % 4) as usize],
                WHAT[(n % 6) as usize],
                n,
                n % 977
            )
            .as_bytes(),
        ),
        1 => out.extend_from_slice(
            format!(
                "{{\"ts\":{},\"level\":\"{}\",\"msg\":\"{}\",\"span\":{{\"id\":\"{:08x}\",\"route\":\"/v1/generations\"}},\"bytes\":{}}}\n",
                1_796_000_000u64 + n as u64,
                LEVELS[(n % 4) as usize].to_lowercase(),
                WHAT[(n % 6) as usize],
                n,
                n % 100_000
            )
            .as_bytes(),
        ),
        _ => out.extend_from_slice(format!("GET /healthz HTTP/1.1 200 {} \"curl/8.5\" rid={n:x}\n", n % 50).as_bytes()),
    }
}

/// CPU seconds (user + system) of this thread, or of all waited-for children.
fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// `--mib N` sets the data size (default 1024 MiB); `--repeat N` how many times our scanner runs (the best
/// run counts; more runs make a profile of the scan alone).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut data_bytes = DATA_BYTES;
    let mut repeats = 3;
    let mut rest = args;
    while let [flag, n, tail @ ..] = rest {
        match flag.as_str() {
            "--mib" => data_bytes = n.parse::<usize>().context("--mib takes a number")? << 20,
            "--repeat" => {
                repeats = n
                    .parse::<usize>()
                    .context("--repeat takes a number")?
                    .max(1)
            }
            _ => break,
        }
        rest = tail;
    }
    if !rest.is_empty() {
        bail!(
            "unexpected arguments {rest:?}; usage: cargo xtask bench scan [--mib N] [--repeat N]"
        );
    }
    let rg_ok = Command::new("rg")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !rg_ok {
        bail!(
            "ripgrep (rg) is not installed; install it (Debian: `apt-get install -y ripgrep`) and run again"
        );
    }
    let mut rng = StdRng::seed_from_u64(0x7ace1e55);

    println!("generating {IMAGES} canary images x {ENCODINGS} encodings...");
    let formats = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];
    let mut scanner = Scanner::new();
    let mut all: Vec<Vec<Encoded>> = Vec::new();
    for i in 0..IMAGES {
        let spec = ImageSpec {
            format: formats[i % 3],
            width: 128,
            height: 96,
            metadata: true,
        };
        let canary = generate_image(&spec, &mut rng).context("generating a canary")?;
        let pixels = image::load_from_memory(&canary.bytes)?.into_bytes();
        scanner.add_image(
            NeedleId {
                request: i as u32,
                subject: Subject::Image,
            },
            &canary.bytes,
        );
        all.push(encodings(&canary.bytes, &pixels));
    }
    let patterns_count = all.iter().map(Vec::len).sum::<usize>();
    assert_eq!(patterns_count, IMAGES * ENCODINGS);

    println!("building {} MiB of log-like data...", data_bytes >> 20);
    let blobs: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            let mut b = vec![0u8; rng.random_range(1024..8192)];
            rng.fill_bytes(&mut b);
            format!(
                "{{\"event\":\"thumbnail\",\"data\":\"{}\"}}\n",
                STANDARD.encode(&b)
            )
            .into_bytes()
        })
        .collect();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for _ in 0..8192 {
        let mut l = Vec::new();
        log_line(&mut rng, &mut l);
        lines.push(l);
    }
    let mut data = Vec::with_capacity(data_bytes + (1 << 20));
    let mut plants: Vec<(usize, usize, usize, usize)> = Vec::new(); // (image, encoding, offset, len)
    let plant_every = data_bytes / (PLANTS + 1);
    while data.len() < data_bytes {
        if data.len() / plant_every > plants.len() && plants.len() < PLANTS {
            let (img, enc) = (rng.random_range(0..IMAGES), plants.len() % ENCODINGS);
            let form = &all[img][enc].bytes;
            let len = 600.min(form.len());
            let start = (form.len() - len) / 2;
            data.extend_from_slice(b"leak: ");
            plants.push((img, enc, data.len(), len));
            data.extend_from_slice(&form[start..start + len]);
            data.push(b'\n');
        } else if rng.random_range(0..1000) < 1 {
            data.extend_from_slice(&blobs[rng.random_range(0..blobs.len())]);
        } else {
            data.extend_from_slice(&lines[rng.random_range(0..lines.len())]);
        }
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let data_path = dir.path().join("data.log");
    let patterns_path = dir.path().join("patterns.txt");
    std::fs::write(&data_path, &data).context("writing the data file")?;
    let mut pf = std::fs::File::create(&patterns_path)?;
    for enc in all.iter().flatten() {
        pf.write_all(&enc.rg_pattern)?;
        pf.write_all(b"\n")?;
    }
    drop(pf);

    println!("scanning with traceless-scan (1 thread)...");
    let _warm = scanner.scan(&data[..1 << 20]);
    let (mut ours, mut ours_cpu) = (f64::MAX, f64::MAX);
    let mut hits = Vec::new();
    for _ in 0..repeats {
        let (t, c) = (Instant::now(), cpu_seconds(libc::RUSAGE_THREAD));
        hits = scanner.scan(&data);
        ours = ours.min(t.elapsed().as_secs_f64());
        ours_cpu = ours_cpu.min(cpu_seconds(libc::RUSAGE_THREAD) - c);
    }
    let mut missed = 0;
    for &(img, enc, offset, len) in &plants {
        let found = hits.iter().any(|h| {
            h.needle.request == img as u32
                && (h.offset as usize) < offset + len
                && (h.offset + h.len) as usize > offset
        });
        if !found {
            missed += 1;
            eprintln!("MISSED plant: image {img} encoding #{enc} at {offset}");
        }
    }

    println!("scanning with rg -F -c -f patterns data...");
    let (mut theirs, mut theirs_cpu) = (f64::MAX, f64::MAX);
    let mut rg_count = String::new();
    for _ in 0..2 {
        let (t, c) = (Instant::now(), cpu_seconds(libc::RUSAGE_CHILDREN));
        let out = Command::new("rg")
            .arg("-F")
            .arg("-c")
            .arg("-f")
            .arg(&patterns_path)
            .arg(&data_path)
            .output()?;
        theirs = theirs.min(t.elapsed().as_secs_f64());
        theirs_cpu = theirs_cpu.min(cpu_seconds(libc::RUSAGE_CHILDREN) - c);
        rg_count = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    let gb = data.len() as f64 / 1e9;
    println!(
        "data: {:.3} GB, {} patterns, {} planted fragments",
        gb,
        patterns_count,
        plants.len()
    );
    println!(
        "traceless-scan: wall {:.3} s = {:.2} GB/s, cpu {:.3} s = {:.2} GB/s; {} hits, {} of {} plants found",
        ours,
        gb / ours,
        ours_cpu,
        gb / ours_cpu,
        hits.len(),
        plants.len() - missed,
        plants.len()
    );
    println!(
        "rg -F -c -f:    wall {:.3} s = {:.2} GB/s, cpu {:.3} s = {:.2} GB/s; {} matching lines",
        theirs,
        gb / theirs,
        theirs_cpu,
        gb / theirs_cpu,
        rg_count
    );
    let ratio = theirs_cpu / ours_cpu;
    println!(
        "ratio (cpu): {ratio:.1}x, wall: {:.1}x (targets: >= 5x and >= 1 GB/s)",
        theirs / ours
    );
    drop(data);
    dir.close().context("removing the temporary data")?;
    if missed > 0 {
        bail!("{missed} planted fragments were not found");
    }
    if gb / ours_cpu < 1.0 || ratio < 5.0 {
        bail!(
            "scanner below target: {:.2} GB/s, {ratio:.1}x ripgrep",
            gb / ours_cpu
        );
    }
    Ok(())
}
