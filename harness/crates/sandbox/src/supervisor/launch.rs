//! Starting the process chain: the launchers found in PATH, what they let each monitor do,
//! strace's pipe, and the spawn, always from the one launcher thread (see the parent module for why).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

use super::{PipelineSpec, argv};
use crate::events::{MonitorKind, MonitorStatus};

/// Finds a program in the harness's PATH.
fn find_in_path(program: &str) -> Option<PathBuf> {
    find_in(program, &std::env::var_os("PATH")?)
}

/// Finds a program in `path` (a PATH value); a program with a `/` is a path of its own.
fn find_in(program: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Refuses a spec that cannot start: no command, a program not found, a folder that is not one.
/// A bare program name is looked for in the PATH the pipeline will get, not the harness's.
pub(super) fn check_spec(spec: &PipelineSpec) -> anyhow::Result<()> {
    let Some(program) = spec.command.first() else {
        bail!("the pipeline command is empty")
    };
    let path = argv::pipeline_path(spec, std::env::var_os("PATH").as_deref());
    if find_in(program, &path).is_none() {
        bail!(
            "the pipeline program {program:?} was not found (a bare name is looked for in the \
             pipeline's PATH, {})",
            path.to_string_lossy()
        );
    }
    for (what, dir) in [
        ("workdir", &spec.workdir),
        ("tmpdir", &spec.tmpdir),
        ("home", &spec.home),
    ] {
        if !dir.is_dir() {
            bail!("the pipeline's {what} {} is not a directory", dir.display());
        }
    }
    Ok(())
}

/// The launchers found in PATH, each looked for only when the spec asks for what it gives.
#[derive(Debug)]
pub(super) struct Tools {
    pub strace: Option<PathBuf>,
    pub setpriv: Option<PathBuf>,
    pub unshare: Option<PathBuf>,
}

impl Tools {
    pub(super) fn find(spec: &PipelineSpec) -> Tools {
        let strace = spec
            .trace_syscalls
            .then(|| find_in_path("strace"))
            .flatten();
        // strace forks the next link itself: only setpriv can give that one a parent-death
        // signal, so that it dies with strace.
        let setpriv = strace.as_ref().and_then(|_| find_in_path("setpriv"));
        let unshare = spec
            .pid_namespace
            .then(|| find_in_path("unshare"))
            .flatten();
        Tools {
            strace,
            setpriv,
            unshare,
        }
    }

    /// The launchers of the command line; strace writes into `trace`.
    fn launchers<'a>(&'a self, trace: Option<&'a TracePipe>) -> argv::Launchers<'a> {
        argv::Launchers {
            strace: self.strace.as_deref().zip(trace.map(|t| t.path.as_str())),
            setpriv: self.setpriv.as_deref(),
            unshare: self.unshare.as_deref(),
        }
    }
}

/// What every monitor but the filesystem's can do with the tools found.
pub(super) fn statuses(spec: &PipelineSpec, tools: &Tools) -> BTreeMap<MonitorKind, MonitorStatus> {
    let mut statuses = BTreeMap::new();
    for s in trace_statuses(spec.trace_syscalls, tools.strace.is_some()) {
        statuses.insert(s.monitor, s);
    }
    statuses.insert(MonitorKind::ProcessTree, process_tree_status(spec, tools));
    statuses.insert(MonitorKind::Logs, MonitorStatus::active(MonitorKind::Logs));
    statuses.insert(
        MonitorKind::Memory,
        MonitorStatus::active(MonitorKind::Memory),
    );
    statuses
}

/// The syscall and egress monitors, with tracing `asked` for and strace `found` or not.
fn trace_statuses(asked: bool, found: bool) -> [MonitorStatus; 2] {
    match (found, asked) {
        (true, _) => [
            MonitorStatus::active(MonitorKind::Syscall),
            MonitorStatus::active(MonitorKind::Egress),
        ],
        (false, true) => {
            let why = "strace not found in PATH (install it: apt-get install strace)";
            [
                MonitorStatus::unavailable(MonitorKind::Syscall, why),
                MonitorStatus::degraded(
                    MonitorKind::Egress,
                    format!("connections are not traced: {why}; DNS queries are still seen"),
                ),
            ]
        }
        (false, false) => [
            MonitorStatus::unavailable(MonitorKind::Syscall, "syscall tracing is turned off"),
            MonitorStatus::degraded(
                MonitorKind::Egress,
                "connections are not traced (syscall tracing is turned off); DNS queries are still seen",
            ),
        ],
    }
}

/// How surely the process tree is followed, and what is missing for it.
fn process_tree_status(spec: &PipelineSpec, tools: &Tools) -> MonitorStatus {
    let mut status = match (tools.unshare.is_some(), tools.strace.is_some()) {
        (true, _) => MonitorStatus::active(MonitorKind::ProcessTree),
        (false, true) => MonitorStatus::degraded(
            MonitorKind::ProcessTree,
            "no PID namespace: processes are followed by strace's fork records",
        ),
        (false, false) => MonitorStatus::degraded(
            MonitorKind::ProcessTree,
            "neither a PID namespace nor strace: a daemon that detaches between two polls can escape",
        ),
    };
    if spec.pid_namespace && tools.unshare.is_none() {
        status.reason = Some(format!(
            "{} (unshare from util-linux not found)",
            status.reason.clone().unwrap_or_default()
        ));
    }
    if tools.strace.is_some() && tools.setpriv.is_none() {
        status.reason = Some(format!(
            "{}setpriv (util-linux) not found: if the harness is killed, the pipeline outlives it",
            status
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!("{r}; "))
        ));
    }
    status
}

/// The pipe strace writes its trace into.
pub(super) struct TracePipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    /// What strace opens it by.
    path: String,
}

