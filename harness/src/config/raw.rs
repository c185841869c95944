//! `traceless.toml` exactly as written: every value keeps its span so validation can name the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub policy: RawPolicy,
    pub pipeline: Spanned<RawPipeline>,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub interception: RawInterception,
    #[serde(default)]
    pub mocks: RawMocks,
    #[serde(default)]
    pub service: Vec<Spanned<RawService>>,
    #[serde(default)]
    pub waiver: Vec<Spanned<RawWaiver>>,
}

/// A command line: a program and its arguments.
pub type RawArgv = Spanned<Vec<Spanned<String>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub allowed_providers: Option<Spanned<Vec<Spanned<String>>>>,
    pub memory_grace_ms: Option<Spanned<u64>>,
    pub text: Option<Spanned<String>>,
    pub clauses: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub command: RawArgv,
    pub health: Option<Spanned<String>>,
    /// The statuses of `GET health` that mean ready (default: 200).
    pub health_statuses: Option<Spanned<Vec<Spanned<u16>>>>,
    /// A fixed port, for a backend that hard-codes it.
    pub port: Option<Spanned<u16>>,
    pub workdir: Option<Spanned<String>>,
    pub startup_timeout_ms: Option<Spanned<u64>>,
    pub shutdown_grace_ms: Option<Spanned<u64>>,
    /// Whether the audit checks that `http://` provider URLs are refused at start-up.
    pub refuses_plaintext_providers: Option<Spanned<bool>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub request: RawRequest,
    #[serde(default)]
    pub response: RawResponse,
    /// Present when a generation answers with a job to follow.
    pub job: Option<Spanned<RawJob>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub submit_status: Option<Spanned<Vec<Spanned<u16>>>>,
    pub id: Spanned<String>,
    pub poll: Option<Spanned<String>>,
    pub poll_interval_ms: Option<Spanned<u64>>,
    pub events: Option<Spanned<String>>,
    pub state_pointer: Option<Spanned<String>>,
    pub done: Spanned<Vec<Spanned<String>>>,
    pub failed: Option<Spanned<Vec<Spanned<String>>>>,
    pub failed_status: Option<Spanned<u16>>,
    pub result: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub route: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub body: Option<Spanned<String>>,
    pub image_field: Option<Spanned<String>>,
    pub image_as: Option<Spanned<String>>,
    pub prompt_field: Option<Spanned<String>>,
    pub provider_field: Option<Spanned<String>>,
    pub age_field: Option<Spanned<String>>,
    pub age_true: Option<Spanned<String>>,
    pub age_false: Option<Spanned<String>>,
    pub age_gate: Option<Spanned<bool>>,
    #[serde(default)]
    pub provider_values: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub extra_fields: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// More image parts than the photo (a mask, reference images): `[[pipeline.request.images]]`.
    #[serde(default)]
    pub images: Vec<Spanned<RawExtraImage>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExtraImage {
    pub field: Spanned<String>,
    pub image_as: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub width: Option<Spanned<u32>>,
    pub height: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponse {
    pub image: Option<Spanned<String>>,
    pub pointer: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub scenarios: Option<Spanned<Vec<Spanned<String>>>>,
    pub fixtures: Option<Spanned<String>>,
    pub allow_outside_fixtures: Option<Spanned<bool>>,
    pub cases: Option<Spanned<u32>>,
    pub required_monitors: Option<Spanned<Vec<Spanned<String>>>>,
    pub request_timeout_ms: Option<Spanned<u64>>,
    pub live_requests: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterception {
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub ca_env: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Model name patterns that replace the mocks' defaults, one list per key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMocks {
    pub openai_image_models: Option<Spanned<Vec<Spanned<String>>>>,
    pub openai_responses_models: Option<Spanned<Vec<Spanned<String>>>>,
    pub openai_retired_models: Option<Spanned<Vec<Spanned<String>>>>,
    pub gemini_image_models: Option<Spanned<Vec<Spanned<String>>>>,
    pub gemini_text_models: Option<Spanned<Vec<Spanned<String>>>>,
    pub gemini_retired_models: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaiver {
    pub kind: Option<Spanned<String>>,
    pub clause: Option<Spanned<String>>,
    pub justification: Spanned<String>,
    pub expires: Spanned<String>,
}

/// `[[service]]`: a local service the backend needs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: Spanned<String>,
    pub command: RawArgv,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub url: Option<Spanned<String>>,
    /// `"tcp"` or a command line.
    pub ready: Option<Spanned<toml::Value>>,
    pub ready_timeout_ms: Option<Spanned<u64>>,
    pub stop_grace_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub setup: Vec<RawArgv>,
    #[serde(default)]
    pub init: Vec<RawArgv>,
    pub user: Option<Spanned<String>>,
}
