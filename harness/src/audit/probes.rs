//! After the scenarios: the files the pipeline wrote (scanned again once every output is known),
//! and whether it refuses plaintext provider URLs at start-up.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use traceless_sandbox::events::{Event, EventKind, EventLog, MonitorKind};
use traceless_sandbox::supervisor::{PipelineSpec, Ready, Supervisor};
use traceless_scan::scan::{Generation, Hit, ImageMatch, Residue, Scanner, SweepPass, merge_hits};

use crate::evidence::ProbeOutcome;

/// Every file the pipeline wrote (read back or vanished), once each. With syscalls traced, only
/// files its own process tree opened for writing: shared folders also see other programs.
pub fn written_files(events: &[Event], traced: bool) -> Vec<PathBuf> {
    let opened: std::collections::HashSet<&Path> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Open { path, .. } => Some(path.as_path()),
            _ => None,
        })
        .collect();
    let mut out: Vec<PathBuf> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FileWritten { path, .. } | EventKind::FileVanished { path, .. } => {
                Some(path.clone())
            }
            _ => None,
        })
        .filter(|p| !traced || opened.contains(p.as_path()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every written file still on disk, scanned again with every needle known now, retired ones too
/// (a generated image becomes a needle only after its provider call is attributed; a file written
/// late may hold the image of a request judged long ago): one pass of the end-of-run sweep.
pub struct Rescan<'a> {
    files: &'a [PathBuf],
    /// Size and perceptual match, taken at a file's first read, with the live needles (hashes are
    /// never retired).
    first_read: Vec<Option<(u64, Option<ImageMatch>)>>,
    hits: Vec<Vec<Hit>>,
    residues: Vec<Residue>,
}

impl<'a> Rescan<'a> {
    pub fn new(files: &'a [PathBuf]) -> Self {
        Rescan {
            files,
            first_read: vec![None; files.len()],
            hits: vec![Vec::new(); files.len()],
            residues: vec![Residue::default(); files.len()],
        }
    }

    /// Records each file with a hit or an image match as written.
    pub fn record(self, log: &EventLog) {
        for ((path, hits), read) in self.files.iter().zip(self.hits).zip(self.first_read) {
            let Some((size, image_match)) = read else {
                continue;
            };
            let hits = merge_hits(hits);
            if !hits.is_empty() || image_match.is_some() {
                log.record(
                    MonitorKind::Filesystem,
                    None,
                    EventKind::FileWritten {
                        path: path.clone(),
                        size,
                        hits,
                        image_match,
                    },
                );
            }
        }
    }
}

impl SweepPass for Rescan<'_> {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()> {
        for (i, path) in self.files.iter().enumerate() {
            if self.residues[i].is_explained() {
                continue;
            }
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            if self.first_read[i].is_none() {
                self.first_read[i] = Some((bytes.len() as u64, generation.match_image(&bytes)));
            }
            self.hits[i].extend(self.residues[i].scan(generation, &bytes));
        }
        Ok(())
    }
}

/// What the pipeline did when started with plaintext provider URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// It answered its health check.
    Healthy,
    /// Its main process ended first: (exit code, signal), and the end of its stderr.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        stderr: String,
    },
    /// Neither, in time (or the audit was interrupted): why.
    Undecided(String),
}

/// Starts the pipeline with plaintext provider URLs and reports what it did.
pub async fn plaintext(
    spec: PipelineSpec,
    ready: &Ready,
    scanner: &Arc<RwLock<Scanner>>,
    cancel: &CancellationToken,
) -> anyhow::Result<Started> {
    let log = EventLog::new();
    let supervisor = Supervisor::start(spec, scanner.clone(), log).await?;
    let started = tokio::select! {
        r = supervisor.wait_ready(ready, Duration::from_secs(10)) => match r {
            Ok(()) => Started::Healthy,
            Err(e) => match supervisor.main_exit() {
                Some((code, signal)) => Started::Exited {
                    code,
                    signal,
                    stderr: supervisor.final_stderr_tail(Duration::from_secs(1)).await,
                },
                None => Started::Undecided(format!("{e:#}")),
            },
        },
        () = cancel.cancelled() => Started::Undecided("interrupted".into()),
    };
    supervisor.stop(Duration::from_secs(2)).await;
    Ok(started)
}

