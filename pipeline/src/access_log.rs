//! The access log: exactly one line per request on stderr, with method, route, status,
//! provider, request and response sizes and duration. Never a URI, header, client address,
//! prompt or byte of image data: the route logged is the matched pattern, not the path sent.
//!
//! A request whose client went away before the answer still gets its line (status
//! `client_closed`), written when the request's future is dropped.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::providers::ProviderName;

/// Facts the handler learns while it works, shared with the log line.
#[derive(Debug, Default)]
pub struct RequestFacts {
    pub request_bytes: Arc<AtomicU64>,
    provider: AtomicU8,
    error_code: OnceLock<&'static str>,
}

impl RequestFacts {
    pub fn set_provider(&self, provider: ProviderName) {
        let tag = match provider {
            ProviderName::OpenAi => 1,
            ProviderName::Gemini => 2,
        };
        self.provider.store(tag, Ordering::Relaxed);
    }

    pub fn set_error(&self, code: &'static str) {
        let _ = self.error_code.set(code);
    }

    fn provider(&self) -> &'static str {
        match self.provider.load(Ordering::Relaxed) {
            1 => ProviderName::OpenAi.as_str(),
            2 => ProviderName::Gemini.as_str(),
            _ => "-",
        }
    }
}

/// Logs the request when dropped: after the response, or when the client disconnected.
struct LogLine {
    method: String,
    route: String,
    started: Instant,
    facts: Arc<RequestFacts>,
    outcome: Option<(u16, Option<u64>)>,
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let request_bytes = self.facts.request_bytes.load(Ordering::Relaxed);
        let provider = self.facts.provider();
        let error = self.facts.error_code.get().copied().unwrap_or("-");
        match self.outcome {
            Some((status, response_bytes)) => tracing::info!(
                method = %self.method,
                route = %self.route,
                status,
                provider = %provider,
                request_bytes,
                response_bytes = response_bytes.unwrap_or(0),
                error = %error,
                duration_ms,
                "request"
            ),
            None => tracing::info!(
                method = %self.method,
                route = %self.route,
                status = "client_closed",
                provider = %provider,
                request_bytes,
                response_bytes = 0u64,
                error = %error,
                duration_ms,
                "request"
            ),
        }
    }
}

/// Middleware writing the access log line.
pub async fn access_log(mut request: Request, next: Next) -> Response {
    let facts = Arc::new(RequestFacts::default());
    request.extensions_mut().insert(Arc::clone(&facts));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut line = LogLine {
        method: request.method().as_str().to_owned(),
        route,
        started: Instant::now(),
        facts,
        outcome: None,
    };
    let response = next.run(request).await;
    line.outcome = Some((
        response.status().as_u16(),
        response.body().size_hint().exact(),
    ));
    response
}

/// Installs the stderr logger. Dependencies log at `warn` and above only, whatever the
/// environment says: their debug output can include headers, which carry the API keys.
pub fn init() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("traceless_pipeline", LevelFilter::INFO);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}
