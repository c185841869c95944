//! `child-data`: a request without age confirmation reached a provider or was processed.

use crate::plan::Age;

use super::{Draft, Kind, item};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "child-data",
    code: "TL-CHILD-001",
    description: "A request without confirmation of age 13+ reached a provider or was processed.",
    needs: &[],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for req in ev.requests.iter().filter(|r| r.age != Age::Confirmed) {
        let calls: Vec<_> = ev
            .provider_calls
            .iter()
            .filter(|c| c.carried_images_of.contains(&req.id))
            .collect();
        if !calls.is_empty() {
            out.push(Draft {
                kind: KIND.name,
                summary: format!(
                    "request {} had no age confirmation ({:?}) but its image reached {}",
                    req.id,
                    req.age,
                    calls
                        .iter()
                        .map(|c| c.recorded.provider.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                request: Some(req.id),
                evidence: calls
                    .iter()
                    .map(|c| {
                        let r = &c.recorded;
                        item(
                            "provider-request",
                            None,
                            format!("{} {} {}", r.provider, r.method, r.path),
                            "carried the image",
                        )
                    })
                    .collect(),
            });
        } else if req.status == Some(200) {
            out.push(Draft {
                kind: KIND.name,
                summary: format!(
                    "request {} had no age confirmation but was processed (200)",
                    req.id
                ),
                request: Some(req.id),
                evidence: vec![item(
                    "response",
                    None,
                    format!("request {}", req.id),
                    "answered 200 without age confirmation",
                )],
            });
        }
    }
    out
}

/// Exercised when a request without age confirmation got an answer, and the backend has an age
/// gate to exercise at all.
fn exercised(ev: &Evidence) -> Result<(), String> {
    if ev.no_age_gate {
        return Err("the backend has no age gate (pipeline.request.age_gate = false)".to_owned());
    }
    if ev
        .requests
        .iter()
        .any(|r| r.age != Age::Confirmed && r.status.is_some())
    {
        Ok(())
    } else {
        Err("no request without age confirmation was answered".to_owned())
    }
}
