//! Every check fires on evidence of its violation and stays quiet on clean evidence.

use std::path::PathBuf;

use traceless_evidence::events::{Event, EventKind, MonitorKind, MonitorState, MonitorStatus};
use traceless_evidence::hit::{Encoding, Hit, NeedleId, SourceForm, Subject};
use traceless_evidence::provider::{Behaviour, Endpoint, Provider, RecordedRequest};

use super::*;
use crate::evidence::{ExposureProbe, PlaintextProbe, ProbeOutcome, ProviderCall, SentRequest};
use crate::plan::{Age, ClientBehaviour};

pub(crate) fn hit(request: u32, subject: Subject) -> Hit {
    Hit {
        needle: NeedleId { request, subject },
        encoding: Encoding::Base64,
        offset: 10,
        len: 400,
        source_offset: 0,
        source_len: 300,
        form: SourceForm::Bytes,
    }
}

pub(crate) fn event(kind: EventKind) -> Event {
    Event {
        t_ms: 5,
        monitor: MonitorKind::Filesystem,
        pid: Some(42),
        kind,
    }
}

pub(crate) fn request(id: u32, provider: &str, age: Age) -> SentRequest {
    SentRequest {
        id,
        scenario: format!("s{id}"),
        provider: provider.into(),
        age,
        behaviour: vec!["ok".into()],
        client: ClientBehaviour::Normal,
        expected_status: Some(200),
        status: Some(200),
        started_ms: 0,
        ended_ms: 100,
        response_bytes: 0,
        response_hits: Vec::new(),
        error: None,
        had_metadata: false,
        shared_prompt: false,
    }
}

pub(crate) fn call(provider: Provider, endpoint: Endpoint, carried: &[u32]) -> ProviderCall {
    ProviderCall {
        recorded: RecordedRequest {
            seq: 1,
            at: std::time::SystemTime::UNIX_EPOCH,
            provider,
            tls: true,
            method: "POST".into(),
            path: "/v1/images/edits".into(),
            query: None,
            headers: Vec::new(),
            body: Vec::new(),
            endpoint,
            model: Some("gpt-image-1".into()),
            user: None,
            store: None,
            images: Vec::new(),
            prompt: Some("p".into()),
            rejected: None,
            behaviour: Behaviour::Ok,
            status: 200,
            output_image: None,
            creates: None,
            continues: None,
        },
        body_bytes: 4096,
        image_metadata: vec![None],
        perceptual: Vec::new(),
        t_ms: 5,
        answered_ms: 6,
        carried_images_of: carried.to_vec(),
        attributed_to: carried.to_vec(),
        hits: Vec::new(),
    }
}

pub(crate) fn clean() -> Evidence {
    Evidence {
        requests: vec![
            SentRequest {
                response_bytes: 17,
                ..request(1, "openai", Age::Confirmed)
            },
            SentRequest {
                status: Some(403),
                ..request(2, "gemini", Age::Omitted)
            },
            SentRequest {
                started_ms: 200,
                ended_ms: 300,
                response_bytes: 17,
                ..request(3, "openai", Age::Confirmed)
            },
        ],
        provider_calls: vec![call(Provider::OpenAi, Endpoint::ImagesEdits, &[1])],
        events: vec![
            event(EventKind::FileWritten {
                path: "/tmp/x/cache.bin".into(),
                size: 10,
                hits: vec![],
                image_match: None,
            }),
            event(EventKind::Connect {
                address: "127.0.0.1:4443".into(),
                family: "inet".into(),
                result: "0".into(),
            }),
            event(EventKind::DnsQuery {
                name: "api.openai.com".into(),
                qtype: "A".into(),
                answered: true,
            }),
            event(EventKind::MemoryHits {
                mapping: "[heap]".into(),
                hits: vec![hit(0, Subject::ApiKey)],
            }),
        ],
        monitors: [
            MonitorKind::Filesystem,
            MonitorKind::Syscall,
            MonitorKind::Egress,
            MonitorKind::Logs,
            MonitorKind::Memory,
        ]
        .map(MonitorStatus::active)
        .into(),
        allowed_addresses: vec!["127.0.0.1:4443".into()],
        allowed_hosts: vec!["api.openai.com".into()],
        allowed_providers: vec!["openai".into(), "gemini".into()],
        memory_scans: vec![1_000],
        exposure_probed: true,
        mocks_tls: true,
        memory_grace_ms: 500,
        plaintext_probe: Some(PlaintextProbe {
            variables: vec!["OPENAI_BASE_URL".into()],
            outcome: ProbeOutcome::Refused {
                exit: "exit 2".into(),
            },
        }),
        ..Evidence::default()
    }
}

