//! The supervisor and its monitors against small shell and Python programs standing in for a pipeline:
//! each monitor must fire on what it is meant to see, and stay quiet otherwise.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use traceless_sandbox::events::{Event, EventKind, EventLog, MonitorKind, MonitorState};
use traceless_sandbox::proctree;
use traceless_sandbox::supervisor::{OrphanReason, PipelineSpec, Supervisor};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

/// A fresh needle no other test (or process) holds.
fn needle(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("tl-{tag}-{}-{nanos:08x}", std::process::id())
}

fn scanner_for(token: &str) -> Arc<RwLock<Scanner>> {
    let mut scanner = Scanner::new();
    scanner.add_token(
        NeedleId {
            request: 1,
            subject: Subject::Prompt,
        },
        token,
    );
    Arc::new(RwLock::new(scanner))
}

fn python() -> String {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

/// Private directories for one run.
struct Dirs {
    work: TempDir,
    tmp: TempDir,
    home: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            work: TempDir::new().unwrap(),
            tmp: TempDir::new().unwrap(),
            home: TempDir::new().unwrap(),
        }
    }

    fn spec(
        &self,
        command: Vec<String>,
        env: Vec<(String, String)>,
        trace: bool,
        pid_ns: bool,
    ) -> PipelineSpec {
        PipelineSpec {
            command,
            env,
            workdir: self.work.path().to_path_buf(),
            tmpdir: self.tmp.path().to_path_buf(),
            home: self.home.path().to_path_buf(),
            watch_roots: Vec::new(),
            trace_syscalls: trace,
            pid_namespace: pid_ns,
            ignore_paths: Vec::new(),
            unwatched_files: false,
        }
    }
}

fn py(script: &str) -> Vec<String> {
    vec![python(), "-c".into(), script.into()]
}

/// Polls `cond` every few ms until it holds or `limit` passes.
async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

