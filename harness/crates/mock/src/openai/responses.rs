//! The Responses API (`POST /v1/responses`) with the `image_generation` tool: input images as data
//! URLs or file ids, the tool's options checked, answered as one response object or its event stream.

use serde_json::{Map, Value, json};

use super::ApiError;
use super::error::{openai_reply, with_openai_headers};
use super::images::{ImageParams, check_range, data_url_image, flexible_size_ok};
use super::models::{DEFAULT_TOOL_MODEL, check_image_model, check_responses_model};
use crate::http::{Incoming, Reply};
use crate::ids;
use crate::images::Sniffed;
use crate::models::ModelRules;
use crate::state::{Shared, lock};
use crate::types::RecordedRequest;

/// A Responses request understood and found valid.
#[derive(Debug)]
pub(crate) struct ResponsesRequest {
    body: Map<String, Value>,
    image_tool: Option<Map<String, Value>>,
    has_input_image: bool,
    stream: bool,
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

pub(super) fn examine(
    shared: &Shared,
    rules: &ModelRules,
    inc: &Incoming,
    rec: &mut RecordedRequest,
) -> Result<ResponsesRequest, ApiError> {
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
    // `safety_identifier` replaced `user` (a non-empty one takes precedence); both name the end
    // user to the provider.
    rec.user = ["safety_identifier", "user"]
        .iter()
        .find_map(|k| {
            body.get(*k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
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
    check_responses_model(rules, &model)?;
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
        let sniffed = crate::images::sniff(bytes);
        let decodes = sniffed == Sniffed::Gif || crate::images::decode_dimensions(bytes).is_ok();
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
        validate_image_tool(rules, tool)?;
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(ApiError::invalid_type("stream", "a boolean", other)),
    };
    let tool_disabled = body.get("tool_choice").and_then(Value::as_str) == Some("none");
    Ok(ResponsesRequest {
        body,
        image_tool: image_tool.filter(|_| !tool_disabled),
        has_input_image: !decoded.is_empty() || !file_ids.is_empty(),
        stream,
    })
}

fn validate_image_tool(rules: &ModelRules, tool: &Map<String, Value>) -> Result<(), ApiError> {
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
    if let Some(model) = params.str("model")? {
        check_image_model(rules, "tools[0].model", &model)?;
    }
    choice(
        "quality",
        &["low", "medium", "high", "xhigh", "max", "auto"],
    )?;
    choice("complexity", &["low", "medium", "high"])?;
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

pub(super) fn answer(request: ResponsesRequest, output_side: u32) -> (Reply, Option<Vec<u8>>) {
    let ResponsesRequest {
        body,
        image_tool,
        has_input_image,
        stream,
    } = request;
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
                    ("model", json!(DEFAULT_TOOL_MODEL)),
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
        let png = crate::images::random_png(output_side);
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
            "result": crate::images::encode_base64(&png),
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
        let partials = image_tool
            .as_ref()
            .and_then(|t| t.get("partial_images"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        return (responses_stream(&response, partials), image);
    }
    (openai_reply(200, &response), image)
}

/// The event stream of a streamed Responses call: created, each output item added and done, and
/// completed. An image generation call streams `partial_images` partial images first; each carries
/// the final image's bytes, so a partial kept anywhere is recognised as the output it previews.
fn responses_stream(response: &Value, partial_images: u64) -> Reply {
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
            let id = item["id"].clone();
            if item["type"] == "image_generation_call" {
                let mut pending = item.clone();
                pending["status"] = json!("in_progress");
                pending["result"] = Value::Null;
                events.push(json!({"type": "response.output_item.added", "output_index": i, "item": pending}));
                for stage in ["in_progress", "generating"] {
                    events.push(
                        json!({"type": format!("response.image_generation_call.{stage}"),
                                       "output_index": i, "item_id": id}),
                    );
                }
                for p in 0..partial_images {
                    events.push(json!({
                        "type": "response.image_generation_call.partial_image",
                        "output_index": i, "item_id": id, "partial_image_index": p,
                        "partial_image_b64": item["result"],
                        "background": item["background"], "output_format": item["output_format"],
                        "quality": item["quality"], "size": item["size"]
                    }));
                }
                events.push(json!({"type": "response.image_generation_call.completed",
                                   "output_index": i, "item_id": id}));
            }
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
