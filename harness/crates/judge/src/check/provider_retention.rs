//! `provider-retention`: the provider was asked to keep data (Responses or Interactions `store` not
//! false, a Files API upload, a `user` field).

use traceless_evidence::provider::Endpoint;

use super::{Draft, Kind, item};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "provider-retention",
    code: "TL-RETAIN-001",
    description: "A provider was asked to store data beyond the request.",
    needs: &[],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for call in &ev.provider_calls {
        let r = &call.recorded;
        let mut reasons = Vec::new();
        match r.endpoint {
            Endpoint::Files | Endpoint::FilesUpload => {
                reasons.push("uploaded to the Files API, which keeps files until deleted or expired".to_owned())
            }
            Endpoint::Responses if r.store != Some(false) => reasons.push(format!(
                "Responses API call with store = {} (the API stores responses for 30 days unless store is false)",
                r.store.map_or("absent".to_owned(), |s| s.to_string())
            )),
            Endpoint::Interactions if r.store != Some(false) => reasons.push(format!(
                "Interactions API call with store = {} (the API keeps the interaction for later retrieval unless \
                 store is false)",
                r.store.map_or("absent".to_owned(), |s| s.to_string())
            )),
            _ => {}
        }
        if let Some(user) = &r.user {
            reasons.push(format!(
                "a `user` field ({} chars) ties the request to an end user",
                user.chars().count()
            ));
        }
        for reason in reasons {
            let request = call.carried_images_of.first().copied();
            out.push(Draft {
                kind: KIND.name,
                summary: format!("{} {}: {reason}", r.provider, r.path),
                request,
                evidence: vec![item(
                    "provider-request",
                    None,
                    format!("{} {} {}", r.provider, r.method, r.path),
                    reason.clone(),
                )],
            });
        }
    }
    out
}

/// Exercised once a provider received a call: it could have been asked to keep something.
fn exercised(ev: &Evidence) -> Result<(), String> {
    if ev.provider_calls.is_empty() {
        Err("no provider call was seen".to_owned())
    } else {
        Ok(())
    }
}
