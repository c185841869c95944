//! Driving the pipeline: sends each scenario's requests with fresh canaries, records the
//! answers, attributes provider calls as they arrive, scans memory once per grace period, and
//! notices when the pipeline dies.

use std::sync::{Arc, RwLock};

use anyhow::Context as _;

use traceless_mock::{Mocks, Provider};
use traceless_sandbox::events::EventLog;
use traceless_sandbox::supervisor::Supervisor;
use traceless_scan::scan::{RequestId, Scanner, Staged};

use super::client::Client;
use super::kept::Kept;
use super::launch;
use super::prepare::{self, Prepared};
use crate::config::Config;
use crate::evidence::{Evidence, ProviderCall, SentRequest};
use crate::scenario::{RequestSpec, Scenario};

pub struct Driver<'a> {
    pub cfg: &'a Config,
    pub client: &'a Client,
    pub mocks: &'a Mocks,
    pub scanner: &'a Arc<RwLock<Scanner>>,
    pub log: &'a EventLog,
    pub supervisor: &'a Arc<Supervisor>,
    pub rng: rand::rngs::StdRng,
    pub next_id: RequestId,
    pub memory_scans: bool,
    /// When the last memory scan ended.
    pub last_memory_scan: Option<std::time::Instant>,
    /// The answers and provider calls read so far, without their bytes.
    pub kept: Kept,
    /// The event log's length and the arrival number of the next provider call when the latest
    /// batch was sent: what came after is what that batch may have caused.
    pub batch_marks: (usize, u64),
    pub evidence: &'a mut Evidence,
    /// Needles of requests before this one are retired from the live index.
    pub retired_before: RequestId,
    /// Requests that ended this long (log ms) before the latest memory scan began have been judged
    /// by it.
    pub memory_judged_ms: Option<u64>,
}

/// Why driving stopped before the end.
#[derive(Debug)]
pub enum Halt {
    /// The pipeline's main process ended: recorded in `evidence.crash`.
    PipelineDied,
    /// Something in the harness failed.
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Halt {
    fn from(e: anyhow::Error) -> Halt {
        Halt::Error(e)
    }
}

impl Driver<'_> {
    pub async fn scenario(&mut self, scenario: &Scenario) -> Result<(), Halt> {
        self.send_all(scenario).await?;
        // No wait here: a hit counts only for requests that ended a grace period before the
        // scan, so earlier requests are judged now and this scenario's by a later scan.
        self.memory_check(false).await?;
        Ok(())
    }

    /// Sends a scenario's requests in order, each batch of `concurrency` at once.
    async fn send_all(&mut self, scenario: &Scenario) -> Result<Vec<RequestId>, Halt> {
        let mut ids = Vec::new();
        for spec in &scenario.requests {
            let mut remaining = spec.repeat;
            while remaining > 0 {
                let batch = remaining.min(spec.concurrency);
                remaining -= batch;
                if !spec.pause.is_zero() {
                    // The scenario's own think time between requests, not a synchronisation.
                    tokio::time::sleep(spec.pause).await;
                }
                let specs: Vec<_> = (0..batch).map(|_| (self.take_id(), spec)).collect();
                ids.extend(self.send_batch(&scenario.id, &specs).await?);
                // Within a long scenario too, at most once per grace period: judges its early
                // requests, which lets their needles retire.
                self.memory_check(false).await?;
            }
        }
        Ok(ids)
    }

    /// The next request id.
    pub fn take_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends these requests at once under their ids (from [`Driver::take_id`]), each with fresh
    /// canaries, and records the answers. Stops with [`Halt::PipelineDied`] when the pipeline is
    /// found dead before or after the batch.
    pub async fn send_batch(
        &mut self,
        scenario: &str,
        specs: &[(RequestId, &RequestSpec)],
    ) -> Result<Vec<RequestId>, Halt> {
        let prepared = prepare_batch(
            &self.cfg.pipeline.request.extra_images,
            &mut self.rng,
            self.scanner,
            specs,
        )?;
        self.send_prepared(scenario, specs, prepared).await
    }

