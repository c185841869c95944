//! The pipeline's process tree, read from /proc: which processes belong to it, which left it, how to end them all.
//!
//! Membership is the union of three views, so a process counts if any one of them sees it:
//! the PID namespace (exact: every process whose `/proc/PID/ns/pid` is the sandbox's), descent by
//! parent pid from the process the supervisor spawned, and every process seen before (polls and
//! strace's fork records), checked against its start time so a reused pid is not mistaken for it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The fields of `/proc/PID/stat` the tree needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub state: char,
    pub ppid: u32,
    pub session: u32,
    pub start_time: u64,
}

impl ProcStat {
    /// A zombie or dead process holds no memory and runs no code.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

pub fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: fields start after the last ')'
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Every process on the machine (as seen from the harness's PID namespace).
pub fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

pub fn is_live(pid: u32) -> bool {
    read_stat(pid).is_some_and(|s| s.is_live())
}

/// Waits until `pid` has ended (exited, a zombie included) or `limit` has passed; true when it
/// ended. The wait is on a pidfd, which becomes readable when the process ends, so no polling: the
/// process need not be our child.
pub async fn wait_ended(pid: u32, limit: Duration) -> bool {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        // ESRCH: gone already; anything else (no pidfd before Linux 5.3): ask /proc
        return !is_live(pid);
    }
    // SAFETY: the descriptor was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until it is dropped.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    };
    let Ok(fd) = registered else {
        return !is_live(pid);
    };
    tokio::time::timeout(limit, fd.readable()).await.is_ok() || !is_live(pid)
}

/// The argv of a process, empty when it is gone or a kernel thread.
pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The program a process runs.
pub fn exe(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The PID namespace of a process, e.g. "pid:[4026532291]".
pub fn pid_namespace(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether the process has a handler for the signal (`SigCgt` in /proc/PID/status).
pub fn catches_signal(pid: u32, signal: Signal) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (signal as i32 - 1)) != 0)
}

/// Sends SIGKILL to each pid and waits (bounded) until none is live.
pub fn kill_and_wait(pids: &[u32], deadline: Duration) -> Vec<u32> {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    let until = Instant::now() + deadline;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| is_live(*p)).collect();
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The processes of one pipeline run.
#[derive(Debug)]
pub struct ProcessTree {
    /// The process the supervisor spawned (strace, unshare, or the pipeline itself).
    spawned: u32,
    /// How many launcher processes stand between `spawned` and the pipeline's main process.
    launchers: usize,
    main: OnceLock<u32>,
    namespace: OnceLock<String>,
    use_namespace: bool,
    launcher_pids: Mutex<Vec<u32>>,
    /// pid -> start time of every member seen so far.
    known: Mutex<HashMap<u32, u64>>,
    /// pid -> start time of the launchers and the main process, so a reused pid is never signalled.
    identity: Mutex<HashMap<u32, u64>>,
    /// pid -> the parent that started it (strace's fork records).
    started_by: Mutex<HashMap<u32, u32>>,
}

