//! The filesystem monitor: every file the pipeline writes is read back at once and scanned.
//!
//! Four sources feed one worker thread: inotify on the writable roots (a close after writing, a
//! create, a rename into place), strace's opens for writing anywhere else (whose parent directory is
//! then watched too), strace's closes of every file the tree wrote, inside the roots too (inotify
//! watches a fresh sub-folder only after it exists, so a write right after `mkdir` may come
//! before the watch), and a walkdir snapshot of the roots before and after the run that catches what
//! the live watch missed. A file written and gone before it could be read is reported as vanished.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::SystemTime;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind as NotifyKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use traceless_scan::scan::{Hit, ImageMatch, Scanner, StreamState};
use walkdir::WalkDir;

use crate::events::{EventKind, EventLog, MonitorKind, MonitorStatus};
use crate::spool::Spool;
use crate::stopped::StoppedEarly;

/// Images up to this size are read whole and decoded; larger ones, and every other file, are
/// scanned in chunks.
const IMAGE_LIMIT: u64 = 64 * 1024 * 1024;
const READ_CHUNK: usize = 1024 * 1024;

/// Paths that are never files written by the pipeline.
const NOT_FILES: [&str; 3] = ["/proc", "/sys", "/dev"];

enum Msg {
    Notify(notify::Result<notify::Event>),
    SyscallWrite {
        path: PathBuf,
        pid: u32,
    },
    /// A file the tree opened for writing was closed: read it now, wherever it is (inotify's
    /// watch on a fresh sub-folder may come after the write).
    SyscallClose {
        path: PathBuf,
        pid: u32,
    },
    Finish(Sender<()>),
}

/// A handle on the monitor's worker.
pub struct FilesystemMonitor {
    tx: Sender<Msg>,
    worker: Option<JoinHandle<()>>,
    status: MonitorStatus,
    /// Why the worker stopped watching early (a panic, an inotify error).
    stopped: StoppedEarly,
    /// Whether inotify's queue overflowed; see [`FilesystemMonitor::overflowed`].
    overflowed: StoppedEarly,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Trigger {
    Create,
    Closed,
    Syscall,
    Sweep,
}

/// A file's size and modification time.
type Stamp = (u64, SystemTime);

/// Every file the roots held when the run began: a fingerprint of its path, its size and mtime,
/// sorted by fingerprint. The roots include /tmp, which on a busy machine holds tens of thousands
/// of files (a build's target folder): a map keyed by the paths themselves cost about 200 bytes a
/// file, twice during the sweep (12 MB for the 20,000 files of `tests/watch_cost.rs`, 39 MB for
/// 60,000); this costs 32.
/// Two paths sharing 16 bytes of SHA-256 by chance (about one in 2^89 for a million files) would
/// also need the same stamp to hide a change.
#[derive(Default)]
struct Snapshot(Vec<SnapshotEntry>);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SnapshotEntry {
    key: [u8; 16],
    len: u64,
    /// Nanoseconds since the epoch (u64 lasts until 2554).
    mtime_ns: u64,
}

impl SnapshotEntry {
    fn new(path: &Path, (len, mtime): Stamp) -> Self {
        let digest = Sha256::digest(path.as_os_str().as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let mtime_ns = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        SnapshotEntry { key, len, mtime_ns }
    }
}

impl Snapshot {
    fn from_entries(mut entries: Vec<SnapshotEntry>) -> Self {
        entries.sort_unstable();
        entries.shrink_to_fit();
        Snapshot(entries)
    }

