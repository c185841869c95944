//! Property cases at audit time: proptest's `TestRunner` draws images, prompts, providers,
//! provider fault sequences and concurrency; every case runs against the live pipeline under
//! every monitor and must get an acceptable status and cause no finding. A failing case is
//! shrunk, and the audit's seed replays the whole run exactly.

use std::cell::RefCell;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use traceless_mock::Behaviour;
use traceless_report::Shard;
use traceless_scan::canary::ImageFormat;

use super::driver::{Driver, Halt};
use crate::scenario::{
    Age, ClientBehaviour, ImageSource, ImageSpec, PromptSpec, RequestSpec, Scenario,
};

/// The id property requests are reported under.
pub const SCENARIO_ID: &str = traceless_judge::plan::PROPERTY_SCENARIO;

/// How many of `cases` cases drawn from `seed` this shard runs.
pub fn owned_cases(shard: Shard, cases: u32, seed: u64) -> u32 {
    (0..u64::from(cases))
        .filter(|&c| shard.owns(c, seed))
        .count() as u32
}

/// One drawn case: up to four requests sent at once, and what each provider answers in turn.
/// Every request to a provider follows its own copy of that provider's script (the mocks route
/// each call to its request's script by its canaries), so arrival order decides nothing.
#[derive(Debug, Clone)]
pub struct Case {
    pub requests: Vec<CaseRequest>,
    pub openai: Vec<Behaviour>,
    pub gemini: Vec<Behaviour>,
}

#[derive(Debug, Clone)]
pub struct CaseRequest {
    pub provider: &'static str,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub metadata: bool,
    pub prompt: String,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        4 => Just(Behaviour::Ok),
        1 => Just(Behaviour::RateLimited { retry_after_s: 1 }),
        1 => Just(Behaviour::ServerError),
        1 => Just(Behaviour::Unavailable),
        1 => Just(Behaviour::SafetyBlock),
        1 => Just(Behaviour::SafetyBlockImage),
        1 => Just(Behaviour::Malformed),
        1 => (10u64..200).prop_map(|delay_ms| Behaviour::Slow { delay_ms }),
    ]
}

fn request() -> impl Strategy<Value = CaseRequest> {
    (
        prop_oneof![Just("openai"), Just("gemini")],
        prop_oneof![
            Just(ImageFormat::Png),
            Just(ImageFormat::Jpeg),
            Just(ImageFormat::Webp)
        ],
        16u32..160,
        16u32..160,
        any::<bool>(),
        "[\\PC]{1,120}",
    )
        .prop_map(
            |(provider, format, width, height, metadata, prompt)| CaseRequest {
                provider,
                format,
                width,
                height,
                metadata,
                prompt,
            },
        )
}

/// The statuses a correct backend may answer after these provider answers (it may retry).
fn acceptable(faults: &[Behaviour]) -> Vec<u16> {
    faults
        .iter()
        .map(|b| match b {
            Behaviour::Ok | Behaviour::Slow { .. } => 200,
            Behaviour::RateLimited { .. } => 429,
            Behaviour::ServerError | Behaviour::Unavailable | Behaviour::Malformed => 502,
            Behaviour::SafetyBlock | Behaviour::SafetyBlockImage => 422,
            Behaviour::Timeout => 504,
        })
        .collect()
}

fn as_scenario(case: &Case) -> Scenario {
    let faults = |provider: &str| {
        if provider == "openai" {
            case.openai.clone()
        } else {
            case.gemini.clone()
        }
    };
    Scenario {
        id: SCENARIO_ID.to_owned(),
        title: String::new(),
        clauses: Vec::new(),
        path: PathBuf::new(),
        requests: case
            .requests
            .iter()
            .map(|r| RequestSpec {
                provider: r.provider.to_owned(),
                image: ImageSpec {
                    source: ImageSource::Generate {
                        format: r.format,
                        width: r.width,
                        height: r.height,
                    },
                    metadata: r.metadata,
                    truncate: None,
                    pad_to: None,
                },
                prompt: PromptSpec::Text(r.prompt.clone()),
                age: Age::Confirmed,
                provider_behaviour: faults(r.provider),
                client: ClientBehaviour::Normal,
                expect_status: None,
                repeat: 1,
                concurrency: 1,
                content_type: None,
                pause: std::time::Duration::ZERO,
            })
            .collect(),
    }
}

