//! The Interactions API, `POST /{version}/interactions`: a model, an input of text, content blocks
//! or steps carrying inline or uploaded images, the requested output checked per model, answered as
//! one Interaction or as server-sent events, and refused in the API's own envelope
//! (`{"error":{"code":"invalid_request","message":...}}`). An interaction created with `store` not
//! false is kept (the newest few; see `crate::state::KEPT_INTERACTIONS`): `GET
//! /{version}/interactions/{id}` returns it (as JSON or as the create's events), `DELETE` forgets
//! it, `POST /{version}/interactions/{id}/cancel` stops it while it runs, and a create may continue
//! it through `previous_interaction_id`. Vertex AI serves the same under
//! `/{version}/projects/{p}/locations/{l}/interactions`, each project and location its own.
//!
//! An interaction created with `background: true` runs in the background: the create answers it
//! at once `in_progress`, with no output yet; the next gets answer it `in_progress` too, for
//! `crate::BACKGROUND_POLLS` polls (one unless `MockOptions::background_polls` says otherwise),
//! and the get after them ends the run and answers it `completed` (or `failed`) with its output; a
//! cancel while it runs answers it `cancelled`, and so does every get after, with no output ever
//! made. Counted in requests, not in time: no timer, no sleep. Every other interaction has finished
//! when its create is answered, and a cancel answers it as it is.
//!
//! The wire shapes are google-genai 3.6.1's (`_gaos/types/interactions`): an Interaction's output is
//! a `model_output` step whose content blocks are `{"type":"text"}` and
//! `{"type":"image","mime_type","data"}`; a stream is `interaction.created`, `step.start`,
//! `step.delta` (one per content block), `step.stop`, `interaction.completed`, then `[DONE]`.
//!
//! The statuses are spelled as both SDKs type `Interaction.status`: google-genai 3.6.1
//! `_gaos/types/interactions/interaction.py` `InteractionStatus` and @google/genai 3.6.1
//! `dist/genai.d.ts` `InteractionStatus_2` list `in_progress`, `requires_action`, `completed`,
//! `failed`, `cancelled`, `incomplete`, `budget_exceeded`, `queued`, `idle` and
//! `requires_continuation`; the mock answers `in_progress`, `completed`, `failed` and
//! `cancelled`. That a background create answers at once and is polled with `interactions.get`
//! until it is `completed`, `failed` or `cancelled` is the "Agents (Deep Research)" example of
//! both SDKs' READMEs (google-genai's package description, @google/genai's README.md).

use serde_json::{Map, Value, json};

use super::error::{google_reply, with_google_headers};
use super::generate::{Blob, MAX_REQUEST_BYTES, check_blob, check_file_uri};
use super::models::{self, Kind};
use super::{ApiError, Route};
use crate::http::{Incoming, Reply};
use crate::ids;
use crate::state::{BackgroundRun, KeptInteraction, Shared, lock};
use crate::types::{Behaviour, Endpoint, RecordedRequest};

/// An Interactions API request understood and found valid.
#[derive(Debug)]
pub(crate) enum InteractionsRequest {
    Create(Create),
    Get(Lookup),
    Delete(Lookup),
    Cancel(Lookup),
}

/// A create request.
#[derive(Debug)]
pub(crate) struct Create {
    /// The id the interaction gets (drawn when the create is read, so its record names it).
    id: String,
    model: String,
    /// The answer's image format (`image/png` or `image/jpeg`); None for a text-only answer.
    image: Option<&'static str>,
    stream: bool,
    /// `background: true`: answered `in_progress`, its run ended by a later get (not streamed).
    background: bool,
    input_tokens: u32,
    /// Where the interaction is kept when `store` is not false; None when it is.
    keep_in: Option<String>,
    /// A kept interaction this one continues.
    previous: Option<String>,
    /// The request's `input`, kept with the interaction for `include_input=true`.
    input: Option<Value>,
    /// The request body's size, counted against the kept interactions' byte bound.
    body_len: usize,
}

