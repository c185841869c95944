//! The mocks' HTTP server: HTTP/1.1 and HTTP/2 on one listener, each request read whole into an
//! [`Incoming`], answered by a handler with a [`Reply`] (after the reply's scripted delay).
//!
//! Why not a general mock server: the mocks record what they need themselves (bounded by
//! [`crate::MockOptions::keep_recorded`]); a general one keeps every matched request for its own
//! verification, so memory grew with every request (about 17 KB each, bodies included) for as long
//! as the mocks ran. This one keeps nothing.
//!
//! Each server runs on its own thread with its own single-threaded runtime, so a caller that
//! blocks its own runtime (a test waiting on an SDK subprocess) never stalls the mock it talks to.
//! Dropping the [`Server`] stops it: the listener closes and every connection, held ones included,
//! is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming as Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::sync::CancellationToken;

use crate::http::{Incoming, Reply};

/// What answers each request.
pub(crate) type Handler = Arc<dyn Fn(&Incoming) -> Reply + Send + Sync>;

/// A running server; dropping it stops it.
pub(crate) struct Server {
    addr: SocketAddr,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `listener` with `handler`; `tls` says whether requests reach it through the TLS
    /// front (recorded with each request).
    pub fn start(
        listener: std::net::TcpListener,
        tls: bool,
        handler: Handler,
    ) -> anyhow::Result<Server> {
        listener
            .set_nonblocking(true)
            .context("making the mock's listener non-blocking")?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the mock server's runtime")?;
        let thread = std::thread::Builder::new()
            .name(format!("mock-http-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, tls, handler, stop)))
            .context("starting the mock server's thread")?;
        Ok(Server {
            addr,
            cancel,
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: bool,
    handler: Handler,
    cancel: CancellationToken,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = cancel.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(answer(req, tls, &handler).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                // Stopping drops held connections (a scripted timeout) instead of waiting.
                () = cancel.cancelled() => {}
            }
        });
    }
    connections.close();
}

async fn answer(
    req: hyper::Request<Body>,
    tls: bool,
    handler: &Handler,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let incoming = Incoming::from_parts(&parts, body, tls);
    let reply = handler(&incoming);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}
