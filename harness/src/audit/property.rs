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

use std::collections::{HashMap, VecDeque};

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;

use super::driver::{Answered, Driver, Halt, Marks, prepare_batch};
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
/// sharded run are those of the unsharded one. Cases are sent in drawing order through a window
/// of [`REQUESTS_AT_ONCE`] requests: a case is sent as soon as its requests fit, and judged as
/// soon as its last answer is in, so one slow answer holds up no other case. Canaries are made
/// and indexed a chunk of cases ahead, on a blocking thread. The first case that fails (in
/// drawing order, of those sent) is shrunk, one case at a time, as proptest's runner shrinks.
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
    cases_in_window(driver, &mut draws, &stopped).await
}

/// Requests of the cases drawn and prepared together: twice the window, so that a chunk is
/// prepared while the one before is sent.
const CHUNK: usize = 2 * REQUESTS_AT_ONCE;

/// [`run`]'s loop: cases sent through the window as they fit, judged as they end, and the next
/// chunk prepared while one is sent. Once a case fails, no more are sent; those in flight are
/// still judged, and the first failing one in drawing order is shrunk.
async fn cases_in_window<'a, S: Strategy<Value = Case>>(
    driver: &mut Driver<'a>,
    draws: &mut Draws<S>,
    stopped: &impl Fn(&Driver<'_>) -> bool,
) -> Option<String> {
    let mut window = Window::new();
    let mut ahead = match draws.chunk(driver) {
        Ok(chunk) => Some(Ahead::start(driver, chunk)),
        Err(why) => return Some(why),
    };
    let mut failed: Option<(Drawn<S::Tree>, String)> = None;
    loop {
        if let Some((first, _)) = &failed {
            // Cases drawn before the failing one that were passed over still run, so the case
            // shrunk is the first failing one in drawing order whatever the timing.
            window.launch(driver, Some(first.ids[0]));
        } else if let Err(end) = top_up(driver, &mut window, &mut ahead, draws, stopped).await {
            return end;
        }
        let Some(next) = window.next().await else {
            break;
        };
        // An answer of a case that waits for more: its slot may take the next case.
        let Some(done) = next else {
            continue;
        };
        // The next cases fly while this one is judged.
        if failed.is_none()
            && let Err(end) = top_up(driver, &mut window, &mut ahead, draws, stopped).await
        {
            return end;
        }
        let floor = window.floor(ahead.as_ref(), draws, driver.next_id);
        let (drawn, verdict) = judge_done(driver, done, floor).await;
        if stopped(driver) {
            return None;
        }
        if let Err(why) = verdict
            && failed
                .as_ref()
                .is_none_or(|(first, _)| drawn.ids[0] < first.ids[0])
        {
            failed = Some((drawn, why));
        }
    }
    if let Some(chunk) = ahead {
        // Drawn and indexed but never sent; the canaries' generator comes back for the shrinking.
        let _ = chunk.join(driver).await;
    }
    let (drawn, why) = failed?;
    let mut tree = drawn.tree;
    let limit = draws.runner.config().max_shrink_iters;
    let why = shrink(driver, &mut tree, why, limit, stopped).await;
    if stopped(driver) {
        return None;
    }
    Some(format!(
        "property case failed: {why}; minimal case: {:?}",
        tree.current()
    ))
}

/// Fills the window: takes in the chunk prepared ahead when fewer than a window's requests are
/// ready (and starts preparing the next), then sends what fits. `Err` ends the run: `None` when
/// it was stopped, or why the cases could not go on.
async fn top_up<'a, S: Strategy<Value = Case>>(
    driver: &mut Driver<'a>,
    window: &mut Window<'a, S::Tree>,
    ahead: &mut Option<Ahead<S::Tree>>,
    draws: &mut Draws<S>,
    stopped: &impl Fn(&Driver<'_>) -> bool,
) -> Result<(), Option<String>> {
    if window.ready_requests() < REQUESTS_AT_ONCE
        && window.front_fits()
        && let Some(chunk) = ahead.take()
    {
        let (drawn, prepared) = chunk.join(driver).await;
        if stopped(driver) {
            return Err(None);
        }
        match prepared {
            Ok(prepared) => window.queue(drawn, prepared),
            Err(e) => return Err(Some(format!("property cases aborted: {e:#}"))),
        }
        *ahead = match draws.chunk(driver) {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => Some(Ahead::start(driver, chunk)),
            Err(why) => return Err(Some(why)),
        };
    }
    window.launch(driver, None);
    Ok(())
}

