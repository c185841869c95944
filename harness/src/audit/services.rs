//! Declared local services (`[[service]]`): each is set up, started and made ready in the audit's
//! network namespace before the pipeline, so the pipeline reaches it on loopback; it runs under a
//! supervisor of its own, outside the pipeline's monitors (its files, output and connections are
//! not the pipeline's); it is stopped after the pipeline (SIGTERM, then SIGKILL), and its folder
//! is then read file by file with every needle of the audit.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use traceless_sandbox::events::EventLog;
use traceless_sandbox::filesystem::scan_file;
use traceless_sandbox::supervisor::{PipelineSpec, Ready, Supervisor};
use traceless_scan::scan::{Generation, Scanner, Subject, SweepPass};

use crate::config::{ServiceConfig, ServiceReady, Template};
use crate::evidence::ServiceScan;

/// Where a declared service runs: its port, its folders, its address for the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub name: String,
    pub port: u16,
    /// The service's own folder: its `HOME`, `TMPDIR` and working directory; scanned at the end.
    pub root: PathBuf,
    /// `{data_dir}`: an empty folder inside `root`, made for this audit.
    pub data_dir: PathBuf,
}

/// A started service; dropping it kills every process of it.
pub struct Running {
    name: String,
    supervisor: Supervisor,
    grace: Duration,
}

/// Ports and folders for every declared service, the folders made under `root`.
pub fn plan(services: &[ServiceConfig], root: &Path) -> anyhow::Result<Vec<Planned>> {
    services
        .iter()
        .map(|s| {
            let dir = root.join(&s.name);
            let data_dir = dir.join("data");
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            Ok(Planned {
                name: s.name.clone(),
                port: s.port.map_or_else(super::launch::free_port, Ok)?,
                root: dir,
                data_dir,
            })
        })
        .collect()
}

/// `{service.NAME.port}` and `{service.NAME.url}` of every service.
pub fn placeholders(services: &[ServiceConfig], planned: &[Planned]) -> Vec<(String, String)> {
    services
        .iter()
        .zip(planned)
        .flat_map(|(s, p)| {
            let url = s.url.fill(&own_values(p, &[]));
            [
                (format!("service.{}.port", p.name), p.port.to_string()),
                (format!("service.{}.url", p.name), url),
            ]
        })
        .collect()
}

/// The values a service's own commands are filled from: its `{port}` and `{data_dir}`, and the
/// other services' placeholders.
fn own_values(p: &Planned, others: &[(String, String)]) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = others.iter().cloned().collect();
    values.insert("port".to_owned(), p.port.to_string());
    values.insert("data_dir".to_owned(), p.data_dir.display().to_string());
    values
}

/// The addresses the pipeline may reach each service at: not egress.
pub fn addresses(planned: &[Planned]) -> Vec<String> {
    planned
        .iter()
        .flat_map(|p| [format!("127.0.0.1:{}", p.port), format!("[::1]:{}", p.port)])
        .collect()
}

/// The launch prefix that runs a command as `user`: a user namespace of its own in which only
/// that user's ids exist, mapped to the harness's. Servers that refuse to run as root (PostgreSQL)
/// then see an ordinary user, whether the harness is root or an ordinary user itself.
fn as_user(user: Option<&str>) -> anyhow::Result<Vec<String>> {
    let Some(name) = user else {
        return Ok(Vec::new());
    };
    let found = nix::unistd::User::from_name(name)
        .with_context(|| format!("looking up the user {name:?}"))?
        .with_context(|| format!("no user {name:?} on this machine"))?;
    Ok(vec![
        "unshare".to_owned(),
        "--user".to_owned(),
        format!("--map-user={}", found.uid),
        format!("--map-group={}", found.gid),
        "--".to_owned(),
    ])
}

/// One service's commands and environment, filled.
struct Filled {
    command: Vec<String>,
    env: Vec<(String, String)>,
    setup: Vec<Vec<String>>,
    init: Vec<Vec<String>>,
    ready: Option<Vec<String>>,
}

fn fill(s: &ServiceConfig, p: &Planned, others: &[(String, String)]) -> anyhow::Result<Filled> {
    let values = own_values(p, others);
    let prefix = as_user(s.user.as_deref())?;
    let argv = |t: &[Template]| -> Vec<String> {
        prefix
            .iter()
            .cloned()
            .chain(t.iter().map(|a| a.fill(&values)))
            .collect()
    };
    Ok(Filled {
        command: argv(&s.command),
        env: s
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.fill(&values)))
            .collect(),
        setup: s.setup.iter().map(|c| argv(c)).collect(),
        init: s.init.iter().map(|c| argv(c)).collect(),
        ready: match &s.ready {
            ServiceReady::Tcp => None,
            ServiceReady::Command(c) => Some(argv(c)),
        },
    })
}

