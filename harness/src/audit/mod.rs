//! One audit run: start the mocks and the pipeline under every monitor, drive the scenarios,
//! gather the evidence, stop everything. Judging the evidence is [`crate::check`]'s job.
//!
//! The stages, in order: [`launch`] (folders, keys, placeholder values, the launch spec),
//! the mocks and the resolver, the declared [`services`], the pipeline, [`driver`] (scenarios,
//! then [`property`] cases), settling and [`probes`], the stop, the plaintext-URL probe, the
//! services' stop, the end-of-run [`sweep`] with every needle, and gathering the evidence.

mod attribution;
mod client;
mod driver;
mod exposure;
mod job;
pub(crate) mod launch;
mod pinning;
mod prepare;
mod probes;
mod property;
mod services;
mod sweep;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use rand::SeedableRng as _;
use tokio_util::sync::CancellationToken;
use traceless_mock::{MockOptions, Mocks};
use traceless_sandbox::events::{EventLog, MonitorKind, MonitorState, MonitorStatus};
use traceless_sandbox::supervisor::{PipelineSpec, Ready, Supervisor};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

use crate::config::Config;
use crate::evidence::{Evidence, PlaintextProbe, ProbeOutcome};
use crate::scenario::Scenario;
use attribution::attribute_swept;
use driver::{Driver, Halt};

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

