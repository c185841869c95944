//! Starting what the audit watches: the declared services, then the pipeline under every
//! monitor, until its health check answers.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use traceless_sandbox::events::EventLog;
use traceless_sandbox::supervisor::{PipelineSpec, Ready, Supervisor};
use traceless_scan::scan::Scanner;

use super::stage::Stage;
use super::{Plan, Step, launch, services};
use crate::config::Config;

/// The running pipeline, and whether it became healthy.
pub struct Started {
    pub supervisor: Arc<Supervisor>,
    pub healthy: anyhow::Result<()>,
}

/// Starts the services, then the pipeline. The services that run are returned either way: they
/// must be stopped whatever happened next.
pub async fn start(
    plan: &Plan<'_>,
    stage: &Stage,
    cancel: &CancellationToken,
) -> (Vec<services::Running>, anyhow::Result<Started>) {
    let cfg = plan.config;
    if !cfg.services.is_empty() {
        (plan.progress)(Step::Phase("starting the services"));
    }
    let (running, started) = services::start_all(&cfg.services, &stage.planned, cancel).await;
    let pipeline = match started {
        Ok(()) => {
            (plan.progress)(Step::Phase("starting the pipeline"));
            let ready = launch::readiness(&cfg.pipeline.health, stage.pipeline_addr);
            start_pipeline(&stage.spec, &ready, cfg, &stage.scanner, &stage.log, cancel)
                .await
                .map(|(supervisor, healthy)| Started {
                    supervisor,
                    healthy: healthy.map_err(|e| {
                        e.context(format!("the pipeline did not become healthy at {ready}"))
                    }),
                })
                .context("starting the pipeline")
        }
        Err(e) => Err(e.context("starting the declared services")),
    };
    (running, pipeline)
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
