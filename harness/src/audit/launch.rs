//! Setting the stage: the audit's private folders, its keys, the placeholder values a config's
//! command and environment are filled from, and the pipeline's launch spec. Pure where it can
//! be: only [`Workspace::create`] and [`free_port`] touch the system.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use traceless_sandbox::audit_dir::AuditDir;
use traceless_sandbox::supervisor::{PipelineSpec, Ready};

use crate::config::Config;

/// The audit's private folders, removed when this is dropped.
pub struct Workspace {
    /// Held for its `Drop`, which removes every folder below; locked while this audit runs, so
    /// the next audit can remove it if this one is killed.
    _root: AuditDir,
    pub tmpdir: PathBuf,
    pub home: PathBuf,
    pub workdir: PathBuf,
    pub ca_file: PathBuf,
    /// The Google service-account JSON the mocks made for this audit (`{gcp_credentials}`),
    /// written only when the config asks for it.
    pub gcp_credentials: PathBuf,
    /// The declared services' folders, one each (not the pipeline's: never watched for it).
    pub services: PathBuf,
}

impl Workspace {
    /// Removes what killed audits left behind, then makes this audit's folders.
    pub fn create(cfg: &Config) -> anyhow::Result<Workspace> {
        for stale in traceless_sandbox::audit_dir::remove_stale(&std::env::temp_dir()) {
            tracing::info!("removed {}, left by a killed audit", stale.display());
        }
        let root = AuditDir::create().context("creating the audit's temp dir")?;
        let tmpdir = root.path().join("tmp");
        let home = root.path().join("home");
        let private_work = root.path().join("work");
        for d in [&tmpdir, &home, &private_work] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(Workspace {
            workdir: cfg.pipeline.workdir.clone().unwrap_or(private_work),
            ca_file: root.path().join("audit-ca.pem"),
            gcp_credentials: root.path().join("gcp-service-account.json"),
            services: root.path().join("services"),
            tmpdir,
            home,
            _root: root,
        })
    }
}

/// The per-audit API keys the mocks accept (and the scanner looks for in logs).
#[derive(Clone)]
pub struct Keys {
    pub openai: String,
    pub gemini: String,
}

impl Keys {
    pub fn fresh() -> Keys {
        Keys {
            openai: format!("sk-traceless-{:032x}", rand::random::<u128>()),
            gemini: format!("AIza-traceless-{:024x}", rand::random::<u128>()),
        }
    }
}

/// The values of the config's placeholders (`{port}`, `{openai_url}`, `{service.NAME.port}`, ...).
pub type Values = BTreeMap<String, String>;

/// The placeholders' values; `services` are each declared service's.
pub fn values(
    port: u16,
    openai_url: String,
    gemini_url: String,
    keys: &Keys,
    ws: &Workspace,
    services: Vec<(String, String)>,
) -> Values {
    let fixed = [
        ("port", port.to_string()),
        ("openai_url", openai_url),
        ("gemini_url", gemini_url),
        ("openai_key", keys.openai.clone()),
        ("gemini_key", keys.gemini.clone()),
        ("ca_file", ws.ca_file.display().to_string()),
        ("gcp_credentials", ws.gcp_credentials.display().to_string()),
        ("tmpdir", ws.tmpdir.display().to_string()),
        ("workdir", ws.workdir.display().to_string()),
    ];
    fixed
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(services)
        .collect()
}

/// The pipeline's launch spec: the config's command and environment filled from `values`, and
/// every CA variable of `[interception] ca_env` the config does not set itself.
pub fn pipeline_spec(cfg: &Config, values: &Values, ws: &Workspace, traced: bool) -> PipelineSpec {
    let command: Vec<String> = cfg
        .pipeline
        .command
        .iter()
        .map(|t| t.fill(values))
        .collect();
    let mut env: Vec<(String, String)> = cfg
        .pipeline
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.fill(values)))
        .collect();
    for var in &cfg.interception.ca_env {
        if !env.iter().any(|(k, _)| k == var) {
            env.push((var.clone(), ws.ca_file.display().to_string()));
        }
    }
    PipelineSpec {
        command,
        env,
        workdir: ws.workdir.clone(),
        tmpdir: ws.tmpdir.clone(),
        home: ws.home.clone(),
        watch_roots: vec![],
        trace_syscalls: traced,
        pid_namespace: true,
        ignore_paths: vec![
            ws.ca_file.clone(),
            ws.gcp_credentials.clone(),
            ws.services.clone(),
        ],
        unwatched_files: false,
    }
}

