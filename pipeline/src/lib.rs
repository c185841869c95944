//! `traceless-pipeline`: the reference image-generation backend of Traceless.
//!
//! A client uploads a photo, a prompt and a provider choice; the pipeline checks that the user
//! confirmed being 13 or older, that the upload is a PNG, JPEG or WebP within the size and pixel
//! limits, strips the image's metadata without re-encoding it, sends it to OpenAI or Gemini over
//! TLS, and answers with the generated image. It keeps nothing: no file is ever written, logs
//! carry no content, and the zeroing allocator in [`alloc`] wipes every buffer as it is freed,
//! so no copy of the upload outlives its request.
//!
//! The main entry points are [`Config`] (the validated environment), [`AppState`] (the provider
//! client and concurrency limit built from it) and [`router`], the axum application; [`serve`]
//! runs it until a shutdown signal, finishing the requests in flight. The binary is a thin
//! `main` over these, and tests drive the same router in process.
//!
//! Data flows one way: `upload` (multipart, limits, age gate) -> `image_check` (format and
//! declared dimensions) -> `strip` (metadata) -> `providers` (the wire formats and their
//! failures) -> `api` (status codes and JSON errors) -> `access_log` (one content-free line).

pub mod access_log;
pub mod alloc;
pub mod api;
pub mod config;
pub mod image_check;
pub mod providers;
pub mod strip;
pub mod upload;

pub use api::{AppState, router};
pub use config::Config;

use std::future::Future;

/// Serves the router on `listener` until `shutdown` resolves, then stops accepting and waits
/// for the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
