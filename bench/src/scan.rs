//! `bench scan`: `traceless scan` against `rg -F -c -f`, both as whole processes on the same file.
//!
//! 64 canary images x 16 encodings = 1,024 canary patterns. The data is 1 GiB of log-like text
//! (plain lines, JSON lines, base64 blobs of unrelated bytes) with 64 fragments planted in it,
//! each 600 bytes of one image in one encoding, written to a temporary file that both programs
//! then read from the page cache.
//!
//! - `traceless scan --image <each of the 64 files> data.log` gets the images themselves: it
//!   decodes them and builds its index (part of the time measured), then looks for every 64-byte
//!   run of every image, and of its decoded pixel rows, in every encoding.
//! - `rg -F -c -f patterns.txt data.log` gets 1,024 fixed strings: for each image and encoding
//!   one 96-byte piece of the encoded form (a whole 76-character line for wrapped base64), taken
//!   from inside the fragment planted for it, so every pattern planted is found: rg's count must
//!   equal the number of plants.
//!
//! The 16 encodings are all text, because `rg -f` takes one UTF-8 line per pattern and raw image
//! bytes are neither; traceless still searches raw bytes in the same pass, at its own cost.
//!
//! Each program runs three times, alternating, after one untimed run each; the median counts. CPU
//! time (user + system, from the kernel's accounting of the waited-for child) is the steadier
//! figure on a shared machine, so the targets use it; wall time is printed beside it. Targets:
//! >= 2 GB/s per core and >= 5x ripgrep, every plant found by both.
//!
//! The scanner on the data in this process's memory, index already built, is printed for
//! comparison only.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng, RngExt, SeedableRng};
use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

use crate::Targets;

const IMAGES: usize = 64;
const ENCODINGS: usize = 16;
const DATA_BYTES: usize = 1 << 30;
const PATTERN_LEN: usize = 96;
const PLANT_LEN: usize = 600;
const PLANTS: usize = 64;
const RUNS: usize = 3;

/// One image in one encoding: the text a leak would contain, and where in it ripgrep's pattern is.
struct Encoded {
    text: Vec<u8>,
    pattern: std::ops::Range<usize>,
}

impl Encoded {
    /// A 96-byte pattern from the middle of `text`.
    fn middle(text: Vec<u8>) -> Encoded {
        let start = text.len().saturating_sub(PATTERN_LEN) / 2;
        let end = (start + PATTERN_LEN).min(text.len());
        Encoded {
            text,
            pattern: start..end,
        }
    }

    /// Base64 wrapped at 76 characters; the pattern is the middle line.
    fn wrapped(b64: &str, eol: &str) -> Encoded {
        let lines: Vec<&[u8]> = b64.as_bytes().chunks(76).collect();
        let k = lines.len() / 2;
        let start = lines[..k]
            .iter()
            .map(|l| l.len() + eol.len())
            .sum::<usize>();
        Encoded {
            text: lines.join(eol.as_bytes()),
            pattern: start..start + lines[k].len(),
        }
    }

    fn pattern(&self) -> &[u8] {
        &self.text[self.pattern.clone()]
    }

