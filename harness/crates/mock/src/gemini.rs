//! The Gemini mock: generateContent and streamGenerateContent (SSE or JSON array), the resumable
//! Files API, and the models list, with the real API's validation, answer shapes and error envelopes.

use serde_json::{Map, Value, json};

use crate::http::{Incoming, Reply};
use crate::ids;
use crate::images::{self, Sniffed};
use crate::state::{GeminiFile, Shared, lock};
use crate::types::{Behaviour, Endpoint, Provider, RecordedRequest};

/// Models that can answer with images.
const IMAGE_MODELS: &[&str] = &[
    "gemini-2.5-flash-image",
    "gemini-2.5-flash-image-preview",
    "gemini-2.0-flash-preview-image-generation",
    "gemini-2.0-flash-exp-image-generation",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
];

/// Text-only models that exist (a request for IMAGE output from them is refused as the real API does).
const TEXT_MODELS: &[&str] = &[
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
];

/// Inline data limit per request (raised from 20 MB to 100 MB in January 2026).
const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

const SUPPORTED_INLINE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "text/plain",
    "application/pdf",
];

/// An error in Google's envelope `{"error":{"code","message","status","details"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
    pub details: Vec<Value>,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            code: 400,
            status: "INVALID_ARGUMENT",
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// An unknown JSON field, worded as the real proto parser words it.
    fn unknown_field(name: &str, at: &str) -> ApiError {
        let message = if at.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
        } else {
            format!(
                "Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field."
            )
        };
        ApiError {
            details: vec![json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": at, "description": message}]
            })],
            ..ApiError::invalid(message.clone())
        }
    }

    fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }
}

fn google_reply(status: u16, body: &Value) -> Reply {
    with_google_headers(Reply::new(
        status,
        "application/json; charset=UTF-8",
        body.to_string().into_bytes(),
    ))
}

fn with_google_headers(reply: Reply) -> Reply {
    reply
        .header("vary", "Origin, X-Origin, Referer")
        .header("server", "scaffolding on HTTPServer2")
        .header(
            "server-timing",
            format!("gfet4t7; dur={}", rand::random_range(800..9000u32)),
        )
        .header("x-xss-protection", "0")
        .header("x-frame-options", "SAMEORIGIN")
        .header("x-content-type-options", "nosniff")
}

fn error_reply(err: &ApiError) -> Reply {
    google_reply(err.code, &err.body())
}

