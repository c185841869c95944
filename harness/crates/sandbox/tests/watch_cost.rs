//! Watching a root that holds many files (/tmp on a busy machine: a build's target folder) costs
//! the harness a few bytes a file, not a copy of every path; and the end-of-run sweep still
//! reports exactly what changed. (A map keyed by the paths cost 13 MB for these 20,000 files.) Alone in its binary so the memory measure is its own.

mod common;

use std::sync::{Arc, RwLock};

use common::peak_rss_kib;
use traceless_sandbox::events::{EventKind, EventLog};
use traceless_sandbox::filesystem::FilesystemMonitor;
use traceless_scan::scan::Scanner;

#[test]
fn twenty_thousand_files_under_a_root_cost_the_monitor_under_four_megabytes() {
    const FOLDERS: usize = 200;
    const PER_FOLDER: usize = 100;
    let root = tempfile::TempDir::new().unwrap();
    for d in 0..FOLDERS {
        let dir = root.path().join(format!("deps-{d:04}/incremental"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..PER_FOLDER {
            std::fs::write(
                dir.join(format!("object-file-with-a-long-name-{f:03}.rmeta")),
                b"x",
            )
            .unwrap();
        }
    }
    let changed = root
        .path()
        .join("deps-0007/incremental/object-file-with-a-long-name-042.rmeta");
    let log = EventLog::new();
    let before = peak_rss_kib();
    let monitor = FilesystemMonitor::start(
        vec![root.path().to_path_buf()],
        Vec::new(),
        Arc::new(RwLock::new(Scanner::new())),
        log.clone(),
        Arc::new(traceless_sandbox::spool::Spool::default()),
    );
    std::fs::write(&changed, b"written during the run").unwrap();
    monitor.finish();
    let growth_kib = peak_rss_kib().saturating_sub(before);
    eprintln!(
        "peak RSS growth watching {} files: {growth_kib} KiB",
        FOLDERS * PER_FOLDER
    );
    let written: Vec<_> = log
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::FileWritten { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert!(
        !written.is_empty()
            && written
                .iter()
                .all(|p| *p == changed.canonicalize().unwrap()),
        "expected reports of the changed file only, got {} paths: {:?}",
        written.len(),
        written.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        growth_kib < 4 * 1024,
        "watching {} files grew the harness by {growth_kib} KiB",
        FOLDERS * PER_FOLDER
    );
}
