//! Reading the `multipart/form-data` upload within its limits, and the age gate.
//!
//! The body is read as a stream with a hard cap ([`MAX_BODY_BYTES`]): an upload is never held
//! beyond it, and all uploads together stay within the server's body budget ([`BodySource`]). Fields are handled as they arrive; an `age_confirmed` that is not `true` stops the
//! reading at once, before the image (if it comes later) is read at all. When the image arrives
//! first it is held, unexamined, until the age is known. Problems with other fields are noted and
//! reported only once the age gate has passed, so a refusal for age never depends on anything
//! else in the request.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

use crate::config::{FORM_OVERHEAD_BYTES, MAX_IMAGE_BYTES, MAX_PROMPT_CHARS};
use crate::error::ApiError;
use crate::providers::ProviderName;

/// The most a whole request body may weigh.
pub const MAX_BODY_BYTES: usize = MAX_IMAGE_BYTES + FORM_OVERHEAD_BYTES;
/// After refusing a request early, at most this much of the rest of its body is read and
/// discarded (so the client can read the answer rather than meet a reset connection).
const DRAIN_MAX_BYTES: u64 = 40 * 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);
/// The most bytes a prompt field may have (4 bytes per character at most).
const MAX_PROMPT_BYTES: usize = MAX_PROMPT_CHARS * 4;
/// The most bytes of the small text fields (`provider`, `age_confirmed`).
const MAX_SHORT_FIELD_BYTES: usize = 64;

/// A request that passed the age gate and field validation; the image is not yet examined.
pub struct Upload {
    pub provider: ProviderName,
    pub prompt: String,
    pub image: Vec<u8>,
}

/// The request body, shared between the multipart reader and the drain that may follow it,
/// counting the bytes read.
///
/// Every byte the form reader takes holds one permit of the server's body budget until the last
/// clone of the source is dropped (at the end of the request): a chunk waits until the budget has
/// room for it, so all uploads in memory together never exceed the budget. Bytes drained after a
/// refusal are thrown away at once and take no budget.
#[derive(Clone)]
pub struct BodySource {
    inner: Arc<Mutex<SourceState>>,
    read: Arc<AtomicU64>,
}

struct SourceState {
    stream: BodyDataStream,
    budget: PollSemaphore,
    held: Option<OwnedSemaphorePermit>,
    /// A chunk taken from the stream and waiting for its share of the budget.
    waiting: Option<Bytes>,
}

impl BodySource {
    pub fn new(body: Body, read: Arc<AtomicU64>, budget: Arc<Semaphore>) -> Self {
        BodySource {
            inner: Arc::new(Mutex::new(SourceState {
                stream: body.into_data_stream(),
                budget: PollSemaphore::new(budget),
                held: None,
                waiting: None,
            })),
            read,
        }
    }

    fn poll_chunk(
        &self,
        cx: &mut Context<'_>,
        budgeted: bool,
    ) -> Poll<Option<Result<Bytes, axum::Error>>> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *guard;
        let chunk = match state.waiting.take() {
            Some(chunk) => chunk,
            None => match ready!(Pin::new(&mut state.stream).poll_next(cx)) {
                Some(Ok(chunk)) => chunk,
                other => return Poll::Ready(other),
            },
        };
        if budgeted {
            // hyper's chunks are at most its read buffer (hundreds of KiB): far below u32::MAX
            // and below the budget, so a chunk always fits once others have released theirs.
            let permits = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            match state.budget.poll_acquire_many(cx, permits) {
                Poll::Pending => {
                    state.waiting = Some(chunk);
                    return Poll::Pending;
                }
                Poll::Ready(Some(permit)) => match &mut state.held {
                    Some(held) => held.merge(permit),
                    None => state.held = Some(permit),
                },
                // The budget is never closed.
                Poll::Ready(None) => {}
            }
        }
        self.read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(chunk)))
    }

    /// Reads and discards what is left of the body, within bounds.
    pub async fn drain(&self) {
        let started = self.read.load(Ordering::Relaxed);
        let drain = async {
            while let Some(Ok(_)) = poll_fn(|cx| self.poll_chunk(cx, false)).await {
                if self.read.load(Ordering::Relaxed) - started > DRAIN_MAX_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_MAX_TIME, drain).await;
    }
}

impl Stream for BodySource {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_chunk(cx, true)
    }
}

/// Rejects a declared body size above the limit before anything is read.
pub fn check_declared_length(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > MAX_BODY_BYTES as u64 => Err(too_large_body()),
        _ => Ok(()),
    }
}

fn too_large_body() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the upload is larger than the limit of {MAX_IMAGE_BYTES} bytes for the image plus {FORM_OVERHEAD_BYTES} bytes for the other fields"
    ))
}

fn too_large_image() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the image is larger than the limit of {MAX_IMAGE_BYTES} bytes (20 MB)"
    ))
}

