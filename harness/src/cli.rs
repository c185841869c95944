//! Command-line entry points. Parses flags, then hands validated inputs to the library.
//!
//! Exit codes of `traceless audit`: 0 every judged clause was exercised and held; 1 a finding
//! (or a scenario that got an unexpected answer); 2 the audit could not be completed (a config
//! error, a pipeline that would not start or died, a required monitor not active, an
//! inconclusive probe, a scenario not run); 130 interrupted by SIGINT, 143 by SIGTERM, each
//! after writing a report marked interrupted.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;
use traceless_report::{FileDigest, Format, Provenance, Report};

use crate::{audit, clauses, config, scenario};

mod audit_stages;

#[derive(Parser)]
#[command(
    name = "traceless",
    version,
    about = "Audits an image-generation backend against its privacy policy, with evidence."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline under every monitor, drive it with the scenarios and judge the evidence.
    Audit(AuditArgs),
    /// Look for images (in every encoding, partial copies included) inside files.
    Scan {
        /// An image to look for; repeat for several (each hit names the one it found).
        #[arg(long, required = true)]
        image: Vec<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Re-render a saved report, or merge the reports of a sharded audit.
    ///
    /// `--from report.json --format md` renders one report. `--merge a.json b.json ... --out DIR`
    /// merges the report.json of every shard of one audit (`traceless audit --shard k/n`) into
    /// the report of the whole audit, written in every format; it exits like the audit (0 pass,
    /// 1 a finding, 2 incomplete: a missing or incomplete shard is never a pass).
    Report {
        #[arg(long, required_unless_present = "merge", conflicts_with = "merge")]
        from: Option<PathBuf>,
        #[arg(long, required_unless_present = "merge", conflicts_with = "merge")]
        format: Option<String>,
        /// The shards' report.json files.
        #[arg(long, num_args = 1.., value_name = "REPORT.JSON", requires = "out")]
        merge: Vec<PathBuf>,
        /// Write here instead of standard output (with --merge: the folder of every format).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a starter kit for auditing your own backend: a commented traceless.toml, the policy
    /// files, the scenario library and a CI workflow.
    Init(crate::init::InitArgs),
    /// Serve the mock providers on their own, for developing a backend offline.
    ///
    /// Once both listen, standard output carries `NAME=value` lines (a dotenv file: the variables the
    /// official SDKs read, and `TRACELESS_MOCKS_CONTROL`, the control endpoint's URL) and then the
    /// line `# ready: ...`. Ctrl-C or SIGTERM stops them cleanly; the CA file stays where `--ca-out`
    /// put it.
    Mocks {
        /// Serve plain HTTP instead of TLS.
        #[arg(long)]
        plaintext: bool,
        #[arg(long, default_value_t = 0)]
        openai_port: u16,
        #[arg(long, default_value_t = 0)]
        gemini_port: u16,
        /// Where to write the mocks' CA certificate (PEM).
        #[arg(long, default_value = "traceless-mocks-ca.pem")]
        ca_out: PathBuf,
        /// Where to write the Google service-account JSON the mocks made for this run (Vertex AI:
        /// its key alone gets a token from the Gemini mock's `/token`).
        #[arg(long, default_value = "traceless-mocks-service-account.json")]
        service_account_out: PathBuf,
        #[arg(long, default_value = "sk-traceless-local")]
        openai_key: String,
        #[arg(long, default_value = "traceless-local")]
        gemini_key: String,
        /// Faults the next generation requests of a provider meet, in order, the last repeating:
        /// `openai=429,ok`, `gemini=safety-block`. Repeat the flag for each provider. Behaviours:
        /// ok, 429[:seconds], 500, 503, timeout, safety-block, safety-block-image, malformed,
        /// slow[:ms].
        #[arg(long = "behaviour", value_name = "PROVIDER=B1,B2,...", value_parser = parse_behaviour_script)]
        behaviours: Vec<(traceless_mock::Provider, Vec<traceless_mock::Behaviour>)>,
        /// Port of the control endpoint on 127.0.0.1 (0 picks a free one): `PUT /behaviour/openai`
        /// with a body like `500,ok` changes the script while the mocks run; `GET /behaviour` shows it.
        #[arg(long, default_value_t = 0)]
        control_port: u16,
        /// A traceless.toml whose `[mocks]` table replaces the accepted and retired model lists.
        #[arg(long)]
        config: Option<PathBuf>,
        /// How many of the newest calls `GET /recorded` keeps (older ones are dropped, so mocks
        /// left running for days stay flat in memory).
        #[arg(long, default_value_t = 100)]
        keep_recorded: usize,
    },
}

fn parse_behaviour_script(
    s: &str,
) -> Result<(traceless_mock::Provider, Vec<traceless_mock::Behaviour>), String> {
    traceless_mock::Behaviour::parse_script(s).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct AuditArgs {
    #[arg(long, default_value = "traceless.toml")]
    config: PathBuf,
    #[arg(long, default_value = "reports/latest")]
    out: PathBuf,
    /// Only scenarios whose id (or file name) matches this glob.
    #[arg(long)]
    scenario: Option<String>,
    /// Property cases to run (default: the config's `audit.cases`).
    #[arg(long)]
    cases: Option<u32>,
    /// Seed for every random choice; a failing run prints it, and passing it back replays the run.
    #[arg(long)]
    seed: Option<u64>,
    /// Run part k of n of the audit (`--shard 2/3`): the scenarios and property cases are dealt
    /// round the n shards from an offset the seed picks, so each shard needs the same `--seed`.
    /// `traceless report --merge` joins the shards' reports into the one report of the audit.
    #[arg(long, value_name = "K/N", requires = "seed")]
    shard: Option<traceless_report::Shard>,
    /// Accept monitors that are not active (a local run on a weaker machine): the verdict then
    /// rests on what the active monitors saw, and every sink marks the run DEGRADED. Without
    /// it, a required monitor that is not active makes the audit incomplete (exit 2).
    #[arg(long)]
    allow_degraded: bool,
    /// Strict mode, kept for older CI scripts: it is the default now.
    #[arg(long, hide = true)]
    ci: bool,
    /// Benchmarks only: run without the syscall and memory monitors, to measure their overhead.
    #[arg(long, hide = true)]
    no_monitors: bool,
}

pub fn main() -> u8 {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // notify's one warning is its bookkeeping when a watched folder and one inside it
            // are removed together, which other programs do to their folders in /tmp all day.
            tracing_subscriber::EnvFilter::try_from_env("TRACELESS_LOG")
                .unwrap_or_else(|_| "warn,notify::inotify=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        Command::Audit(args) => return audit_stages::audit_command(args),
        Command::Scan { image, files } => scan_command(&image, &files),
        Command::Report {
            from,
            format,
            merge,
            out,
        } => match (from, format, out) {
            (Some(from), Some(format), out) => report_command(&from, &format, out.as_deref()),
            (_, _, Some(out)) => merge_command(&merge, &out),
            _ => unreachable!("clap requires --from and --format, or --merge and --out"),
        },
        Command::Init(args) => crate::init::command(&args),
        Command::Mocks {
            plaintext,
            openai_port,
            gemini_port,
            ca_out,
            service_account_out,
            openai_key,
            gemini_key,
            behaviours,
            control_port,
            config,
            keep_recorded,
        } => mocks_command(MocksArgs {
            keep_recorded,
            plaintext,
            openai_port,
            gemini_port,
            ca_out,
            service_account_out,
            openai_key,
            gemini_key,
            behaviours,
            control_port,
            config,
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("traceless: {e:#}");
            2
        }
    }
}

/// The evidence file's name in the report folder.
const EVIDENCE_FILE: &str = "evidence.jsonl";

/// Cancels the audit on SIGINT or SIGTERM, remembering which came first; a second signal ends
/// the process at once (the pipeline's tree dies with the harness).
fn watch_signals(
    cancel: CancellationToken,
) -> anyhow::Result<std::sync::Arc<std::sync::OnceLock<&'static str>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let which = std::sync::Arc::new(std::sync::OnceLock::new());
    let seen = which.clone();
    tokio::spawn(async move {
        loop {
            let (name, code) = tokio::select! {
                _ = interrupt.recv() => ("SIGINT", 130),
                _ = terminate.recv() => ("SIGTERM", 143),
            };
            if seen.set(name).is_err() {
                eprintln!("traceless: {name} again: stopping at once");
                std::process::exit(code);
            }
            eprintln!("traceless: {name}: stopping the pipeline and writing what was found");
            cancel.cancel();
        }
    });
    Ok(which)
}

/// The report folder must be writable before the audit starts, not after it ran.
fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("--out {}: cannot create the report folder", out.display()))?;
    let probe = out.join(".traceless-write-check");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: the report folder is not writable", out.display()))?;
    std::fs::remove_file(&probe)
        .with_context(|| format!("--out {}: cannot remove {}", out.display(), probe.display()))
}

