//! `personal-data`: client identifiers, addresses or image metadata sent to a provider.

use traceless_scan::scan::Subject;

use super::{Draft, Kind, hit_items, item};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "personal-data",
    code: "TL-PII-001",
    clauses: &["1", "2c"],
    description: "Client identifiers, addresses or image metadata (EXIF, GPS, XMP, text chunks) reached a provider.",
    needs: &[],
    run,
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
        for (i, image) in r.images.iter().enumerate() {
            if let Some(block) = metadata_block(image) {
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

/// The kind of metadata block an image still carries, if any (EXIF, XMP, PNG text chunks).
pub fn metadata_block(image: &[u8]) -> Option<&'static str> {
    let has = |needle: &[u8]| memchr_find(image, needle);
    if has(b"Exif\0\0") || has(b"eXIf") {
        Some("EXIF")
    } else if has(b"<x:xmpmeta") || has(b"http://ns.adobe.com/xap/1.0/") {
        Some("XMP")
    } else if image.starts_with(b"\x89PNG") && (has(b"tEXt") || has(b"iTXt") || has(b"zTXt")) {
        Some("PNG text")
    } else {
        None
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
