//! `traceless audit` as its stages: load the inputs and isolate this process, drive the run
//! (mocks, pipeline, scenarios, property cases, probes, stop: `audit::run`), write the evidence
//! file, judge (`traceless-judge`), write the report. Each stage takes what the one before it
//! returned; only the first and the last print.

use std::path::Path;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use traceless_report::{FileDigest, Report, Shard};

use super::{AuditArgs, EVIDENCE_FILE, Inputs, load_inputs, print_outcome, progress_bar};
use crate::{audit, check, scenario, verdict};

pub(super) fn audit_command(args: AuditArgs) -> u8 {
    let started = (Instant::now(), time::OffsetDateTime::now_utc());
    // Everything that can be wrong with the inputs is found before anything starts: the
    // config, the policy, the clause map, the scenarios, and whether the report can be written.
    let inputs = match load_inputs(&args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("traceless: {e:#}");
            return 2;
        }
    };
    // Must run while this process is single-threaded: no runtime exists yet.
    let isolation = match traceless_sandbox::isolate::isolate_process(
        &traceless_sandbox::isolate::IsolationOptions {
            resolver: audit::RESOLVER,
            hosts: audit::interception_hosts(&inputs.config),
        },
    ) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("traceless: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("traceless: cannot start the async runtime: {e}");
            return 2;
        }
    };
    let code = runtime.block_on(async move {
        let mut ran = match drive(&args, &inputs, isolation).await {
            Ok(ran) => ran,
            Err(e) => {
                eprintln!("traceless: {e:#}");
                return 2;
            }
        };
        let evidence_file = write_evidence(&mut ran, &args.out);
        let report = judge(&args, &inputs, &ran, evidence_file, started);
        write_report(&report, &args.out, &ran)
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// What the run left for the later stages.
struct Ran {
    seed: u64,
    shard: Shard,
    cases: u32,
    /// This shard's scenarios, in the audit's order: the ones it ran and reports.
    scenarios: Vec<scenario::Scenario>,
    /// What it observed: nothing when nothing could be started (the reason is among the errors).
    evidence: crate::evidence::Evidence,
    pipeline_binary: Option<std::path::PathBuf>,
    errors: Vec<String>,
    /// The signal that interrupted it, if one did.
    interrupted: Option<&'static str>,
}

/// Runs the audit with a progress bar, cancelled by SIGINT or SIGTERM. Errs only when the signals
/// cannot be watched; a run that fails is an error in what it returns.
async fn drive(
    args: &AuditArgs,
    inputs: &Inputs,
    isolation: traceless_sandbox::events::MonitorStatus,
) -> anyhow::Result<Ran> {
    let cancel = CancellationToken::new();
    let signal = super::watch_signals(cancel.clone())?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let cases = args.cases.unwrap_or(inputs.config.audit.cases);
    let scenarios: Vec<scenario::Scenario> = inputs
        .scenarios
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.owns(*i as u64, seed))
        .map(|(_, s)| s.clone())
        .collect();
    let bar = progress_bar(scenarios.len());
    let scenarios_started = std::cell::Cell::new(0u64);
    let progress = |step: audit::Step<'_>| {
        if let audit::Step::Phase(what) = step {
            tracing::debug!("phase: {what}");
        }
        let Some(b) = &bar else { return };
        b.set_position(scenarios_started.get());
        let what = match step {
            audit::Step::Scenario(id) => {
                scenarios_started.set(scenarios_started.get() + 1);
                id
            }
            audit::Step::Phase(what) => what,
        };
        b.set_message(what.to_owned());
    };
    let plan = audit::Plan {
        config: &inputs.config,
        scenarios: &inputs.scenarios,
        seed,
        cases,
        shard,
        isolation,
        monitors: !args.no_monitors,
        progress: &progress,
    };
    let run = audit::run(&plan, cancel.clone()).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let run = run.unwrap_or_else(|e| audit::RunResult {
        evidence: Default::default(),
        errors: vec![format!("{e:#}")],
        interrupted: false,
        pipeline_binary: None,
    });
    let mut errors = run.errors;
    let interrupted = (run.interrupted || cancel.is_cancelled())
        .then(|| signal.get().copied().unwrap_or("SIGINT"));
    if let Some(name) = interrupted {
        errors.push(format!(
            "the audit was interrupted by {name} before it finished"
        ));
    }
    Ok(Ran {
        seed,
        shard,
        cases,
        scenarios,
        evidence: run.evidence,
        pipeline_binary: run.pipeline_binary,
        errors,
        interrupted,
    })
}

/// Writes the evidence whole beside the report, named relative to it (the folder can be moved
/// whole); a failure is one more error of the run.
fn write_evidence(ran: &mut Ran, out: &Path) -> Option<FileDigest> {
    match crate::evidence_file::write(&ran.evidence, ran.seed, &out.join(EVIDENCE_FILE)) {
        Ok(sha256) => Some(FileDigest {
            path: EVIDENCE_FILE.to_owned(),
            sha256,
        }),
        Err(e) => {
            ran.errors.push(format!("{e:#}"));
            None
        }
    }
}

/// The report: the checks' findings, the clause verdicts, the scenarios' outcomes.
fn judge(
    args: &AuditArgs,
    inputs: &Inputs,
    ran: &Ran,
    evidence_file: Option<FileDigest>,
    (started, started_at): (Instant, time::OffsetDateTime),
) -> Report {
    let evidence = &ran.evidence;
    let mut provenance = super::provenance(
        inputs,
        &ran.scenarios,
        args,
        ran.seed,
        ran.pipeline_binary.as_deref(),
        started_at,
        started,
    );
    provenance.evidence = evidence_file.into_iter().collect();
    let mut plans: Vec<_> = ran.scenarios.iter().map(scenario::Scenario::plan).collect();
    plans.extend(property_plan(ran.shard, ran.cases, ran.seed));
    verdict::build(verdict::Inputs {
        evidence,
        drafts: check::run_all(evidence),
        clauses: &inputs.clauses,
        scenarios: &plans,
        waivers: &inputs.config.waivers,
        today: started_at.date(),
        required_monitors: &inputs.config.audit.required_monitors,
        allow_degraded: args.allow_degraded,
        interrupted: ran.interrupted.map(str::to_owned),
        errors: ran.errors.clone(),
        provenance,
    })
}

/// The property cases' plan, when this shard owns any.
fn property_plan(shard: Shard, cases: u32, seed: u64) -> Option<scenario::ScenarioPlan> {
    let owned = audit::owned_cases(shard, cases, seed);
    (owned > 0).then(|| scenario::ScenarioPlan {
        id: audit::PROPERTY_SCENARIO.to_owned(),
        title: if shard == Shard::WHOLE {
            traceless_judge::merge::properties_title(cases, seed)
        } else {
            format!(
                "{owned} of {cases} property cases drawn from seed {seed} (shard {shard}); {}",
                traceless_judge::merge::case_batches()
            )
        },
        ..scenario::ScenarioPlan::default()
    })
}

/// Writes every sink and says how it went; the exit code.
fn write_report(report: &Report, out: &Path, ran: &Ran) -> u8 {
    if let Err(e) = traceless_report::write_all(report, out) {
        eprintln!("traceless: writing the report to {}: {e:#}", out.display());
        print_outcome(report, out, ran.seed);
        return 2;
    }
    print_outcome(report, out, ran.seed);
    match ran.interrupted {
        Some("SIGTERM") => 143,
        Some(_) => 130,
        None => report.exit_code() as u8,
    }
}