/// Starts every service in order: setup commands, the server, readiness, init commands. The
/// services started so far are returned beside the first failure, to be stopped.
pub async fn start_all(
    services: &[ServiceConfig],
    planned: &[Planned],
    cancel: &CancellationToken,
) -> (Vec<Running>, anyhow::Result<()>) {
    let others = placeholders(services, planned);
    let mut running = Vec::new();
    for (s, p) in services.iter().zip(planned) {
        let started = tokio::select! {
            r = start(s, p, &others) => r,
            () = cancel.cancelled() => Err(anyhow::anyhow!("interrupted")),
        };
        match started {
            Ok(r) => running.push(r),
            Err(e) => return (running, Err(e.context(format!("service {}", s.name)))),
        }
    }
    (running, Ok(()))
}

async fn start(
    s: &ServiceConfig,
    p: &Planned,
    others: &[(String, String)],
) -> anyhow::Result<Running> {
    let filled = fill(s, p, others)?;
    for argv in &filled.setup {
        run_once(argv, &filled.env, p, s.ready_timeout)
            .await
            .context("a setup command")?;
    }
    let spec = PipelineSpec {
        command: filled.command.clone(),
        env: filled.env.clone(),
        workdir: p.root.clone(),
        tmpdir: p.root.clone(),
        home: p.root.clone(),
        watch_roots: Vec::new(),
        trace_syscalls: false,
        pid_namespace: true,
        ignore_paths: Vec::new(),
        unwatched_files: true,
    };
    // Its output is not evidence: an empty scanner, a log of its own.
    let scanner = Arc::new(RwLock::new(Scanner::new()));
    let supervisor = Supervisor::start(spec, scanner, EventLog::new())
        .await
        .context("starting it")?;
    let running = Running {
        name: s.name.clone(),
        supervisor,
        grace: s.stop_grace,
    };
    wait_ready(&running.supervisor, &filled, p, s.ready_timeout)
        .await
        .with_context(|| {
            format!(
                "it did not become ready; its stderr: {}",
                running.supervisor.stderr_tail()
            )
        })?;
    for argv in &filled.init {
        run_once(argv, &filled.env, p, s.ready_timeout)
            .await
            .context("an init command")?;
    }
    Ok(running)
}

