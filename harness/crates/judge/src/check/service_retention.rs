//! `service-retention`: a prompt, image data or a personal canary kept in a declared local
//! service's files (a database's tables or its write-ahead log, a cache's dump).

use std::collections::BTreeMap;

use traceless_evidence::hit::{Hit, RequestId};

use super::{Draft, Kind, hit_items, subject_names};
use crate::evidence::{Evidence, ServiceScan};

pub const KIND: Kind = Kind {
    name: "service-retention",
    code: "TL-SVC-001",
    description: "A prompt, image data or a personal canary was kept in a declared local service's files.",
    needs: &[],
    run,
    exercised,
};

/// One finding per file and request: what of that request the file holds.
fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for service in &ev.services {
        for (file, hits) in &service.hits {
            for (request, hits) in by_request(hits) {
                out.push(draft(service, file, request, &hits));
            }
        }
    }
    out
}

fn by_request(hits: &[Hit]) -> BTreeMap<RequestId, Vec<Hit>> {
    let mut out: BTreeMap<RequestId, Vec<Hit>> = BTreeMap::new();
    for h in hits {
        out.entry(h.needle.request).or_default().push(h.clone());
    }
    out
}

fn draft(service: &ServiceScan, file: &str, request: RequestId, hits: &[Hit]) -> Draft {
    let what = subject_names(hits);
    let location = format!("{}:{file}", service.name);
    Draft {
        kind: KIND.name,
        summary: format!(
            "the {} of request {request} {} in {}'s {file}",
            what.join(" and "),
            if what.len() > 1 { "are" } else { "is" },
            service.name
        ),
        request: Some(request),
        evidence: hit_items("service", None, &location, hits),
    }
}

/// Exercised once every declared service's folder was read whole after the pipeline answered a
/// request; with no service declared, the pipeline's own files are disk-persistence's to judge.
fn exercised(ev: &Evidence) -> Result<(), String> {
    if ev.services.is_empty() {
        return Ok(());
    }
    super::some_request_answered(ev)?;
    match ev
        .services
        .iter()
        .find_map(|s| Some((&s.name, s.error.as_ref()?)))
    {
        Some((name, why)) => Err(format!(
            "the folder of service {name} was not read whole: {why}"
        )),
        None => Ok(()),
    }
}