/// Runs the audit as a sequence of stages: set the stage, start the mocks and the resolver,
/// start the pipeline, drive the scenarios and the property cases, settle and probe, stop,
/// probe plaintext URLs, stop the services, sweep, gather. Fails only when nothing could be started; from then on every
/// failure is an error in the result beside the evidence gathered so far, so a late failure
/// never throws evidence away. Never leaves a process or a temporary file behind, even when
/// `cancel` fires (the supervisor's and the workspace's `Drop` clean on every path).
pub async fn run(plan: &Plan<'_>, cancel: CancellationToken) -> anyhow::Result<RunResult> {
    let cfg = plan.config;
    let ws = launch::Workspace::create(cfg)?;
    let planned = services::plan(&cfg.services, &ws.services)?;
    let isolated = plan.isolation.state == traceless_sandbox::events::MonitorState::Active;
    let log = EventLog::new();
    let keys = launch::Keys::fresh();
    let mocks = start_mocks(cfg, &keys, isolated).await?;
    std::fs::write(&ws.ca_file, mocks.ca_pem().unwrap_or_default())
        .context("writing the audit CA")?;
    launch::write_gcp_credentials(cfg, &ws, &mocks)?;
    let mut allowed_addresses = vec![
        mocks.openai_addr().to_string(),
        mocks.gemini_addr().to_string(),
    ];
    let _dns = if isolated {
        start_resolver(cfg, &log, &mut allowed_addresses).await
    } else {
        None
    };
    let scanner = Arc::new(RwLock::new(Scanner::new()));
    register_keys(&mut scanner.write().expect("scanner lock"), &keys);
    mocks.set_router(attribution::router(scanner.clone()));

    // Inside the audit's private network namespace a backend's fixed port is free.
    let port = cfg.pipeline.port.map_or_else(launch::free_port, Ok)?;
    let pipeline_addr = SocketAddr::from(([127, 0, 0, 1], port));
    allowed_addresses.push(pipeline_addr.to_string());
    allowed_addresses.extend(services::addresses(&planned));
    let values = launch::values(
        port,
        mocks.openai_url(),
        mocks.gemini_url(),
        &keys,
        &ws,
        services::placeholders(&cfg.services, &planned),
    );
    let spec = launch::pipeline_spec(cfg, &values, &ws, plan.monitors);
    let pipeline_binary = launch::which(&spec.command[0]);

    let mut errors = Vec::new();
    let mut evidence = Evidence {
        mocks_tls: true,
        allowed_addresses,
        memory_grace_ms: cfg.policy.memory_grace.as_millis() as u64,
        allowed_hosts: cfg.interception.hosts.clone(),
        allowed_providers: cfg.policy.allowed_providers.clone(),
        no_age_gate: cfg.pipeline.request.age_field.is_none(),
        property_cases: (property::owned_cases(plan.shard, plan.cases, plan.seed), 0),
        ..Evidence::default()
    };
    if !cfg.services.is_empty() {
        (plan.progress)(Step::Phase("starting the services"));
    }
    let (running, started) = services::start_all(&cfg.services, &planned, &cancel).await;
    let pipeline_started = match started {
        Ok(()) => {
            (plan.progress)(Step::Phase("starting the pipeline"));
            let ready = launch::readiness(&cfg.pipeline.health, pipeline_addr);
            start_pipeline(&spec, &ready, cfg, &scanner, &log, &cancel)
                .await
                .map(|started| (started, ready))
                .context("starting the pipeline")
        }
        Err(e) => Err(e.context("starting the declared services")),
    };
    let ((supervisor, healthy), ready) = match pipeline_started {
        Ok(started) => started,
        Err(e) => {
            errors.push(format!("{e:#}"));
            evidence.services = stop_services(running, &planned, &scanner).await;
            return Ok(gathered(evidence, errors, &cancel, pipeline_binary));
        }
    };
    let mut interrupted = cancel.is_cancelled();
    let mut written = Vec::new();
    let mut exposure = exposure::Exposure::default();
    let mut call_coverage = Vec::new();
    if let Err(e) = healthy {
        errors.push(format!(
            "the pipeline did not become healthy at {ready}: {e:#}"
        ));
    } else {
        let client = Client::new(pipeline_addr, cfg.audit.request_timeout)?;
        let mut driver = Driver {
            cfg,
            client: &client,
            mocks: &mocks,
            scanner: &scanner,
            log: &log,
            supervisor: &supervisor,
            rng: rand::rngs::StdRng::seed_from_u64(plan.seed),
            next_id: 1,
            memory_scans: plan.monitors,
            last_memory_scan: None,
            seen_calls: 0,
            call_coverage: Vec::new(),
            batch_marks: (0, 0),
            evidence: &mut evidence,
            retired_before: 1,
            memory_judged_ms: None,
        };
        interrupted |= drive(&mut driver, plan, &cancel, &mut errors).await;
        settle(&mut driver, interrupted, &mut errors).await;
        call_coverage = std::mem::take(&mut driver.call_coverage);
        let retired = scanner.read().expect("scanner lock").retired_requests();
        if retired > 0 {
            tracing::info!(
                "needles of {retired} requests were retired to disk during the run; the end of the run sweeps them too"
            );
        }
        if !interrupted && driver.evidence.crash.is_none() {
            (plan.progress)(Step::Phase("probing for public exposure"));
            written = probes::written_files(&log.snapshot(), plan.monitors);
            let links = exposure::links_in_answers(
                evidence
                    .requests
                    .iter()
                    .map(|r| (r.id, r.response_body.as_slice())),
                client.base(),
            );
            exposure = exposure::probe(&client, &ws.workdir, &written, &links, &scanner).await;
            evidence.exposure_probed = true;
        }
    }

    (plan.progress)(Step::Phase("stopping the pipeline"));
    let mut monitor_statuses = Vec::new();
    let mut spool = None;
    match Arc::try_unwrap(supervisor) {
        Ok(supervisor) => {
            let stop = supervisor.stop(cfg.pipeline.shutdown_grace).await;
            evidence.orphans = stop.orphans.clone();
            monitor_statuses = stop.statuses;
            spool = Some(stop.spool);
        }
        Err(_) => errors.push(
            "the supervisor is still shared: the pipeline was not stopped cleanly".to_owned(),
        ),
    }

    if let Some(why) = launch::plaintext_probe_skipped(cfg) {
        evidence.plaintext_probe_skipped = Some(why);
    } else if interrupted || cancel.is_cancelled() {
        evidence.plaintext_probe_skipped = Some("the audit was interrupted".to_owned());
    } else if evidence.crash.is_some() || !errors.is_empty() {
        evidence.plaintext_probe_skipped =
            Some("the audit had already failed: the probe would prove nothing".to_owned());
    } else {
        (plan.progress)(Step::Phase("probing plaintext provider URLs"));
        match plaintext_probe(cfg, &values, &ws, &mocks, &scanner, &cancel).await {
            Ok(probe) => {
                if let ProbeOutcome::Inconclusive(why) = &probe.outcome {
                    errors.push(format!("the plaintext-URL probe was inconclusive: {why}"));
                }
                evidence.plaintext_probe = Some(probe);
            }
            Err(e) => {
                errors.push(format!("the plaintext-URL probe: {e:#}"));
                evidence.plaintext_probe_skipped = Some(format!("it failed to start: {e:#}"));
            }
        }
    }

    if !cfg.services.is_empty() {
        (plan.progress)(Step::Phase("stopping the services"));
    }
    services::stop_all(running).await;

    let recorded = mocks.take_recorded();
    if let Some(e) = pinning::error(
        &mocks.tls_refusals(),
        &recorded,
        &launch::ca_variables(&spec, &ws),
    ) {
        errors.push(e);
    }
    (plan.progress)(Step::Phase("sweeping everything with every needle"));
    let swept = tokio::task::block_in_place(|| {
        sweep::sweep(
            &scanner.read().expect("scanner lock"),
            sweep::Gathered {
                answers: &evidence.requests,
                exposure,
                written: &written,
                spool: spool.as_deref(),
                services: &planned,
                calls: &recorded,
                call_coverage,
            },
            &log,
        )
    });
    if let Some(e) = &swept.error {
        errors.push(format!(
            "reading the retired needles back for the end-of-run sweep: {e}"
        ));
    }
    for (req, hits) in evidence.requests.iter_mut().zip(swept.answers) {
        req.response_hits = hits;
    }
    evidence.exposure_probes = swept.exposure;
    evidence.services = swept.services;
    if spool.is_some() {
        degrade(&mut monitor_statuses, swept.incomplete);
        evidence.monitors = statuses(monitor_statuses, &plan.isolation, &evidence);
    }
    evidence.provider_calls = attribute_swept(
        recorded,
        swept.calls,
        &scanner.read().expect("scanner lock"),
        &evidence.requests,
        &log,
    );
    evidence.events = log.snapshot();
    evidence.keep_own_files();
    for id in crate::check::still_processing(&evidence) {
        tracing::warn!(
            "request {id}: still processing (a provider call open) at the last memory scan, not judged for memory-retention"
        );
    }
    mocks.shutdown().await;
    drop(ws);
    Ok(gathered(evidence, errors, &cancel, pipeline_binary).with_interrupted(interrupted))
}

