//! `wrong-recipient`: the image went to a provider other than the one the request chose.

use super::{Draft, Kind, item};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "wrong-recipient",
    code: "TL-RECIPIENT-001",
    clauses: &["2c"],
    description: "An image was sent to a provider other than the one the request chose, or one the policy does not list.",
    needs: &[],
    run,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for call in &ev.provider_calls {
        let got = call.recorded.provider.to_string();
        for id in &call.carried_images_of {
            let Some(req) = ev.requests.iter().find(|r| r.id == *id) else {
                continue;
            };
            if req.provider != got {
                let r = &call.recorded;
                out.push(Draft {
                    kind: KIND.name,
                    summary: format!(
                        "request {id} chose {} but its image was sent to {got}",
                        req.provider
                    ),
                    request: Some(*id),
                    evidence: vec![item(
                        "provider-request",
                        None,
                        format!("{got} {} {}", r.method, r.path),
                        "carried the image",
                    )],
                });
            }
        }
    }
    out
}