/// Answers one request to the Gemini mock, and says what it carried and how it was answered.
pub fn respond(shared: &Shared, inc: &Incoming) -> (Reply, RecordedRequest) {
    let mut rec = inc.draft(Provider::Gemini);
    let route = route(inc);
    rec.endpoint = route.endpoint;
    let examined = examine(shared, inc, &route, &mut rec);

    // The upload URL is itself the credential of a resumable upload.
    let upload_chunk =
        route.endpoint == Endpoint::FilesUpload && inc.query_param("upload_id").is_some();
    if !upload_chunk && let Err(auth) = check_auth(shared, inc) {
        rec.rejected = Some(auth.message.clone());
        return finish(rec, error_reply(&auth));
    }
    if let Err(err) = &examined {
        rec.rejected = Some(err.message.clone());
    }

    let generates = matches!(
        route.endpoint,
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent
    );
    let behaviour = if generates {
        shared.take_behaviour(Provider::Gemini)
    } else {
        Behaviour::Ok
    };
    rec.behaviour = behaviour;

    let infra = match behaviour {
        Behaviour::RateLimited { retry_after_s } => {
            Some(rate_limited(rec.model.as_deref(), retry_after_s))
        }
        Behaviour::ServerError => Some(error_reply(&ApiError {
            code: 500,
            status: "INTERNAL",
            message: "An internal error has occurred. Please retry or report in \
                      https://developers.generativeai.google/guide/troubleshooting"
                .into(),
            details: Vec::new(),
        })),
        Behaviour::Unavailable => Some(error_reply(&ApiError {
            code: 503,
            status: "UNAVAILABLE",
            message: "The model is overloaded. Please try again later.".into(),
            details: Vec::new(),
        })),
        Behaviour::Timeout => Some(
            error_reply(&ApiError {
                code: 504,
                status: "DEADLINE_EXCEEDED",
                message: "Deadline expired before operation could complete.".into(),
                details: Vec::new(),
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
    let (mut reply, output) = answer(shared, inc, parsed, behaviour);
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
    let mut rec = inc.draft(Provider::Gemini);
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
    let key = inc
        .header("x-goog-api-key")
        .map(str::to_owned)
        .or_else(|| inc.query_param("key"));
    match key {
        Some(k) if k == shared.gemini_key => Ok(()),
        Some(_) => {
            let message = "API key not valid. Please pass a valid API key.";
            Err(ApiError {
                details: vec![
                    json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                           "domain": "googleapis.com",
                           "metadata": {"service": "generativelanguage.googleapis.com"}}),
                    json!({"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
                           "message": message}),
                ],
                ..ApiError::invalid(message)
            })
        }
        None => Err(ApiError {
            code: 403,
            status: "PERMISSION_DENIED",
            message: "Method doesn't allow unregistered callers (callers without established identity). Please use \
                      API Key or other form of API consumer identity to call this API."
                .into(),
            details: Vec::new(),
        }),
    }
}

fn rate_limited(model: Option<&str>, retry_after_s: u32) -> Reply {
    let model = model.unwrap_or("gemini-2.5-flash-image");
    let err = ApiError {
        code: 429,
        status: "RESOURCE_EXHAUSTED",
        message: "You exceeded your current quota, please check your plan and billing details. For more information \
                  on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
            .into(),
        details: vec![
            json!({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": "10"}]}),
            json!({"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}),
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_after_s}s")}),
        ],
    };
    error_reply(&err).header("retry-after", retry_after_s.to_string())
}

#[derive(Debug, Clone)]
struct Route {
    endpoint: Endpoint,
    /// The API version in the path: "v1beta", "v1", "v1alpha".
    version: String,
    model: Option<String>,
    file_id: Option<String>,
}

fn route(inc: &Incoming) -> Route {
    let mut r = Route {
        endpoint: Endpoint::Unknown,
        version: "v1beta".into(),
        model: None,
        file_id: None,
    };
    let (upload, path) = match inc.path.strip_prefix("/upload") {
        Some(rest) => (true, rest),
        None => (false, inc.path.as_str()),
    };
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let version = segments.next().unwrap_or_default();
    let rest = segments.next().unwrap_or_default().trim_end_matches('/');
    if !matches!(version, "v1" | "v1beta" | "v1alpha") {
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

#[derive(Debug)]
enum Parsed {
    Generate {
        model: String,
        want_image: bool,
        stream: bool,
        sse: bool,
        prompt_tokens: u32,
    },
    UploadStart {
        display_name: Option<String>,
        mime_type: String,
        declared_len: Option<u64>,
    },
    UploadChunk {
        upload_id: String,
        offset: u64,
        data: Vec<u8>,
        finalize: bool,
    },
    FileList,
    FileGet(String),
    FileDelete(String),
    Models(Option<String>),
    Unknown,
}

fn examine(
    shared: &Shared,
    inc: &Incoming,
    route: &Route,
    rec: &mut RecordedRequest,
) -> Result<Parsed, ApiError> {
    match route.endpoint {
        Endpoint::GenerateContent | Endpoint::StreamGenerateContent => {
            examine_generate(shared, inc, route, rec)
        }
        Endpoint::FilesUpload => examine_upload(inc, rec),
        Endpoint::FilesGet => Ok(match &route.file_id {
            Some(id) => Parsed::FileGet(id.clone()),
            None => Parsed::FileList,
        }),
        Endpoint::FilesDelete => Ok(Parsed::FileDelete(
            route.file_id.clone().unwrap_or_default(),
        )),
        Endpoint::Models => Ok(Parsed::Models(route.model.clone())),
        _ => Ok(Parsed::Unknown),
    }
}

/// A field under either spelling the API accepts (camelCase or snake_case).
fn either<'a>(obj: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "cachedContent",
    "cached_content",
    "store",
    "model",
];

const PART_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "inline_data",
    "fileData",
    "file_data",
    "thought",
    "thoughtSignature",
    "thought_signature",
    "functionCall",
    "function_call",
    "functionResponse",
    "function_response",
    "executableCode",
    "executable_code",
    "codeExecutionResult",
    "code_execution_result",
    "videoMetadata",
    "video_metadata",
    "mediaResolution",
    "media_resolution",
];

fn examine_generate(
    shared: &Shared,
    inc: &Incoming,
    route: &Route,
    rec: &mut RecordedRequest,
) -> Result<Parsed, ApiError> {
    let model = route.model.clone().unwrap_or_default();
    rec.model = Some(model.clone());
    if inc.body.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::invalid(format!(
            "Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
        )));
    }
    let body: Value = serde_json::from_slice(&inc.body)
        .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::invalid(
            "Invalid JSON payload received. Expected an object at the top level.",
        ));
    };

    // First gather everything the request carried, then judge it.
    let mut texts = Vec::new();
    let mut first_error: Option<ApiError> = None;
    let mut image_tokens = 0u32;
    let contents = match body.get("contents") {
        Some(Value::Array(c)) => c.clone(),
        Some(Value::Object(o)) => vec![Value::Object(o.clone())],
        _ => Vec::new(),
    };
    for (ci, content) in contents.iter().enumerate() {
        let Some(content) = content.as_object() else {
            continue;
        };
        if let Some(name) = content
            .keys()
            .find(|k| !matches!(k.as_str(), "role" | "parts"))
        {
            first_error
                .get_or_insert_with(|| ApiError::unknown_field(name, &format!("contents[{ci}]")));
        }
        if let Some(role) = content.get("role").and_then(Value::as_str)
            && !matches!(role, "user" | "model" | "")
        {
            first_error
                .get_or_insert_with(|| ApiError::invalid("Please use a valid role: user, model."));
        }
        let parts = content
            .get("parts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if parts.is_empty() {
            first_error.get_or_insert_with(|| {
                ApiError::invalid(format!(
                    "* GenerateContentRequest.contents[{ci}].parts: contents.parts must not be empty.\n"
                ))
            });
        }
        for (pi, part) in parts.iter().enumerate() {
            let at = format!("contents[{ci}].parts[{pi}]");
            let Some(part) = part.as_object() else {
                continue;
            };
            if let Some(name) = part.keys().find(|k| !PART_FIELDS.contains(&k.as_str())) {
                first_error.get_or_insert_with(|| ApiError::unknown_field(name, &at));
            }
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                texts.push(t.to_owned());
            }
            if let Some(inline) = either(part, "inlineData", "inline_data") {
                match check_inline(inline, &at, rec) {
                    Ok(tokens) => image_tokens += tokens,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(file) = either(part, "fileData", "file_data")
                && let Err(e) = check_file_ref(shared, file)
            {
                first_error.get_or_insert(e);
            }
            let has_data = PART_FIELDS.iter().any(|k| {
                !matches!(*k, "thought" | "thoughtSignature" | "thought_signature")
                    && part.contains_key(*k)
            });
            if !has_data {
                first_error.get_or_insert_with(|| {
                    ApiError::invalid(format!(
                        "* GenerateContentRequest.{at}.data: required oneof field 'data' must have one initialized field\n"
                    ))
                });
            }
        }
    }
    if !texts.is_empty() {
        rec.prompt = Some(texts.join("\n"));
    }

    if let Some(name) = body.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::unknown_field(name, ""));
    }
    let known_image = IMAGE_MODELS.contains(&model.as_str());
    if !known_image && !TEXT_MODELS.contains(&model.as_str()) {
        return Err(ApiError {
            code: 404,
            status: "NOT_FOUND",
            message: format!(
                "models/{model} is not found for API version {}, or is not supported for generateContent. Call \
                 ListModels to see the list of available models and their supported methods.",
                route.version
            ),
            details: Vec::new(),
        });
    }
    if contents.is_empty() {
        return Err(ApiError::invalid(
            "* GenerateContentRequest.contents: contents is not specified\n",
        ));
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let config = either(&body, "generationConfig", "generation_config").and_then(Value::as_object);
    let modalities: Option<Vec<String>> = config
        .and_then(|c| either(c, "responseModalities", "response_modalities"))
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .map(|v| v.as_str().unwrap_or_default().to_ascii_uppercase())
                .collect()
        });
    if let Some(modalities) = &modalities {
        for (i, m) in modalities.iter().enumerate() {
            if !matches!(m.as_str(), "TEXT" | "IMAGE" | "AUDIO") {
                return Err(ApiError::invalid(format!(
                    "Invalid value at 'generation_config.response_modalities[{i}]' \
                     (type.googleapis.com/google.ai.generativelanguage.{}.GenerationConfig.Modality), \"{m}\"",
                    route.version
                )));
            }
        }
        if modalities.iter().any(|m| m == "IMAGE") && !known_image {
            return Err(ApiError::invalid(
                "Model does not support the requested response modalities: image",
            ));
        }
        if model.starts_with("gemini-2.0-flash")
            && known_image
            && !modalities.iter().any(|m| m == "TEXT")
        {
            return Err(ApiError::invalid(
                "Model does not support the requested response modalities: image",
            ));
        }
    }
    if let Some(image_config) = config
        .and_then(|c| either(c, "imageConfig", "image_config"))
        .and_then(Value::as_object)
    {
        if let Some(ratio) =
            either(image_config, "aspectRatio", "aspect_ratio").and_then(Value::as_str)
            && ![
                "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
            ]
            .contains(&ratio)
        {
            return Err(ApiError::invalid(format!(
                "Invalid value for aspect_ratio: {ratio}. Supported values are 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, \
                 9:16, 16:9, 21:9."
            )));
        }
        if let Some(size) = either(image_config, "imageSize", "image_size").and_then(Value::as_str)
            && !["1K", "2K", "4K"].contains(&size)
        {
            return Err(ApiError::invalid(format!(
                "Invalid value for image_size: {size}. Supported values are 1K, 2K, 4K."
            )));
        }
    }
    let want_image = known_image
        && modalities
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == "IMAGE"));
    let text_tokens = rec
        .prompt
        .as_ref()
        .map_or(0, |p| (p.chars().count() / 4).max(1) as u32);
    Ok(Parsed::Generate {
        model,
        want_image,
        stream: route.endpoint == Endpoint::StreamGenerateContent,
        sse: inc.query_param("alt").as_deref() == Some("sse"),
        prompt_tokens: text_tokens + image_tokens,
    })
}

