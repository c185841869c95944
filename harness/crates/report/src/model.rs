//! The report schema `traceless.report/v1`: plain serialisable data, nothing computed here.
//!
//! Field names are serialised kebab-case. Every field is always written (absent values as
//! `null`, empty lists as `[]`), so `schema/report-v1.schema.json` can list them all as required.

use serde::{Deserialize, Serialize};

/// The value of [`Report::schema`] for this version of the format.
pub const SCHEMA_ID: &str = "traceless.report/v1";

/// A finished audit: what was run, what was watched, what was found, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// Always [`SCHEMA_ID`]; readers refuse anything else.
    pub schema: String,
    /// The audit's overall verdict.
    pub verdict: Verdict,
    /// One line a pull-request reader understands (see [`Report::summary_line`]).
    pub summary: String,
    /// What was audited, with what, when: enough to reproduce the run and trust its inputs.
    pub provenance: Provenance,
    /// Every monitor and whether it could watch what it is meant to.
    pub monitors: Vec<MonitorEntry>,
    /// One verdict per clause of the clause map, in the map's order.
    pub clauses: Vec<ClauseResult>,
    /// Every finding, waived ones included, numbered `F1`, `F2`, ...
    pub findings: Vec<Finding>,
    /// Every scenario that ran (property cases included).
    pub scenarios: Vec<ScenarioResult>,
    /// Every waiver in the configuration, used or not.
    pub waivers: Vec<WaiverEntry>,
    /// Why the audit could not be completed, when it could not (config, start-up, a required
    /// monitor, a crash, an inconclusive probe, an interruption).
    pub errors: Vec<String>,
    /// The run accepted monitors that were not active (`--allow-degraded`): every sink says
    /// DEGRADED, and the verdict rests only on what the active monitors saw.
    pub degraded: bool,
    /// The signal that interrupted the audit (`SIGINT`, `SIGTERM`), when one did.
    pub interrupted: Option<String>,
    /// How the pipeline died during the audit, when it did.
    pub crash: Option<Crash>,
    /// Processes of the pipeline's tree that left it (a new session, a new parent) or outlived
    /// the stop; the harness killed them.
    pub orphans: Vec<Orphan>,
    /// The declared local services (`[[service]]`) whose folders were scanned at the end; left
    /// out when the configuration declares none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEntry>,
}

impl Default for Report {
    /// An empty report of this schema version, to be filled with `..Default::default()`.
    fn default() -> Self {
        Report {
            schema: SCHEMA_ID.to_owned(),
            verdict: Verdict::default(),
            summary: String::new(),
            provenance: Provenance::default(),
            monitors: Vec::new(),
            clauses: Vec::new(),
            findings: Vec::new(),
            scenarios: Vec::new(),
            waivers: Vec::new(),
            errors: Vec::new(),
            degraded: false,
            interrupted: None,
            crash: None,
            orphans: Vec::new(),
            services: Vec::new(),
        }
    }
}

/// The audit's overall verdict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every tested clause passed, every required monitor was active.
    #[default]
    Pass,
    /// At least one unwaived finding, failed clause or failed scenario.
    Fail,
    /// The evidence is not complete enough to judge (errors, or a required monitor missing).
    Incomplete,
}

