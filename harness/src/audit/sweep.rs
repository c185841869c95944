//! The end-of-run sweep: everything gathered during the run, scanned again with every needle, live
//! and retired, in one pass over the needles.
//!
//! A live scan sees only the needles live at its moment. Two kinds are not: those of requests
//! already retired to disk (long audits), and a generated image, which becomes a needle only once
//! its provider call is attributed. So once the pipeline, the services and the mocks have stopped,
//! six kinds of haystack are read again: the answers and the provider calls (what the live needles
//! left unexplained of them when they arrived, kept on disk: `kept.rs`), the public-exposure
//! probes' answers, the files the pipeline wrote, the spool (its output and the files the monitors
//! read) and the services' folders. Retired needles are rebuilt into an index a generation (4 MB of
//! needles) at a time, and rebuilding is what a sweep costs; each generation is therefore built once
//! and every haystack scanned with it ([`Scanner::sweep_passes`]), not once per kind of haystack.

use std::path::PathBuf;

use traceless_sandbox::events::{EventLog, MonitorKind, MonitorState, MonitorStatus};
use traceless_sandbox::spool::Spool;
use traceless_scan::scan::{Haystacks, Scanner, SweepPass};

use super::exposure::Exposure;
use super::kept::Kept;
use super::probes::Rescan;
use super::services::{Planned, ScanPass};
use crate::evidence::{Evidence, ExposureProbe, ServiceScan};

/// What the run gathered that the sweep reads again.
pub struct Gathered<'a> {
    /// The answers and provider calls, as their residues.
    pub kept: &'a mut Kept,
    pub exposure: Exposure,
    pub written: &'a [PathBuf],
    /// The pipeline's spool, once its monitors have stopped.
    pub spool: Option<&'a Spool>,
    pub services: &'a [Planned],
}

/// What the sweep found (the answers' and calls' hits went to the residue passes in `kept`). When
/// the retired needles could not all be read back (`error`), each part holds the hits of the live
/// needles and of the generations read before the failure.
pub struct Swept {
    pub exposure: Vec<ExposureProbe>,
    pub services: Vec<ServiceScan>,
    /// Monitors whose bytes the spool did not all keep, and why.
    pub incomplete: Vec<(MonitorKind, String)>,
    pub error: Option<std::io::Error>,
}

/// Sweeps everything gathered. Files written and spool findings no live scan reported go to `log`
/// as events. Blocking: a sweep reads files and rebuilds indexes.
pub fn sweep(scanner: &Scanner, gathered: Gathered<'_>, log: &EventLog) -> Swept {
    let exposed = gathered.exposure.pending_answers();
    let mut exposure = Haystacks::new(exposed.len(), |i| {
        Some(std::borrow::Cow::Borrowed(exposed[i]))
    });
    let mut written = Rescan::new(gathered.written);
    // The events known so far: hits the live scans reported are not reported again.
    let mut spool = gathered
        .spool
        .map(|s| log.with_events(|known| s.sweep_pass(known)));
    let mut services = ScanPass::new(gathered.services);
    let (answer_bytes, call_bytes) = gathered.kept.residue_bytes();
    let result = {
        let mut passes: Vec<&mut dyn SweepPass> = gathered.kept.passes().into();
        passes.extend([
            &mut exposure as &mut dyn SweepPass,
            &mut written,
            &mut services,
        ]);
        if let Some(spool) = &mut spool {
            passes.push(spool);
        }
        scanner.sweep_passes(&mut passes)
    };
    let error = result.err();
    tracing::debug!(
        "end-of-run sweep: residues of {answer_bytes} answer bytes, {} exposure bytes, {call_bytes} provider-call bytes",
        exposure.residue_bytes(),
    );
    written.record(log);
    let mut incomplete = Vec::new();
    if let Some(spool) = spool {
        let found = log.with_events(|known| spool.finish(known));
        if !found.events.is_empty() {
            tracing::info!(
                "the end-of-run sweep of the pipeline's output and files found {} more event(s)",
                found.events.len()
            );
        }
        for e in found.events {
            log.push(e);
        }
        incomplete = found.incomplete;
    }
    let exposure_hits = exposure.into_hits();
    Swept {
        exposure: gathered.exposure.with_swept(exposure_hits),
        services: services.finish(error.as_ref()),
        incomplete,
        error,
    }
}

