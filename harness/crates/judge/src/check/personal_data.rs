//! `personal-data`: client identifiers, addresses or image metadata sent to a provider.

use traceless_evidence::hit::Subject;

use super::{Draft, Kind, hit_items, item};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "personal-data",
    code: "TL-PII-001",
    description: "Client identifiers, addresses or image metadata (EXIF, GPS, XMP, text chunks) reached a provider.",
    needs: &[],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for call in &ev.provider_calls {
        let r = &call.recorded;
        let location = format!("{} {} {}", r.provider, r.method, r.path);
        let hits: Vec<_> = call
            .hits
            .iter()
            .filter(|h| {
                matches!(
                    h.needle.subject,
                    Subject::DeviceId | Subject::ForwardedFor | Subject::Metadata
                )
            })
            .cloned()
            .collect();
        if !hits.is_empty() {
            let mut what: Vec<_> = hits
                .iter()
                .map(|h| super::subject_name(h.needle.subject))
                .collect();
            what.dedup();
            out.push(Draft {
                kind: KIND.name,
                summary: format!("{} sent to {location}", what.join(", ")),
                request: Some(hits[0].needle.request),
                evidence: hit_items("provider-request", None, &location, &hits),
            });
        }
        for (i, block) in call.image_metadata.iter().enumerate() {
            if let Some(block) = block {
                out.push(Draft {
                    kind: KIND.name,
                    summary: format!("image {i} sent to {location} still carries {block} metadata"),
                    request: call.carried_images_of.first().copied(),
                    evidence: vec![item(
                        "provider-request",
                        None,
                        location.clone(),
                        format!("{block} block in the forwarded image"),
                    )],
                });
            }
        }
    }
    out
}

/// Exercised once a provider call carried an audit request's image (with its headers' canaries
/// offered to the pipeline alongside).
fn exercised(ev: &Evidence) -> Result<(), String> {
    super::some_call_attributed(ev)
}
