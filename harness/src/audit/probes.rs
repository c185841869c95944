//! Active probes after the scenarios: can what the pipeline wrote be fetched back over its own
//! port, and does it refuse plaintext provider URLs at start-up?

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use traceless_sandbox::events::{Event, EventKind, EventLog, MonitorKind};
use traceless_sandbox::supervisor::{PipelineSpec, Supervisor};
use traceless_scan::scan::Scanner;

use super::client::Client;
use crate::evidence::{ExposureProbe, PlaintextProbe, ProbeOutcome};

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

/// Scans again every written file still on disk with every needle known now (a generated
/// image becomes a needle only after its provider call is attributed).
pub fn rescan(files: &[PathBuf], scanner: &Scanner, log: &EventLog) {
    for path in files {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let hits = scanner.scan(&bytes);
        let image_match = scanner.match_image(&bytes);
        if !hits.is_empty() || image_match.is_some() {
            log.record(
                MonitorKind::Filesystem,
                None,
                EventKind::FileWritten {
                    path: path.clone(),
                    size: bytes.len() as u64,
                    hits,
                    image_match,
                },
            );
        }
    }
}

/// Common ways a backend serves files: its working directory as the web root, or under a
/// static prefix, or by bare file name.
fn candidate_paths(workdir: &Path, file: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(rel) = file.strip_prefix(workdir) {
        let rel = rel.to_string_lossy();
        out.push(format!("/{rel}"));
        for prefix in ["static", "files", "public", "media"] {
            out.push(format!("/{prefix}/{rel}"));
        }
    }
    for prefix in ["", "static/", "uploads/", "files/", "outputs/", "images/"] {
        out.push(format!("/{prefix}{name}"));
    }
    out.sort();
    out.dedup();
    out
}

pub async fn exposure(
    client: &Client,
    workdir: &Path,
    files: &[PathBuf],
    scanner: &RwLock<Scanner>,
) -> Vec<ExposureProbe> {
    let workdir = workdir
        .canonicalize()
        .unwrap_or_else(|_| workdir.to_path_buf());
    let mut out = Vec::new();
    for file in files {
        for path in candidate_paths(&workdir, file) {
            let Some((status, body)) = client.get(&path).await else {
                continue;
            };
            if status != 200 || body.is_empty() {
                continue;
            }
            let hits = scanner.read().expect("scanner lock").scan(&body);
            if !hits.is_empty() {
                out.push(ExposureProbe {
                    url: path,
                    status,
                    hits,
                    file: file.display().to_string(),
                });
                break;
            }
        }
    }
    out
}

/// Starts the pipeline with plaintext provider URLs: refusing at start-up is the pass.
/// `variables` names the environment variables that were given `http://` URLs.
pub async fn plaintext(
    spec: PipelineSpec,
    health_url: &str,
    variables: Vec<String>,
    scanner: &Arc<RwLock<Scanner>>,
    cancel: &CancellationToken,
) -> anyhow::Result<PlaintextProbe> {
    let log = EventLog::new();
    let supervisor = Supervisor::start(spec, scanner.clone(), log).await?;
    let url = health_url;
    let outcome = tokio::select! {
        r = supervisor.wait_healthy(url, Duration::from_secs(10)) => match r {
            Ok(()) => ProbeOutcome::Accepted,
            Err(e) => {
                let msg = format!("{e:#}");
                if msg.contains("exit") { ProbeOutcome::Refused { exit: msg } } else { ProbeOutcome::Inconclusive(msg) }
            }
        },
        () = cancel.cancelled() => ProbeOutcome::Inconclusive("interrupted".into()),
    };
    supervisor.stop(Duration::from_secs(2)).await;
    Ok(PlaintextProbe { variables, outcome })
}