/// Checks one inline blob, recording it when it is (or claims to be) an image; returns its token cost.
fn check_inline(inline: &Value, at: &str, rec: &mut RecordedRequest) -> Result<u32, ApiError> {
    let Some(inline) = inline.as_object() else {
        return Err(ApiError::invalid(format!(
            "Invalid value at '{at}.inline_data': expected an object"
        )));
    };
    if let Some(name) = inline
        .keys()
        .find(|k| !matches!(k.as_str(), "mimeType" | "mime_type" | "data"))
    {
        return Err(ApiError::unknown_field(name, &format!("{at}.inline_data")));
    }
    let mime = either(inline, "mimeType", "mime_type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let data = inline
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(bytes) = images::decode_base64(data) else {
        let shown: String = data.chars().take(40).collect();
        return Err(ApiError::invalid(format!(
            "Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
        )));
    };
    if mime.starts_with("image/") || images::looks_like_image(&bytes) {
        rec.images.push(bytes.clone());
    }
    if mime.is_empty() {
        return Err(ApiError::invalid(format!(
            "* GenerateContentRequest.{at}.inline_data.mime_type: mime_type must be specified\n"
        )));
    }
    if !SUPPORTED_INLINE.contains(&mime.as_str())
        && !mime.starts_with("audio/")
        && !mime.starts_with("video/")
    {
        return Err(ApiError::invalid(format!("Unsupported MIME type: {mime}")));
    }
    if mime.starts_with("image/") {
        // The service decodes by content, not by label: a PNG labelled image/jpeg is accepted.
        let decodable = matches!(mime.as_str(), "image/heic" | "image/heif")
            || (images::sniff(&bytes) != Sniffed::Gif && images::decode_dimensions(&bytes).is_ok());
        if !decodable {
            return Err(ApiError::invalid(
                "Unable to process input image. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting",
            ));
        }
        return Ok(258);
    }
    Ok((bytes.len() / 4).max(1) as u32)
}

fn check_file_ref(shared: &Shared, file: &Value) -> Result<(), ApiError> {
    let uri = file
        .as_object()
        .and_then(|f| either(f, "fileUri", "file_uri"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = uri.rsplit("files/").next().unwrap_or_default();
    let files = lock(&shared.gemini_files);
    match files.get(id) {
        Some(f) if f.finalized => Ok(()),
        _ => Err(ApiError {
            code: 403,
            status: "PERMISSION_DENIED",
            message: format!(
                "You do not have permission to access the File {id} or it may not exist."
            ),
            details: Vec::new(),
        }),
    }
}

fn examine_upload(inc: &Incoming, rec: &mut RecordedRequest) -> Result<Parsed, ApiError> {
    if let Some(upload_id) = inc.query_param("upload_id") {
        let command = inc
            .header("x-goog-upload-command")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if images::looks_like_image(&inc.body) {
            rec.images.push(inc.body.clone());
        }
        let offset = inc
            .header("x-goog-upload-offset")
            .and_then(|o| o.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let commands: Vec<&str> = command.split(',').map(str::trim).collect();
        if !commands.contains(&"upload") && !commands.contains(&"finalize") {
            return Err(ApiError::invalid(
                "Invalid X-Goog-Upload-Command header: expected upload, finalize or both.",
            ));
        }
        return Ok(Parsed::UploadChunk {
            upload_id,
            offset,
            data: inc.body.clone(),
            finalize: commands.contains(&"finalize"),
        });
    }
    let protocol = inc
        .header("x-goog-upload-protocol")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let command = inc
        .header("x-goog-upload-command")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if protocol != "resumable" || command != "start" {
        return Err(ApiError::invalid(
            "Upload requests must use X-Goog-Upload-Protocol: resumable with X-Goog-Upload-Command: start.",
        ));
    }
    let meta: Value = if inc.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&inc.body)
            .map_err(|e| ApiError::invalid(format!("Invalid JSON payload received. {e}")))?
    };
    let file = meta.get("file").and_then(Value::as_object);
    let display_name = file
        .and_then(|f| either(f, "displayName", "display_name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mime_type = inc
        .header("x-goog-upload-header-content-type")
        .map(str::to_owned)
        .or_else(|| {
            file.and_then(|f| either(f, "mimeType", "mime_type"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let declared_len = inc
        .header("x-goog-upload-header-content-length")
        .and_then(|l| l.trim().parse::<u64>().ok());
    Ok(Parsed::UploadStart {
        display_name,
        mime_type,
        declared_len,
    })
}

fn file_object(f: &GeminiFile, origin: &str) -> Value {
    let created = ids::rfc3339(f.created);
    let expires = ids::rfc3339(f.created + time::Duration::hours(48));
    json!({
        "name": f.name,
        "displayName": f.display_name,
        "mimeType": f.mime_type,
        "sizeBytes": f.data.len().to_string(),
        "createTime": created,
        "updateTime": created,
        "expirationTime": expires,
        "sha256Hash": images::encode_base64(&ids::hex(32).into_bytes()),
        "uri": format!("{origin}/v1beta/{}", f.name),
        "state": "ACTIVE",
        "source": "UPLOADED"
    })
}

fn origin(inc: &Incoming) -> String {
    let scheme = if inc.tls { "https" } else { "http" };
    format!("{scheme}://{}", inc.host.as_deref().unwrap_or("localhost"))
}

fn file_missing(id: &str) -> Reply {
    error_reply(&ApiError {
        code: 403,
        status: "PERMISSION_DENIED",
        message: format!("You do not have permission to access the File {id} or it may not exist."),
        details: Vec::new(),
    })
}

fn answer(
    shared: &Shared,
    inc: &Incoming,
    parsed: Parsed,
    behaviour: Behaviour,
) -> (Reply, Option<Vec<u8>>) {
    match parsed {
        Parsed::Generate {
            model,
            want_image,
            stream,
            sse,
            prompt_tokens,
        } => generate_answer(
            &model,
            want_image,
            stream,
            sse,
            prompt_tokens,
            behaviour,
            shared.output_side,
        ),
        Parsed::UploadStart {
            display_name,
            mime_type,
            declared_len,
        } => {
            let id = ids::alnum(12).to_ascii_lowercase();
            let upload_id = format!("AHxI1n{}", ids::alnum(60));
            let file = GeminiFile {
                name: format!("files/{id}"),
                display_name,
                mime_type,
                data: Vec::new(),
                declared_len,
                created: time::OffsetDateTime::now_utc(),
                finalized: false,
                upload_id: upload_id.clone(),
            };
            lock(&shared.gemini_files).insert(id, file);
            let url = format!(
                "{}/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable",
                origin(inc)
            );
            let reply =
                with_google_headers(Reply::new(200, "text/plain; charset=utf-8", Vec::new()))
                    .header("x-goog-upload-url", url.clone())
                    .header("x-goog-upload-control-url", url)
                    .header("x-goog-upload-status", "active")
                    .header("x-goog-upload-chunk-granularity", "8388608");
            (reply, None)
        }
        Parsed::UploadChunk {
            upload_id,
            offset,
            data,
            finalize,
        } => {
            let mut files = lock(&shared.gemini_files);
            let Some(file) = files
                .values_mut()
                .find(|f| f.upload_id == upload_id && !f.finalized)
            else {
                drop(files);
                return (
                    error_reply(&ApiError {
                        code: 404,
                        status: "NOT_FOUND",
                        message: "The upload session was not found or has already been finalized."
                            .into(),
                        details: Vec::new(),
                    }),
                    None,
                );
            };
            if offset as usize != file.data.len() {
                let received = file.data.len();
                drop(files);
                return (
                    error_reply(&ApiError::invalid(format!(
                        "Invalid X-Goog-Upload-Offset {offset}: {received} bytes have been received so far."
                    ))),
                    None,
                );
            }
            file.data.extend_from_slice(&data);
            if !finalize {
                let reply =
                    with_google_headers(Reply::new(200, "text/plain; charset=utf-8", Vec::new()))
                        .header("x-goog-upload-status", "active")
                        .header("x-goog-upload-size-received", file.data.len().to_string());
                return (reply, None);
            }
            file.finalized = true;
            if file
                .declared_len
                .is_some_and(|l| l != file.data.len() as u64)
            {
                tracing::debug!(name = %file.name, "upload finalized with a length other than declared");
            }
            let body = json!({ "file": file_object(file, &origin(inc)) });
            (
                google_reply(200, &body).header("x-goog-upload-status", "final"),
                None,
            )
        }
        Parsed::FileList => {
            let files = lock(&shared.gemini_files);
            let list: Vec<Value> = files
                .values()
                .filter(|f| f.finalized)
                .map(|f| file_object(f, &origin(inc)))
                .collect();
            (google_reply(200, &json!({ "files": list })), None)
        }
        Parsed::FileGet(id) => match lock(&shared.gemini_files).get(&id).filter(|f| f.finalized) {
            Some(f) => (google_reply(200, &file_object(f, &origin(inc))), None),
            None => (file_missing(&id), None),
        },
        Parsed::FileDelete(id) => match lock(&shared.gemini_files).remove(&id) {
            Some(_) => (google_reply(200, &json!({})), None),
            None => (file_missing(&id), None),
        },
        Parsed::Models(None) => {
            let models: Vec<Value> = IMAGE_MODELS
                .iter()
                .chain(TEXT_MODELS)
                .map(|m| model_object(m))
                .collect();
            (google_reply(200, &json!({ "models": models })), None)
        }
        Parsed::Models(Some(name)) => {
            let name = name.trim_start_matches("models/").to_owned();
            if IMAGE_MODELS.contains(&name.as_str()) || TEXT_MODELS.contains(&name.as_str()) {
                (google_reply(200, &model_object(&name)), None)
            } else {
                (
                    error_reply(&ApiError {
                        code: 404,
                        status: "NOT_FOUND",
                        message: format!("models/{name} is not found for API version v1beta."),
                        details: Vec::new(),
                    }),
                    None,
                )
            }
        }
        Parsed::Unknown => (
            error_reply(&ApiError {
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

fn model_object(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": name,
        "inputTokenLimit": 32768,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens"]
    })
}

fn usage(prompt_tokens: u32, candidate_tokens: u32, image_out: bool) -> Value {
    let mut u = json!({
        "promptTokenCount": prompt_tokens,
        "totalTokenCount": prompt_tokens + candidate_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}]
    });
    if candidate_tokens > 0 {
        u["candidatesTokenCount"] = json!(candidate_tokens);
        let modality = if image_out { "IMAGE" } else { "TEXT" };
        u["candidatesTokensDetails"] =
            json!([{"modality": modality, "tokenCount": candidate_tokens}]);
    }
    u
}

/// The answer to generateContent / streamGenerateContent, after validation and infrastructure faults.
fn generate_answer(
    model: &str,
    want_image: bool,
    stream: bool,
    sse: bool,
    prompt_tokens: u32,
    behaviour: Behaviour,
    output_side: u32,
) -> (Reply, Option<Vec<u8>>) {
    let response_id = ids::alnum(22);
    let stamp = |mut chunk: Value| {
        chunk["modelVersion"] = json!(model);
        chunk["responseId"] = json!(response_id);
        chunk
    };
    let (chunks, image) = match behaviour {
        Behaviour::SafetyBlock => (
            vec![stamp(json!({
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": usage(prompt_tokens, 0, false)
            }))],
            None,
        ),
        Behaviour::SafetyBlockImage => (
            vec![stamp(json!({
                "candidates": [{
                    "finishReason": "IMAGE_SAFETY",
                    "finishMessage": "Unable to show the generated image. The image was filtered out because it \
                        violated Google's Generative AI Prohibited Use policy. You will not be charged for blocked \
                        images. Try rephrasing the prompt. If you think this was an error, send feedback.",
                    "index": 0
                }],
                "usageMetadata": usage(prompt_tokens, 0, false)
            }))],
            None,
        ),
        _ => {
            let text = if want_image {
                "Here is the edited image."
            } else {
                "I can describe the picture, but this model answers with text only."
            };
            let png = want_image.then(|| images::random_png(output_side));
            let image_part = png
                .as_ref()
                .map(|p| json!({"inlineData": {"mimeType": "image/png", "data": images::encode_base64(p)}}));
            let out_tokens = if want_image { 1290 } else { 24 };
            let full = usage(prompt_tokens, out_tokens, want_image);
            let chunks = if stream {
                let mut chunks = vec![stamp(json!({
                    "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}],
                    "usageMetadata": usage(prompt_tokens, 0, false)
                }))];
                if let Some(part) = &image_part {
                    chunks.push(stamp(json!({
                        "candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
                        "usageMetadata": usage(prompt_tokens, 0, false)
                    })));
                }
                chunks.push(stamp(json!({
                    "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                                    "finishReason": "STOP", "index": 0}],
                    "usageMetadata": full
                })));
                chunks
            } else {
                let mut parts = vec![json!({"text": text})];
                parts.extend(image_part);
                vec![stamp(json!({
                    "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                    "usageMetadata": full
                }))]
            };
            (chunks, png)
        }
    };
    let reply = if stream && sse {
        let body: String = chunks
            .iter()
            .map(|c| format!("data: {c}\r\n\r\n"))
            .collect();
        with_google_headers(Reply::new(200, "text/event-stream", body.into_bytes()))
    } else if stream {
        google_reply(200, &Value::Array(chunks))
    } else {
        google_reply(200, &chunks[0])
    };
    (reply, image)
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
        assert_eq!(
            route(&inc("POST", "/upload/v1beta/files")).endpoint,
            Endpoint::FilesUpload
        );
        assert_eq!(
            route(&inc("GET", "/v1beta/files/abc")).endpoint,
            Endpoint::FilesGet
        );
        assert_eq!(
            route(&inc("DELETE", "/v1beta/files/abc")).endpoint,
            Endpoint::FilesDelete
        );
        assert_eq!(route(&inc("GET", "/v2/models")).endpoint, Endpoint::Unknown);
        assert_eq!(
            route(&inc("PUT", "/v1beta/models/x:generateContent")).endpoint,
            Endpoint::Unknown
        );
    }

    #[test]
    fn unknown_field_message_names_the_place() {
        let e = ApiError::unknown_field("inlinedata", "contents[0].parts[1]");
        assert_eq!(
            e.message,
            "Invalid JSON payload received. Unknown name \"inlinedata\" at 'contents[0].parts[1]': Cannot find field."
        );
        assert_eq!(e.body()["error"]["status"], "INVALID_ARGUMENT");
    }
}
