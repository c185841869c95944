//! Mock OpenAI and Gemini servers that validate like the real APIs, answer in their real shapes,
//! and record every request they receive as evidence.
//!
//! An audit points the pipeline under test at these mocks instead of the real providers. What the
//! pipeline sends them is the evidence for half the policy: whether images went to the provider
//! the user chose, whether `store`, `user` or a Files API upload asked the provider to keep data,
//! whether image metadata or client identifiers left the machine, and whether anything travelled
//! without TLS. So the mocks are strict where the real APIs are strict (a request the real service
//! would refuse is refused here with the real error envelope, and the reason is recorded), and
//! faithful in what they answer (the official Python and Node SDKs parse every answer; see
//! `tests/sdk.rs` and `tests/sdk_node.rs`).
//!
//! [`Mocks`] is the main type: [`Mocks::start`] brings up both providers, each a small HTTP/1.1
//! and HTTP/2 server of our own (`server.rs`, which keeps nothing of what it serves), behind a small tokio-rustls front that terminates TLS with a
//! certificate from a CA made for this run ([`Mocks::ca_pem`]). The front peeks at each connection:
//! plaintext HTTP arriving at the TLS port is parsed, recorded with `tls: false`, and refused.
//! [`Mocks::set_behaviour`] scripts faults (429, 5xx, timeouts, safety blocks, malformed or slow
//! answers) for the next generation requests of a provider, and [`Mocks::recorded`] returns every
//! request so far as a [`RecordedRequest`]: headers, body, decoded images, prompt, how it was judged
//! and answered, and the fresh random image the answer carried.
//!
//! **Invariant:** this crate knows nothing of scanning, monitors or reports; it only serves and records.

mod account;
mod control;
mod gemini;
mod http;
mod ids;
mod images;
mod models;
mod openai;
mod serve;
mod server;
mod state;
mod tls;
mod types;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use models::ModelRules;
pub use state::{BACKGROUND_POLLS, KEPT_INTERACTIONS, Router};
pub use tls::PLAINTEXT_REJECTION;
pub use types::{
    Behaviour, Endpoint, MockOptions, Provider, RecordedRequest, TlsRefusal, UnknownName,
};

use state::Shared;

/// Both mock providers, running until [`Mocks::shutdown`] (or drop).
pub struct Mocks {
    shared: Arc<Shared>,
    openai: Served,
    gemini: Served,
    control: Option<Served>,
    tls: bool,
    ca_pem: Option<String>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// One provider's server (or the control endpoint) and the address clients reach it at.
struct Served {
    /// Held for its lifetime: dropping it stops the server.
    _server: server::Server,
    addr: SocketAddr,
}

/// The handler of a provider's server: answers through the provider's handlers and records the
/// exchange. `tls`: whether requests reach it through the TLS front (its port is loopback-only
/// and known to the front alone).
fn provider_handler(provider: Provider, shared: Arc<Shared>) -> server::Handler {
    Arc::new(move |inc: &http::Incoming| {
        let (reply, rec) = match provider {
            Provider::OpenAi => serve::respond::<openai::OpenAi>(&shared, inc),
            Provider::Gemini => serve::respond::<gemini::Gemini>(&shared, inc),
        };
        shared.record(rec);
        reply
    })
}

impl Mocks {
    /// Starts both mocks as the options say. With `tls`, each provider's port is a TLS front and its
    /// server listens on a private loopback port behind it.
    pub async fn start(opts: MockOptions) -> anyhow::Result<Mocks> {
        let mut shared = Shared::new(
            opts.openai_key.clone(),
            opts.gemini_key.clone(),
            opts.timeout_hold,
            opts.models.clone(),
            opts.output_side,
        );
        shared.background_polls = opts.background_polls;
        let shared = Arc::new(shared);
        shared.keep_recorded(opts.keep_recorded);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let authority = if opts.tls {
            Some(tls::make_authority(&opts.extra_hostnames).context("making the mock CA")?)
        } else {
            None
        };
        let mut served = Vec::new();
        for (provider, bind, port) in [
            (Provider::OpenAi, opts.bind, opts.openai_port),
            (
                Provider::Gemini,
                opts.gemini_bind.unwrap_or(opts.bind),
                opts.gemini_port,
            ),
        ] {
            let public = SocketAddr::new(bind, port);
            let Some(authority) = &authority else {
                let listener = std::net::TcpListener::bind(public)
                    .with_context(|| format!("binding the {provider} mock to {public}"))?;
                let addr = listener.local_addr().context("reading the bound address")?;
                let server = server::Server::start(
                    listener,
                    false,
                    provider_handler(provider, shared.clone()),
                )?;
                served.push(Served {
                    _server: server,
                    addr,
                });
                continue;
            };
            let inner =
                std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).with_context(|| {
                    format!("binding the {provider} mock's private port on 127.0.0.1")
                })?;
            let server =
                server::Server::start(inner, true, provider_handler(provider, shared.clone()))?;
            let listener = tokio::net::TcpListener::bind(public)
                .await
                .with_context(|| format!("binding the {provider} TLS front to {public}"))?;
            let addr = listener.local_addr().context("reading the bound address")?;
            let front = tls::Front {
                provider,
                acceptor: tokio_rustls::TlsAcceptor::from(authority.server_config.clone()),
                upstream: server.address(),
                shared: shared.clone(),
                cancel: cancel.clone(),
                tracker: tracker.clone(),
            };
            tracker.spawn(front.run(listener));
            served.push(Served {
                _server: server,
                addr,
            });
        }
        let gemini = served.pop().context("the Gemini mock did not start")?;
        let openai = served.pop().context("the OpenAI mock did not start")?;
        let control = match opts.control {
            Some(at) => Some(start_control(at, &shared)?),
            None => None,
        };
        Ok(Mocks {
            shared,
            openai,
            gemini,
            control,
            tls: opts.tls,
            ca_pem: authority.map(|a| a.ca_pem),
            cancel,
            tracker,
        })
    }

