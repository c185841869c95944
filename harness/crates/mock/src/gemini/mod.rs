//! The Gemini mock: generateContent and streamGenerateContent (SSE or JSON array), the Interactions
//! API (one Interaction or SSE events), the resumable Files API, and the models list, with the real
//! API's validation, answer shapes and error envelopes.
//!
//! One module per API surface (`generate`, `interactions`, `files`, `models`), plus the error envelope (`error`) and
//! the key check (`auth`). This file routes a request to its surface; the steps every request goes
//! through are the shared skeleton in `crate::serve`.

mod auth;
mod error;
mod files;
mod generate;
mod interactions;
mod models;
mod token;

use crate::http::{Incoming, Reply};
use crate::serve::Api;
use crate::state::Shared;
use crate::types::{Behaviour, Endpoint, Provider, RecordedRequest};

pub use error::ApiError;

/// The Gemini API, as the skeleton in `crate::serve` drives it.
pub(crate) struct Gemini;

/// A request understood and found valid, by surface.
#[derive(Debug)]
pub(crate) enum Request {
    Generate(generate::GenerateRequest),
    Interactions(interactions::InteractionsRequest),
    Files(files::FilesRequest),
    Token(token::TokenRequest),
    Models(Option<String>),
    Unknown,
}

impl Api for Gemini {
    const PROVIDER: Provider = Provider::Gemini;
    type Route = Route;
    type Request = Request;
    type Error = ApiError;

    fn route(inc: &Incoming) -> Route {
        route(inc)
    }

    fn endpoint(route: &Route) -> Endpoint {
        route.endpoint
    }

