//! Evidence events: what the monitors saw, when, and which monitor saw it; plus each monitor's health.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use traceless_scan::scan::{Hit, ImageMatch};

/// The monitors of a run; each one reports its own [`MonitorStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MonitorKind {
    Filesystem,
    Syscall,
    Egress,
    Logs,
    Memory,
    ProcessTree,
}

impl MonitorKind {
    /// Every monitor there is.
    pub const ALL: [MonitorKind; 6] = [
        MonitorKind::Filesystem,
        MonitorKind::Syscall,
        MonitorKind::Egress,
        MonitorKind::Logs,
        MonitorKind::Memory,
        MonitorKind::ProcessTree,
    ];

    /// The kebab-case name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            MonitorKind::Filesystem => "filesystem",
            MonitorKind::Syscall => "syscall",
            MonitorKind::Egress => "egress",
            MonitorKind::Logs => "logs",
            MonitorKind::Memory => "memory",
            MonitorKind::ProcessTree => "process-tree",
        }
    }
}

/// Whether a monitor watched everything it is meant to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MonitorState {
    Active,
    Degraded,
    Unavailable,
}

/// A monitor's state, and why when it is not fully active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MonitorStatus {
    pub monitor: MonitorKind,
    pub state: MonitorState,
    pub reason: Option<String>,
}

impl MonitorStatus {
    pub fn active(monitor: MonitorKind) -> Self {
        MonitorStatus {
            monitor,
            state: MonitorState::Active,
            reason: None,
        }
    }

    pub fn degraded(monitor: MonitorKind, reason: impl Into<String>) -> Self {
        MonitorStatus {
            monitor,
            state: MonitorState::Degraded,
            reason: Some(reason.into()),
        }
    }

    pub fn unavailable(monitor: MonitorKind, reason: impl Into<String>) -> Self {
        MonitorStatus {
            monitor,
            state: MonitorState::Unavailable,
            reason: Some(reason.into()),
        }
    }
}

/// One observation: milliseconds since the log started, the monitor, the process, and what happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Event {
    pub t_ms: u64,
    pub monitor: MonitorKind,
    pub pid: Option<u32>,
    pub kind: EventKind,
}

/// What was observed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EventKind {
    /// A file was written and read back at once; `hits` are the canaries found in it.
    FileWritten {
        path: PathBuf,
        size: u64,
        hits: Vec<Hit>,
        image_match: Option<ImageMatch>,
    },
    /// A file was written but was gone before it could be read.
    FileVanished {
        path: PathBuf,
        size: Option<u64>,
    },
    /// A chunk of stdout, stderr or a log file that holds canaries; `offset` is the stream offset of the chunk.
    Output {
        stream: String,
        offset: u64,
        excerpt: String,
        hits: Vec<Hit>,
    },
    /// An open for writing (`flags` as strace printed them); `result` is the fd or -1.
    Open {
        path: PathBuf,
        flags: String,
        result: i64,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Unlink {
        path: PathBuf,
    },
    /// A file opened for writing was closed; `written` counts the bytes written through that
    /// descriptor (write, pwrite and their vector forms; not what a shared mapping changed).
    Closed {
        path: PathBuf,
        written: u64,
    },
    /// A connect(); `address` is "127.0.0.1:443", "[::1]:53" or a unix socket path;
    /// `result` is "0" or "-1 ENETUNREACH".
    Connect {
        address: String,
        family: String,
        result: String,
    },
    /// A sendto()/sendmsg(); the address is the explicit destination or the connected peer when known.
    Send {
        address: Option<String>,
        bytes: u64,
    },
    DnsQuery {
        name: String,
        qtype: String,
        answered: bool,
    },
    Exec {
        argv: Vec<String>,
    },
    ProcessStarted {
        parent: Option<u32>,
        argv: Vec<String>,
    },
    /// A process that outlived the main process or left its session (a daemon); it was killed.
    Orphan {
        argv: Vec<String>,
        /// When it started, on the log's clock, if known.
        started_ms: Option<u64>,
        why: OrphanReason,
    },
    /// Canaries in a process's memory; hit offsets are virtual addresses.
    MemoryHits {
        mapping: String,
        hits: Vec<Hit>,
    },
}

/// The shared, append-only list of events of one audit. Cloning shares it.
#[derive(Debug, Clone)]
pub struct EventLog {
    inner: Arc<LogInner>,
}

#[derive(Debug)]
struct LogInner {
    start: Instant,
    start_unix: f64,
    events: Mutex<Vec<Event>>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl EventLog {
    /// A new log; its start is now.
    pub fn new() -> Self {
        let start_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        EventLog {
            inner: Arc::new(LogInner {
                start: Instant::now(),
                start_unix,
                events: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn push(&self, event: Event) {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    /// Pushes an event stamped now.
    pub fn record(&self, monitor: MonitorKind, pid: Option<u32>, kind: EventKind) {
        self.push(Event {
            t_ms: self.since_start_ms(),
            monitor,
            pid,
            kind,
        });
    }

    /// Every event so far, in arrival order.
    pub fn snapshot(&self) -> Vec<Event> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Lends every event so far to `f`, without copying them.
    pub fn with_events<R>(&self, f: impl FnOnce(&[Event]) -> R) -> R {
        f(&self.inner.events.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The events pushed after the first `start`, in push order.
    pub fn snapshot_from(&self, start: usize) -> Vec<Event> {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(start..)
            .unwrap_or_default()
            .to_vec()
    }

    pub fn len(&self) -> usize {
        self.inner
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn since_start_ms(&self) -> u64 {
        self.inner.start.elapsed().as_millis() as u64
    }

    /// Milliseconds since the start for a wall-clock time in seconds since the epoch (strace's `-ttt`).
    pub fn ms_at_unix(&self, unix_seconds: f64) -> u64 {
        let ms = (unix_seconds - self.inner.start_unix) * 1000.0;
        if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        }
    }
}

/// A process of the pipeline that outlived its main process or left its session (a daemon),
/// found at the stop and killed. Times are on the [`EventLog`]'s clock (ms since its start).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orphan {
    pub pid: u32,
    pub argv: Vec<String>,
    /// When it started (from its start time in /proc), if it could be read.
    pub started_ms: Option<u64>,
    /// When the supervisor found it, at the stop.
    pub seen_ms: u64,
    pub why: OrphanReason,
}

/// What made a process an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrphanReason {
    /// It called `setsid`: it left the main process's session.
    LeftSession,
    /// Its parent is no longer the process that started it (a double fork).
    Reparented,
    /// It was still running after the main process ended (no PID namespace ends it).
    OutlivedMain,
}
