//! The OpenAI mock: Images (edits, generations), Responses with the image_generation tool, Files and
//! Models, with the real API's validation, answer shapes, error envelopes and headers.

use serde_json::{Map, Value, json};

use crate::http::{Incoming, Part, Reply, parse_multipart};
use crate::ids;
use crate::images::{self, Sniffed};
use crate::state::{OpenAiFile, Shared, lock};
use crate::types::{Behaviour, Endpoint, Provider, RecordedRequest};

/// Image models the Images API knows.
const IMAGE_MODELS: &[&str] = &[
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "chatgpt-image-latest",
    "dall-e-2",
    "dall-e-3",
];

/// Models listed by `GET /v1/models` (and accepted by the Responses API, with the families below).
const LISTED_MODELS: &[&str] = &[
    "gpt-image-1.5",
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-2",
    "chatgpt-image-latest",
    "dall-e-2",
    "dall-e-3",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-5.1",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
];

/// Families of Responses models: the real list changes often, so a dated snapshot of a known family passes.
const RESPONSES_MODEL_FAMILIES: &[&str] = &["gpt-5", "gpt-4.1", "gpt-4o", "o3", "o4-mini", "o1"];

/// Upper bound of one input image for the GPT image models.
const GPT_IMAGE_MAX_BYTES: usize = 50 * 1024 * 1024;
/// dall-e-2 edits: "Uploaded image must be a PNG and less than 4 MB".
const DALL_E_2_MAX_BYTES: usize = 4 * 1024 * 1024;
const MAX_EDIT_IMAGES: usize = 16;

/// A 4xx/5xx answer in the real envelope `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ApiError {
    fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: code.map(str::to_owned),
        }
    }

    fn missing(param: &str) -> ApiError {
        ApiError::invalid(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    fn unknown_parameter(param: &str) -> ApiError {
        ApiError::invalid(
            format!("Unknown parameter: '{param}'."),
            Some(param),
            Some("unknown_parameter"),
        )
    }

    fn invalid_value(param: &str, given: &str, supported: &[&str]) -> ApiError {
        let quoted: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
        let list = match quoted.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
            Some((last, _)) => last.clone(),
            None => String::new(),
        };
        ApiError::invalid(
            format!("Invalid value: '{given}'. Supported values are: {list}."),
            Some(param),
            Some("invalid_value"),
        )
    }

    fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        ApiError::invalid(
            format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
            Some(param),
            Some("invalid_type"),
        )
    }

    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

/// The headers every OpenAI answer carries.
fn openai_reply(status: u16, body: &Value) -> Reply {
    with_openai_headers(Reply::json(status, body))
}

fn with_openai_headers(reply: Reply) -> Reply {
    reply
        .header("x-request-id", format!("req_{}", ids::hex(32)))
        .header("openai-version", "2020-10-01")
        .header(
            "openai-processing-ms",
            rand::random_range(180..2400u32).to_string(),
        )
        .header("openai-organization", "user-tracelessmock")
        .header("openai-project", "proj_tracelessmock")
        .header("x-ratelimit-limit-requests", "50")
        .header("x-ratelimit-remaining-requests", "49")
        .header("x-ratelimit-reset-requests", "1.2s")
        .header(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains; preload",
        )
}

fn error_reply(err: &ApiError) -> Reply {
    openai_reply(err.status, &err.body())
}

/// Answers one request to the OpenAI mock, and says what it carried and how it was answered.
pub fn respond(shared: &Shared, inc: &Incoming) -> (Reply, RecordedRequest) {
    let mut rec = inc.draft(Provider::OpenAi);
    let route = route(inc);
    rec.endpoint = route.endpoint;
    let examined = examine(shared, inc, &route, &mut rec);

    if let Err(auth) = check_auth(shared, inc) {
        rec.rejected = Some(auth.message.clone());
        return finish(rec, error_reply(&auth));
    }
    if let Err(err) = &examined {
        rec.rejected = Some(err.message.clone());
    }

    let generates = matches!(
        route.endpoint,
        Endpoint::ImagesEdits | Endpoint::ImagesGenerations | Endpoint::Responses
    );
    let behaviour = if generates {
        shared.take_behaviour(Provider::OpenAi)
    } else {
        Behaviour::Ok
    };
    rec.behaviour = behaviour;

    // Infrastructure failures come before the request is even looked at.
    let infra = match behaviour {
        Behaviour::RateLimited { retry_after_s } => {
            Some(rate_limited(rec.model.as_deref(), retry_after_s))
        }
        Behaviour::ServerError => Some(error_reply(&server_error())),
        Behaviour::Unavailable => Some(error_reply(&ApiError {
            status: 503,
            message: "The engine is currently overloaded, please try again later.".into(),
            kind: "server_error",
            param: None,
            code: None,
        })),
        Behaviour::Timeout => Some(
            error_reply(&ApiError {
                status: 504,
                message: "Gateway timeout. The upstream did not answer in time.".into(),
                kind: "server_error",
                param: None,
                code: Some("timeout".into()),
            })
            .delayed(shared.timeout_hold),
        ),
        _ => None,
    };
    if let Some(reply) = infra {
        return finish(rec, reply);
    }

    let parsed = match examined {
        Ok(parsed) => parsed,
        Err(err) => return finish(rec, error_reply(&err)),
    };

    if matches!(
        behaviour,
        Behaviour::SafetyBlock | Behaviour::SafetyBlockImage
    ) {
        return finish(rec, moderation_blocked(behaviour));
    }

    let (mut reply, output) = answer(shared, inc, parsed);
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
pub fn inspect(shared: &Shared, inc: &Incoming) -> RecordedRequest {
    let mut rec = inc.draft(Provider::OpenAi);
    let route = route(inc);
    rec.endpoint = route.endpoint;
    let _ = examine(shared, inc, &route, &mut rec);
    rec
}

fn finish(mut rec: RecordedRequest, reply: Reply) -> (Reply, RecordedRequest) {
    rec.status = reply.status;
    (reply, rec)
}

fn check_auth(shared: &Shared, inc: &Incoming) -> Result<(), ApiError> {
    let unauthorized = |message: String, code: Option<&str>| ApiError {
        status: 401,
        message,
        kind: "invalid_request_error",
        param: None,
        code: code.map(str::to_owned),
    };
    let Some(auth) = inc.header("authorization") else {
        return Err(unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using \
             Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if \
             you're accessing the API from your browser and are prompted for a username and password. You can \
             obtain an API key from https://platform.openai.com/account/api-keys."
                .into(),
            None,
        ));
    };
    let key = auth.strip_prefix("Bearer ").unwrap_or("").trim();
    if key == shared.openai_key {
        return Ok(());
    }
    Err(unauthorized(
        format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            mask_key(key)
        ),
        Some("invalid_api_key"),
    ))
}