fn hits_in(events: &[Event]) -> Vec<&Event> {
    events
        .iter()
        .filter(|e| match &e.kind {
            EventKind::FileWritten { hits, .. }
            | EventKind::Output { hits, .. }
            | EventKind::MemoryHits { hits, .. } => !hits.is_empty(),
            _ => false,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_written_then_deleted_in_tmpdir_is_caught() {
    let token = needle("fs");
    let dirs = Dirs::new();
    let log = EventLog::new();
    let script = "import os, time\n\
p = os.path.join(os.environ['TMPDIR'], 'brief.txt')\n\
open(p, 'w').write('data ' + os.environ['SECRET'] + ' data')\n\
time.sleep(0.001)\n\
os.unlink(p)\n";
    let spec = dirs.spec(
        py(script),
        vec![("SECRET".into(), token.clone())],
        true,
        true,
    );
    let sup = Supervisor::start(spec, scanner_for(&token), log.clone())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || sup.exit_status().is_some()).await,
        "the child ends"
    );
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0));

    let target = dirs.tmp.path().canonicalize().unwrap().join("brief.txt");
    let events = log.snapshot();
    let caught = events.iter().any(|e| match &e.kind {
        EventKind::FileWritten { path, hits, .. } => *path == target && !hits.is_empty(),
        EventKind::FileVanished { path, .. } => *path == target,
        _ => false,
    });
    assert!(
        caught,
        "no FileWritten-with-hits or FileVanished for {}: {events:#?}",
        target.display()
    );
    // strace saw the open, the write flags and the unlink
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::Open { path, flags, .. } if path.ends_with("brief.txt") && flags.contains("O_WRONLY"))), "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Unlink { path } if path.ends_with("brief.txt")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_outside_the_roots_is_caught_from_syscall_evidence() {
    let token = needle("out");
    let dirs = Dirs::new();
    // not under any watched root: only strace's record of the open leads the monitor there
    // (the target dir may itself sit under /tmp, a watched root, so use a system folder instead)
    let outside = tempfile::Builder::new()
        .prefix("traceless-outside-")
        .tempdir_in("/var/cache")
        .unwrap();
    let keep = outside.path().join("kept.bin");
    let gone = outside.path().join("gone.bin");
    let log = EventLog::new();
    let script = "import os, sys\n\
open(sys.argv[1], 'wb').write(b'xx' + os.environ['SECRET'].encode() + b'xx')\n\
open(sys.argv[2], 'wb').write(os.environ['SECRET'].encode())\n\
os.unlink(sys.argv[2])\n";
    let mut command = py(script);
    command.extend([
        keep.to_string_lossy().into_owned(),
        gone.to_string_lossy().into_owned(),
    ]);
    let spec = dirs.spec(command, vec![("SECRET".into(), token.clone())], true, false);
    let sup = Supervisor::start(spec, scanner_for(&token), log.clone())
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || sup.exit_status().is_some()).await);
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0), "{report:?}");

    let events = log.snapshot();
    let written = |p: &Path| {
        events.iter().any(|e| matches!(&e.kind, EventKind::FileWritten { path, hits, .. } if path == p && !hits.is_empty()))
    };
    let vanished = |p: &Path| {
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::FileVanished { path, .. } if path == p))
    };
    assert!(written(&keep), "kept file not scanned: {events:#?}");
    assert!(
        written(&gone) || vanished(&gone),
        "deleted file not reported: {events:#?}"
    );
    // the event names the writer
    let writer = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::FileWritten { path, .. } if *path == keep))
        .and_then(|e| e.pid);
    assert!(writer.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_recorded_with_address_and_result() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dirs = Dirs::new();
    let log = EventLog::new();
    let script = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}))\ns.sendall(b'hi')\ns.close()\n"
    );
    let sup = Supervisor::start(
        dirs.spec(py(&script), vec![], true, true),
        scanner_for(&needle("net")),
        log.clone(),
    )
    .await
    .unwrap();
    assert!(wait_until(Duration::from_secs(20), || sup.exit_status().is_some()).await);
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0));
    let want = format!("127.0.0.1:{port}");
    let events = log.snapshot();
    let connect = events
        .iter()
        .find(|e| matches!(&e.kind, EventKind::Connect { address, .. } if *address == want));
    let Some(Event {
        monitor,
        kind: EventKind::Connect { family, result, .. },
        pid,
        ..
    }) = connect
    else {
        panic!("no connect to {want}: {events:#?}");
    };
    assert_eq!(*monitor, MonitorKind::Egress);
    assert_eq!(family, "inet");
    assert_eq!(result, "0");
    assert!(pid.is_some());
    assert!(
        report
            .statuses
            .iter()
            .any(|s| s.monitor == MonitorKind::Syscall && s.state == MonitorState::Active)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_holding_a_needle_is_caught_and_clean_memory_is_not() {
    let token = needle("mem");
    let log = EventLog::new();
    let scanner = scanner_for(&token);
    // the holder builds the needle from an env var and keeps it as bytes; the other never sees it
    let hold = "import os, time\n\
kept = ('<' + os.environ['SECRET'] + '>').encode() * 3\n\
open(os.path.join(os.environ['TMPDIR'], 'ready'), 'w').close()\n\
time.sleep(60)\n";
    let clean = "import os, time\n\
kept = b'nothing to see' * 1000\n\
open(os.path.join(os.environ['TMPDIR'], 'ready'), 'w').close()\n\
time.sleep(60)\n";
    let holder_dirs = Dirs::new();
    let clean_dirs = Dirs::new();
    let holder = Supervisor::start(
        holder_dirs.spec(
            py(hold),
            vec![("SECRET".into(), token.clone())],
            false,
            true,
        ),
        scanner.clone(),
        log.clone(),
    )
    .await
    .unwrap();
    let quiet = Supervisor::start(
        clean_dirs.spec(py(clean), vec![], false, true),
        scanner.clone(),
        log.clone(),
    )
    .await
    .unwrap();
    let ready = |d: &Dirs| d.tmp.path().join("ready").exists();
    assert!(
        wait_until(Duration::from_secs(20), || ready(&holder_dirs)
            && ready(&clean_dirs))
        .await,
        "children ready"
    );

    let found = tokio::task::block_in_place(|| holder.scan_memory());
    let silent = tokio::task::block_in_place(|| quiet.scan_memory());
    let holder_pids = holder.pids();
    let _ = holder.stop(Duration::from_millis(200)).await;
    let _ = quiet.stop(Duration::from_millis(200)).await;

    assert!(!found.is_empty(), "needle held in memory not found");
    for e in &found {
        assert!(matches!(&e.kind, EventKind::MemoryHits { hits, .. } if !hits.is_empty()));
        assert!(holder_pids.contains(&e.pid.unwrap()));
    }
    assert!(
        silent.is_empty(),
        "hits in a process that never held the needle: {silent:#?}"
    );
    // the events are in the log too
    assert_eq!(
        log.snapshot()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::MemoryHits { .. }))
            .count(),
        found.len()
    );
}

