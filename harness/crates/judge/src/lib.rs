//! The judging core of an audit: evidence in, a report out.
//!
//! [`evidence`] is everything a run observed, as plain data. [`check`] reads it, one module per
//! finding kind, and drafts findings; [`verdict`] gives each finding its clauses and waiver,
//! judges every clause of the map (pass only with evidence that the clause was exercised), and
//! assembles the `traceless-report` [`Report`](traceless_report::Report). [`merge`] joins the
//! reports of a sharded audit, judging each clause from the shards' verdicts. [`plan`] holds what
//! judging needs of the audit's inputs: the clause map, the waivers, the scenarios' plans.
//!
//! **Invariant:** nothing here does I/O. The crate depends on no runtime, no system-call crate
//! and no file system (a tidy test checks its dependencies and its sources), so every rule is
//! unit-tested on hand-made evidence in milliseconds.

pub mod check;
pub mod evidence;
pub mod merge;
pub mod plan;
pub mod verdict;
