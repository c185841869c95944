//! The Images API: `POST /v1/images/edits` (multipart or JSON) and `POST /v1/images/generations`,
//! validated per model family as the real API does, answered as one JSON body or an event stream.

use serde_json::{Map, Value, json};

use super::error::{openai_reply, with_openai_headers};
use super::models::{DEFAULT_IMAGE_MODEL, check_image_model};
use super::{ApiError, Request};
use crate::http::{Incoming, Part, Reply, parse_multipart};
use crate::ids;
use crate::images::Sniffed;
use crate::models::ModelRules;
use crate::types::RecordedRequest;

/// An Images request understood and found valid.
#[derive(Debug)]
pub(crate) struct ImagesRequest {
    kind: ImagesKind,
    model: String,
    n: u32,
    size: String,
    quality: String,
    output_format: String,
    background: String,
    stream: bool,
    partial_images: u32,
}

/// Upper bound of one input image for the GPT image models.
const GPT_IMAGE_MAX_BYTES: usize = 50 * 1024 * 1024;

/// dall-e-2 edits: "Uploaded image must be a PNG and less than 4 MB".
const DALL_E_2_MAX_BYTES: usize = 4 * 1024 * 1024;

const MAX_EDIT_IMAGES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImagesKind {
    Edit,
    Generate,
}

/// The parameters of an Images request, whatever its encoding.
pub(super) struct ImageParams {
    pub(super) fields: Map<String, Value>,
    /// Multipart values are all strings; JSON values carry their own types.
    pub(super) from_form: bool,
}

impl ImageParams {
    pub(super) fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
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
    "safety_identifier",
    "moderation",
    "complexity",
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
    "safety_identifier",
    "complexity",
];

/// One input image of an Images request, as the request declared it.
struct InputImage {
    param: String,
    declared_type: Option<String>,
    bytes: Vec<u8>,
}

pub(super) fn examine(
    rules: &ModelRules,
    inc: &Incoming,
    kind: ImagesKind,
    rec: &mut RecordedRequest,
) -> Result<Request, ApiError> {
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
                // A transparent PNG laid over the first image to guide the edit: it is an image
                // the pipeline sent, whatever it shows.
                "markup" => rec.images.push(data.clone()),
                "mask" => {
                    rec.images.push(data.clone());
                    mask = Some(InputImage {
                        param: "mask".into(),
                        declared_type: content_type.clone(),
                        bytes: data.clone(),
                    });
                }
                // SVG output settings arrive as `svg[model]`, `svg[reasoning][effort]`.
                other if EDIT_FIELDS.contains(&other) || other.starts_with("svg[") => {
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
    validate_images(rules, kind, &params, &inputs, mask.as_ref())
}

/// Fields recorded whether or not the request is valid.
fn record_common(params: &ImageParams, rec: &mut RecordedRequest) {
    let text = |name: &str| match params.fields.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    rec.prompt = text("prompt");
    rec.model = text("model");
    // A non-empty `safety_identifier` takes precedence over the deprecated `user`; both name the
    // end user to the provider.
    rec.user = text("safety_identifier")
        .filter(|s| !s.is_empty())
        .or_else(|| text("user"));
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
pub(super) fn data_url_image(param: &str, url: &str) -> Result<(String, Vec<u8>), ApiError> {
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
    let Some((mime, bytes)) = crate::images::decode_data_url(url) else {
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

pub(super) fn is_gpt_image(model: &str) -> bool {
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
pub(super) fn flexible_size_ok(size: &str) -> bool {
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

pub(super) fn check_range(
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
    rules: &ModelRules,
    kind: ImagesKind,
    params: &ImageParams,
    inputs: &[InputImage],
    mask: Option<&InputImage>,
) -> Result<Request, ApiError> {
    let model = match params.str("model")? {
        Some(m) => m,
        None => DEFAULT_IMAGE_MODEL.to_owned(),
    };
    check_image_model(rules, "model", &model)?;
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
        _ if model.starts_with("gpt-image-2.") => {
            &["low", "medium", "high", "xhigh", "max", "auto"]
        }
        _ => &["low", "medium", "high", "auto"],
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
    let partial_images = check_range(params, "partial_images", 0, 3)?.unwrap_or(0) as u32;
    check_choice(params, "input_fidelity", &["high", "low"])?;
    check_choice(params, "moderation", &["low", "auto"])?;
    check_choice(params, "response_format", &["url", "b64_json"])?;
    check_choice(params, "style", &["vivid", "natural"])?;
    check_choice(params, "complexity", &["low", "medium", "high"])?;
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
    Ok(Request::Images(ImagesRequest {
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
        partial_images,
    }))
}

fn check_input_image(model: &str, index: usize, input: &InputImage) -> Result<(), ApiError> {
    let param = input.param.as_str();
    let declared = input
        .declared_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    if model == "dall-e-2" {
        if crate::images::sniff(&input.bytes) != Sniffed::Png
            || input.bytes.len() >= DALL_E_2_MAX_BYTES
        {
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
    if crate::images::decode_dimensions(&input.bytes).is_err() {
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

/// The success answer and the first image it carries.
pub(super) fn answer(request: ImagesRequest, output_side: u32) -> (Reply, Option<Vec<u8>>) {
    let ImagesRequest {
        kind,
        model,
        n,
        size,
        quality,
        output_format,
        background,
        stream,
        partial_images,
    } = request;
    let outputs: Vec<Vec<u8>> = (0..n.max(1))
        .map(|_| crate::images::random_png(output_side))
        .collect();
    let usage = image_usage(&quality, n);
    let first = outputs[0].clone();
    if stream {
        // Each partial carries the final image's bytes, so a kept partial is recognised as the
        // output it previews.
        let (partial, done) = match kind {
            ImagesKind::Edit => ("image_edit.partial_image", "image_edit.completed"),
            ImagesKind::Generate => (
                "image_generation.partial_image",
                "image_generation.completed",
            ),
        };
        let b64 = crate::images::encode_base64(&first);
        let mut body = String::new();
        for index in 0..partial_images {
            let data = json!({
                "type": partial, "b64_json": b64, "created_at": ids::unix_now(),
                "partial_image_index": index,
                "size": size, "quality": quality, "background": background, "output_format": output_format
            });
            body.push_str(&format!("event: {partial}\ndata: {data}\n\n"));
        }
        let data = json!({
            "type": done,
            "b64_json": b64,
            "created_at": ids::unix_now(),
            "size": size, "quality": quality, "background": background, "output_format": output_format,
            "usage": usage
        });
        body.push_str(&format!("event: {done}\ndata: {data}\n\n"));
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
            let mut item = json!({"b64_json": crate::images::encode_base64(img)});
            if model == "dall-e-3" {
                item["revised_prompt"] = json!("A faithful rendering of the requested scene.");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt_image_2_sizes() {
        assert!(flexible_size_ok("2048x1152"));
        assert!(flexible_size_ok("auto"));
        assert!(!flexible_size_ok("1000x1000"));
        assert!(!flexible_size_ok("3840x1024"));
        assert!(!flexible_size_ok("4096x2160"));
    }
}