/// Starts a child that daemonises (fork, setsid, fork) and checks the daemon is reported and killed.
async fn daemon_is_orphaned_and_killed(trace: bool, pid_ns: bool) {
    let dirs = Dirs::new();
    let log = EventLog::new();
    // (a multi-line literal: Python needs its indentation)
    let script = "import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(os.path.join(os.environ['TMPDIR'], 'daemon-up'), 'w').close()
        time.sleep(120)
    os._exit(0)
os.wait()
time.sleep(120)
";
    let sup = Supervisor::start(
        dirs.spec(py(script), vec![], trace, pid_ns),
        scanner_for(&needle("daemon")),
        log.clone(),
    )
    .await
    .unwrap();
    let up = dirs.tmp.path().join("daemon-up");
    assert!(
        wait_until(Duration::from_secs(20), || up.exists()).await,
        "daemon started"
    );
    let main = sup.main_pid().expect("main pid");
    // the intermediate exits at once; wait until only main and the daemon are left
    assert!(
        wait_until(Duration::from_secs(10), || sup.pids().len() == 2).await,
        "pids: {:?}",
        sup.pids()
    );
    let pids = sup.pids();
    let daemon = *pids.iter().find(|p| **p != main).unwrap();
    assert_eq!(
        proctree::cmdline(daemon).first().map(String::as_str),
        Some(python().as_str())
    );

    // While the main process still runs, the daemon already outlives the request that made it.
    let now: Vec<u32> = sup.orphans_now().iter().map(|o| o.pid).collect();
    assert_eq!(now, vec![daemon], "main {main} pids {pids:?}");
    let daemon_seen_ms = log.since_start_ms();
    let report = sup.stop(Duration::from_secs(2)).await;
    assert_eq!(
        report.orphans.iter().map(|o| o.pid).collect::<Vec<_>>(),
        vec![daemon],
        "main {main} pids {pids:?} {report:?}"
    );
    let orphan = &report.orphans[0];
    assert_eq!(
        orphan.argv.first().map(String::as_str),
        Some(python().as_str()),
        "orphan argv recorded: {orphan:?}"
    );
    // The daemon calls setsid before its second fork.
    assert_eq!(orphan.why, OrphanReason::LeftSession, "{orphan:?}");
    // It started before the harness saw it running, and was found at the stop, after that.
    let started = orphan.started_ms.expect("start time read from /proc");
    assert!(
        started <= daemon_seen_ms + 20,
        "{orphan:?} seen at {daemon_seen_ms}"
    );
    assert!(orphan.seen_ms >= daemon_seen_ms, "{orphan:?}");
    assert!(
        log.snapshot()
            .iter()
            .any(|e| e.pid == Some(daemon) && matches!(e.kind, EventKind::Orphan { .. }))
    );
    for pid in pids {
        assert!(!proctree::is_live(pid), "pid {pid} survived stop");
    }
    if trace {
        let events = log.snapshot();
        assert!(
            events.iter().any(
                |e| e.pid == Some(daemon) && matches!(e.kind, EventKind::ProcessStarted { .. })
            ),
            "{events:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_in_pid_namespace_is_orphaned_and_killed() {
    daemon_is_orphaned_and_killed(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_followed_by_strace_is_orphaned_and_killed() {
    daemon_is_orphaned_and_killed(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_kills_the_whole_tree() {
    let dirs = Dirs::new();
    let script = "import os, time\nos.fork()\nos.fork()\nopen(os.path.join(os.environ['TMPDIR'], 'up-%d' % os.getpid()), 'w').close()\ntime.sleep(120)\n";
    let sup = Supervisor::start(
        dirs.spec(py(script), vec![], true, true),
        scanner_for(&needle("drop")),
        EventLog::new(),
    )
    .await
    .unwrap();
    let count = || {
        std::fs::read_dir(dirs.tmp.path())
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert!(wait_until(Duration::from_secs(20), || count() == 4).await);
    let pids = sup.pids();
    assert_eq!(pids.len(), 4, "{pids:?}");
    tokio::task::block_in_place(|| drop(sup));
    for pid in pids {
        assert!(!proctree::is_live(pid), "pid {pid} survived drop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_dirs_are_set_and_stderr_hits_become_output_events() {
    let token = needle("log");
    let dirs = Dirs::new();
    let log = EventLog::new();
    let script = "import os, sys\n\
ok = os.environ['TMPDIR'] == os.environ['WANT_TMP'] and os.environ['HOME'] == os.environ['WANT_HOME'] and os.getcwd() == os.environ['WANT_CWD']\n\
print('serving')\n\
sys.stderr.write('request failed for ' + os.environ['SECRET'] + '\\n')\n\
sys.exit(0 if ok else 7)\n";
    let env = vec![
        ("SECRET".into(), token.clone()),
        (
            "WANT_TMP".into(),
            dirs.tmp.path().to_string_lossy().into_owned(),
        ),
        (
            "WANT_HOME".into(),
            dirs.home.path().to_string_lossy().into_owned(),
        ),
        (
            "WANT_CWD".into(),
            dirs.work
                .path()
                .canonicalize()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        ),
    ];
    let sup = Supervisor::start(
        dirs.spec(py(script), env, false, false),
        scanner_for(&token),
        log.clone(),
    )
    .await
    .unwrap();
    assert!(wait_until(Duration::from_secs(20), || sup.exit_status().is_some()).await);
    assert!(
        wait_until(Duration::from_secs(5), || sup
            .stderr_tail()
            .contains("request failed"))
        .await
    );
    let tail = sup.stderr_tail();
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0), "{tail}");
    let events = log.snapshot();
    let outputs: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Output { .. }))
        .collect();
    assert_eq!(outputs.len(), 1, "{events:#?}");
    let EventKind::Output {
        stream,
        excerpt,
        hits,
        ..
    } = &outputs[0].kind
    else {
        unreachable!()
    };
    assert_eq!(stream, "stderr");
    assert!(excerpt.contains(&token[..12]), "{excerpt}");
    assert_eq!(hits.len(), 1);
    assert!(tail.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_cleared_but_for_path_and_the_given_variables() {
    let dirs = Dirs::new();
    let out = dirs.work.path().join("env.txt");
    let script = "import os\nopen('env.txt', 'w').write('\\n'.join(sorted(os.environ)))\n";
    let spec = dirs.spec(py(script), vec![("GIVEN".into(), "1".into())], true, true);
    let sup = Supervisor::start(spec, scanner_for(&needle("env")), EventLog::new())
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || sup.exit_status().is_some()).await);
    sup.stop(Duration::from_secs(1)).await;
    let names: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let allowed = ["GIVEN", "HOME", "PATH", "TMPDIR", "LC_CTYPE"];
    assert!(
        names.iter().all(|n| allowed.contains(&n.as_str())),
        "leaked: {names:?}"
    );
    assert!(names.contains(&"GIVEN".to_string()) && names.contains(&"TMPDIR".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_healthy_succeeds_on_200_and_names_the_exit_otherwise() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dirs = Dirs::new();
    let server = vec![
        python(),
        "-m".into(),
        "http.server".into(),
        port.to_string(),
        "--bind".into(),
        "127.0.0.1".into(),
    ];
    let sup = Supervisor::start(
        dirs.spec(server, vec![], true, true),
        scanner_for(&needle("http")),
        EventLog::new(),
    )
    .await
    .unwrap();
    sup.wait_healthy(
        &format!("http://127.0.0.1:{port}/"),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    sup.stop(Duration::from_secs(2)).await;

    let dirs = Dirs::new();
    let failing = vec![
        "sh".into(),
        "-c".into(),
        "echo 'config missing: OPENAI_API_KEY' >&2; exit 3".into(),
    ];
    let sup = Supervisor::start(
        dirs.spec(failing, vec![], true, true),
        scanner_for(&needle("http")),
        EventLog::new(),
    )
    .await
    .unwrap();
    let err = sup
        .wait_healthy(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_secs(20),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("config missing: OPENAI_API_KEY"), "{err}");
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_child_leaves_no_hits() {
    let token = needle("quiet");
    let dirs = Dirs::new();
    let log = EventLog::new();
    let script = "import os\n\
open(os.path.join(os.environ['TMPDIR'], 'cache.txt'), 'w').write('ordinary content\\n' * 100)\n\
print('served 3 requests')\n";
    let sup = Supervisor::start(
        dirs.spec(py(script), vec![], true, true),
        scanner_for(&token),
        log.clone(),
    )
    .await
    .unwrap();
    assert!(wait_until(Duration::from_secs(20), || sup.exit_status().is_some()).await);
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0));
    assert!(report.orphans.is_empty());
    let events = log.snapshot();
    // the file was seen and scanned, and nothing matched
    let cache = dirs.tmp.path().canonicalize().unwrap().join("cache.txt");
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::FileWritten { path, size, .. } if *path == cache && *size == 1700)), "{events:#?}");
    assert!(hits_in(&events).is_empty(), "{:#?}", hits_in(&events));
    // /tmp is watched and shared with the machine (a build beside this test writes and removes
    // files there all the time): only files in the child's own folders are the child's.
    let own: Vec<PathBuf> = [&dirs.work, &dirs.tmp, &dirs.home]
        .iter()
        .map(|d| d.path().canonicalize().unwrap())
        .collect();
    let suspicious: Vec<_> = events
        .iter()
        .filter(|e| match &e.kind {
            EventKind::Connect { .. } | EventKind::Orphan { .. } => true,
            EventKind::FileVanished { path, .. } => own.iter().any(|d| path.starts_with(d)),
            _ => false,
        })
        .collect();
    assert!(suspicious.is_empty(), "{suspicious:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_program_is_an_error_naming_it() {
    let dirs = Dirs::new();
    let spec = dirs.spec(vec!["/nonexistent/pipeline-bin".into()], vec![], true, true);
    let err = Supervisor::start(spec, scanner_for("x-needle-not-used"), EventLog::new())
        .await
        .err()
        .expect("an error")
        .to_string();
    assert!(err.contains("/nonexistent/pipeline-bin"), "{err}");
}

/// A PNG of noise (`width` x `height`), so its coded bytes are unique to this test.
fn noise_png(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let pixels: Vec<u8> = (0..width * height * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let img = image::RgbImage::from_raw(width, height, pixels).unwrap();
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

/// An image held in memory raw, as base64 text and as decoded pixels (copied into a buffer of random bytes, the
/// files they came from deleted) is found in the child's memory each way: each hit says which image, how many
/// of its bytes, and at which address they sit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_in_memory_is_found_raw_base64_and_as_pixels_with_size_and_address() {
    use base64::Engine as _;
    use traceless_scan::scan::{Encoding, SourceForm};
    let (width, height) = (96, 64);
    let png = noise_png(width, height, std::process::id() as u64 ^ 0x5eed);
    let pixels = image::load_from_memory(&png).unwrap().to_rgb8().into_raw();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let id = NeedleId {
        request: 7,
        subject: Subject::Image,
    };
    let mut scanner = Scanner::new();
    scanner.add_image(id, &png);
    let scanner = Arc::new(RwLock::new(scanner));
    let dirs = Dirs::new();
    let plants: [(&str, &[u8]); 3] = [("raw", &png), ("b64", b64.as_bytes()), ("pixels", &pixels)];
    for (name, bytes) in plants {
        std::fs::write(dirs.tmp.path().join(name), bytes).unwrap();
    }
    // Plant k sits (k + 1) MiB into 4 MiB of random bytes; the child reports the addresses, deleting the files.
    let script = "import ctypes, os, time\n\
tmp = os.environ['TMPDIR']\n\
held = bytearray(os.urandom(4 << 20))\n\
base = ctypes.addressof((ctypes.c_char * len(held)).from_buffer(held))\n\
addrs = []\n\
for k, name in enumerate(['raw', 'b64', 'pixels']): \
path = os.path.join(tmp, name); data = open(path, 'rb').read(); os.remove(path); \
at = (k + 1) << 20; held[at:at + len(data)] = data; addrs.append(str(base + at)); del data\n\
open(os.path.join(tmp, 'addrs'), 'w').write(' '.join(addrs))\n\
os.rename(os.path.join(tmp, 'addrs'), os.path.join(tmp, 'ready'))\n\
time.sleep(60)\n";
    let sup = Supervisor::start(
        dirs.spec(py(script), vec![], false, true),
        scanner.clone(),
        EventLog::new(),
    )
    .await
    .unwrap();
    let ready = dirs.tmp.path().join("ready");
    assert!(wait_until(Duration::from_secs(30), || ready.exists()).await);
    let addrs: Vec<u64> = std::fs::read_to_string(&ready)
        .unwrap()
        .split(' ')
        .map(|a| a.parse().unwrap())
        .collect();
    let events = tokio::task::block_in_place(|| sup.scan_memory());
    sup.stop(Duration::from_millis(200)).await;

    let hits: Vec<(&String, &traceless_scan::scan::Hit)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MemoryHits { mapping, hits } => Some(hits.iter().map(move |h| (mapping, h))),
            _ => None,
        })
        .flatten()
        .filter(|(_, h)| h.needle == id)
        .collect();
    // (A PNG of noise stores its rows uncompressed, so the raw copy also holds pixel rows: such hits are
    // allowed; each plant must have its own hit, in place.)
    let expect = [
        (Encoding::Raw, SourceForm::Bytes, png.len()),
        (Encoding::Base64, SourceForm::Bytes, b64.len()),
        (Encoding::PixelRows, SourceForm::PixelRows, pixels.len()),
    ];
    for ((encoding, form, len), addr) in expect.into_iter().zip(addrs) {
        let found: Vec<_> = hits
            .iter()
            .filter(|(_, h)| {
                h.encoding == encoding
                    && h.form == form
                    && h.offset >= addr
                    && h.offset < addr + len as u64
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {encoding:?} hit at {addr:#x}: {hits:#?}"
        );
        let (mapping, hit) = found[0];
        match encoding {
            // Everything but the container's header and trailer is indexed, all of it in place.
            Encoding::Raw => {
                assert_eq!(hit.offset, addr + hit.source_offset, "{hit:?}");
                assert_eq!(hit.len, hit.source_len);
                assert!(hit.source_len + 64 >= png.len() as u64, "{hit:?}");
            }
            // The same bytes, four characters for three.
            Encoding::Base64 => {
                assert!(hit.source_len + 64 >= png.len() as u64, "{hit:?}");
                assert!(hit.len.abs_diff(hit.source_len * 4 / 3) <= 4, "{hit:?}");
            }
            // Every pixel.
            _ => assert_eq!(
                (hit.offset, hit.len),
                (addr, pixels.len() as u64),
                "{hit:?}"
            ),
        }
        // The mapping named is the one holding that address.
        let range = mapping.split_whitespace().rev().nth(1).unwrap();
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (
            u64::from_str_radix(start, 16).unwrap(),
            u64::from_str_radix(end, 16).unwrap(),
        );
        assert!(
            start <= hit.offset && hit.offset + hit.len <= end,
            "{mapping}: {hit:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_writing_into_fresh_sub_folders_is_read_in_full() {
    // 16 requests at once, each saving its upload into a fresh sub-folder of TMPDIR, using it for a
    // moment (a provider call) and removing it: inotify's watch on each new folder comes after the
    // write, and the final sweep finds nothing, so only the close seen by strace leads the monitor to
    // every file.
    const BURST: u32 = 16;
    let base = needle("burst");
    let mut scanner = Scanner::new();
    for i in 1..=BURST {
        scanner.add_token(
            NeedleId {
                request: i,
                subject: Subject::Prompt,
            },
            &format!("{base}-{i:02}"),
        );
    }
    let dirs = Dirs::new();
    let log = EventLog::new();
    let script = r#"
import os, sys, threading, time, uuid
base, n = os.environ['SECRET'], int(sys.argv[1])
start = threading.Barrier(n)
def request(i):
    start.wait()
    d = os.path.join(os.environ['TMPDIR'], uuid.uuid4().hex)
    os.mkdir(d)
    p = os.path.join(d, 'upload.bin')
    with open(p, 'wb') as f:
        f.write(b'upload ' + f'{base}-{i:02d}'.encode() + b' end')
    time.sleep(0.2)
    os.unlink(p)
    os.rmdir(d)
threads = [threading.Thread(target=request, args=(i,)) for i in range(1, n + 1)]
for t in threads: t.start()
for t in threads: t.join()
"#;
    let mut command = py(script);
    command.push(BURST.to_string());
    let spec = dirs.spec(command, vec![("SECRET".into(), base.clone())], true, true);
    let sup = Supervisor::start(spec, Arc::new(RwLock::new(scanner)), log.clone())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || sup.exit_status().is_some()).await,
        "the child ends"
    );
    let report = sup.stop(Duration::from_secs(1)).await;
    assert_eq!(report.exit, Some(0));
    let events = log.snapshot();
    let mut seen: Vec<u32> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FileWritten { path, hits, .. } if path.ends_with("upload.bin") => Some(hits),
            _ => None,
        })
        .flatten()
        .map(|h| h.needle.request)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        (1..=BURST).collect::<Vec<_>>(),
        "not every upload was read: {:#?}",
        events
            .iter()
            .filter(|e| matches!(
                &e.kind,
                EventKind::FileWritten { .. }
                    | EventKind::FileVanished { .. }
                    | EventKind::Closed { .. }
            ))
            .collect::<Vec<_>>()
    );
    // strace counted what went through each descriptor.
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Closed { path, written }
            if path.ends_with("upload.bin") && *written == (base.len() + 3 + 11) as u64)),
        "{events:#?}"
    );
}

/// A pipeline's last words before it dies are in the crash report: the tail is taken once its
/// stderr was read to the end, not whatever the reader had got to when the death was noticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stderr_tail_of_a_dead_pipeline_holds_its_last_words() {
    let dirs = Dirs::new();
    // Half a megabyte of ordinary log lines for the reader to scan, then the last words, then death.
    let script = "import os, sys\n\
for i in range(8000): sys.stderr.write('INFO handled request %d without incident\\n' % i)\n\
sys.stderr.write('FATAL giving up now\\n'); sys.stderr.flush(); os._exit(70)\n";
    let sup = Supervisor::start(
        dirs.spec(py(script), vec![], true, true),
        scanner_for(&needle("last-words")),
        EventLog::new(),
    )
    .await
    .unwrap();
    assert!(wait_until(Duration::from_secs(20), || sup.main_ended()).await);
    let tail = sup.final_stderr_tail(Duration::from_secs(5)).await;
    assert!(tail.ends_with("FATAL giving up now\n"), "{tail:?}");
    sup.stop(Duration::from_secs(1)).await;
}