/// Reads the form from `source`, enforcing the limits and the age gate.
pub async fn read_form(headers: &HeaderMap, source: BodySource) -> Result<Upload, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| ApiError::InvalidRequest {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        message: "the request must be multipart/form-data with fields image, prompt, provider and age_confirmed".into(),
    })?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(MAX_BODY_BYTES as u64));
    let mut multipart = multer::Multipart::with_constraints(source, boundary, constraints);

    let mut age_confirmed = false;
    let mut provider: Option<Vec<u8>> = None;
    let mut prompt: Option<Vec<u8>> = None;
    let mut image: Option<Vec<u8>> = None;
    // The first problem with a field other than age_confirmed, reported after the age gate.
    let mut problem: Option<ApiError> = None;

    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        let (limit, too_big): (usize, fn() -> ApiError) = match name.as_str() {
            "image" => (MAX_IMAGE_BYTES, too_large_image),
            "prompt" => (MAX_PROMPT_BYTES, || {
                ApiError::InvalidPrompt(format!(
                    "the prompt is longer than {MAX_PROMPT_CHARS} characters"
                ))
            }),
            "provider" => (MAX_SHORT_FIELD_BYTES, || {
                ApiError::UnknownProvider("the provider must be openai or gemini".into())
            }),
            "age_confirmed" => (MAX_SHORT_FIELD_BYTES, || ApiError::AgeConfirmationRequired),
            _ => {
                // Unknown fields are read past and forgotten.
                while field.chunk().await.map_err(multipart_error)?.is_some() {}
                continue;
            }
        };
        let mut value = Vec::new();
        let mut oversized = false;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if oversized {
                continue;
            }
            if value.len() + chunk.len() > limit {
                oversized = true;
                value = Vec::new();
                continue;
            }
            if value.is_empty() && name == "image" {
                // One allocation for the whole image when the request says how big it is.
                value.reserve(declared_length(headers).min(MAX_IMAGE_BYTES));
            }
            value.extend_from_slice(&chunk);
        }
        if oversized {
            if name == "age_confirmed" {
                return Err(ApiError::AgeConfirmationRequired);
            }
            problem.get_or_insert_with(too_big);
            continue;
        }
        let slot = match name.as_str() {
            "age_confirmed" => {
                // Anything but "true" stops here: nothing more of the request is read.
                if !value.trim_ascii().eq_ignore_ascii_case(b"true") {
                    return Err(ApiError::AgeConfirmationRequired);
                }
                age_confirmed = true;
                continue;
            }
            "image" => &mut image,
            "prompt" => &mut prompt,
            _ => &mut provider,
        };
        if slot.replace(value).is_some() {
            problem.get_or_insert_with(|| ApiError::InvalidRequest {
                status: StatusCode::BAD_REQUEST,
                message: format!("the field {name} appears more than once"),
            });
        }
    }

    if !age_confirmed {
        return Err(ApiError::AgeConfirmationRequired);
    }
    if let Some(problem) = problem {
        return Err(problem);
    }
    let provider = parse_provider(provider.as_deref())?;
    let prompt = parse_prompt(prompt)?;
    let image = image.ok_or_else(|| ApiError::InvalidImage {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: "the form has no image field".into(),
    })?;
    Ok(Upload {
        provider,
        prompt,
        image,
    })
}

fn declared_length(headers: &HeaderMap) -> usize {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn multipart_error(error: multer::Error) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { .. } => too_large_body(),
        other => ApiError::InvalidRequest {
            status: StatusCode::BAD_REQUEST,
            message: format!("the multipart body cannot be read: {other}"),
        },
    }
}

fn parse_provider(value: Option<&[u8]>) -> Result<ProviderName, ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::UnknownProvider("the form has no provider field; use openai or gemini".into())
    })?;
    let name = std::str::from_utf8(value).unwrap_or("").trim();
    ProviderName::parse(name).ok_or_else(|| {
        let shown: String = name.chars().filter(|c| !c.is_control()).take(32).collect();
        ApiError::UnknownProvider(format!("unknown provider {shown:?}; use openai or gemini"))
    })
}

fn parse_prompt(value: Option<Vec<u8>>) -> Result<String, ApiError> {
    let value =
        value.ok_or_else(|| ApiError::InvalidPrompt("the form has no prompt field".into()))?;
    let prompt = String::from_utf8(value)
        .map_err(|_| ApiError::InvalidPrompt("the prompt is not valid UTF-8".into()))?;
    if prompt.trim().is_empty() {
        return Err(ApiError::InvalidPrompt("the prompt is empty".into()));
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(ApiError::InvalidPrompt(format!(
            "the prompt has {chars} characters; the limit is {MAX_PROMPT_CHARS}"
        )));
    }
    Ok(prompt)
}