fn kinds(ev: &Evidence) -> Vec<&'static str> {
    let mut k: Vec<_> = run_all(ev).into_iter().map(|d| d.kind).collect();
    k.dedup();
    k
}

/// Applies `fault` to clean evidence and expects exactly the `expect` kinds.
fn check(fault: impl FnOnce(&mut Evidence), expect: &[&str]) {
    let mut ev = clean();
    fault(&mut ev);
    assert_eq!(kinds(&ev), expect);
}

#[test]
fn clean_evidence_has_no_finding() {
    assert!(kinds(&clean()).is_empty(), "{:?}", run_all(&clean()));
}

#[test]
fn each_check_fires_on_its_violation() {
    check(
        |ev| {
            ev.events.push(event(EventKind::FileWritten {
                path: "/tmp/u.png".into(),
                size: 900,
                hits: vec![hit(1, Subject::Image)],
                image_match: None,
            }))
        },
        &["disk-persistence"],
    );
    check(
        |ev| {
            ev.events.push(event(EventKind::Open {
                path: PathBuf::from("/var/tmp/u"),
                flags: "O_WRONLY|O_CREAT".into(),
                result: 3,
            }));
            ev.events.push(event(EventKind::FileVanished {
                path: PathBuf::from("/var/tmp/u"),
                size: None,
            }));
        },
        &["disk-persistence"],
    );
    check(
        |ev| {
            ev.events.push(event(EventKind::Output {
                stream: "stderr".into(),
                offset: 0,
                excerpt: "x".into(),
                hits: vec![hit(1, Subject::Prompt)],
            }))
        },
        &["log-leak"],
    );
    check(
        |ev| {
            ev.events.push(event(EventKind::FileWritten {
                path: "/w/app.log".into(),
                size: 9,
                hits: vec![hit(1, Subject::DeviceId)],
                image_match: None,
            }))
        },
        &["log-leak"],
    );
    check(
        |ev| {
            ev.events.push(event(EventKind::Connect {
                address: "127.0.0.1:9".into(),
                family: "inet".into(),
                result: "-1 ECONNREFUSED".into(),
            }))
        },
        &["unlisted-egress"],
    );
    check(
        |ev| {
            ev.events.push(event(EventKind::DnsQuery {
                name: "telemetry.example.invalid".into(),
                qtype: "A".into(),
                answered: false,
            }))
        },
        &["unlisted-egress"],
    );
    check(
        |ev| {
            ev.events.push(Event {
                t_ms: 700,
                ..event(EventKind::MemoryHits {
                    mapping: "[heap]".into(),
                    hits: vec![hit(1, Subject::Image)],
                })
            })
        },
        &["memory-retention"],
    );
    check(
        |ev| {
            ev.provider_calls
                .push(call(Provider::OpenAi, Endpoint::Responses, &[1]))
        },
        &["provider-retention"],
    );
    check(
        |ev| {
            ev.provider_calls
                .push(call(Provider::Gemini, Endpoint::FilesUpload, &[]))
        },
        &["provider-retention"],
    );
    check(
        |ev| {
            ev.provider_calls
                .push(call(Provider::Gemini, Endpoint::Interactions, &[]))
        },
        &["provider-retention"],
    );
    check(
        |ev| {
            let mut stored_not = call(Provider::Gemini, Endpoint::Interactions, &[]);
            stored_not.recorded.store = Some(false);
            ev.provider_calls.push(stored_not)
        },
        &[],
    );
    check(
        |ev| ev.provider_calls[0].recorded.user = Some("dev-1".into()),
        &["provider-retention"],
    );
    check(
        |ev| ev.provider_calls[0].hits.push(hit(1, Subject::DeviceId)),
        &["personal-data"],
    );
    check(
        |ev| ev.provider_calls[0].image_metadata[0] = Some("EXIF"),
        &["personal-data"],
    );
    check(
        |ev| ev.provider_calls[0].recorded.tls = false,
        &["insecure-transport"],
    );
    check(
        |ev| ev.plaintext_probe.as_mut().unwrap().outcome = ProbeOutcome::Accepted,
        &["insecure-transport"],
    );
    check(
        |ev| {
            ev.provider_calls
                .push(call(Provider::Gemini, Endpoint::GenerateContent, &[2]))
        },
        &["child-data"],
    );
    check(
        |ev| ev.provider_calls[0].recorded.provider = Provider::Gemini,
        &["wrong-recipient"],
    );
    check(
        |ev| ev.requests[0].response_hits.push(hit(2, Subject::Image)),
        &["cross-request-leak"],
    );
    check(
        |ev| {
            ev.exposure_probes.push(ExposureProbe {
                url: "/uploads/a.png".into(),
                status: 200,
                hits: vec![hit(1, Subject::Image)],
                what: "/w/uploads/a.png (written by the pipeline)".into(),
            })
        },
        &["public-exposure"],
    );
}

