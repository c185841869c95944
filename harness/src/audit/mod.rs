//! One audit run: start the mocks and the pipeline under every monitor, drive the scenarios,
//! gather the evidence, stop everything. Judging the evidence is [`crate::check`]'s job.

mod attribution;
mod client;
mod pinning;
mod prepare;
mod probes;
mod property;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use rand::SeedableRng as _;
use tokio_util::sync::CancellationToken;
use traceless_mock::{MockOptions, Mocks, Provider, RecordedRequest};
use traceless_sandbox::events::{EventLog, MonitorKind, MonitorStatus};
use traceless_sandbox::supervisor::{PipelineSpec, Supervisor};
use traceless_scan::scan::{NeedleId, RequestId, Scanner, Subject};

use crate::config::Config;
use crate::evidence::{Evidence, SentRequest};

use crate::scenario::Scenario;
use attribution::{arrival_ms, attribute};

pub use client::{Client, Payload};
pub use property::SCENARIO_ID as PROPERTY_SCENARIO;

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

/// Runs the audit; never leaves a process or a temporary file behind, even when it fails or
/// `cancel` fires (the supervisor's and the temp dir's `Drop` do the cleaning on every path).
pub async fn run(plan: &Plan<'_>, cancel: CancellationToken) -> anyhow::Result<RunResult> {
    let cfg = plan.config;
    let root = tempfile::Builder::new()
        .prefix("traceless-audit-")
        .tempdir()
        .context("creating the audit's temp dir")?;
    let tmpdir = root.path().join("tmp");
    let home = root.path().join("home");
    let private_work = root.path().join("work");
    for d in [&tmpdir, &home, &private_work] {
        std::fs::create_dir_all(d)?;
    }
    let workdir = cfg.pipeline.workdir.clone().unwrap_or(private_work);
    let ca_file = root.path().join("audit-ca.pem");

    let isolated = plan.isolation.state == traceless_sandbox::events::MonitorState::Active;
    let log = EventLog::new();
    let keys = (
        format!("sk-traceless-{:032x}", rand::random::<u128>()),
        format!("AIza-traceless-{:024x}", rand::random::<u128>()),
    );
    let hosts = interception_hosts(cfg);
    let mut options = MockOptions {
        tls: true,
        openai_key: keys.0.clone(),
        gemini_key: keys.1.clone(),
        timeout_hold: attribution::TIMEOUT_HOLD,
        extra_hostnames: cfg.interception.hosts.clone(),
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
    let mocks = Mocks::start(options)
        .await
        .context("starting the mock providers")?;
    std::fs::write(&ca_file, mocks.ca_pem().unwrap_or_default()).context("writing the audit CA")?;

    let mut allowed_addresses = vec![
        mocks.openai_addr().to_string(),
        mocks.gemini_addr().to_string(),
    ];
    let _dns = if isolated {
        let answers = hosts.iter().cloned().collect();
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
    } else {
        None
    };

    let scanner = Arc::new(RwLock::new(Scanner::new()));
    {
        let mut s = scanner.write().expect("scanner lock");
        s.add_token(
            NeedleId {
                request: 0,
                subject: Subject::ApiKey,
            },
            &keys.0,
        );
        s.add_token(
            NeedleId {
                request: 0,
                subject: Subject::ApiKey,
            },
            &keys.1,
        );
    }

    // Inside the audit's private network namespace a backend's fixed port is free.
    let port = cfg.pipeline.port.map_or_else(free_port, Ok)?;
    let pipeline_addr = SocketAddr::from(([127, 0, 0, 1], port));
    allowed_addresses.push(pipeline_addr.to_string());
    let values: BTreeMap<&str, String> = [
        ("port", port.to_string()),
        ("openai_url", mocks.openai_url()),
        ("gemini_url", mocks.gemini_url()),
        ("openai_key", keys.0.clone()),
        ("gemini_key", keys.1.clone()),
        ("ca_file", ca_file.display().to_string()),
        ("tmpdir", tmpdir.display().to_string()),
        ("workdir", workdir.display().to_string()),
    ]
    .into();
    let command: Vec<String> = cfg
        .pipeline
        .command
        .iter()
        .map(|t| t.fill(&values))
        .collect();
    let pipeline_binary = which(&command[0]);
    let mut env: Vec<(String, String)> = cfg
        .pipeline
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.fill(&values)))
        .collect();
    for var in &cfg.interception.ca_env {
        if !env.iter().any(|(k, _)| k == var) {
            env.push((var.clone(), ca_file.display().to_string()));
        }
    }
    let spec = PipelineSpec {
        command: command.clone(),
        env: env.clone(),
        workdir: workdir.clone(),
        tmpdir: tmpdir.clone(),
        home: home.clone(),
        watch_roots: vec![],
        trace_syscalls: plan.monitors,
        pid_namespace: true,
        ignore_paths: vec![ca_file.clone()],
    };

    let mut errors = Vec::new();
    let mut evidence = Evidence {
        mocks_tls: true,
        allowed_addresses: allowed_addresses.clone(),
        memory_grace_ms: cfg.policy.memory_grace.as_millis() as u64,
        allowed_hosts: cfg.interception.hosts.clone(),
        no_age_gate: cfg.pipeline.request.age_field.is_none(),
        ..Evidence::default()
    };
    (plan.progress)(Step::Phase("starting the pipeline"));
    let health_url = format!("http://{pipeline_addr}{}", cfg.pipeline.health);
    let mut attempt = 0;
    let (supervisor, healthy) = loop {
        attempt += 1;
        let supervisor = Supervisor::start(spec.clone(), scanner.clone(), log.clone())
            .await
            .context("starting the pipeline")?;
        let healthy = tokio::select! {
            r = supervisor.wait_healthy(&health_url, cfg.pipeline.startup_timeout) => r,
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
        break (Arc::new(supervisor), healthy);
    };
    let mut interrupted = cancel.is_cancelled();
    if let Err(e) = healthy {
        errors.push(format!(
            "the pipeline did not become healthy at {health_url}: {e:#}"
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
            batch_marks: (0, 0),
            evidence: &mut evidence,
        };
        for scenario in plan.scenarios {
            (plan.progress)(Step::Scenario(&scenario.id));
            tokio::select! {
                r = driver.scenario(scenario) => if let Err(e) = r { errors.push(format!("scenario {}: {e:#}", scenario.id)) },
                () = cancel.cancelled() => { interrupted = true; break; }
            }
        }
        if !interrupted && plan.cases > 0 {
            (plan.progress)(Step::Phase(&format!("{} property cases", plan.cases)));
            tokio::select! {
                failure = property::run(&mut driver, plan.cases, plan.seed, &cancel) => {
                    if let Some(f) = failure {
                        errors.push(format!("{f} (replay: traceless audit --seed {})", plan.seed));
                    }

                }
                () = cancel.cancelled() => interrupted = true,
            }
        }
        driver.attribute_new_calls();
        driver.scan_answers(None);
        if !interrupted && let Err(e) = driver.memory_check(true).await {
            errors.push(format!("the final memory scan: {e:#}"));
        }
        if !interrupted {
            let traced = plan.monitors;
            let written = probes::written_files(&log.snapshot(), traced);
            // Outputs become needles only once their call is attributed: look again at what is left.
            probes::rescan(&written, &scanner.read().expect("scanner lock"), &log);
            (plan.progress)(Step::Phase("probing for public exposure"));
            evidence.exposure_probes =
                probes::exposure(&client, &workdir, &written, &scanner).await;
        }
    }

    (plan.progress)(Step::Phase("stopping the pipeline"));
    let supervisor = Arc::try_unwrap(supervisor)
        .map_err(|_| anyhow::anyhow!("the supervisor is still shared"))?;
    let stop = supervisor.stop(cfg.pipeline.shutdown_grace).await;
    evidence.orphans = stop.orphans.clone();
    evidence.monitors = merge_statuses(stop.statuses, &plan.isolation);

    let url_variables: Vec<String> = cfg
        .pipeline
        .env
        .iter()
        .filter(|(_, t)| t.raw().contains("{openai_url}") || t.raw().contains("{gemini_url}"))
        .map(|(k, _)| k.clone())
        .collect();
    // A backend with hard-coded provider URLs cannot be handed plaintext ones: nothing to probe.
    if cfg.pipeline.refuses_plaintext_providers
        && !url_variables.is_empty()
        && !interrupted
        && errors.is_empty()
    {
        (plan.progress)(Step::Phase("probing plaintext provider URLs"));
        // A fresh port: the audited instance's may linger in TIME_WAIT (a fixed one cannot change).
        let probe_port = cfg.pipeline.port.map_or_else(free_port, Ok)?;
        let mut probe_values = values.clone();
        probe_values.insert("port", probe_port.to_string());
        for key in ["openai_url", "gemini_url"] {
            let url = probe_values[key].replacen("https://", "http://", 1);
            probe_values.insert(key, url);
        }
        let probe_env = cfg
            .pipeline
            .env
            .iter()
            .filter(|(k, _)| k != "TRACELESS_ALLOW_PLAINTEXT_PROVIDERS")
            .map(|(k, t)| (k.clone(), t.fill(&probe_values)))
            .collect();
        let probe_spec = PipelineSpec {
            command,
            env: probe_env,
            workdir,
            tmpdir,
            home,
            watch_roots: vec![],
            trace_syscalls: false,
            pid_namespace: true,
            ignore_paths: vec![ca_file.clone()],
        };
        let url = format!("http://127.0.0.1:{probe_port}{}", cfg.pipeline.health);
        evidence.plaintext_probe =
            Some(probes::plaintext(probe_spec, &url, url_variables, &scanner, &cancel).await?);
    }

    evidence.events = log.snapshot();
    evidence.keep_own_files();
    let recorded = mocks.recorded();
    // The variables that handed the pipeline the audit's CA, named in the pinning error.
    let ca_path = ca_file.display().to_string();
    let mut ca_vars: Vec<String> = env
        .iter()
        .filter(|(_, v)| v.contains(&ca_path))
        .map(|(k, _)| k.clone())
        .collect();
    ca_vars.sort();
    if let Some(e) = pinning::error(&mocks.tls_refusals(), &recorded, &ca_vars) {
        errors.push(e);
    }
    evidence.provider_calls = attribute(
        &recorded,
        &scanner.read().expect("scanner lock"),
        &evidence.requests,
        &log,
    );
    for id in crate::check::still_processing(&evidence) {
        tracing::warn!(
            "request {id}: still processing (a provider call open) at the last memory scan, not judged for memory-retention"
        );
    }
    mocks.shutdown().await;
    drop(root);
    Ok(RunResult {
        evidence,
        errors,
        interrupted: interrupted || cancel.is_cancelled(),
        pipeline_binary,
    })
}

struct Driver<'a> {
    cfg: &'a Config,
    client: &'a Client,
    mocks: &'a Mocks,
    scanner: &'a Arc<RwLock<Scanner>>,
    log: &'a EventLog,
    supervisor: &'a Arc<Supervisor>,
    rng: rand::rngs::StdRng,
    next_id: RequestId,
    memory_scans: bool,
    /// When the last memory scan ended.
    last_memory_scan: Option<std::time::Instant>,
    /// Provider calls attributed so far (they are recorded in arrival order).
    seen_calls: usize,
    /// The event log's length and the calls seen when the latest batch was sent: what came
    /// after is what that batch may have caused.
    batch_marks: (usize, usize),
    evidence: &'a mut Evidence,
}