    /// The planted fragment: `PLANT_LEN` bytes around the pattern.
    fn plant(&self) -> &[u8] {
        let len = PLANT_LEN.min(self.text.len());
        let start = (self.pattern.start + self.pattern.len() / 2)
            .saturating_sub(len / 2)
            .min(self.text.len() - len);
        &self.text[start..start + len]
    }
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

/// The 16 encodings of one image: its file bytes and its decoded pixel rows, as text.
fn encodings(file: &[u8], pixels: &[u8]) -> Vec<Encoded> {
    let pct = percent_encode(file, NON_ALPHANUMERIC).to_string();
    let b64 = STANDARD.encode(file);
    let text = |s: String| Encoded::middle(s.into_bytes());
    vec![
        text(b64.clone()),
        text(STANDARD.encode(&file[1..])),
        text(STANDARD.encode(&file[2..])),
        text(URL_SAFE_NO_PAD.encode(file)),
        text(URL_SAFE_NO_PAD.encode(&file[1..])),
        text(URL_SAFE_NO_PAD.encode(&file[2..])),
        text(hex::encode(file)),
        text(hex::encode_upper(file)),
        Encoded::middle(lower_escapes(&pct)),
        text(pct),
        Encoded::wrapped(&b64, "\n"),
        Encoded::wrapped(&b64, "\r\n"),
        text(percent_encode(b64.as_bytes(), NON_ALPHANUMERIC).to_string()),
        text(STANDARD.encode(pixels)),
        text(URL_SAFE_NO_PAD.encode(pixels)),
        text(hex::encode(pixels)),
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

/// One whole-process run: (wall seconds, CPU seconds, standard output).
fn timed(cmd: &mut Command) -> anyhow::Result<(f64, f64, String)> {
    let (t, c) = (Instant::now(), cpu_seconds(libc::RUSAGE_CHILDREN));
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds(libc::RUSAGE_CHILDREN) - c;
    // traceless scan exits 1 when it found something; both exit 2 on an error.
    ensure!(
        out.status.code().is_some_and(|c| c < 2),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((wall, cpu, String::from_utf8(out.stdout)?))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `--mib N` sets the data size (default 1024 MiB).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let data_bytes = match args {
        [] => DATA_BYTES,
        [flag, n] if flag == "--mib" => n.parse::<usize>().context("--mib takes a number")? << 20,
        _ => bail!("unexpected arguments {args:?}; usage: bench scan [--mib N]"),
    };
    let traceless = crate::sibling("traceless")?;
    let rg_version = Command::new("rg")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_owned())
        .context(
            "ripgrep (rg) is not installed; install it (Debian: `apt-get install -y ripgrep`) and run again",
        )?;
    let mut rng = StdRng::seed_from_u64(0x7ace1e55);
    let dir = tempfile::Builder::new()
        .prefix("traceless-bench-scan")
        .tempdir()
        .context("creating a temporary directory")?;

    println!("generating {IMAGES} canary images x {ENCODINGS} encodings...");
    let formats = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];
    let mut image_paths = Vec::new();
    let mut images = Vec::new();
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
        let path = dir
            .path()
            .join(format!("canary-{i:02}.{:?}", spec.format).to_lowercase());
        std::fs::write(&path, &canary.bytes)?;
        image_paths.push(path);
        all.push(encodings(&canary.bytes, &pixels));
        images.push(canary.bytes);
    }
    let patterns_path = dir.path().join("patterns.txt");
    let mut pf = std::fs::File::create(&patterns_path)?;
    for enc in all.iter().flatten() {
        ensure!(
            !enc.pattern().contains(&b'\n') && std::str::from_utf8(enc.pattern()).is_ok(),
            "a pattern is not one line of text"
        );
        pf.write_all(enc.pattern())?;
        pf.write_all(b"\n")?;
    }
    drop(pf);
    let patterns_count = all.iter().map(Vec::len).sum::<usize>();
    ensure!(patterns_count == IMAGES * ENCODINGS);

    println!("building {} MiB of log-like data...", data_bytes >> 20);
    let data = make_data(&mut rng, &all, data_bytes);
    let data_path = dir.path().join("data.log");
    std::fs::write(&data_path, &data.bytes).context("writing the data file")?;
    let gb = data.bytes.len() as f64 / 1e9;

    let mut ours = Command::new(&traceless);
    ours.arg("scan");
    for path in &image_paths {
        ours.arg("--image").arg(path);
    }
    ours.arg(&data_path);
    let mut theirs = Command::new("rg");
    theirs
        .args(["-F", "-c", "-f"])
        .arg(&patterns_path)
        .arg(&data_path);

    println!("untimed first runs (page cache, binaries)...");
    let (_, _, ours_out) = timed(&mut ours)?;
    let (_, _, rg_out) = timed(&mut theirs)?;
    println!("timing {RUNS} runs of each, alternating...");
    let (mut ours_wall, mut ours_cpu, mut rg_wall, mut rg_cpu) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        let (w, c, _) = timed(&mut ours)?;
        ours_wall.push(w);
        ours_cpu.push(c);
        let (w, c, _) = timed(&mut theirs)?;
        rg_wall.push(w);
        rg_cpu.push(c);
    }
    // Every run's CPU time, so the spread behind each median is on record.
    let spread = |runs: &[f64]| {
        let mut runs = runs.to_vec();
        runs.sort_by(f64::total_cmp);
        runs.iter()
            .map(|c| format!("{c:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (ours_runs, rg_runs) = (spread(&ours_cpu), spread(&rg_cpu));
    let (ours_wall, ours_cpu) = (median(ours_wall), median(ours_cpu));
    let (rg_wall, rg_cpu) = (median(rg_wall), median(rg_cpu));

    let found = plants_found(&ours_out, &image_paths, &data.plants, &data_path);
    let rg_count: usize = rg_out.trim().parse().unwrap_or(0);

    // For comparison only: the scanner on the data in memory, its index already built.
    let mut scanner = Scanner::new();
    for (i, bytes) in images.iter().enumerate() {
        let id = NeedleId {
            request: i as u32,
            subject: Subject::Image,
        };
        scanner.add_image(id, bytes);
    }
    let (t, c) = (Instant::now(), cpu_seconds(libc::RUSAGE_THREAD));
    let in_memory_hits = scanner.scan(&data.bytes).len();
    let (mem_wall, mem_cpu) = (
        t.elapsed().as_secs_f64(),
        cpu_seconds(libc::RUSAGE_THREAD) - c,
    );

    println!(
        "data: {gb:.3} GB, {patterns_count} patterns ({IMAGES} images x {ENCODINGS} encodings), {} planted fragments of {PLANT_LEN} bytes",
        data.plants.len()
    );
    println!(
        "traceless scan (64 images): wall {ours_wall:.3} s = {:.2} GB/s, cpu {ours_cpu:.3} s = {:.2} GB/s per core; {found} of {} plants found",
        gb / ours_wall,
        gb / ours_cpu,
        data.plants.len()
    );
    println!(
        "rg -F -c -f (1,024 patterns): wall {rg_wall:.3} s = {:.2} GB/s, cpu {rg_cpu:.3} s = {:.2} GB/s per core; {rg_count} matching lines ({rg_version})",
        gb / rg_wall,
        gb / rg_cpu,
    );
    println!("cpu seconds of each timed run, sorted: traceless scan {ours_runs}; rg {rg_runs}");
    println!(
        "for comparison, the scanner in memory (index built, no process, no I/O): wall {mem_wall:.3} s, cpu {mem_cpu:.3} s = {:.2} GB/s per core, {in_memory_hits} hits",
        gb / mem_cpu
    );
    println!("asymmetries left:");
    for line in [
        "traceless gets 64 image files, decodes them and indexes every 64-byte run of each (file bytes and 3 pixel layouts) before it scans; rg gets 1,024 ready 96-byte strings and compiles them",
        "traceless finds any 64-byte run in any encoding (raw bytes too, which are not planted: rg -f takes text lines); rg finds only its 1,024 strings",
        "both map the file from the page cache (rg picks a memory map for one file; traceless scan always maps)",
        "rg counts matching lines; traceless prints every hit with offsets and an excerpt",
        "both search one file on one thread; CPU time counts every thread of each process",
    ] {
        println!("  - {line}");
    }
    let mut targets = Targets::new();
    targets.check(
        "traceless scan throughput (whole process, cpu)",
        gb / ours_cpu >= 2.0,
        format!("{:.2} GB/s per core", gb / ours_cpu),
        ">= 2 GB/s per core",
    );
    targets.check(
        "traceless scan against rg (whole process, cpu)",
        rg_cpu / ours_cpu >= 5.0,
        format!(
            "{:.1}x (wall {:.1}x)",
            rg_cpu / ours_cpu,
            rg_wall / ours_wall
        ),
        ">= 5x",
    );
    targets.check(
        "plants found by traceless scan",
        found == data.plants.len(),
        found.to_string(),
        &data.plants.len().to_string(),
    );
    targets.check(
        "plants found by rg (its patterns occur)",
        rg_count == data.plants.len(),
        rg_count.to_string(),
        &data.plants.len().to_string(),
    );
    drop(data);
    dir.close().context("removing the temporary data")?;
    targets.finish()
}

/// The data file's bytes and its plants: (image, encoding, offset, length).
struct Data {
    bytes: Vec<u8>,
    plants: Vec<(usize, usize, usize, usize)>,
}

fn make_data(rng: &mut StdRng, all: &[Vec<Encoded>], data_bytes: usize) -> Data {
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
    let lines: Vec<Vec<u8>> = (0..8192)
        .map(|_| {
            let mut l = Vec::new();
            log_line(rng, &mut l);
            l
        })
        .collect();
    let mut bytes = Vec::with_capacity(data_bytes + (1 << 20));
    let mut plants = Vec::new();
    let plant_every = data_bytes / (PLANTS + 1);
    // Each plant a different image, the encodings in turn.
    let mut order: Vec<usize> = (0..IMAGES).collect();
    order.shuffle(rng);
    while bytes.len() < data_bytes {
        if bytes.len() / plant_every > plants.len() && plants.len() < PLANTS {
            let (img, enc) = (order[plants.len() % IMAGES], plants.len() % ENCODINGS);
            let plant = all[img][enc].plant();
            bytes.extend_from_slice(b"leak: ");
            plants.push((img, enc, bytes.len(), plant.len()));
            bytes.extend_from_slice(plant);
            bytes.push(b'\n');
        } else if rng.random_range(0..1000) < 1 {
            bytes.extend_from_slice(&blobs[rng.random_range(0..blobs.len())]);
        } else {
            bytes.extend_from_slice(&lines[rng.random_range(0..lines.len())]);
        }
    }
    Data { bytes, plants }
}

/// How many plants `traceless scan`'s output reports: a hit on the plant's image overlapping it.
/// Each output line reads `FILE: offset O: N byte(s) of IMAGE (L from offset S) as ENCODING: ...`.
fn plants_found(
    output: &str,
    images: &[std::path::PathBuf],
    plants: &[(usize, usize, usize, usize)],
    data_path: &Path,
) -> usize {
    let prefix = format!("{}: offset ", data_path.display());
    let hits: Vec<(usize, usize, usize)> = output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (offset, rest) = rest.split_once(": ")?;
            let (_, rest) = rest.split_once(" byte(s) of ")?;
            let image = images
                .iter()
                .position(|p| rest.starts_with(&format!("{} (", p.display())))?;
            let len: usize = rest.split_once(" (")?.1.split_once(' ')?.0.parse().ok()?;
            Some((image, offset.parse().ok()?, len))
        })
        .collect();
    plants
        .iter()
        .filter(|&&(img, enc, offset, len)| {
            let found = hits
                .iter()
                .any(|&(i, o, l)| i == img && o < offset + len && o + l > offset);
            if !found {
                eprintln!("MISSED plant: image {img} encoding #{enc} at {offset}");
            }
            found
        })
        .count()
}
