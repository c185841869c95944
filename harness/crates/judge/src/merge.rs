//! Merging the reports of a sharded audit (`traceless audit --shard k/n`) into the one report an
//! unsharded run with the same seed would have written.
//!
//! Each shard ran its share of the scenarios and property cases (see [`Shard::owns`]) against
//! its own pipeline, so what each saw is evidence of its share only. The merge is pure: it reads
//! finished reports, does no I/O, and judges each clause once more from the shards' verdicts.
//!
//! - Shards of different audits (seed, count, config, policy, clause map, harness version or
//!   case count differ), two reports for one shard, or a report that is not a shard's are
//!   refused: there is no honest merge of them.
//! - A shard that is missing, or that ended incomplete, leaves the merge incomplete: its work
//!   was not exercised, so the merged report can never pass on it.
//! - A clause fails when it failed in any shard, is waived when waived in one and failed in
//!   none, passes when it passed in at least one shard and was not-tested in the others (the
//!   checks' "exercised" rules ask for some request of a kind, which one shard's share may lack
//!   while another's has it), and is not-tested only when no shard judged it.
//! - Findings are renumbered `F1`, ... in shard order; scenarios return to the order of the
//!   unsharded run; the property cases of every shard become the one `properties` scenario.
//! - A monitor takes its worst state over the shards; errors, orphans and crashes keep the
//!   shard they came from in their text.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{Context as _, bail};

use crate::plan::PROPERTY_SCENARIO;

use traceless_report::{
    ClauseResult, ClauseVerdict, FileDigest, Finding, MonitorEntry, Report, ScenarioOutcome,
    ScenarioResult, Shard,
};

/// The title of the property cases' scenario in a report of the whole audit.
pub fn properties_title(cases: u32, seed: u64) -> String {
    format!(
        "{cases} property cases drawn from seed {seed}; {}",
        case_batches()
    )
}

/// Requests of property cases sent at once, at most: cases are sent together, in one batch of up
/// to this many requests (a case draws at most four, all sent at once), each request under its
/// own script (so one case's faults never reach another's), and each case is judged on its own
/// requests. A finding that names no request (a connection to an unlisted host, a file with no
/// needle in it) counts against every case of its batch; a failing case is then shrunk alone.
/// Four, as many as one case sends: no backend sees more requests at once than cases sent one
/// by one would show it. At 16 in flight a backend on Python's `http.server` (a listen backlog
/// of five) refused connections, and at 8 the faulty test suite's clean pipeline once kept 64
/// bytes of an upload in memory past the grace period: findings of the load, not of the cases.
pub const REQUESTS_AT_ONCE: usize = 4;

/// How property cases run together, and what that means for judging them, as every report says
/// beside them.
pub fn case_batches() -> String {
    format!(
        "cases run together, up to {REQUESTS_AT_ONCE} requests at once, each under its own scripted provider \
         faults; a case is judged on its own requests and on any finding of its batch that names \
         no request, and a failing case is shrunk alone"
    )
}

/// A shard's report, with where it was read from and its digest (for the merged provenance).
pub struct Part {
    pub file: FileDigest,
    pub report: Report,
}

