//! Two sample reports for tests, ours and other crates': a passing audit, and a failing one with
//! findings of several kinds, a waived finding, not-tested clauses, a degraded monitor and an
//! expired waiver. Both carry real machine-specific values (start time, kernel, temp paths,
//! ports) so snapshot tests must go through [`crate::redact`].

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{
    ClauseResult, ClauseVerdict, Crash, EvidenceItem, FileDigest, Finding, MonitorEntry, Orphan,
    Provenance, Report, RequestResult, SCHEMA_ID, ScenarioOutcome, ScenarioResult, ServiceEntry,
    TimelineEntry, Verdict, WaiverEntry,
};

/// One clause of the map: (id, section, title, sentence, checks or the reason it is not tested).
type ClauseRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Result<&'static [&'static str], &'static str>,
);

/// The clause map of the reference policy.
const CLAUSES: [ClauseRow; 14] = [
    (
        "1-no-personal-data",
        "1",
        "No personal data collected or stored",
        "We do not collect or store any personal data from our users, including face data.",
        Ok(&[
            "disk-persistence",
            "log-leak",
            "personal-data",
            "cross-request-leak",
        ]),
    ),
    (
        "2a-no-face-extraction",
        "2a",
        "Face data not extracted",
        "However, we do not specifically collect, extract, or store face data separately from the images you upload.",
        Err(
            "what the pipeline computes from a face in memory is not observable from outside; storing it is covered by 1 and 2d",
        ),
    ),
    (
        "2b-sole-purpose",
        "2b",
        "Face data used for generation only",
        "The face data is processed in real-time and is not used for any other purpose, including but not limited to facial recognition, identification, or tracking.",
        Err(
            "use for recognition inside a provider cannot be observed; sending it anywhere else is covered by 2c",
        ),
    ),
    (
        "2c-no-sharing",
        "2c",
        "Third-party sharing",
        "Face data is not shared with any third parties.",
        Ok(&[
            "unlisted-egress",
            "wrong-recipient",
            "personal-data",
            "cross-request-leak",
            "provider-retention",
        ]),
    ),
    (
        "2d-no-retention",
        "2d",
        "Storage and retention",
        "Face data is not stored on our servers.",
        Ok(&["disk-persistence", "log-leak", "memory-retention"]),
    ),
    (
        "3-deleted-after-processing",
        "3",
        "Deleted after processing",
        "All processing is done in real-time and images are deleted after processing",
        Ok(&["disk-persistence", "memory-retention"]),
    ),
    (
        "4a-processing",
        "4a",
        "Processing purpose",
        "Images are processed using AI models to generate new images based on your input.",
        Err("a statement of purpose with nothing observable to check"),
    ),
    (
        "4b-memory-only",
        "4b",
        "Held in memory only",
        "Images are temporarily held in memory only during the processing period and are automatically deleted afterward.",
        Ok(&["disk-persistence", "log-leak", "memory-retention"]),
    ),
    (
        "4c-no-access",
        "4c",
        "No access to saved images",
        "Any images you choose to save are stored locally on your device only, and we have no access to these saved images.",
        Ok(&["cross-request-leak", "public-exposure"]),
    ),
    (
        "5-listed-providers",
        "5",
        "Listed third-party services only",
        "We use the following third-party services for image processing:",
        Ok(&["unlisted-egress"]),
    ),
    (
        "6-encrypted-transport",
        "6",
        "Encrypted transmission",
        "All data transmission is encrypted using industry-standard protocols.",
        Ok(&["insecure-transport", "public-exposure"]),
    ),
    (
        "7-no-children",
        "7",
        "Children under 13",
        "We do not knowingly collect or process any information from children under 13.",
        Ok(&["child-data"]),
    ),
    (
        "8-policy-updates",
        "8",
        "Policy updates",
        "When we do, we will post the new policy on our website and update the effective date.",
        Err("a promise about how the policy is published, not about the backend"),
    ),
    (
        "9-contact",
        "9",
        "Contact",
        "If you have any questions about this Privacy Policy or our image processing practices, please contact us at contact@anummian.com",
        Err("contact details, not a behaviour"),
    ),
];