    /// Whether `path` was there with this stamp.
    fn holds(&self, path: &Path, stamp: Stamp) -> bool {
        let entry = SnapshotEntry::new(path, stamp);
        self.0.binary_search(&entry).is_ok()
    }
}

#[derive(Debug, Default)]
struct Tracked {
    /// (size, mtime) of the content last read and reported.
    reported: Option<Stamp>,
    /// Data was written since the last read.
    dirty: bool,
    vanished: bool,
    pid: Option<u32>,
}

struct Worker {
    stopped: StoppedEarly,
    overflowed: StoppedEarly,
    scanner: Arc<RwLock<Scanner>>,
    /// Every file's content as read, for the end-of-run sweep.
    spool: Arc<Spool>,
    log: EventLog,
    roots: Vec<PathBuf>,
    ignore: Vec<PathBuf>,
    before: Snapshot,
    watcher: Option<RecommendedWatcher>,
    extra_dirs: HashSet<PathBuf>,
    tracked: HashMap<PathBuf, Tracked>,
}

impl FilesystemMonitor {
    /// Snapshots and watches `roots` (missing ones are skipped); `ignore` lists the harness's own
    /// paths. What it reads of each file goes to `spool` too.
    pub fn start(
        roots: Vec<PathBuf>,
        ignore: Vec<PathBuf>,
        scanner: Arc<RwLock<Scanner>>,
        log: EventLog,
        spool: Arc<Spool>,
    ) -> Self {
        let roots: Vec<PathBuf> = dedup_roots(
            roots
                .into_iter()
                .filter_map(|r| r.canonicalize().ok())
                .collect(),
        );
        let ignore: Vec<PathBuf> = ignore
            .into_iter()
            .map(|p| p.canonicalize().unwrap_or(p))
            .collect();
        let (tx, rx) = mpsc::channel();
        let notify_tx = tx.clone();
        let mut problems = Vec::new();
        let watcher = match RecommendedWatcher::new(
            move |res| {
                let _ = notify_tx.send(Msg::Notify(res));
            },
            notify::Config::default(),
        ) {
            Ok(mut w) => {
                for root in &roots {
                    watch_tree(&mut w, root, &mut problems);
                }
                Some(w)
            }
            Err(e) => {
                problems.push(format!(
                    "inotify unavailable: {e}; only before/after snapshots are compared"
                ));
                None
            }
        };
        let stopped = StoppedEarly::default();
        let overflowed = StoppedEarly::default();
        let mut worker = Worker {
            stopped: stopped.clone(),
            overflowed: overflowed.clone(),
            scanner,
            spool,
            log,
            before: Snapshot::default(),
            roots,
            ignore,
            watcher,
            extra_dirs: HashSet::new(),
            tracked: HashMap::new(),
        };
        let mut entries = Vec::new();
        worker.walk_roots(|path, stamp| entries.push(SnapshotEntry::new(&path, stamp)));
        worker.before = Snapshot::from_entries(entries);
        let handle = std::thread::Builder::new()
            .name("traceless-fs".into())
            .spawn(move || worker.run(rx))
            .inspect_err(|e| problems.push(format!("its worker could not start: {e}")))
            .ok();
        let status = if problems.is_empty() {
            MonitorStatus::active(MonitorKind::Filesystem)
        } else {
            MonitorStatus::degraded(MonitorKind::Filesystem, problems.join("; "))
        };
        FilesystemMonitor {
            tx,
            worker: handle,
            status,
            stopped,
            overflowed,
        }
    }

    pub fn status(&self) -> MonitorStatus {
        self.status.clone()
    }

    /// Where the worker records why it stopped watching early; the supervisor reads it.
    pub fn stopped(&self) -> StoppedEarly {
        self.stopped.clone()
    }

    /// Records whether inotify's queue overflowed. Events were lost: a file still there is read by
    /// the final sweep, but one written and removed meanwhile was seen only if strace reported its
    /// close. On a busy machine (a CI runner's shared /tmp) the queue does overflow, so the
    /// supervisor degrades the monitor only when strace did not trace the run.
    pub fn overflowed(&self) -> StoppedEarly {
        self.overflowed.clone()
    }

    /// A sender strace's reader uses to report opens for writing.
    pub fn syscall_sink(&self) -> SyscallSink {
        SyscallSink {
            tx: self.tx.clone(),
        }
    }