/// Whether the pipeline's command or environment names `{name}`.
pub fn uses_placeholder(cfg: &Config, name: &str) -> bool {
    let mark = format!("{{{name}}}");
    cfg.pipeline.command.iter().any(|t| t.raw().contains(&mark))
        || cfg
            .pipeline
            .env
            .iter()
            .any(|(_, t)| t.raw().contains(&mark))
}

/// Writes the mocks' Google service account where `{gcp_credentials}` points, readable by the
/// audit's user alone, when the config names it (making its key takes a moment).
pub fn write_gcp_credentials(
    cfg: &Config,
    ws: &Workspace,
    mocks: &traceless_mock::Mocks,
) -> anyhow::Result<()> {
    if !uses_placeholder(cfg, "gcp_credentials") {
        return Ok(());
    }
    write_private(&ws.gcp_credentials, &mocks.service_account_json()?)
}

/// Writes `text` to `path`, readable and writable by this user alone (it may hold a private key).
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// The environment variables that carry a provider URL: the plaintext probe rewrites them.
pub fn url_variables(cfg: &Config) -> Vec<String> {
    cfg.pipeline
        .env
        .iter()
        .filter(|(_, t)| t.raw().contains("{openai_url}") || t.raw().contains("{gemini_url}"))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Why the plaintext-URL probe cannot run for this config, if it cannot.
pub fn plaintext_probe_skipped(cfg: &Config) -> Option<String> {
    if !cfg.pipeline.refuses_plaintext_providers {
        Some("the config says the pipeline does not refuse plaintext provider URLs (pipeline.refuses_plaintext_providers = false)".to_owned())
    } else if url_variables(cfg).is_empty() {
        Some("no [pipeline.env] variable carries {openai_url} or {gemini_url}: the pipeline's provider URLs cannot be changed".to_owned())
    } else {
        None
    }
}

/// The spec for the plaintext probe: the same pipeline on `port`, its provider URLs `http://`,
/// untraced, without the switch that would allow plaintext.
pub fn plaintext_spec(cfg: &Config, values: &Values, ws: &Workspace, port: u16) -> PipelineSpec {
    let mut probe_values = values.clone();
    probe_values.insert("port".to_owned(), port.to_string());
    for key in ["openai_url", "gemini_url"] {
        let url = probe_values[key].replacen("https://", "http://", 1);
        probe_values.insert(key.to_owned(), url);
    }
    let mut spec = pipeline_spec(cfg, &probe_values, ws, false);
    spec.env
        .retain(|(k, _)| k != "TRACELESS_ALLOW_PLAINTEXT_PROVIDERS");
    spec
}

/// The variables that handed the pipeline the audit's CA, named in the pinning error.
pub fn ca_variables(spec: &PipelineSpec, ws: &Workspace) -> Vec<String> {
    let ca_path = ws.ca_file.display().to_string();
    let mut vars: Vec<String> = spec
        .env
        .iter()
        .filter(|(_, v)| v.contains(&ca_path))
        .map(|(k, _)| k.clone())
        .collect();
    vars.sort();
    vars
}

pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .context("finding a free port for the pipeline")?;
    Ok(l.local_addr()?.port())
}

/// The file a command name runs, for the provenance digest.
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|c| c.is_file())
}

/// When the pipeline listening at `addr` counts as ready, as the config says.
pub fn readiness(health: &crate::config::Health, addr: std::net::SocketAddr) -> Ready {
    match health {
        crate::config::Health::Http { path, statuses } => Ready::Http {
            url: format!("http://{addr}{path}"),
            statuses: statuses.clone(),
        },
        crate::config::Health::Tcp => Ready::Tcp(addr),
    }
}