/// A passing audit of the reference pipeline: every tested clause passes, every monitor is active.
pub fn passing() -> Report {
    let scenarios = vec![
        scenario(
            "openai-ok",
            "OpenAI generates an image: nothing is kept",
            &["1", "2c", "2d", "3", "4b", "5", "6"],
            vec![request(
                1,
                "openai",
                &["ok"],
                true,
                Some(200),
                Some(200),
                812,
                None,
            )],
            happy_timeline(1, "openai", 200),
        ),
        scenario(
            "gemini-safety-block",
            "Gemini blocks the prompt: the client gets content_refused, nothing is kept",
            &["1", "2c", "2d"],
            vec![request(
                1,
                "gemini",
                &["safety-block"],
                true,
                Some(422),
                Some(422),
                433,
                Some("content_refused"),
            )],
            happy_timeline(1, "gemini", 422),
        ),
        scenario(
            "child-no-age-confirmation",
            "No age confirmation: refused before anything is processed",
            &["7"],
            vec![request(
                1,
                "openai",
                &["ok"],
                false,
                Some(403),
                Some(403),
                12,
                Some("age_confirmation_required"),
            )],
            vec![
                tl(
                    10_010,
                    "client",
                    "POST /v1/generations age_confirmed omitted",
                    Some(1),
                ),
                tl(
                    10_022,
                    "client",
                    "answer 403 age_confirmation_required",
                    Some(1),
                ),
            ],
        ),
    ];
    finish(Vec::new(), scenarios, monitors(false), Vec::new(), 1_000)
}

/// An audit cut short: the pipeline died in the second scenario with a request in flight, so
/// the third was never sent; a daemon it started left its session; the run accepted a memory
/// monitor that never scanned (`--allow-degraded`). Incomplete, never a pass.
pub fn cut_short() -> Report {
    let mut report = passing();
    let last = report
        .scenarios
        .last_mut()
        .expect("passing() has scenarios");
    last.requests.clear();
    last.timeline.clear();
    last.outcome = ScenarioOutcome::NotRun;
    last.requests_not_sent = 1;
    report.crash = Some(Crash {
        status: "killed by SIGSEGV".into(),
        at_ms: 10_480,
        in_flight: vec![1],
        scenario: Some("gemini-safety-block".into()),
        stderr_tail: "INFO request 1 accepted\nFatal Python error: Segmentation fault\n```\n"
            .into(),
    });
    report.orphans = vec![Orphan {
        pid: 4711,
        argv: vec![
            "python3".into(),
            "-c".into(),
            "import time; time.sleep(600)".into(),
        ],
        detail: "left the pipeline's session (setsid), started at 1200 ms; found at 1350 ms, \
                 once request 1 of scenario openai-ok had been answered; still running at \
                 the stop, and killed there"
            .into(),
        scenario: Some("openai-ok".into()),
        requests: vec![1],
    }];
    report.degraded = true;
    for m in &mut report.monitors {
        if m.name == "memory" {
            m.state = "unavailable".into();
            m.reason = Some("no memory scan of the pipeline's tree completed".into());
            m.required = false;
        }
    }
    report.verdict = report.derived_verdict();
    report.summary = report.summary_line();
    report
}