impl Verdict {
    /// The verdict as written in the JSON (`pass`, `fail`, `incomplete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Incomplete => "incomplete",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the audit's inputs came from, digested so an auditor can check them months later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct Provenance {
    /// `traceless` version that produced the report.
    pub harness_version: String,
    /// Git commit of the harness, when built from a checkout.
    pub harness_commit: Option<String>,
    /// The command that started the pipeline under audit.
    pub pipeline_command: Vec<String>,
    /// SHA-256 of the pipeline's executable, when it is a file.
    pub pipeline_sha256: Option<String>,
    /// The audit configuration (`traceless.toml`).
    pub config: FileDigest,
    /// The policy text the clauses quote.
    pub policy: FileDigest,
    /// The clause map (`clauses.toml`).
    pub clause_map: FileDigest,
    /// Every scenario file that was run.
    pub scenarios: Vec<FileDigest>,
    /// Seed of the property cases; `--seed` replays them.
    pub seed: u64,
    /// Number of property cases drawn.
    pub cases: u32,
    /// Start of the audit, RFC 3339.
    pub started_at: String,
    /// Wall-clock duration of the audit.
    pub duration_ms: u64,
    /// Kernel release of the machine (monitors depend on it).
    pub kernel: String,
    /// Whether the audit ran with `--ci` (degraded required monitors make it incomplete).
    pub ci: bool,
    /// The part of a sharded audit this report covers (`--shard k/n`); absent for a whole audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The evidence file(s) behind the report (`evidence.jsonl`: every request, provider call
    /// and monitor event, one JSON record a line), with their digests: one for an audit, one per
    /// shard for a merged report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<FileDigest>,
    /// The shard reports a merged report was made from (`traceless report --merge`), each with
    /// its digest; absent for a report an audit wrote.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<FileDigest>,
}

/// One part of a sharded audit: part `index` of `count`, counted from 1 (`--shard 2/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole audit as one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether the work at `position` (a scenario's place in the audit's list, or a property
    /// case's number) belongs to this shard. Positions are dealt round the shards from an
    /// offset the seed picks, so every shard of a seed gets its share and no work is in two.
    pub fn owns(self, position: u64, seed: u64) -> bool {
        let count = u64::from(self.count.max(1));
        (position % count + seed % count) % count == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `k/n` with `1 <= k <= n`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard: expected k/n with 1 <= k <= n, e.g. 2/3");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// A file and its SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct FileDigest {
    /// The path as given to the harness.
    pub path: String,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

/// The states a monitor can be in (the values of [`MonitorEntry::state`]).
pub const MONITOR_STATES: [&str; 3] = ["active", "degraded", "unavailable"];

/// One monitor and whether it could watch what it is meant to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct MonitorEntry {
    /// `filesystem`, `syscall`, `egress`, `logs`, `memory`, `process-tree`, ...
    pub name: String,
    /// `active`, `degraded` or `unavailable` (see [`MONITOR_STATES`]).
    pub state: String,
    /// Why the monitor is not fully active.
    pub reason: Option<String>,
    /// Whether the audit cannot be judged without it (under `--ci`).
    pub required: bool,
}

impl MonitorEntry {
    /// Whether the monitor watched everything it is meant to.
    pub fn is_active(&self) -> bool {
        self.state == "active"
    }
}

/// The verdict on one policy clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ClauseVerdict {
    /// Every check of the clause ran and found nothing.
    #[default]
    Pass,
    /// At least one unwaived finding breaks the clause.
    Fail,
    /// No check verifies the clause; never counted as passed.
    NotTested,
    /// Every finding against the clause is waived, or the clause itself is.
    Waived,
}

impl ClauseVerdict {
    /// The verdict as written in the JSON (`pass`, `fail`, `not-tested`, `waived`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClauseVerdict::Pass => "pass",
            ClauseVerdict::Fail => "fail",
            ClauseVerdict::NotTested => "not-tested",
            ClauseVerdict::Waived => "waived",
        }
    }
}

impl std::fmt::Display for ClauseVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One clause of the clause map and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct ClauseResult {
    /// Unique id from the clause map, e.g. `2c-no-sharing`.
    pub id: String,
    /// The policy's numbering: `1`, `2a`, ..., `9`.
    pub section: String,
    /// Short title, e.g. "Third-party sharing".
    pub title: String,
    /// The exact sentence of the policy the clause tests.
    pub sentence: String,
    /// The verdict.
    pub verdict: ClauseVerdict,
    /// The finding kinds that verify the clause (empty when not tested).
    pub checks: Vec<String>,
    /// Ids of the findings against the clause (`F1`, ...), waived ones included.
    pub findings: Vec<String>,
    /// Why the clause is not tested, or why it was waived.
    pub reason: Option<String>,
}

