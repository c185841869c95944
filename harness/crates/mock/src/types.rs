//! The plain data the mocks share with their callers: providers, scripted behaviours and
//! recordings (from `traceless_evidence::provider`), and the mocks' own options.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub use traceless_evidence::provider::{
    Behaviour, Endpoint, Provider, RecordedRequest, TlsRefusal, UnknownName,
};

/// How and where the mocks listen, and the keys they accept.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Serve HTTPS through the TLS front (plain HTTP when false).
    pub tls: bool,
    pub bind: IpAddr,
    /// Gemini's own address when it must differ from OpenAI's (each provider's host name then
    /// resolves to its own address, both on port 443); `None` shares `bind`.
    pub gemini_bind: Option<IpAddr>,
    /// 0 picks a free port.
    pub openai_port: u16,
    pub gemini_port: u16,
    /// Extra names (or addresses) the leaf certificate is valid for.
    pub extra_hostnames: Vec<String>,
    pub openai_key: String,
    pub gemini_key: String,
    /// How long a `Timeout` behaviour holds a request before answering 504.
    pub timeout_hold: Duration,
    /// Side of the square PNG each generation answer carries: small by default, so an audit's
    /// answers stay cheap; the pipeline benchmark asks for 1024, a real answer's size.
    pub output_side: u32,
    /// Which models each API accepts and which it answers as retired.
    pub models: crate::models::ModelRules,
    /// Where to serve the control endpoint (loopback only; port 0 picks one); None for no endpoint.
    pub control: Option<std::net::SocketAddr>,
    /// Keep only the newest this many recordings (a long-running `traceless mocks` stays flat in
    /// memory); `None`, the default, keeps every one, as an audit's evidence needs.
    pub keep_recorded: Option<usize>,
    /// How many gets of a Gemini Interactions API `background` interaction answer it
    /// `in_progress` before one answers it finished (see `KeptInteraction`'s run); 1 by default
    /// ([`crate::BACKGROUND_POLLS`]), 0 finishes it at the first get.
    pub background_polls: u32,
}

impl Default for MockOptions {
    /// TLS on 127.0.0.1 with free ports and fresh random keys in each provider's own key format.
    fn default() -> Self {
        MockOptions {
            tls: true,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            gemini_bind: None,
            openai_port: 0,
            gemini_port: 0,
            extra_hostnames: Vec::new(),
            openai_key: format!("sk-proj-tl{}", crate::ids::alnum(40)),
            gemini_key: format!("AIza{}", crate::ids::alnum(35)),
            timeout_hold: Duration::from_secs(60),
            output_side: 64,
            models: crate::models::ModelRules::default(),
            control: None,
            keep_recorded: None,
            background_polls: crate::BACKGROUND_POLLS,
        }
    }
}
