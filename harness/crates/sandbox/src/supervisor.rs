//! The supervisor: starts the pipeline under its monitors, answers what it is doing, and ends every process of it.
//!
//! The process chain is `strace` (when tracing) -> `setpriv --pdeathsig KILL` (under strace) ->
//! `unshare --pid --fork --kill-child` (when in a PID namespace) -> the pipeline. strace runs
//! outside the namespace so the pids it reports are the harness's own; its output comes through a
//! pipe read by a thread of its own. stdout and stderr are read and scanned continuously on tasks
//! of their own. Dropping a [`Supervisor`] kills every process of the run, synchronously, whatever
//! state the audit is in.
//!
//! When the harness dies without cleaning up (SIGKILL), each link of the chain dies with its
//! parent: the first link has a parent-death signal set before it runs, `setpriv` gives one to the
//! link strace starts, `unshare --kill-child` to the namespace's init, and the end of the init ends
//! every process of the namespace, daemons included. A parent-death signal fires when the *thread*
//! that forked the child ends, so every chain is started from one launcher thread that lives as
//! long as the harness, never from a runtime thread that may be retired.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use traceless_scan::scan::Scanner;

use crate::events::{Event, EventKind, EventLog, MonitorKind, MonitorState, MonitorStatus};
pub use crate::events::{Orphan, OrphanReason};
use crate::filesystem::{FilesystemMonitor, SyscallSink};
use crate::memory;
use crate::output::{self, Progress, Tail};
use crate::proctree::{self, ProcessTree};
use crate::spool::Spool;
use crate::stopped::StoppedEarly;
use crate::strace::{self, ProcessExit, TraceInterpreter};

mod argv;
mod launch;

use launch::{Tools, TracePipe};