/// A get, delete or cancel of one interaction: its id, where it is looked for, and the get's query.
#[derive(Debug)]
pub(crate) struct Lookup {
    id: String,
    scope: String,
    stream: bool,
    include_input: bool,
    last_event_id: Option<String>,
}

/// The create body's fields (google-genai 3.6.1's `CreateModelInteraction` and
/// `CreateAgentInteraction`).
const REQUEST_FIELDS: &[&str] = &[
    "model",
    "agent",
    "agent_config",
    "background",
    "cached_content",
    "continuation_token",
    "environment",
    "generation_config",
    "input",
    "labels",
    "previous_interaction_id",
    "response_format",
    "response_mime_type",
    "response_modalities",
    "safety_settings",
    "service_tier",
    "store",
    "stream",
    "system_instruction",
    "tools",
    "webhook_config",
];

const STEP_TYPES_WITH_CONTENT: &[&str] = &["user_input", "model_output"];
const MEDIA_TYPES: &[&str] = &["image", "audio", "document", "video"];

pub(super) fn examine(
    shared: &Shared,
    inc: &Incoming,
    route: &Route,
    rec: &mut RecordedRequest,
) -> Result<InteractionsRequest, ApiError> {
    let mut body = parse_body(inc)?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .map(|m| m.trim_start_matches("models/").to_owned());
    rec.model.clone_from(&model);
    rec.store = body.get("store").and_then(Value::as_bool);
    // Everything the input carried is recorded before anything is judged.
    let input_tokens = read_input(shared, body.get("input"), rec);
    if let Some(name) = body.keys().find(|k| !REQUEST_FIELDS.contains(&k.as_str())) {
        return Err(refusal(
            400,
            "parameter_unknown",
            format!("Unknown parameter '{name}'."),
        ));
    }
    let Some(model) = model else {
        return Err(refusal(
            400,
            "invalid_request",
            "Missing required parameter 'model'.",
        ));
    };
    let Some(kind) = models::kind(&shared.models, &model) else {
        let message = format!(
            "models/{model} is not found for API version {}.",
            route.version
        );
        return Err(refusal(404, "model_not_found", message));
    };
    let previous = previous_interaction(shared, &route.scope, &body)?;
    let input_tokens = input_tokens?;
    let image = output_image(&body, kind)?;
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true)
        || inc.query_param("alt").as_deref() == Some("sse");
    let background = body.get("background").and_then(Value::as_bool) == Some(true);
    if background && rec.store == Some(false) {
        // Inferred: @google/genai 3.6.1 documents server-side runs as "`background: true` (with
        // `store: true`)" (dist/genai.d.ts, `automatic_continuation`), and an interaction not
        // stored could never be polled; what the API answers for both together is not documented.
        return Err(invalid(
            "'background' requires 'store' to be true: a background interaction is polled by its id.",
        ));
    }
    let id = format!("v1_{}", ids::alnum(43));
    let keep_in = (rec.store != Some(false)).then(|| route.scope.clone());
    if keep_in.is_some() {
        rec.creates = Some(id.clone());
    }
    rec.continues.clone_from(&previous);
    Ok(InteractionsRequest::Create(Create {
        id,
        model,
        image,
        stream,
        background,
        input_tokens,
        keep_in,
        previous,
        input: body.remove("input"),
        body_len: inc.body.len(),
    }))
}

/// `previous_interaction_id` must name an interaction kept here (in this scope): one created with
/// `store` not false and neither deleted nor evicted. Otherwise 404 `not_found`, as a get of that
/// id is answered. Inferred: the docs say the previous interaction "must have been run with
/// store=true" but not what the API answers when it was not; 404 is what a get of it answers.
fn previous_interaction(
    shared: &Shared,
    scope: &str,
    body: &Map<String, Value>,
) -> Result<Option<String>, ApiError> {
    let id = match body.get("previous_interaction_id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(id)) => id,
        Some(_) => {
            return Err(invalid(
                "Invalid value at 'previous_interaction_id': expected a string.",
            ));
        }
    };
    if lock(&shared.gemini_interactions).get(scope, id).is_none() {
        return Err(not_found(id));
    }
    Ok(Some(id.clone()))
}