impl TracePipe {
    pub(super) fn open() -> anyhow::Result<TracePipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating strace's pipe")?;
        // strace opens the pipe by path, close-on-exec: the pipeline never holds it
        let path = format!("/proc/{}/fd/{}", std::process::id(), write.as_raw_fd());
        Ok(TracePipe { read, write, path })
    }
}

/// Starts `spec`'s command under the launchers in `tools`, strace writing into `trace`.
pub(super) async fn spawn(
    spec: &PipelineSpec,
    tools: &Tools,
    trace: Option<&TracePipe>,
) -> anyhow::Result<Child> {
    let (dir, path) = (std::env::current_dir().ok(), std::env::var_os("PATH"));
    let harness = argv::Harness {
        dir: dir.as_deref(),
        path: path.as_deref(),
    };
    let line = argv::command_line(spec, &tools.launchers(trace), &harness);
    spawn_line(line)
        .await
        .with_context(|| format!("starting the pipeline `{}`", spec.command.join(" ")))
}

/// Starts `line` from the launcher thread, in a session of its own, with its stdout and stderr
/// piped.
async fn spawn_line(line: argv::CommandLine) -> std::io::Result<Child> {
    let mut cmd = Command::new(&line.argv[0]);
    cmd.args(&line.argv[1..])
        .env_clear()
        .envs(&line.env)
        .current_dir(&line.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // its own session: a terminal's Ctrl-C reaches the harness, which decides
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            // if the harness dies without cleaning up, the launcher dies with it
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let runtime = tokio::runtime::Handle::current();
    on_launcher_thread(move || {
        let _entered = runtime.enter();
        cmd.spawn()
    })
    .await
}

/// Runs `job` on the launcher thread: one thread, started on first use, that lives as long as the
/// process. Children forked there keep their parent-death signal for the life of the harness.
async fn on_launcher_thread<T: Send + 'static>(
    job: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    type Job = Box<dyn FnOnce() + Send>;
    static LAUNCHER: OnceLock<std::io::Result<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let launcher = LAUNCHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("traceless-launcher".into())
            .spawn(move || rx.into_iter().for_each(|job| job()))?;
        Ok(tx)
    });
    let sender = launcher
        .as_ref()
        .map_err(|e| std::io::Error::new(e.kind(), format!("starting the launcher thread: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    sender
        .send(Box::new(move || {
            let _ = tx.send(job());
        }))
        .map_err(|_| std::io::Error::other("the launcher thread has ended"))?;
    rx.await
        .map_err(|_| std::io::Error::other("the launcher thread dropped the job"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MonitorState;

    fn tools(strace: bool, setpriv: bool, unshare: bool) -> Tools {
        let found = |yes: bool, name: &str| yes.then(|| PathBuf::from(format!("/usr/bin/{name}")));
        Tools {
            strace: found(strace, "strace"),
            setpriv: found(setpriv, "setpriv"),
            unshare: found(unshare, "unshare"),
        }
    }

    fn spec(trace_syscalls: bool, pid_namespace: bool) -> PipelineSpec {
        PipelineSpec {
            trace_syscalls,
            pid_namespace,
            ..PipelineSpec::default()
        }
    }

    #[test]
    fn every_launcher_found_leaves_every_monitor_but_the_filesystem_s_active() {
        let statuses = statuses(&spec(true, true), &tools(true, true, true));
        assert_eq!(statuses.len(), 5);
        assert!(!statuses.contains_key(&MonitorKind::Filesystem));
        for s in statuses.values() {
            assert_eq!(s.state, MonitorState::Active, "{s:?}");
        }
    }

    #[test]
    fn the_process_tree_names_each_launcher_missing() {
        let status = process_tree_status(&spec(true, true), &tools(true, false, false));
        assert_eq!(status.state, MonitorState::Degraded);
        assert_eq!(
            status.reason.as_deref(),
            Some(
                "no PID namespace: processes are followed by strace's fork records \
                 (unshare from util-linux not found); setpriv (util-linux) not found: \
                 if the harness is killed, the pipeline outlives it"
            )
        );
        let status = process_tree_status(&spec(true, true), &tools(true, false, true));
        assert_eq!(
            status.reason.as_deref(),
            Some(
                "setpriv (util-linux) not found: if the harness is killed, the pipeline outlives it"
            )
        );
    }

    #[test]
    fn without_strace_syscalls_are_unavailable_and_egress_degraded() {
        for asked in [true, false] {
            let [syscall, egress] = trace_statuses(asked, false);
            assert_eq!(syscall.state, MonitorState::Unavailable);
            assert_eq!(egress.state, MonitorState::Degraded);
        }
        let [syscall, _] = trace_statuses(true, false);
        assert!(syscall.reason.unwrap().contains("apt-get install strace"));
    }

    #[test]
    fn a_bare_program_is_looked_for_in_the_pipelines_path_not_the_harnesss() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("only-here"), b"#!/bin/sh\n").unwrap();
        let folder = dir.path().to_path_buf();
        let with_path = |path: Option<&Path>| PipelineSpec {
            command: vec!["only-here".into()],
            env: path
                .map(|p| ("PATH".to_string(), p.to_string_lossy().into_owned()))
                .into_iter()
                .collect(),
            workdir: folder.clone(),
            tmpdir: folder.clone(),
            home: folder.clone(),
            ..PipelineSpec::default()
        };
        check_spec(&with_path(Some(&bin))).unwrap();
        let err = check_spec(&with_path(None)).unwrap_err().to_string();
        assert!(err.contains("\"only-here\" was not found"), "{err}");
        assert!(err.contains("pipeline's PATH"), "{err}");
    }
}