    fn url(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", reachable(addr))
    }

    /// Origin only, e.g. "https://127.0.0.1:40123" (callers append /v1).
    pub fn openai_url(&self) -> String {
        self.url(self.openai.addr)
    }

    /// Origin only (callers append /v1beta).
    pub fn gemini_url(&self) -> String {
        self.url(self.gemini.addr)
    }

    /// The Google service-account JSON of this run (made on first call): Google's SDKs in Vertex
    /// AI mode sign their token requests with its key, and the Gemini mock's token endpoint
    /// (`token_uri`, `{gemini_url}/token`) takes no other key.
    pub fn service_account_json(&self) -> anyhow::Result<String> {
        if self.shared.service_account.get().is_none() {
            let made = account::ServiceAccount::generate()?;
            // Another caller may have made one meanwhile: the first one set stays.
            let _ = self.shared.service_account.set(made);
        }
        let account = self
            .shared
            .service_account
            .get()
            .context("no service account")?;
        let json = account.json(&format!("{}/token", self.gemini_url()));
        Ok(serde_json::to_string_pretty(&json)?)
    }

    pub fn openai_addr(&self) -> SocketAddr {
        self.openai.addr
    }

    pub fn gemini_addr(&self) -> SocketAddr {
        self.gemini.addr
    }

    /// The control endpoint's origin (plain HTTP), e.g. "http://127.0.0.1:40125"; None unless
    /// [`MockOptions::control`] asked for one. See the `control` module for its requests.
    pub fn control_url(&self) -> Option<String> {
        self.control
            .as_ref()
            .map(|c| format!("http://{}", reachable(c.addr)))
    }

    /// The CA that signed the mocks' certificate, PEM; None in plaintext mode.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The behaviours the next generation requests of `provider` take, in order; the last repeats.
    /// Models and Files endpoints always answer normally.
    pub fn set_behaviour(&self, provider: Provider, seq: Vec<Behaviour>) {
        self.shared.set_behaviour(provider, seq);
    }

    /// Scripts what the generation requests `router` assigns `key` meet, in order (the last
    /// repeats): concurrent requests each follow their own script, whatever order they arrive in.
    pub fn set_keyed_behaviour(&self, key: u64, seq: Vec<Behaviour>) {
        self.shared.set_keyed_behaviour(key, seq);
    }

    /// Installs the function that assigns generation requests a key (see
    /// [`Mocks::set_keyed_behaviour`]); requests it assigns none follow their provider's script.
    pub fn set_router(&self, router: Router) {
        self.shared.set_router(router);
    }

    /// Every request so far, in arrival order, plaintext ones included.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.shared.recorded()
    }

    /// How many requests arrived so far: what [`Mocks::recorded_from`] counts from, without
    /// copying a recording.
    pub fn recorded_count(&self) -> usize {
        self.shared.recorded_count()
    }

    /// Every kept recording, moved out rather than copied (the end of an audit takes them once:
    /// a copy doubled the memory they hold); later arrivals are numbered on from them.
    pub fn take_recorded(&self) -> Vec<RecordedRequest> {
        self.shared.take_recorded()
    }

    /// TLS connections whose client refused the mock's certificate, in arrival order.
    pub fn tls_refusals(&self) -> Vec<TlsRefusal> {
        self.shared.tls_refusals()
    }

    /// The requests recorded after the first `start` (a long audit looks at its newest calls
    /// often; copying every earlier one each time made it quadratic).
    pub fn recorded_from(&self, start: usize) -> Vec<RecordedRequest> {
        self.shared.recorded_from(start)
    }

    /// Drops every recording so far, so a long benchmark run holds no evidence it will not read;
    /// numbering and [`Mocks::recorded_from`] indexes start again at 0.
    pub fn forget_recorded(&self) {
        self.shared.forget_recorded();
    }

    /// Stops both mocks: closes every client connection (held `Timeout` requests included) and
    /// waits for the front's tasks to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        // Dropping `self` stops both servers (their threads end with them).
    }
}

impl Drop for Mocks {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// An address a client can dial: a wildcard bind is reached over loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// The control endpoint on its own port; it must be loopback, as it takes orders from anyone.
fn start_control(at: SocketAddr, shared: &Arc<Shared>) -> anyhow::Result<Served> {
    anyhow::ensure!(
        at.ip().is_loopback(),
        "the control endpoint must listen on a loopback address, not {}",
        at.ip()
    );
    let listener = std::net::TcpListener::bind(at)
        .with_context(|| format!("binding the mocks' control endpoint to {at}"))?;
    let control = control::Control {
        shared: shared.clone(),
    };
    let server = server::Server::start(
        listener,
        false,
        Arc::new(move |inc: &http::Incoming| control.respond(inc)),
    )?;
    Ok(Served {
        addr: server.address(),
        _server: server,
    })
}