/// `exit code 3`, `killed by SIGSEGV`.
pub fn describe_exit(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig)
                .map_or_else(|_| sig.to_string(), |s| s.as_str().to_owned());
            format!("killed by {name}")
        }
        _ => "status unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traceless.toml");
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/policy");
        std::fs::write(
            &path,
            format!(
                "[policy]\ntext = {:?}\nclauses = {:?}\n[pipeline]\ncommand = [\"run\", \"--port\", \"{{port}}\"]\n{extra}\n[pipeline.env]\nOPENAI_BASE_URL = \"{{openai_url}}/v1\"\nKEY = \"{{openai_key}}\"\n",
                fixtures.join("privacy-policy.txt").display().to_string(),
                fixtures.join("clauses.toml").display().to_string(),
            ),
        )
        .unwrap();
        crate::config::load(&path).unwrap()
    }

    fn workspace() -> Workspace {
        Workspace {
            _root: AuditDir::create().unwrap(),
            tmpdir: "/t/tmp".into(),
            home: "/t/home".into(),
            workdir: "/t/work".into(),
            ca_file: "/t/ca.pem".into(),
            gcp_credentials: "/t/gcp.json".into(),
            services: "/t/services".into(),
        }
    }

    #[test]
    fn the_spec_fills_every_placeholder_and_adds_the_ca_variables() {
        let cfg = config("");
        let ws = workspace();
        let keys = Keys {
            openai: "sk-1".into(),
            gemini: "g-1".into(),
        };
        let v = values(
            4242,
            "https://127.0.0.2".into(),
            "https://127.0.0.3".into(),
            &keys,
            &ws,
            vec![("service.db.port".into(), "5433".into())],
        );
        assert_eq!(v["service.db.port"], "5433");
        assert_eq!(v["gcp_credentials"], "/t/gcp.json");
        let spec = pipeline_spec(&cfg, &v, &ws, true);
        assert!(spec.ignore_paths.contains(&ws.services));
        assert!(spec.ignore_paths.contains(&ws.gcp_credentials));
        // The service account is made only for a config that hands it on.
        assert!(uses_placeholder(&cfg, "port") && uses_placeholder(&cfg, "openai_url"));
        assert!(!uses_placeholder(&cfg, "gcp_credentials"));
        assert_eq!(spec.command, ["run", "--port", "4242"]);
        assert!(
            spec.env
                .contains(&("OPENAI_BASE_URL".into(), "https://127.0.0.2/v1".into()))
        );
        assert!(spec.env.contains(&("KEY".into(), "sk-1".into())));
        assert!(
            spec.env
                .contains(&("SSL_CERT_FILE".into(), "/t/ca.pem".into()))
        );
        assert!(spec.trace_syscalls);
        assert_eq!(
            ca_variables(&spec, &ws).first().map(String::as_str),
            Some("CURL_CA_BUNDLE")
        );

        let probe = plaintext_spec(&cfg, &v, &ws, 5000);
        assert_eq!(probe.command, ["run", "--port", "5000"]);
        assert!(
            probe
                .env
                .contains(&("OPENAI_BASE_URL".into(), "http://127.0.0.2/v1".into()))
        );
        assert!(!probe.trace_syscalls);
    }

    #[test]
    fn the_plaintext_probe_says_why_it_cannot_run() {
        assert_eq!(plaintext_probe_skipped(&config("")), None);
        let off = plaintext_probe_skipped(&config("refuses_plaintext_providers = false")).unwrap();
        assert!(off.contains("refuses_plaintext_providers = false"), "{off}");
    }

    #[test]
    fn exits_are_described_by_code_or_signal_name() {
        assert_eq!(describe_exit(Some(3), None), "exit code 3");
        assert_eq!(describe_exit(None, Some(11)), "killed by SIGSEGV");
        assert_eq!(describe_exit(None, None), "status unknown");
    }
}