/// Marks each monitor in `incomplete` degraded, with the reason.
fn degrade(statuses: &mut [MonitorStatus], incomplete: Vec<(MonitorKind, String)>) {
    for (monitor, why) in incomplete {
        if let Some(s) = statuses.iter_mut().find(|s| s.monitor == monitor) {
            s.state = MonitorState::Degraded;
            s.reason = Some(match s.reason.take() {
                Some(before) => format!("{before}; {why}"),
                None => why,
            });
        }
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

/// Stops the declared services, then reads each one's folder with every needle known now (off
/// the runtime: a database's files can be large).
async fn stop_services(
    running: Vec<services::Running>,
    planned: &[services::Planned],
    scanner: &Arc<RwLock<Scanner>>,
) -> Vec<crate::evidence::ServiceScan> {
    services::stop_all(running).await;
    let (planned, scanner) = (planned.to_vec(), scanner.clone());
    tokio::task::spawn_blocking(move || {
        services::scan(&planned, &scanner.read().expect("scanner lock"))
    })
    .await
    .unwrap_or_default()
}

/// The mock providers, behind TLS from a fresh CA; inside the private namespace on the
/// providers' real port, each on the address the providers' host names resolve to.
async fn start_mocks(cfg: &Config, keys: &launch::Keys, isolated: bool) -> anyhow::Result<Mocks> {
    let mut options = MockOptions {
        tls: true,
        openai_key: keys.openai.clone(),
        gemini_key: keys.gemini.clone(),
        timeout_hold: attribution::TIMEOUT_HOLD,
        extra_hostnames: cfg.interception.hosts.clone(),
        models: cfg.mocks.clone(),
        ..MockOptions::default()
    };
    if isolated {
        // Only inside the private namespace is 443 ours to take.
        options.bind = OPENAI_IP.into();
        options.gemini_bind = Some(GEMINI_IP.into());
        options.openai_port = 443;
        options.gemini_port = 443;
        options
            .extra_hostnames
            .extend([OPENAI_IP.to_string(), GEMINI_IP.to_string()]);
    }
    Mocks::start(options)
        .await
        .context("starting the mock providers")
}

/// The harness's resolver inside the namespace: provider names to the mocks, the rest refused.
async fn start_resolver(
    cfg: &Config,
    log: &EventLog,
    allowed_addresses: &mut Vec<String>,
) -> Option<traceless_sandbox::dns::DnsServer> {
    let answers = interception_hosts(cfg).into_iter().collect();
    match traceless_sandbox::dns::start(SocketAddr::from((RESOLVER, 53)), answers, log.clone())
        .await
    {
        Ok(d) => {
            allowed_addresses.push(format!("{RESOLVER}:53"));
            Some(d)
        }
        Err(e) => {
            tracing::warn!("the audit's resolver did not start: {e:#}");
            None
        }
    }
}

/// The audit's API keys are needles too: a key in a log is a leak.
fn register_keys(scanner: &mut Scanner, keys: &launch::Keys) {
    for key in [&keys.openai, &keys.gemini] {
        scanner.add_token(
            NeedleId {
                request: 0,
                subject: Subject::ApiKey,
            },
            key,
        );
    }
}

/// Starts the pipeline under every monitor and waits for its health check.
async fn start_pipeline(
    spec: &PipelineSpec,
    ready: &Ready,
    cfg: &Config,
    scanner: &Arc<RwLock<Scanner>>,
    log: &EventLog,
    cancel: &CancellationToken,
) -> anyhow::Result<(Arc<Supervisor>, anyhow::Result<()>)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let supervisor = Supervisor::start(spec.clone(), scanner.clone(), log.clone())
            .await
            .context("starting the pipeline")?;
        let healthy = tokio::select! {
            r = supervisor.wait_ready(ready, cfg.pipeline.startup_timeout) => r,
            () = cancel.cancelled() => Err(anyhow::anyhow!("interrupted")),
        };
        // util-linux's `unshare` launcher itself occasionally fails before the pipeline starts
        // ("sigprocmask unblock failed"): that says nothing about the pipeline, so try once more.
        let launcher_failed = healthy
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("unshare: "));
        if launcher_failed && attempt == 1 && !cancel.is_cancelled() {
            supervisor.stop(Duration::from_secs(1)).await;
            continue;
        }
        return Ok((Arc::new(supervisor), healthy));
    }
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
    driver.attribute_new_calls();
    if !interrupted
        && driver.evidence.crash.is_none()
        && let Err(e) = driver.memory_check(true).await
    {
        errors.push(format!("the final memory scan: {e:#}"));
    }
}

