//! `memory-retention`: image bytes still in process memory after processing and the grace period.

use std::collections::BTreeMap;

use traceless_evidence::events::{EventKind, MonitorKind};
use traceless_evidence::hit::Subject;

use super::{Draft, Kind, hit_items};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "memory-retention",
    code: "TL-MEM-001",
    description: "Image bytes were still in a process's memory after the request ended and the grace period passed.",
    needs: &[MonitorKind::Memory],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    // One finding per request: a cache keeps every upload, and one line each is what a reader needs.
    let mut per_request: BTreeMap<u32, Vec<(&traceless_evidence::events::Event, String, Vec<_>)>> =
        BTreeMap::new();
    for e in &ev.events {
        if let EventKind::MemoryHits { mapping, hits } = &e.kind {
            let settled = |id: u32| settled(ev, id, e.t_ms);
            let image: Vec<_> = hits
                .iter()
                .filter(|h| {
                    matches!(h.needle.subject, Subject::Image | Subject::Output)
                        && settled(h.needle.request)
                })
                .cloned()
                .collect();
            for h in &image {
                per_request.entry(h.needle.request).or_default().push((
                    e,
                    mapping.clone(),
                    vec![h.clone()],
                ));
            }
        }
    }
    per_request
        .into_iter()
        .map(|(request, found)| {
            // Per event (one mapping of one process), the union of the ranges hit in it.
            let mut by_event: BTreeMap<(u64, Option<u32>, &str), Vec<_>> = BTreeMap::new();
            for (e, mapping, hits) in &found {
                by_event.entry((e.t_ms, e.pid, mapping.as_str())).or_default().extend(hits.iter().cloned());
            }
            let bytes: u64 = by_event.values().map(|h| super::covered_bytes(h)).sum();
            let pids: std::collections::BTreeSet<_> = found.iter().filter_map(|(e, _, _)| e.pid).collect();
            let evidence = found
                .iter()
                .take(6)
                .flat_map(|(e, mapping, hits)| hit_items("memory", Some(e), &format!("pid {} {mapping}", e.pid.unwrap_or(0)), hits))
                .collect();
            Draft {
                kind: KIND.name,
                summary: format!(
                    "{bytes} byte(s) of request {request}'s image still in memory of pid(s) {:?} after the grace period",
                    pids
                ),
                request: Some(request),
                evidence,
            }
        })
        .collect()
}

/// Exercised when a completed memory scan ran once some request had settled (its answer sent
/// and its provider calls answered, a grace period before).
fn exercised(ev: &Evidence) -> Result<(), String> {
    let covered = ev
        .memory_scans
        .iter()
        .any(|&t| ev.requests.iter().any(|r| settled(ev, r.id, t)));
    if covered {
        Ok(())
    } else if ev.memory_scans.is_empty() {
        Err("no memory scan completed".to_owned())
    } else {
        Err("no memory scan ran a grace period after any request ended".to_owned())
    }
}

/// Whether request `id` can be judged by a memory scan at `t_ms`: its answer was sent and every
/// provider call it belongs to was answered, a grace period before. Until then it is still being
/// processed (in flight, or waiting on a provider) or within the time the policy allows.
fn settled(ev: &Evidence, id: u32, t_ms: u64) -> bool {
    let grace = ev.memory_grace_ms;
    ev.requests
        .iter()
        .any(|r| r.id == id && r.ended_ms + grace <= t_ms)
        && ev
            .provider_calls
            .iter()
            .filter(|c| c.attributed_to.contains(&id))
            .all(|c| c.answered_ms + grace <= t_ms)
}

/// Requests whose image data the last memory scan found but which it could not judge because a
/// provider call of theirs was still open: "still processing, not judged", never retention.
pub fn still_processing(ev: &Evidence) -> Vec<u32> {
    let Some(last) = ev
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::MemoryHits { .. }))
        .map(|e| e.t_ms)
        .max()
    else {
        return Vec::new();
    };
    let mut out: Vec<u32> = ev
        .events
        .iter()
        .filter(|e| e.t_ms == last)
        .filter_map(|e| match &e.kind {
            EventKind::MemoryHits { hits, .. } => Some(hits),
            _ => None,
        })
        .flatten()
        .filter(|h| matches!(h.needle.subject, Subject::Image | Subject::Output))
        .map(|h| h.needle.request)
        .filter(|&id| {
            !settled(ev, id, last)
                && ev.provider_calls.iter().any(|c| {
                    c.attributed_to.contains(&id) && c.answered_ms + ev.memory_grace_ms > last
                })
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}
