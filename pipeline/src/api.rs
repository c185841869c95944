//! The HTTP API: routes and the generation handler.
//!
//! Order of work for `POST /v1/generations`: declared size, form (with the age gate, within the
//! body read timeout and the body budget), concurrency permit, image format and pixel count,
//! metadata stripping, provider call. The body is read before a permit is taken, so a client
//! that sends slowly holds only the bytes it sent, never a slot that other requests need; the
//! body budget (every upload's bytes read so far, together) keeps what waits for a permit
//! bounded. Every response
//! carries `Cache-Control: no-store` and `Connection: close`: closing the connection frees (and
//! so wipes) the server's read buffers that held the upload, instead of keeping them for the
//! next request on a kept-alive connection.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::access_log::{RequestFacts, access_log};
use crate::config::Config;
use crate::error::ApiError;
use crate::image_check;
use crate::providers::{Generated, Job, Providers};
use crate::strip;
use crate::upload::{self, BodySource, MAX_BODY_BYTES};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    providers: Providers,
    /// Requests processed at once (image checks, stripping, provider call).
    permits: Arc<Semaphore>,
    /// One permit per body byte read and not yet released, over all requests: as much as
    /// `max_concurrency` whole uploads.
    body_budget: Arc<Semaphore>,
    provider_timeout: Duration,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(AppState {
            providers: Providers::new(config)?,
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
            body_budget: Arc::new(Semaphore::new(
                config.max_concurrency.saturating_mul(MAX_BODY_BYTES),
            )),
            provider_timeout: config.provider_timeout,
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
        })
    }

    /// How long a connection may take to send a request's head.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }
}

/// The pipeline's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/generations", post(generate))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(axum::middleware::from_fn(access_log))
}

async fn healthz() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], "ok\n")
}

async fn generate(
    State(state): State<AppState>,
    Extension(facts): Extension<Arc<RequestFacts>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let source = BodySource::new(
        body,
        Arc::clone(&facts.request_bytes),
        Arc::clone(&state.body_budget),
    );
    let mut response = match generate_image(&state, &facts, &headers, source.clone()).await {
        Ok(generated) => {
            let mut response = Response::new(Body::from(generated.bytes));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(generated.mime),
            );
            response
        }
        Err(error) => {
            facts.set_error(error.code());
            // Whatever the client still sends is read and thrown away, so it sees this answer;
            // a client too slow to send its body in time is not waited for again.
            if !matches!(error, ApiError::RequestTimeout(_)) {
                source.drain().await;
            }
            error.into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn generate_image(
    state: &AppState,
    facts: &RequestFacts,
    headers: &HeaderMap,
    source: BodySource,
) -> Result<Generated, ApiError> {
    upload::check_declared_length(headers)?;
    let upload = tokio::time::timeout(state.body_read_timeout, upload::read_form(headers, source))
        .await
        .map_err(|_| ApiError::RequestTimeout(state.body_read_timeout))??;
    let _permit = state
        .permits
        .acquire()
        .await
        .expect("the semaphore is never closed");
    facts.set_provider(upload.provider);
    let info = image_check::inspect(&upload.image)?;
    let stripped = strip::strip(info.kind, &upload.image).map_err(|e| ApiError::InvalidImage {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: e.to_string(),
    })?;
    drop(upload.image);
    let job = Job {
        prompt: &upload.prompt,
        image: stripped,
        kind: info.kind,
    };
    state
        .providers
        .generate(upload.provider, job)
        .await
        .map_err(|failure| ApiError::from_provider(failure, state.provider_timeout))
}
