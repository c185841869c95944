//! From findings to verdicts: gives each finding its id, scenario and clauses, applies waivers,
//! judges every clause of the map, and assembles the [`Report`]. Knows nothing of how the
//! evidence was gathered.

use std::collections::BTreeSet;

use traceless_evidence::events::{EventKind, MonitorState, OrphanReason};
use traceless_report::{
    ClauseResult, ClauseVerdict, Finding, MonitorEntry, Orphan, PassingRequests, Provenance,
    Report, RequestResult, SCHEMA_ID, ScenarioOutcome, ScenarioResult, TimelineEntry, WaiverEntry,
};

use crate::check::{self, Draft};
use crate::evidence::Evidence;
use crate::plan::Clause;
use crate::plan::{Age, ScenarioPlan};
use crate::plan::{Waiver, WaiverTarget};

pub struct Inputs<'a> {
    pub evidence: &'a Evidence,
    pub drafts: Vec<Draft>,
    pub clauses: &'a [Clause],
    pub scenarios: &'a [ScenarioPlan],
    pub waivers: &'a [Waiver],
    pub today: time::Date,
    pub required_monitors: &'a [String],
    /// `--allow-degraded`: monitors that are not active do not make the audit incomplete; the
    /// report is marked DEGRADED instead.
    pub allow_degraded: bool,
    /// The signal that interrupted the run, if one did.
    pub interrupted: Option<String>,
    pub errors: Vec<String>,
    pub provenance: Provenance,
}

pub fn build(inp: Inputs<'_>) -> Report {
    let ev = inp.evidence;
    let mut errors = inp.errors;
    let mut used = vec![false; inp.waivers.len()];

    let findings: Vec<Finding> = inp
        .drafts
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let kind = check::kind(d.kind).expect("drafts come from known kinds");
            // The clause map says which clauses each kind verifies: those are the ones it breaks.
            let broken: Vec<&Clause> = inp
                .clauses
                .iter()
                .filter(|c| c.checks.iter().any(|k| k == d.kind))
                .collect();
            let clauses: Vec<String> = broken.iter().map(|c| c.id.clone()).collect();
            // A clause waiver names a clause by id or a whole section, as `judge_clause` reads it.
            let waiver = inp.waivers.iter().enumerate().find(|(_, w)| {
                w.expires >= inp.today
                    && match &w.target {
                        WaiverTarget::Kind(k) => k == d.kind,
                        WaiverTarget::Clause(x) => {
                            broken.iter().any(|c| &c.id == x || &c.section == x)
                        }
                    }
            });
            if let Some((wi, _)) = waiver {
                used[wi] = true;
            }
            Finding {
                id: format!("F{}", i + 1),
                kind: d.kind.to_owned(),
                code: kind.code.to_owned(),
                summary: d.summary,
                clauses,
                scenario: d
                    .request
                    .and_then(|r| ev.requests.iter().find(|s| s.id == r))
                    .map(|s| s.scenario.clone()),
                request: d.request,
                evidence: d.evidence,
                waiver: waiver.map(|(_, w)| w.justification.clone()),
            }
        })
        .collect();

    let clauses = inp
        .clauses
        .iter()
        .map(|c| judge_clause(c, &findings, ev, inp.waivers, inp.today))
        .collect::<Vec<_>>();

    let waivers = inp
        .waivers
        .iter()
        .zip(&used)
        .map(|(w, used)| {
            let expired = w.expires < inp.today;
            if expired {
                errors.push(format!(
                    "the waiver for {} (config line {}) expired on {}: renew it with a new justification or fix the finding",
                    w.target.label(),
                    w.line,
                    w.expires
                ));
            }
            WaiverEntry {
                target: w.target.label().to_owned(),
                justification: w.justification.clone(),
                expires: w.expires.to_string(),
                expired,
                used: *used,
            }
        })
        .collect::<Vec<_>>();

    let monitors: Vec<MonitorEntry> = ev
        .monitors
        .iter()
        .map(|m| MonitorEntry {
            name: m.monitor.name().to_owned(),
            state: match m.state {
                MonitorState::Active => "active",
                MonitorState::Degraded => "degraded",
                MonitorState::Unavailable => "unavailable",
            }
            .to_owned(),
            reason: m.reason.clone(),
            // Strict by default: only an explicit --allow-degraded accepts a weaker machine.
            required: !inp.allow_degraded
                && inp.required_monitors.iter().any(|r| r == m.monitor.name()),
        })
        .collect();
    let degraded = inp.allow_degraded
        && ev.monitors.iter().any(|m| {
            m.state != MonitorState::Active
                && inp.required_monitors.iter().any(|r| r == m.monitor.name())
        });

    let scenarios = inp
        .scenarios
        .iter()
        .map(|s| scenario_result(s, ev, &findings))
        .collect::<Vec<_>>();

    let mut report = Report {
        schema: SCHEMA_ID.to_owned(),
        verdict: traceless_report::Verdict::Pass,
        summary: String::new(),
        provenance: inp.provenance,
        monitors,
        clauses,
        findings,
        scenarios,
        waivers,
        errors,
        degraded,
        interrupted: inp.interrupted,
        crash: ev.crash.clone(),
        orphans: orphans(ev),
        services: ev
            .services
            .iter()
            .map(|s| traceless_report::ServiceEntry {
                name: s.name.clone(),
                data_dir: s.data_dir.display().to_string(),
                files_scanned: s.files,
                bytes_scanned: s.bytes,
            })
            .collect(),
    };
    // An expired waiver is an error above: the audit cannot pass until it is renewed or removed.
    report.verdict = report.derived_verdict();
    report.summary = report.summary_line();
    report
}

