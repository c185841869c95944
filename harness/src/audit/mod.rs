//! One audit run: start the mocks and the pipeline under every monitor, drive the scenarios,
//! gather the evidence, stop everything. Judging the evidence is [`crate::check`]'s job.
//!
//! [`run`] is the sequence of stages, each a module with a narrow input and output:
//! [`stage`] (folders, keys, the mocks, the resolver, the scanner, the launch spec, with the
//! pure parts in [`launch`]), [`start`] (the declared [`services`], then the pipeline),
//! [`drive`] (scenarios through [`driver`], then [`property`] cases, settling, the exposure
//! probe), [`stop`] (the pipeline, the plaintext-URL probe, the services) and [`sweep`]
//! (everything gathered, read again with every needle; every provider call attributed).

mod attribution;
mod client;
mod drive;
mod driver;
mod exposure;
mod job;
mod kept;
pub(crate) mod launch;
mod metadata;
mod pinning;
mod prepare;
mod probes;
mod property;
mod services;
mod stage;
mod start;
mod stop;
mod sweep;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;
use traceless_sandbox::events::MonitorStatus;

use crate::config::Config;
use crate::evidence::Evidence;
use crate::scenario::Scenario;

pub use client::{Client, Payload};
pub use property::{SCENARIO_ID as PROPERTY_SCENARIO, owned_cases};

/// The harness's resolver inside the audit's network namespace.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);
/// Inside the namespace the providers' real host names resolve here, each mock on port 443.
pub const OPENAI_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub const GEMINI_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Transparent interception: every provider host name and the mock address it resolves to.
/// Extra configured names go to the OpenAI mock, whose API most gateways imitate.
pub fn interception_hosts(cfg: &Config) -> Vec<(String, std::net::IpAddr)> {
    cfg.interception
        .hosts
        .iter()
        .map(|h| {
            let ip = if h.contains("googleapis") {
                GEMINI_IP
            } else {
                OPENAI_IP
            };
            (h.clone(), std::net::IpAddr::V4(ip))
        })
        .collect()
}

/// What to run and how.
pub struct Plan<'a> {
    pub config: &'a Config,
    pub scenarios: &'a [Scenario],
    pub seed: u64,
    pub cases: u32,
    /// The part of the scenarios and property cases this run does (`--shard k/n`): the whole
    /// list is given, so that request ids are those of the unsharded run.
    pub shard: traceless_report::Shard,
    /// Off only to measure the monitors' overhead.
    pub monitors: bool,
    /// Whether this process runs in its own network namespace (see [`traceless_sandbox::isolate`]).
    pub isolation: MonitorStatus,
    pub progress: &'a dyn Fn(Step<'_>),
}

/// What the audit is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Step<'s> {
    /// A scenario starts (they run in order, each once).
    Scenario(&'s str),
    /// Anything else: starting, property cases, probes, stopping.
    Phase(&'s str),
}

/// What a run produced: the evidence, and what went wrong on the way.
pub struct RunResult {
    pub evidence: Evidence,
    pub errors: Vec<String>,
    pub interrupted: bool,
    pub pipeline_binary: Option<PathBuf>,
}

/// Runs the audit as a sequence of stages: set the stage, start the services and the pipeline,
/// drive, stop, sweep, gather. Fails only when nothing could be started; from then on every
/// failure is an error in the result beside the evidence gathered so far, so a late failure
/// never throws evidence away. Never leaves a process or a temporary file behind, even when
/// `cancel` fires (the supervisor's and the workspace's `Drop` clean on every path).
pub async fn run(plan: &Plan<'_>, cancel: CancellationToken) -> anyhow::Result<RunResult> {
    let stage = stage::set(plan).await?;
    let pipeline_binary = launch::which(&stage.spec.command[0]);
    let mut errors = Vec::new();
    let mut evidence = first_evidence(plan, &stage);

    let (services, started) = start::start(plan, &stage, &cancel).await;
    let started = match started {
        Ok(started) => started,
        Err(e) => {
            errors.push(format!("{e:#}"));
            evidence.services =
                stop::services_and_scan(services, &stage.planned, &stage.scanner).await;
            return Ok(gathered(evidence, errors, &cancel, pipeline_binary));
        }
    };
    let driven = match started.healthy {
        Err(e) => {
            errors.push(format!("{e:#}"));
            drive::Driven {
                interrupted: cancel.is_cancelled(),
                ..drive::Driven::default()
            }
        }
        Ok(()) => {
            drive::run(
                plan,
                &stage,
                &started.supervisor,
                &mut evidence,
                &mut errors,
                &cancel,
            )
            .await?
        }
    };
    let interrupted = driven.interrupted;

    let stopped = stop::pipeline(plan, started.supervisor, &mut evidence, &mut errors).await;
    stop::plaintext(
        plan,
        &stage,
        interrupted,
        &mut evidence,
        &mut errors,
        &cancel,
    )
    .await;
    if !plan.config.services.is_empty() {
        (plan.progress)(Step::Phase("stopping the services"));
    }
    services::stop_all(services).await;

    sweep::stage(plan, &stage, driven, stopped, &mut evidence, &mut errors);
    evidence.events = stage.log.snapshot();
    evidence.keep_own_files();
    for id in crate::check::still_processing(&evidence) {
        tracing::warn!(
            "request {id}: still processing (a provider call open) at the last memory scan, not judged for memory-retention"
        );
    }
    let stage::Stage { mocks, ws, .. } = stage;
    mocks.shutdown().await;
    drop(ws);
    Ok(gathered(evidence, errors, &cancel, pipeline_binary).with_interrupted(interrupted))
}

/// The evidence before anything is driven: what the configuration allows.
fn first_evidence(plan: &Plan<'_>, stage: &stage::Stage) -> Evidence {
    let cfg = plan.config;
    Evidence {
        mocks_tls: true,
        allowed_addresses: stage.allowed_addresses.clone(),
        memory_grace_ms: cfg.policy.memory_grace.as_millis() as u64,
        allowed_hosts: cfg.interception.hosts.clone(),
        allowed_providers: cfg.policy.allowed_providers.clone(),
        no_age_gate: cfg.pipeline.request.age_field.is_none(),
        property_cases: (property::owned_cases(plan.shard, plan.cases, plan.seed), 0),
        ..Evidence::default()
    }
}

impl RunResult {
    fn with_interrupted(mut self, interrupted: bool) -> RunResult {
        self.interrupted |= interrupted;
        self
    }
}

fn gathered(
    evidence: Evidence,
    errors: Vec<String>,
    cancel: &CancellationToken,
    pipeline_binary: Option<PathBuf>,
) -> RunResult {
    RunResult {
        evidence,
        errors,
        interrupted: cancel.is_cancelled(),
        pipeline_binary,
    }
}
