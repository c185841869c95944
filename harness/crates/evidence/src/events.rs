//! Evidence events: what the monitors saw, when, and which monitor saw it; plus each monitor's health.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::hit::{Hit, ImageMatch};

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

    /// Marks the monitor degraded for `why`, after any earlier reason. One that never watched
    /// stays unavailable: degraded would claim it watched in part.
    pub fn degrade(&mut self, why: &str) {
        let reason = match (self.state, &self.reason) {
            (MonitorState::Unavailable, _) => return,
            (MonitorState::Degraded, Some(earlier)) => format!("{earlier}; {why}"),
            _ => why.to_owned(),
        };
        *self = MonitorStatus::degraded(self.monitor, reason);
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

/// A process of the pipeline that outlived its main process or left its session (a daemon),
/// found at the stop and killed. Times are on the audit's event-log clock (ms since its start).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrading_keeps_earlier_reasons_and_leaves_an_unavailable_monitor_alone() {
        let mut active = MonitorStatus::active(MonitorKind::Syscall);
        active.degrade("the reader panicked");
        assert_eq!(
            active,
            MonitorStatus::degraded(MonitorKind::Syscall, "the reader panicked")
        );
        let mut degraded = MonitorStatus::degraded(MonitorKind::Egress, "no DNS");
        degraded.degrade("the reader panicked");
        assert_eq!(
            degraded.reason.as_deref(),
            Some("no DNS; the reader panicked")
        );
        let mut unavailable = MonitorStatus::unavailable(MonitorKind::Memory, "no ptrace");
        unavailable.degrade("the reader panicked");
        assert_eq!(
            unavailable,
            MonitorStatus::unavailable(MonitorKind::Memory, "no ptrace")
        );
    }
}
