//! `disk-persistence`: image data or a derived image written to disk, even briefly.

use std::collections::HashMap;
use std::path::Path;
use traceless_evidence::events::{EventKind, MonitorKind};

use traceless_evidence::hit::{Hit, ImageMatch, MIN_COPY};

use super::{Draft, Kind, hit_items, is_image_data, item, main_request, request_at};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "disk-persistence",
    code: "TL-DISK-001",
    description: "Image data or a derived image was written to disk, even briefly.",
    needs: &[MonitorKind::Filesystem],
    run,
    exercised,
};

/// Every scan of each file, merged: the image hits of all of them (a file scanned when written
/// knows only the live needles, its scan at the end of the run every needle) and the first
/// perceptual match.
fn merged_scans(ev: &Evidence) -> HashMap<&Path, (Vec<Hit>, Option<ImageMatch>)> {
    let mut merged: HashMap<&Path, (Vec<Hit>, Option<ImageMatch>)> = HashMap::new();
    for e in &ev.events {
        if let EventKind::FileWritten {
            path,
            hits,
            image_match,
            ..
        } = &e.kind
        {
            let (all, first_match) = merged.entry(path.as_path()).or_default();
            for h in hits.iter().filter(|h| is_image_data(h.needle.subject)) {
                if !all.contains(h) {
                    all.push(h.clone());
                }
            }
            if first_match.is_none() {
                *first_match = *image_match;
            }
        }
    }
    for (hits, _) in merged.values_mut() {
        hits.sort_by_key(|h| (h.offset, h.needle));
    }
    merged
}

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out: Vec<Draft> = Vec::new();
    let merged = merged_scans(ev);
    let mut reported = std::collections::HashSet::new();
    for e in &ev.events {
        match &e.kind {
            // A file scanned at close and again at the end is one finding, at its first scan.
            EventKind::FileWritten { path, size, .. } if reported.insert(path.clone()) => {
                let (image_hits, image_match) = &merged[path.as_path()];
                let loc = path.display().to_string();
                if !image_hits.is_empty() {
                    let bytes = super::covered_bytes(image_hits);
                    out.push(Draft {
                        kind: KIND.name,
                        summary: format!("{loc} ({size} bytes) holds {bytes} byte(s) of uploaded or generated image data"),
                        request: main_request(image_hits),
                        evidence: hit_items("file", Some(e), &loc, image_hits),
                    });
                } else if let Some(m) = image_match {
                    out.push(Draft {
                        kind: KIND.name,
                        summary: format!(
                            "{loc} is a transformed copy of request {}'s image (perceptual distance {})",
                            m.needle.request, m.distance
                        ),
                        request: Some(m.needle.request),
                        evidence: vec![item(
                            "file",
                            Some(e),
                            loc.clone(),
                            format!("decoded and compared by perceptual hash: distance {}", m.distance),
                        )],
                    });
                }
            }
            EventKind::FileVanished { path, size }
                if !is_noise(path) && could_hold_canary(ev, path, *size) =>
            {
                let loc = path.display().to_string();
                let request = request_at(ev, e.t_ms);
                out.push(Draft {
                    kind: KIND.name,
                    summary: format!(
                        "suspected: {loc} was written{} and removed before it could be read",
                        request
                            .map(|r| format!(" during request {r}"))
                            .unwrap_or_default()
                    ),
                    request,
                    evidence: vec![item(
                        "file",
                        Some(e),
                        loc,
                        format!(
                            "written ({} bytes), gone before it could be read",
                            size.map_or("?".into(), |s| s.to_string())
                        ),
                    )],
                });
            }
            _ => {}
        }
    }
    out
}

/// Whether a file written and removed unread could have held a canary: the smallest copy the
/// scanner counts is [`MIN_COPY`] bytes. Its size is known when it was read before, or when every
/// descriptor the tree opened it with was seen closed (the bytes written through each counted);
/// otherwise it could have held anything.
fn could_hold_canary(ev: &Evidence, path: &std::path::Path, size: Option<u64>) -> bool {
    let (mut opens, mut closes, mut written) = (0usize, 0usize, 0u64);
    for e in &ev.events {
        match &e.kind {
            EventKind::Open {
                path: p, result, ..
            } if p == path && *result >= 0 => opens += 1,
            EventKind::Closed {
                path: p,
                written: w,
            } if p == path => {
                closes += 1;
                written += w;
            }
            _ => {}
        }
    }
    let known_written = (opens > 0 && closes >= opens).then_some(written);
    match (size, known_written) {
        (None, None) => true,
        (s, w) => s.max(w).unwrap_or(0) >= MIN_COPY as u64,
    }
}

/// Files interpreters write on their own, which never hold request data.
fn is_noise(path: &std::path::Path) -> bool {
    let s = path.to_string_lossy();
    s.contains("__pycache__")
        || s.ends_with(".pyc")
        || s.starts_with("/dev/")
        || s.starts_with("/proc/")
}

/// Exercised once the pipeline answered a request carrying an image: it had one to keep.
fn exercised(ev: &Evidence) -> Result<(), String> {
    super::some_request_answered(ev)
}
