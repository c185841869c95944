//! The Files API: the resumable upload protocol (start, chunks, finalize), list, get and delete.
//! A file kept here is evidence that the pipeline asked the provider to keep data.

use serde_json::{Value, json};

use super::ApiError;
use super::error::{self, google_reply, with_google_headers};
use super::generate::either;
use crate::http::{Incoming, Reply};
use crate::ids;
use crate::state::{GeminiFile, Shared, lock};
use crate::types::RecordedRequest;

/// A Files request understood and found valid.
#[derive(Debug)]
pub(crate) enum FilesRequest {
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
    List,
    Get(String),
    Delete(String),
}

pub(super) fn examine_upload(
    inc: &Incoming,
    rec: &mut RecordedRequest,
) -> Result<FilesRequest, ApiError> {
    if let Some(upload_id) = inc.query_param("upload_id") {
        let command = inc
            .header("x-goog-upload-command")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if crate::images::looks_like_image(&inc.body) {
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
        return Ok(FilesRequest::UploadChunk {
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
    Ok(FilesRequest::UploadStart {
        display_name,
        mime_type,
        declared_len,
    })
}

pub(super) fn file_object(f: &GeminiFile, origin: &str) -> Value {
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
        "sha256Hash": crate::images::encode_base64(&ids::hex(32).into_bytes()),
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
    error::error_reply(&ApiError {
        code: 403,
        status: "PERMISSION_DENIED",
        message: format!("You do not have permission to access the File {id} or it may not exist."),
        details: Vec::new(),
    })
}

pub(super) fn answer(shared: &Shared, inc: &Incoming, request: FilesRequest) -> Reply {
    match request {
        FilesRequest::UploadStart {
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
            with_google_headers(Reply::new(200, "text/plain; charset=utf-8", Vec::new()))
                .header("x-goog-upload-url", url.clone())
                .header("x-goog-upload-control-url", url)
                .header("x-goog-upload-status", "active")
                .header("x-goog-upload-chunk-granularity", "8388608")
        }
        FilesRequest::UploadChunk {
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
                return error::error_reply(&ApiError {
                    code: 404,
                    status: "NOT_FOUND",
                    message: "The upload session was not found or has already been finalized."
                        .into(),
                    details: Vec::new(),
                });
            };
            if offset as usize != file.data.len() {
                let received = file.data.len();
                drop(files);
                return error::error_reply(&ApiError::invalid(format!(
                    "Invalid X-Goog-Upload-Offset {offset}: {received} bytes have been received so far."
                )));
            }
            file.data.extend_from_slice(&data);
            if !finalize {
                return with_google_headers(Reply::new(
                    200,
                    "text/plain; charset=utf-8",
                    Vec::new(),
                ))
                .header("x-goog-upload-status", "active")
                .header("x-goog-upload-size-received", file.data.len().to_string());
            }
            file.finalized = true;
            if file
                .declared_len
                .is_some_and(|l| l != file.data.len() as u64)
            {
                tracing::debug!(name = %file.name, "upload finalized with a length other than declared");
            }
            let body = json!({ "file": file_object(file, &origin(inc)) });
            google_reply(200, &body).header("x-goog-upload-status", "final")
        }
        FilesRequest::List => {
            let files = lock(&shared.gemini_files);
            let list: Vec<Value> = files
                .values()
                .filter(|f| f.finalized)
                .map(|f| file_object(f, &origin(inc)))
                .collect();
            google_reply(200, &json!({ "files": list }))
        }
        FilesRequest::Get(id) => {
            match lock(&shared.gemini_files).get(&id).filter(|f| f.finalized) {
                Some(f) => google_reply(200, &file_object(f, &origin(inc))),
                None => file_missing(&id),
            }
        }
        FilesRequest::Delete(id) => match lock(&shared.gemini_files).remove(&id) {
            Some(_) => google_reply(200, &json!({})),
            None => file_missing(&id),
        },
    }
}