impl Driver<'_> {
    async fn scenario(&mut self, scenario: &Scenario) -> anyhow::Result<()> {
        self.send_all(scenario).await?;
        // No wait here: a hit counts only for requests that ended a grace period before the
        // scan, so earlier requests are judged now and this scenario's by a later scan.
        self.memory_check(false).await
    }

    /// Sends a scenario's requests in order, each batch of `concurrency` at once.
    async fn send_all(&mut self, scenario: &Scenario) -> anyhow::Result<Vec<RequestId>> {
        let mut ids = Vec::new();
        for spec in &scenario.requests {
            let mut remaining = spec.repeat;
            while remaining > 0 {
                let batch = remaining.min(spec.concurrency);
                remaining -= batch;
                let specs = vec![spec; batch as usize];
                ids.extend(self.send_batch(&scenario.id, &specs).await?);
            }
        }
        Ok(ids)
    }

    /// Sends these requests at once, each with fresh canaries, and records the answers.
    async fn send_batch(
        &mut self,
        scenario: &str,
        specs: &[&crate::scenario::RequestSpec],
    ) -> anyhow::Result<Vec<RequestId>> {
        self.batch_marks = (self.log.len(), self.seen_calls);
        for spec in specs {
            if let Ok(p) = spec.provider.parse::<Provider>() {
                self.mocks.set_behaviour(p, spec.provider_behaviour.clone());
            }
        }
        let mut prepared = Vec::new();
        for spec in specs {
            let id = self.next_id;
            self.next_id += 1;
            let p = prepare::prepare(
                id,
                spec,
                &mut self.rng,
                &mut self.scanner.write().expect("scanner lock"),
            )?;
            prepared.push((id, *spec, p));
        }
        let (client, cfg, log) = (self.client, self.cfg, self.log);
        let sends = prepared.iter().map(|(id, spec, p)| async move {
            let started = log.since_start_ms();
            let answer = client
                .send(
                    &cfg.pipeline.request,
                    &cfg.pipeline.response,
                    &p.payload,
                    spec.client,
                )
                .await;
            (
                *id,
                *spec,
                p.had_metadata,
                started,
                log.since_start_ms(),
                answer,
            )
        });
        let mut ids = Vec::new();
        for (id, spec, had_metadata, started_ms, ended_ms, answer) in
            futures::future::join_all(sends).await
        {
            ids.push(id);
            self.evidence.requests.push(SentRequest {
                id,
                scenario: scenario.to_owned(),
                provider: spec.provider.clone(),
                age: spec.age,
                behaviour: spec
                    .provider_behaviour
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                client: spec.client,
                expected_status: spec.expect_status,
                status: answer.status,
                started_ms,
                ended_ms,
                response_body: answer.body,
                response_hits: Vec::new(),
                error: answer.error,
                had_metadata,
            });
        }
        self.attribute_new_calls();
        Ok(ids)
    }

    /// Findings that concern these requests, the latest batch sent (memory is judged after the
    /// grace period).
    fn findings_for(&mut self, ids: &[RequestId]) -> Vec<crate::check::Draft> {
        let (events_from, calls_from) = self.batch_marks;
        self.scan_answers(Some(ids));
        let since = self
            .evidence
            .requests
            .iter()
            .filter(|r| ids.contains(&r.id))
            .map(|r| r.started_ms)
            .min()
            .unwrap_or(0);
        let scanner = self.scanner.read().expect("scanner lock");
        let calls: Vec<RecordedRequest> = self
            .mocks
            .recorded_from(calls_from)
            .into_iter()
            .filter(|c| arrival_ms(c, self.log) + 5 >= since)
            .collect();
        let mut snapshot = Evidence {
            requests: self
                .evidence
                .requests
                .iter()
                .filter(|r| ids.contains(&r.id))
                .cloned()
                .collect(),
            provider_calls: attribute(&calls, &scanner, &self.evidence.requests, self.log),
            events: self
                .log
                .snapshot_from(events_from)
                .into_iter()
                .filter(|e| {
                    e.t_ms + 5 >= since
                        && !matches!(
                            e.kind,
                            traceless_sandbox::events::EventKind::MemoryHits { .. }
                        )
                })
                .collect(),
            monitors: self.supervisor.statuses(),
            allowed_addresses: self.evidence.allowed_addresses.clone(),
            allowed_hosts: self.evidence.allowed_hosts.clone(),
            mocks_tls: self.evidence.mocks_tls,
            no_age_gate: self.evidence.no_age_gate,
            memory_grace_ms: self.evidence.memory_grace_ms,
            ..Evidence::default()
        };
        drop(scanner);
        snapshot.keep_own_files();
        crate::check::run_all(&snapshot)
            .into_iter()
            .filter(|d| d.request.is_some_and(|r| ids.contains(&r)) || d.request.is_none())
            .collect()
    }

    /// Scans the memory of every live process of the tree; with `after_grace`, first waits the
    /// policy's grace period so that every request so far is judged.
    async fn memory_check(&mut self, after_grace: bool) -> anyhow::Result<()> {
        if !self.memory_scans {
            return Ok(());
        }
        let grace = self.cfg.policy.memory_grace;
        if after_grace {
            // The policy's grace period: how long image bytes may linger after a request ends.
            tokio::time::sleep(grace).await;
        } else if self.last_memory_scan.is_some_and(|t| t.elapsed() < grace) {
            // A scan judges only requests that ended a grace period before it, so scanning
            // more often than once per grace period judges nothing sooner; every request is
            // still judged by the first scan at least one grace period after it ends.
            return Ok(());
        }
        let supervisor = self.supervisor.clone();
        // The supervisor records what it finds in the event log itself.
        tokio::task::spawn_blocking(move || supervisor.scan_memory()).await?;
        self.last_memory_scan = Some(std::time::Instant::now());
        Ok(())
    }

    /// Registers the outputs of provider calls made since the last look, under the audit
    /// requests whose canaries they carried.
    fn attribute_new_calls(&mut self) {
        let recorded = self.mocks.recorded_from(self.seen_calls);
        let mut scanner = self.scanner.write().expect("scanner lock");
        for call in &recorded {
            let owners = attribution::owners(call, &scanner, &self.evidence.requests, self.log);
            if let Some(out) = &call.output_image {
                for owner in owners.any {
                    scanner.add_image(
                        NeedleId {
                            request: owner,
                            subject: Subject::Output,
                        },
                        out,
                    );
                }
            }
        }
        self.seen_calls += recorded.len();
    }

    /// Scans these requests' answers for every needle known now (other requests' data in them
    /// is a cross-request leak).
    fn scan_answers(&mut self, ids: Option<&[RequestId]>) {
        let scanner = self.scanner.read().expect("scanner lock");
        for req in &mut self.evidence.requests {
            if ids.is_none_or(|ids| ids.contains(&req.id)) {
                req.response_hits = scanner.scan(&req.response_body);
            }
        }
    }
}

/// The supervisor's monitor statuses, with the egress monitor taking the isolation's status
/// when that is weaker (no namespace: connections could leave).
fn merge_statuses(
    mut statuses: Vec<MonitorStatus>,
    isolation: &MonitorStatus,
) -> Vec<MonitorStatus> {
    if isolation.state != traceless_sandbox::events::MonitorState::Active {
        statuses.retain(|s| s.monitor != MonitorKind::Egress);
        statuses.push(isolation.clone());
    }
    statuses.sort_by_key(|s| s.monitor);
    statuses
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .context("finding a free port for the pipeline")?;
    Ok(l.local_addr()?.port())
}

/// The file a command name runs, for the provenance digest.
fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|c| c.is_file())
}