/// Merges the reports of one sharded audit. Errors when they are not the shards of one audit.
pub fn merge(mut parts: Vec<Part>) -> anyhow::Result<Report> {
    let Some(first) = parts.first() else {
        bail!("nothing to merge: give the report.json of every shard");
    };
    let count = shard_of(first)?.count;
    for part in &parts {
        same_audit(first, part)?;
    }
    parts.sort_by_key(|p| p.report.provenance.shard.map(|s| s.index));
    if let Some(pair) = parts.windows(2).find(|w| {
        w[0].report.provenance.shard.map(|s| s.index)
            == w[1].report.provenance.shard.map(|s| s.index)
    }) {
        bail!(
            "{} and {} are both shard {}",
            pair[0].file.path,
            pair[1].file.path,
            shard_label(&pair[0])
        );
    }
    let mut errors = Vec::new();
    let present: Vec<u32> = parts
        .iter()
        .filter_map(|p| p.report.provenance.shard)
        .map(|s| s.index)
        .collect();
    for index in (1..=count).filter(|i| !present.contains(i)) {
        errors.push(format!(
            "shard {index}/{count} is missing: no report was given for it, so its scenarios and property cases were not exercised"
        ));
    }
    for part in &parts {
        let label = shard_label(part);
        if part.report.effective_verdict() == traceless_report::Verdict::Incomplete {
            errors.push(format!(
                "shard {label} ended incomplete: {}",
                part.report.summary
            ));
        }
        errors.extend(
            part.report
                .errors
                .iter()
                .map(|e| format!("shard {label}: {e}")),
        );
    }

    let (findings, renumbered) = findings(&parts);
    let mut report = Report {
        provenance: provenance(&parts),
        monitors: monitors(&parts),
        clauses: clauses(&parts, &renumbered),
        findings,
        scenarios: scenarios(&parts, count),
        waivers: waivers(&parts),
        degraded: parts.iter().any(|p| p.report.degraded),
        interrupted: parts.iter().find_map(|p| p.report.interrupted.clone()),
        crash: parts.iter().find_map(|p| p.report.crash.clone()),
        orphans: parts
            .iter()
            .flat_map(|p| p.report.orphans.clone())
            .collect(),
        // Each shard ran its own copy of every declared service, and read its own folder.
        services: parts
            .iter()
            .flat_map(|p| {
                let label = shard_label(p);
                p.report
                    .services
                    .iter()
                    .map(move |s| traceless_report::ServiceEntry {
                        name: format!("{} (shard {label})", s.name),
                        ..s.clone()
                    })
            })
            .collect(),
        ..Report::default()
    };
    for part in parts.iter().filter(|p| p.report.crash.is_some()) {
        let crash = part.report.crash.as_ref().expect("filtered");
        errors.push(format!(
            "shard {}: the pipeline died: {}",
            shard_label(part),
            crash.status
        ));
    }
    report.errors = errors;
    report.verdict = report.derived_verdict();
    report.summary = report.summary_line();
    Ok(report)
}

fn shard_of(part: &Part) -> anyhow::Result<Shard> {
    part.report.provenance.shard.with_context(|| {
        format!(
            "{}: provenance.shard is absent: it is the report of a whole audit, not of a shard (`traceless audit --shard k/n`)",
            part.file.path
        )
    })
}

fn shard_label(part: &Part) -> String {
    part.report
        .provenance
        .shard
        .map_or_else(|| "?".to_owned(), |s| s.to_string())
}

/// Refuses a part that is not a shard of the same audit as `first`.
fn same_audit(first: &Part, part: &Part) -> anyhow::Result<()> {
    let (a, b) = (&first.report.provenance, &part.report.provenance);
    let (sa, sb) = (shard_of(first)?, shard_of(part)?);
    let differs: Vec<(&str, String, String)> = [
        (
            "provenance.shard (count)",
            sa.count.to_string(),
            sb.count.to_string(),
        ),
        ("provenance.seed", a.seed.to_string(), b.seed.to_string()),
        ("provenance.cases", a.cases.to_string(), b.cases.to_string()),
        (
            "provenance.harness-version",
            a.harness_version.clone(),
            b.harness_version.clone(),
        ),
        (
            "provenance.config.sha256",
            a.config.sha256.clone(),
            b.config.sha256.clone(),
        ),
        (
            "provenance.policy.sha256",
            a.policy.sha256.clone(),
            b.policy.sha256.clone(),
        ),
        (
            "provenance.clause-map.sha256",
            a.clause_map.sha256.clone(),
            b.clause_map.sha256.clone(),
        ),
    ]
    .into_iter()
    .filter(|(_, x, y)| x != y)
    .collect();
    if let Some((key, x, y)) = differs.first() {
        bail!(
            "{} and {} are not shards of one audit: {key} is {x} in the first and {y} in the second",
            first.file.path,
            part.file.path
        );
    }
    let ids = |r: &Report| r.clauses.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
    if ids(&first.report) != ids(&part.report) {
        bail!(
            "{} and {} judge different clauses",
            first.file.path,
            part.file.path
        );
    }
    Ok(())
}

/// Every finding, renumbered in shard order; and per part, its old id -> new id.
fn findings(parts: &[Part]) -> (Vec<Finding>, Vec<BTreeMap<String, String>>) {
    let mut all = Vec::new();
    let mut maps = Vec::new();
    for part in parts {
        let mut map = BTreeMap::new();
        for f in &part.report.findings {
            let id = format!("F{}", all.len() + 1);
            map.insert(f.id.clone(), id.clone());
            all.push(Finding { id, ..f.clone() });
        }
        maps.push(map);
    }
    (all, maps)
}