/// Something the pipeline did that breaks the policy, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// `F1`, `F2`, ... in report order.
    pub id: String,
    /// The finding kind, e.g. `disk-persistence`.
    pub kind: String,
    /// Stable diagnostic code of the kind, e.g. `TL-DISK-001`.
    pub code: String,
    /// One sentence saying what happened.
    pub summary: String,
    /// Ids of the clauses it breaks.
    pub clauses: Vec<String>,
    /// The scenario during which it was seen.
    pub scenario: Option<String>,
    /// The request (within the scenario) whose data leaked.
    pub request: Option<u32>,
    /// What was seen, where and when.
    pub evidence: Vec<EvidenceItem>,
    /// The waiver's justification, when the finding is waived.
    pub waiver: Option<String>,
}

impl Finding {
    /// Whether a waiver covers the finding.
    pub fn is_waived(&self) -> bool {
        self.waiver.is_some()
    }
}

/// One piece of evidence: an observation a reader can check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct EvidenceItem {
    /// `file`, `log`, `syscall`, `connect`, `dns`, `memory`, `provider-request`, `response`, `process`.
    pub source: String,
    /// Milliseconds since the audit started.
    pub at_ms: Option<u64>,
    /// The process that did it.
    pub pid: Option<u32>,
    /// Where: a path, `stderr@offset`, an address, a mapping, a request path.
    pub location: String,
    /// What was seen, in words.
    pub detail: String,
    /// How the canary was encoded where it was found (`raw`, `base64`, ...).
    pub encoding: Option<String>,
    /// How many bytes of the haystack matched.
    pub matched_bytes: Option<u64>,
    /// A short, already escaped excerpt of the match (never the whole image).
    pub excerpt: Option<String>,
}

/// One scenario and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct ScenarioResult {
    /// Scenario id (the file is `scenarios/<id>.toml`; property cases carry their case number).
    pub id: String,
    /// What the scenario does.
    pub title: String,
    /// The policy sections it exercises.
    pub clauses: Vec<String>,
    /// `pass`: every request was sent, got its expected answer, and no unwaived finding was seen
    /// in it; `not-run`: nothing was sent; `incomplete`: some requests were never sent.
    pub outcome: ScenarioOutcome,
    /// Requests of the scenario that were never sent (the run was interrupted or the pipeline died).
    pub requests_not_sent: u32,
    /// Each request sent.
    pub requests: Vec<RequestResult>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// Property cases only: the requests of passing cases, counted instead of listed (their
    /// rows and timelines are in the evidence file). Requests of failing cases and requests a
    /// finding names keep their rows above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passing: Option<PassingRequests>,
}

/// The requests of passing property cases, aggregated: what was drawn, what came back, how long
/// it took. Every field adds up across shards, so merged shards give the unsharded figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct PassingRequests {
    /// How many requests.
    pub requests: u32,
    /// Requests per provider.
    pub providers: std::collections::BTreeMap<String, u32>,
    /// Requests per scripted provider behaviour (`ok`, `429,ok`, ...).
    pub behaviours: std::collections::BTreeMap<String, u32>,
    /// Requests per answered status (`none`: no answer).
    pub statuses: std::collections::BTreeMap<String, u32>,
    /// Requests per duration bucket: the key is the bucket's upper bound in milliseconds
    /// (`le-10`, `le-100`, ..., `gt-10000`).
    pub durations: std::collections::BTreeMap<String, u32>,
    /// The sum of their durations, for the mean.
    pub total_ms: u64,
    /// The longest.
    pub max_ms: u64,
    /// A fingerprint of every (request id, provider, behaviour, status): the wrapping sum of each
    /// one's hash, 16 hex digits, so two runs drew and got the same exactly when it is equal
    /// (and shards add up to the unsharded figure).
    pub fingerprint: String,
}

impl PassingRequests {
    /// The duration buckets' upper bounds, in milliseconds.
    pub const BUCKETS: [u64; 6] = [10, 50, 100, 500, 1_000, 10_000];

    /// The bucket a duration falls in.
    pub fn bucket(ms: u64) -> String {
        Self::BUCKETS
            .iter()
            .find(|&&b| ms <= b)
            .map_or_else(|| "gt-10000".to_owned(), |b| format!("le-{b}"))
    }

