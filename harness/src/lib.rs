//! Traceless audits an image-generation backend against its privacy policy, with evidence.
//!
//! The backend is a black box: any program, in any language, that takes a photo, sends it to
//! OpenAI or Gemini and answers with the generated image. `traceless audit` starts it in a
//! private network namespace under every monitor, points it at mock providers served over TLS
//! from a per-audit CA, drives it with scenario files and property cases whose every request
//! carries fresh canaries (a random image with EXIF, a device id, a client address, a prompt
//! marker), and then judges what it saw against the policy's clause map.
//!
//! Data flows one way: [`scenario`] -> [`audit`] (pipeline + mocks + monitors) -> [`evidence`]
//! -> [`check`] (one module per finding kind) -> [`verdict`] -> report sinks
//! (`traceless-report`); the evidence itself is also written out whole ([`evidence_file`],
//! `evidence.jsonl` beside the report). The scanner (`traceless-scan`), the mocks (`traceless-mock`) and the
//! sandbox with its monitors (`traceless-sandbox`) are crates of their own; so is the judging core
//! (`traceless-judge`: evidence, checks, verdicts, without I/O), whose modules are re-exported here.
//!
//! **Architecture invariant:** the harness never links the pipeline crate; it audits a black
//! box, ours included.

pub mod assets;
pub mod audit;
pub mod clauses;
pub mod cli;
pub mod config;
pub mod evidence_file;
pub mod init;
pub mod scenario;

pub use traceless_judge::{check, evidence, verdict};