fn judge_clause(
    c: &Clause,
    findings: &[Finding],
    ev: &Evidence,
    waivers: &[Waiver],
    today: time::Date,
) -> ClauseResult {
    let against: Vec<&Finding> = findings
        .iter()
        .filter(|f| c.checks.contains(&f.kind))
        .collect();
    let clause_waived = waivers.iter().any(|w| {
        w.expires >= today
            && matches!(&w.target, WaiverTarget::Clause(x) if x == &c.id || x == &c.section)
    });
    let (verdict, reason) = if let Some(why) = &c.untestable {
        (ClauseVerdict::NotTested, Some(why.clone()))
    } else if c.checks.is_empty() {
        (
            ClauseVerdict::NotTested,
            Some("no check covers this sentence".to_owned()),
        )
    } else if against.iter().any(|f| f.waiver.is_none()) && !clause_waived {
        (ClauseVerdict::Fail, None)
    } else if !against.is_empty() || clause_waived {
        (
            ClauseVerdict::Waived,
            Some("every finding against it is waived".to_owned()),
        )
    } else {
        let not_run: Vec<String> = c
            .checks
            .iter()
            .filter_map(|k| {
                check::kind(k)
                    .and_then(|kind| check::not_run_reason(kind, ev))
                    .map(|r| format!("{k}: {r}"))
            })
            .collect();
        if not_run.is_empty() {
            (ClauseVerdict::Pass, None)
        } else {
            (ClauseVerdict::NotTested, Some(not_run.join("; ")))
        }
    };
    ClauseResult {
        id: c.id.clone(),
        section: c.section.clone(),
        title: c.title.clone(),
        sentence: c.sentence.clone(),
        verdict,
        checks: c.checks.clone(),
        findings: against.iter().map(|f| f.id.clone()).collect(),
        reason,
    }
}

/// How a scenario went: not run when it sent nothing, incomplete when it sent less than it
/// holds, failed on an unexpected status or an unwaived finding, passed otherwise.
fn outcome(planned: u32, sent: u32, status_ok: bool, has_finding: bool) -> ScenarioOutcome {
    if sent == 0 {
        ScenarioOutcome::NotRun
    } else if !status_ok || has_finding {
        ScenarioOutcome::Fail
    } else if sent < planned {
        ScenarioOutcome::Incomplete
    } else {
        ScenarioOutcome::Pass
    }
}