#[test]
fn files_no_traced_process_wrote_are_someone_else_s() {
    let mut ev = clean();
    ev.events.push(event(EventKind::FileVanished {
        path: PathBuf::from("/tmp/other"),
        size: None,
    }));
    ev.events.push(event(EventKind::FileWritten {
        path: "/tmp/other.log".into(),
        size: 9,
        hits: vec![hit(1, Subject::DeviceId)],
        image_match: None,
    }));
    ev.keep_own_files();
    assert!(kinds(&ev).is_empty(), "{:?}", run_all(&ev));
}

#[test]
fn memory_within_the_grace_period_is_allowed() {
    // Request 1 ended at 100 ms; the grace is 500 ms.
    check(
        |ev| {
            ev.events.push(Event {
                t_ms: 599,
                ..event(EventKind::MemoryHits {
                    mapping: "[heap]".into(),
                    hits: vec![hit(1, Subject::Image)],
                })
            })
        },
        &[],
    );
}

#[test]
fn own_data_in_own_answer_is_not_a_leak() {
    check(
        |ev| ev.requests[0].response_hits.push(hit(1, Subject::Output)),
        &[],
    );
}

#[test]
fn a_request_without_age_confirmation_that_was_processed_is_child_data() {
    check(|ev| ev.requests[1].status = Some(200), &["child-data"]);
}

#[test]
fn a_check_whose_monitor_is_missing_says_why() {
    let mut ev = clean();
    ev.monitors.retain(|m| m.monitor != MonitorKind::Memory);
    ev.monitors.push(MonitorStatus {
        monitor: MonitorKind::Memory,
        state: MonitorState::Unavailable,
        reason: Some("no ptrace".into()),
    });
    let reason = not_run_reason(kind("memory-retention").unwrap(), &ev).unwrap();
    assert!(reason.contains("no ptrace"), "{reason}");
    assert!(not_run_reason(kind("log-leak").unwrap(), &ev).is_none());
}

#[test]
fn every_kind_has_a_unique_code_and_clauses() {
    let mut codes: Vec<_> = KINDS.iter().map(|k| k.code).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), KINDS.len());
    let names: Vec<_> = kind_names().collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), KINDS.len(), "{names:?}");
}

#[test]
fn matched_bytes_are_the_union_of_ranges_never_more_than_the_file() {
    let at = |offset: u64, len: u64| Hit {
        offset,
        len,
        ..hit(1, Subject::Image)
    };
    // A 12,420-byte file matched whole as raw bytes and again, in part, as pixel rows.
    let hits = [at(0, 12_420), at(100, 12_235), at(20_000, 0)];
    assert_eq!(covered_bytes(&hits), 12_420);
    assert_eq!(covered_bytes(&[at(0, 10), at(20, 10), at(25, 10)]), 25);
    assert_eq!(covered_bytes(&[]), 0);
}