/// Records a case whose answers are all in (keeping the needles of requests from `floor` on) and
/// judges it.
async fn judge_done<T>(
    driver: &mut Driver<'_>,
    done: Done<T>,
    floor: RequestId,
) -> (Drawn<T>, Result<(), String>) {
    let Done {
        drawn,
        marks,
        answers,
    } = done;
    let answered = drawn.scenario.requests.iter().zip(answers).collect();
    let sent = driver.record(SCENARIO_ID, answered, floor).await;
    let verdict = conclude(driver, &drawn, marks, sent).await;
    (drawn, verdict)
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
    /// The next cases this shard owns, as many as fit in [`CHUNK`] requests (fewer at the end;
    /// a case that does not fit waits for the next chunk); each drawn case takes its request
    /// ids, owned or not, in drawing order.
    fn chunk(&mut self, driver: &mut Driver<'_>) -> Result<Vec<Drawn<S::Tree>>, String> {
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
            if requests + drawn.ids.len() > CHUNK {
                self.held = Some(drawn);
                break;
            }
            requests += drawn.ids.len();
            batch.push(drawn);
        }
        Ok(batch)
    }
}

/// A chunk of cases whose canaries are being made and indexed on a blocking thread, with the
/// driver's generator, which [`Ahead::join`] gives back.
struct Ahead<T> {
    drawn: Vec<Drawn<T>>,
    job: tokio::task::JoinHandle<(StdRng, anyhow::Result<Vec<Prepared>>)>,
}

impl<T> Ahead<T> {
    fn start(driver: &mut Driver<'_>, drawn: Vec<Drawn<T>>) -> Ahead<T> {
        let mut rng = std::mem::replace(&mut driver.rng, StdRng::seed_from_u64(0));
        let scanner = std::sync::Arc::clone(driver.scanner);
        let extra = driver.cfg.pipeline.request.extra_images.clone();
        let specs: Vec<(RequestId, RequestSpec)> = drawn
            .iter()
            .flat_map(|d| {
                d.ids
                    .iter()
                    .copied()
                    .zip(d.scenario.requests.iter().cloned())
            })
            .collect();
        let job = tokio::task::spawn_blocking(move || {
            let specs: Vec<(RequestId, &RequestSpec)> =
                specs.iter().map(|(id, s)| (*id, s)).collect();
            let prepared = prepare_batch(&extra, &mut rng, &scanner, &specs);
            (rng, prepared)
        });
        Ahead { drawn, job }
    }

    async fn join(self, driver: &mut Driver<'_>) -> (Vec<Drawn<T>>, anyhow::Result<Vec<Prepared>>) {
        let prepared = match self.job.await {
            Ok((rng, prepared)) => {
                driver.rng = rng;
                prepared
            }
            Err(e) => Err(anyhow::anyhow!("preparing property requests: {e}")),
        };
        (self.drawn, prepared)
    }
}

/// Cases prepared and waiting to be sent, and the requests in flight.
struct Window<'a, T> {
    ready: VecDeque<(Drawn<T>, Vec<Prepared>)>,
    flying: HashMap<u64, Flying<T>>,
    sends: FuturesUnordered<BoxFuture<'a, (u64, usize, Answered)>>,
    next_key: u64,
}

/// A case in flight: where the log stood when it was sent, and its answers as they come.
struct Flying<T> {
    drawn: Drawn<T>,
    marks: Marks,
    answers: Vec<Option<Answered>>,
}

/// A case whose answers are all in.
struct Done<T> {
    drawn: Drawn<T>,
    marks: Marks,
    answers: Vec<Answered>,
}

impl<'a, T> Window<'a, T> {
    fn new() -> Self {
        Window {
            ready: VecDeque::new(),
            flying: HashMap::new(),
            sends: FuturesUnordered::new(),
            next_key: 0,
        }
    }

    /// Requests of the cases prepared and not yet sent.
    fn ready_requests(&self) -> usize {
        self.ready.iter().map(|(d, _)| d.ids.len()).sum()
    }

    /// Queues a prepared chunk: `prepared` holds its requests in order.
    fn queue(&mut self, drawn: Vec<Drawn<T>>, prepared: Vec<Prepared>) {
        let mut prepared = prepared.into_iter();
        for d in drawn {
            let mine = prepared.by_ref().take(d.ids.len()).collect();
            self.ready.push_back((d, mine));
        }
    }

    /// Whether the first ready case fits in the window now (or none is ready): else no chunk is
    /// taken in until it does, so the later cases that pass it are only those ready with it.
    fn front_fits(&self) -> bool {
        self.ready.front().is_none_or(|(d, _)| self.fits(d))
    }

    fn fits(&self, case: &Drawn<T>) -> bool {
        self.sends.len() + case.ids.len() <= REQUESTS_AT_ONCE
    }

