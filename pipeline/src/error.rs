//! The JSON error contract: every refusal the API answers, its status and its stable code.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::image_check::ImageRejection;
use crate::providers::ProviderFailure;

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
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    RequestTimeout(Duration),
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
            ApiError::RequestTimeout(_) => "request_timeout",
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
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    pub(crate) fn from_provider(failure: ProviderFailure, timeout: Duration) -> Self {
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
