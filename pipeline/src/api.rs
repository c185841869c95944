//! The HTTP API: routes, the generation handler, and the JSON error contract.
//!
//! Order of work for `POST /v1/generations`: concurrency permit, declared size, form (with the
//! age gate), image format and pixel count, metadata stripping, provider call. Every response
//! carries `Cache-Control: no-store` and `Connection: close`: closing the connection frees (and
//! so wipes) the server's read buffers that held the upload, instead of keeping them for the
//! next request on a kept-alive connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::access_log::{RequestFacts, access_log};
use crate::config::Config;
use crate::image_check::{self, ImageRejection};
use crate::providers::{Generated, Job, ProviderFailure, Providers};
use crate::strip;
use crate::upload::{self, BodySource};

/// An error answered to the client as `{"error":{"code","message"}}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "age confirmation is required: send age_confirmed=true once the user has confirmed being 13 or older"
    )]
    AgeConfirmationRequired,
    #[error("{message}")]
    InvalidImage { status: StatusCode, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    InvalidPrompt(String),
    #[error("{0}")]
    UnknownProvider(String),
    #[error("{message}")]
    InvalidRequest { status: StatusCode, message: String },
    #[error("{0}")]
    ContentRefused(String),
    #[error("the provider is rate limiting requests; retry later")]
    RateLimited { retry_after: Option<String> },
    #[error("{0}")]
    ProviderError(String),
    #[error("the provider did not answer within {} ms", .0.as_millis())]
    ProviderTimeout(Duration),
    #[error("no such route")]
    NotFound,
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::AgeConfirmationRequired => "age_confirmation_required",
            ApiError::InvalidImage { .. } => "invalid_image",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::InvalidPrompt(_) => "invalid_prompt",
            ApiError::UnknownProvider(_) => "unknown_provider",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::ContentRefused(_) => "content_refused",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::ProviderError(_) => "provider_error",
            ApiError::ProviderTimeout(_) => "provider_timeout",
            ApiError::NotFound => "not_found",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::AgeConfirmationRequired => StatusCode::FORBIDDEN,
            ApiError::InvalidImage { status, .. } | ApiError::InvalidRequest { status, .. } => {
                *status
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidPrompt(_)
            | ApiError::UnknownProvider(_)
            | ApiError::ContentRefused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ProviderError(_) => StatusCode::BAD_GATEWAY,
            ApiError::ProviderTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    fn from_provider(failure: ProviderFailure, timeout: Duration) -> Self {
        match failure {
            ProviderFailure::Refused(reason) => ApiError::ContentRefused(format!(
                "the provider's safety system refused this request ({reason})"
            )),
            ProviderFailure::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            ProviderFailure::Timeout => ApiError::ProviderTimeout(timeout),
            other @ (ProviderFailure::NotConfigured(_) | ProviderFailure::Upstream(_)) => {
                ApiError::ProviderError(other.to_string())
            }
        }
    }
}

impl From<ImageRejection> for ApiError {
    fn from(rejection: ImageRejection) -> Self {
        let message = rejection.to_string();
        match rejection {
            ImageRejection::UnsupportedType => ApiError::InvalidImage {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message,
            },
            ImageRejection::Corrupt { .. } => ApiError::InvalidImage {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message,
            },
            ImageRejection::TooManyPixels { .. } => ApiError::PayloadTooLarge(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after } = &self {
            // Without the provider's hint, a conservative default.
            let value = retry_after.as_deref().unwrap_or("30");
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    providers: Providers,
    permits: Arc<Semaphore>,
    provider_timeout: Duration,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(AppState {
            providers: Providers::new(config)?,
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
            provider_timeout: config.provider_timeout,
        })
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
    let source = BodySource::new(body, Arc::clone(&facts.request_bytes));
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
            // Whatever the client still sends is read and thrown away, so it sees this answer.
            source.drain().await;
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
    // Waiting for a permit happens before the body is read, so queued uploads hold no memory.
    let _permit = state
        .permits
        .acquire()
        .await
        .expect("the semaphore is never closed");
    upload::check_declared_length(headers)?;
    let upload = upload::read_form(headers, source).await?;
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

/// Bytes of the request body read so far, for the access log.
pub(crate) fn bytes_read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