    /// Handles everything queued, sweeps the roots against the first snapshot, and stops the worker.
    pub fn finish(mut self) {
        let (done_tx, done_rx) = mpsc::channel();
        let swept = self.tx.send(Msg::Finish(done_tx)).is_ok() && done_rx.recv().is_ok();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
        if !swept {
            self.stopped
                .fail("the filesystem monitor's worker ended before its final sweep");
        }
    }
}

/// Where opens for writing seen by strace go.
#[derive(Clone)]
pub struct SyscallSink {
    tx: Sender<Msg>,
}

impl SyscallSink {
    pub fn opened_for_write(&self, path: PathBuf, pid: u32) {
        let _ = self.tx.send(Msg::SyscallWrite { path, pid });
    }

    pub fn closed(&self, path: PathBuf, pid: u32) {
        let _ = self.tx.send(Msg::SyscallClose { path, pid });
    }
}

/// Watches `dir` and every folder under it. A folder the harness may not read cannot be watched;
/// it is skipped when the pipeline, which runs with the harness's credentials, could not create
/// anything in it either (a rootless audit meets other users' private folders in /tmp), and is a
/// blind spot the monitor reports otherwise. A folder removed while its watch is set up (another
/// program's temp folder in /tmp) held nothing left to watch, and is skipped too: should it come
/// back, its parent's watch sees it created.
fn watch_tree(w: &mut RecommendedWatcher, dir: &Path, problems: &mut Vec<String>) {
    let denied = |e: &notify::Error| matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied);
    let vanished = |e: &notify::Error| match &e.kind {
        notify::ErrorKind::PathNotFound => true,
        notify::ErrorKind::Io(io) => io.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    };
    match w.watch(dir, RecursiveMode::Recursive) {
        Ok(()) => return,
        Err(e) if !denied(&e) && !vanished(&e) => {
            problems.push(format!("cannot watch {}: {e}", dir.display()));
            return;
        }
        // Some folder below is closed to us or went away meanwhile, and notify stops at the
        // first: go down level by level (new folders are then watched as they appear, see
        // `Worker::on_notify`).
        Err(_) => {}
    }
    // `dir` itself gone: no write can reach it, so `pipeline_may_write` says no.
    if let Err(e) = w.watch(dir, RecursiveMode::NonRecursive) {
        if pipeline_may_write(dir) {
            problems.push(format!("cannot watch {}: {e}", dir.display()));
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            watch_tree(w, &entry.path(), problems);
        }
    }
}

/// Whether a process with the harness's credentials (the pipeline's) could create a file in `dir`.
fn pipeline_may_write(dir: &Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_ok()
}

fn dedup_roots(mut roots: Vec<PathBuf>) -> Vec<PathBuf> {
    roots.sort();
    roots.dedup();
    let all = roots.clone();
    roots.retain(|r| !all.iter().any(|o| o != r && r.starts_with(o)));
    roots
}

fn looks_like_image(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG")
        || head.starts_with(b"\xff\xd8\xff")
        || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP")
        || head.starts_with(b"GIF8")
}

/// Reads a file through one open descriptor (its content stays readable even if unlinked meanwhile) and scans it.
///
/// Only an image (by its magic bytes) is read whole, to be decoded; anything else is scanned in
/// [`READ_CHUNK`] pieces. The watched roots include /tmp, which every program on the machine
/// writes: a build's large temporary file must cost the harness one piece, not its size.
/// Returns the bytes read, the hits, and an image's match by perceptual hash.
pub fn scan_file(
    file: &mut File,
    scanner: &Scanner,
) -> io::Result<(u64, Vec<Hit>, Option<ImageMatch>)> {
    scan_file_copying(file, scanner, |_| {})
}

/// [`scan_file`], handing every byte read to `copy` as well.
pub fn scan_file_copying(
    file: &mut File,
    scanner: &Scanner,
    mut copy: impl FnMut(&[u8]),
) -> io::Result<(u64, Vec<Hit>, Option<ImageMatch>)> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata()?.len();
    let mut head = [0u8; 12];
    let head_len = file.read_at(&mut head, 0)?;
    if size <= IMAGE_LIMIT && looks_like_image(&head[..head_len]) {
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes)?;
        copy(&bytes);
        let hits = scanner.scan(&bytes);
        let image_match = if looks_like_image(&bytes) {
            scanner.match_image(&bytes)
        } else {
            None
        };
        return Ok((bytes.len() as u64, hits, image_match));
    }
    let mut state = StreamState::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut hits = Vec::new();
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        copy(&buf[..n]);
        hits.extend(scanner.scan_chunk(&mut state, &buf[..n]));
        total += n as u64;
    }
    Ok((total, hits, None))
}

