//! The Files API: upload (`POST /v1/files`), list, get and delete. A file kept here is evidence
//! that the pipeline asked the provider to keep data.

use serde_json::{Value, json};

use super::error::{self, openai_reply};
use super::{ApiError, Request};
use crate::http::{Incoming, Part, Reply, parse_multipart};
use crate::ids;
use crate::state::{OpenAiFile, Shared, lock};
use crate::types::RecordedRequest;

/// A Files request understood and found valid.
#[derive(Debug)]
pub(crate) enum FilesRequest {
    Upload(OpenAiFile),
    List,
    Get(String),
    Delete(String),
}

const FILE_PURPOSES: &[&str] = &[
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

pub(super) fn examine_upload(
    inc: &Incoming,
    rec: &mut RecordedRequest,
) -> Result<Request, ApiError> {
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
        && crate::images::looks_like_image(&file.data)
    {
        rec.images.push(file.data.clone());
    }
    let file = file.ok_or_else(|| ApiError::missing("file"))?;
    let purpose = purpose.ok_or_else(|| ApiError::missing("purpose"))?;
    if !FILE_PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::invalid_value("purpose", &purpose, FILE_PURPOSES));
    }
    Ok(Request::Files(FilesRequest::Upload(OpenAiFile {
        id: format!("file-{}", ids::alnum(22)),
        filename: file.file_name.clone().unwrap_or_else(|| "upload".into()),
        purpose,
        bytes: file.data.len(),
        created_at: ids::unix_now(),
    })))
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
    error::error_reply(&ApiError {
        status: 404,
        message: format!("No such File object: {id}"),
        kind: "invalid_request_error",
        param: Some("id".into()),
        code: None,
    })
}

pub(super) fn answer(shared: &Shared, request: FilesRequest) -> Reply {
    match request {
        FilesRequest::Upload(file) => {
            let body = file_object(&file);
            lock(&shared.openai_files).insert(file.id.clone(), file);
            openai_reply(200, &body)
        }
        FilesRequest::List => {
            let files: Vec<Value> = lock(&shared.openai_files)
                .values()
                .map(file_object)
                .collect();
            openai_reply(
                200,
                &json!({"object": "list", "data": files, "has_more": false}),
            )
        }
        FilesRequest::Get(id) => match lock(&shared.openai_files).get(&id) {
            Some(f) => openai_reply(200, &file_object(f)),
            None => not_found_file(&id),
        },
        FilesRequest::Delete(id) => match lock(&shared.openai_files).remove(&id) {
            Some(_) => openai_reply(200, &json!({"id": id, "object": "file", "deleted": true})),
            None => not_found_file(&id),
        },
    }
}