    /// [`Driver::send_batch`] for requests whose canaries [`prepare_batch`] made and registered.
    pub async fn send_prepared(
        &mut self,
        scenario: &str,
        specs: &[(RequestId, &RequestSpec)],
        prepared: Vec<Prepared>,
    ) -> Result<Vec<RequestId>, Halt> {
        if self.crashed(scenario, &[]).await {
            return Err(Halt::PipelineDied);
        }
        self.batch_marks = (self.log.len(), self.mocks.recorded_count() as u64);
        for (_, spec) in specs {
            if let Ok(p) = spec.provider.parse::<Provider>() {
                self.mocks.set_behaviour(p, spec.provider_behaviour.clone());
            }
        }
        let prepared: Vec<_> = specs
            .iter()
            .zip(prepared)
            .map(|(&(id, spec), p)| {
                // Each request's own script, so the order in which concurrent calls reach a
                // provider does not decide who meets which fault.
                self.mocks
                    .set_keyed_behaviour(u64::from(id), spec.provider_behaviour.clone());
                (id, spec, p)
            })
            .collect();
        let (client, cfg, log) = (self.client, self.cfg, self.log);
        let sends = prepared.iter().map(|(id, spec, p)| async move {
            let started = log.since_start_ms();
            let answer = client
                .send(
                    &cfg.pipeline.request,
                    &cfg.pipeline.response,
                    cfg.pipeline.job.as_ref(),
                    &p.payload,
                    spec.client,
                )
                .await;
            (
                *id,
                *spec,
                p.had_metadata,
                started,
                log.since_start_ms(),
                answer,
            )
        });
        let mut ids = Vec::new();
        let mut bodies = Vec::new();
        for (id, spec, had_metadata, started_ms, ended_ms, answer) in
            futures::future::join_all(sends).await
        {
            ids.push(id);
            bodies.push(answer.body);
            self.evidence.requests.push(SentRequest {
                id,
                scenario: scenario.to_owned(),
                provider: spec.provider.clone(),
                age: spec.age,
                behaviour: spec
                    .provider_behaviour
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                client: spec.client,
                expected_status: spec.expect_status,
                status: answer.status,
                started_ms,
                ended_ms,
                response_bytes: 0,
                response_hits: Vec::new(),
                error: answer.error,
                had_metadata,
                shared_prompt: matches!(spec.prompt, crate::scenario::PromptSpec::Shared(_)),
            });
        }
        // What the pipeline logged while serving the batch is judged with it.
        self.supervisor.settle_output().await;
        self.attribute_new_calls()?;
        self.keep_answers(&bodies)?;
        self.retire_judged()?;
        self.note_orphans(scenario, &ids);
        if self.crashed(scenario, &ids).await {
            return Err(Halt::PipelineDied);
        }
        Ok(ids)
    }

    /// Retires the needles of requests every live watcher is done with, so the live index holds
    /// about `[audit] live_requests` requests whatever the audit's length. A request is done with
    /// once its answer was scanned and its provider calls attributed (both per batch), it is not
    /// among the latest `live_requests`, and, with memory scans on, a memory scan began at least
    /// one grace period after it ended. Retires in steps of `live_requests`, so each rebuild of the
    /// live index is paid for by as many new requests. What is gathered at the end of the run
    /// (files left, answers, provider calls, service folders) is swept with every needle.
    fn retire_judged(&mut self) -> anyhow::Result<()> {
        let window = self.cfg.audit.live_requests;
        let grace = self.cfg.policy.memory_grace.as_millis() as u64;
        let recent = self.next_id.saturating_sub(window);
        let watermark = self
            .evidence
            .requests
            .iter()
            .rev()
            .take_while(|r| r.id >= self.retired_before)
            .filter(|r| {
                r.id >= recent
                    || (self.memory_scans
                        && self
                            .memory_judged_ms
                            .is_none_or(|judged| r.ended_ms + grace > judged))
            })
            .map(|r| r.id)
            .min()
            .unwrap_or(self.next_id)
            .min(recent);
        if watermark >= self.retired_before + window {
            self.scanner
                .write()
                .expect("scanner lock")
                .retire_before(watermark)
                .context("retiring judged needles to disk")?;
            self.retired_before = watermark;
        }
        Ok(())
    }

