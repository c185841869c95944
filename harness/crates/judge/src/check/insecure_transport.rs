//! `insecure-transport`: image data sent without TLS, or plaintext provider URLs accepted.

use super::{Draft, Kind, item};
use crate::evidence::{Evidence, ProbeOutcome};

pub const KIND: Kind = Kind {
    name: "insecure-transport",
    code: "TL-TLS-001",
    description: "Data went to a provider without TLS, or the pipeline accepted plaintext provider URLs.",
    needs: &[],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    if ev.mocks_tls {
        for call in ev.provider_calls.iter().filter(|c| !c.recorded.tls) {
            let r = &call.recorded;
            out.push(Draft {
                kind: KIND.name,
                summary: format!(
                    "plaintext HTTP request to the {} port: {} {}",
                    r.provider, r.method, r.path
                ),
                request: call.carried_images_of.first().copied(),
                evidence: vec![item(
                    "provider-request",
                    None,
                    format!("{} {} {}", r.provider, r.method, r.path),
                    format!("{} byte body without TLS", call.body_bytes),
                )],
            });
        }
    }
    if let Some(probe) = &ev.plaintext_probe
        && probe.outcome == ProbeOutcome::Accepted
    {
        out.push(Draft {
            kind: KIND.name,
            summary: format!(
                "the pipeline started and became healthy with http:// provider URLs in {} (it must refuse them)",
                probe.variables.join(", ")
            ),
            request: None,
            evidence: vec![item(
                "process",
                None,
                probe.variables.join(", "),
                "started with plaintext provider URLs and answered its health check",
            )],
        });
    }
    out
}

/// Exercised when provider calls were seen over TLS and the plaintext probe reached a conclusion.
fn exercised(ev: &Evidence) -> Result<(), String> {
    if !ev.provider_calls.iter().any(|c| c.recorded.tls) {
        return Err("no provider call over TLS was seen".to_owned());
    }
    match (&ev.plaintext_probe, &ev.plaintext_probe_skipped) {
        (Some(p), _) => match &p.outcome {
            ProbeOutcome::Inconclusive(why) => {
                Err(format!("the plaintext-URL probe was inconclusive: {why}"))
            }
            ProbeOutcome::Refused { .. } | ProbeOutcome::Accepted => Ok(()),
        },
        (None, Some(why)) => Err(format!("the plaintext-URL probe did not run: {why}")),
        (None, None) => Err("the plaintext-URL probe did not run".to_owned()),
    }
}
