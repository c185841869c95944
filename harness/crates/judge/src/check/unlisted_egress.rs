//! `unlisted-egress`: a connection, DNS lookup or send to anything but the listed providers.

use traceless_evidence::events::{EventKind, MonitorKind};

use super::{Draft, Kind, item, request_at};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "unlisted-egress",
    code: "TL-EGRESS-001",
    description: "The pipeline reached, or tried to reach, something other than the listed providers.",
    needs: &[MonitorKind::Egress, MonitorKind::Syscall],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for e in &ev.events {
        let (what, detail) = match &e.kind {
            EventKind::Connect {
                address,
                family,
                result,
            } if family != "unix" && !allowed(ev, address) => (
                format!("connection to {address}"),
                format!("connect() {family} {address} = {result}"),
            ),
            EventKind::Send {
                address: Some(address),
                bytes,
            } if !address.starts_with('/') && !allowed(ev, address) => (
                format!("{bytes} byte(s) sent to {address}"),
                format!("sendto()/sendmsg() to {address}"),
            ),
            EventKind::DnsQuery { name, qtype, .. } if !host_allowed(ev, name) => (
                format!("DNS lookup of {name}"),
                format!("{qtype} query for {name} at the audit's resolver"),
            ),
            _ => continue,
        };
        let request = request_at(ev, e.t_ms);
        let process = e.pid.map(|p| format!(" by pid {p}")).unwrap_or_default();
        out.push(Draft {
            kind: KIND.name,
            summary: format!(
                "{what}{process}{}",
                request
                    .map(|r| format!(" during request {r}"))
                    .unwrap_or_default()
            ),
            request,
            evidence: vec![item("connect", Some(e), what.clone(), detail)],
        });
    }
    out
}

fn normalise(address: &str) -> String {
    address
        .trim_start_matches('[')
        .replace("]:", ":")
        .replace("::ffff:", "")
}

fn allowed(ev: &Evidence, address: &str) -> bool {
    let a = normalise(address);
    ev.allowed_addresses.iter().any(|ok| normalise(ok) == a)
}

fn host_allowed(ev: &Evidence, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || ev
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&name))
}

/// Exercised once the pipeline answered a request: it had data to send somewhere.
fn exercised(ev: &Evidence) -> Result<(), String> {
    super::some_request_answered(ev)
}