    /// Sends ready cases, earliest drawn first, as their requests fit in the window; a case that
    /// does not fit yet lets later ready ones that do pass it. With `before`, only cases drawn
    /// before that request are sent.
    fn launch(&mut self, driver: &mut Driver<'a>, before: Option<RequestId>) {
        while let Some(i) = self
            .ready
            .iter()
            .position(|(d, _)| self.fits(d) && before.is_none_or(|b| d.ids[0] < b))
        {
            let (drawn, prepared) = self.ready.remove(i).expect("a ready case");
            let specs: Vec<(RequestId, &RequestSpec)> = drawn
                .ids
                .iter()
                .copied()
                .zip(&drawn.scenario.requests)
                .collect();
            driver.arm(&specs);
            let marks = driver.marks();
            let sender = driver.sender();
            let key = self.next_key;
            self.next_key += 1;
            for (k, ((id, spec), p)) in specs.iter().zip(prepared).enumerate() {
                let (id, behaviour) = (*id, spec.client);
                self.sends.push(Box::pin(async move {
                    (key, k, sender.send(id, behaviour, p).await)
                }));
            }
            driver.evidence.property_cases.1 += 1;
            let answers = specs.iter().map(|_| None).collect();
            self.flying.insert(
                key,
                Flying {
                    drawn,
                    marks,
                    answers,
                },
            );
        }
    }

    /// The next answer: `None` when nothing is in flight; `Some(None)` when its case waits for
    /// more answers, `Some(Some(done))` when it was its case's last.
    async fn next(&mut self) -> Option<Option<Done<T>>> {
        let (key, k, answered) = self.sends.next().await?;
        let flying = self.flying.get_mut(&key).expect("a case in flight");
        flying.answers[k] = Some(answered);
        if flying.answers.iter().any(Option::is_none) {
            return Some(None);
        }
        let Flying {
            drawn,
            marks,
            answers,
        } = self.flying.remove(&key).expect("a case in flight");
        Some(Some(Done {
            drawn,
            marks,
            answers: answers.into_iter().flatten().collect(),
        }))
    }

    /// The lowest id of a request drawn for this shard and not yet recorded: in flight, ready,
    /// being prepared or held for the next chunk (or, when none is, the next id to be drawn).
    fn floor<S: Strategy<Tree = T>>(
        &self,
        ahead: Option<&Ahead<T>>,
        draws: &Draws<S>,
        next_id: RequestId,
    ) -> RequestId {
        let first = |d: &Drawn<T>| d.ids.first().copied();
        self.flying
            .values()
            .filter_map(|f| first(&f.drawn))
            .chain(self.ready.front().and_then(|(d, _)| first(d)))
            .chain(ahead.and_then(|a| a.drawn.first()).and_then(first))
            .chain(draws.held.as_ref().and_then(first))
            .fold(next_id, RequestId::min)
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
        let alone = Drawn {
            tree: (),
            scenario,
            ids,
        };
        let verdict = run_alone(driver, &alone).await;
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

/// Sends a case's requests at once, with canaries made now, and judges it.
async fn run_alone<T>(driver: &mut Driver<'_>, drawn: &Drawn<T>) -> Result<(), String> {
    let specs: Vec<(RequestId, &RequestSpec)> = drawn
        .ids
        .iter()
        .copied()
        .zip(&drawn.scenario.requests)
        .collect();
    driver.evidence.property_cases.1 += 1;
    let marks = driver.marks();
    let sent = driver.send_batch(SCENARIO_ID, &specs).await;
    conclude(driver, drawn, marks, sent).await
}

/// Judges a sent case on its own requests, sent at `marks` (a failing case's requests are kept
/// in full in the report); then, at most once per grace period, scans memory, which judges
/// earlier cases' memory and lets their needles retire (memory findings are judged over the
/// whole run, not per case).
async fn conclude<T>(
    driver: &mut Driver<'_>,
    drawn: &Drawn<T>,
    marks: Marks,
    sent: Result<Vec<RequestId>, Halt>,
) -> Result<(), String> {
    let ids = match sent {
        Ok(ids) => ids,
        Err(Halt::PipelineDied) => return Err("the pipeline died".to_owned()),
        Err(Halt::Error(e)) => return Err(format!("{e:#}")),
    };
    let specs: Vec<&RequestSpec> = drawn.scenario.requests.iter().collect();
    let verdict = match driver.findings_for(&ids, marks) {
        Ok(findings) => judge_case(driver, &drawn.ids, &specs, &findings),
        Err(e) => Err(format!("{e:#}")),
    };
    if verdict.is_err() {
        driver
            .evidence
            .failed_case_requests
            .extend(drawn.ids.iter().copied());
    }
    if let Err(e) = driver.memory_check(false).await {
        return Err(format!("a memory scan: {e:#}"));
    }
    verdict
}

/// A case passes when every request got a status its provider answers allow and no finding
/// names any of them (`findings`: those since it was sent that name it or no request).
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