/// A failing audit: disk persistence, a log leak, unlisted egress, memory retention and child
/// data; a waived insecure-transport finding; clauses not tested; the syscall monitor degraded;
/// an expired waiver that waives nothing; a declared database whose folder was read.
pub fn failing() -> Report {
    let tmp = audit_tmp();
    let upload = tmp
        .join("pipeline-tmp/upload-2.png")
        .to_string_lossy()
        .into_owned();
    let findings = vec![
        finding(
            "log-leak",
            "TL-LOG-001",
            "Request 1's prompt and image (base64) reached the pipeline's stderr",
            Some(("openai-ok", 1)),
            vec![
                EvidenceItem {
                    source: "log".into(),
                    at_ms: Some(2_311),
                    pid: Some(4_242),
                    location: "stderr@4096".into(),
                    detail: "debug line of the request body".into(),
                    encoding: Some("base64".into()),
                    matched_bytes: Some(24_576),
                    excerpt: Some(r#"body=<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAGAAAABA | user=tl-dev-9c1e0b7a44d2f6e3"#.into()),
                },
                EvidenceItem {
                    source: "log".into(),
                    at_ms: Some(2_312),
                    pid: Some(4_242),
                    location: "stderr@28790".into(),
                    detail: "the prompt canary, verbatim".into(),
                    encoding: Some("raw".into()),
                    matched_bytes: Some(16),
                    excerpt: Some("prompt=\"Turn this into a watercolour tlp-3f9a0c2b7d1e\" `*bold*`".into()),
                },
            ],
        ),
        finding(
            "disk-persistence",
            "TL-DISK-001",
            "Request 2's image was written to disk and deleted 3 ms later",
            Some(("openai-ok", 2)),
            vec![
                EvidenceItem {
                    source: "syscall".into(),
                    at_ms: Some(3_104),
                    pid: Some(4_251),
                    location: upload.clone(),
                    detail: "openat(O_WRONLY|O_CREAT|O_TRUNC) = 7".into(),
                    encoding: None,
                    matched_bytes: None,
                    excerpt: None,
                },
                EvidenceItem {
                    source: "file".into(),
                    at_ms: Some(3_105),
                    pid: Some(4_251),
                    location: upload,
                    detail: "18 342-byte file, read before it was unlinked".into(),
                    encoding: Some("raw".into()),
                    matched_bytes: Some(18_342),
                    excerpt: Some(r"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00`\x00\x00\x00@\x08\x06".into()),
                },
            ],
        ),
        finding(
            "unlisted-egress",
            "TL-EGRESS-001",
            "The pipeline looked up and tried to reach an analytics host at start-up",
            None,
            vec![
                EvidenceItem {
                    source: "dns".into(),
                    at_ms: Some(412),
                    pid: Some(4_242),
                    location: "telemetry.imagegen-analytics.test".into(),
                    detail: "A query, answered NXDOMAIN by the audit's resolver".into(),
                    ..Default::default()
                },
                EvidenceItem {
                    source: "connect".into(),
                    at_ms: Some(415),
                    pid: Some(4_242),
                    location: "198.51.100.23:443".into(),
                    detail: "connect() = -ENETUNREACH (isolated namespace)".into(),
                    ..Default::default()
                },
            ],
        ),
        finding(
            "memory-retention",
            "TL-MEM-001",
            "Request 1's image was still in the pipeline's heap 500 ms after its answer",
            Some(("openai-rate-limited", 1)),
            vec![EvidenceItem {
                source: "memory".into(),
                at_ms: Some(6_930),
                pid: Some(4_242),
                location: "[heap] 0x55d0c8a41000".into(),
                detail: "retry buffer of the OpenAI client, not wiped after the 429".into(),
                encoding: Some("base64".into()),
                matched_bytes: Some(65_536),
                excerpt: Some("iVBORw0KGgoAAAANSUhEUgAAAGAAAABACAYAAADqQzJ0AAAgAElEQVR4nOy9".into()),
            }],
        ),
        finding(
            "child-data",
            "TL-CHILD-001",
            "A request with age_confirmed=false was sent on to OpenAI",
            Some(("child-no-age-confirmation", 1)),
            vec![EvidenceItem {
                source: "provider-request".into(),
                at_ms: Some(10_031),
                pid: None,
                location: format!("POST https://127.0.0.1:{}/v1/images/edits", mock_port()),
                detail: "multipart image part of 14 210 bytes, model gpt-image-1".into(),
                encoding: Some("raw".into()),
                matched_bytes: Some(14_210),
                excerpt: Some(r"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01".into()),
            }],
        ),
        Finding {
            waiver: Some("Staging profile talks plaintext to in-cluster mocks; production refuses plaintext URLs (SEC-142)".into()),
            ..finding(
                "insecure-transport",
                "TL-TLS-001",
                "Plaintext provider URLs were accepted because TRACELESS_ALLOW_PLAINTEXT_PROVIDERS=1 is set",
                None,
                vec![EvidenceItem {
                    source: "process".into(),
                    at_ms: Some(96),
                    pid: Some(4_242),
                    location: "environment".into(),
                    detail: "started with OPENAI_BASE_URL=http://… and the plaintext switch on".into(),
                    ..Default::default()
                }],
            )
        },
    ];
    let scenarios = vec![
        scenario(
            "openai-ok",
            "OpenAI generates an image: nothing is kept",
            &["1", "2c", "2d", "3", "4b", "5", "6"],
            vec![
                request(1, "openai", &["ok"], true, Some(200), Some(200), 804, None),
                request(2, "openai", &["ok"], true, Some(200), Some(200), 911, None),
            ],
            {
                let mut t = happy_timeline(1, "openai", 200);
                t.extend(happy_timeline(2, "openai", 200));
                t.push(tl(
                    2_311,
                    "logs",
                    "stderr: canary of request 1 (base64, 24 576 B)",
                    Some(1),
                ));
                t.push(tl(
                    3_104,
                    "filesystem",
                    "upload-2.png created, 18 342 B, deleted after 3 ms",
                    Some(2),
                ));
                t
            },
        ),
        scenario(
            "gemini-safety-block",
            "Gemini blocks the prompt: the client gets content_refused, nothing is kept",
            &["1", "2c", "2d"],
            vec![request(
                1,
                "gemini",
                &["safety-block"],
                true,
                Some(422),
                Some(422),
                433,
                Some("content_refused"),
            )],
            happy_timeline(1, "gemini", 422),
        ),
        scenario(
            "openai-rate-limited",
            "OpenAI answers 429: the client gets rate_limited with Retry-After, nothing is kept",
            &["1", "2d", "4b"],
            vec![request(
                1,
                "openai",
                &["429"],
                true,
                Some(429),
                Some(429),
                57,
                Some("rate_limited, Retry-After: 7"),
            )],
            vec![
                tl(
                    6_370,
                    "client",
                    "POST /v1/generations (png 96×64, EXIF)",
                    Some(1),
                ),
                tl(6_402, "mock", "openai 429 retry-after 7", Some(1)),
                tl(6_427, "client", "answer 429 rate_limited", Some(1)),
                tl(
                    6_930,
                    "memory",
                    "heap of pid 4242 still holds the image (base64)",
                    Some(1),
                ),
            ],
        ),
        scenario(
            "child-no-age-confirmation",
            "No age confirmation: refused before anything is processed",
            &["7"],
            vec![request(
                1,
                "openai",
                &["ok"],
                false,
                Some(200),
                Some(403),
                640,
                Some("expected age_confirmation_required"),
            )],
            vec![
                tl(
                    10_010,
                    "client",
                    "POST /v1/generations age_confirmed omitted",
                    Some(1),
                ),
                tl(10_031, "mock", "openai POST /v1/images/edits", Some(1)),
                tl(10_650, "client", "answer 200 image/png", Some(1)),
            ],
        ),
        scenario(
            "property-case-0017",
            "Property case 17: gemini, faults [500, ok], concurrency 2",
            &["1", "2c", "2d", "4b"],
            vec![
                request(
                    1,
                    "gemini",
                    &["500", "ok"],
                    true,
                    Some(200),
                    Some(200),
                    1_210,
                    Some("retried once"),
                ),
                request(2, "gemini", &["ok"], true, Some(200), Some(200), 690, None),
            ],
            happy_timeline(1, "gemini", 200),
        ),
    ];
    let waivers = vec![
        WaiverEntry {
            target: "insecure-transport".into(),
            justification: "Staging profile talks plaintext to in-cluster mocks; production refuses plaintext URLs (SEC-142)".into(),
            expires: "2027-03-01".into(),
            expired: false,
            used: true,
        },
        WaiverEntry {
            target: "log-leak".into(),
            justification: "Debug logging during the migration <b>only</b>".into(),
            expires: "2026-06-30".into(),
            expired: true,
            used: false,
        },
        WaiverEntry {
            target: "4c-no-access".into(),
            justification: "Export endpoint under review".into(),
            expires: "2027-01-15".into(),
            expired: false,
            used: false,
        },
    ];
    let mut report = finish(findings, scenarios, monitors(true), waivers, 12);
    // The database the backend declared: its folder was read whole, and held nothing.
    report.services = vec![ServiceEntry {
        name: "postgresql".into(),
        data_dir: tmp
            .join("services/postgresql/data")
            .to_string_lossy()
            .into_owned(),
        files_scanned: 972,
        bytes_scanned: 40_554_496,
    }];
    report
}

/// Builds the clauses from the clause map and the findings (as the harness's judging does),
/// numbers the findings, and fills in provenance, verdict and summary.
fn finish(
    mut findings: Vec<Finding>,
    mut scenarios: Vec<ScenarioResult>,
    monitors: Vec<MonitorEntry>,
    waivers: Vec<WaiverEntry>,
    seed: u64,
) -> Report {
    for (n, f) in findings.iter_mut().enumerate() {
        f.id = format!("F{}", n + 1);
        f.clauses = CLAUSES
            .iter()
            .filter(|(.., checks)| checks.is_ok_and(|c| c.contains(&f.kind.as_str())))
            .map(|(id, ..)| (*id).to_owned())
            .collect();
    }
    for s in &mut scenarios {
        if findings
            .iter()
            .any(|f| f.scenario.as_deref() == Some(s.id.as_str()) && !f.is_waived())
        {
            s.outcome = ScenarioOutcome::Fail;
        }
        s.timeline.sort_by_key(|t| t.t_ms);
    }
    let clauses = CLAUSES
        .iter()
        .map(|&(id, section, title, sentence, checks)| {
            let against: Vec<&Finding> = findings
                .iter()
                .filter(|f| f.clauses.iter().any(|c| c == id))
                .collect();
            let (verdict, reason) = match checks {
                Err(reason) => (ClauseVerdict::NotTested, Some(reason.to_owned())),
                Ok(_) if against.iter().any(|f| !f.is_waived()) => (ClauseVerdict::Fail, None),
                Ok(_) if !against.is_empty() => (
                    ClauseVerdict::Waived,
                    Some("every finding against it is waived".to_owned()),
                ),
                Ok(_) => (ClauseVerdict::Pass, None),
            };
            ClauseResult {
                id: id.to_owned(),
                section: section.to_owned(),
                title: title.to_owned(),
                sentence: sentence.to_owned(),
                verdict,
                checks: checks
                    .unwrap_or_default()
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect(),
                findings: against.iter().map(|f| f.id.clone()).collect(),
                reason,
            }
        })
        .collect();
    let mut report = Report {
        schema: SCHEMA_ID.to_owned(),
        verdict: Verdict::Pass,
        summary: String::new(),
        provenance: provenance(&scenarios, seed),
        monitors,
        clauses,
        findings,
        scenarios,
        waivers,
        errors: Vec::new(),
        ..Report::default()
    };
    report.verdict = report.derived_verdict();
    report.summary = report.summary_line();
    report
}

fn provenance(scenarios: &[ScenarioResult], seed: u64) -> Provenance {
    let digest = |path: &str, n: u8| FileDigest {
        path: path.to_owned(),
        sha256: format!("{n:02x}").repeat(32),
    };
    Provenance {
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        harness_commit: Some("4f2a9c1e7b3d5a8f0c6e2b9d1a7f3c5e8b0d4a6c".to_owned()),
        pipeline_command: vec!["target/release/traceless-pipeline".to_owned()],
        pipeline_sha256: Some(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned(),
        ),
        config: digest("traceless.toml", 0xc0),
        policy: digest("fixtures/policy/privacy-policy.txt", 0x9a),
        clause_map: digest("fixtures/policy/clauses.toml", 0x3e),
        scenarios: scenarios
            .iter()
            .filter(|s| !s.id.starts_with("property-case"))
            .enumerate()
            .map(|(n, s)| digest(&format!("scenarios/{}.toml", s.id), 0x10 + n as u8))
            .collect(),
        seed,
        cases: 256,
        started_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned()),
        duration_ms: 41_873,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned()),
        ci: true,
        shard: None,
        evidence: Vec::new(),
        merged_from: Vec::new(),
    }
}