/// The real API shows only the ends of a wrong key.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn server_error() -> ApiError {
    ApiError {
        status: 500,
        message: "The server had an error while processing your request. Sorry about that!".into(),
        kind: "server_error",
        param: None,
        code: None,
    }
}

fn rate_limited(model: Option<&str>, retry_after_s: u32) -> Reply {
    let err = ApiError {
        status: 429,
        message: format!(
            "Rate limit reached for {} in organization org-tracelessmock on images per min (IPM): Limit 5, Used 5, \
             Requested 1. Please try again in {retry_after_s}s. Visit https://platform.openai.com/account/rate-limits \
             to learn more.",
            model.unwrap_or("gpt-image-1")
        ),
        kind: "requests",
        param: None,
        code: Some("rate_limit_exceeded".into()),
    };
    error_reply(&err)
        .header("retry-after", retry_after_s.to_string())
        .header("x-ratelimit-remaining-requests", "0")
        .header("x-ratelimit-reset-requests", format!("{retry_after_s}s"))
}

/// The safety system's refusal. Its message names the request by the id `x-request-id` carries, so
/// a client can quote either.
fn moderation_blocked(behaviour: Behaviour) -> Reply {
    let (violation, _stage) = match behaviour {
        Behaviour::SafetyBlockImage => ("sexual", "output"),
        _ => ("violence", "input"),
    };
    let request_id = format!("req_{}", ids::hex(32));
    let err = ApiError {
        status: 400,
        message: format!(
            "Your request was rejected by the safety system. If you believe this is an error, contact us at \
             help.openai.com and include the request ID {request_id}. safety_violations=[{violation}]."
        ),
        kind: "image_generation_user_error",
        param: None,
        code: Some("moderation_blocked".into()),
    };
    error_reply(&err).header("x-request-id", request_id)
}

#[derive(Debug, Clone)]
struct Route {
    endpoint: Endpoint,
    /// The `{id}` of `/v1/files/{id}` or `/v1/models/{id}`.
    id: Option<String>,
}

fn route(inc: &Incoming) -> Route {
    let path = inc.path.trim_end_matches('/');
    let plain = |endpoint| Route { endpoint, id: None };
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
                    endpoint,
                    id: Some(id.to_owned()),
                };
            }
            if let Some(id) = path.strip_prefix("/v1/models/").filter(|_| method == "GET") {
                return Route {
                    endpoint: Endpoint::Models,
                    id: Some(id.to_owned()),
                };
            }
            plain(Endpoint::Unknown)
        }
    }
}

/// A request understood and found valid.
#[derive(Debug)]
enum Parsed {
    Images {
        kind: ImagesKind,
        model: String,
        n: u32,
        size: String,
        quality: String,
        output_format: String,
        background: String,
        stream: bool,
    },
    Responses {
        body: Map<String, Value>,
        image_tool: Option<Map<String, Value>>,
        has_input_image: bool,
        stream: bool,
    },
    FileUpload {
        file: OpenAiFile,
    },
    FileList,
    FileGet(String),
    FileDelete(String),
    Models(Option<String>),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImagesKind {
    Edit,
    Generate,
}

/// Reads the request, fills in what it carried (images, prompt, model, user, store), and says
/// whether the real API would accept it.
fn examine(
    shared: &Shared,
    inc: &Incoming,
    route: &Route,
    rec: &mut RecordedRequest,
) -> Result<Parsed, ApiError> {
    match route.endpoint {
        Endpoint::ImagesEdits => examine_images(inc, ImagesKind::Edit, rec),
        Endpoint::ImagesGenerations => examine_images(inc, ImagesKind::Generate, rec),
        Endpoint::Responses => examine_responses(shared, inc, rec),
        Endpoint::Files if inc.method == "GET" => Ok(Parsed::FileList),
        Endpoint::Files => examine_file_upload(inc, rec),
        Endpoint::FilesGet => Ok(Parsed::FileGet(route.id.clone().unwrap_or_default())),
        Endpoint::FilesDelete => Ok(Parsed::FileDelete(route.id.clone().unwrap_or_default())),
        Endpoint::Models => Ok(Parsed::Models(route.id.clone())),
        _ => Ok(Parsed::Unknown),
    }
}

/// The parameters of an Images request, whatever its encoding.
struct ImageParams {
    fields: Map<String, Value>,
    /// Multipart values are all strings; JSON values carry their own types.
    from_form: bool,
}

impl ImageParams {
    fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(ApiError::invalid_type(name, "a string", other)),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::String(s)) if self.from_form => s.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::invalid(
                    format!("Invalid type for '{name}': expected an integer, but got a string instead."),
                    Some(name),
                    Some("invalid_type"),
                )
            }),
            Some(other) => Err(ApiError::invalid_type(name, "an integer", other)),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if self.from_form => match s.trim() {
                "true" | "True" | "1" => Ok(Some(true)),
                "false" | "False" | "0" => Ok(Some(false)),
                _ => Err(ApiError::invalid(
                    format!(
                        "Invalid type for '{name}': expected a boolean, but got a string instead."
                    ),
                    Some(name),
                    Some("invalid_type"),
                )),
            },
            Some(other) => Err(ApiError::invalid_type(name, "a boolean", other)),
        }
    }
}

const EDIT_FIELDS: &[&str] = &[
    "image",
    "image[]",
    "images",
    "mask",
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "input_fidelity",
    "response_format",
    "stream",
    "partial_images",
    "user",
    "moderation",
];

const GENERATION_FIELDS: &[&str] = &[
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "response_format",
    "stream",
    "partial_images",
    "style",
    "user",
];

/// One input image of an Images request, as the request declared it.
struct InputImage {
    param: String,
    declared_type: Option<String>,
    bytes: Vec<u8>,
}