/// The sweep as a stage of the run: once the pipeline, the services and the mocks' recording
/// are done, sweeps everything gathered and puts what it found into `evidence`: the answers' hits,
/// the exposure probes, the services' scans, the monitors' final statuses, and every provider call
/// attributed with every needle.
pub fn stage(
    plan: &super::Plan<'_>,
    stage: &super::stage::Stage,
    driven: super::drive::Driven,
    stopped: super::stop::Stopped,
    evidence: &mut Evidence,
    errors: &mut Vec<String>,
) {
    let mut kept = driven.kept;
    {
        // Calls that arrived after driving (the plaintext-URL probe's, a late retry's).
        let mut scanner = stage.scanner.write().expect("scanner lock");
        for call in stage.mocks.take_recorded() {
            if let Err(e) = kept.keep_call(call, &mut scanner, &evidence.requests, &stage.log) {
                errors.push(format!(
                    "keeping a provider call for the end-of-run sweep: {e}"
                ));
            }
        }
    }
    if let Some(e) = super::pinning::error(
        &stage.mocks.tls_refusals(),
        kept.calls.iter().map(|c| &c.recorded),
        &super::launch::ca_variables(&stage.spec, &stage.ws),
    ) {
        errors.push(e);
    }
    (plan.progress)(super::Step::Phase("sweeping everything with every needle"));
    let scanner = stage.scanner.read().expect("scanner lock");
    let swept = tokio::task::block_in_place(|| {
        sweep(
            &scanner,
            Gathered {
                kept: &mut kept,
                exposure: driven.exposure,
                written: &driven.written,
                spool: stopped.spool.as_deref(),
                services: &stage.planned,
            },
            &stage.log,
        )
    });
    if let Some(e) = &swept.error {
        errors.push(format!(
            "reading the retired needles back for the end-of-run sweep: {e}"
        ));
    }
    evidence.exposure_probes = swept.exposure;
    evidence.services = swept.services;
    if stopped.spool.is_some() {
        let mut statuses = stopped.statuses;
        degrade(&mut statuses, swept.incomplete);
        evidence.monitors = monitor_statuses(statuses, &plan.isolation, evidence);
    }
    evidence.provider_calls = kept.finish(&mut evidence.requests, &stage.log);
}

/// Marks each monitor in `incomplete` degraded, with the reason.
fn degrade(statuses: &mut [MonitorStatus], incomplete: Vec<(MonitorKind, String)>) {
    for (monitor, why) in incomplete {
        if let Some(s) = statuses.iter_mut().find(|s| s.monitor == monitor) {
            s.degrade(&why);
        }
    }
}

/// Each monitor's final status. The egress monitor takes the isolation's status when that is
/// weaker (no namespace: connections could leave); the memory monitor is active only if a scan
/// of the whole tree completed.
fn monitor_statuses(
    mut statuses: Vec<MonitorStatus>,
    isolation: &MonitorStatus,
    ev: &Evidence,
) -> Vec<MonitorStatus> {
    if isolation.state != MonitorState::Active {
        statuses.retain(|s| s.monitor != MonitorKind::Egress);
        statuses.push(isolation.clone());
    }
    if ev.memory_scans.is_empty() {
        statuses.retain(|s| s.monitor != MonitorKind::Memory);
        statuses.push(MonitorStatus {
            monitor: MonitorKind::Memory,
            state: MonitorState::Unavailable,
            reason: Some("no memory scan of the pipeline's tree completed".to_owned()),
        });
    }
    statuses.sort_by_key(|s| s.monitor);
    statuses
}
