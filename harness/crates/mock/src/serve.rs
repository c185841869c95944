//! The request skeleton both providers share: route the request, read what it carried, check its
//! credentials, take the scripted behaviour, answer, and record how it was answered.
//!
//! A provider supplies only what differs, through [`Api`]: its routes, its validation, its error
//! envelope and its answers. The order of the steps is the same for both and lives here alone.

use crate::http::{Incoming, Reply};
use crate::state::Shared;
use crate::types::{Behaviour, Endpoint, Provider, RecordedRequest};

/// What one provider's mock knows; the skeleton in [`respond`] drives it.
pub(crate) trait Api {
    const PROVIDER: Provider;
    /// Where a request went: endpoint plus whatever the path named (model, file id, ...).
    type Route;
    /// A request understood and found valid.
    type Request;
    /// A refusal in the provider's own envelope.
    type Error;

    fn route(inc: &Incoming) -> Self::Route;
    fn endpoint(route: &Self::Route) -> Endpoint;
    /// Reads the request, fills in what it carried (images, prompt, model, ...), and says whether
    /// the real API would accept it. Runs before authentication, so a refused request is recorded
    /// with everything it carried.
    fn examine(
        shared: &Shared,
        inc: &Incoming,
        route: &Self::Route,
        rec: &mut RecordedRequest,
    ) -> Result<Self::Request, Self::Error>;
    fn authenticate(
        shared: &Shared,
        inc: &Incoming,
        route: &Self::Route,
    ) -> Result<(), Self::Error>;
    fn message(err: &Self::Error) -> String;
    /// The refusal as the surface `route` addressed words it (one provider may serve surfaces with
    /// different error envelopes).
    fn error_reply(route: &Self::Route, err: &Self::Error) -> Reply;
    /// The provider's answer to an infrastructure fault (429, 500, 503, timeout), which comes before
    /// the request is even looked at; None for every other behaviour.
    fn fault(route: &Self::Route, behaviour: Behaviour, model: Option<&str>) -> Option<Reply>;
    /// The answer to a valid request under `behaviour` (ok, a safety block, ...), and the image it
    /// carries.
    fn answer(
        shared: &Shared,
        inc: &Incoming,
        request: Self::Request,
        behaviour: Behaviour,
    ) -> (Reply, Option<Vec<u8>>);
}

/// Answers one request and says what it carried and how it was answered.
pub(crate) fn respond<A: Api>(shared: &Shared, inc: &Incoming) -> (Reply, RecordedRequest) {
    let mut rec = inc.draft(A::PROVIDER);
    let route = A::route(inc);
    rec.endpoint = A::endpoint(&route);
    let examined = A::examine(shared, inc, &route, &mut rec);

    if let Err(auth) = A::authenticate(shared, inc, &route) {
        rec.rejected = Some(A::message(&auth));
        return finish(rec, A::error_reply(&route, &auth));
    }
    if let Err(err) = &examined {
        rec.rejected = Some(A::message(err));
    }

    let behaviour = if rec.endpoint.generates() {
        shared.take_behaviour_for(A::PROVIDER, &rec)
    } else {
        Behaviour::Ok
    };
    rec.behaviour = behaviour;
    if let Some(reply) = A::fault(&route, behaviour, rec.model.as_deref()) {
        let reply = match behaviour {
            Behaviour::Timeout => reply.delayed(shared.timeout_hold),
            _ => reply,
        };
        return finish(rec, reply);
    }

    let request = match examined {
        Ok(request) => request,
        Err(err) => return finish(rec, A::error_reply(&route, &err)),
    };
    let (mut reply, output) = A::answer(shared, inc, request, behaviour);
    rec.output_image = output;
    match behaviour {
        Behaviour::Malformed => reply = reply.truncated(),
        Behaviour::Slow { delay_ms } => {
            reply = reply.delayed(std::time::Duration::from_millis(delay_ms))
        }
        _ => {}
    }
    finish(rec, reply)
}

/// What a plaintext request carried, without answering it (it is refused at the TLS port).
pub(crate) fn inspect<A: Api>(shared: &Shared, inc: &Incoming) -> RecordedRequest {
    let mut rec = inc.draft(A::PROVIDER);
    let route = A::route(inc);
    rec.endpoint = A::endpoint(&route);
    let _ = A::examine(shared, inc, &route, &mut rec);
    rec
}

fn finish(mut rec: RecordedRequest, reply: Reply) -> (Reply, RecordedRequest) {
    rec.status = reply.status;
    (reply, rec)
}