fn not_found(id: &str) -> ApiError {
    refusal(404, "not_found", format!("Interaction '{id}' not found."))
}

/// A get or delete, `/{version}/interactions/{id}`, or a cancel, `.../{id}/cancel`: the get's query
/// is `stream`, `include_input` and `last_event_id` (google-genai 3.6.1's
/// `GetInteractionByIDRequest`); a cancel has no query and an empty body.
pub(super) fn examine_by_id(inc: &Incoming, route: &Route) -> InteractionsRequest {
    let flag = |name: &str| inc.query_param(name).as_deref() == Some("true");
    let lookup = Lookup {
        id: route.interaction_id.clone().unwrap_or_default(),
        scope: route.scope.clone(),
        stream: flag("stream"),
        include_input: flag("include_input"),
        last_event_id: inc.query_param("last_event_id"),
    };
    match route.endpoint {
        Endpoint::InteractionsDelete => InteractionsRequest::Delete(lookup),
        Endpoint::InteractionsCancel => InteractionsRequest::Cancel(lookup),
        _ => InteractionsRequest::Get(lookup),
    }
}

/// A refusal worded as the Interactions API words it: its own `code` string.
fn refusal(code: u16, status: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        status,
        message: message.into(),
        details: Vec::new(),
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    refusal(400, "invalid_request", message)
}

fn parse_body(inc: &Incoming) -> Result<Map<String, Value>, ApiError> {
    if inc.body.len() > MAX_REQUEST_BYTES {
        return Err(invalid(format!(
            "Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
        )));
    }
    match serde_json::from_slice(&inc.body) {
        Ok(Value::Object(body)) => Ok(body),
        Ok(_) => Err(invalid(
            "Invalid JSON payload received. Expected an object at the top level.",
        )),
        Err(e) => Err(invalid(format!("Invalid JSON payload received. {e}"))),
    }
}

/// Reads the input (a string, one content block, a list of content blocks, or a list of steps),
/// recording its text and images; returns its token cost, or the first thing the API refuses.
fn read_input(
    shared: &Shared,
    input: Option<&Value>,
    rec: &mut RecordedRequest,
) -> Result<u32, ApiError> {
    let mut first_error = None;
    let blocks = match input {
        None | Some(Value::Null) => return Err(invalid("Missing required parameter 'input'.")),
        Some(Value::String(text)) => {
            rec.prompt = Some(text.clone());
            return Ok(text_tokens(text));
        }
        Some(Value::Object(block)) => vec![("input".to_owned(), block)],
        Some(Value::Array(items)) => content_blocks(items, &mut first_error),
        Some(_) => {
            return Err(invalid(
                "Invalid value at 'input': expected a string, a content block or a list.",
            ));
        }
    };
    let mut texts = Vec::new();
    let mut tokens = 0;
    for (at, block) in blocks {
        match read_block(shared, &at, block, &mut texts, rec) {
            Ok(t) => tokens += t,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if !texts.is_empty() {
        rec.prompt = Some(texts.join("\n"));
    }
    first_error.map_or(Ok(tokens), Err)
}

/// A content block of the input, with its place in the request (`input[0].content[1]`).
type Placed<'a> = (String, &'a Map<String, Value>);

/// The content blocks of a list input, each with its place: the items themselves, or the content
/// of its `user_input` and `model_output` steps (other steps carry no content blocks). What is not
/// an object is skipped, and the first one kept as the refusal.
fn content_blocks<'a>(items: &'a [Value], first_error: &mut Option<ApiError>) -> Vec<Placed<'a>> {
    let mut blocks = Vec::new();
    let mut not_object = |at: String| {
        first_error.get_or_insert_with(|| {
            invalid(format!("Invalid value at '{at}': expected an object."))
        });
    };
    for (i, item) in items.iter().enumerate() {
        let Some(item) = item.as_object() else {
            not_object(format!("input[{i}]"));
            continue;
        };
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        if !STEP_TYPES_WITH_CONTENT.contains(&kind) {
            blocks.push((format!("input[{i}]"), item));
            continue;
        }
        let content = item.get("content").and_then(Value::as_array);
        for (j, block) in content.into_iter().flatten().enumerate() {
            let Some(block) = block.as_object() else {
                not_object(format!("input[{i}].content[{j}]"));
                continue;
            };
            blocks.push((format!("input[{i}].content[{j}]"), block));
        }
    }
    blocks
}

