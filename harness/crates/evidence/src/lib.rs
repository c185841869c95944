//! What an audit observes, as plain data: the canary hits the scanner finds, the events the
//! monitors record, and the calls the mock providers receive.
//!
//! This crate is the vocabulary shared by the crates that gather evidence (scan, sandbox, mock)
//! and the one that judges it (judge). It does no I/O and depends on nothing that does: the
//! judging core builds on it without pulling in a runtime.

mod b64;
pub mod events;
pub mod hit;
pub mod provider;
