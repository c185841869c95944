//! Runs a pipeline under audit in isolation and watches everything it does.
//!
//! The pipeline is a black box in any language. This crate gives the harness three things:
//!
//! - **isolation** ([`isolate`]): the harness process moves into a private network namespace with
//!   loopback only, so the harness, its mock providers and the pipeline share a network nothing can
//!   leave; name lookups go to the audit's own resolver ([`dns`]), which records every question.
//! - **supervision** ([`supervisor::Supervisor`], the main type): the pipeline runs with a cleared
//!   environment and private `TMPDIR`/`HOME`, in a PID namespace of its own, under
//!   `strace -f --seccomp-bpf`; its health is polled, its process tree followed, and at the end every
//!   process of it, daemons included, is gone.
//! - **monitors**, each turning what it sees into [`events::Event`]s in one shared
//!   [`events::EventLog`] and reporting whether it could watch at all ([`events::MonitorStatus`]):
//!   the filesystem ([`filesystem`]: inotify, strace's opens, before/after snapshots), the logs
//!   ([`output`]: stdout and stderr as streams), syscalls and egress ([`strace`]), memory
//!   ([`memory`]: /proc/PID/mem of every live process) and the process tree ([`proctree`]).
//!
//! - **cleaning up** ([`audit_dir`]): the audit's temp dir is locked by its owner, so the next audit
//!   removes the ones whose owner was killed.
//!
//! Everything found is matched by `traceless-scan`'s [`Scanner`](traceless_scan::scan::Scanner);
//! this crate knows nothing of checks, findings or reports: it only says what happened.

pub mod audit_dir;
pub mod dns;
pub mod events;
pub mod filesystem;
pub mod isolate;
pub mod memory;
pub mod output;
pub mod proctree;
pub mod spool;
pub mod stopped;
pub mod strace;
pub mod supervisor;

pub use events::{Event, EventKind, EventLog, MonitorKind, MonitorState, MonitorStatus};
pub use supervisor::{PipelineSpec, StopReport, Supervisor};
