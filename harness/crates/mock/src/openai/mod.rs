//! The OpenAI mock: Images (edits, generations), Responses with the image_generation tool, Files and
//! Models, with the real API's validation, answer shapes, error envelopes and headers.
//!
//! One module per API surface (`images`, `responses`, `files`, `models`), plus the error envelope
//! (`error`) and the key check (`auth`). This file routes a request to its surface; the steps every
//! request goes through are the shared skeleton in `crate::serve`.

mod auth;
mod error;
mod files;
mod images;
mod models;
mod responses;

use crate::http::{Incoming, Reply};
use crate::models::ModelRules;
use crate::serve::Api;
use crate::state::Shared;
use crate::types::{Behaviour, Endpoint, Provider, RecordedRequest};

pub use error::ApiError;

/// The OpenAI API, as the skeleton in `crate::serve` drives it.
pub(crate) struct OpenAi;

#[derive(Debug, Clone)]
pub(crate) struct Route {
    endpoint: Endpoint,
    /// The `{id}` of `/v1/files/{id}` or `/v1/models/{id}`.
    id: Option<String>,
    /// Azure OpenAI: the path was `/openai/v1/...` or `/openai/deployments/{d}/...`.
    azure: bool,
    /// Azure OpenAI: the `{d}` of `/openai/deployments/{d}/...`.
    deployment: Option<String>,
}

/// A request understood and found valid, by surface.
#[derive(Debug)]
pub(crate) enum Request {
    Images(images::ImagesRequest),
    Responses(responses::ResponsesRequest),
    Files(files::FilesRequest),
    Models(Option<String>),
    Unknown,
}

impl Api for OpenAi {
    const PROVIDER: Provider = Provider::OpenAi;
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
        let id = || route.id.clone().unwrap_or_default();
        if let Some(deployment) = &route.deployment {
            rec.model = Some(deployment.clone());
            if inc.query_param("api-version").is_none() {
                // What Azure answers a deployment call without `api-version`.
                return Err(ApiError {
                    status: 404,
                    message: "Resource not found".into(),
                    kind: "invalid_request_error",
                    param: None,
                    code: Some("404".into()),
                });
            }
        }
        // On Azure, `model` names the customer's own deployment (Azure maps it to a model), so any
        // name passes there.
        let any_model = ModelRules::any();
        let rules = if route.azure {
            &any_model
        } else {
            &shared.models
        };
        let examined = match route.endpoint {
            Endpoint::ImagesEdits => images::examine(rules, inc, images::ImagesKind::Edit, rec),
            Endpoint::ImagesGenerations => {
                images::examine(rules, inc, images::ImagesKind::Generate, rec)
            }
            Endpoint::Responses => {
                responses::examine(shared, rules, inc, rec).map(Request::Responses)
            }
            Endpoint::Files if inc.method == "GET" => Ok(Request::Files(files::FilesRequest::List)),
            Endpoint::Files => files::examine_upload(inc, rec),
            Endpoint::FilesGet => Ok(Request::Files(files::FilesRequest::Get(id()))),
            Endpoint::FilesDelete => Ok(Request::Files(files::FilesRequest::Delete(id()))),
            Endpoint::Models => {
                rec.model.clone_from(&route.id);
                Ok(Request::Models(route.id.clone()))
            }
            _ => Ok(Request::Unknown),
        };
        if let Some(deployment) = &route.deployment
            && rec.model.is_none()
        {
            rec.model = Some(deployment.clone());
        }
        examined
    }

    fn authenticate(shared: &Shared, inc: &Incoming, route: &Route) -> Result<(), ApiError> {
        auth::check(shared, inc, route.azure)
    }

    fn message(err: &ApiError) -> String {
        err.message.clone()
    }

    fn error_reply(_route: &Route, err: &ApiError) -> Reply {
        error::error_reply(err)
    }

    fn fault(_route: &Route, behaviour: Behaviour, model: Option<&str>) -> Option<Reply> {
        error::fault(behaviour, model)
    }

    fn answer(
        shared: &Shared,
        inc: &Incoming,
        request: Request,
        behaviour: Behaviour,
    ) -> (Reply, Option<Vec<u8>>) {
        // Only generation requests take a behaviour other than ok.
        if matches!(
            behaviour,
            Behaviour::SafetyBlock | Behaviour::SafetyBlockImage
        ) {
            return (error::moderation_blocked(behaviour), None);
        }
        match request {
            Request::Images(request) => images::answer(request, shared.output_side),
            Request::Responses(request) => responses::answer(request, shared.output_side),
            Request::Files(request) => (files::answer(shared, request), None),
            Request::Models(id) => (models::answer(&shared.models, id.as_deref()), None),
            Request::Unknown => {
                let err = ApiError {
                    status: 404,
                    message: format!("Invalid URL ({} {})", inc.method, inc.path),
                    kind: "invalid_request_error",
                    param: None,
                    code: None,
                };
                (error::error_reply(&err), None)
            }
        }
    }
}

/// Azure OpenAI paths as the OpenAI paths they stand for: `/openai/v1/x` is `/v1/x`, and
/// `/openai/deployments/{d}/x` is `/v1/x` for deployment `d`.
fn azure_path(path: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix("/openai")?;
    if rest.starts_with("/v1/") {
        return Some((rest.to_owned(), None));
    }
    let rest = rest.strip_prefix("/deployments/")?;
    let (deployment, tail) = rest.split_once('/')?;
    Some((format!("/v1/{tail}"), Some(deployment.to_owned())))
}

fn route(inc: &Incoming) -> Route {
    let (path, azure, deployment) = match azure_path(&inc.path) {
        Some((path, deployment)) => (path, true, deployment),
        None => (inc.path.clone(), false, None),
    };
    let path = path.trim_end_matches('/');
    let plain = |endpoint| Route {
        endpoint,
        id: None,
        azure,
        deployment: deployment.clone(),
    };
    match (inc.method.as_str(), path) {
        ("POST", "/v1/images/edits") => plain(Endpoint::ImagesEdits),
        ("POST", "/v1/images/generations") => plain(Endpoint::ImagesGenerations),
        ("POST", "/v1/responses") => plain(Endpoint::Responses),
        ("POST" | "GET", "/v1/files") => plain(Endpoint::Files),
        ("GET", "/v1/models") => plain(Endpoint::Models),
        (method, _) => {
            if let Some(id) = path
                .strip_prefix("/v1/files/")
                .filter(|id| !id.contains('/'))
            {
                let endpoint = match method {
                    "GET" => Endpoint::FilesGet,
                    "DELETE" => Endpoint::FilesDelete,
                    _ => Endpoint::Unknown,
                };
                return Route {
                    id: Some(id.to_owned()),
                    ..plain(endpoint)
                };
            }
            if let Some(id) = path.strip_prefix("/v1/models/").filter(|_| method == "GET") {
                return Route {
                    id: Some(id.to_owned()),
                    ..plain(Endpoint::Models)
                };
            }
            plain(Endpoint::Unknown)
        }
    }
}