fn monitors(syscall_degraded: bool) -> Vec<MonitorEntry> {
    let m = |name: &str, required: bool| MonitorEntry {
        name: name.into(),
        state: "active".into(),
        reason: None,
        required,
    };
    let mut syscall = m("syscall", false);
    if syscall_degraded {
        syscall.state = "degraded".into();
        syscall.reason = Some("seccomp-bpf filter refused; plain ptrace follows the main process only, forks may be missed".into());
    }
    vec![
        m("filesystem", true),
        syscall,
        m("egress", true),
        m("logs", true),
        m("memory", true),
        m("process-tree", true),
    ]
}

/// Where the audit's private temp directories would be: machine- and run-specific on purpose.
fn audit_tmp() -> PathBuf {
    std::env::temp_dir().join(format!("traceless-audit-{}", std::process::id()))
}

/// The mock's port: run-specific on purpose, as a real mock's ephemeral port is.
fn mock_port() -> u32 {
    30_000 + std::process::id() % 20_000
}

fn finding(
    kind: &str,
    code: &str,
    summary: &str,
    at: Option<(&str, u32)>,
    evidence: Vec<EvidenceItem>,
) -> Finding {
    Finding {
        id: String::new(),
        kind: kind.into(),
        code: code.into(),
        summary: summary.into(),
        clauses: Vec::new(),
        scenario: at.map(|(s, _)| s.to_owned()),
        request: at.map(|(_, r)| r),
        evidence,
        waiver: None,
    }
}

