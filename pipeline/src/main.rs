//! The `traceless-pipeline` binary: reads the environment, serves until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use anyhow::Context;
use traceless_pipeline::alloc::ZeroingAllocator;
use traceless_pipeline::{AppState, Config, access_log};

/// Every heap block is wiped when freed; see the `alloc` module for why.
#[global_allocator]
static ALLOC: ZeroingAllocator = ZeroingAllocator;

fn main() -> ExitCode {
    access_log::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("TRACELESS_LISTEN: cannot listen on {}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        openai_model = %config.openai.model,
        gemini_model = %config.gemini.model,
        openai_key = config.openai.api_key.is_some(),
        gemini_key = config.gemini.api_key.is_some(),
        max_concurrency = config.max_concurrency,
        provider_timeout_ms = config.provider_timeout.as_millis() as u64,
        "ready"
    );
    traceless_pipeline::serve(listener, state, shutdown_signal())
        .await
        .context("serving HTTP")?;
    tracing::info!("stopped: in-flight requests finished");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!("cannot listen for SIGTERM: {error}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutdown requested: no new connections, finishing requests in flight");
}