/// Signs that a process died of a fault rather than by deciding to exit.
const CRASH_SIGNS: &[&str] = &[
    "Traceback (most recent call last)",
    "panicked at",
    "Segmentation fault",
    "core dumped",
    "FATAL ERROR",
    "Unhandled",
];

/// Words a refusal of plaintext URLs names what it refuses with.
const REFUSAL_WORDS: &[&str] = &["http://", "https", "plaintext", "tls", "scheme", "insecure"];

/// The probe's verdict. Refused only when the pipeline decided to exit: a non-zero exit code
/// before answering, with nothing sent in plaintext to a provider, and not a crash that says
/// nothing of the URLs. A plaintext request that reached a mock is acceptance whatever the
/// process did next.
pub fn judge_plaintext(
    started: Started,
    sent_plaintext: bool,
    variables: &[String],
) -> ProbeOutcome {
    if sent_plaintext {
        return ProbeOutcome::Accepted;
    }
    match started {
        Started::Healthy => ProbeOutcome::Accepted,
        Started::Undecided(why) => ProbeOutcome::Inconclusive(format!(
            "it neither refused to start nor became healthy: {why}"
        )),
        Started::Exited {
            signal: Some(sig), ..
        } => ProbeOutcome::Inconclusive(format!(
            "it was killed by {}: a crash, not a refusal",
            super::launch::describe_exit(None, Some(sig))
        )),
        Started::Exited { code: Some(0), .. } => ProbeOutcome::Inconclusive(
            "it exited with code 0 before answering: neither a refusal nor a service".to_owned(),
        ),
        Started::Exited { code, stderr, .. } => {
            let lower = stderr.to_lowercase();
            let names_it = REFUSAL_WORDS.iter().any(|w| lower.contains(w))
                || variables.iter().any(|v| stderr.contains(v.as_str()));
            let crashed = CRASH_SIGNS.iter().any(|s| stderr.contains(s));
            let exit = super::launch::describe_exit(code, None);
            if crashed && !names_it {
                ProbeOutcome::Inconclusive(format!(
                    "it crashed at start-up ({exit}) without naming the provider URLs; its stderr ends with: {}",
                    tail(&stderr, 400)
                ))
            } else {
                ProbeOutcome::Refused {
                    exit: format!("{exit}; its stderr ends with: {}", tail(&stderr, 400)),
                }
            }
        }
    }
}

fn tail(s: &str, max: usize) -> &str {
    let t = s.trim_end();
    let mut start = t.len().saturating_sub(max);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    &t[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: Option<i32>, signal: Option<i32>, stderr: &str) -> Started {
        Started::Exited {
            code,
            signal,
            stderr: stderr.to_owned(),
        }
    }

    #[test]
    fn only_a_decision_to_exit_is_a_refusal() {
        let vars = ["OPENAI_BASE_URL".to_owned()];
        let refusal = exited(
            Some(2),
            None,
            "OPENAI_BASE_URL is a plaintext URL (http://127.0.0.2/v1); providers must be reached over https",
        );
        assert!(matches!(
            judge_plaintext(refusal.clone(), false, &vars),
            ProbeOutcome::Refused { .. }
        ));
        // Whatever it printed, a plaintext call that reached a provider is acceptance.
        assert_eq!(
            judge_plaintext(refusal, true, &vars),
            ProbeOutcome::Accepted
        );
        assert_eq!(
            judge_plaintext(Started::Healthy, false, &vars),
            ProbeOutcome::Accepted
        );
        for (started, why) in [
            (exited(None, Some(11), ""), "SIGSEGV"),
            (exited(Some(0), None, ""), "code 0"),
            (
                exited(
                    Some(1),
                    None,
                    "Traceback (most recent call last):\n  File \"app.py\"\nModuleNotFoundError: No module named 'flask'",
                ),
                "crashed at start-up",
            ),
            (
                Started::Undecided("no answer within 10 s".into()),
                "no answer",
            ),
        ] {
            match judge_plaintext(started, false, &vars) {
                ProbeOutcome::Inconclusive(msg) => assert!(msg.contains(why), "{msg}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        // A traceback that names the URL is a refusal by exception.
        assert!(matches!(
            judge_plaintext(
                exited(
                    Some(1),
                    None,
                    "Traceback (most recent call last):\nValueError: OPENAI_BASE_URL must be https"
                ),
                false,
                &vars
            ),
            ProbeOutcome::Refused { .. }
        ));
    }
}
