//! The audit's event log, shared by every monitor. The events themselves are plain data
//! (`traceless_evidence::events`), re-exported here for the monitors that record them.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use traceless_evidence::events::{
    Event, EventKind, MonitorKind, MonitorState, MonitorStatus, Orphan, OrphanReason,
};

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