    /// Records the pipeline's daemons that were not there before this batch: processes that
    /// outlive the requests just answered.
    fn note_orphans(&mut self, scenario: &str, ids: &[RequestId]) {
        for orphan in self.supervisor.orphans_now() {
            let known =
                self.evidence.orphans_during.iter().any(|o| {
                    o.orphan.pid == orphan.pid && o.orphan.started_ms == orphan.started_ms
                });
            if !known {
                self.evidence
                    .orphans_during
                    .push(crate::evidence::OrphanSeen {
                        orphan,
                        scenario: scenario.to_owned(),
                        after_requests: ids.to_vec(),
                    });
            }
        }
    }

    /// Whether the pipeline's main process has ended; the first time, records how, with the
    /// requests that were in flight and the end of its stderr.
    async fn crashed(&mut self, scenario: &str, in_flight: &[RequestId]) -> bool {
        if self.evidence.crash.is_some() {
            return true;
        }
        if !self.supervisor.main_ended() {
            return false;
        }
        // strace's record of the exit may trail the process's end by a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.supervisor.main_exit().is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let status = self.supervisor.main_exit().map_or_else(
            || "status unknown".to_owned(),
            |(c, s)| launch::describe_exit(c, s),
        );
        self.evidence.crash = Some(traceless_report::Crash {
            status,
            at_ms: self.log.since_start_ms(),
            in_flight: in_flight.to_vec(),
            scenario: Some(scenario.to_owned()),
            // What it wrote as it died may still be in the pipe: read it to its end first.
            stderr_tail: self
                .supervisor
                .final_stderr_tail(std::time::Duration::from_secs(1))
                .await,
        });
        true
    }

    /// Findings that concern these requests, the latest batch sent (memory is judged after the
    /// grace period).
    pub fn findings_for(&mut self, ids: &[RequestId]) -> anyhow::Result<Vec<crate::check::Draft>> {
        let (events_from, calls_from) = self.batch_marks;
        // Calls that arrived after the batch's answers are part of it too.
        self.attribute_new_calls()?;
        let since = self
            .evidence
            .requests
            .iter()
            .filter(|r| ids.contains(&r.id))
            .map(|r| r.started_ms)
            .min()
            .unwrap_or(0);
        let calls: Vec<ProviderCall> = self
            .kept
            .calls_from(calls_from)
            .iter()
            .filter(|c| c.t_ms + 5 >= since)
            .cloned()
            .collect();
        let mut snapshot = Evidence {
            requests: self
                .evidence
                .requests
                .iter()
                .filter(|r| ids.contains(&r.id))
                .cloned()
                .collect(),
            provider_calls: calls,
            events: self
                .log
                .snapshot_from(events_from)
                .into_iter()
                .filter(|e| {
                    e.t_ms + 5 >= since
                        && !matches!(
                            e.kind,
                            traceless_sandbox::events::EventKind::MemoryHits { .. }
                        )
                })
                .collect(),
            monitors: self.supervisor.statuses(),
            allowed_addresses: self.evidence.allowed_addresses.clone(),
            allowed_hosts: self.evidence.allowed_hosts.clone(),
            allowed_providers: self.evidence.allowed_providers.clone(),
            mocks_tls: self.evidence.mocks_tls,
            no_age_gate: self.evidence.no_age_gate,
            memory_grace_ms: self.evidence.memory_grace_ms,
            ..Evidence::default()
        };
        snapshot.keep_own_files();
        Ok(crate::check::run_all(&snapshot)
            .into_iter()
            .filter(|d| d.request.is_some_and(|r| ids.contains(&r)) || d.request.is_none())
            .collect())
    }

    /// Scans the memory of every live process of the tree; with `after_grace`, first waits the
    /// policy's grace period so that every request so far is judged. Each completed scan is
    /// recorded: it is what exercises the memory-retention check.
    pub async fn memory_check(&mut self, after_grace: bool) -> anyhow::Result<()> {
        if !self.memory_scans {
            return Ok(());
        }
        let grace = self.cfg.policy.memory_grace;
        if after_grace {
            // The policy's grace period: how long image bytes may linger after a request ends.
            tokio::time::sleep(grace).await;
        } else if self.last_memory_scan.is_some_and(|t| t.elapsed() < grace) {
            // A scan judges only requests that ended a grace period before it, so scanning
            // more often than once per grace period judges nothing sooner; every request is
            // still judged by the first scan at least one grace period after it ends.
            return Ok(());
        }
        let began = self.log.since_start_ms();
        // The supervisor records what it finds in the event log itself. In place, not on a
        // blocking task: an interrupted audit drops this future, and a task left scanning would
        // still hold the supervisor, which then could not be stopped and give its monitors'
        // statuses.
        tokio::task::block_in_place(|| self.supervisor.scan_memory());
        self.last_memory_scan = Some(std::time::Instant::now());
        self.memory_judged_ms = Some(began);
        self.evidence.memory_scans.push(self.log.since_start_ms());
        Ok(())
    }

    /// Reads and keeps the provider calls made since the last look (see [`Kept::keep_call`]):
    /// their outputs become needles of the audit requests whose canaries they carried.
    pub fn attribute_new_calls(&mut self) -> anyhow::Result<()> {
        let recorded = self.mocks.take_recorded();
        let mut scanner = self.scanner.write().expect("scanner lock");
        for call in recorded {
            self.kept
                .keep_call(call, &mut scanner, &self.evidence.requests, self.log)
                .context("keeping a provider call's residue for the end-of-run sweep")?;
        }
        Ok(())
    }

    /// Reads the answers of the latest batch (the last `bodies.len()` requests) with the live
    /// needles, its calls' outputs among them, and keeps them without their bodies.
    fn keep_answers(&mut self, bodies: &[Vec<u8>]) -> anyhow::Result<()> {
        let scanner = self.scanner.read().expect("scanner lock");
        let first = self.evidence.requests.len() - bodies.len();
        for (k, body) in bodies.iter().enumerate() {
            let i = first + k;
            self.kept
                .keep_answer(
                    i,
                    &mut self.evidence.requests[i],
                    body,
                    &scanner,
                    self.client.base(),
                )
                .context("keeping an answer's residue for the end-of-run sweep")?;
        }
        Ok(())
    }
}

/// Makes each request's payload with fresh canaries and registers them with the scanner: the
/// batch's images are indexed together (one segment, sorted once) without the scanner's lock,
/// then added under one short lock, so no scan ever sees half of them, and before any of them is
/// sent (the mocks' router, which reads the scanner, is not held up meanwhile). Needs no pipeline, so a driver
/// may prepare the next batch while one is in flight.
pub fn prepare_batch(
    extra_images: &[crate::config::ExtraImage],
    rng: &mut rand::rngs::StdRng,
    scanner: &RwLock<Scanner>,
    specs: &[(RequestId, &RequestSpec)],
) -> anyhow::Result<Vec<Prepared>> {
    let mut prepared = Vec::new();
    for &(id, spec) in specs {
        let p = prepare::prepare(
            id,
            spec,
            extra_images,
            rng,
            &mut scanner.write().expect("scanner lock"),
        )?;
        prepared.push(p);
    }
    let shape = scanner.read().expect("scanner lock").staging_shape();
    let staged = Staged::images(
        shape,
        specs
            .iter()
            .zip(&prepared)
            .flat_map(|((id, _), p)| p.images(*id)),
    );
    scanner.write().expect("scanner lock").absorb(staged);
    Ok(prepared)
}