fn examine_images(
    inc: &Incoming,
    kind: ImagesKind,
    rec: &mut RecordedRequest,
) -> Result<Parsed, ApiError> {
    let content_type = inc.content_type();
    let mut inputs: Vec<InputImage> = Vec::new();
    let mut mask: Option<InputImage> = None;
    let params = if content_type == "multipart/form-data" && kind == ImagesKind::Edit {
        let header = inc.header("content-type").unwrap_or_default();
        let parts = parse_multipart(header, &inc.body).map_err(|e| {
            ApiError::invalid(
                format!("Could not parse multipart form: {e}"),
                None,
                Some("invalid_multipart"),
            )
        })?;
        let mut fields = Map::new();
        let mut unknown: Option<String> = None;
        for part in parts {
            let Part {
                name,
                content_type,
                data,
                ..
            } = &part;
            match name.as_str() {
                "image" | "image[]" => {
                    rec.images.push(data.clone());
                    inputs.push(InputImage {
                        param: name.clone(),
                        declared_type: content_type.clone(),
                        bytes: data.clone(),
                    });
                }
                "mask" => {
                    rec.images.push(data.clone());
                    mask = Some(InputImage {
                        param: "mask".into(),
                        declared_type: content_type.clone(),
                        bytes: data.clone(),
                    });
                }
                other if EDIT_FIELDS.contains(&other) => {
                    fields.insert(other.to_owned(), Value::String(part.text()));
                }
                other => {
                    unknown.get_or_insert_with(|| other.to_owned());
                }
            }
        }
        let params = ImageParams {
            fields,
            from_form: true,
        };
        record_common(&params, rec);
        if let Some(name) = unknown {
            return Err(ApiError::unknown_parameter(&name));
        }
        params
    } else if content_type == "application/json" {
        let body: Value = serde_json::from_slice(&inc.body).map_err(|e| {
            ApiError::invalid(
                format!(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your \
                     HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid \
                     JSON. If you have trouble figuring out how to fix this, please contact us through our help \
                     center at help.openai.com.) ({e})"
                ),
                None,
                None,
            )
        })?;
        let Value::Object(fields) = body else {
            return Err(ApiError::invalid_type("body", "an object", &body));
        };
        let params = ImageParams {
            fields,
            from_form: false,
        };
        record_common(&params, rec);
        let allowed = if kind == ImagesKind::Edit {
            EDIT_FIELDS
        } else {
            GENERATION_FIELDS
        };
        if let Some(name) = params
            .fields
            .keys()
            .find(|k| !allowed.contains(&k.as_str()) || matches!(k.as_str(), "image" | "image[]"))
        {
            return Err(ApiError::unknown_parameter(name));
        }
        if kind == ImagesKind::Edit {
            collect_json_edit_images(&params, rec, &mut inputs, &mut mask)?;
        }
        params
    } else {
        let expected = if kind == ImagesKind::Edit {
            "multipart/form-data or application/json"
        } else {
            "application/json"
        };
        return Err(ApiError::invalid(
            format!(
                "Invalid Content-Type header ({}), expected {expected}.",
                inc.header("content-type").unwrap_or("none")
            ),
            None,
            None,
        ));
    };
    validate_images(kind, &params, &inputs, mask.as_ref())
}

/// Fields recorded whether or not the request is valid.
fn record_common(params: &ImageParams, rec: &mut RecordedRequest) {
    let text = |name: &str| match params.fields.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    rec.prompt = text("prompt");
    rec.model = text("model");
    rec.user = text("user");
}

/// `images:[{image_url}|{file_id}]` and `mask:{...}` of the JSON edit body.
fn collect_json_edit_images(
    params: &ImageParams,
    rec: &mut RecordedRequest,
    inputs: &mut Vec<InputImage>,
    mask: &mut Option<InputImage>,
) -> Result<(), ApiError> {
    let refs = match params.fields.get("images") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => return Err(ApiError::invalid_type("images", "an array", other)),
    };
    let mut pending = Vec::new();
    for (i, item) in refs.iter().enumerate() {
        pending.push((format!("images[{i}]"), item.clone(), false));
    }
    if let Some(m) = params.fields.get("mask") {
        pending.push(("mask".to_owned(), m.clone(), true));
    }
    let mut first_error = None;
    for (param, item, is_mask) in pending {
        let image = match image_ref(&param, &item) {
            Ok(Some((mime, bytes))) => {
                rec.images.push(bytes.clone());
                InputImage {
                    param,
                    declared_type: Some(mime),
                    bytes,
                }
            }
            Ok(None) => continue,
            Err(e) => {
                first_error.get_or_insert(e);
                continue;
            }
        };
        if is_mask {
            *mask = Some(image);
        } else {
            inputs.push(image);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One `{image_url}` / `{file_id}` reference: the decoded data URL, None for a file id.
fn image_ref(param: &str, item: &Value) -> Result<Option<(String, Vec<u8>)>, ApiError> {
    let Value::Object(obj) = item else {
        return Err(ApiError::invalid_type(param, "an object", item));
    };
    match (obj.get("image_url"), obj.get("file_id")) {
        (Some(_), Some(_)) | (None, None) => Err(ApiError::invalid(
            format!("Invalid '{param}': exactly one of 'image_url' or 'file_id' must be provided."),
            Some(param),
            Some("invalid_value"),
        )),
        (None, Some(_)) => Ok(None),
        (Some(Value::String(url)), None) => {
            data_url_image(&format!("{param}.image_url"), url).map(Some)
        }
        (Some(other), None) => Err(ApiError::invalid_type(
            &format!("{param}.image_url"),
            "a string",
            other,
        )),
    }
}

/// A `data:` URL image; remote URLs are refused because this mock cannot fetch them (nor may a test).
fn data_url_image(param: &str, url: &str) -> Result<(String, Vec<u8>), ApiError> {
    if url.len() > 20_971_520 {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length 20971520, but got a string with length {} instead.",
                url.len()
            ),
            Some(param),
            Some("string_above_max_length"),
        ));
    }
    if !url.starts_with("data:") {
        return Err(ApiError::invalid(
            format!("Error while downloading {url}."),
            Some("url"),
            Some("invalid_value"),
        ));
    }
    let Some((mime, bytes)) = images::decode_data_url(url) else {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type (e.g. \
                 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a value that could not be decoded."
            ),
            Some(param),
            Some("invalid_value"),
        ));
    };
    if !mime.starts_with("image/") {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type (e.g. \
                 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got unsupported MIME type '{mime}'."
            ),
            Some(param),
            Some("invalid_value"),
        ));
    }
    Ok((mime, bytes))
}