impl Worker {
    fn run(mut self, rx: Receiver<Msg>) {
        let _guard = self.stopped.on_panic("the filesystem monitor's worker");
        while let Ok(msg) = rx.recv() {
            let Msg::Finish(done) = msg else {
                self.handle(msg);
                continue;
            };
            // what is still queued happened before the end
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg);
            }
            self.sweep();
            self.watcher = None;
            let _ = done.send(());
            return;
        }
    }

    /// One message other than the end.
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Notify(Ok(event)) => self.on_notify(event),
            Msg::Notify(Err(e)) => self.stopped.fail(format!(
                "inotify reported an error ({e}): files written and removed meanwhile may have been missed"
            )),
            Msg::SyscallWrite { path, pid } => self.on_syscall_write(path, pid),
            Msg::SyscallClose { path, pid } => self.on_syscall_close(path, pid),
            Msg::Finish(_) => {}
        }
    }

    fn ignored(&self, path: &Path) -> bool {
        let s = path.as_os_str().to_string_lossy();
        if s.starts_with("pipe:") || s.starts_with("socket:") || s.starts_with("anon_inode:") {
            return true;
        }
        if path.starts_with("/dev/shm") {
            return self.ignore.iter().any(|i| path.starts_with(i));
        }
        NOT_FILES.iter().any(|n| path.starts_with(n))
            || self.ignore.iter().any(|i| path.starts_with(i))
    }

    fn in_roots(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
    }

    fn on_notify(&mut self, mut event: notify::Event) {
        // An unnamed temp file (O_TMPFILE) shows in inotify as `#<inode>` in its folder: it has
        // no path to read it by, and inotify does not say whose it is. The harness's own spool and
        // retired needles are such files in the shared temp folder; the pipeline's are still seen,
        // with their pid, through the syscall monitor's opens and closes.
        event.paths.retain(|p| !unnamed_tmpfile(p));
        if event.need_rescan() {
            // No sweep now: on a busy machine a walk of /tmp takes seconds, during which the
            // worker would read nothing strace reports closed. Files still there are read by the
            // final sweep, those removed meanwhile at their close.
            self.overflowed.fail(
                "inotify's queue overflowed: files written and removed meanwhile may have been missed",
            );
        }
        match event.kind {
            NotifyKind::Create(CreateKind::Folder) => {
                // notify watches new folders under a recursive watch itself, but not under a root
                // that `watch_tree` had to watch level by level.
                if let Some(w) = self.watcher.as_mut() {
                    for p in event
                        .paths
                        .iter()
                        .filter(|p| !self.ignore.iter().any(|i| p.starts_with(i)))
                    {
                        let _ = w.watch(p, RecursiveMode::Recursive);
                    }
                }
            }
            NotifyKind::Create(_) => {
                for p in &event.paths {
                    self.inspect(p, Trigger::Create, None);
                }
            }
            NotifyKind::Modify(ModifyKind::Data(_)) | NotifyKind::Modify(ModifyKind::Any) => {
                for p in &event.paths {
                    if !self.ignored(p) {
                        self.tracked.entry(p.clone()).or_default().dirty = true;
                    }
                }
            }
            NotifyKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                for p in &event.paths {
                    self.inspect(p, Trigger::Closed, None);
                }
            }
            NotifyKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let Some(to) = event.paths.get(1) {
                    self.inspect(to, Trigger::Closed, None);
                }
            }
            NotifyKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for p in &event.paths {
                    self.inspect(p, Trigger::Closed, None);
                }
            }
            NotifyKind::Remove(_) => {
                for p in &event.paths {
                    let Some(t) = self.tracked.get_mut(p) else {
                        continue;
                    };
                    if t.dirty && !t.vanished {
                        t.vanished = true;
                        let pid = t.pid;
                        let size = t.reported.map(|(s, _)| s);
                        self.log.record(
                            MonitorKind::Filesystem,
                            pid,
                            EventKind::FileVanished {
                                path: p.clone(),
                                size,
                            },
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn on_syscall_write(&mut self, path: PathBuf, pid: u32) {
        if self.ignored(&path) || self.in_roots(&path) {
            return;
        }
        // watch the directory so the close after writing is seen too
        if let (Some(dir), Some(w)) = (path.parent(), self.watcher.as_mut())
            && !self.extra_dirs.contains(dir)
            && w.watch(dir, RecursiveMode::NonRecursive).is_ok()
        {
            self.extra_dirs.insert(dir.to_path_buf());
        }
        self.tracked.entry(path.clone()).or_default().dirty = true;
        self.inspect(&path, Trigger::Syscall, Some(pid));
    }

    fn on_syscall_close(&mut self, path: PathBuf, pid: u32) {
        if self.ignored(&path) {
            return;
        }
        self.tracked.entry(path.clone()).or_default().dirty = true;
        self.inspect(&path, Trigger::Closed, Some(pid));
    }

    fn inspect(&mut self, path: &Path, trigger: Trigger, pid: Option<u32>) {
        if self.ignored(path) {
            return;
        }
        let opened = File::open(path);
        let tracked = self.tracked.entry(path.to_path_buf()).or_default();
        if pid.is_some() {
            tracked.pid = pid;
        }
        let pid = tracked.pid;
        let mut file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !tracked.vanished && (trigger != Trigger::Sweep || tracked.dirty) {
                    tracked.vanished = true;
                    let size = tracked.reported.map(|(s, _)| s);
                    self.log.record(
                        MonitorKind::Filesystem,
                        pid,
                        EventKind::FileVanished {
                            path: path.to_path_buf(),
                            size,
                        },
                    );
                }
                return;
            }
            Err(_) => return,
        };
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() {
            return;
        }
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        if tracked.reported == Some(stamp) {
            tracked.dirty = false;
            return;
        }
        if meta.len() == 0 && matches!(trigger, Trigger::Create | Trigger::Syscall) {
            // just created: its content comes with the close after writing
            tracked.dirty = true;
            return;
        }
        let scanner = self.scanner.read().unwrap_or_else(|e| e.into_inner());
        let mut copy = self
            .spool
            .file(path.to_path_buf(), pid, self.log.since_start_ms());
        let Ok((size, hits, image_match)) =
            scan_file_copying(&mut file, &scanner, |bytes| copy.push(bytes))
        else {
            return;
        };
        drop(scanner);
        tracked.reported = Some(stamp);
        tracked.dirty = false;
        tracked.vanished = false;
        self.log.record(
            MonitorKind::Filesystem,
            pid,
            EventKind::FileWritten {
                path: path.to_path_buf(),
                size,
                hits,
                image_match,
            },
        );
    }

    /// Calls `found` with every file under the roots the harness does not own, and its stamp.
    fn walk_roots(&self, mut found: impl FnMut(PathBuf, Stamp)) {
        for root in &self.roots {
            for entry in WalkDir::new(root)
                .follow_links(false)
                .into_iter()
                .filter_map(Result::ok)
            {
                if !entry.file_type().is_file() || self.ignored(entry.path()) {
                    continue;
                }
                if let Ok(meta) = entry.metadata() {
                    let stamp = (
                        meta.len(),
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    );
                    found(entry.into_path(), stamp);
                }
            }
        }
    }

    /// Compares the roots with the first snapshot and re-reads every file strace saw opened for writing.
    fn sweep(&mut self) {
        let mut changed: Vec<PathBuf> = Vec::new();
        self.walk_roots(|path, stamp| {
            if !self.before.holds(&path, stamp)
                && self.tracked.get(&path).and_then(|t| t.reported) != Some(stamp)
            {
                changed.push(path);
            }
        });
        changed.sort();
        for path in changed {
            self.inspect(&path, Trigger::Sweep, None);
        }
        let outside: Vec<PathBuf> = self
            .tracked
            .keys()
            .filter(|p| !self.in_roots(p))
            .cloned()
            .collect();
        for path in outside {
            self.inspect(&path, Trigger::Sweep, None);
        }
    }
}

/// The name the kernel gives a file opened with O_TMPFILE and never linked: `#` and its inode.
fn unnamed_tmpfile(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix('#'))
        .is_some_and(|ino| !ino.is_empty() && ino.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kernels_unnamed_tmpfile_names_are_unnamed() {
        assert!(unnamed_tmpfile(Path::new("/tmp/#10010688")));
        assert!(!unnamed_tmpfile(Path::new("/tmp/#notes")));
        assert!(!unnamed_tmpfile(Path::new("/tmp/#")));
        assert!(!unnamed_tmpfile(Path::new("/tmp/a#1")));
    }

    #[test]
    fn nested_roots_collapse_into_their_parent() {
        let roots = dedup_roots(vec![
            "/tmp/a".into(),
            "/tmp".into(),
            "/var/tmp".into(),
            "/tmp".into(),
        ]);
        assert_eq!(
            roots,
            vec![PathBuf::from("/tmp"), PathBuf::from("/var/tmp")]
        );
    }

    /// What `watch_tree` meets when a folder it listed is removed before its watch is set up.
    #[test]
    fn a_folder_gone_before_its_watch_is_no_blind_spot() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let mut w = RecommendedWatcher::new(|_| {}, notify::Config::default()).unwrap();
        let mut problems = Vec::new();
        watch_tree(&mut w, &gone, &mut problems);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn image_magic_is_recognised() {
        assert!(looks_like_image(b"\x89PNG\r\n\x1a\n"));
        assert!(looks_like_image(b"\xff\xd8\xff\xe0"));
        assert!(looks_like_image(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!looks_like_image(b"hello world"));
    }

    fn started_on(dir: &Path) -> FilesystemMonitor {
        FilesystemMonitor::start(
            vec![dir.to_path_buf()],
            Vec::new(),
            Arc::new(RwLock::new(Scanner::new())),
            EventLog::new(),
            Arc::new(Spool::default()),
        )
    }

    #[test]
    fn a_quiet_run_leaves_no_reason_to_distrust_the_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = started_on(dir.path());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let stopped = monitor.stopped();
        monitor.finish();
        assert_eq!(stopped.failure(), None);
    }

    /// An inotify error (a read error, the watch limit) means events were lost: the monitor says so
    /// instead of vouching for what it never saw.
    #[test]
    fn an_inotify_error_is_a_reason_to_distrust_the_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = started_on(dir.path());
        let limit = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        monitor.tx.send(Msg::Notify(Err(limit))).unwrap();
        let stopped = monitor.stopped();
        monitor.finish();
        let why = stopped.failure().expect("a reason recorded");
        assert!(why.contains("inotify reported an error"), "{why}");
    }

    /// A queue overflow is recorded for the supervisor to weigh (see
    /// `cover_inotify_overflow`), not as a reason the worker stopped watching.
    #[test]
    fn an_overflow_is_recorded_for_the_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = started_on(dir.path());
        let overflow = notify::Event::new(NotifyKind::Other).set_flag(notify::event::Flag::Rescan);
        monitor.tx.send(Msg::Notify(Ok(overflow))).unwrap();
        let (stopped, overflowed) = (monitor.stopped(), monitor.overflowed());
        monitor.finish();
        let why = overflowed.failure().expect("the overflow recorded");
        assert!(why.contains("queue overflowed"), "{why}");
        assert_eq!(stopped.failure(), None);
    }
}
