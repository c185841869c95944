//! Verdict logic over a finished report: counts, the verdict the facts support, the exit code,
//! the one-line summary, and consistency checks for reports read back from disk.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::model::{ClauseVerdict, MONITOR_STATES, Report, SCHEMA_ID, ScenarioOutcome, Verdict};
use crate::text::plural;

/// How many of each thing a report holds; what every sink shows first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Clauses in the map.
    pub clauses: usize,
    /// Clauses whose verdict is `pass`.
    pub clauses_passed: usize,
    /// Clauses whose verdict is `fail`.
    pub clauses_failed: usize,
    /// Clauses whose verdict is `not-tested`.
    pub clauses_not_tested: usize,
    /// Clauses whose verdict is `waived`.
    pub clauses_waived: usize,
    /// Findings, waived ones included.
    pub findings: usize,
    /// Findings a waiver covers.
    pub findings_waived: usize,
    /// Scenarios run.
    pub scenarios: usize,
    /// Scenarios that failed (an unexpected answer or a finding).
    pub scenarios_failed: usize,
    /// Scenarios not run, or not run to the end.
    pub scenarios_not_run: usize,
    /// Monitors.
    pub monitors: usize,
    /// Monitors not `active`.
    pub monitors_not_active: usize,
    /// Required monitors not `active`.
    pub required_monitors_not_active: usize,
}

impl Counts {
    /// Findings no waiver covers.
    pub fn findings_unwaived(&self) -> usize {
        self.findings - self.findings_waived
    }

    /// Clauses that got a verdict on evidence: passed, failed or waived.
    pub fn clauses_judged(&self) -> usize {
        self.clauses_passed + self.clauses_failed + self.clauses_waived
    }
}

impl Report {
    /// Counts of clauses, findings, scenarios and monitors.
    pub fn counts(&self) -> Counts {
        let clause = |v: ClauseVerdict| self.clauses.iter().filter(|c| c.verdict == v).count();
        Counts {
            clauses: self.clauses.len(),
            clauses_passed: clause(ClauseVerdict::Pass),
            clauses_failed: clause(ClauseVerdict::Fail),
            clauses_not_tested: clause(ClauseVerdict::NotTested),
            clauses_waived: clause(ClauseVerdict::Waived),
            findings: self.findings.len(),
            findings_waived: self.findings.iter().filter(|f| f.is_waived()).count(),
            scenarios: self.scenarios.len(),
            scenarios_failed: self
                .scenarios
                .iter()
                .filter(|s| s.outcome == ScenarioOutcome::Fail)
                .count(),
            scenarios_not_run: self
                .scenarios
                .iter()
                .filter(|s| {
                    matches!(
                        s.outcome,
                        ScenarioOutcome::NotRun | ScenarioOutcome::Incomplete
                    )
                })
                .count(),
            monitors: self.monitors.len(),
            monitors_not_active: self.monitors.iter().filter(|m| !m.is_active()).count(),
            required_monitors_not_active: self
                .monitors
                .iter()
                .filter(|m| m.required && !m.is_active())
                .count(),
        }
    }

