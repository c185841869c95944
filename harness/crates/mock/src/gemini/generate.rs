//! generateContent and streamGenerateContent: contents with inline or uploaded images, the
//! generation config checked per model, answered as one JSON body, a JSON array or server-sent events.

use serde_json::{Map, Value, json};

use super::error::{google_reply, with_google_headers};
use super::models;
use super::{ApiError, Route};
use crate::http::{Incoming, Reply};
use crate::ids;
use crate::images::Sniffed;
use crate::state::{Shared, lock};
use crate::types::{Behaviour, Endpoint, RecordedRequest};

/// A generateContent request understood and found valid.
#[derive(Debug)]
pub(crate) struct GenerateRequest {
    model: String,
    want_image: bool,
    stream: bool,
    sse: bool,
    prompt_tokens: u32,
}

/// Inline data limit per request (raised from 20 MB to 100 MB in January 2026).
pub(super) const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

const SUPPORTED_INLINE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "text/plain",
    "application/pdf",
];

/// A field under either spelling the API accepts (camelCase or snake_case).
pub(super) fn either<'a>(
    obj: &'a Map<String, Value>,
    camel: &str,
    snake: &str,
) -> Option<&'a Value> {
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

pub(super) fn examine(
    shared: &Shared,
    inc: &Incoming,
    route: &Route,
    rec: &mut RecordedRequest,
) -> Result<GenerateRequest, ApiError> {
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
    let known_image = match models::kind(&shared.models, &model) {
        Some(kind) => kind == models::Kind::Image,
        None => return Err(models::not_found(&model, &route.version)),
    };
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
    Ok(GenerateRequest {
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
        .unwrap_or_default();
    let data = inline
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let blob = Blob {
        request: "GenerateContentRequest",
        at: format!("{at}.inline_data"),
        mime,
        data,
    };
    check_blob(&blob, rec)
}

/// Inline bytes as a request carried them, and where (for the error messages).
pub(super) struct Blob<'a> {
    /// The request message's name, as the API's messages give it.
    pub request: &'a str,
    /// The blob's path in the request, e.g. `contents[0].parts[1].inline_data`.
    pub at: String,
    pub mime: &'a str,
    /// Base64, as sent.
    pub data: &'a str,
}

/// Decodes and judges inline bytes as the service does, recording them when they are (or claim to
/// be) an image; returns their token cost.
pub(super) fn check_blob(blob: &Blob, rec: &mut RecordedRequest) -> Result<u32, ApiError> {
    let Blob { request, at, .. } = blob;
    let mime = blob.mime.to_ascii_lowercase();
    let Some(bytes) = crate::images::decode_base64(blob.data) else {
        let shown: String = blob.data.chars().take(40).collect();
        return Err(ApiError::invalid(format!(
            "Invalid value at '{at}.data' (TYPE_BYTES), Base64 decoding failed for \"{shown}\""
        )));
    };
    if mime.starts_with("image/") || crate::images::looks_like_image(&bytes) {
        rec.images.push(bytes.clone());
    }
    if mime.is_empty() {
        return Err(ApiError::invalid(format!(
            "* {request}.{at}.mime_type: mime_type must be specified\n"
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
            || (crate::images::sniff(&bytes) != Sniffed::Gif
                && crate::images::decode_dimensions(&bytes).is_ok());
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
    check_file_uri(shared, uri)
}

/// A Files API file a request refers to by URI must exist and be fully uploaded.
pub(super) fn check_file_uri(shared: &Shared, uri: &str) -> Result<(), ApiError> {
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
pub(super) fn answer(
    request: GenerateRequest,
    behaviour: Behaviour,
    output_side: u32,
) -> (Reply, Option<Vec<u8>>) {
    let GenerateRequest {
        model,
        want_image,
        stream,
        sse,
        prompt_tokens,
    } = request;
    let model = model.as_str();
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
            let png = want_image.then(|| crate::images::random_png(output_side));
            let image_part = png
                .as_ref()
                .map(|p| json!({"inlineData": {"mimeType": "image/png", "data": crate::images::encode_base64(p)}}));
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