async fn wait_ready(
    supervisor: &Supervisor,
    filled: &Filled,
    p: &Planned,
    timeout: Duration,
) -> anyhow::Result<()> {
    let Some(argv) = &filled.ready else {
        let addr = SocketAddr::from(([127, 0, 0, 1], p.port));
        return supervisor.wait_ready(&Ready::Tcp(addr), timeout).await;
    };
    let until = Instant::now() + timeout;
    loop {
        if supervisor.main_ended() {
            bail!("it exited");
        }
        let left = until.saturating_duration_since(Instant::now());
        if run_once(argv, &filled.env, p, left).await.is_ok() {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("`{}` did not succeed within {timeout:?}", argv.join(" "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a command to its end in the service's folder; anything but exit 0 is an error with the
/// end of its output.
async fn run_once(
    argv: &[String],
    env: &[(String, String)],
    p: &Planned,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("HOME", &p.root)
        .env("TMPDIR", &p.root)
        .current_dir(&p.root)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .with_context(|| format!("`{}` took longer than {timeout:?}", argv.join(" ")))?
        .with_context(|| format!("running `{}`", argv.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
    bail!("`{}` failed ({}): {tail}", argv.join(" "), out.status)
}

/// Stops the services in the reverse order of their start. What their processes did is no
/// evidence (PostgreSQL's children each start a session of their own, by design); the stop ends
/// every one of them, with the PID namespace each service runs in.
pub async fn stop_all(running: Vec<Running>) {
    for r in running.into_iter().rev() {
        let report = r.supervisor.stop(r.grace).await;
        tracing::debug!(
            "service {} stopped: {}",
            r.name,
            super::launch::describe_exit(report.exit, report.signal)
        );
    }
}

/// Reads every file of each service's folder with every needle, retired ones too (the folder is
/// read once per generation). Blocking: run it off the runtime.
pub fn scan(planned: &[Planned], scanner: &Scanner) -> Vec<ServiceScan> {
    let mut pass = ScanPass::new(planned);
    let swept = scanner.sweep_passes(&mut [&mut pass]);
    pass.finish(swept.as_ref().err())
}

/// The services' folders as one pass of the end-of-run sweep: read whole with the live needles
/// (sizes, image matches, what could not be read), then again with each retired generation, which
/// only adds hits.
pub struct ScanPass<'a> {
    planned: &'a [Planned],
    scans: Vec<ServiceScan>,
}

impl<'a> ScanPass<'a> {
    pub fn new(planned: &'a [Planned]) -> Self {
        ScanPass {
            planned,
            scans: Vec::new(),
        }
    }

    /// The scans; when the retired needles could not be read back (`error`), each says so.
    pub fn finish(mut self, error: Option<&std::io::Error>) -> Vec<ServiceScan> {
        if let Some(e) = error {
            for s in &mut self.scans {
                s.error
                    .get_or_insert_with(|| format!("retired needles could not be read back: {e}"));
            }
        }
        self.scans
    }
}

impl SweepPass for ScanPass<'_> {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()> {
        if let Generation::Live(live) = generation {
            self.scans = self.planned.iter().map(|p| scan_one(p, live)).collect();
            return Ok(());
        }
        for (p, into) in self.planned.iter().zip(&mut self.scans) {
            for (file, hits) in scan_one(p, generation).hits {
                match into.hits.iter_mut().find(|(f, _)| *f == file) {
                    Some((_, known)) => known.extend(hits),
                    None => into.hits.push((file, hits)),
                }
            }
            into.hits.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(())
    }
}

fn scan_one(p: &Planned, scanner: &Scanner) -> ServiceScan {
    let mut out = ServiceScan {
        name: p.name.clone(),
        data_dir: p.data_dir.clone(),
        ..ServiceScan::default()
    };
    let mut unread = Vec::new();
    for path in files_under(&p.root, &mut unread) {
        // In pieces: a database's files can be far larger than memory should hold at once.
        let scanned = std::fs::File::open(&path).and_then(|mut f| scan_file(&mut f, scanner));
        let Ok((size, hits, _)) = scanned else {
            unread.push(path);
            continue;
        };
        out.files += 1;
        out.bytes += size;
        let hits: Vec<_> = hits
            .into_iter()
            .filter(|h| h.needle.subject != Subject::ApiKey)
            .collect();
        if !hits.is_empty() {
            let rel = path.strip_prefix(&p.root).unwrap_or(&path);
            out.hits.push((rel.display().to_string(), hits));
        }
    }
    if !unread.is_empty() {
        out.error = Some(format!(
            "{} file(s) or folder(s) could not be read, e.g. {}",
            unread.len(),
            unread[0].display()
        ));
    }
    out
}

/// Every regular file under `dir`, in a stable order; what cannot be listed goes to `unread`.
fn files_under(dir: &Path, unread: &mut Vec<PathBuf>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            unread.push(d);
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use traceless_scan::scan::NeedleId;

    fn planned(root: &Path) -> Planned {
        Planned {
            name: "db".into(),
            port: 5433,
            root: root.to_path_buf(),
            data_dir: root.join("data"),
        }
    }

    #[test]
    fn a_service_folder_is_scanned_file_by_file_with_paths_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = planned(dir.path());
        std::fs::create_dir_all(p.data_dir.join("pg_wal")).unwrap();
        let marker = "tl-prompt-7f3a9c2e51d04b8a";
        std::fs::write(
            p.data_dir.join("pg_wal/000000010000000000000001"),
            format!("\0\0record {marker} end"),
        )
        .unwrap();
        std::fs::write(p.data_dir.join("PG_VERSION"), "15\n").unwrap();
        let mut scanner = Scanner::new();
        let id = NeedleId {
            request: 7,
            subject: Subject::Prompt,
        };
        scanner.add_token(id, marker);
        let [scan] = scan(&[p], &scanner).try_into().unwrap();
        assert_eq!((scan.files, scan.error), (2, None));
        let [(file, hits)] = scan.hits.as_slice() else {
            panic!("{:?}", scan.hits)
        };
        assert_eq!(file, "data/pg_wal/000000010000000000000001");
        assert_eq!(hits[0].needle, id);
    }

    #[test]
    fn service_placeholders_and_addresses_come_from_the_plan() {
        let cfg = crate::config::parse(
            Path::new("/nonexistent/traceless.toml"),
            "[policy]\ntext = \"builtin:policy/privacy-policy.txt\"\nclauses = \"builtin:policy/clauses.toml\"\n\
             [pipeline]\ncommand = [\"x\"]\n[[service]]\nname = \"db\"\ncommand = [\"pg\", \"{data_dir}\"]\n\
             url = \"postgresql://127.0.0.1:{port}/app\"\n",
        )
        .unwrap();
        let p = planned(Path::new("/t/services/db"));
        assert_eq!(
            placeholders(&cfg.services, std::slice::from_ref(&p)),
            [
                ("service.db.port".to_owned(), "5433".to_owned()),
                (
                    "service.db.url".to_owned(),
                    "postgresql://127.0.0.1:5433/app".to_owned()
                ),
            ]
        );
        let filled = fill(&cfg.services[0], &p, &[]).unwrap();
        assert_eq!(filled.command, ["pg", "/t/services/db/data"]);
        assert_eq!(addresses(&[p]), ["127.0.0.1:5433", "[::1]:5433"]);
    }
}