fn is_gpt_image(model: &str) -> bool {
    model.starts_with("gpt-image-") || model == "chatgpt-image-latest"
}

fn size_choices(model: &str, kind: ImagesKind) -> &'static [&'static str] {
    match model {
        "dall-e-2" => &["256x256", "512x512", "1024x1024"],
        "dall-e-3" => &["1024x1024", "1792x1024", "1024x1792"],
        _ if kind == ImagesKind::Edit => &["1024x1024", "1536x1024", "1024x1536", "auto"],
        _ => &["1024x1024", "1536x1024", "1024x1536", "auto"],
    }
}

/// gpt-image-2 takes any size with both sides divisible by 16, aspect between 1:3 and 3:1, up to 3840x2160.
fn flexible_size_ok(size: &str) -> bool {
    if size == "auto" {
        return true;
    }
    let Some((w, h)) = size.split_once('x') else {
        return false;
    };
    let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>()) else {
        return false;
    };
    let (long, short) = (w.max(h), w.min(h));
    w > 0
        && h > 0
        && w % 16 == 0
        && h % 16 == 0
        && long <= 3840
        && short <= 2160
        && long <= short * 3
}

fn check_choice(
    params: &ImageParams,
    name: &str,
    choices: &[&str],
) -> Result<Option<String>, ApiError> {
    match params.str(name)? {
        Some(v) if !choices.contains(&v.as_str()) => {
            Err(ApiError::invalid_value(name, &v, choices))
        }
        other => Ok(other),
    }
}

