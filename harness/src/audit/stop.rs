//! Stopping: the pipeline (its monitors' final statuses and its spool handed over), the
//! plaintext-URL probe (the pipeline started again with `http://` provider URLs), the services.

use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;
use traceless_mock::Mocks;
use traceless_sandbox::events::MonitorStatus;
use traceless_sandbox::spool::Spool;
use traceless_sandbox::supervisor::Supervisor;
use traceless_scan::scan::Scanner;

use super::stage::Stage;
use super::{Plan, Step, launch, probes, services};
use crate::config::Config;
use crate::evidence::{Evidence, PlaintextProbe, ProbeOutcome};

/// What the stopped pipeline hands over: its monitors' statuses and its spool (none when it could
/// not be stopped cleanly).
#[derive(Default)]
pub struct Stopped {
    pub statuses: Vec<MonitorStatus>,
    pub spool: Option<Arc<Spool>>,
}

/// Stops the pipeline; its orphans go to `evidence`.
pub async fn pipeline(
    plan: &Plan<'_>,
    supervisor: Arc<Supervisor>,
    evidence: &mut Evidence,
    errors: &mut Vec<String>,
) -> Stopped {
    (plan.progress)(Step::Phase("stopping the pipeline"));
    match Arc::try_unwrap(supervisor) {
        Ok(supervisor) => {
            let stop = supervisor.stop(plan.config.pipeline.shutdown_grace).await;
            evidence.orphans = stop.orphans.clone();
            Stopped {
                statuses: stop.statuses,
                spool: Some(stop.spool),
            }
        }
        Err(_) => {
            errors.push(
                "the supervisor is still shared: the pipeline was not stopped cleanly".to_owned(),
            );
            Stopped::default()
        }
    }
}

/// The plaintext-URL probe, unless the configuration, an interruption or an earlier failure
/// makes it pointless (then `evidence` says why it was skipped).
pub async fn plaintext(
    plan: &Plan<'_>,
    stage: &Stage,
    interrupted: bool,
    evidence: &mut Evidence,
    errors: &mut Vec<String>,
    cancel: &CancellationToken,
) {
    let cfg = plan.config;
    if let Some(why) = launch::plaintext_probe_skipped(cfg) {
        evidence.plaintext_probe_skipped = Some(why);
    } else if interrupted || cancel.is_cancelled() {
        evidence.plaintext_probe_skipped = Some("the audit was interrupted".to_owned());
    } else if evidence.crash.is_some() || !errors.is_empty() {
        evidence.plaintext_probe_skipped =
            Some("the audit had already failed: the probe would prove nothing".to_owned());
    } else {
        (plan.progress)(Step::Phase("probing plaintext provider URLs"));
        match plaintext_probe(
            cfg,
            &stage.values,
            &stage.ws,
            &stage.mocks,
            &stage.scanner,
            cancel,
        )
        .await
        {
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
}

/// Stops the declared services, then reads each one's folder with every needle known now (off
/// the runtime: a database's files can be large). For a run that stops before the pipeline
/// started; otherwise the folders are read by the end-of-run sweep.
pub async fn services_and_scan(
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
