//! Checks: one module per finding kind, each turning [`Evidence`] into findings with a stable
//! code. Checks never gather evidence and never format reports.

mod child_data;
mod cross_request_leak;
mod disk_persistence;
mod insecure_transport;
mod log_leak;
mod memory_retention;
mod personal_data;
mod provider_retention;
mod public_exposure;
mod service_retention;
mod unlisted_egress;
mod wrong_recipient;

use traceless_evidence::events::{Event, MonitorKind, MonitorState};
use traceless_evidence::hit::{Hit, RequestId, Subject};
use traceless_report::EvidenceItem;

use crate::evidence::Evidence;

pub use memory_retention::still_processing;

/// A finding before the report gives it an id, a scenario and clauses.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: &'static str,
    pub summary: String,
    pub request: Option<RequestId>,
    pub evidence: Vec<EvidenceItem>,
}

/// A finding kind: its stable code, what it needs to run, and what evidence exercises it. The
/// clauses a kind breaks come from the clause map, which names the kinds that verify each clause.
pub struct Kind {
    pub name: &'static str,
    pub code: &'static str,
    pub description: &'static str,
    /// Monitors without which the check cannot see its evidence.
    pub needs: &'static [MonitorKind],
    run: fn(&Evidence) -> Vec<Draft>,
    /// `Ok` when the run gave the check something to judge; otherwise why not. A check that
    /// found nothing in a run that never exercised it has shown nothing.
    exercised: fn(&Evidence) -> Result<(), String>,
}

/// Every finding kind, in report order.
pub const KINDS: &[Kind] = &[
    disk_persistence::KIND,
    log_leak::KIND,
    unlisted_egress::KIND,
    memory_retention::KIND,
    provider_retention::KIND,
    personal_data::KIND,
    insecure_transport::KIND,
    child_data::KIND,
    wrong_recipient::KIND,
    cross_request_leak::KIND,
    public_exposure::KIND,
    service_retention::KIND,
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Runs every check.
pub fn run_all(ev: &Evidence) -> Vec<Draft> {
    KINDS.iter().flat_map(|k| (k.run)(ev)).collect()
}

/// The names of every finding kind, in report order.
pub fn kind_names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.name)
}

/// Why a check's silence proves nothing on this evidence, if it does not: a monitor it needs was
/// not active, or the run never exercised it.
pub fn not_run_reason(kind: &Kind, ev: &Evidence) -> Option<String> {
    let missing: Vec<String> = kind
        .needs
        .iter()
        .filter_map(|m| {
            let status = ev.monitors.iter().find(|s| s.monitor == *m);
            match status {
                Some(s) if s.state == MonitorState::Active => None,
                Some(s) => Some(format!(
                    "{} monitor {:?}: {}",
                    m.name(),
                    s.state,
                    s.reason.as_deref().unwrap_or("?")
                )),
                None => Some(format!("{} monitor did not run", m.name())),
            }
        })
        .collect();
    if !missing.is_empty() {
        return Some(missing.join("; "));
    }
    (kind.exercised)(ev).err()
}

/// Exercised-rule helper: the pipeline answered at least one request.
fn some_request_answered(ev: &Evidence) -> Result<(), String> {
    if ev.requests.iter().any(|r| r.status.is_some()) {
        Ok(())
    } else {
        Err("no request was answered".to_owned())
    }
}

/// Exercised-rule helper: at least one provider call carried an audit request's data.
fn some_call_attributed(ev: &Evidence) -> Result<(), String> {
    if ev
        .provider_calls
        .iter()
        .any(|c| !c.carried_images_of.is_empty())
    {
        Ok(())
    } else {
        Err("no provider call carried an audit request's image".to_owned())
    }
}

/// The audit request whose time window contains `t_ms`, for evidence that carries no canary.
pub fn request_at(ev: &Evidence, t_ms: u64) -> Option<RequestId> {
    ev.requests
        .iter()
        .find(|r| r.started_ms <= t_ms && t_ms <= r.ended_ms)
        .map(|r| r.id)
}

/// Evidence items for canary hits found at `location`.
pub fn hit_items(
    source: &str,
    event: Option<&Event>,
    location: &str,
    hits: &[Hit],
) -> Vec<EvidenceItem> {
    hits.iter()
        .take(8)
        .map(|h| EvidenceItem {
            source: source.to_owned(),
            at_ms: event.map(|e| e.t_ms),
            pid: event.and_then(|e| e.pid),
            location: format!("{location} @ {}", h.offset),
            detail: format!(
                "{} of request {}: {} byte(s) of it, from offset {}",
                subject_name(h.needle.subject),
                h.needle.request,
                h.source_len,
                h.source_offset
            ),
            encoding: Some(encoding_name(h)),
            matched_bytes: Some(h.len),
            excerpt: None,
        })
        .collect()
}

pub fn subject_name(s: Subject) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{s:?}"))
}

/// The subjects these hits are of, sorted, each once.
pub fn subject_names(hits: &[Hit]) -> Vec<String> {
    let mut what: Vec<String> = hits
        .iter()
        .map(|h| subject_name(h.needle.subject))
        .collect();
    what.sort();
    what.dedup();
    what
}

fn encoding_name(h: &Hit) -> String {
    serde_json::to_value(h.encoding)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", h.encoding))
}

/// Image-derived subjects: the upload, its metadata, and generated outputs.
pub fn is_image_data(s: Subject) -> bool {
    matches!(s, Subject::Image | Subject::Output | Subject::Metadata)
}

/// How many bytes of the haystack these hits cover: the union of their ranges, so overlapping
/// hits (raw bytes and the pixel rows decoded from them) are counted once and the total never
/// exceeds what the haystack holds.
pub fn covered_bytes(hits: &[Hit]) -> u64 {
    let mut ranges: Vec<(u64, u64)> = hits.iter().map(|h| (h.offset, h.offset + h.len)).collect();
    ranges.sort_unstable();
    let mut total = 0;
    let mut end = 0;
    for (start, stop) in ranges {
        let start = start.max(end);
        if stop > start {
            total += stop - start;
            end = stop;
        }
    }
    total
}

/// The request most hits belong to.
pub fn main_request(hits: &[Hit]) -> Option<RequestId> {
    hits.first().map(|h| h.needle.request)
}

pub fn item(
    source: &str,
    event: Option<&Event>,
    location: impl Into<String>,
    detail: impl Into<String>,
) -> EvidenceItem {
    EvidenceItem {
        source: source.to_owned(),
        at_ms: event.map(|e| e.t_ms),
        pid: event.and_then(|e| e.pid),
        location: location.into(),
        detail: detail.into(),
        encoding: None,
        matched_bytes: None,
        excerpt: None,
    }
}

#[cfg(test)]
pub(crate) mod tests;