    fn examine(
        shared: &Shared,
        inc: &Incoming,
        route: &Route,
        rec: &mut RecordedRequest,
    ) -> Result<Request, ApiError> {
        match route.endpoint {
            Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
                generate::examine(shared, inc, route, rec).map(Request::Generate)
            }
            Endpoint::Interactions => {
                interactions::examine(shared, inc, route, rec).map(Request::Interactions)
            }
            Endpoint::InteractionsGet
            | Endpoint::InteractionsDelete
            | Endpoint::InteractionsCancel => {
                rec.continues.clone_from(&route.interaction_id);
                Ok(Request::Interactions(interactions::examine_by_id(
                    inc, route,
                )))
            }
            Endpoint::FilesUpload => files::examine_upload(inc, rec).map(Request::Files),
            Endpoint::FilesGet => Ok(Request::Files(match &route.file_id {
                Some(id) => files::FilesRequest::Get(id.clone()),
                None => files::FilesRequest::List,
            })),
            Endpoint::FilesDelete => Ok(Request::Files(files::FilesRequest::Delete(
                route.file_id.clone().unwrap_or_default(),
            ))),
            Endpoint::OAuthToken => Ok(Request::Token(token::examine(shared, inc)?)),
            Endpoint::Models => {
                rec.model.clone_from(&route.model);
                Ok(Request::Models(route.model.clone()))
            }
            _ => Ok(Request::Unknown),
        }
    }

    fn authenticate(shared: &Shared, inc: &Incoming, route: &Route) -> Result<(), ApiError> {
        // The upload URL is itself the credential of a resumable upload; the token endpoint
        // judges the assertion it is given.
        if (route.endpoint == Endpoint::FilesUpload && inc.query_param("upload_id").is_some())
            || route.endpoint == Endpoint::OAuthToken
        {
            return Ok(());
        }
        if route.vertex {
            return auth::check_token(shared, inc);
        }
        if route.interactions() {
            return auth::check(shared, inc).map_err(interactions::unauthenticated);
        }
        auth::check(shared, inc)
    }

    fn message(err: &ApiError) -> String {
        err.message.clone()
    }

    fn error_reply(route: &Route, err: &ApiError) -> Reply {
        route.envelope()(err)
    }

    fn fault(route: &Route, behaviour: Behaviour, model: Option<&str>) -> Option<Reply> {
        error::fault(behaviour, model, route.envelope())
    }

    fn answer(
        shared: &Shared,
        inc: &Incoming,
        request: Request,
        behaviour: Behaviour,
    ) -> (Reply, Option<Vec<u8>>) {
        match request {
            Request::Generate(request) => generate::answer(request, behaviour, shared.output_side),
            Request::Interactions(request) => interactions::answer(shared, request, behaviour),
            Request::Files(request) => (files::answer(shared, inc, request), None),
            Request::Token(request) => (token::answer(shared, request), None),
            Request::Models(name) => (models::answer(&shared.models, name.as_deref()), None),
            Request::Unknown => (
                error::error_reply(&ApiError {
                    code: 404,
                    status: "NOT_FOUND",
                    message: format!(
                        "The requested URL {} was not found on this server.",
                        inc.path
                    ),
                    details: Vec::new(),
                }),
                None,
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Route {
    endpoint: Endpoint,
    /// The API version in the path: "v1beta", "v1", "v1alpha".
    version: String,
    model: Option<String>,
    file_id: Option<String>,
    /// The `{id}` of `/{version}/interactions/{id}`.
    interaction_id: Option<String>,
    /// Vertex AI: the path was `/{v}/projects/{p}/locations/{l}/publishers/google/models/...` or
    /// `/{v}/projects/{p}/locations/{l}/interactions[/{id}]`, authenticated by an OAuth access token.
    vertex: bool,
    /// Where the Interactions API keeps what this route creates and finds: "" for the Gemini API,
    /// `projects/{p}/locations/{l}` for Vertex AI.
    scope: String,
}

impl Route {
    /// How refusals on this route are worded: the Interactions API has its own envelope.
    fn envelope(&self) -> fn(&ApiError) -> Reply {
        if self.interactions() {
            interactions::error_reply
        } else {
            error::error_reply
        }
    }

    /// Whether it addresses the Interactions API (create, get, delete or cancel).
    fn interactions(&self) -> bool {
        matches!(
            self.endpoint,
            Endpoint::Interactions
                | Endpoint::InteractionsGet
                | Endpoint::InteractionsDelete
                | Endpoint::InteractionsCancel
        )
    }
}

/// A Vertex AI path as the Gemini API path it stands for, with its `projects/{p}/locations/{l}`:
/// `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:x` is `/v1/models/{m}:x`, and
/// `/v1beta1/projects/{p}/locations/{l}/interactions[/{id}]` (where google-genai 3.6.1 sends
/// `client.interactions` calls with `vertexai=True`) is `/v1beta1/interactions[/{id}]`.
fn vertex_path(path: &str) -> Option<(String, String)> {
    let (version, rest) = path.trim_start_matches('/').split_once('/')?;
    let mut parts = rest.splitn(5, '/');
    let (Some("projects"), Some(project), Some("locations"), Some(location), Some(tail)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let surface = match tail.strip_prefix("publishers/google/") {
        Some(rest) => rest,
        None if tail == "interactions" || tail.starts_with("interactions/") => tail,
        None => return None,
    };
    Some((
        format!("/{version}/{surface}"),
        format!("projects/{project}/locations/{location}"),
    ))
}

fn route(inc: &Incoming) -> Route {
    let mut r = Route {
        endpoint: Endpoint::Unknown,
        version: "v1beta".into(),
        model: None,
        file_id: None,
        interaction_id: None,
        vertex: false,
        scope: String::new(),
    };
    if inc.method == "POST" && inc.path.trim_end_matches('/') == "/token" {
        r.endpoint = Endpoint::OAuthToken;
        return r;
    }
    let vertex = vertex_path(&inc.path);
    r.vertex = vertex.is_some();
    let (vertex, scope) = vertex.unwrap_or_default();
    r.scope = scope;
    let (upload, path) = match inc.path.strip_prefix("/upload") {
        _ if r.vertex => (false, vertex.as_str()),
        Some(rest) => (true, rest),
        None => (false, inc.path.as_str()),
    };
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let version = segments.next().unwrap_or_default();
    let rest = segments.next().unwrap_or_default().trim_end_matches('/');
    if !matches!(version, "v1" | "v1beta" | "v1alpha" | "v1beta1") {
        return r;
    }
    r.version = version.to_owned();
    let method = inc.method.as_str();
    if upload {
        if rest == "files" && method == "POST" {
            r.endpoint = Endpoint::FilesUpload;
        }
        return r;
    }
    if let Some(target) = rest.strip_prefix("models/") {
        match target.rsplit_once(':') {
            Some((model, "generateContent")) if method == "POST" => {
                r.endpoint = Endpoint::GenerateContent;
                r.model = Some(model.to_owned());
            }
            Some((model, "streamGenerateContent")) if method == "POST" => {
                r.endpoint = Endpoint::StreamGenerateContent;
                r.model = Some(model.to_owned());
            }
            None if method == "GET" => {
                r.endpoint = Endpoint::Models;
                r.model = Some(target.to_owned());
            }
            _ => {}
        }
        return r;
    }
    if rest == "interactions" && method == "POST" {
        r.endpoint = Endpoint::Interactions;
        return r;
    }
    if let Some(by_id) = rest.strip_prefix("interactions/") {
        // google-genai 3.6.1 (Python and Node) cancels with `POST .../interactions/{id}/cancel`;
        // the REST reference also names the custom-method form `{id}:cancel`.
        let (id, cancel) = match by_id
            .strip_suffix("/cancel")
            .or_else(|| by_id.strip_suffix(":cancel"))
        {
            Some(id) => (id, true),
            None => (by_id, false),
        };
        if !id.is_empty() && !id.contains('/') && !id.contains(':') {
            r.endpoint = match (method, cancel) {
                ("GET", false) => Endpoint::InteractionsGet,
                ("DELETE", false) => Endpoint::InteractionsDelete,
                ("POST", true) => Endpoint::InteractionsCancel,
                _ => Endpoint::Unknown,
            };
            r.interaction_id = Some(id.to_owned());
            return r;
        }
    }
    if rest == "models" && method == "GET" {
        r.endpoint = Endpoint::Models;
        return r;
    }
    if rest == "files" && method == "GET" {
        r.endpoint = Endpoint::FilesGet;
        return r;
    }
    if let Some(id) = rest.strip_prefix("files/").filter(|id| !id.contains('/')) {
        r.file_id = Some(id.to_owned());
        r.endpoint = match method {
            "GET" => Endpoint::FilesGet,
            "DELETE" => Endpoint::FilesDelete,
            _ => Endpoint::Unknown,
        };
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(method: &str, path: &str) -> Incoming {
        Incoming {
            tls: true,
            method: method.into(),
            path: path.into(),
            query: None,
            headers: vec![],
            body: vec![],
            host: None,
        }
    }

    #[test]
    fn routes() {
        let r = route(&inc(
            "POST",
            "/v1beta/models/gemini-2.5-flash-image:generateContent",
        ));
        assert_eq!(r.endpoint, Endpoint::GenerateContent);
        assert_eq!(r.model.as_deref(), Some("gemini-2.5-flash-image"));
        let r = route(&inc(
            "POST",
            "/v1/models/gemini-2.5-flash-image:streamGenerateContent",
        ));
        assert_eq!(
            (r.endpoint, r.version.as_str()),
            (Endpoint::StreamGenerateContent, "v1")
        );
        for (method, path, endpoint) in [
            ("POST", "/upload/v1beta/files", Endpoint::FilesUpload),
            ("GET", "/v1beta/files/abc", Endpoint::FilesGet),
            ("DELETE", "/v1beta/files/abc", Endpoint::FilesDelete),
            ("POST", "/v1beta/interactions", Endpoint::Interactions),
            ("POST", "/v1/interactions", Endpoint::Interactions),
            ("GET", "/v1beta/interactions", Endpoint::Unknown),
            (
                "GET",
                "/v1beta/interactions/v1_abc",
                Endpoint::InteractionsGet,
            ),
            ("GET", "/v1/interactions/v1_abc", Endpoint::InteractionsGet),
            (
                "DELETE",
                "/v1/interactions/v1_abc",
                Endpoint::InteractionsDelete,
            ),
            ("PUT", "/v1/interactions/v1_abc", Endpoint::Unknown),
            ("GET", "/v1/interactions/v1_abc/x", Endpoint::Unknown),
            (
                "POST",
                "/v1beta/interactions/v1_abc/cancel",
                Endpoint::InteractionsCancel,
            ),
            (
                "POST",
                "/v1/interactions/v1_abc:cancel",
                Endpoint::InteractionsCancel,
            ),
            ("GET", "/v1/interactions/v1_abc/cancel", Endpoint::Unknown),
            ("POST", "/v1/interactions/v1_abc", Endpoint::Unknown),
            ("POST", "/v1/interactions/v1_abc/stop", Endpoint::Unknown),
            ("POST", "/v1/interactions//cancel", Endpoint::Unknown),
            (
                "POST",
                "/v1beta1/projects/p/locations/us-central1/interactions/v1_abc/cancel",
                Endpoint::InteractionsCancel,
            ),
            (
                "POST",
                "/v1beta1/projects/p/locations/us-central1/interactions",
                Endpoint::Interactions,
            ),
            (
                "GET",
                "/v1beta1/projects/p/locations/us-central1/interactions/v1_abc",
                Endpoint::InteractionsGet,
            ),
            (
                "GET",
                "/v1beta1/projects/p/locations/l/files",
                Endpoint::Unknown,
            ),
            ("GET", "/v2/models", Endpoint::Unknown),
            ("PUT", "/v1beta/models/x:generateContent", Endpoint::Unknown),
        ] {
            assert_eq!(
                route(&inc(method, path)).endpoint,
                endpoint,
                "{method} {path}"
            );
        }
        let r = route(&inc(
            "DELETE",
            "/v1beta1/projects/p/locations/l/interactions/v1_x",
        ));
        assert_eq!(
            (r.vertex, r.scope.as_str(), r.interaction_id.as_deref()),
            (true, "projects/p/locations/l", Some("v1_x"))
        );
        let r = route(&inc("POST", "/v1/interactions/v1_y/cancel"));
        assert_eq!(r.interaction_id.as_deref(), Some("v1_y"));
        let r = route(&inc("GET", "/v1beta/interactions/v1_x"));
        assert_eq!((r.vertex, r.scope.as_str()), (false, ""));
    }
}
