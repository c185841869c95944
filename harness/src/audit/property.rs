//! Property cases at audit time: proptest's `TestRunner` draws images, prompts, providers,
//! provider fault sequences and concurrency; every case runs against the live pipeline under
//! every monitor and must get an acceptable status and cause no finding. A failing case is
//! shrunk, and the audit's seed replays the whole run exactly.

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use traceless_judge::merge::REQUESTS_AT_ONCE;
use traceless_mock::Behaviour;
use traceless_report::Shard;
use traceless_scan::canary::ImageFormat;
use traceless_scan::scan::RequestId;

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::driver::{Driver, Halt, prepare_batch};
use super::prepare::Prepared;
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
/// seed gives), and each case's requests take their ids in drawing order, so the ids of a
/// sharded run are those of the unsharded one. Cases run together, [`REQUESTS_AT_ONCE`] requests
/// at most, and the
/// next batch's canaries are made and indexed while one is in flight. The first case that fails
/// (in drawing order) is shrunk, one case at a time, as proptest's runner shrinks.
pub async fn run(
    driver: &mut Driver<'_>,
    cases: u32,
    seed: u64,
    shard: Shard,
    cancel: &tokio_util::sync::CancellationToken,
) -> Option<String> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut draws = Draws {
        runner: TestRunner::new_with_rng(
            RunnerConfig {
                cases,
                failure_persistence: None,
                max_shrink_iters: 64,
                ..RunnerConfig::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
        ),
        strategy: case(),
        position: 0,
        cases: u64::from(cases),
        shard,
        seed,
        held: None,
    };
    let stopped = |d: &Driver<'_>| cancel.is_cancelled() || d.evidence.crash.is_some();
    cases_in_batches(driver, &mut draws, &stopped).await
}

/// [`run`]'s loop: batches sent one after the other, each prepared while the one before flies.
async fn cases_in_batches<S: Strategy<Value = Case>>(
    driver: &mut Driver<'_>,
    draws: &mut Draws<S>,
    stopped: &impl Fn(&Driver<'_>) -> bool,
) -> Option<String> {
    let mut current = match draws.batch(driver) {
        Ok(batch) => batch,
        Err(why) => return Some(why),
    };
    let mut ahead = prepare_ahead(driver, &current);
    while !current.is_empty() {
        let prepared = ahead.join(driver).await;
        // Interrupted, or the pipeline is dead: nothing more is sent (the interruption or the
        // crash is reported on its own).
        if stopped(driver) {
            return None;
        }
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Some(format!("property cases aborted: {e:#}")),
        };
        let next = match draws.batch(driver) {
            Ok(batch) => batch,
            Err(why) => return Some(why),
        };
        ahead = prepare_ahead(driver, &next);
        let verdicts = run_cases(driver, &current, Some(prepared)).await;
        if stopped(driver) {
            return None;
        }
        let failed = current
            .into_iter()
            .zip(verdicts)
            .find_map(|(drawn, v)| v.err().map(|why| (drawn.tree, why)));
        if let Some((mut tree, why)) = failed {
            // The next batch was drawn and indexed but is never sent; the canaries' generator
            // comes back for the shrinking.
            let _ = ahead.join(driver).await;
            let limit = draws.runner.config().max_shrink_iters;
            let why = shrink(driver, &mut tree, why, limit, stopped).await;
            if stopped(driver) {
                return None;
            }
            return Some(format!(
                "property case failed: {why}; minimal case: {:?}",
                tree.current()
            ));
        }
        current = next;
    }
    let _ = ahead.join(driver).await;
    None
}

fn case() -> impl Strategy<Value = Case> {
    let faults = || prop::collection::vec(behaviour(), 1..=3);
    (prop::collection::vec(request(), 1..=4), faults(), faults()).prop_map(
        |(requests, openai, gemini)| Case {
            requests,
            openai,
            gemini,
        },
    )
}

/// The cases drawn so far from the seed, and this shard's share of them.
struct Draws<S: Strategy> {
    runner: TestRunner,
    strategy: S,
    position: u64,
    cases: u64,
    shard: Shard,
    seed: u64,
    /// A case drawn that did not fit in the last batch.
    held: Option<Drawn<S::Tree>>,
}

/// A case this shard runs: its value tree (for shrinking), its requests and their ids.
struct Drawn<T> {
    tree: T,
    scenario: Scenario,
    ids: Vec<RequestId>,
}

impl<S: Strategy<Value = Case>> Draws<S> {
    /// The next cases this shard owns, as many as fit in [`REQUESTS_AT_ONCE`] requests (fewer
    /// at the end; a case that does not fit waits for the next batch); each drawn case takes its
    /// request ids, owned or not, in drawing order.
    fn batch(&mut self, driver: &mut Driver<'_>) -> Result<Vec<Drawn<S::Tree>>, String> {
        let mut batch: Vec<Drawn<S::Tree>> = self.held.take().into_iter().collect();
        let mut requests: usize = batch.iter().map(|d| d.ids.len()).sum();
        while self.position < self.cases {
            let tree = self
                .strategy
                .new_tree(&mut self.runner)
                .map_err(|why| format!("property cases aborted: {why}"))?;
            let owned = self.shard.owns(self.position, self.seed);
            self.position += 1;
            let scenario = as_scenario(&tree.current());
            let ids: Vec<RequestId> = scenario.requests.iter().map(|_| driver.take_id()).collect();
            if !owned {
                continue;
            }
            let drawn = Drawn {
                tree,
                scenario,
                ids,
            };
            if requests + drawn.ids.len() > REQUESTS_AT_ONCE {
                self.held = Some(drawn);
                break;
            }
            requests += drawn.ids.len();
            batch.push(drawn);
        }
        Ok(batch)
    }
}

