//! Driving the pipeline: every scenario, then the property cases, then settling (every call
//! attributed, a last memory scan) and asking its port for what it kept (public exposure).

use std::path::PathBuf;
use std::sync::Arc;

use rand::SeedableRng as _;
use tokio_util::sync::CancellationToken;
use traceless_sandbox::supervisor::Supervisor;

use super::driver::{Driver, Halt};
use super::exposure::{self, Exposure};
use super::kept::Kept;
use super::stage::Stage;
use super::{Client, Plan, Step, probes, property};
use crate::evidence::Evidence;

/// What driving leaves for the stages after it.
#[derive(Default)]
pub struct Driven {
    pub interrupted: bool,
    /// The files the pipeline wrote, for the end-of-run sweep.
    pub written: Vec<PathBuf>,
    /// The exposure probes' findings, and the answers that wait for the sweep.
    pub exposure: Exposure,
    /// The answers and provider calls read during the run, and their residues.
    pub kept: Kept,
}

/// Drives a healthy pipeline. Evidence goes to `evidence`, failures to `errors`.
pub async fn run(
    plan: &Plan<'_>,
    stage: &Stage,
    supervisor: &Arc<Supervisor>,
    evidence: &mut Evidence,
    errors: &mut Vec<String>,
    cancel: &CancellationToken,
) -> anyhow::Result<Driven> {
    let cfg = plan.config;
    let client = Client::new(stage.pipeline_addr, cfg.audit.request_timeout)?;
    let mut driver = Driver {
        cfg,
        client: &client,
        mocks: &stage.mocks,
        scanner: &stage.scanner,
        log: &stage.log,
        supervisor,
        rng: rand::rngs::StdRng::seed_from_u64(plan.seed),
        next_id: 1,
        memory_scans: plan.monitors,
        last_memory_scan: None,
        kept: Kept::default(),
        batch_marks: (0, 0),
        evidence: &mut *evidence,
        retired_before: 1,
        memory_judged_ms: None,
    };
    let mut driven = Driven {
        interrupted: cancel.is_cancelled(),
        ..Driven::default()
    };
    driven.interrupted |= drive(&mut driver, plan, cancel, errors).await;
    settle(&mut driver, driven.interrupted, errors).await;
    driven.kept = std::mem::take(&mut driver.kept);
    let retired = stage
        .scanner
        .read()
        .expect("scanner lock")
        .retired_requests();
    if retired > 0 {
        tracing::info!(
            "needles of {retired} requests were retired to disk during the run; the end of the run sweeps them too"
        );
    }
    if !driven.interrupted && evidence.crash.is_none() {
        (plan.progress)(Step::Phase("probing for public exposure"));
        driven.written = probes::written_files(&stage.log.snapshot(), plan.monitors);
        driven.exposure = exposure::probe(
            &client,
            &stage.ws.workdir,
            &driven.written,
            &driven.kept.links,
            &stage.scanner,
        )
        .await;
        evidence.exposure_probed = true;
    }
    Ok(driven)
}

/// Drives every scenario, then the property cases; stops at an interruption or when the
/// pipeline dies. Returns whether it was interrupted.
async fn drive(
    driver: &mut Driver<'_>,
    plan: &Plan<'_>,
    cancel: &CancellationToken,
    errors: &mut Vec<String>,
) -> bool {
    for (position, scenario) in plan.scenarios.iter().enumerate() {
        if !plan.shard.owns(position as u64, plan.seed) {
            // Another shard's: its request ids are skipped, not reused.
            driver.next_id += scenario.requests.iter().map(|r| r.repeat).sum::<u32>();
            continue;
        }
        (plan.progress)(Step::Scenario(&scenario.id));
        tokio::select! {
            r = driver.scenario(scenario) => match r {
                Ok(()) => {}
                Err(Halt::PipelineDied) => return false,
                Err(Halt::Error(e)) => errors.push(format!("scenario {}: {e:#}", scenario.id)),
            },
            () = cancel.cancelled() => return true,
        }
    }
    let owned = property::owned_cases(plan.shard, plan.cases, plan.seed);
    if owned == 0 {
        return false;
    }
    (plan.progress)(Step::Phase(&format!("{owned} property cases")));
    tokio::select! {
        failure = property::run(driver, plan.cases, plan.seed, plan.shard, cancel) => {
            if let Some(f) = failure {
                errors.push(format!("{f} (replay: traceless audit --seed {})", plan.seed));
            }
            false
        }
        () = cancel.cancelled() => true,
    }
}

/// After driving: every call attributed, and, when the pipeline still runs, a last memory scan a
/// grace period after the last request.
async fn settle(driver: &mut Driver<'_>, interrupted: bool, errors: &mut Vec<String>) {
    if let Err(e) = driver.attribute_new_calls() {
        errors.push(format!("{e:#}"));
    }
    if !interrupted
        && driver.evidence.crash.is_none()
        && let Err(e) = driver.memory_check(true).await
    {
        errors.push(format!("the final memory scan: {e:#}"));
    }
}