#[test]
fn clean_evidence_exercises_every_check() {
    let ev = clean();
    for k in KINDS {
        assert_eq!(not_run_reason(k, &ev), None, "{}", k.name);
    }
}

#[test]
fn a_check_the_run_never_exercised_says_why() {
    let ev = Evidence {
        requests: Vec::new(),
        provider_calls: Vec::new(),
        memory_scans: Vec::new(),
        exposure_probed: false,
        plaintext_probe: None,
        ..clean()
    };
    for (name, why) in [
        ("disk-persistence", "no request was answered"),
        ("log-leak", "no request was answered"),
        ("unlisted-egress", "no request was answered"),
        ("memory-retention", "no memory scan completed"),
        ("provider-retention", "no provider call was seen"),
        ("personal-data", "no provider call carried"),
        ("wrong-recipient", "no provider call carried"),
        ("insecure-transport", "no provider call over TLS"),
        (
            "child-data",
            "no request without age confirmation was answered",
        ),
        ("cross-request-leak", "0 request(s) answered with an image"),
        ("public-exposure", "not probed"),
    ] {
        let reason = not_run_reason(kind(name).unwrap(), &ev).unwrap_or_default();
        assert!(reason.contains(why), "{name}: {reason:?}");
    }
    // A memory scan before any request settled judges nothing.
    let early = Evidence {
        memory_scans: vec![50],
        ..clean()
    };
    let reason = not_run_reason(kind("memory-retention").unwrap(), &early).unwrap();
    assert!(reason.contains("a grace period after"), "{reason}");
    // No age gate: child data cannot be tested at all.
    let ungated = Evidence {
        no_age_gate: true,
        ..clean()
    };
    assert!(
        not_run_reason(kind("child-data").unwrap(), &ungated)
            .unwrap()
            .contains("no age gate")
    );
}

#[test]
fn the_plaintext_probe_must_conclude_for_transport_to_be_judged() {
    let skipped = Evidence {
        plaintext_probe: None,
        plaintext_probe_skipped: Some("refuses_plaintext_providers = false".into()),
        ..clean()
    };
    let reason = not_run_reason(kind("insecure-transport").unwrap(), &skipped).unwrap();
    assert!(
        reason.contains("did not run: refuses_plaintext_providers"),
        "{reason}"
    );
    let inconclusive = Evidence {
        plaintext_probe: Some(PlaintextProbe {
            variables: vec![],
            outcome: ProbeOutcome::Inconclusive("killed by SIGSEGV".into()),
        }),
        ..clean()
    };
    let reason = not_run_reason(kind("insecure-transport").unwrap(), &inconclusive).unwrap();
    assert!(
        reason.contains("inconclusive: killed by SIGSEGV"),
        "{reason}"
    );
}

#[test]
fn a_call_to_a_provider_the_policy_does_not_list_is_a_wrong_recipient() {
    check(
        |ev| ev.allowed_providers = vec!["gemini".into()],
        &["wrong-recipient"],
    );
    let mut ev = clean();
    ev.allowed_providers = vec!["gemini".into()];
    let drafts = run_all(&ev);
    assert!(
        drafts[0]
            .summary
            .contains("went to openai, which the policy does not list (allowed: gemini)"),
        "{}",
        drafts[0].summary
    );
}

/// A file written and removed unread, with what strace saw written through each descriptor.
fn vanished(size: Option<u64>, closes: &[u64]) -> Evidence {
    let mut ev = clean();
    let path = PathBuf::from("/var/tmp/tmpk3j2x9");
    for _ in 0..closes.len().max(1) {
        ev.events.push(event(EventKind::Open {
            path: path.clone(),
            flags: "O_RDWR|O_CREAT|O_EXCL".into(),
            result: 3,
        }));
    }
    for &written in closes {
        ev.events.push(event(EventKind::Closed {
            path: path.clone(),
            written,
        }));
    }
    ev.events
        .push(event(EventKind::FileVanished { path, size }));
    ev
}