fn check_range(
    params: &ImageParams,
    name: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, ApiError> {
    match params.int(name)? {
        Some(v) if v < min => Err(ApiError::invalid(
            format!(
                "Invalid '{name}': integer below minimum value. Expected a value >= {min}, but got {v} instead."
            ),
            Some(name),
            Some("integer_below_min_value"),
        )),
        Some(v) if v > max => Err(ApiError::invalid(
            format!(
                "Invalid '{name}': integer above maximum value. Expected a value <= {max}, but got {v} instead."
            ),
            Some(name),
            Some("integer_above_max_value"),
        )),
        other => Ok(other),
    }
}

fn validate_images(
    kind: ImagesKind,
    params: &ImageParams,
    inputs: &[InputImage],
    mask: Option<&InputImage>,
) -> Result<Parsed, ApiError> {
    let model = match params.str("model")? {
        Some(m) => m,
        None if kind == ImagesKind::Edit => "gpt-image-1.5".to_owned(),
        // "Defaults to dall-e-2 unless a parameter specific to the GPT image models is used."
        None if [
            "output_format",
            "output_compression",
            "background",
            "moderation",
        ]
        .iter()
        .any(|k| params.fields.contains_key(*k)) =>
        {
            "gpt-image-1.5".to_owned()
        }
        None => "dall-e-2".to_owned(),
    };
    let edit_models: Vec<&str> = IMAGE_MODELS
        .iter()
        .copied()
        .filter(|m| *m != "dall-e-3")
        .collect();
    let known: &[&str] = if kind == ImagesKind::Edit {
        &edit_models
    } else {
        IMAGE_MODELS
    };
    if !known.contains(&model.as_str()) {
        return Err(ApiError::invalid_value("model", &model, known));
    }
    let gpt = is_gpt_image(&model);

    let prompt = params
        .str("prompt")?
        .ok_or_else(|| ApiError::missing("prompt"))?;
    let max_prompt = match model.as_str() {
        "dall-e-2" => 1000,
        "dall-e-3" => 4000,
        _ => 32000,
    };
    let prompt_len = prompt.chars().count();
    if prompt_len == 0 {
        return Err(ApiError::invalid(
            "Invalid 'prompt': string too short. Expected a string with minimum length 1, but got an empty string instead.",
            Some("prompt"),
            Some("string_below_min_length"),
        ));
    }
    if prompt_len > max_prompt {
        return Err(ApiError::invalid(
            format!(
                "Invalid 'prompt': string too long. Expected a string with maximum length {max_prompt}, but got a \
                 string with length {prompt_len} instead."
            ),
            Some("prompt"),
            Some("string_above_max_length"),
        ));
    }

    if kind == ImagesKind::Edit {
        if inputs.is_empty() {
            let name = if params.from_form { "image" } else { "images" };
            return Err(ApiError::missing(name));
        }
        if inputs.len() > MAX_EDIT_IMAGES || (!gpt && inputs.len() > 1) {
            let max = if gpt { MAX_EDIT_IMAGES } else { 1 };
            return Err(ApiError::invalid(
                format!(
                    "Invalid 'image': array too long. Expected an array with maximum length {max}, but got an array \
                     with length {} instead.",
                    inputs.len()
                ),
                Some("image"),
                Some("array_above_max_length"),
            ));
        }
        for (i, input) in inputs.iter().chain(mask).enumerate() {
            check_input_image(&model, i, input)?;
        }
    }

    let n = check_range(params, "n", 1, 10)?.unwrap_or(1);
    if model == "dall-e-3" && n != 1 {
        return Err(ApiError::invalid(
            "Invalid 'n': dall-e-3 only supports n=1.",
            Some("n"),
            Some("invalid_value"),
        ));
    }
    let size = match params.str("size")? {
        Some(s) if model.starts_with("gpt-image-2") && !flexible_size_ok(&s) => {
            return Err(ApiError::invalid(
                format!(
                    "Invalid size '{s}'. Requested resolution must have both sides divisible by 16, an aspect ratio \
                     between 1:3 and 3:1, and be at most 3840x2160."
                ),
                Some("size"),
                Some("invalid_value"),
            ));
        }
        Some(s)
            if !model.starts_with("gpt-image-2")
                && !size_choices(&model, kind).contains(&s.as_str()) =>
        {
            return Err(ApiError::invalid_value(
                "size",
                &s,
                size_choices(&model, kind),
            ));
        }
        Some(s) => s,
        None if gpt => "1024x1024".to_owned(),
        None => "1024x1024".to_owned(),
    };
    let quality_choices: &[&str] = match model.as_str() {
        "dall-e-2" => &["standard"],
        "dall-e-3" => &["standard", "hd"],
        _ => &["standard", "low", "medium", "high", "auto"],
    };
    let quality =
        check_choice(params, "quality", quality_choices)?.unwrap_or_else(|| "auto".into());
    let gpt_only = [
        "output_format",
        "output_compression",
        "background",
        "moderation",
        "input_fidelity",
        "partial_images",
    ];
    if !gpt && let Some(name) = gpt_only.iter().find(|k| params.fields.contains_key(**k)) {
        return Err(ApiError::invalid(
            format!("Invalid parameter: '{name}' is only supported for the GPT image models."),
            Some(name),
            Some("invalid_parameter"),
        ));
    }
    if gpt && params.fields.contains_key("response_format") {
        return Err(ApiError::unknown_parameter("response_format"));
    }
    if gpt && params.fields.contains_key("style") {
        return Err(ApiError::unknown_parameter("style"));
    }
    let output_format = check_choice(params, "output_format", &["png", "jpeg", "webp"])?
        .unwrap_or_else(|| "png".into());
    let background = check_choice(params, "background", &["transparent", "opaque", "auto"])?
        .unwrap_or_else(|| "auto".into());
    if background == "transparent" && output_format == "jpeg" {
        return Err(ApiError::invalid(
            "Transparent background is not supported for the jpeg output format. Use png or webp.",
            Some("background"),
            Some("invalid_value"),
        ));
    }
    check_range(params, "output_compression", 0, 100)?;
    check_range(params, "partial_images", 0, 3)?;
    check_choice(params, "input_fidelity", &["high", "low"])?;
    check_choice(params, "moderation", &["low", "auto"])?;
    check_choice(params, "response_format", &["url", "b64_json"])?;
    check_choice(params, "style", &["vivid", "natural"])?;
    let stream = params.bool("stream")?.unwrap_or(false);
    if let Some(user) = params.fields.get("user")
        && !user.is_string()
    {
        return Err(ApiError::invalid_type("user", "a string", user));
    }
    let output_quality = if quality == "auto" {
        "medium".to_owned()
    } else {
        quality
    };
    Ok(Parsed::Images {
        kind,
        model,
        n: n as u32,
        size: if size == "auto" {
            "1024x1024".into()
        } else {
            size
        },
        quality: output_quality,
        output_format,
        background: if background == "auto" {
            "opaque".into()
        } else {
            background
        },
        stream,
    })
}

fn check_input_image(model: &str, index: usize, input: &InputImage) -> Result<(), ApiError> {
    let param = input.param.as_str();
    let declared = input
        .declared_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    if model == "dall-e-2" {
        if images::sniff(&input.bytes) != Sniffed::Png || input.bytes.len() >= DALL_E_2_MAX_BYTES {
            return Err(ApiError::invalid(
                "Uploaded image must be a PNG and less than 4 MB.",
                Some(param),
                Some("invalid_image_format"),
            ));
        }
    } else {
        if !["image/png", "image/jpeg", "image/webp"].contains(&declared.as_str()) {
            return Err(ApiError::invalid(
                format!(
                    "Invalid file '{param}': unsupported mimetype ('{declared}'). Supported file formats are \
                     'image/jpeg', 'image/png', and 'image/webp'."
                ),
                Some(param),
                Some("unsupported_file_mimetype"),
            ));
        }
        if input.bytes.len() > GPT_IMAGE_MAX_BYTES {
            return Err(ApiError::invalid(
                format!(
                    "Invalid file '{param}': file too large ({} bytes). Each image must be smaller than 50MB.",
                    input.bytes.len()
                ),
                Some(param),
                Some("image_too_large"),
            ));
        }
    }
    if images::decode_dimensions(&input.bytes).is_err() {
        return Err(ApiError {
            status: 400,
            message: format!(
                "Invalid image file or mode for image {}, please check your image file. Supported formats are \
                 'png', 'jpeg' and 'webp'.",
                index + 1
            ),
            kind: "image_generation_user_error",
            param: None,
            code: Some("invalid_image_file".into()),
        });
    }
    Ok(())
}

const RESPONSES_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "store",
    "stream",
    "stream_options",
    "metadata",
    "top_logprobs",
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "truncation",
    "reasoning",
    "include",
    "parallel_tool_calls",
    "moderation",
    "conversation",
    "context_management",
    "max_output_tokens",
    "previous_response_id",
    "background",
    "max_tool_calls",
    "text",
    "prompt",
];