fn clauses(parts: &[Part], renumbered: &[BTreeMap<String, String>]) -> Vec<ClauseResult> {
    let first = &parts[0].report.clauses;
    first
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let each: Vec<(&Part, &ClauseResult)> =
                parts.iter().map(|p| (p, &p.report.clauses[i])).collect();
            let findings = each
                .iter()
                .zip(renumbered)
                .flat_map(|((_, c), map)| c.findings.iter().filter_map(|f| map.get(f).cloned()))
                .collect();
            let (verdict, reason) = clause_verdict(&each);
            ClauseResult {
                verdict,
                reason,
                findings,
                ..c.clone()
            }
        })
        .collect()
}

/// A clause's verdict over the shards (see the module's rules).
fn clause_verdict(each: &[(&Part, &ClauseResult)]) -> (ClauseVerdict, Option<String>) {
    let any = |v: ClauseVerdict| each.iter().any(|(_, c)| c.verdict == v);
    if any(ClauseVerdict::Fail) {
        return (ClauseVerdict::Fail, None);
    }
    if any(ClauseVerdict::Waived) {
        let reason = each.iter().find_map(|(_, c)| {
            (c.verdict == ClauseVerdict::Waived)
                .then(|| c.reason.clone())
                .flatten()
        });
        return (ClauseVerdict::Waived, reason);
    }
    if any(ClauseVerdict::Pass) {
        return (ClauseVerdict::Pass, None);
    }
    let mut reasons: Vec<String> = Vec::new();
    for (_, c) in each {
        if let Some(r) = &c.reason
            && !reasons.contains(r)
        {
            reasons.push(r.clone());
        }
    }
    let reason = match reasons.len() {
        0 => None,
        1 => reasons.pop(),
        _ => Some(
            each.iter()
                .filter_map(|(p, c)| {
                    c.reason
                        .as_ref()
                        .map(|r| format!("shard {}: {r}", shard_label(p)))
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    (ClauseVerdict::NotTested, reason)
}

/// The scenarios in the unsharded run's order, then the one `properties` scenario.
fn scenarios(parts: &[Part], count: u32) -> Vec<ScenarioResult> {
    let seed = parts[0].report.provenance.seed;
    let mut queues: BTreeMap<u32, VecDeque<&ScenarioResult>> = BTreeMap::new();
    for part in parts {
        let index = part.report.provenance.shard.map_or(0, |s| s.index);
        queues.insert(
            index,
            part.report
                .scenarios
                .iter()
                .filter(|s| s.id != PROPERTY_SCENARIO)
                .collect(),
        );
    }
    let mut merged = Vec::new();
    let mut position = 0u64;
    // Position i of the unsharded list belongs to the shard that owns i; a missing shard's
    // positions are skipped (the merge is incomplete for it already).
    while queues.values().any(|q| !q.is_empty()) {
        let owner = (1..=count)
            .find(|&index| Shard { index, count }.owns(position, seed))
            .expect("every position has an owner");
        match queues.get_mut(&owner).map(VecDeque::pop_front) {
            Some(Some(s)) => merged.push(s.clone()),
            // A shard that ran fewer scenarios than its share: the rest are listed as they are.
            Some(None) => {
                for q in queues.values_mut() {
                    merged.extend(q.drain(..).cloned());
                }
            }
            None => {}
        }
        position += 1;
    }
    let properties: Vec<&ScenarioResult> = parts
        .iter()
        .flat_map(|p| p.report.scenarios.iter())
        .filter(|s| s.id == PROPERTY_SCENARIO)
        .collect();
    if !properties.is_empty() {
        let provenance = &parts[0].report.provenance;
        merged.push(merge_properties(
            &properties,
            properties_title(provenance.cases, provenance.seed),
        ));
    }
    merged
}

fn merge_properties(parts: &[&ScenarioResult], title: String) -> ScenarioResult {
    let mut requests: Vec<_> = parts.iter().flat_map(|s| s.requests.clone()).collect();
    requests.sort_by_key(|r| r.id);
    let requests_not_sent: u32 = parts.iter().map(|s| s.requests_not_sent).sum();
    let mut passing: Option<traceless_report::PassingRequests> = None;
    for p in parts.iter().filter_map(|s| s.passing.as_ref()) {
        passing.get_or_insert_with(Default::default).add(p);
    }
    let sent = !requests.is_empty() || passing.as_ref().is_some_and(|p| p.requests > 0);
    let outcome = if parts.iter().any(|s| s.outcome == ScenarioOutcome::Fail) {
        ScenarioOutcome::Fail
    } else if !sent {
        ScenarioOutcome::NotRun
    } else if requests_not_sent > 0 || parts.iter().any(|s| s.outcome != ScenarioOutcome::Pass) {
        ScenarioOutcome::Incomplete
    } else {
        ScenarioOutcome::Pass
    };
    ScenarioResult {
        id: PROPERTY_SCENARIO.to_owned(),
        title,
        clauses: parts[0].clauses.clone(),
        outcome,
        // An incomplete merge must say what was not sent, even when a shard says it otherwise.
        requests_not_sent: if outcome == ScenarioOutcome::Incomplete {
            requests_not_sent.max(1)
        } else {
            requests_not_sent
        },
        requests,
        timeline: parts.iter().flat_map(|s| s.timeline.clone()).collect(),
        passing,
    }
}

fn monitors(parts: &[Part]) -> Vec<MonitorEntry> {
    let rank = |state: &str| match state {
        "active" => 0,
        "degraded" => 1,
        _ => 2,
    };
    let mut merged: Vec<MonitorEntry> = Vec::new();
    for part in parts {
        for m in &part.report.monitors {
            let reason = m
                .reason
                .as_ref()
                .map(|r| format!("shard {}: {r}", shard_label(part)));
            match merged.iter_mut().find(|x| x.name == m.name) {
                None => merged.push(MonitorEntry {
                    reason,
                    ..m.clone()
                }),
                Some(x) => {
                    if rank(&m.state) > rank(&x.state) {
                        x.state = m.state.clone();
                    }
                    x.required |= m.required;
                    x.reason = match (x.reason.take(), reason) {
                        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
    }
    merged
}

fn waivers(parts: &[Part]) -> Vec<traceless_report::WaiverEntry> {
    let mut merged = parts[0].report.waivers.clone();
    for part in &parts[1..] {
        for (w, other) in merged.iter_mut().zip(&part.report.waivers) {
            w.used |= other.used;
            w.expired |= other.expired;
        }
    }
    merged
}

fn provenance(parts: &[Part]) -> traceless_report::Provenance {
    let first = &parts[0].report.provenance;
    let mut scenarios: Vec<FileDigest> = Vec::new();
    for part in parts {
        for s in &part.report.provenance.scenarios {
            if !scenarios.contains(s) {
                scenarios.push(s.clone());
            }
        }
    }
    scenarios.sort_by(|a, b| a.path.cmp(&b.path));
    traceless_report::Provenance {
        scenarios,
        started_at: parts
            .iter()
            .map(|p| p.report.provenance.started_at.clone())
            .min()
            .unwrap_or_default(),
        duration_ms: parts
            .iter()
            .map(|p| p.report.provenance.duration_ms)
            .max()
            .unwrap_or(0),
        ci: parts.iter().all(|p| p.report.provenance.ci),
        shard: None,
        // A shard names its evidence file relative to its report: here, relative to the merge's inputs.
        evidence: parts
            .iter()
            .flat_map(|p| {
                let folder = std::path::Path::new(&p.file.path)
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                p.report
                    .provenance
                    .evidence
                    .iter()
                    .map(move |d| FileDigest {
                        path: folder.join(&d.path).display().to_string(),
                        ..d.clone()
                    })
            })
            .collect(),
        merged_from: parts.iter().map(|p| p.file.clone()).collect(),
        ..first.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use traceless_report::RequestResult;
    use traceless_report::{Verdict, sample};

    fn part(report: &Report, index: u32, count: u32) -> Part {
        let mut report = report.clone();
        report.provenance.shard = Some(Shard { index, count });
        Part {
            file: FileDigest {
                path: format!("shard-{index}/report.json"),
                sha256: format!("{index:064x}"),
            },
            report,
        }
    }

    /// A whole audit: the passing sample with more scenarios and some property cases.
    fn whole() -> Report {
        let mut report = sample::passing();
        let extra: Vec<ScenarioResult> = (1..=5)
            .map(|i| ScenarioResult {
                id: format!("extra-{i}"),
                ..report.scenarios[0].clone()
            })
            .collect();
        report.scenarios.extend(extra);
        report.provenance.cases = 6;
        report.scenarios.push(ScenarioResult {
            id: PROPERTY_SCENARIO.into(),
            title: properties_title(6, report.provenance.seed),
            requests: (1..=9)
                .map(|id| RequestResult {
                    id,
                    ..report.scenarios[0].requests[0].clone()
                })
                .collect(),
            passing: Some(passing(30, 40)),
            ..report.scenarios[0].clone()
        });
        report
    }

    /// `n` passing requests (ids from `first`), aggregated as an audit does.
    fn passing(first: u64, n: u64) -> traceless_report::PassingRequests {
        let mut p = traceless_report::PassingRequests {
            fingerprint: format!("{:016x}", 0),
            ..Default::default()
        };
        for id in first..first + n {
            p.add(&traceless_report::PassingRequests {
                requests: 1,
                providers: [("openai".to_owned(), 1)].into(),
                behaviours: [("ok".to_owned(), 1)].into(),
                statuses: [("200".to_owned(), 1)].into(),
                durations: [(traceless_report::PassingRequests::bucket(id), 1)].into(),
                total_ms: id,
                max_ms: id,
                fingerprint: format!("{:016x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            });
        }
        p
    }

    /// The whole audit cut as `traceless audit --shard k/n` would run it.
    fn split(report: &Report, count: u32) -> Vec<Part> {
        let seed = report.provenance.seed;
        (1..=count)
            .map(|index| {
                let shard = Shard { index, count };
                let mut p = part(report, index, count);
                let (props, mut rest): (Vec<_>, Vec<_>) = p
                    .report
                    .scenarios
                    .drain(..)
                    .partition(|s| s.id == PROPERTY_SCENARIO);
                rest = rest
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| shard.owns(*i as u64, seed))
                    .map(|(_, s)| s)
                    .collect();
                for mut s in props {
                    s.requests.retain(|r| shard.owns(u64::from(r.id), seed));
                    // The passing requests dealt the same way, aggregated per shard.
                    let mut mine = passing(30, 0);
                    for id in (30..70).filter(|&id| shard.owns(id, seed)) {
                        mine.add(&passing(id, 1));
                    }
                    s.passing = Some(mine);
                    rest.push(s);
                }
                p.report.scenarios = rest;
                p
            })
            .collect()
    }

    fn outline(
        r: &Report,
    ) -> Vec<(
        String,
        ScenarioOutcome,
        usize,
        Option<traceless_report::PassingRequests>,
    )> {
        r.scenarios
            .iter()
            .map(|s| (s.id.clone(), s.outcome, s.requests.len(), s.passing.clone()))
            .collect()
    }

    fn verdicts(r: &Report) -> Vec<(String, ClauseVerdict)> {
        r.clauses
            .iter()
            .map(|c| (c.id.clone(), c.verdict))
            .collect()
    }

    #[test]
    fn shards_parse_and_deal_every_position_to_exactly_one() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err();
            assert!(err.contains("k/n"), "{bad}: {err}");
        }
        for count in 1..=5 {
            for seed in [0, 1, 7, u64::MAX] {
                for position in 0..40 {
                    let owners = (1..=count)
                        .filter(|&index| Shard { index, count }.owns(position, seed))
                        .count();
                    assert_eq!(
                        owners, 1,
                        "position {position} of {count} shards, seed {seed}"
                    );
                }
            }
        }
    }

    #[test]
    fn merged_shards_give_back_the_whole_audit() {
        let whole = whole();
        for count in [1, 2, 3, 4] {
            let merged = merge(split(&whole, count)).unwrap();
            assert_eq!(outline(&merged), outline(&whole), "{count} shards");
            assert_eq!(verdicts(&merged), verdicts(&whole), "{count} shards");
            assert_eq!(merged.verdict, Verdict::Pass, "{}", merged.summary);
            assert_eq!(
                merged.scenarios.last().unwrap().title,
                properties_title(6, whole.provenance.seed)
            );
            assert_eq!(merged.provenance.shard, None);
            assert_eq!(merged.provenance.merged_from.len(), count as usize);
            assert!(merged.problems().is_empty(), "{:?}", merged.problems());
        }
    }

    #[test]
    fn a_clause_passes_when_one_shard_exercised_it_and_none_broke_it() {
        let whole = sample::passing();
        let mut parts = split(&whole, 2);
        let judged = whole
            .clauses
            .iter()
            .position(|c| c.verdict == ClauseVerdict::Pass)
            .unwrap();
        parts[0].report.clauses[judged].verdict = ClauseVerdict::NotTested;
        parts[0].report.clauses[judged].reason = Some("no request without age confirmation".into());
        let merged = merge(parts).unwrap();
        assert_eq!(merged.clauses[judged].verdict, ClauseVerdict::Pass);

        let mut parts = split(&whole, 2);
        for (p, why) in parts.iter_mut().zip(["reason one", "reason two"]) {
            p.report.clauses[judged].verdict = ClauseVerdict::NotTested;
            p.report.clauses[judged].reason = Some(why.into());
        }
        let merged = merge(parts).unwrap();
        assert_eq!(merged.clauses[judged].verdict, ClauseVerdict::NotTested);
        assert_eq!(
            merged.clauses[judged].reason.as_deref(),
            Some("shard 1/2: reason one; shard 2/2: reason two")
        );
    }

    #[test]
    fn findings_of_every_shard_are_renumbered_and_fail_their_clauses() {
        let failing = sample::failing();
        let n = failing.findings.len();
        let mut passing = sample::passing();
        passing.provenance = failing.provenance.clone();
        let merged = merge(vec![part(&failing, 2, 2), part(&passing, 1, 2)]).unwrap();
        assert_eq!(merged.findings.len(), n);
        assert_eq!(merged.findings[0].id, "F1");
        let merged = merge(vec![part(&failing, 1, 2), part(&failing, 2, 2)]).unwrap();
        assert_eq!(merged.findings.len(), 2 * n);
        let ids: Vec<&str> = merged.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids.last().copied(), Some(format!("F{}", 2 * n).as_str()));
        assert_eq!(merged.effective_verdict(), Verdict::Fail);
        let failed = merged
            .clauses
            .iter()
            .find(|c| c.verdict == ClauseVerdict::Fail)
            .unwrap();
        assert!(failed.findings.len() >= 2, "{failed:?}");
        // Only the broken-by-design sample's own contradictions remain (none from the merge).
        assert!(
            merged
                .problems()
                .iter()
                .all(|p| !p.contains("unknown finding")),
            "{:?}",
            merged.problems()
        );
    }

    #[test]
    fn a_missing_or_incomplete_shard_leaves_the_merge_incomplete() {
        let whole = whole();
        let mut parts = split(&whole, 3);
        parts.remove(1);
        let merged = merge(parts).unwrap();
        assert_eq!(
            merged.effective_verdict(),
            Verdict::Incomplete,
            "{}",
            merged.summary
        );
        assert!(
            merged
                .errors
                .iter()
                .any(|e| e.starts_with("shard 2/3 is missing")),
            "{:?}",
            merged.errors
        );
        assert_eq!(merged.provenance.merged_from.len(), 2);

        let merged = merge(vec![
            part(&sample::cut_short(), 1, 2),
            part(&sample::passing(), 2, 2),
        ])
        .unwrap();
        assert_eq!(
            merged.effective_verdict(),
            Verdict::Incomplete,
            "{}",
            merged.summary
        );
        assert!(
            merged
                .errors
                .iter()
                .any(|e| e.starts_with("shard 1/2 ended incomplete")),
            "{:?}",
            merged.errors
        );
        assert!(merged.crash.is_some());
        assert!(merged.degraded);
    }

    #[test]
    fn reports_of_different_audits_are_refused() {
        let whole = whole();
        let mut parts = split(&whole, 2);
        parts[1].report.provenance.seed += 1;
        let err = merge(parts).unwrap_err().to_string();
        assert!(
            err.contains("provenance.seed") && err.contains("shard-2/report.json"),
            "{err}"
        );

        let err = merge(vec![part(&whole, 1, 2), part(&whole, 1, 2)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("both shard 1/2"), "{err}");

        let mut parts = split(&whole, 2);
        parts[0].report.provenance.shard = None;
        let err = merge(parts).unwrap_err().to_string();
        assert!(err.contains("not of a shard"), "{err}");

        let mut parts = split(&whole, 2);
        parts[1].report.provenance.config.sha256 = "0".repeat(64);
        let err = merge(parts).unwrap_err().to_string();
        assert!(err.contains("provenance.config.sha256"), "{err}");

        assert!(merge(Vec::new()).is_err());
    }

    #[test]
    fn monitors_take_their_worst_state() {
        let whole = sample::passing();
        let mut parts = split(&whole, 2);
        parts[1].report.monitors[0].state = "unavailable".into();
        parts[1].report.monitors[0].reason = Some("no strace".into());
        let merged = merge(parts).unwrap();
        assert_eq!(merged.monitors[0].state, "unavailable");
        assert_eq!(
            merged.monitors[0].reason.as_deref(),
            Some("shard 2/2: no strace")
        );
    }
}
