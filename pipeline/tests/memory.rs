//! The real binary keeps no copy of any uploaded image once its request is over: its memory
//! (every writable mapping, read through /proc/PID/mem) holds no 64-byte run of any image sent,
//! raw or base64, on the success, provider-error and refused paths alike.

mod support;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use support::process::PipelineProcess;
use support::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WINDOW: usize = 64;
const BASE: u64 = 0x100_0000_01B3;

/// Every 64-byte window of the needles, by rolling hash, to find any surviving run exactly.
struct Windows {
    by_hash: HashMap<u64, (usize, usize)>,
    /// One bit per hash prefix: most positions are rejected without a map lookup.
    filter: Vec<u64>,
    needles: Vec<(String, Vec<u8>)>,
    base_pow: u64,
}

impl Windows {
    fn new(needles: Vec<(String, Vec<u8>)>) -> Self {
        let mut by_hash = HashMap::new();
        let mut filter = vec![0u64; FILTER_BITS / 64];
        for (index, (_, bytes)) in needles.iter().enumerate() {
            for_each_window_hash(bytes, |offset, hash| {
                by_hash.entry(hash).or_insert((index, offset));
                let bit = filter_bit(hash);
                filter[bit / 64] |= 1 << (bit % 64);
            });
        }
        let base_pow = (0..WINDOW - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
        Windows {
            by_hash,
            filter,
            needles,
            base_pow,
        }
    }

    /// Names of the needles with a window in `hay`, with where.
    fn find(&self, hay: &[u8], hay_start: u64, hits: &mut Vec<String>) {
        if hay.len() < WINDOW {
            return;
        }
        let mut hash = hay[..WINDOW].iter().fold(0u64, |h, &b| {
            h.wrapping_mul(BASE).wrapping_add(u64::from(b))
        });
        let mut i = 0;
        loop {
            let bit = filter_bit(hash);
            if self.filter[bit / 64] & (1 << (bit % 64)) != 0
                && let Some(&(needle, offset)) = self.by_hash.get(&hash)
            {
                let (name, bytes) = &self.needles[needle];
                if hay[i..i + WINDOW] == bytes[offset..offset + WINDOW] {
                    hits.push(format!(
                        "{name} (offset {offset}) at 0x{:x}",
                        hay_start + i as u64
                    ));
                    if hits.len() > 20 {
                        return;
                    }
                    // One report per surviving run is enough.
                    i += WINDOW - 1;
                    if i + WINDOW >= hay.len() {
                        return;
                    }
                    hash = hay[i + 1..i + 1 + WINDOW].iter().fold(0u64, |h, &b| {
                        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
                    });
                    i += 1;
                    continue;
                }
            }
            if i + WINDOW >= hay.len() {
                return;
            }
            hash = hash
                .wrapping_sub(u64::from(hay[i]).wrapping_mul(self.base_pow))
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(hay[i + WINDOW]));
            i += 1;
        }
    }
}

const FILTER_BITS: usize = 1 << 24;

fn filter_bit(hash: u64) -> usize {
    (hash >> 40) as usize
}

fn for_each_window_hash(bytes: &[u8], mut f: impl FnMut(usize, u64)) {
    if bytes.len() < WINDOW {
        return;
    }
    let base_pow = (0..WINDOW - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let mut hash = bytes[..WINDOW].iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b))
    });
    f(0, hash);
    for i in 1..=bytes.len() - WINDOW {
        hash = hash
            .wrapping_sub(u64::from(bytes[i - 1]).wrapping_mul(base_pow))
            .wrapping_mul(BASE)
            .wrapping_add(u64::from(bytes[i + WINDOW - 1]));
        f(i, hash);
    }
}

/// Scans every writable mapping of `pid` for the windows.
fn scan_process(pid: u32, windows: &Windows) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut hits = Vec::new();
    let mut buf = vec![0u8; 4 << 20];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
        let name = fields.nth(3).unwrap_or("");
        if !perms.starts_with("rw") || name.starts_with("[v") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (
            u64::from_str_radix(start, 16).unwrap(),
            u64::from_str_radix(end, 16).unwrap(),
        );
        // Chunks overlap by a window so a run across a boundary is still seen.
        let mut at = start;
        while at < end {
            let len = ((end - at) as usize).min(buf.len());
            if mem.seek(SeekFrom::Start(at)).is_ok() && mem.read_exact(&mut buf[..len]).is_ok() {
                windows.find(&buf[..len], at, &mut hits);
            }
            if at + len as u64 >= end {
                break;
            }
            at += (len - WINDOW) as u64;
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread")]
async fn no_uploaded_image_survives_in_the_pipelines_memory() {
    let openai = MockServer::start().await;
    let gemini = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/images/edits"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_ok_body(&output_png())))
        .mount(&openai)
        .await;
    // Gemini fails: the provider-error path must wipe as well as the success path.
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-2.5-flash-image:generateContent",
        ))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_string("{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\"}}"),
        )
        .mount(&gemini)
        .await;
    let mut env = env_for(&openai.uri(), &gemini.uri());
    env.insert("TRACELESS_LISTEN".into(), "127.0.0.1:0".into());
    let mut pipeline = PipelineProcess::spawn(&env);
    let addr = pipeline.wait_ready(Duration::from_secs(10));

    // Random pixels do not compress: each PNG is over 64 KiB of unpredictable bytes.
    let images: Vec<Vec<u8>> = (0..6).map(|_| random_png(160, 160)).collect();
    let client = http_client();
    for (i, image) in images.iter().enumerate() {
        assert!(image.len() >= 64 * 1024);
        let (provider, age, expected) = match i % 3 {
            0 => ("openai", "true", 200),
            1 => ("gemini", "true", 502),
            _ => ("openai", "false", 403),
        };
        let form = Form::new()
            .text("age_confirmed", age)
            .text("provider", provider)
            .text("prompt", "keep nothing")
            .file("image", "p.png", "image/png", image);
        let response = client
            .post(format!("http://{addr}/v1/generations"))
            .header("content-type", Form::content_type())
            .body(form.body())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "request {i}");
        response.bytes().await.unwrap();
    }

    let mut needles = Vec::new();
    for (i, image) in images.iter().enumerate() {
        needles.push((format!("image {i} raw"), image.clone()));
        for shift in 0..3 {
            needles.push((
                format!("image {i} base64+{shift}"),
                b64(&image[shift..]).into_bytes(),
            ));
        }
    }
    let windows = Windows::new(needles);
    // A self-check of the scanner: it must find an image in memory that holds one.
    let mut own = Vec::new();
    windows.find(&images[2], 0, &mut own);
    assert!(
        !own.is_empty(),
        "the scanner does not find what it looks for"
    );

    let pid = pipeline.pid();
    let mut hits = Vec::new();
    let clean = poll_until(Duration::from_secs(15), || {
        hits = scan_process(pid, &windows);
        std::future::ready(hits.is_empty())
    })
    .await;
    assert!(
        clean,
        "image data still in the pipeline's memory: {hits:#?}"
    );

    let log = pipeline.stderr();
    assert!(
        !log.contains("keep nothing") && !log.contains(OPENAI_KEY) && !log.contains(GEMINI_KEY),
        "{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("route=/v1/generations"))
            .count(),
        images.len(),
        "{log}"
    );
}
