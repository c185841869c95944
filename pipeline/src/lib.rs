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
//! failures) -> `api` (status codes; `error` holds the JSON errors) -> `access_log` (one
//! content-free line).

pub mod access_log;
pub mod alloc;
pub mod api;
pub mod config;
pub mod error;
pub mod image_check;
pub mod providers;
pub mod strip;
pub mod upload;

pub use api::{AppState, router};
pub use config::Config;

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

/// Serves the router on `listener` until `shutdown` resolves, then stops accepting and waits
/// for the requests in flight.
///
/// HTTP/1.1 only, with the state's header read timeout: a connection that has not sent a whole
/// request head in time is closed. (The body read timeout is the handler's, see [`api`].)
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_read_timeout = state.header_read_timeout();
    let app = router(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // keep serving the others.
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: Request<Incoming>| request.map(axum::body::Body::new)),
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that went away or sent no valid request: nothing to answer.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
