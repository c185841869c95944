//! Nothing outlives an audit, even when the harness itself is killed. A re-executed copy of this
//! test plays the harness: it makes an audit dir and runs a pipeline that ignores SIGTERM and
//! double-forks a daemon (under unshare, with and without strace). This process then kills that
//! harness with SIGKILL or SIGTERM (no handler: the harness just dies) and checks that every
//! process of the pipeline's tree, launchers included, ends with it, and that the next audit
//! removes the temp dir it left.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use traceless_sandbox::audit_dir::{self, AuditDir};
use traceless_sandbox::events::EventLog;
use traceless_sandbox::proctree;
use traceless_sandbox::supervisor::{PipelineSpec, Supervisor};
use traceless_scan::scan::Scanner;

const CHILD_ENV: &str = "TRACELESS_KILLED_HARNESS_PARENT_DIR";
const TRACE_ENV: &str = "TRACELESS_KILLED_HARNESS_TRACE";

/// The pipeline: ignores SIGTERM, double-forks a daemon into a session of its own (which also
/// ignores SIGTERM), says so, and waits.
const PIPELINE: &str = r#"trap '' TERM
(setsid sh -c 'trap "" TERM; touch "$TMPDIR/daemon-up"; exec sleep 600' &)
exec sleep 600"#;

fn main() {
    if let Some(parent) = std::env::var_os(CHILD_ENV) {
        let trace = std::env::var_os(TRACE_ENV).is_some_and(|v| v == "1");
        play_the_harness(Path::new(&parent), trace);
        return;
    }
    let strace = Command::new("strace").arg("-V").output().is_ok();
    for signal in [Signal::SIGKILL, Signal::SIGTERM] {
        for trace in [false, true] {
            let name = format!(
                "harness_killed_by_{}_{}_leaves_nothing_running",
                signal.as_str().to_lowercase(),
                if trace { "under_strace" } else { "untraced" }
            );
            if trace && !strace {
                // Reported, not passed off: the harness itself degrades the same way.
                println!("test {name} ... not run (strace is not installed)");
                continue;
            }
            kill_the_harness(signal, trace);
            println!("test {name} ... ok");
        }
    }
}

/// The harness side, in the re-executed child: runs the pipeline, prints `ready <audit dir>` once
/// the daemon is up and detached, then waits to be killed (at most two minutes).
fn play_the_harness(parent: &Path, trace: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = AuditDir::create_in(parent).unwrap();
        let [work, tmp, home] = ["work", "tmp", "home"].map(|d| dir.path().join(d));
        for d in [&work, &tmp, &home] {
            std::fs::create_dir(d).unwrap();
        }
        let spec = PipelineSpec {
            command: vec!["sh".into(), "-c".into(), PIPELINE.into()],
            workdir: work,
            tmpdir: tmp.clone(),
            home,
            trace_syscalls: trace,
            pid_namespace: true,
            ..Default::default()
        };
        let sup = Supervisor::start(spec, Arc::new(RwLock::new(Scanner::new())), EventLog::new())
            .await
            .unwrap();
        // Up, and detached: only the main process and the daemon are left.
        let until = Instant::now() + Duration::from_secs(30);
        while !(tmp.join("daemon-up").exists() && sup.pids().len() == 2) {
            assert!(
                Instant::now() < until,
                "the daemon never came up: {:?}",
                sup.pids()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("ready {}", dir.path().display());
        tokio::time::sleep(Duration::from_secs(120)).await;
        // Not killed: the parent failed; leave nothing behind either way.
        drop(sup);
    });
}

/// Every live descendant of `root`, with its start time (so a reused pid is not mistaken for it).
fn descendants(root: u32) -> BTreeMap<u32, u64> {
    let all: Vec<proctree::ProcStat> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(proctree::read_stat)
        .collect();
    let mut found = BTreeMap::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent && p.is_live()) {
            if found.insert(p.pid, p.start_time).is_none() {
                frontier.push(p.pid);
            }
        }
    }
    found
}

fn still_running(pid: u32, start_time: u64) -> bool {
    proctree::read_stat(pid).is_some_and(|s| s.start_time == start_time && s.is_live())
}

fn kill_the_harness(signal: Signal, trace: bool) {
    let parent = tempfile::tempdir().unwrap();
    let mut harness = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, parent.path())
        .env(TRACE_ENV, if trace { "1" } else { "0" })
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = harness.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(dir) = line.strip_prefix("ready ") {
                let _ = tx.send(PathBuf::from(dir));
            }
        }
    });
    let audit_dir = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(dir) => dir,
        Err(_) => {
            let _ = harness.kill();
            panic!("the harness never said ready: {:?}", harness.wait());
        }
    };
    let tree = descendants(harness.id());
    let names: Vec<String> = tree
        .keys()
        .map(|p| proctree::cmdline(*p).join(" "))
        .collect();
    // launchers (strace, unshare), the pipeline's main process and its daemon
    let expected = 3 + usize::from(trace);
    assert!(tree.len() >= expected, "the pipeline's tree: {names:#?}");
    assert!(audit_dir.is_dir());

    kill(Pid::from_raw(harness.id() as i32), signal).unwrap();
    let status = harness.wait().unwrap();
    assert!(!status.success(), "{status:?}");

    let until = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<u32> = tree.keys().copied().collect();
    while !left.is_empty() && Instant::now() < until {
        left.retain(|pid| still_running(*pid, tree[pid]));
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<String> = left
        .iter()
        .map(|p| format!("{p} {}", proctree::cmdline(*p).join(" ")))
        .collect();
    // Don't leave them running for the next test, whatever the verdict.
    for pid in &left {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "outlived the harness ({signal}): {survivors:#?} of {names:#?}"
    );

    // The temp dir stays (nothing can remove it at a SIGKILL); the next audit removes it.
    assert!(audit_dir.is_dir(), "the audit dir vanished by itself");
    let removed = audit_dir::remove_stale(parent.path());
    assert_eq!(removed, vec![audit_dir.clone()]);
    assert!(!audit_dir.exists());
}