/// One content block: text is collected, media decoded and checked (images recorded).
fn read_block(
    shared: &Shared,
    at: &str,
    block: &Map<String, Value>,
    texts: &mut Vec<String>,
    rec: &mut RecordedRequest,
) -> Result<u32, ApiError> {
    let kind = block.get("type").and_then(Value::as_str);
    let fields: &[&str] = match kind {
        Some("text") => &["type", "text", "annotations"],
        Some(k) if MEDIA_TYPES.contains(&k) => &["type", "data", "mime_type", "uri", "resolution"],
        Some(other) if STEP_TYPES.contains(&other) => return Ok(0),
        Some(other) => {
            return Err(invalid(format!(
                "The value '{other}' is not supported for 'type' at '{at}'."
            )));
        }
        None => return Err(invalid(format!("Missing required field 'type' at '{at}'."))),
    };
    if let Some(name) = block.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(refusal(
            400,
            "parameter_unknown",
            format!("Unknown parameter '{name}' at '{at}'."),
        ));
    }
    if kind == Some("text") {
        let Some(text) = block.get("text").and_then(Value::as_str) else {
            return Err(invalid(format!("Missing required field 'text' at '{at}'.")));
        };
        texts.push(text.to_owned());
        return Ok(text_tokens(text));
    }
    read_media(shared, at, block, rec)
}

/// Steps that carry no content blocks (tool calls and results, thoughts): history, not input media.
const STEP_TYPES: &[&str] = &[
    "thought",
    "function_call",
    "function_result",
    "code_execution_call",
    "code_execution_result",
    "url_context_call",
    "url_context_result",
    "google_search_call",
    "google_search_result",
    "mcp_server_tool_call",
    "mcp_server_tool_result",
    "file_search_call",
    "file_search_result",
    "google_maps_call",
    "google_maps_result",
];

/// A media block: inline base64 `data` (with its `mime_type`) or a `uri` (a Files API file must exist).
fn read_media(
    shared: &Shared,
    at: &str,
    block: &Map<String, Value>,
    rec: &mut RecordedRequest,
) -> Result<u32, ApiError> {
    let text = |field: &str| block.get(field).and_then(Value::as_str);
    if let Some(data) = text("data") {
        let blob = Blob {
            request: "CreateInteractionRequest",
            at: at.to_owned(),
            mime: text("mime_type").unwrap_or_default(),
            data,
        };
        return check_blob(&blob, rec);
    }
    match text("uri") {
        Some(uri) if uri.contains("/files/") || uri.starts_with("files/") => {
            check_file_uri(shared, uri).map(|()| 258)
        }
        Some(_) => Ok(258),
        None => Err(invalid(format!(
            "One of 'data' or 'uri' must be set at '{at}'."
        ))),
    }
}

fn text_tokens(text: &str) -> u32 {
    (text.chars().count() / 4).max(1) as u32
}

/// The image the answer carries, by its format, as the request's output settings and the model
/// allow: `response_modalities` (deprecated), `response_format` blocks, and the deprecated
/// `generation_config.image_config`. None for a text-only answer.
fn output_image(body: &Map<String, Value>, kind: Kind) -> Result<Option<&'static str>, ApiError> {
    let modalities = modalities(body)?;
    let formats: Vec<&Map<String, Value>> = match body.get("response_format") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).collect(),
        Some(Value::Object(one)) => vec![one],
        _ => Vec::new(),
    };
    let image_format = formats
        .iter()
        .find(|f| f.get("type").and_then(Value::as_str) == Some("image"));
    if let Some(format) = image_format {
        check_image_format(format, "response_format")?;
    }
    if let Some(config) = body
        .get("generation_config")
        .and_then(|c| c.get("image_config"))
        .and_then(Value::as_object)
    {
        check_image_format(config, "generation_config.image_config")?;
    }
    let asks_image = image_format.is_some()
        || modalities
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "image"));
    if asks_image && kind != Kind::Image {
        return Err(invalid(
            "Model does not support the requested response modalities: image",
        ));
    }
    let text_only = !asks_image && (modalities.is_some() || !formats.is_empty());
    if kind != Kind::Image || text_only {
        return Ok(None);
    }
    let jpeg = image_format.and_then(|f| f.get("mime_type")) == Some(&json!("image/jpeg"));
    Ok(Some(if jpeg { "image/jpeg" } else { "image/png" }))
}