fn scenario_result(s: &ScenarioPlan, ev: &Evidence, findings: &[Finding]) -> ScenarioResult {
    let requests: Vec<_> = ev.requests.iter().filter(|r| r.scenario == s.id).collect();
    // Property cases are drawn as they run: their plan is a number of cases, not of requests.
    let (planned, sent) = if s.id == crate::plan::PROPERTY_SCENARIO {
        (ev.property_cases.0, ev.property_cases.1)
    } else {
        (s.requests, requests.len() as u32)
    };
    let ids: BTreeSet<u32> = requests.iter().map(|r| r.id).collect();
    let status_ok = requests
        .iter()
        .all(|r| r.expected_status.is_none() || r.expected_status == r.status);
    // A waived finding is accepted for now: it does not fail its scenario either.
    let has_finding = findings
        .iter()
        .any(|f| f.waiver.is_none() && f.scenario.as_deref() == Some(s.id.as_str()));
    let (start, end) = (
        requests.iter().map(|r| r.started_ms).min().unwrap_or(0),
        requests.iter().map(|r| r.ended_ms).max().unwrap_or(0),
    );
    let mut timeline = Vec::new();
    for r in &requests {
        timeline.push(TimelineEntry {
            t_ms: r.started_ms,
            source: "harness".into(),
            what: format!("request {} sent to the pipeline", r.id),
            request: Some(r.id),
        });
        timeline.push(TimelineEntry {
            t_ms: r.ended_ms,
            source: "harness".into(),
            what: match (r.status, &r.error) {
                (Some(st), _) => format!("request {} answered {st}", r.id),
                (None, Some(e)) => format!("request {} ended without an answer: {e}", r.id),
                (None, None) => format!("request {} ended without an answer", r.id),
            },
            request: Some(r.id),
        });
    }
    for call in &ev.provider_calls {
        if let Some(owner) = call.carried_images_of.iter().find(|id| ids.contains(id)) {
            let r = &call.recorded;
            timeline.push(TimelineEntry {
                t_ms: call.t_ms,
                source: format!("mock {}", r.provider),
                what: format!(
                    "{} {} model {} answered {} ({})",
                    r.method,
                    r.path,
                    r.model.as_deref().unwrap_or("none"),
                    r.status,
                    r.behaviour
                ),
                request: Some(*owner),
            });
        }
    }
    for e in ev
        .events
        .iter()
        .filter(|e| e.t_ms >= start && e.t_ms <= end + 1)
    {
        let what = match &e.kind {
            EventKind::FileWritten { path, .. } => format!("file written: {}", path.display()),
            EventKind::FileVanished { path, .. } => {
                format!("file written and removed: {}", path.display())
            }
            EventKind::Connect {
                address, result, ..
            } => format!("connect {address} = {result}"),
            EventKind::DnsQuery { name, .. } => format!("DNS lookup {name}"),
            EventKind::Exec { argv } => format!("exec {}", argv.join(" ")),
            EventKind::Output { stream, .. } => format!("canary in {stream}"),
            _ => continue,
        };
        timeline.push(TimelineEntry {
            t_ms: e.t_ms,
            source: format!("{:?}", e.monitor).to_lowercase(),
            what,
            request: check::request_at(ev, e.t_ms),
        });
    }
    // A request still waiting on a provider at the last memory scan was not judged for memory.
    let last_scan = ev.memory_scans.last().copied().unwrap_or(0);
    for id in check::still_processing(ev)
        .into_iter()
        .filter(|id| ids.contains(id))
    {
        timeline.push(TimelineEntry {
            t_ms: last_scan,
            source: "memory".into(),
            what: format!(
                "request {id} still processing (a provider call open) at the last memory scan: not judged for memory-retention"
            ),
            request: Some(id),
        });
    }
    timeline.sort_by_key(|t| t.t_ms);
    // Property cases: a passing case's requests are counted, not listed (the evidence file
    // keeps them); a failing case's, and any a finding names, keep their rows and timelines.
    let (requests, passing) = if s.id == crate::plan::PROPERTY_SCENARIO {
        let (listed, counted): (Vec<_>, Vec<_>) = requests.into_iter().partition(|r| {
            ev.failed_case_requests.contains(&r.id)
                || r.status.is_none()
                || findings.iter().any(|f| f.request == Some(r.id))
        });
        let listed_ids: BTreeSet<u32> = listed.iter().map(|r| r.id).collect();
        timeline.retain(|t| t.request.is_none_or(|id| listed_ids.contains(&id)));
        (listed, Some(passing_requests(&counted)))
    } else {
        (requests, None)
    };
    ScenarioResult {
        id: s.id.clone(),
        title: s.title.clone(),
        clauses: s.clauses.clone(),
        outcome: outcome(planned, sent, status_ok, has_finding),
        requests_not_sent: planned.saturating_sub(sent),
        passing,
        requests: requests
            .iter()
            .map(|r| RequestResult {
                id: r.id,
                provider: r.provider.clone(),
                provider_behaviour: r.behaviour.clone(),
                client: r.client.label().to_owned(),
                age_confirmed: r.age == Age::Confirmed,
                status: r.status,
                expected_status: r.expected_status,
                duration_ms: r.ended_ms.saturating_sub(r.started_ms),
                note: request_note(r),
            })
            .collect(),
        timeline,
    }
}