/// A batch's canaries being made and indexed on a blocking thread, with the driver's generator,
/// which [`Ahead::join`] gives back.
struct Ahead(tokio::task::JoinHandle<(StdRng, anyhow::Result<Vec<Prepared>>)>);

fn prepare_ahead<T>(driver: &mut Driver<'_>, batch: &[Drawn<T>]) -> Ahead {
    let mut rng = std::mem::replace(&mut driver.rng, StdRng::seed_from_u64(0));
    let scanner = std::sync::Arc::clone(driver.scanner);
    let extra = driver.cfg.pipeline.request.extra_images.clone();
    let specs: Vec<(RequestId, RequestSpec)> = batch
        .iter()
        .flat_map(|d| {
            d.ids
                .iter()
                .copied()
                .zip(d.scenario.requests.iter().cloned())
        })
        .collect();
    Ahead(tokio::task::spawn_blocking(move || {
        let specs: Vec<(RequestId, &RequestSpec)> = specs.iter().map(|(id, s)| (*id, s)).collect();
        let prepared = prepare_batch(&extra, &mut rng, &scanner, &specs);
        (rng, prepared)
    }))
}

impl Ahead {
    async fn join(self, driver: &mut Driver<'_>) -> anyhow::Result<Vec<Prepared>> {
        let (rng, prepared) = self
            .0
            .await
            .map_err(|e| anyhow::anyhow!("preparing property requests: {e}"))?;
        driver.rng = rng;
        prepared
    }
}

/// Shrinks a failed case as proptest's runner does: simplify while it still fails, complicate
/// back when it passes, at most `limit` runs, each case alone under fresh request ids. Returns
/// the reason of the last failure; `tree` is left at the minimal failing case.
async fn shrink(
    driver: &mut Driver<'_>,
    tree: &mut impl ValueTree<Value = Case>,
    mut why: String,
    limit: u32,
    stopped: &impl Fn(&Driver<'_>) -> bool,
) -> String {
    if !tree.simplify() {
        return why;
    }
    for _ in 0..limit {
        if stopped(driver) {
            break;
        }
        let scenario = as_scenario(&tree.current());
        let ids: Vec<RequestId> = scenario.requests.iter().map(|_| driver.take_id()).collect();
        let alone = [Drawn {
            tree: (),
            scenario,
            ids,
        }];
        let verdict = run_cases(driver, &alone, None).await.remove(0);
        let more = match verdict {
            Ok(()) => tree.complicate(),
            Err(failed) => {
                why = failed;
                tree.simplify()
            }
        };
        if !more {
            return why;
        }
    }
    // Out of runs: back to the most recent failing case.
    while tree.complicate() {}
    why
}

/// Sends these cases' requests in one batch (their canaries made already, or now) and judges
/// each case on its own requests: one verdict per case, in order. A failing case's requests are
/// kept in full in the report.
async fn run_cases<T>(
    driver: &mut Driver<'_>,
    cases: &[Drawn<T>],
    prepared: Option<Vec<Prepared>>,
) -> Vec<Result<(), String>> {
    let specs: Vec<(RequestId, &RequestSpec)> = cases
        .iter()
        .flat_map(|d| d.ids.iter().copied().zip(&d.scenario.requests))
        .collect();
    driver.evidence.property_cases.1 += cases.len() as u32;
    let sent = match prepared {
        Some(prepared) => driver.send_prepared(SCENARIO_ID, &specs, prepared).await,
        None => driver.send_batch(SCENARIO_ID, &specs).await,
    };
    let all = match sent {
        Ok(ids) => ids,
        Err(Halt::PipelineDied) => return vec![Err("the pipeline died".to_owned()); cases.len()],
        Err(Halt::Error(e)) => return vec![Err(format!("{e:#}")); cases.len()],
    };
    let findings = driver.findings_for(&all);
    let mut verdicts = Vec::new();
    for drawn in cases {
        let specs: Vec<&RequestSpec> = drawn.scenario.requests.iter().collect();
        let verdict = match &findings {
            Ok(findings) => judge_case(driver, &drawn.ids, &specs, findings),
            Err(e) => Err(format!("{e:#}")),
        };
        if verdict.is_err() {
            driver
                .evidence
                .failed_case_requests
                .extend(drawn.ids.iter().copied());
        }
        verdicts.push(verdict);
    }
    // At most once per grace period: judges earlier cases' memory, which lets their needles
    // retire (memory findings are judged over the whole run, not per case).
    if let Err(e) = driver.memory_check(false).await {
        return vec![Err(format!("a memory scan: {e:#}")); cases.len()];
    }
    verdicts
}

/// A case passes when every request got a status its provider answers allow and no finding
/// names any of them (`findings`: those of the case's batch).
fn judge_case(
    driver: &Driver<'_>,
    ids: &[RequestId],
    specs: &[&RequestSpec],
    findings: &[crate::check::Draft],
) -> Result<(), String> {
    for (id, spec) in ids.iter().zip(specs) {
        let sent = driver
            .evidence
            .requests
            .iter()
            .rev()
            .find(|r| r.id == *id)
            .ok_or("request not recorded")?;
        let ok = acceptable(&spec.provider_behaviour);
        match sent.status {
            Some(s) if ok.contains(&s) => {}
            other => {
                return Err(format!(
                    "request {id} got {other:?}, expected one of {ok:?}"
                ));
            }
        }
    }
    let own: Vec<_> = findings
        .iter()
        .filter(|d| d.request.is_none_or(|r| ids.contains(&r)))
        .collect();
    if let Some(f) = own.first() {
        return Err(format!(
            "{} finding(s), first: [{}] {}",
            own.len(),
            f.kind,
            f.summary
        ));
    }
    Ok(())
}