/// `response_modalities`, lowercased; each must be one the API knows.
fn modalities(body: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(list) = body.get("response_modalities") else {
        return Ok(None);
    };
    let Some(list) = list.as_array() else {
        return Err(invalid(
            "Invalid value at 'response_modalities': expected a list.",
        ));
    };
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let m = m.as_str().unwrap_or_default().to_ascii_lowercase();
        if !matches!(
            m.as_str(),
            "text" | "image" | "audio" | "video" | "document"
        ) {
            return Err(invalid(format!(
                "The value '{m}' is not supported for 'response_modalities[{i}]'."
            )));
        }
        out.push(m);
    }
    Ok(Some(out))
}

/// An image format's aspect ratio, size and media type must be ones the API offers.
fn check_image_format(format: &Map<String, Value>, at: &str) -> Result<(), ApiError> {
    const RATIOS: &[&str] = &[
        "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:8", "8:1",
        "1:4", "4:1",
    ];
    const SIZES: &[&str] = &["512", "1K", "2K", "4K"];
    const TYPES: &[&str] = &["image/jpeg"];
    for (field, allowed) in [
        ("aspect_ratio", RATIOS),
        ("image_size", SIZES),
        ("mime_type", TYPES),
    ] {
        if let Some(value) = format.get(field)
            && !value.as_str().is_some_and(|v| allowed.contains(&v))
        {
            return Err(invalid(format!(
                "The value {value} is not supported for '{field}' at '{at}'. Supported values are {}.",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// What the model produced: the interaction's final status, its output content blocks, the errors
/// recorded on it, and the image it carries.
struct Outcome {
    status: &'static str,
    content: Vec<Value>,
    errors: Vec<Value>,
    output_tokens: u32,
    image: Option<Vec<u8>>,
}

/// The outcome of a run whose answer carries an `image` of that format (None: text only).
fn outcome(image: Option<&'static str>, behaviour: Behaviour, output_side: u32) -> Outcome {
    let blocked = |code: &str, message: &str| Outcome {
        status: "failed",
        content: Vec::new(),
        errors: vec![json!({"code": code, "message": message})],
        output_tokens: 0,
        image: None,
    };
    match behaviour {
        Behaviour::SafetyBlock => {
            return blocked(
                "prohibited_content",
                "The prompt was blocked: PROHIBITED_CONTENT.",
            );
        }
        Behaviour::SafetyBlockImage => {
            return blocked(
                "image_safety",
                "Unable to show the generated image. The image was filtered out because it violated Google's \
                 Generative AI Prohibited Use policy. You will not be charged for blocked images.",
            );
        }
        _ => {}
    }
    let Some(mime) = image else {
        let text = "I can describe the picture, but this model answers with text only.";
        return Outcome {
            status: "completed",
            content: vec![json!({"type": "text", "text": text})],
            errors: Vec::new(),
            output_tokens: 24,
            image: None,
        };
    };
    let image = if mime == "image/jpeg" {
        crate::images::random_jpeg(output_side)
    } else {
        crate::images::random_png(output_side)
    };
    let data = crate::images::encode_base64(&image);
    Outcome {
        status: "completed",
        content: vec![
            json!({"type": "text", "text": "Here is the edited image."}),
            json!({"type": "image", "mime_type": mime, "data": data}),
        ],
        errors: Vec::new(),
        output_tokens: 1290,
        image: Some(image),
    }
}

fn usage(input_tokens: u32, outcome: &Outcome) -> Value {
    let mut usage = json!({
        "total_input_tokens": input_tokens,
        "total_output_tokens": outcome.output_tokens,
        "total_tokens": input_tokens + outcome.output_tokens,
        "input_tokens_by_modality": [{"modality": "text", "tokens": input_tokens}]
    });
    if outcome.output_tokens > 0 {
        let modality = if outcome.image.is_some() {
            "image"
        } else {
            "text"
        };
        usage["output_tokens_by_modality"] =
            json!([{"modality": modality, "tokens": outcome.output_tokens}]);
    }
    usage
}

/// The answer to a valid request, after validation and infrastructure faults.
pub(super) fn answer(
    shared: &Shared,
    request: InteractionsRequest,
    behaviour: Behaviour,
) -> (Reply, Option<Vec<u8>>) {
    match request {
        InteractionsRequest::Create(create) => answer_create(shared, create, behaviour),
        InteractionsRequest::Get(lookup) => answer_get(shared, &lookup),
        InteractionsRequest::Cancel(lookup) => answer_cancel(shared, &lookup),
        InteractionsRequest::Delete(lookup) => {
            if lock(&shared.gemini_interactions).remove(&lookup.scope, &lookup.id) {
                (google_reply(200, &json!({})), None)
            } else {
                (error_reply(&not_found(&lookup.id)), None)
            }
        }
    }
}

/// A kept interaction as it stands (JSON or events, as the get asks), with its input when asked;
/// 404 when it is not kept here. A get of a running `background` interaction is one of its polls
/// (see [`advance`]); the image is the answer's, when it carries one.
fn answer_get(shared: &Shared, lookup: &Lookup) -> (Reply, Option<Vec<u8>>) {
    let kept = lock(&shared.gemini_interactions).update(&lookup.scope, &lookup.id, |k| {
        advance(k, lookup.stream, shared.output_side);
        (k.interaction.clone(), k.input.clone())
    });
    let Some((mut whole, input)) = kept else {
        return (error_reply(&not_found(&lookup.id)), None);
    };
    if lookup.include_input
        && let Some(input) = input
    {
        whole["input"] = input;
    }
    let content: Vec<Value> = whole["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "model_output")
        .flat_map(|s| s["content"].as_array().cloned().unwrap_or_default())
        .collect();
    let image = content
        .iter()
        .find(|c| c["type"] == "image")
        .and_then(|c| c["data"].as_str())
        .and_then(crate::images::decode_base64);
    if !lookup.stream {
        return (google_reply(200, &whole), image);
    }
    let errors = whole["errors"].as_array().cloned().unwrap_or_default();
    if let Some(fields) = whole.as_object_mut() {
        fields.remove("steps");
    }
    let after = lookup
        .last_event_id
        .as_deref()
        .and_then(|id| id.parse::<usize>().ok());
    (event_stream(whole, &content, &errors, after), image)
}

/// A get of a running `background` interaction: while polls are left it is answered
/// `in_progress` and one poll fewer is left; the get after them ends the run, and the interaction
/// is kept and answered finished, its outcome (and image) made only now, under the behaviour its
/// create took. A streamed get (`stream=true`) follows the run to its end whatever polls are left.
/// Inferred: the SDKs' READMEs poll until the status changes, not after how many polls (the count
/// is the mock's, deterministic); the Gemini API's background-execution guide (not an SDK source)
/// has a client either poll the id for its status or stream its progress, so a stream, unlike a
/// poll, is taken to wait for the end. Nothing changes for any other interaction.
fn advance(kept: &mut KeptInteraction, stream: bool, output_side: u32) {
    let Some(run) = &mut kept.run else {
        return;
    };
    if run.polls_left > 0 && !stream {
        run.polls_left -= 1;
        return;
    }
    let Some(run) = kept.run.take() else {
        return;
    };
    let outcome = outcome(run.image, run.behaviour, output_side);
    let interaction = finished(&kept.interaction, &outcome, run.input_tokens, &now());
    let whole = with_steps(&interaction, &outcome.content);
    let grown = whole.to_string().len();
    kept.bytes = kept
        .bytes
        .saturating_sub(kept.interaction.to_string().len())
        + grown;
    kept.interaction = whole;
}

/// A cancel: 404 as a get of that id when it is not kept here. Both SDKs document cancel as
/// applying "only to background interactions that are still running" and answering an
/// Interaction (google-genai 3.6.1 `_gaos/interactions.py` `Interactions.cancel`; @google/genai
/// 3.6.1 `dist/genai.d.ts` `cancel`). A running `background` interaction is stopped: answered,
/// and kept, `cancelled` (the SDKs' spelling), with no output and its run dropped, so no image is
/// ever made or recorded for it. Inferred: that the cancel answers the stopped interaction
/// itself, `updated` now. What the API answers for one that has already finished is not
/// documented; inferred: that interaction, unchanged (its status stays `completed`, `failed` or
/// `cancelled`, its image recorded as the answer's), since there is nothing left to stop.
fn answer_cancel(shared: &Shared, lookup: &Lookup) -> (Reply, Option<Vec<u8>>) {
    let kept = lock(&shared.gemini_interactions).update(&lookup.scope, &lookup.id, |k| {
        if k.run.take().is_some() {
            k.interaction["status"] = json!("cancelled");
            k.interaction["updated"] = json!(now());
        }
        k.interaction.clone()
    });
    let Some(whole) = kept else {
        return (error_reply(&not_found(&lookup.id)), None);
    };
    let image = image_of(&whole);
    (google_reply(200, &whole), image)
}

/// The image of a kept interaction's `model_output` steps, decoded.
fn image_of(whole: &Value) -> Option<Vec<u8>> {
    whole["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "model_output")
        .flat_map(|s| s["content"].as_array().cloned().unwrap_or_default())
        .find(|c| c["type"] == "image")
        .and_then(|c| c["data"].as_str().and_then(crate::images::decode_base64))
}

/// Now, to the second, as the API's timestamps are written.
fn now() -> String {
    let now = time::OffsetDateTime::now_utc();
    ids::rfc3339(now.replace_nanosecond(0).unwrap_or(now))
}

/// A finished interaction without its steps: `head` (its id, object, model, created and the
/// interaction it continues) with the outcome's status, usage and errors, updated at `updated`.
fn finished(head: &Value, outcome: &Outcome, input_tokens: u32, updated: &str) -> Value {
    let mut interaction = head.clone();
    if let Some(fields) = interaction.as_object_mut() {
        fields.remove("steps");
    }
    interaction["status"] = json!(outcome.status);
    interaction["updated"] = json!(updated);
    interaction["usage"] = usage(input_tokens, outcome);
    if !outcome.errors.is_empty() {
        interaction["errors"] = json!(outcome.errors);
    }
    interaction
}

/// The whole interaction: with its `model_output` step, or `steps: []` when it has no output
/// (@google/genai gives every Interaction a steps array, so the mock always sends one).
fn with_steps(interaction: &Value, content: &[Value]) -> Value {
    let mut whole = interaction.clone();
    whole["steps"] = if content.is_empty() {
        json!([])
    } else {
        json!([{"type": "model_output", "content": content}])
    };
    whole
}

fn answer_create(
    shared: &Shared,
    request: Create,
    behaviour: Behaviour,
) -> (Reply, Option<Vec<u8>>) {
    let now = now();
    let mut head = json!({
        "id": request.id,
        "object": "interaction",
        "model": request.model,
        "created": now,
        "updated": now,
    });
    if let Some(previous) = &request.previous {
        head["previous_interaction_id"] = json!(previous);
    }
    if request.background && !request.stream {
        return start_run(shared, request, behaviour, head);
    }
    let outcome = outcome(request.image, behaviour, shared.output_side);
    let interaction = finished(&head, &outcome, request.input_tokens, &now);
    let whole = with_steps(&interaction, &outcome.content);
    let reply = if request.stream {
        event_stream(interaction, &outcome.content, &outcome.errors, None)
    } else {
        google_reply(200, &whole)
    };
    keep(shared, request, whole, None);
    (reply, outcome.image)
}

/// A `background` create (google-genai 3.6.1 and @google/genai 3.6.1: "Whether to run the model
/// interaction in the background"): answered at once `in_progress` with no output (`steps: []`,
/// no usage yet), and kept with its run; no image is made until a get ends the run (see
/// [`advance`]). A streamed create with `background` is answered as any stream, to its end
/// (inferred: the client is there to read the run through; the SDKs skip only their own
/// continuation loop for it).
fn start_run(
    shared: &Shared,
    request: Create,
    behaviour: Behaviour,
    mut head: Value,
) -> (Reply, Option<Vec<u8>>) {
    head["status"] = json!("in_progress");
    head["steps"] = json!([]);
    let run = BackgroundRun {
        polls_left: shared.background_polls,
        image: request.image,
        input_tokens: request.input_tokens,
        behaviour,
    };
    let reply = google_reply(200, &head);
    keep(shared, request, head, Some(run));
    (reply, None)
}

/// Keeps the interaction when its create asked to store it (with its run, for a background one).
fn keep(shared: &Shared, request: Create, whole: Value, run: Option<BackgroundRun>) {
    let Some(scope) = request.keep_in else {
        return;
    };
    let id = whole["id"].as_str().unwrap_or_default().to_owned();
    let bytes = request.body_len + whole.to_string().len();
    lock(&shared.gemini_interactions).keep(KeptInteraction {
        id,
        scope,
        interaction: whole,
        input: request.input,
        bytes,
        run,
    });
}

/// The interaction as server-sent events: created (in progress), the model output step's start,
/// one delta per content block and stop, any errors, completed (with usage), then `[DONE]`.
/// `after`: a get's `last_event_id`, whose events up to it are not sent again.
fn event_stream(
    interaction: Value,
    content: &[Value],
    errors: &[Value],
    after: Option<usize>,
) -> Reply {
    let mut created = interaction.clone();
    if let Some(fields) = created.as_object_mut() {
        fields.retain(|k, _| matches!(k.as_str(), "id" | "object" | "model" | "created"));
        fields.insert("status".into(), json!("in_progress"));
    }
    let mut events = vec![json!({"event_type": "interaction.created", "interaction": created})];
    if !content.is_empty() {
        events.push(
            json!({"event_type": "step.start", "index": 0, "step": {"type": "model_output"}}),
        );
        for block in content {
            events.push(json!({"event_type": "step.delta", "index": 0, "delta": block}));
        }
        events.push(json!({"event_type": "step.stop", "index": 0}));
    }
    for error in errors {
        events.push(json!({"event_type": "error", "error": error}));
    }
    events.push(json!({"event_type": "interaction.completed", "interaction": interaction}));
    let mut body = String::new();
    for (n, event) in events.iter_mut().enumerate() {
        if after.is_some_and(|after| n <= after) {
            continue;
        }
        event["event_id"] = json!(n.to_string());
        let name = event["event_type"].as_str().unwrap_or_default().to_owned();
        body.push_str(&format!("event: {name}\ndata: {event}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    with_google_headers(Reply::new(200, "text/event-stream", body.into_bytes()))
}

/// A refusal in the Interactions API's envelope, `{"error":{"code","message"}}`, whose `code` is the
/// API's own string; refusals shared with generateContent (Google's statuses) are translated.
pub(super) fn error_reply(err: &ApiError) -> Reply {
    let code = match err.status {
        "INVALID_ARGUMENT" => "invalid_request",
        "UNAUTHENTICATED" => "authentication",
        "PERMISSION_DENIED" => "permission_denied",
        "NOT_FOUND" => "not_found",
        "RESOURCE_EXHAUSTED" => "rate_limit_exceeded",
        "INTERNAL" => "api_error",
        "UNAVAILABLE" => "unavailable",
        "DEADLINE_EXCEEDED" => "deadline_exceeded",
        own => own,
    };
    let body = json!({"error": {"code": code, "message": err.message}});
    google_reply(err.code, &body)
}

/// A missing or wrong API key: the Interactions API answers both 401 `authentication`.
pub(super) fn unauthenticated(err: ApiError) -> ApiError {
    refusal(401, "authentication", err.message)
}