struct Inputs {
    config: config::Config,
    policy_text: String,
    clauses: Vec<clauses::Clause>,
    scenarios: Vec<scenario::Scenario>,
}

fn load_inputs(args: &AuditArgs) -> anyhow::Result<Inputs> {
    let config = config::load(&args.config)?;
    check_out_dir(&args.out)?;
    let policy_text = std::fs::read_to_string(&config.policy.text)
        .with_context(|| format!("reading the policy text {}", config.policy.text.display()))?;
    let clauses = clauses::load(&config.policy.clauses, &policy_text)?;
    let scenarios = scenario::load_all(
        &config.dir,
        &config.audit.scenarios,
        args.scenario.as_deref(),
        &config.audit.fixtures,
    )?;
    if scenarios.is_empty() {
        anyhow::bail!(
            "{}: `audit.scenarios` ({}) matches no scenario file",
            config.path.display(),
            config.audit.scenarios.join(", ")
        );
    }
    Ok(Inputs {
        config,
        policy_text,
        clauses,
        scenarios,
    })
}

fn progress_bar(len: usize) -> Option<indicatif::ProgressBar> {
    if std::env::var_os("CI").is_some() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} auditing [{bar:30}] {pos}/{len} {msg}")
            .ok()?,
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

fn print_outcome(report: &Report, out: &Path, seed: u64) {
    println!("{}", report.summary);
    for f in report.findings.iter().filter(|f| f.waiver.is_none()) {
        println!("  {} [{}] {}", f.id, f.kind, f.summary);
    }
    for e in &report.errors {
        println!("  error: {e}");
    }
    println!("report: {}", out.join("report.html").display());
    if report.exit_code() != 0 {
        println!("replay with: traceless audit --seed {seed}");
    }
}

