//! Everything an audit run observed, as plain data: what the harness sent and got back, what the
//! mock providers received, and every monitor event. Checks read only this.

use traceless_evidence::events::{Event, MonitorStatus};
use traceless_evidence::hit::{Hit, RequestId};
use traceless_evidence::provider::RecordedRequest;

use crate::plan::{Age, ClientBehaviour};

#[derive(Debug, Default)]
pub struct Evidence {
    pub requests: Vec<SentRequest>,
    pub provider_calls: Vec<ProviderCall>,
    pub events: Vec<Event>,
    pub monitors: Vec<MonitorStatus>,
    /// Addresses the pipeline may connect to: the mocks, the harness's resolver, itself.
    pub allowed_addresses: Vec<String>,
    /// Host names the pipeline may look up: the providers'.
    pub allowed_hosts: Vec<String>,
    /// Whether the mocks served TLS (a plaintext request is then evidence of insecure transport).
    pub mocks_tls: bool,
    pub plaintext_probe: Option<PlaintextProbe>,
    /// Why the plaintext-URL probe did not run, when it did not.
    pub plaintext_probe_skipped: Option<String>,
    pub exposure_probes: Vec<ExposureProbe>,
    /// Whether the written files were probed over the pipeline's port (the probes ran).
    pub exposure_probed: bool,
    /// When each completed memory scan of the whole tree ended, in the event log's milliseconds.
    pub memory_scans: Vec<u64>,
    /// The providers the policy lists: a call to any other is a finding.
    pub allowed_providers: Vec<String>,
    /// How the pipeline died mid-audit, when it did.
    pub crash: Option<traceless_report::Crash>,
    /// Property cases (planned, run to their end).
    pub property_cases: (u32, u32),
    /// The requests of property cases that failed (shrinks included): the report lists them one
    /// by one; the requests of passing cases it aggregates.
    pub failed_case_requests: std::collections::BTreeSet<RequestId>,
    /// Processes that left the pipeline's tree or outlived its stop, as the stop found them.
    pub orphans: Vec<traceless_evidence::events::Orphan>,
    /// Daemons found while the audit ran, each the first time a batch's answers were in: they
    /// outlived the requests that were answered by then.
    pub orphans_during: Vec<OrphanSeen>,
    /// The backend has no age gate: clause 7 cannot be tested.
    pub no_age_gate: bool,
    /// How long image bytes may stay in memory after their request ended.
    pub memory_grace_ms: u64,
    /// Each declared local service's folder, scanned once it had stopped (one per `[[service]]`).
    pub services: Vec<ServiceScan>,
}

/// What a declared local service kept: its folder, read file by file with every needle once the
/// pipeline and the service had stopped.
#[derive(Debug, Clone, Default)]
pub struct ServiceScan {
    pub name: String,
    pub data_dir: std::path::PathBuf,
    /// Files read, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// The files that hold canaries: their path relative to the service's folder, and the hits.
    pub hits: Vec<(String, Vec<Hit>)>,
    /// Why the folder was not read, or not all of it.
    pub error: Option<String>,
}

/// A daemon of the pipeline's found after a batch of requests was answered.
#[derive(Debug, Clone)]
pub struct OrphanSeen {
    pub orphan: traceless_evidence::events::Orphan,
    pub scenario: String,
    /// The batch whose answers were in when it was first found.
    pub after_requests: Vec<RequestId>,
}

impl Evidence {
    /// With syscalls traced, keeps only file events for paths the pipeline's own process tree
    /// opened for writing or renamed into place: watched folders such as /tmp are shared with
    /// every other program on the machine.
    pub fn keep_own_files(&mut self) {
        use traceless_evidence::events::{EventKind, MonitorKind, MonitorState};
        let traced = self
            .monitors
            .iter()
            .any(|m| m.monitor == MonitorKind::Syscall && m.state == MonitorState::Active);
        if !traced {
            return;
        }
        let own: std::collections::HashSet<std::path::PathBuf> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Open { path, .. } => Some(path.clone()),
                EventKind::Rename { to, .. } => Some(to.clone()),
                _ => None,
            })
            .collect();
        self.events.retain(|e| match &e.kind {
            EventKind::FileWritten { path, .. } | EventKind::FileVanished { path, .. } => {
                own.contains(path)
            }
            _ => true,
        });
    }
}

/// One request the harness sent to the pipeline.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub id: RequestId,
    pub scenario: String,
    pub provider: String,
    pub age: Age,
    pub behaviour: Vec<String>,
    pub client: ClientBehaviour,
    pub expected_status: Option<u16>,
    pub status: Option<u16>,
    pub started_ms: u64,
    pub ended_ms: u64,
    /// The answer body's length. Its bytes (the generated image, or an error) are scanned when it
    /// arrives and not kept (`audit/kept.rs`).
    pub response_bytes: u64,
    /// Canary hits in the answer's body.
    pub response_hits: Vec<Hit>,
    pub error: Option<String>,
    /// Whether the request carried a decodable image with metadata (so stripping can be checked).
    pub had_metadata: bool,
    /// Its prompt was shared with other requests, without a marker: not looked for.
    pub shared_prompt: bool,
}

/// A request a mock provider received, with the audit requests it carried data of.
#[derive(Debug, Clone)]
pub struct ProviderCall {
    /// The call as the mocks recorded it, without its bytes: its body, images, output and headers
    /// were read when the call was kept (`audit/kept.rs`) and are summed up by the fields below.
    pub recorded: RecordedRequest,
    /// The length of its body.
    pub body_bytes: u64,
    /// Per image it carried: the metadata block (EXIF, XMP, PNG text) it still carries, if any.
    pub image_metadata: Vec<Option<&'static str>>,
    /// Audit requests whose photo one of its images is, by perceptual hash.
    pub perceptual: Vec<RequestId>,
    /// When it arrived, in the event log's milliseconds.
    pub t_ms: u64,
    /// When the mock answered it (arrival plus a scripted delay or timeout hold): until then the
    /// requests it belongs to are still being processed.
    pub answered_ms: u64,
    /// Audit requests whose image appears in this call (its bytes, or its decoded pixels by
    /// perceptual hash).
    pub carried_images_of: Vec<RequestId>,
    /// Audit requests any canary of which appears in this call (image, prompt marker, device id,
    /// forwarded address, metadata marker): the requests it belongs to.
    pub attributed_to: Vec<RequestId>,
    /// Canary hits in the call's headers, query and body.
    pub hits: Vec<Hit>,
}

#[derive(Debug, Clone)]
pub struct PlaintextProbe {
    /// The environment variables that were given `http://` provider URLs.
    pub variables: Vec<String>,
    pub outcome: ProbeOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// It exited at start-up, as it should.
    Refused { exit: String },
    /// It became healthy with plaintext provider URLs.
    Accepted,
    /// It neither refused nor became healthy in time.
    Inconclusive(String),
}

/// A fetch-back of something the pipeline wrote, through its own HTTP port without credentials.
#[derive(Debug, Clone)]
pub struct ExposureProbe {
    pub url: String,
    pub status: u16,
    pub hits: Vec<Hit>,
    /// What was found there: a written file, or what an answer linked to.
    pub what: String,
}
