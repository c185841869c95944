//! `cross-request-leak`: an answer to one request carries another request's image, output or prompt.

use traceless_evidence::hit::Subject;

use super::{Draft, Kind, hit_items};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "cross-request-leak",
    code: "TL-XREQ-001",
    description: "An answer to one request carried another request's image, generated output or prompt.",
    needs: &[],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for req in &ev.requests {
        let foreign: Vec<_> = req
            .response_hits
            .iter()
            .filter(|h| {
                h.needle.request != req.id
                    && matches!(
                        h.needle.subject,
                        Subject::Image | Subject::Output | Subject::Prompt
                    )
            })
            .cloned()
            .collect();
        if foreign.is_empty() {
            continue;
        }
        let mut others: Vec<_> = foreign.iter().map(|h| h.needle.request).collect();
        others.sort();
        others.dedup();
        out.push(Draft {
            kind: KIND.name,
            summary: format!(
                "the answer to request {} (status {}) carries data of request(s) {:?}",
                req.id,
                req.status.map_or("none".into(), |s| s.to_string()),
                others
            ),
            request: Some(req.id),
            evidence: hit_items(
                "response",
                None,
                &format!("answer to request {}", req.id),
                &foreign,
            ),
        });
    }
    out
}

/// Exercised once at least two requests were answered with a body: one could carry the other's.
fn exercised(ev: &Evidence) -> Result<(), String> {
    let answered = ev
        .requests
        .iter()
        .filter(|r| r.status == Some(200) && r.response_bytes > 0)
        .count();
    if answered >= 2 {
        Ok(())
    } else {
        Err(format!(
            "{answered} request(s) answered with an image; two are needed to see one carry another's"
        ))
    }
}