/// Starts the pipeline again with `http://` provider URLs: refusing at start-up is the pass.
async fn plaintext_probe(
    cfg: &Config,
    values: &launch::Values,
    ws: &launch::Workspace,
    mocks: &Mocks,
    scanner: &Arc<RwLock<Scanner>>,
    cancel: &CancellationToken,
) -> anyhow::Result<PlaintextProbe> {
    // A fresh port: the audited instance's may linger in TIME_WAIT (a fixed one cannot change).
    let port = cfg.pipeline.port.map_or_else(launch::free_port, Ok)?;
    let spec = launch::plaintext_spec(cfg, values, ws, port);
    let ready = launch::readiness(
        &cfg.pipeline.health,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    );
    let calls_before = mocks.recorded_count();
    let variables = launch::url_variables(cfg);
    let started = probes::plaintext(spec, &ready, scanner, cancel).await?;
    // A plaintext request that reached a mock is acceptance, whatever the process did next.
    let sent_plaintext = mocks.recorded_from(calls_before).iter().any(|c| !c.tls);
    Ok(PlaintextProbe {
        outcome: probes::judge_plaintext(started, sent_plaintext, &variables),
        variables,
    })
}

/// Each monitor's final status. The egress monitor takes the isolation's status when that is
/// weaker (no namespace: connections could leave); the memory monitor is active only if a scan
/// of the whole tree completed.
fn statuses(
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