/// Runs this shard's share of `cases` cases from `seed`; returns the failure, shrunk, as a
/// message. Every case is drawn in every shard (drawing is cheap and keeps the sequence the
/// seed gives); a case another shard owns is passed over, its request ids skipped, so the ids
/// of a sharded run are those of the unsharded one.
pub async fn run(
    driver: &mut Driver<'_>,
    cases: u32,
    seed: u64,
    shard: Shard,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<String> {
    if cases == 0 {
        return None;
    }
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..RunnerConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let faults = || prop::collection::vec(behaviour(), 1..=3);
    let strategy = (prop::collection::vec(request(), 1..=4), faults(), faults()).prop_map(
        |(requests, openai, gemini)| Case {
            requests,
            openai,
            gemini,
        },
    );
    let handle = tokio::runtime::Handle::current();
    let driver = RefCell::new(driver);
    // proptest calls the test through `Fn`: the case count and the shrinking flag are cells.
    let (drawn, shrinking) = (std::cell::Cell::new(0u64), std::cell::Cell::new(false));
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&strategy, |case| {
            let mut d = driver.borrow_mut();
            // After a failure every call is a shrink of the failed case: it always runs.
            if !shrinking.get() {
                let position = drawn.replace(drawn.get() + 1);
                if !shard.owns(position, seed) {
                    d.next_id += case.requests.len() as u32;
                    return Ok(());
                }
            }
            // Interrupted, or the pipeline is dead: reject the remaining cases at once, sending
            // nothing more (the interruption or the crash is reported on its own).
            if cancel.is_cancelled() || d.evidence.crash.is_some() {
                return Err(TestCaseError::reject("stopped"));
            }
            let result = handle.block_on(one_case(&mut d, &case));
            d.evidence.property_cases.1 += 1;
            shrinking.set(shrinking.get() || matches!(result, Err(TestCaseError::Fail(_))));
            result
        })
    });
    let stopped = cancel.is_cancelled() || driver.borrow().evidence.crash.is_some();
    match outcome {
        // The cases after an interruption or a crash were rejected, not failed: nothing to add.
        _ if stopped => None,
        Ok(()) => None,
        Err(TestError::Fail(why, case)) => Some(format!(
            "property case failed: {why}; minimal case: {case:?}"
        )),
        Err(TestError::Abort(why)) => Some(format!("property cases aborted: {why}")),
    }
}

async fn one_case(driver: &mut Driver<'_>, case: &Case) -> Result<(), TestCaseError> {
    let scenario = as_scenario(case);
    // A case's requests go out together: concurrency is part of what is drawn.
    let specs: Vec<&RequestSpec> = scenario.requests.iter().collect();
    let ids = match driver.send_batch(&scenario.id, &specs).await {
        Ok(ids) => ids,
        Err(Halt::PipelineDied) => return Err(TestCaseError::reject("the pipeline died")),
        Err(Halt::Error(e)) => return Err(TestCaseError::fail(format!("{e:#}"))),
    };
    let verdict = judge_case(driver, &ids, &specs);
    // At most once per grace period: judges earlier cases' memory, which lets their needles
    // retire (memory findings are judged over the whole run, not per case).
    if let Err(e) = driver.memory_check(false).await {
        return Err(TestCaseError::fail(format!("a memory scan: {e:#}")));
    }
    if verdict.is_err() {
        driver
            .evidence
            .failed_case_requests
            .extend(ids.iter().copied());
    }
    verdict
}

/// A case passes when every request got a status its provider answers allow and no finding
/// names any of them.
fn judge_case(
    driver: &mut Driver<'_>,
    ids: &[traceless_scan::scan::RequestId],
    specs: &[&RequestSpec],
) -> Result<(), TestCaseError> {
    for (id, spec) in ids.iter().zip(specs) {
        let sent = driver
            .evidence
            .requests
            .iter()
            .rev()
            .find(|r| r.id == *id)
            .ok_or_else(|| TestCaseError::fail("request not recorded"))?;
        let ok = acceptable(&spec.provider_behaviour);
        match sent.status {
            Some(s) if ok.contains(&s) => {}
            other => {
                return Err(TestCaseError::fail(format!(
                    "request {id} got {other:?}, expected one of {ok:?}"
                )));
            }
        }
    }
    let findings = driver
        .findings_for(ids)
        .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
    if let Some(f) = findings.first() {
        return Err(TestCaseError::fail(format!(
            "{} finding(s), first: [{}] {}",
            findings.len(),
            f.kind,
            f.summary
        )));
    }
    Ok(())
}