impl ProcessTree {
    pub fn new(spawned: u32, launchers: usize, use_namespace: bool) -> Self {
        ProcessTree {
            spawned,
            launchers,
            main: OnceLock::new(),
            namespace: OnceLock::new(),
            use_namespace,
            launcher_pids: Mutex::new(Vec::new()),
            known: Mutex::new(HashMap::new()),
            identity: Mutex::new(
                read_stat(spawned)
                    .map(|s| (spawned, s.start_time))
                    .into_iter()
                    .collect(),
            ),
            started_by: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline's main process, once it exists (found by walking down the launchers).
    pub fn main(&self) -> Option<u32> {
        if let Some(m) = self.main.get() {
            return Some(*m);
        }
        let procs = all_processes();
        let mut chain = vec![self.spawned];
        for _ in 0..self.launchers {
            let parent = *chain.last().unwrap_or(&self.spawned);
            let parent_exe = exe(parent);
            // the next link has exec'd its own program: a launcher's short-lived helper
            // (strace forks one to probe the kernel) or a fork not yet exec'd is not it
            let child = procs
                .iter()
                .filter(|p| p.ppid == parent && p.is_live())
                .map(|p| p.pid)
                .filter(|p| exe(*p).is_some_and(|e| Some(&e) != parent_exe.as_ref()))
                .min()?;
            chain.push(child);
        }
        let main = chain.pop()?;
        if self.use_namespace {
            let ns = pid_namespace(main)?;
            // the launcher's namespace is the harness's; the main process must be in a new one
            if pid_namespace(self.spawned).as_deref() == Some(ns.as_str()) {
                return None;
            }
            let _ = self.namespace.set(ns);
        }
        {
            let mut identity = self.identity.lock().unwrap_or_else(|e| e.into_inner());
            for &pid in chain.iter().chain([&main]) {
                if let Some(stat) = read_stat(pid) {
                    identity.entry(pid).or_insert(stat.start_time);
                }
            }
        }
        *self.launcher_pids.lock().unwrap_or_else(|e| e.into_inner()) = chain;
        let _ = self.main.set(main);
        if let Some(stat) = read_stat(main) {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(main, stat.start_time);
        }
        Some(main)
    }

    /// The harness's launcher processes (strace, unshare): killed at the end, never scanned.
    pub fn launchers(&self) -> Vec<u32> {
        if self.launchers == 0 {
            return Vec::new();
        }
        let mut l = self
            .launcher_pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !l.contains(&self.spawned) {
            l.push(self.spawned);
        }
        l
    }

    /// Whether `pid` is still the process this tree knew by that number (not a reuse of the number).
    pub fn still_same(&self, pid: u32) -> bool {
        let recorded = self
            .identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .copied()
            .or_else(|| {
                self.known
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&pid)
                    .copied()
            });
        recorded.is_some_and(|start| read_stat(pid).is_some_and(|s| s.start_time == start))
    }

    /// Records strace's evidence that `parent` started `child`.
    pub fn note_started(&self, child: u32, parent: Option<u32>) {
        if let Some(parent) = parent {
            self.started_by
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(child, parent);
        }
        // the parent may be gone already (a daemon's double fork); a process started before the
        // main process is certainly not the one strace saw
        let main_start = self.main().and_then(read_stat).map_or(0, |m| m.start_time);
        if let Some(stat) = read_stat(child).filter(|s| s.start_time >= main_start) {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(child, stat.start_time);
        }
    }

    /// Who started `pid`, when strace saw it.
    pub fn started_by(&self, pid: u32) -> Option<u32> {
        self.started_by
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .copied()
    }

    /// Every live process of the pipeline (launchers excluded), with its stat.
    pub fn members(&self) -> Vec<ProcStat> {
        let _ = self.main();
        let procs = all_processes();
        let by_pid: HashMap<u32, ProcStat> = procs.iter().map(|p| (p.pid, *p)).collect();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in &procs {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let launchers: HashSet<u32> = self.launchers().into_iter().collect();
        let mut roots: Vec<u32> = self.main.get().copied().into_iter().collect();
        {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            roots.extend(
                known
                    .iter()
                    .filter(|(pid, start)| by_pid.get(pid).is_some_and(|s| s.start_time == **start))
                    .map(|(p, _)| *p),
            );
        }
        if let Some(ns) = self.namespace.get() {
            roots.extend(
                procs
                    .iter()
                    .filter(|p| pid_namespace(p.pid).as_deref() == Some(ns.as_str()))
                    .map(|p| p.pid),
            );
        }
        let mut seen: HashSet<u32> = HashSet::new();
        let mut queue: VecDeque<u32> = roots.into_iter().collect();
        while let Some(pid) = queue.pop_front() {
            if !by_pid.contains_key(&pid) || !seen.insert(pid) {
                continue;
            }
            queue.extend(children.get(&pid).into_iter().flatten());
        }
        let members: Vec<ProcStat> = seen
            .into_iter()
            .filter(|p| !launchers.contains(p))
            .filter_map(|p| by_pid.get(&p).copied())
            .filter(ProcStat::is_live)
            .collect();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for m in &members {
            known.insert(m.pid, m.start_time);
        }
        members
    }

    pub fn in_namespace(&self) -> bool {
        self.namespace.get().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_of_self_is_live_and_parented() {
        let me = read_stat(std::process::id()).expect("own stat");
        assert!(me.is_live());
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.start_time > 0);
        assert!(!cmdline(std::process::id()).is_empty());
    }

    #[test]
    fn sigcgt_reflects_installed_handlers() {
        // the test process has no SIGUSR2 handler; a shell with a trap has one
        assert!(!catches_signal(std::process::id(), Signal::SIGUSR2));
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "trap 'exit 0' USR2; echo ready; while :; do sleep 0.05; done",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let caught = catches_signal(child.id(), Signal::SIGUSR2);
        let left = kill_and_wait(&[child.id()], Duration::from_secs(5));
        let _ = child.wait();
        assert!(caught);
        assert!(left.is_empty());
    }

    #[tokio::test]
    async fn wait_ended_times_out_on_a_live_process_and_sees_its_end_unreaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        assert!(!wait_ended(pid, Duration::from_millis(50)).await);
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        // a zombie, not reaped yet, counts as ended
        let started = Instant::now();
        assert!(wait_ended(pid, Duration::from_secs(10)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!is_live(pid));
        let _ = child.wait();
        // a pid that is gone (reaped) has ended too
        assert!(wait_ended(pid, Duration::from_secs(10)).await);
    }
}