    /// Adds another aggregate to this one.
    pub fn add(&mut self, other: &PassingRequests) {
        self.requests += other.requests;
        for (mine, theirs) in [
            (&mut self.providers, &other.providers),
            (&mut self.behaviours, &other.behaviours),
            (&mut self.statuses, &other.statuses),
            (&mut self.durations, &other.durations),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += v;
            }
        }
        self.total_ms += other.total_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
        let sum = u64::from_str_radix(&self.fingerprint, 16)
            .unwrap_or(0)
            .wrapping_add(u64::from_str_radix(&other.fingerprint, 16).unwrap_or(0));
        self.fingerprint = format!("{sum:016x}");
    }
}

/// How a scenario went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioOutcome {
    /// Every request was sent and answered as expected; no unwaived finding in it.
    #[default]
    Pass,
    /// A request got an unexpected answer, or an unwaived finding was seen in it.
    Fail,
    /// Some requests were never sent: the scenario was not fully exercised.
    Incomplete,
    /// No request was sent: nothing was exercised. Never counted as passed.
    NotRun,
}

impl ScenarioOutcome {
    /// The outcome as written in the JSON (`pass`, `fail`, `incomplete`, `not-run`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioOutcome::Pass => "pass",
            ScenarioOutcome::Fail => "fail",
            ScenarioOutcome::Incomplete => "incomplete",
            ScenarioOutcome::NotRun => "not-run",
        }
    }
}

impl std::fmt::Display for ScenarioOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the pipeline died during the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct Crash {
    /// `exit status 3`, `killed by signal 11 (SIGSEGV)`.
    pub status: String,
    /// Milliseconds since the audit started when the harness saw it dead.
    pub at_ms: u64,
    /// The requests in flight when it died.
    pub in_flight: Vec<u32>,
    /// The scenario that was running.
    pub scenario: Option<String>,
    /// The last bytes it wrote to stderr.
    pub stderr_tail: String,
}

/// A process that left the pipeline's tree or outlived its stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct Orphan {
    pub pid: u32,
    /// Its command line.
    pub argv: Vec<String>,
    /// What it did: left the session, was re-parented, outlived the stop.
    pub detail: String,
    /// The scenario whose requests it outlived, when it was found while the audit ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The requests that had been answered when it was first found (it outlived them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<u32>,
}

/// A declared local service and what of its folder was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceEntry {
    pub name: String,
    /// Its data folder (the `{data_dir}` it was given), made for the audit and removed after it.
    pub data_dir: String,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
}

/// One request a scenario sent to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct RequestResult {
    /// Request number within the scenario.
    pub id: u32,
    /// `openai` or `gemini`.
    pub provider: String,
    /// What the mock provider was scripted to do (`ok`, `429`, ...).
    pub provider_behaviour: Vec<String>,
    /// How the client behaved (`normal`, `disconnect-upload`, ...).
    pub client: String,
    /// Whether the request confirmed the user's age.
    pub age_confirmed: bool,
    /// The status the pipeline answered (none when the client disconnected).
    pub status: Option<u16>,
    /// The status the scenario expects.
    pub expected_status: Option<u16>,
    /// From sending the request to the end of the answer.
    pub duration_ms: u64,
    /// Anything worth saying about it (error code, why it failed).
    pub note: Option<String>,
}

/// One line of a scenario's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct TimelineEntry {
    /// Milliseconds since the audit started.
    pub t_ms: u64,
    /// Who saw it: `client`, `mock`, a monitor name, `check`.
    pub source: String,
    /// What happened.
    pub what: String,
    /// The request it belongs to.
    pub request: Option<u32>,
}

/// A waiver from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct WaiverEntry {
    /// A finding kind or a clause id.
    pub target: String,
    /// Why the finding is accepted.
    pub justification: String,
    /// Date (RFC 3339 `YYYY-MM-DD`) after which the waiver no longer applies.
    pub expires: String,
    /// Whether it had expired when the audit ran (an expired waiver waives nothing).
    pub expired: bool,
    /// Whether it waived at least one finding.
    pub used: bool,
}