fn examine_responses(
    shared: &Shared,
    inc: &Incoming,
    rec: &mut RecordedRequest,
) -> Result<Parsed, ApiError> {
    let body: Value = serde_json::from_slice(&inc.body).map_err(|e| {
        ApiError::invalid(
            format!("We could not parse the JSON body of your request. ({e})"),
            None,
            None,
        )
    })?;
    let Value::Object(body) = body else {
        return Err(ApiError::invalid_type("body", "an object", &body));
    };
    rec.model = body.get("model").and_then(Value::as_str).map(str::to_owned);
    // `safety_identifier` replaced `user`; both name the end user to the provider.
    rec.user = ["user", "safety_identifier"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_str))
        .map(str::to_owned);
    rec.store = body.get("store").and_then(Value::as_bool);

    // Collect everything the request carried before judging it.
    let mut prompt_texts = Vec::new();
    let mut image_refs: Vec<(String, String)> = Vec::new();
    let mut file_ids: Vec<(String, String)> = Vec::new();
    match body.get("input") {
        Some(Value::String(s)) => prompt_texts.push(s.clone()),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.get("content") {
                    Some(Value::String(s)) => prompt_texts.push(s.clone()),
                    Some(Value::Array(parts)) => {
                        for (j, part) in parts.iter().enumerate() {
                            let at = format!("input[{i}].content[{j}]");
                            match part.get("type").and_then(Value::as_str) {
                                Some("input_text") => {
                                    if let Some(t) = part.get("text").and_then(Value::as_str) {
                                        prompt_texts.push(t.to_owned());
                                    }
                                }
                                Some("input_image") => {
                                    if let Some(url) = part.get("image_url").and_then(Value::as_str)
                                    {
                                        image_refs
                                            .push((format!("{at}.image_url"), url.to_owned()));
                                    } else if let Some(id) =
                                        part.get("file_id").and_then(Value::as_str)
                                    {
                                        file_ids.push((format!("{at}.file_id"), id.to_owned()));
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    let mut image_tool = None;
    if let Some(Value::Array(tools)) = body.get("tools") {
        for (i, tool) in tools.iter().enumerate() {
            if tool.get("type").and_then(Value::as_str) == Some("image_generation") {
                if let Some(url) = tool
                    .get("input_image_mask")
                    .and_then(|m| m.get("image_url"))
                    .and_then(Value::as_str)
                {
                    image_refs.push((
                        format!("tools[{i}].input_image_mask.image_url"),
                        url.to_owned(),
                    ));
                }
                image_tool = tool.as_object().cloned();
            }
        }
    }
    if !prompt_texts.is_empty() {
        rec.prompt = Some(prompt_texts.join("\n"));
    }
    let mut decoded = Vec::new();
    let mut image_error = None;
    for (param, url) in &image_refs {
        match data_url_image(param, url) {
            Ok((mime, bytes)) => {
                rec.images.push(bytes.clone());
                decoded.push((param.clone(), mime, bytes));
            }
            Err(e) => {
                image_error.get_or_insert(e);
            }
        }
    }

    // Now judge it as the real API does.
    if let Some(name) = body
        .keys()
        .find(|k| !RESPONSES_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::unknown_parameter(name));
    }
    let model = match body.get("model") {
        None | Some(Value::Null) => return Err(ApiError::missing("model")),
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(ApiError::invalid_type("model", "a string", other)),
    };
    let known = LISTED_MODELS.contains(&model.as_str())
        || RESPONSES_MODEL_FAMILIES
            .iter()
            .any(|f| model == *f || model.starts_with(&format!("{f}-")));
    if !known || is_gpt_image(&model) || model.starts_with("dall-e") {
        return Err(ApiError {
            status: 400,
            message: format!("The requested model '{model}' does not exist."),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found".into()),
        });
    }
    match body.get("input") {
        None | Some(Value::String(_)) | Some(Value::Array(_)) => {}
        Some(other) => {
            return Err(ApiError::invalid_type(
                "input",
                "a string or an array",
                other,
            ));
        }
    }
    if body.get("input").is_none()
        && body.get("previous_response_id").is_none()
        && body.get("prompt").is_none()
    {
        return Err(ApiError::missing("input"));
    }
    if let Some(store) = body.get("store")
        && !store.is_boolean()
        && !store.is_null()
    {
        return Err(ApiError::invalid_type("store", "a boolean", store));
    }
    if let Some(user) = body.get("user")
        && !user.is_string()
    {
        return Err(ApiError::invalid_type("user", "a string", user));
    }
    if let Some(e) = image_error {
        return Err(e);
    }
    for (param, mime, bytes) in &decoded {
        let supported = matches!(
            mime.as_str(),
            "image/png" | "image/jpeg" | "image/webp" | "image/gif"
        );
        let sniffed = images::sniff(bytes);
        let decodes = sniffed == Sniffed::Gif || images::decode_dimensions(bytes).is_ok();
        if !supported || !decodes {
            return Err(ApiError::invalid(
                "You uploaded an unsupported image. Please make sure your image is below 50 MB in size and is of \
                 one the following formats: ['png', 'jpeg', 'gif', 'webp'].",
                Some(param),
                Some("invalid_image_format"),
            ));
        }
    }
    for (param, id) in &file_ids {
        if !lock(&shared.openai_files).contains_key(id) {
            return Err(ApiError::invalid(
                format!("The file '{id}' was not found."),
                Some(param),
                Some("file_not_found"),
            ));
        }
    }
    if let Some(tool) = &image_tool {
        validate_image_tool(tool)?;
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(ApiError::invalid_type("stream", "a boolean", other)),
    };
    let tool_disabled = body.get("tool_choice").and_then(Value::as_str) == Some("none");
    Ok(Parsed::Responses {
        body,
        image_tool: image_tool.filter(|_| !tool_disabled),
        has_input_image: !decoded.is_empty() || !file_ids.is_empty(),
        stream,
    })
}

fn validate_image_tool(tool: &Map<String, Value>) -> Result<(), ApiError> {
    let params = ImageParams {
        fields: tool.clone(),
        from_form: false,
    };
    let choice = |name: &str, choices: &[&str]| -> Result<(), ApiError> {
        match params.str(name) {
            Ok(Some(v)) if !choices.contains(&v.as_str()) => Err(ApiError::invalid_value(
                &format!("tools[0].{name}"),
                &v,
                choices,
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    };
    choice(
        "model",
        &[
            "gpt-image-1",
            "gpt-image-1-mini",
            "gpt-image-1.5",
            "gpt-image-2",
            "chatgpt-image-latest",
        ],
    )?;
    choice("quality", &["low", "medium", "high", "auto"])?;
    choice("output_format", &["png", "jpeg", "webp"])?;
    choice("background", &["transparent", "opaque", "auto"])?;
    choice("moderation", &["low", "auto"])?;
    choice("input_fidelity", &["high", "low"])?;
    choice("action", &["generate", "edit", "auto"])?;
    if let Ok(Some(size)) = params.str("size")
        && !["1024x1024", "1024x1536", "1536x1024", "auto"].contains(&size.as_str())
        && !flexible_size_ok(&size)
    {
        return Err(ApiError::invalid_value(
            "tools[0].size",
            &size,
            &["1024x1024", "1024x1536", "1536x1024", "auto"],
        ));
    }
    check_range(&params, "output_compression", 0, 100)?;
    check_range(&params, "partial_images", 0, 3)?;
    Ok(())
}

const FILE_PURPOSES: &[&str] = &[
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

fn examine_file_upload(inc: &Incoming, rec: &mut RecordedRequest) -> Result<Parsed, ApiError> {
    if inc.content_type() != "multipart/form-data" {
        return Err(ApiError::invalid(
            format!(
                "Invalid Content-Type header ({}), expected multipart/form-data.",
                inc.header("content-type").unwrap_or("none")
            ),
            None,
            None,
        ));
    }
    let parts = parse_multipart(inc.header("content-type").unwrap_or_default(), &inc.body)
        .map_err(|e| {
            ApiError::invalid(format!("Could not parse multipart form: {e}"), None, None)
        })?;
    let file = parts.iter().find(|p| p.name == "file");
    let purpose = parts.iter().find(|p| p.name == "purpose").map(Part::text);
    if let Some(file) = file
        && images::looks_like_image(&file.data)
    {
        rec.images.push(file.data.clone());
    }
    let file = file.ok_or_else(|| ApiError::missing("file"))?;
    let purpose = purpose.ok_or_else(|| ApiError::missing("purpose"))?;
    if !FILE_PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::invalid_value("purpose", &purpose, FILE_PURPOSES));
    }
    Ok(Parsed::FileUpload {
        file: OpenAiFile {
            id: format!("file-{}", ids::alnum(22)),
            filename: file.file_name.clone().unwrap_or_else(|| "upload".into()),
            purpose,
            bytes: file.data.len(),
            created_at: ids::unix_now(),
        },
    })
}

fn file_object(f: &OpenAiFile) -> Value {
    json!({
        "object": "file",
        "id": f.id,
        "purpose": f.purpose,
        "filename": f.filename,
        "bytes": f.bytes,
        "created_at": f.created_at,
        "expires_at": null,
        "status": "processed",
        "status_details": null
    })
}

fn not_found_file(id: &str) -> Reply {
    error_reply(&ApiError {
        status: 404,
        message: format!("No such File object: {id}"),
        kind: "invalid_request_error",
        param: Some("id".into()),
        code: None,
    })
}

fn model_object(id: &str) -> Value {
    let owned_by = if id.starts_with("dall-e") {
        "system"
    } else {
        "openai"
    };
    json!({"id": id, "object": "model", "created": 1_698_785_189, "owned_by": owned_by})
}

/// The success answer for a valid request, and the image it carries.
fn answer(shared: &Shared, inc: &Incoming, parsed: Parsed) -> (Reply, Option<Vec<u8>>) {
    match parsed {
        Parsed::Images {
            kind,
            model,
            n,
            size,
            quality,
            output_format,
            background,
            stream,
        } => {
            let outputs: Vec<Vec<u8>> = (0..n.max(1))
                .map(|_| images::random_png(shared.output_side))
                .collect();
            let usage = image_usage(&quality, n);
            let first = outputs[0].clone();
            if stream {
                let event = match kind {
                    ImagesKind::Edit => "image_edit.completed",
                    ImagesKind::Generate => "image_generation.completed",
                };
                let data = json!({
                    "type": event,
                    "b64_json": images::encode_base64(&first),
                    "created_at": ids::unix_now(),
                    "size": size, "quality": quality, "background": background, "output_format": output_format,
                    "usage": usage
                });
                let body = format!("event: {event}\ndata: {data}\n\n");
                return (
                    with_openai_headers(Reply::new(
                        200,
                        "text/event-stream; charset=utf-8",
                        body.into_bytes(),
                    )),
                    Some(first),
                );
            }
            let data: Vec<Value> = outputs
                .iter()
                .map(|img| {
                    let mut item = json!({"b64_json": images::encode_base64(img)});
                    if model == "dall-e-3" {
                        item["revised_prompt"] =
                            json!("A faithful rendering of the requested scene.");
                    }
                    item
                })
                .collect();
            let mut body = json!({"created": ids::unix_now(), "data": data});
            if is_gpt_image(&model) {
                body["background"] = json!(background);
                body["output_format"] = json!(output_format);
                body["size"] = json!(size);
                body["quality"] = json!(quality);
                body["usage"] = usage;
            }
            (openai_reply(200, &body), Some(first))
        }
        Parsed::Responses {
            body,
            image_tool,
            has_input_image,
            stream,
        } => responses_answer(
            &body,
            image_tool,
            has_input_image,
            stream,
            shared.output_side,
        ),
        Parsed::FileUpload { file } => {
            let body = file_object(&file);
            lock(&shared.openai_files).insert(file.id.clone(), file);
            (openai_reply(200, &body), None)
        }
        Parsed::FileList => {
            let files: Vec<Value> = lock(&shared.openai_files)
                .values()
                .map(file_object)
                .collect();
            (
                openai_reply(
                    200,
                    &json!({"object": "list", "data": files, "has_more": false}),
                ),
                None,
            )
        }
        Parsed::FileGet(id) => match lock(&shared.openai_files).get(&id) {
            Some(f) => (openai_reply(200, &file_object(f)), None),
            None => (not_found_file(&id), None),
        },
        Parsed::FileDelete(id) => match lock(&shared.openai_files).remove(&id) {
            Some(_) => (
                openai_reply(200, &json!({"id": id, "object": "file", "deleted": true})),
                None,
            ),
            None => (not_found_file(&id), None),
        },
        Parsed::Models(None) => {
            let data: Vec<Value> = LISTED_MODELS.iter().map(|m| model_object(m)).collect();
            (
                openai_reply(200, &json!({"object": "list", "data": data})),
                None,
            )
        }
        Parsed::Models(Some(id)) => {
            if LISTED_MODELS.contains(&id.as_str()) {
                (openai_reply(200, &model_object(&id)), None)
            } else {
                let err = ApiError {
                    status: 404,
                    message: format!("The model '{id}' does not exist"),
                    kind: "invalid_request_error",
                    param: Some("model".into()),
                    code: Some("model_not_found".into()),
                };
                (error_reply(&err), None)
            }
        }
        Parsed::Unknown => {
            let err = ApiError {
                status: 404,
                message: format!("Invalid URL ({} {})", inc.method, inc.path),
                kind: "invalid_request_error",
                param: None,
                code: None,
            };
            (error_reply(&err), None)
        }
    }
}

/// Token accounting shaped like the real one (1024x1024 costs 272/1056/4160 output tokens).
fn image_usage(quality: &str, n: u32) -> Value {
    let per_image = match quality {
        "low" => 272,
        "high" => 4160,
        _ => 1056,
    };
    let output = per_image * n.max(1);
    json!({
        "total_tokens": 50 + output, "input_tokens": 50, "output_tokens": output,
        "input_tokens_details": {"text_tokens": 18, "image_tokens": 32},
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0}
    })
}

fn responses_answer(
    body: &Map<String, Value>,
    image_tool: Option<Map<String, Value>>,
    has_input_image: bool,
    stream: bool,
    output_side: u32,
) -> (Reply, Option<Vec<u8>>) {
    let created = ids::unix_now();
    let model = body.get("model").and_then(Value::as_str).unwrap_or("gpt-5");
    let mut output = Vec::new();
    let mut image = None;
    let mut tools_echo = Vec::new();
    if let Some(Value::Array(tools)) = body.get("tools") {
        for tool in tools {
            let mut tool = tool.clone();
            if tool.get("type").and_then(Value::as_str) == Some("image_generation")
                && let Some(obj) = tool.as_object_mut()
            {
                // The server fills in every option the client left out.
                for (k, v) in [
                    ("model", json!("gpt-image-1")),
                    ("quality", json!("auto")),
                    ("size", json!("auto")),
                    ("output_format", json!("png")),
                    ("output_compression", json!(100)),
                    ("moderation", json!("auto")),
                    ("background", json!("auto")),
                    ("input_fidelity", json!("low")),
                    ("partial_images", json!(0)),
                    ("action", json!("auto")),
                ] {
                    obj.entry(k).or_insert(v);
                }
            }
            tools_echo.push(tool);
        }
    }
    if let Some(tool) = &image_tool {
        let png = images::random_png(output_side);
        let field = |k: &str, default: &str| {
            tool.get(k)
                .and_then(Value::as_str)
                .filter(|v| *v != "auto")
                .unwrap_or(default)
                .to_owned()
        };
        let action = match tool.get("action").and_then(Value::as_str) {
            Some("generate") => "generate",
            Some("edit") => "edit",
            _ if has_input_image => "edit",
            _ => "generate",
        };
        output.push(json!({
            "id": format!("ig_{}", ids::hex(48)),
            "type": "image_generation_call",
            "status": "completed",
            "action": action,
            "background": field("background", "opaque"),
            "output_format": field("output_format", "png"),
            "quality": field("quality", "medium"),
            "result": images::encode_base64(&png),
            "revised_prompt": "A faithful rendering of the requested edit.",
            "size": field("size", "1024x1024")
        }));
        image = Some(png);
    }
    let text = if image.is_some() {
        "Here is the edited image."
    } else {
        "I can help with that."
    };
    output.push(json!({
        "id": format!("msg_{}", ids::hex(48)),
        "type": "message",
        "status": "completed",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
        "role": "assistant"
    }));
    let image_tokens = if image.is_some() { 1056 } else { 0 };
    let response = json!({
        "id": format!("resp_{}", ids::hex(48)),
        "object": "response",
        "created_at": created,
        "status": "completed",
        "background": false,
        "completed_at": created + 1,
        "error": null,
        "incomplete_details": null,
        "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": body.get("max_output_tokens").cloned().unwrap_or(Value::Null),
        "max_tool_calls": null,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": body.get("previous_response_id").cloned().unwrap_or(Value::Null),
        "prompt_cache_key": null,
        "reasoning": {"effort": null, "summary": null},
        "safety_identifier": body.get("safety_identifier").cloned().unwrap_or(Value::Null),
        "service_tier": "default",
        "store": body.get("store").and_then(Value::as_bool).unwrap_or(true),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "tools": tools_echo,
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 312, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 41, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 353
        },
        "tool_usage": {"image_gen": {
            "input_tokens": 290, "input_tokens_details": {"image_tokens": 258, "text_tokens": 32},
            "output_tokens": image_tokens, "output_tokens_details": {"image_tokens": image_tokens, "text_tokens": 0},
            "total_tokens": 290 + image_tokens
        }},
        "user": body.get("user").cloned().unwrap_or(Value::Null),
        "metadata": body.get("metadata").cloned().unwrap_or(json!({}))
    });
    if stream {
        return (responses_stream(&response), image);
    }
    (openai_reply(200, &response), image)
}

/// The event stream of a streamed Responses call: created, each output item done, completed.
fn responses_stream(response: &Value) -> Reply {
    let mut in_progress = response.clone();
    in_progress["status"] = json!("in_progress");
    in_progress["output"] = json!([]);
    in_progress["usage"] = Value::Null;
    let mut events = vec![
        json!({"type": "response.created", "response": in_progress.clone()}),
        json!({"type": "response.in_progress", "response": in_progress}),
    ];
    if let Some(Value::Array(items)) = response.get("output") {
        for (i, item) in items.iter().enumerate() {
            events.push(
                json!({"type": "response.output_item.done", "output_index": i, "item": item}),
            );
        }
    }
    events.push(json!({"type": "response.completed", "response": response}));
    let mut body = String::new();
    for (seq, mut event) in events.into_iter().enumerate() {
        event["sequence_number"] = json!(seq);
        let name = event["type"].as_str().unwrap_or_default().to_owned();
        body.push_str(&format!("event: {name}\ndata: {event}\n\n"));
    }
    with_openai_headers(Reply::new(
        200,
        "text/event-stream; charset=utf-8",
        body.into_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_have_all_four_keys() {
        let body = ApiError::missing("prompt").body();
        let err = body["error"].as_object().unwrap();
        for key in ["message", "type", "param", "code"] {
            assert!(err.contains_key(key), "{key} missing from {body}");
        }
        assert_eq!(err["code"], "missing_required_parameter");
        assert_eq!(
            ApiError::invalid_value("size", "1x1", &["a", "b", "c"]).message,
            "Invalid value: '1x1'. Supported values are: 'a', 'b', and 'c'."
        );
    }

    #[test]
    fn wrong_keys_are_masked() {
        let masked = mask_key("sk-proj-abcdefgh1234");
        assert!(masked.starts_with("sk-") && masked.ends_with("1234"));
        assert!(!masked.contains("abcdefgh"));
    }

    #[test]
    fn gpt_image_2_sizes() {
        assert!(flexible_size_ok("2048x1152"));
        assert!(flexible_size_ok("auto"));
        assert!(!flexible_size_ok("1000x1000"));
        assert!(!flexible_size_ok("3840x1024"));
        assert!(!flexible_size_ok("4096x2160"));
    }
}