fn sha256_file(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(_) => String::new(),
    }
}

fn digest(path: &Path) -> FileDigest {
    FileDigest {
        path: path.display().to_string(),
        sha256: sha256_file(path),
    }
}

fn provenance(
    inputs: &Inputs,
    scenarios: &[scenario::Scenario],
    args: &AuditArgs,
    seed: u64,
    binary: Option<&Path>,
    started_at: time::OffsetDateTime,
    started: Instant,
) -> Provenance {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&inputs.config.dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let kernel = nix::sys::utsname::uname()
        .map(|u| {
            format!(
                "{} {}",
                u.sysname().to_string_lossy(),
                u.release().to_string_lossy()
            )
        })
        .unwrap_or_default();
    let _ = &inputs.policy_text;
    Provenance {
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        harness_commit: commit,
        pipeline_command: inputs
            .config
            .pipeline
            .command
            .iter()
            .map(|t| t.raw().to_owned())
            .collect(),
        pipeline_sha256: binary.map(sha256_file),
        config: digest(&inputs.config.path),
        policy: digest(&inputs.config.policy.text),
        clause_map: digest(&inputs.config.policy.clauses),
        scenarios: scenarios.iter().map(|s| digest(&s.path)).collect(),
        seed,
        cases: args.cases.unwrap_or(inputs.config.audit.cases),
        started_at: started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_ms: started.elapsed().as_millis() as u64,
        kernel,
        ci: !args.allow_degraded,
        shard: args.shard,
        evidence: Vec::new(),
        merged_from: Vec::new(),
    }
}

