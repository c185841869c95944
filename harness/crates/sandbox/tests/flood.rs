//! A pipeline that prints 100 MB: the harness keeps reading, keeps only a bounded tail, and still
//! finds a needle at the very end of the stream. Alone in its binary so the memory measure is its own.
//!
//! Meanwhile another program writes large files in /tmp, as a parallel build does on a loaded
//! machine: the filesystem monitor watches /tmp, and must scan them in bounded memory too (it once
//! read each whole, and the harness grew by their size or by chance not at all). The measure also
//! holds the monitor's snapshot of /tmp, a few bytes a file (`watch_cost.rs`): with it keyed by
//! paths, a /tmp holding a fresh clone's build (60,000 files) pushed this test over its limit.

mod common;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use common::peak_rss_kib;
use traceless_sandbox::events::{EventKind, EventLog};
use traceless_sandbox::supervisor::{PipelineSpec, Supervisor};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_of_stdout_neither_stall_nor_grow_the_harness() {
    const FLOOD: u64 = 100_000_000;
    let token = format!("tl-flood-{}", std::process::id());
    let mut scanner = Scanner::new();
    scanner.add_token(
        NeedleId {
            request: 1,
            subject: Subject::Output,
        },
        &token,
    );
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::TempDir::new().unwrap()).collect();
    let spec = PipelineSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            format!("head -c {FLOOD} /dev/zero | tr '\\0' 'a'; echo; echo {token}"),
        ],
        workdir: dirs[0].path().into(),
        tmpdir: dirs[1].path().into(),
        home: dirs[2].path().into(),
        trace_syscalls: false,
        pid_namespace: true,
        ..Default::default()
    };
    let log = EventLog::new();
    let before = peak_rss_kib();
    let sup = Supervisor::start(spec, Arc::new(RwLock::new(scanner)), log.clone())
        .await
        .unwrap();
    // Another program's large text files (long base64-like runs, the scanner's costliest input)
    // in /tmp, written while the flood runs; the final sweep scans each of them in any case.
    let elsewhere = tempfile::TempDir::new().unwrap();
    let writer = {
        let dir = elsewhere.path().to_path_buf();
        std::thread::spawn(move || {
            let piece = vec![b'q'; 1 << 20];
            for i in 0..3 {
                let mut file = std::fs::File::create(dir.join(format!("build-{i}.tmp"))).unwrap();
                for _ in 0..40 {
                    std::io::Write::write_all(&mut file, &piece).unwrap();
                }
            }
        })
    };
    let until = Instant::now() + Duration::from_secs(120);
    while sup.exit_status().is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        sup.exit_status().is_some(),
        "the flooding child did not finish: the harness stalled it"
    );
    writer.join().unwrap();
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0));
    let growth_kib = peak_rss_kib().saturating_sub(before);
    eprintln!("peak RSS growth while reading {FLOOD} bytes: {growth_kib} KiB");
    assert!(
        growth_kib < 32 * 1024,
        "the harness grew by {growth_kib} KiB"
    );
    let outputs: Vec<u64> = log
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Output {
                stream,
                offset,
                hits,
                ..
            } if stream == "stdout" && !hits.is_empty() => Some(offset),
            _ => None,
        })
        .collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        outputs[0] > FLOOD - 128 * 1024,
        "hit chunk at {}",
        outputs[0]
    );
}
