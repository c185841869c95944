//! Setting the stage: the audit's private folders, its keys, the mock providers behind TLS from a
//! fresh CA, the resolver inside the private namespace, the scanner with the audit's own secrets,
//! and the pipeline's launch spec. Nothing of the pipeline runs yet.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use traceless_mock::{MockOptions, Mocks};
use traceless_sandbox::events::{EventLog, MonitorState};
use traceless_sandbox::supervisor::PipelineSpec;
use traceless_scan::scan::{NeedleId, Scanner, Subject};

use super::{
    GEMINI_IP, OPENAI_IP, Plan, RESOLVER, attribution, interception_hosts, launch, services,
};
use crate::config::Config;

/// Everything the later stages share.
pub struct Stage {
    pub ws: launch::Workspace,
    pub planned: Vec<services::Planned>,
    pub mocks: Mocks,
    /// The audit's resolver, while it runs.
    pub _dns: Option<traceless_sandbox::dns::DnsServer>,
    pub log: EventLog,
    pub scanner: Arc<RwLock<Scanner>>,
    pub values: launch::Values,
    pub spec: PipelineSpec,
    pub pipeline_addr: SocketAddr,
    /// The addresses the pipeline may connect to: the mocks, the resolver, itself, the services.
    pub allowed_addresses: Vec<String>,
}

/// Sets the stage. Fails only when nothing could be started.
pub async fn set(plan: &Plan<'_>) -> anyhow::Result<Stage> {
    let cfg = plan.config;
    let ws = launch::Workspace::create(cfg)?;
    let planned = services::plan(&cfg.services, &ws.services)?;
    let isolated = plan.isolation.state == MonitorState::Active;
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
    let dns = if isolated {
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
    Ok(Stage {
        ws,
        planned,
        mocks,
        _dns: dns,
        log,
        scanner,
        values,
        spec,
        pipeline_addr,
        allowed_addresses,
    })
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
