//! `public-exposure`: something the pipeline kept (a file it wrote, a result an answer linked to)
//! can be fetched back over its own HTTP port.

use traceless_evidence::events::MonitorKind;

use super::{Draft, Kind, hit_items, main_request};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "public-exposure",
    code: "TL-EXPOSE-001",
    description: "A file the pipeline wrote could be fetched back over its HTTP port without credentials.",
    needs: &[MonitorKind::Filesystem],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    ev.exposure_probes
        .iter()
        .filter(|p| p.status == 200 && !p.hits.is_empty())
        .map(|p| Draft {
            kind: KIND.name,
            summary: format!("{} is served at {} without credentials", p.what, p.url),
            request: main_request(&p.hits),
            evidence: hit_items("response", None, &format!("GET {}", p.url), &p.hits),
        })
        .collect()
}

/// Exercised once the files the filesystem monitor saw written were probed over the pipeline's port.
fn exercised(ev: &Evidence) -> Result<(), String> {
    if ev.exposure_probed {
        Ok(())
    } else {
        Err("the written files were not probed over the pipeline's port".to_owned())
    }
}