fn scenario(
    id: &str,
    title: &str,
    clauses: &[&str],
    requests: Vec<RequestResult>,
    timeline: Vec<TimelineEntry>,
) -> ScenarioResult {
    // Findings are judged later (see `finish`); here only the answers count.
    let answered_right = requests
        .iter()
        .all(|r| r.expected_status.is_none() || r.status == r.expected_status);
    ScenarioResult {
        id: id.into(),
        title: title.into(),
        clauses: clauses.iter().map(|c| (*c).to_owned()).collect(),
        outcome: if answered_right {
            ScenarioOutcome::Pass
        } else {
            ScenarioOutcome::Fail
        },
        requests_not_sent: 0,
        requests,
        timeline,
        passing: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn request(
    id: u32,
    provider: &str,
    behaviour: &[&str],
    age_confirmed: bool,
    status: Option<u16>,
    expected_status: Option<u16>,
    duration_ms: u64,
    note: Option<&str>,
) -> RequestResult {
    RequestResult {
        id,
        provider: provider.into(),
        provider_behaviour: behaviour.iter().map(|b| (*b).to_owned()).collect(),
        client: "normal".into(),
        age_confirmed,
        status,
        expected_status,
        duration_ms,
        note: note.map(Into::into),
    }
}

fn tl(t_ms: u64, source: &str, what: &str, request: Option<u32>) -> TimelineEntry {
    TimelineEntry {
        t_ms,
        source: source.into(),
        what: what.into(),
        request,
    }
}

/// The events of one request that went well, as the harness records them.
fn happy_timeline(request: u32, provider: &str, status: u16) -> Vec<TimelineEntry> {
    let base = 1_000 * u64::from(request) + if provider == "gemini" { 4_000 } else { 1_000 };
    let r = Some(request);
    let port = mock_port();
    let path = if provider == "gemini" {
        "/v1beta/models/gemini-2.5-flash-image:generateContent"
    } else {
        "/v1/images/edits"
    };
    vec![
        tl(
            base,
            "client",
            "POST /v1/generations (png 96×64, EXIF with GPS)",
            r,
        ),
        tl(base + 3, "syscall", "accept4 on 127.0.0.1:8080", r),
        tl(
            base + 41,
            "mock",
            &format!("{provider} POST https://127.0.0.1:{port}{path}, TLS, metadata stripped"),
            r,
        ),
        tl(
            base + 42,
            "egress",
            &format!("connect 127.0.0.1:{port} (listed provider)"),
            r,
        ),
        tl(
            base + 690,
            "mock",
            &format!("{provider} answered {status}"),
            r,
        ),
        tl(base + 702, "client", &format!("answer {status}"), r),
        tl(
            base + 1_202,
            "memory",
            "scan after grace: 3 processes, no canary",
            r,
        ),
    ]
}
