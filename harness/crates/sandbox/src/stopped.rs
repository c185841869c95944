//! Why a monitor's worker stopped watching before its source ended.
//!
//! Each monitor reads on a thread or task of its own (an output pump, strace's reader, the
//! filesystem worker). One that dies by a panic or a read error leaves the rest of its source
//! unread, and the monitor must not vouch for what nobody read: the supervisor turns a recorded
//! reason into a degraded [`MonitorStatus`](crate::events::MonitorStatus), so the checks that rely
//! on that monitor are not-tested instead of passing.

use std::sync::{Arc, Mutex};

/// The first reason a worker gave for stopping early; shared between the worker and the supervisor.
#[derive(Debug, Clone, Default)]
pub struct StoppedEarly(Arc<Mutex<Option<String>>>);

impl StoppedEarly {
    /// Records `why`, unless an earlier reason is already recorded (the first one is the cause).
    pub fn fail(&self, why: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| why.into());
    }

    /// Why the worker stopped early, if it did.
    pub fn failure(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A guard for the worker's body: dropped while its thread panics, it records that `who`
    /// panicked.
    pub fn on_panic(&self, who: &'static str) -> PanicGuard {
        PanicGuard {
            stopped: self.clone(),
            who,
        }
    }
}

/// Records a panic of the worker that holds it; see [`StoppedEarly::on_panic`].
pub struct PanicGuard {
    stopped: StoppedEarly,
    who: &'static str,
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.stopped.fail(format!("{} panicked", self.who));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_that_panics_says_so_and_one_that_returns_does_not() {
        let stopped = StoppedEarly::default();
        let quiet = stopped.clone();
        std::thread::spawn(move || {
            let _guard = quiet.on_panic("the quiet worker");
        })
        .join()
        .unwrap();
        assert_eq!(stopped.failure(), None);

        let dying = stopped.clone();
        let joined = std::thread::spawn(move || {
            let _guard = dying.on_panic("the dying worker");
            panic!("injected");
        })
        .join();
        assert!(joined.is_err());
        assert_eq!(
            stopped.failure().as_deref(),
            Some("the dying worker panicked")
        );
    }

    #[test]
    fn the_first_reason_is_kept() {
        let stopped = StoppedEarly::default();
        stopped.fail("first");
        stopped.fail("second");
        assert_eq!(stopped.failure().as_deref(), Some("first"));
    }
}
