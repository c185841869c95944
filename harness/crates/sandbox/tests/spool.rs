//! The filesystem monitor keeps what it reads in the run's spool: a file that held a retired
//! request's image when it was written, and was deleted before the end of the run, is still
//! found by the end-of-run sweep (the live scan at write time could not know that needle).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use traceless_sandbox::events::{EventKind, EventLog};
use traceless_sandbox::filesystem::FilesystemMonitor;
use traceless_sandbox::spool::Spool;
use traceless_scan::scan::{NeedleId, Scanner, Subject};

fn image_of(request: u32) -> NeedleId {
    NeedleId {
        request,
        subject: Subject::Image,
    }
}

fn blob(seed: u8) -> Vec<u8> {
    (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 ^ seed)
        .collect()
}

#[test]
fn a_file_deleted_before_the_end_is_swept_from_the_spool_with_retired_needles() {
    let root = tempfile::TempDir::new().unwrap();
    let mut scanner = Scanner::new();
    scanner.add_blob(image_of(1), &blob(1));
    scanner.add_blob(image_of(2), &blob(2));
    scanner.retire_before(2).unwrap();
    let scanner = Arc::new(RwLock::new(scanner));
    let log = EventLog::new();
    let spool = Arc::new(Spool::default());
    let monitor = FilesystemMonitor::start(
        vec![root.path().to_path_buf()],
        Vec::new(),
        scanner.clone(),
        log.clone(),
        spool.clone(),
    );
    let kept = root.path().join("kept.bin");
    let mut both = blob(1);
    both.extend(blob(2));
    std::fs::write(&kept, &both).unwrap();
    // The monitor read it once it saw the write closed: its live scan found request 2 only.
    let deadline = Instant::now() + Duration::from_secs(20);
    let live_requests = loop {
        let seen: Vec<u32> = log.with_events(|events| {
            events
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::FileWritten { hits, .. } if !hits.is_empty() => {
                        Some(hits.iter().map(|h| h.needle.request).collect::<Vec<_>>())
                    }
                    _ => None,
                })
                .flatten()
                .collect()
        });
        if !seen.is_empty() {
            break seen;
        }
        assert!(Instant::now() < deadline, "the monitor never read {kept:?}");
        std::thread::yield_now();
    };
    assert!(live_requests.iter().all(|r| *r == 2), "{live_requests:?}");
    std::fs::remove_file(&kept).unwrap();
    monitor.finish();

    let swept = log
        .with_events(|known| spool.sweep(&scanner.read().unwrap(), known))
        .unwrap();
    assert!(swept.incomplete.is_empty(), "{:?}", swept.incomplete);
    let found: Vec<_> = swept
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FileWritten { path, hits, .. } => Some((path.clone(), hits.clone())),
            _ => None,
        })
        .collect();
    let [(path, hits)] = found.as_slice() else {
        panic!("{found:?}")
    };
    assert_eq!(path.file_name(), kept.file_name());
    assert!(
        !hits.is_empty() && hits.iter().all(|h| h.needle == image_of(1)),
        "{hits:?}"
    );
    let covered: u64 = hits.iter().map(|h| h.len).sum();
    assert!(covered >= 8000, "{hits:?}");
}

/// The harness's own unnamed temp files (the spool, the retired needles: O_TMPFILE in the shared
/// temp folder) are not a file the pipeline "wrote and removed". inotify names them `#<inode>`;
/// before this was understood, the monitor reported them as suspected disk persistence.
#[test]
fn the_harness_s_own_unnamed_temp_files_are_not_reported() {
    let root = tempfile::TempDir::new().unwrap();
    let log = EventLog::new();
    let monitor = FilesystemMonitor::start(
        vec![root.path().to_path_buf()],
        Vec::new(),
        Arc::new(RwLock::new(Scanner::new())),
        log.clone(),
        Arc::new(Spool::default()),
    );
    {
        use std::io::Write as _;
        let mut unnamed = tempfile::tempfile_in(root.path()).unwrap();
        unnamed.write_all(&blob(3)).unwrap();
    }
    // inotify delivers in order: once a file written afterwards is reported, so was the other.
    let after = root.path().join("after.txt");
    std::fs::write(&after, b"written after the unnamed file closed").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = |log: &EventLog| {
        log.snapshot()
            .iter()
            .any(|e| matches!(&e.kind, EventKind::FileWritten { path, .. } if path.ends_with("after.txt")))
    };
    while !seen(&log) {
        assert!(Instant::now() < deadline, "after.txt was never reported");
        std::thread::yield_now();
    }
    monitor.finish();
    let vanished: Vec<_> = log
        .snapshot()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::FileVanished { .. }))
        .collect();
    assert!(vanished.is_empty(), "{vanished:?}");
}