fn scan_command(images: &[PathBuf], files: &[PathBuf]) -> anyhow::Result<u8> {
    let mut scanner = traceless_scan::scan::Scanner::new();
    let read = images
        .iter()
        .map(|image| std::fs::read(image).with_context(|| format!("reading {}", image.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    scanner.add_images(read.iter().enumerate().map(|(i, img)| {
        let id = traceless_scan::scan::NeedleId {
            request: i as u32,
            subject: traceless_scan::scan::Subject::Image,
        };
        (id, img.as_slice())
    }));
    let mut found = false;
    for file in files {
        let data = map_file(file).with_context(|| format!("reading {}", file.display()))?;
        let data: &[u8] = &data;
        for hit in scanner.scan(data) {
            found = true;
            println!(
                "{}: offset {}: {} byte(s) of {} ({} from offset {}) as {}: {}",
                file.display(),
                hit.offset,
                hit.source_len,
                images[hit.needle.request as usize].display(),
                hit.len,
                hit.source_offset,
                serde_json::to_value(hit.encoding)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                hit.excerpt(data)
            );
        }
    }
    Ok(u8::from(found))
}

/// A file's bytes: a regular file mapped from the page cache rather than copied into a buffer of
/// our own (for a file of a gigabyte the copy, and zeroing the buffer first, cost a third of the
/// scan); anything else (a pipe, a device) read whole.
fn map_file(path: &Path) -> std::io::Result<Box<dyn std::ops::Deref<Target = [u8]>>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() == 0 {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut bytes)?;
        return Ok(Box::new(bytes));
    }
    // SAFETY: the map is only read, and dropped before this command returns; a file cut short by
    // another process meanwhile would end the scan with SIGBUS, as it would any reader that maps
    // (ripgrep among them), never with wrong results.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
    Ok(Box::new(map))
}

fn report_command(from: &Path, format: &str, out: Option<&Path>) -> anyhow::Result<u8> {
    let format: Format = format
        .parse()
        .map_err(|e| anyhow::anyhow!("--format {format:?}: {e}"))?;
    let report = traceless_report::load(from)?;
    let text = traceless_report::render(&report, format)?;
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(0)
}

/// `traceless report --merge`: one report from the shards' reports, in every format.
fn merge_command(files: &[PathBuf], out: &Path) -> anyhow::Result<u8> {
    let parts = files
        .iter()
        .map(|path| {
            Ok(traceless_judge::merge::Part {
                file: digest(path),
                report: traceless_report::load(path)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = traceless_judge::merge::merge(parts)?;
    traceless_report::write_all(&report, out)
        .with_context(|| format!("writing the merged report to {}", out.display()))?;
    print_outcome(&report, out, report.provenance.seed);
    Ok(report.exit_code() as u8)
}

/// `traceless mocks`' flags, validated by clap.
struct MocksArgs {
    plaintext: bool,
    openai_port: u16,
    gemini_port: u16,
    ca_out: PathBuf,
    service_account_out: PathBuf,
    openai_key: String,
    gemini_key: String,
    behaviours: Vec<(traceless_mock::Provider, Vec<traceless_mock::Behaviour>)>,
    control_port: u16,
    config: Option<PathBuf>,
    keep_recorded: usize,
}

fn mocks_command(args: MocksArgs) -> anyhow::Result<u8> {
    let MocksArgs {
        plaintext,
        openai_port,
        gemini_port,
        ca_out,
        service_account_out,
        openai_key,
        gemini_key,
        behaviours,
        control_port,
        config,
        keep_recorded,
    } = args;
    let ca_out = ca_out.as_path();
    let models = match &config {
        Some(path) => config::load(path)?.mocks,
        None => traceless_mock::ModelRules::default(),
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let served = rt.block_on(async {
        // Registered before anything is announced, so a signal sent on `ready` is never lost.
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mocks = traceless_mock::Mocks::start(traceless_mock::MockOptions {
            tls: !plaintext,
            openai_port,
            gemini_port,
            openai_key: openai_key.clone(),
            gemini_key: gemini_key.clone(),
            models,
            control: Some((std::net::Ipv4Addr::LOCALHOST, control_port).into()),
            keep_recorded: Some(keep_recorded),
            ..traceless_mock::MockOptions::default()
        })
        .await?;
        for (provider, script) in behaviours {
            mocks.set_behaviour(provider, script);
        }
        let mut lines = vec![
            format!("OPENAI_BASE_URL={}/v1", mocks.openai_url()),
            format!("OPENAI_API_KEY={openai_key}"),
            format!("GEMINI_BASE_URL={}/v1beta", mocks.gemini_url()),
            // google-genai takes the origin alone and adds the path itself.
            format!("GOOGLE_GEMINI_BASE_URL={}", mocks.gemini_url()),
            format!("GEMINI_API_KEY={gemini_key}"),
        ];
        if let Some(control) = mocks.control_url() {
            lines.push(format!("TRACELESS_MOCKS_CONTROL={control}"));
        }
        let account = write_announced(&service_account_out, &mocks.service_account_json()?)?;
        lines.push(format!(
            "GOOGLE_APPLICATION_CREDENTIALS={}",
            account.display()
        ));
        if let Some(ca) = mocks.ca_pem() {
            let ca_file = write_announced(ca_out, &ca)?;
            // The names the audit sets for a pipeline too: Python SDKs, requests, Node and curl.
            for name in [
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "NODE_EXTRA_CA_CERTS",
                "CURL_CA_BUNDLE",
            ] {
                lines.push(format!("{name}={}", ca_file.display()));
            }
        }
        lines.push("# ready: serving until Ctrl-C or SIGTERM".to_owned());
        println!("{}", lines.join("\n"));
        let received = tokio::select! {
            _ = interrupt.recv() => "interrupt",
            _ = terminate.recv() => "SIGTERM",
        };
        eprintln!("traceless: {received}: stopping the mocks");
        mocks.shutdown().await;
        anyhow::Ok(0)
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    served
}

/// Writes a file `traceless mocks` hands out (the user's alone), and the absolute path it
/// announces for it.
fn write_announced(path: &Path, text: &str) -> anyhow::Result<PathBuf> {
    audit::launch::write_private(path, text)?;
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