    /// The verdict the facts in the report support, whatever [`Report::verdict`] says.
    ///
    /// A finding is evidence whatever else went wrong, so `fail` wins over `incomplete`. Without
    /// one, anything that leaves the policy less than exercised makes the audit `incomplete`: an
    /// error, a required monitor not active, an interruption, a crash, a scenario not run to its
    /// end, or no clause judged at all. A failed scenario without a finding only fails a run that
    /// was otherwise complete.
    pub fn derived_verdict(&self) -> Verdict {
        let counts = self.counts();
        if counts.findings_unwaived() > 0 || counts.clauses_failed > 0 {
            Verdict::Fail
        } else if !self.incomplete_causes().is_empty() {
            Verdict::Incomplete
        } else if counts.scenarios_failed > 0 {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }

    /// Why the audit cannot pass, short of a finding: empty when it was exercised end to end.
    pub fn incomplete_causes(&self) -> Vec<String> {
        let c = self.counts();
        let mut causes = Vec::new();
        if !self.errors.is_empty() {
            causes.push(plural(self.errors.len(), "error"));
        }
        if c.required_monitors_not_active > 0 {
            causes.push(format!(
                "{} not active",
                plural(c.required_monitors_not_active, "required monitor")
            ));
        }
        if let Some(signal) = &self.interrupted {
            causes.push(format!("interrupted by {signal}"));
        }
        if let Some(crash) = &self.crash {
            causes.push(format!("the pipeline died: {}", crash.status));
        }
        if c.scenarios_not_run > 0 {
            causes.push(format!(
                "{} not run to the end",
                plural(c.scenarios_not_run, "scenario")
            ));
        }
        if c.clauses_judged() == 0 {
            causes.push("no clause was judged".to_owned());
        }
        causes
    }

    /// The stricter of the stated and the derived verdict: a report never passes on its word alone.
    pub fn effective_verdict(&self) -> Verdict {
        let derived = self.derived_verdict();
        if self.verdict == Verdict::Fail || derived == Verdict::Fail {
            Verdict::Fail
        } else if self.verdict == Verdict::Incomplete || derived == Verdict::Incomplete {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        }
    }

    /// The process exit code for the audit: 0 pass, 1 an unwaived finding or failed clause
    /// (or scenario), 2 the audit could not be completed.
    pub fn exit_code(&self) -> i32 {
        match self.effective_verdict() {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Incomplete => 2,
        }
    }

    /// One line a pull-request reader understands, built from the facts, e.g.
    /// `FAIL: 3 findings (1 waived) break 2 of 14 clauses; 9 passed, 3 not tested; 2 of 12 scenarios failed; monitor degraded: egress`.
    pub fn summary_line(&self) -> String {
        let c = self.counts();
        let verdict = self.effective_verdict();
        let mut line = String::new();
        let _ = write!(line, "{}: ", verdict.as_str().to_uppercase());
        match verdict {
            Verdict::Fail if c.findings_unwaived() > 0 => {
                let _ = write!(line, "{}", plural(c.findings, "finding"));
                if c.findings_waived > 0 {
                    let _ = write!(line, " ({} waived)", c.findings_waived);
                }
                let _ = write!(line, " break {} of {} clauses", c.clauses_failed, c.clauses);
            }
            Verdict::Incomplete => {
                let _ = write!(
                    line,
                    "audit not completed ({})",
                    self.incomplete_causes().join(", ")
                );
                let _ = write!(
                    line,
                    "; {} of {} clauses judged",
                    c.clauses_failed + c.clauses_passed + c.clauses_waived,
                    c.clauses
                );
            }
            _ => {
                let _ = write!(line, "{} of {} clauses passed", c.clauses_passed, c.clauses);
                if c.findings > 0 {
                    let _ = write!(line, ", {} (all waived)", plural(c.findings, "finding"));
                }
            }
        }
        let mut rest = Vec::new();
        if verdict == Verdict::Fail && c.findings_unwaived() > 0 && c.clauses_passed > 0 {
            rest.push(format!("{} passed", c.clauses_passed));
        }
        if c.clauses_waived > 0 {
            rest.push(format!("{} waived", c.clauses_waived));
        }
        if c.clauses_not_tested > 0 {
            rest.push(format!("{} not tested", c.clauses_not_tested));
        }
        for part in rest {
            let _ = write!(line, ", {part}");
        }
        if c.scenarios_failed > 0 || c.scenarios_not_run > 0 {
            let (first, what) = if c.scenarios_failed > 0 {
                (c.scenarios_failed, "failed")
            } else {
                (c.scenarios_not_run, "not run")
            };
            let _ = write!(line, "; {first} of {} scenarios {what}", c.scenarios);
            if c.scenarios_failed > 0 && c.scenarios_not_run > 0 {
                let _ = write!(line, ", {} not run", c.scenarios_not_run);
            }
        } else {
            let _ = write!(line, "; {} passed", plural(c.scenarios, "scenario"));
        }
        let weak: Vec<String> = self
            .monitors
            .iter()
            .filter(|m| !m.is_active())
            .map(|m| {
                format!(
                    "{} {}{}",
                    m.name,
                    m.state,
                    if m.required { " (required)" } else { "" }
                )
            })
            .collect();
        if !weak.is_empty() {
            let _ = write!(line, "; monitor {}", weak.join(", "));
        }
        if self.degraded {
            line.push_str("; DEGRADED (--allow-degraded)");
        }
        line
    }

    /// Consistency problems a reader should not trust a report with: wrong schema, unknown
    /// monitor states, findings and clauses that point at nothing, a stated verdict the facts
    /// contradict. Empty when the report is sound.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.schema != SCHEMA_ID {
            problems.push(format!(
                "schema is {:?}, expected {SCHEMA_ID:?}",
                self.schema
            ));
        }
        for m in &self.monitors {
            if !MONITOR_STATES.contains(&m.state.as_str()) {
                problems.push(format!(
                    "monitor {} has state {:?}, expected one of {}",
                    m.name,
                    m.state,
                    MONITOR_STATES.join(", ")
                ));
            }
        }
        let clause_ids: HashSet<&str> = self.clauses.iter().map(|c| c.id.as_str()).collect();
        let finding_ids: HashSet<&str> = self.findings.iter().map(|f| f.id.as_str()).collect();
        if clause_ids.len() != self.clauses.len() {
            problems.push("clause ids are not unique".to_owned());
        }
        if finding_ids.len() != self.findings.len() {
            problems.push("finding ids are not unique".to_owned());
        }
        for f in &self.findings {
            for c in &f.clauses {
                if !clause_ids.contains(c.as_str()) {
                    problems.push(format!("finding {} names unknown clause {c}", f.id));
                }
            }
        }
        for c in &self.clauses {
            for f in &c.findings {
                if !finding_ids.contains(f.as_str()) {
                    problems.push(format!("clause {} names unknown finding {f}", c.id));
                }
            }
            if c.verdict == ClauseVerdict::Pass && !c.findings.is_empty() {
                problems.push(format!(
                    "clause {} passed with findings {}",
                    c.id,
                    c.findings.join(", ")
                ));
            }
            if c.verdict == ClauseVerdict::Pass && c.checks.is_empty() {
                problems.push(format!("clause {} passed without any check", c.id));
            }
        }
        for s in &self.scenarios {
            let sent = !s.requests.is_empty() || s.passing.as_ref().is_some_and(|p| p.requests > 0);
            let consistent = match s.outcome {
                ScenarioOutcome::NotRun => !sent,
                ScenarioOutcome::Pass => sent && s.requests_not_sent == 0,
                ScenarioOutcome::Incomplete => s.requests_not_sent > 0,
                ScenarioOutcome::Fail => true,
            };
            if !consistent {
                problems.push(format!(
                    "scenario {} is {} with {} sent and {} not sent",
                    s.id,
                    s.outcome,
                    plural(s.requests.len(), "request"),
                    s.requests_not_sent
                ));
            }
        }
        let derived = self.derived_verdict();
        if self.verdict == Verdict::Pass && derived != Verdict::Pass {
            problems.push(format!("verdict is pass but the facts say {derived}"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClauseResult, Crash, Finding, MonitorEntry, RequestResult, ScenarioResult};

    fn scenario(outcome: ScenarioOutcome) -> ScenarioResult {
        ScenarioResult {
            id: "s".into(),
            outcome,
            requests: match outcome {
                ScenarioOutcome::NotRun => Vec::new(),
                _ => vec![RequestResult::default()],
            },
            requests_not_sent: u32::from(outcome == ScenarioOutcome::Incomplete),
            ..Default::default()
        }
    }

    fn clause(id: &str, verdict: ClauseVerdict, findings: &[&str]) -> ClauseResult {
        ClauseResult {
            id: id.into(),
            verdict,
            checks: vec!["disk-persistence".into()],
            findings: findings.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        }
    }

    fn finding(id: &str, waiver: Option<&str>) -> Finding {
        Finding {
            id: id.into(),
            clauses: vec!["1".into()],
            waiver: waiver.map(Into::into),
            ..Default::default()
        }
    }

    fn monitor(state: &str, required: bool) -> MonitorEntry {
        MonitorEntry {
            name: "egress".into(),
            state: state.into(),
            reason: None,
            required,
        }
    }

    fn check(report: Report, verdict: Verdict, exit: i32) {
        assert_eq!(report.derived_verdict(), verdict, "{report:#?}");
        assert_eq!(report.exit_code(), exit, "{report:#?}");
    }

    #[test]
    fn verdicts_and_exit_codes() {
        let clean = Report {
            clauses: vec![clause("1", ClauseVerdict::Pass, &[])],
            ..Default::default()
        };
        check(clean.clone(), Verdict::Pass, 0);

        let found = Report {
            clauses: vec![clause("1", ClauseVerdict::Fail, &["F1"])],
            findings: vec![finding("F1", None)],
            ..Default::default()
        };
        check(found.clone(), Verdict::Fail, 1);

        let waived = Report {
            clauses: vec![clause("1", ClauseVerdict::Waived, &["F1"])],
            findings: vec![finding("F1", Some("accepted until the fix ships"))],
            ..Default::default()
        };
        check(waived, Verdict::Pass, 0);

        let degraded_required = Report {
            monitors: vec![monitor("degraded", true)],
            ..clean.clone()
        };
        check(degraded_required.clone(), Verdict::Incomplete, 2);
        let degraded_optional = Report {
            monitors: vec![monitor("degraded", false)],
            ..clean.clone()
        };
        check(degraded_optional, Verdict::Pass, 0);

        // Evidence of a leak outweighs a missing monitor.
        let both = Report {
            monitors: vec![monitor("unavailable", true)],
            ..found
        };
        check(both, Verdict::Fail, 1);

        let errored = Report {
            errors: vec!["pipeline would not start".into()],
            ..clean.clone()
        };
        check(errored, Verdict::Incomplete, 2);

        let scenario_failed = Report {
            scenarios: vec![scenario(ScenarioOutcome::Fail)],
            ..clean.clone()
        };
        check(scenario_failed, Verdict::Fail, 1);

        // A stated verdict stricter than the facts is kept; a laxer one is not.
        let stated_incomplete = Report {
            verdict: Verdict::Incomplete,
            ..clean.clone()
        };
        assert_eq!(stated_incomplete.exit_code(), 2);
        let stated_pass = Report {
            verdict: Verdict::Pass,
            ..degraded_required
        };
        assert_eq!(stated_pass.exit_code(), 2);
        assert!(
            stated_pass
                .problems()
                .iter()
                .any(|p| p.contains("verdict is pass")),
            "{:?}",
            stated_pass.problems()
        );
    }

    #[test]
    fn anything_short_of_an_exercised_run_is_incomplete_never_a_pass() {
        let clean = Report {
            clauses: vec![clause("1", ClauseVerdict::Pass, &[])],
            scenarios: vec![scenario(ScenarioOutcome::Pass)],
            ..Default::default()
        };
        check(clean.clone(), Verdict::Pass, 0);
        let cases: Vec<(&str, Report)> = vec![
            (
                "interrupted by SIGTERM",
                Report {
                    interrupted: Some("SIGTERM".into()),
                    ..clean.clone()
                },
            ),
            (
                "the pipeline died: killed by signal 9",
                Report {
                    crash: Some(Crash {
                        status: "killed by signal 9".into(),
                        ..Default::default()
                    }),
                    ..clean.clone()
                },
            ),
            (
                "1 scenario not run to the end",
                Report {
                    scenarios: vec![
                        scenario(ScenarioOutcome::Pass),
                        scenario(ScenarioOutcome::NotRun),
                    ],
                    ..clean.clone()
                },
            ),
            (
                "1 scenario not run to the end",
                Report {
                    scenarios: vec![scenario(ScenarioOutcome::Incomplete)],
                    ..clean.clone()
                },
            ),
            (
                "no clause was judged",
                Report {
                    clauses: vec![clause("1", ClauseVerdict::NotTested, &[])],
                    ..clean.clone()
                },
            ),
        ];
        for (cause, mut report) in cases {
            check(report.clone(), Verdict::Incomplete, 2);
            report.verdict = report.derived_verdict();
            assert!(
                report.summary_line().contains(cause),
                "{cause:?} not in {:?}",
                report.summary_line()
            );
            assert_eq!(report.problems(), Vec::<String>::new(), "{cause}");
        }
        // A finding still fails a run that was cut short: the evidence gathered is kept.
        let crashed_with_finding = Report {
            crash: Some(Crash::default()),
            clauses: vec![clause("1", ClauseVerdict::Fail, &["F1"])],
            findings: vec![finding("F1", None)],
            ..clean.clone()
        };
        check(crashed_with_finding, Verdict::Fail, 1);
        // Degraded monitors accepted on purpose: a pass, but said so.
        let degraded = Report {
            degraded: true,
            monitors: vec![monitor("unavailable", false)],
            ..clean
        };
        check(degraded.clone(), Verdict::Pass, 0);
        assert!(
            degraded
                .summary_line()
                .ends_with("DEGRADED (--allow-degraded)"),
            "{}",
            degraded.summary_line()
        );
    }

    #[test]
    fn a_scenario_outcome_must_match_what_was_sent() {
        let mut s = scenario(ScenarioOutcome::Pass);
        s.requests.clear();
        let report = Report {
            clauses: vec![clause("1", ClauseVerdict::Pass, &[])],
            scenarios: vec![s],
            ..Default::default()
        };
        assert!(
            report
                .problems()
                .iter()
                .any(|p| p.contains("scenario s is pass with 0 requests sent")),
            "{:?}",
            report.problems()
        );
    }

    #[test]
    fn summary_lines() {
        let pass = Report {
            clauses: vec![
                clause("1", ClauseVerdict::Pass, &[]),
                clause("8", ClauseVerdict::NotTested, &[]),
            ],
            scenarios: vec![scenario(ScenarioOutcome::Pass)],
            ..Default::default()
        };
        assert_eq!(
            pass.summary_line(),
            "PASS: 1 of 2 clauses passed, 1 not tested; 1 scenario passed"
        );

        let fail = Report {
            clauses: vec![
                clause("1", ClauseVerdict::Fail, &["F1", "F2"]),
                clause("2", ClauseVerdict::Pass, &[]),
            ],
            findings: vec![finding("F1", None), finding("F2", Some("known"))],
            monitors: vec![monitor("degraded", true)],
            ..Default::default()
        };
        assert_eq!(
            fail.summary_line(),
            "FAIL: 2 findings (1 waived) break 1 of 2 clauses, 1 passed; 0 scenarios passed; monitor egress degraded (required)"
        );

        let broken = Report {
            errors: vec!["config".into()],
            ..pass
        };
        assert_eq!(
            broken.summary_line(),
            "INCOMPLETE: audit not completed (1 error); 1 of 2 clauses judged, 1 not tested; 1 scenario passed"
        );
    }

    #[test]
    fn problems_name_what_is_inconsistent() {
        let report = Report {
            schema: "traceless.report/v0".into(),
            verdict: Verdict::Fail,
            clauses: vec![clause("1", ClauseVerdict::Pass, &["F9"])],
            findings: vec![Finding {
                id: "F1".into(),
                clauses: vec!["7".into()],
                ..Default::default()
            }],
            monitors: vec![monitor("sleepy", false)],
            ..Default::default()
        };
        let problems = report.problems().join("\n");
        for expected in [
            "traceless.report/v0",
            "sleepy",
            "unknown clause 7",
            "unknown finding F9",
            "passed with findings",
        ] {
            assert!(
                problems.contains(expected),
                "{expected:?} missing from:\n{problems}"
            );
        }
        let sound = Report {
            clauses: vec![clause("1", ClauseVerdict::Pass, &[])],
            ..Default::default()
        };
        assert_eq!(sound.problems(), Vec::<String>::new());
    }
}