#[test]
fn a_deleted_file_too_small_for_a_canary_is_no_finding() {
    // CPython's tempfile probe: "blat", 4 bytes, written and removed at once.
    for ev in [
        vanished(None, &[4]),
        vanished(Some(4), &[]),
        vanished(None, &[30, 33]),
    ] {
        assert!(kinds(&ev).is_empty(), "{:?}", run_all(&ev));
    }
    // 64 bytes could be a canary's copy; and a descriptor never seen closed could have held anything.
    for ev in [
        vanished(None, &[64]),
        vanished(None, &[30, 34]),
        vanished(None, &[]),
    ] {
        assert_eq!(kinds(&ev), ["disk-persistence"], "{:?}", run_all(&ev));
    }
}

#[test]
fn a_request_still_in_a_provider_call_is_not_judged_for_memory() {
    // Request 1 answered at 100 ms (the grace is 500 ms), but its provider call, scripted to time
    // out, is answered only at 2000 ms: the backend is still processing it until then.
    let memory_at = |t_ms: u64, ev: &mut Evidence| {
        ev.events.push(Event {
            t_ms,
            ..event(EventKind::MemoryHits {
                mapping: "[heap]".into(),
                hits: vec![hit(1, Subject::Image)],
            })
        });
    };
    let still_calling = |ev: &mut Evidence| ev.provider_calls[0].answered_ms = 2000;
    check(
        |ev| {
            still_calling(ev);
            memory_at(1200, ev);
        },
        &[],
    );
    let mut ev = clean();
    still_calling(&mut ev);
    memory_at(1200, &mut ev);
    assert_eq!(memory_retention::still_processing(&ev), [1]);
    check(
        |ev| {
            still_calling(ev);
            memory_at(2500, ev);
        },
        &["memory-retention"],
    );
    // Without the open call the same hit at 1200 ms is retention.
    check(|ev| memory_at(1200, ev), &["memory-retention"]);
    assert!(memory_retention::still_processing(&clean()).is_empty());
}

fn postgres(hits: Vec<(String, Vec<Hit>)>) -> crate::evidence::ServiceScan {
    crate::evidence::ServiceScan {
        name: "postgresql".into(),
        data_dir: "/t/services/postgresql/data".into(),
        files: 900,
        bytes: 40_000_000,
        hits,
        error: None,
    }
}

#[test]
fn a_canary_in_a_service_folder_is_service_retention_per_file_and_request() {
    let wal = "data/pg_wal/000000010000000000000001".to_owned();
    let mut ev = clean();
    ev.services = vec![postgres(vec![(
        wal,
        vec![
            hit(7, Subject::Prompt),
            hit(7, Subject::DeviceId),
            hit(8, Subject::Prompt),
        ],
    )])];
    let drafts = run_all(&ev);
    let summaries: Vec<&str> = drafts.iter().map(|d| d.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "the device-id and prompt of request 7 are in postgresql's data/pg_wal/000000010000000000000001",
            "the prompt of request 8 is in postgresql's data/pg_wal/000000010000000000000001",
        ]
    );
    assert!(drafts.iter().all(|d| d.kind == "service-retention"));
    assert_eq!(drafts[0].request, Some(7));
    assert_eq!(
        drafts[0].evidence[0].location,
        "postgresql:data/pg_wal/000000010000000000000001 @ 10"
    );
}

#[test]
fn service_retention_is_exercised_by_a_whole_folder_read_after_an_answer() {
    let k = kind("service-retention").unwrap();
    // No service declared: nothing outside the pipeline could keep anything.
    assert_eq!(not_run_reason(k, &clean()), None);
    let scanned = Evidence {
        services: vec![postgres(Vec::new())],
        ..clean()
    };
    assert_eq!(not_run_reason(k, &scanned), None);
    let unanswered = Evidence {
        requests: Vec::new(),
        services: vec![postgres(Vec::new())],
        ..clean()
    };
    assert_eq!(
        not_run_reason(k, &unanswered).as_deref(),
        Some("no request was answered")
    );
    let partial = Evidence {
        services: vec![crate::evidence::ServiceScan {
            error: Some("1 file(s) or folder(s) could not be read".into()),
            ..postgres(Vec::new())
        }],
        ..clean()
    };
    let reason = not_run_reason(k, &partial).unwrap();
    assert!(
        reason.contains("service postgresql was not read whole"),
        "{reason}"
    );
}