/// The requests of passing property cases, aggregated (see [`PassingRequests`]).
fn passing_requests(requests: &[&crate::evidence::SentRequest]) -> PassingRequests {
    use sha2::{Digest as _, Sha256};
    let mut agg = PassingRequests {
        fingerprint: format!("{:016x}", 0),
        ..PassingRequests::default()
    };
    let mut fingerprint = 0u64;
    for r in requests {
        let behaviour = r.behaviour.join(",");
        let status = r
            .status
            .map_or_else(|| "none".to_owned(), |s| s.to_string());
        let duration = r.ended_ms.saturating_sub(r.started_ms);
        agg.requests += 1;
        *agg.providers.entry(r.provider.clone()).or_default() += 1;
        *agg.statuses.entry(status.clone()).or_default() += 1;
        *agg.durations
            .entry(PassingRequests::bucket(duration))
            .or_default() += 1;
        agg.total_ms += duration;
        agg.max_ms = agg.max_ms.max(duration);
        let hash = Sha256::digest(format!("{}|{}|{behaviour}|{status}", r.id, r.provider));
        fingerprint = fingerprint.wrapping_add(u64::from_le_bytes(
            hash[..8].try_into().expect("a SHA-256 has 32 bytes"),
        ));
        *agg.behaviours.entry(behaviour).or_default() += 1;
    }
    agg.fingerprint = format!("{fingerprint:016x}");
    agg
}

/// What a reader of a request's row must know: a status other than expected, the error that
/// ended it, and what a shared prompt keeps the audit from seeing.
fn request_note(r: &crate::evidence::SentRequest) -> Option<String> {
    let outcome = match (&r.error, r.expected_status, r.status) {
        (_, Some(want), Some(got)) if want != got => Some(format!("expected {want}, got {got}")),
        (Some(e), _, None) if r.expected_status.is_some() => Some(e.clone()),
        _ => None,
    };
    let shared = r.shared_prompt.then_some(
        "shared prompt, sent without a marker: where this prompt went (a log, a file, a provider \
         call) is not looked for, and its calls are attributed by its image and ids alone",
    );
    match (outcome, shared) {
        (Some(o), Some(s)) => Some(format!("{o}; {s}")),
        (o, s) => o.or(s.map(str::to_owned)),
    }
}

/// The pipeline's daemons, each once: those found after a batch of requests (naming the requests
/// they outlived) and those the stop found (all of them killed there).
fn orphans(ev: &Evidence) -> Vec<Orphan> {
    use traceless_evidence::events::Orphan as Seen;
    let same = |a: &Seen, b: &Seen| a.pid == b.pid && a.started_ms == b.started_ms;
    let why = |o: &Seen| match o.why {
        OrphanReason::LeftSession => "left the pipeline's session (setsid)",
        OrphanReason::Reparented => "was re-parented (a double fork)",
        OrphanReason::OutlivedMain => "outlived the pipeline's main process",
    };
    let started = |o: &Seen| {
        o.started_ms
            .map(|t| format!(", started at {t} ms"))
            .unwrap_or_default()
    };
    let during = ev.orphans_during.iter().map(|d| {
        let o = &d.orphan;
        let end = if ev.orphans.iter().any(|s| same(s, o)) {
            "still running at the stop, and killed there"
        } else {
            "gone by the stop"
        };
        Orphan {
            pid: o.pid,
            argv: o.argv.clone(),
            detail: format!(
                "{}{}; found at {} ms, once request{} {} of scenario {} had been answered; {end}",
                why(o),
                started(o),
                o.seen_ms,
                if d.after_requests.len() == 1 { "" } else { "s" },
                d.after_requests
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                d.scenario,
            ),
            scenario: Some(d.scenario.clone()),
            requests: d.after_requests.clone(),
        }
    });
    let at_stop = ev
        .orphans
        .iter()
        .filter(|o| !ev.orphans_during.iter().any(|d| same(&d.orphan, o)))
        .map(|o| Orphan {
            pid: o.pid,
            argv: o.argv.clone(),
            detail: format!(
                "{}{}; found at {} ms and killed at the stop",
                why(o),
                started(o),
                o.seen_ms
            ),
            scenario: None,
            requests: Vec::new(),
        });
    during.chain(at_stop).collect()
}

#[cfg(test)]
mod tests;