/// What to run and how to watch it.
#[derive(Debug, Clone, Default)]
pub struct PipelineSpec {
    /// argv; the program is looked up in PATH.
    pub command: Vec<String>,
    /// Added to a cleared environment (PATH is kept; TMPDIR and HOME are set to `tmpdir` and `home`).
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    pub tmpdir: PathBuf,
    pub home: PathBuf,
    /// Watched besides workdir, tmpdir, home, /tmp, /var/tmp and /dev/shm.
    pub watch_roots: Vec<PathBuf>,
    pub trace_syscalls: bool,
    pub pid_namespace: bool,
    /// The harness's own files (e.g. the CA file it hands to the pipeline, its report dir): never evidence.
    pub ignore_paths: Vec<PathBuf>,
    /// No filesystem monitor: a helper whose files are not the audited program's (a declared
    /// local service, whose data folder is scanned once at the end instead).
    pub unwatched_files: bool,
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct StopReport {
    pub exit: Option<i32>,
    pub signal: Option<i32>,
    /// Processes that outlived the main process or left its session; all were killed.
    pub orphans: Vec<Orphan>,
    pub statuses: Vec<MonitorStatus>,
    /// What the logs and filesystem monitors read, complete now: sweep it with every needle.
    pub spool: Arc<Spool>,
}

/// The roots every run watches, besides the spec's own.
const SHARED_ROOTS: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];
/// How long the launchers may take to start the main process.
const MAIN_LOOKUP: Duration = Duration::from_secs(10);
/// Bound on the final kill and on waiting for the readers to drain.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A running pipeline and its monitors. Dropping it kills every process of the run.
pub struct Supervisor {
    log: EventLog,
    scanner: Arc<RwLock<Scanner>>,
    tree: Arc<ProcessTree>,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr_tail: Arc<Mutex<Tail>>,
    readers: Vec<JoinHandle<()>>,
    output_progress: Vec<Arc<Progress>>,
    trace_reader: Option<std::thread::JoinHandle<()>>,
    filesystem: Option<FilesystemMonitor>,
    /// The monitors each worker thread feeds (strace's reader, the filesystem worker), and where
    /// it records stopping early.
    workers: Vec<(&'static [MonitorKind], StoppedEarly)>,
    /// Whether inotify's queue overflowed; see [`FilesystemMonitor::overflowed`].
    inotify_overflowed: Option<StoppedEarly>,
    spool: Arc<Spool>,
    statuses: Arc<Mutex<BTreeMap<MonitorKind, MonitorStatus>>>,
    /// How the main process ended, as strace saw it (strace itself outlives it while daemons run).
    main_exit: Arc<Mutex<Option<ProcessExit>>>,
    pid_namespace: bool,
    finished: bool,
}

/// The child's stdout and stderr pumps: their tasks, how far each has got, and the tail of stderr.
struct Pumps {
    readers: Vec<JoinHandle<()>>,
    progress: Vec<Arc<Progress>>,
    stderr_tail: Arc<Mutex<Tail>>,
}

/// Reads and scans the child's stdout and stderr on tasks of their own.
fn pump_output(
    child: &mut Child,
    scanner: &Arc<RwLock<Scanner>>,
    log: &EventLog,
    spool: &Arc<Spool>,
) -> anyhow::Result<Pumps> {
    let stderr_tail = Arc::new(Mutex::new(Tail::default()));
    let mut pumps = Pumps {
        readers: Vec::new(),
        progress: Vec::new(),
        stderr_tail: stderr_tail.clone(),
    };
    let mut start = |stream: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                     progress: Arc<Progress>,
                     tail: Arc<Mutex<Tail>>| {
        let (scanner, log, spool) = (scanner.clone(), log.clone(), spool.clone());
        pumps.progress.push(progress.clone());
        pumps.readers.push(tokio::spawn(output::pump(
            stream, scanner, log, tail, spool, progress,
        )));
    };
    if let Some(stdout) = child.stdout.take() {
        let progress =
            Progress::new(&stdout, "stdout").context("watching the pipeline's stdout")?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        start(Box::new(stdout), progress, tail);
    }
    if let Some(stderr) = child.stderr.take() {
        let progress =
            Progress::new(&stderr, "stderr").context("watching the pipeline's stderr")?;
        start(Box::new(stderr), progress, stderr_tail);
    }
    Ok(pumps)
}

/// Waits for the spawned process on a task of its own: the receiver holds its status once it
/// ended. `trace_write` is the harness's copy of strace's pipe, closed then.
fn watch_exit(
    mut child: Child,
    trace_write: Arc<Mutex<Option<OwnedFd>>>,
) -> watch::Receiver<Option<ExitStatus>> {
    let (exit_tx, exit_rx) = watch::channel(None);
    tokio::spawn(async move {
        let status = child.wait().await.ok();
        // strace has exited: nothing else will write into its pipe
        trace_write.lock().unwrap_or_else(|e| e.into_inner()).take();
        let _ = exit_tx.send(status);
    });
    exit_rx
}

impl Supervisor {
    /// Starts the pipeline with every monitor the machine allows; see [`Supervisor::statuses`] for what it got.
    pub async fn start(
        spec: PipelineSpec,
        scanner: Arc<RwLock<Scanner>>,
        log: EventLog,
    ) -> anyhow::Result<Supervisor> {
        launch::check_spec(&spec)?;
        let tools = Tools::find(&spec);
        let pid_namespace = tools.unshare.is_some();
        let mut statuses = launch::statuses(&spec, &tools);
        let spool = Arc::new(Spool::default());
        let (filesystem, filesystem_status) = watch_files(&spec, &scanner, &log, &spool).await?;
        statuses.insert(MonitorKind::Filesystem, filesystem_status);

        let trace_pipe = tools
            .strace
            .as_ref()
            .map(|_| TracePipe::open())
            .transpose()?;
        let mut child = launch::spawn(&spec, &tools, trace_pipe.as_ref()).await?;
        let spawned = child
            .id()
            .context("the pipeline exited before it could be watched")?;
        let launchers = usize::from(tools.strace.is_some()) + usize::from(pid_namespace);
        let tree = Arc::new(ProcessTree::new(spawned, launchers, pid_namespace));

        let pumps = pump_output(&mut child, &scanner, &log, &spool)?;
        let main_exit = Arc::new(Mutex::new(None));
        let trace_write = Arc::new(Mutex::new(None));
        let trace_stopped = StoppedEarly::default();
        let mut workers: Vec<(&'static [MonitorKind], StoppedEarly)> = Vec::new();
        if let Some(fs) = &filesystem {
            workers.push((&[MonitorKind::Filesystem], fs.stopped()));
        }
        let inotify_overflowed = filesystem.as_ref().map(FilesystemMonitor::overflowed);
        if trace_pipe.is_some() {
            workers.push((
                &[MonitorKind::Syscall, MonitorKind::Egress],
                trace_stopped.clone(),
            ));
        }
        let trace_reader = trace_pipe
            .map(|pipe| {
                TraceReader {
                    main_exit: main_exit.clone(),
                    log: log.clone(),
                    tree: tree.clone(),
                    sink: filesystem.as_ref().map(FilesystemMonitor::syscall_sink),
                    interpreter: TraceInterpreter::new(pid_namespace),
                    own_write_end: trace_write.clone(),
                    stopped: trace_stopped,
                }
                .spawn(pipe)
            })
            .transpose()?;
        let sup = Supervisor {
            log,
            scanner,
            tree,
            exit: watch_exit(child, trace_write),
            stderr_tail: pumps.stderr_tail,
            readers: pumps.readers,
            output_progress: pumps.progress,
            trace_reader,
            filesystem,
            workers,
            inotify_overflowed,
            spool,
            statuses: Arc::new(Mutex::new(statuses)),
            main_exit,
            pid_namespace,
            finished: false,
        };
        sup.wait_for_main().await;
        Ok(sup)
    }

    /// Waits (bounded) until the launchers have started the pipeline itself.
    async fn wait_for_main(&self) {
        let until = Instant::now() + MAIN_LOOKUP;
        while self.tree.main().is_none() && self.exit.borrow().is_none() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The pipeline's main process (the command itself), once started.
    pub fn main_pid(&self) -> Option<u32> {
        self.tree.main()
    }

    /// The exit status of the process the supervisor spawned (strace or unshare when they are used), once it ended.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// How the pipeline's main process ended, once it did: (exit code, signal).
    pub fn main_exit(&self) -> Option<(Option<i32>, Option<i32>)> {
        if let Some(e) = *self.main_exit.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some((e.code, e.signal));
        }
        // strace waits for every tracee: its own status is the main process's only once all are gone
        let spawned = self.exit_status()?;
        Some((spawned.code(), spawned.signal()))
    }

    /// Whether the main process has ended (daemons it left may still run).
    pub fn main_ended(&self) -> bool {
        self.main_exit().is_some() || self.tree.main().is_some_and(|m| !proctree::is_live(m))
    }

    /// The last bytes a pipeline that died wrote to stderr: its output is first read to its end
    /// (every process holding it has exited), waiting at most `wait`, so the lines it wrote as it
    /// died are in it.
    pub async fn final_stderr_tail(&self, wait: Duration) -> String {
        let ended = async {
            for progress in &self.output_progress {
                progress.ended().await;
            }
        };
        let _ = tokio::time::timeout(wait, ended).await;
        self.stderr_tail()
    }

    /// Waits until everything the pipeline had written to stdout and stderr when this was called
    /// has been scanned and recorded, so that a log line written while a request was served is
    /// judged with that request, not with a later one.
    pub async fn settle_output(&self) {
        for progress in &self.output_progress {
            progress.settled().await;
        }
    }

    /// The last bytes the pipeline wrote to stderr so far.
    pub fn stderr_tail(&self) -> String {
        self.stderr_tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .text()
    }

    /// Polls `GET url` until it answers 200; see [`Supervisor::wait_ready`].
    pub async fn wait_healthy(&self, url: &str, timeout: Duration) -> anyhow::Result<()> {
        self.wait_ready(
            &Ready::Http {
                url: url.to_owned(),
                statuses: vec![200],
            },
            timeout,
        )
        .await
    }

    /// Polls until the pipeline is ready as `ready` says; fails at `timeout`, or at once when the
    /// pipeline exits (the error then names its exit status and the end of its stderr).
    pub async fn wait_ready(&self, ready: &Ready, timeout: Duration) -> anyhow::Result<()> {
        let url = ready.to_string();
        let until = Instant::now() + timeout;
        loop {
            if self.main_ended() {
                // strace's record of the exit may trail the process's end by a moment
                let deadline = Instant::now() + Duration::from_millis(500);
                while self.main_exit().is_none() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let how = self
                    .main_exit()
                    .map_or("status unknown".to_string(), |(code, signal)| {
                        describe(code, signal)
                    });
                bail!(
                    "the pipeline exited ({how}) before {url} answered; stderr ends with:\n{}",
                    self.final_stderr_tail(Duration::from_secs(1)).await
                );
            }
            let last_error = match tokio::time::timeout(Duration::from_secs(2), ready.probe()).await
            {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => format!("{e:#}"),
                Err(_) => "no answer within 2 s".into(),
            };
            if Instant::now() >= until {
                bail!(
                    "the pipeline did not become healthy within {timeout:?}: {url} {last_error}; stderr ends with:\n{}",
                    self.stderr_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every live process of the pipeline (the harness's strace and unshare launchers excluded).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.tree.members().into_iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        pids
    }

    /// Scans the memory of every live process of the pipeline. Blocking: run it in
    /// `block_in_place` or on a blocking task.
    /// The events are recorded in the EventLog and returned.
    pub fn scan_memory(&self) -> Vec<Event> {
        let pids = self.pids();
        let scanner = self.scanner.read().unwrap_or_else(|e| e.into_inner());
        let scan = memory::scan_processes(&pids, &scanner);
        drop(scanner);
        if !scan.refused.is_empty() {
            let why = scan
                .refused
                .iter()
                .map(|(pid, e)| format!("pid {pid}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            // a process that exited meanwhile is not a failure of the monitor
            if scan.refused.iter().any(|(pid, _)| proctree::is_live(*pid)) {
                let status = MonitorStatus::degraded(
                    MonitorKind::Memory,
                    format!("memory not readable: {why}"),
                );
                self.statuses
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(MonitorKind::Memory, status);
            }
        }
        let t_ms = self.log.since_start_ms();
        let events: Vec<Event> = scan
            .found
            .into_iter()
            .map(|m| Event {
                t_ms,
                monitor: MonitorKind::Memory,
                pid: Some(m.pid),
                kind: EventKind::MemoryHits {
                    mapping: m.mapping,
                    hits: m.hits,
                },
            })
            .collect();
        for e in &events {
            self.log.push(e.clone());
        }
        events
    }

    /// Each monitor's state now.
    pub fn statuses(&self) -> Vec<MonitorStatus> {
        let mut statuses = self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // A reader that stopped early left the rest of its source unread: its monitors cannot
        // vouch for what came after, so their checks are not-tested, never a pass.
        let logs = self.output_progress.iter().filter_map(|p| p.failure());
        let failures = logs.map(|why| (&[MonitorKind::Logs][..], why)).chain(
            self.workers
                .iter()
                .filter_map(|(monitors, stopped)| Some((*monitors, stopped.failure()?))),
        );
        for (monitors, why) in failures {
            for &m in monitors {
                degrade(&mut statuses, m, &why);
            }
        }
        let overflow = self
            .inotify_overflowed
            .as_ref()
            .and_then(StoppedEarly::failure);
        cover_inotify_overflow(&mut statuses, overflow);
        statuses.into_values().collect()
    }

    /// The pipeline's daemons at this moment: live processes that left the main process's session,
    /// or whose parent is no longer the one strace saw start them (a double fork). Called after a
    /// request, it names the processes that outlive their request; [`Supervisor::stop`] reports
    /// them (and whatever outlived the main process) again, and kills them.
    pub fn orphans_now(&self) -> Vec<Orphan> {
        let main = self.tree.main();
        let main_session = main.and_then(proctree::read_stat).map(|s| s.session);
        let mut orphans = Vec::new();
        for p in self.tree.members().iter().filter(|p| Some(p.pid) != main) {
            let left_session = main_session.is_some_and(|s| s != p.session);
            // A double fork leaves a process whose parent is gone; another adopts it, so its
            // parent differs from the one strace saw start it.
            let reparented = self
                .tree
                .started_by(p.pid)
                .is_some_and(|parent| parent != p.ppid);
            if left_session {
                orphans.push(self.orphan(p, OrphanReason::LeftSession));
            } else if reparented {
                orphans.push(self.orphan(p, OrphanReason::Reparented));
            }
        }
        orphans
    }

    fn orphan(&self, p: &proctree::ProcStat, why: OrphanReason) -> Orphan {
        Orphan {
            pid: p.pid,
            argv: proctree::cmdline(p.pid),
            started_ms: started_ms(&self.log, p.start_time),
            seen_ms: self.log.since_start_ms(),
            why,
        }
    }

    /// SIGTERM to the main process, up to `grace` for it to end, then SIGKILL to every process left;
    /// daemons and survivors are reported as orphans. Ends with a final filesystem sweep.
    pub async fn stop(mut self, grace: Duration) -> StopReport {
        let mut orphans: BTreeMap<u32, Orphan> =
            self.orphans_now().into_iter().map(|o| (o.pid, o)).collect();
        self.end_main(grace).await;
        self.outlived_main(&mut orphans);
        let tree = self.tree.clone();
        let _ = tokio::task::spawn_blocking(move || kill_tree(&tree)).await;
        self.drain_monitors().await;
        self.log_orphans(orphans.values());
        self.finished = true;
        let (exit, signal) = self.main_exit().unwrap_or((None, None));
        StopReport {
            exit,
            signal,
            orphans: orphans.into_values().collect(),
            statuses: self.statuses(),
            spool: self.spool.clone(),
        }
    }

    /// Asks the main process to end and waits up to `grace` for it to do so.
    async fn end_main(&self, grace: Duration) {
        let Some(main) = self
            .tree
            .main()
            .filter(|m| proctree::is_live(*m) && self.tree.still_same(*m))
        else {
            return;
        };
        // a namespace's init ignores signals it has no handler for: its default (ending) is done by SIGKILL
        let signal = if self.pid_namespace && !proctree::catches_signal(main, Signal::SIGTERM) {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let _ = kill(Pid::from_raw(main as i32), signal);
        proctree::wait_ended(main, grace).await;
    }

    /// Without a namespace nothing ends the others with the main process: whoever is left once it
    /// ended outlived it.
    fn outlived_main(&self, orphans: &mut BTreeMap<u32, Orphan>) {
        let main = self.tree.main();
        if self.pid_namespace || main.is_none_or(proctree::is_live) {
            return;
        }
        for p in self.tree.members().iter().filter(|p| Some(p.pid) != main) {
            orphans
                .entry(p.pid)
                .or_insert_with(|| self.orphan(p, OrphanReason::OutlivedMain));
        }
    }

    /// Waits (bounded) for the spawned chain to exit and every monitor to read what it left: the
    /// output readers, strace's reader, the filesystem monitor's last sweep.
    async fn drain_monitors(&mut self) {
        let until = tokio::time::Instant::now() + KILL_WAIT;
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout_at(until, exit.wait_for(|s| s.is_some())).await;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout_at(until, reader).await;
        }
        for progress in &self.output_progress {
            progress.check_ended();
        }
        if let Some(handle) = self.trace_reader.take() {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        if let Some(fs) = self.filesystem.take() {
            let _ = tokio::task::spawn_blocking(move || fs.finish()).await;
        }
    }

    fn log_orphans<'a>(&self, orphans: impl Iterator<Item = &'a Orphan>) {
        for orphan in orphans {
            self.log.push(Event {
                t_ms: orphan.seen_ms,
                monitor: MonitorKind::ProcessTree,
                pid: Some(orphan.pid),
                kind: EventKind::Orphan {
                    argv: orphan.argv.clone(),
                    started_ms: orphan.started_ms,
                    why: orphan.why,
                },
            });
        }
    }
}

/// When a process started, on the event log's clock, from its start time in /proc (clock ticks
/// since boot).
fn started_ms(log: &EventLog, start_ticks: u64) -> Option<u64> {
    // SAFETY: sysconf only reads a system value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks_per_second <= 0 {
        return None;
    }
    let mut boot = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, nothing else.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut boot) } != 0 {
        return None;
    }
    let since_boot = boot.tv_sec as f64 + boot.tv_nsec as f64 / 1e9;
    let age = (since_boot - start_ticks as f64 / ticks_per_second as f64).max(0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(log.ms_at_unix(now - age))
}

/// The filesystem monitor on the spec's folders and the shared ones, and its status; none when the
/// spec's files are not evidence.
async fn watch_files(
    spec: &PipelineSpec,
    scanner: &Arc<RwLock<Scanner>>,
    log: &EventLog,
    spool: &Arc<Spool>,
) -> anyhow::Result<(Option<FilesystemMonitor>, MonitorStatus)> {
    if spec.unwatched_files {
        let why = "not watched: this program's files are not evidence";
        return Ok((
            None,
            MonitorStatus::unavailable(MonitorKind::Filesystem, why),
        ));
    }
    let mut roots: Vec<PathBuf> =
        vec![spec.workdir.clone(), spec.tmpdir.clone(), spec.home.clone()];
    roots.extend(SHARED_ROOTS.iter().map(PathBuf::from));
    roots.extend(spec.watch_roots.iter().cloned());
    let fs_scanner = scanner.clone();
    let fs_log = log.clone();
    let ignore = spec.ignore_paths.clone();
    let spool = spool.clone();
    let fs = tokio::task::spawn_blocking(move || {
        FilesystemMonitor::start(roots, ignore, fs_scanner, fs_log, spool)
    })
    .await
    .context("starting the filesystem monitor")?;
    let status = fs.status();
    Ok((Some(fs), status))
}

/// SIGKILL to the pipeline's processes and the launchers, until none is left (bounded).
fn kill_tree(tree: &ProcessTree) {
    let until = Instant::now() + KILL_WAIT;
    loop {
        let mut pids: Vec<u32> = tree.members().into_iter().map(|p| p.pid).collect();
        pids.extend(tree.main());
        pids.extend(tree.launchers());
        pids.retain(|p| tree.still_same(*p));
        let left = proctree::kill_and_wait(&pids, Duration::from_millis(200));
        // a process may fork while being killed: look again until the tree is empty
        if (left.is_empty() && tree.members().is_empty()) || Instant::now() >= until {
            return;
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if !self.finished {
            kill_tree(&self.tree);
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}

fn describe(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => {
            let name =
                Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string());
            format!("killed by {name}")
        }
        _ => "status unknown".to_string(),
    }
}

/// When a started pipeline counts as ready to take requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// `GET url` answers one of these statuses.
    Http { url: String, statuses: Vec<u16> },
    /// The port accepts a TCP connection: for a backend with no route a GET may ask for before
    /// any work exists (an async job API, say).
    Tcp(std::net::SocketAddr),
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Http { url, .. } => f.write_str(url),
            Ready::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl Ready {
    /// One look: `Ok` when ready, otherwise what was seen instead.
    async fn probe(&self) -> anyhow::Result<()> {
        match self {
            Ready::Http { url, statuses } => {
                let uri: hyper::Uri = url.parse().with_context(|| format!("health url {url:?}"))?;
                let code = http_get_status(&uri).await?;
                if statuses.contains(&code) {
                    Ok(())
                } else {
                    bail!("answered {code}")
                }
            }
            Ready::Tcp(addr) => tokio::net::TcpStream::connect(addr)
                .await
                .map(drop)
                .context("connecting"),
        }
    }
}

/// One plain-HTTP GET on loopback; returns the status code.
async fn http_get_status(uri: &hyper::Uri) -> anyhow::Result<u16> {
    let host = uri.host().context("the health url has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .context("connecting")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    let conn = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.to_string(), |a| a.to_string());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    conn.abort();
    Ok(response.status().as_u16())
}

struct TraceReader {
    main_exit: Arc<Mutex<Option<ProcessExit>>>,
    log: EventLog,
    tree: Arc<ProcessTree>,
    sink: Option<SyscallSink>,
    interpreter: TraceInterpreter,
    own_write_end: Arc<Mutex<Option<OwnedFd>>>,
    stopped: StoppedEarly,
}

impl TraceReader {
    /// Reads strace's pipe on a thread of its own; the harness keeps its write end until strace has
    /// written (see [`TraceReader::run`]).
    fn spawn(self, pipe: TracePipe) -> anyhow::Result<std::thread::JoinHandle<()>> {
        *self.own_write_end.lock().unwrap_or_else(|e| e.into_inner()) = Some(pipe.write);
        std::thread::Builder::new()
            .name("traceless-strace".into())
            .spawn(move || self.run(pipe.read))
            .context("starting strace's reader")
    }

    /// Reads strace's lines until it exits; the harness's copy of the write end is closed once strace
    /// has written (so it holds its own), which lets the end of strace end the reading.
    fn run(mut self, read: OwnedFd) {
        let _guard = self.stopped.on_panic("the reader of strace's trace");
        let mut reader = BufReader::with_capacity(256 * 1024, std::fs::File::from(read));
        let mut line = Vec::with_capacity(8192);
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    self.stopped
                        .fail(format!("reading strace's trace failed: {e}"));
                    return;
                }
            }
            self.own_write_end
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let text = String::from_utf8_lossy(&line);
            if let Some(exit) = strace::exit_line(&text)
                && self.tree.main() == Some(exit.pid)
            {
                *self.main_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit);
            }
            let Some(traced) = self.interpreter.feed(&text) else {
                continue;
            };
            match &traced.kind {
                EventKind::ProcessStarted { parent, .. } => {
                    self.tree.note_started(traced.pid, *parent)
                }
                EventKind::Open { path, .. } => {
                    if let Some(sink) = &self.sink {
                        sink.opened_for_write(path.clone(), traced.pid);
                    }
                }
                EventKind::Closed { path, .. } => {
                    if let Some(sink) = &self.sink {
                        sink.closed(path.clone(), traced.pid);
                    }
                }
                _ => {}
            }
            self.log.push(Event {
                t_ms: self.log.ms_at_unix(traced.unix_time),
                monitor: traced.monitor,
                pid: Some(traced.pid),
                kind: traced.kind,
            });
        }
    }
}

/// Files the tree wrote while inotify's events were lost were still read when strace reported
/// their close; without an active syscall monitor nothing covers that gap, and the filesystem
/// monitor is degraded.
fn cover_inotify_overflow(
    statuses: &mut BTreeMap<MonitorKind, MonitorStatus>,
    overflow: Option<String>,
) {
    let Some(why) = overflow else { return };
    let traced = statuses
        .get(&MonitorKind::Syscall)
        .is_some_and(|s| s.state == MonitorState::Active);
    if !traced {
        degrade(
            statuses,
            MonitorKind::Filesystem,
            &format!("{why}, and strace did not trace the closes that would have covered them"),
        );
    }
}

/// Degrades `monitor` for `why` (see [`MonitorStatus::degrade`]); one not listed counts as active.
fn degrade(statuses: &mut BTreeMap<MonitorKind, MonitorStatus>, monitor: MonitorKind, why: &str) {
    statuses
        .entry(monitor)
        .or_insert_with(|| MonitorStatus::active(monitor))
        .degrade(why);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// strace's reader whose reads fail (here: its "pipe" is a folder) says why it stopped.
    #[test]
    fn a_trace_reader_whose_reads_fail_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let folder = OwnedFd::from(std::fs::File::open(dir.path()).unwrap());
        let stopped = StoppedEarly::default();
        let reader = TraceReader {
            main_exit: Arc::new(Mutex::new(None)),
            log: EventLog::new(),
            tree: Arc::new(ProcessTree::new(std::process::id(), 0, false)),
            sink: None,
            interpreter: TraceInterpreter::new(false),
            own_write_end: Arc::new(Mutex::new(None)),
            stopped: stopped.clone(),
        };
        reader.run(folder);
        let why = stopped.failure().expect("a reason recorded");
        assert!(why.starts_with("reading strace's trace failed"), "{why}");
    }

    /// An inotify overflow is covered by strace's closes when the syscall monitor is active, and
    /// degrades the filesystem monitor when it is not (strace missing, or its reader stopped).
    #[test]
    fn an_inotify_overflow_degrades_the_filesystem_monitor_only_without_strace() {
        let overflow = || Some("inotify's queue overflowed".to_string());
        let with_syscall = |syscall: MonitorStatus| {
            BTreeMap::from([
                (MonitorKind::Syscall, syscall),
                (
                    MonitorKind::Filesystem,
                    MonitorStatus::active(MonitorKind::Filesystem),
                ),
            ])
        };
        let filesystem = |statuses: &BTreeMap<MonitorKind, MonitorStatus>| {
            statuses[&MonitorKind::Filesystem].clone()
        };

        let mut traced = with_syscall(MonitorStatus::active(MonitorKind::Syscall));
        cover_inotify_overflow(&mut traced, overflow());
        assert_eq!(filesystem(&traced).state, MonitorState::Active);

        for syscall in [
            MonitorStatus::unavailable(MonitorKind::Syscall, "strace is not installed"),
            MonitorStatus::degraded(MonitorKind::Syscall, "strace's reader panicked"),
        ] {
            let mut untraced = with_syscall(syscall);
            cover_inotify_overflow(&mut untraced, overflow());
            let fs = filesystem(&untraced);
            assert_eq!(fs.state, MonitorState::Degraded);
            assert!(fs.reason.unwrap().contains("queue overflowed"));
        }

        let mut quiet = with_syscall(MonitorStatus::unavailable(MonitorKind::Syscall, "none"));
        cover_inotify_overflow(&mut quiet, None);
        assert_eq!(filesystem(&quiet).state, MonitorState::Active);
    }
}
