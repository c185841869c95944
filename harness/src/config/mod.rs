//! `traceless.toml`: parsed once into [`raw`], validated once into [`Config`]; the rest of the
//! harness only ever sees the validated form. Every error names the file, the line and the key.

pub mod error;
mod images;
mod job;
mod raw;
mod service;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_spanned::Spanned;

pub use error::FileError;
pub use images::ExtraImage;
pub use job::{Follow, Health, JobId, JobMapping};
use raw::RawConfig;
pub use service::{ServiceConfig, ServiceReady};
pub use traceless_judge::plan::{Waiver, WaiverTarget};

/// The placeholders a command or environment value may use; each is filled per run.
pub const PLACEHOLDERS: &[&str] = &[
    "port",
    "openai_url",
    "gemini_url",
    "openai_key",
    "gemini_key",
    "ca_file",
    "gcp_credentials",
    "tmpdir",
    "workdir",
];

/// Names of the monitors `required_monitors` may name: every monitor there is.
fn monitor_names() -> impl Iterator<Item = &'static str> {
    traceless_sandbox::events::MonitorKind::ALL
        .iter()
        .map(|m| m.name())
}

/// Names of the finding kinds a waiver or a clause may name: every check there is.
pub fn finding_kinds() -> Vec<&'static str> {
    crate::check::kind_names().collect()
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// Relative paths in the file are taken from here.
    pub dir: PathBuf,
    pub source: String,
    pub policy: PolicyConfig,
    pub pipeline: PipelineConfig,
    pub audit: AuditConfig,
    pub interception: Interception,
    /// Which models the mocks accept and answer as retired (`[mocks]`; defaults otherwise).
    pub mocks: traceless_mock::ModelRules,
    /// Local services the backend needs (`[[service]]`), started before it and stopped after.
    pub services: Vec<ServiceConfig>,
    pub waivers: Vec<Waiver>,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    pub allowed_providers: Vec<String>,
    pub memory_grace: Duration,
    pub text: PathBuf,
    pub clauses: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub command: Vec<Template>,
    pub env: Vec<(String, Template)>,
    /// The port a backend that cannot be told one listens on; `None`: a free port, handed to
    /// the backend through `{port}`.
    pub port: Option<u16>,
    pub health: Health,
    /// `None`: a private empty directory made for each run.
    pub workdir: Option<PathBuf>,
    pub startup_timeout: Duration,
    pub shutdown_grace: Duration,
    pub refuses_plaintext_providers: bool,
    pub request: RequestMapping,
    pub response: ResponseMapping,
    /// How a generation that answers with a job is followed to its result (`None`: the answer
    /// is the result).
    pub job: Option<JobMapping>,
}

/// How the backend under audit takes a generation request (by default, the reference pipeline's
/// API: `POST /v1/generations`, multipart).
#[derive(Debug, Clone)]
pub struct RequestMapping {
    pub route: String,
    pub method: String,
    pub body: BodyEncoding,
    pub image_field: String,
    pub image_as: ImageAs,
    pub prompt_field: String,
    pub provider_field: Option<String>,
    /// `None`: the backend has no age gate; clause 7 is then reported not-tested.
    pub age_field: Option<String>,
    pub age_true: String,
    pub age_false: String,
    pub provider_values: BTreeMap<String, String>,
    pub extra_fields: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Image parts beyond the photo, each a fresh canary per request.
    pub extra_images: Vec<ExtraImage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    Multipart,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageAs {
    File,
    Base64,
    DataUrl,
}

/// Where the generated image comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseMapping {
    Body,
    JsonBase64(String),
    JsonDataUrl(String),
    JsonUrl(String),
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub scenarios: Vec<String>,
    /// Where scenario files' `fixture = "..."` paths are taken from.
    pub fixtures: Fixtures,
    pub cases: u32,
    pub required_monitors: Vec<String>,
    pub request_timeout: Duration,
    /// How many of the latest requests keep their needles in the live index: older ones, once
    /// judged by a memory scan, are retired to disk (see `Scanner::retire_before`).
    pub live_requests: u32,
}

/// Default of `[audit] live_requests`: about 40-80 MB of live index for 48x40 to 128x128 uploads.
pub const LIVE_REQUESTS: u32 = 32;

/// The folder scenario fixtures come from. A fixture path that leads outside it (`..`, an
/// absolute path, a symbolic link) is refused unless `[audit] allow_outside_fixtures = true`: a
/// scenario file is data, and must not make the harness send any file of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixtures {
    pub dir: PathBuf,
    pub allow_outside: bool,
}

impl Fixtures {
    /// Fixtures confined to `dir`.
    pub fn confined_to(dir: impl Into<PathBuf>) -> Self {
        Fixtures {
            dir: dir.into(),
            allow_outside: false,
        }
    }
}

/// Transparent interception: provider host names that resolve to the mocks inside the sandbox,
/// and the environment variables that carry the audit's CA to the usual TLS stacks.
#[derive(Debug, Clone)]
pub struct Interception {
    pub hosts: Vec<String>,
    pub ca_env: Vec<String>,
}

/// A string with `{placeholder}`s, checked at load time, filled per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    pub fn raw(&self) -> &str {
        &self.0
    }

    pub fn fill<K: AsRef<str>>(&self, values: &BTreeMap<K, String>) -> String {
        let mut out = self.0.clone();
        for (name, value) in values {
            out = out.replace(&format!("{{{}}}", name.as_ref()), value);
        }
        out
    }

    /// `s`, if every `{placeholder}` in it is one of `known`.
    fn parse(s: &str, known: &[String]) -> Result<Self, TemplateError> {
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                return Err(TemplateError::Unclosed(s.to_owned()));
            };
            let name = &after[..end];
            if !known.iter().any(|k| k == name) {
                return Err(TemplateError::Unknown(name.to_owned(), known.to_vec()));
            }
            rest = &after[end + 1..];
        }
        Ok(Self(s.to_owned()))
    }
}

/// Why a string is not a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TemplateError {
    Unclosed(String),
    /// The placeholder, and the ones known where it was used.
    Unknown(String, Vec<String>),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Unclosed(s) => write!(f, "unclosed `{{` in {s:?}"),
            TemplateError::Unknown(name, known) => write!(
                f,
                "unknown placeholder `{{{name}}}`; known: {}",
                known
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Loads and validates a config file.
pub fn load(path: &Path) -> Result<Config, FileError> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| FileError::new(path, None, None, format!("cannot read the config: {e}")))?;
    parse(path, &source)
}

/// Validates config text as if read from `path` (relative paths are taken from its folder).
pub fn parse(path: &Path, source: &str) -> Result<Config, FileError> {
    let raw: RawConfig =
        toml::from_str(source).map_err(|e| FileError::from_toml(path, source, &e))?;
    Validator { path, source }.config(raw)
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
}

impl Validator<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        msg: impl Into<String>,
    ) -> Result<T, FileError> {
        Err(FileError::at_span(self.path, self.source, span, key, msg))
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, FileError> {
        let dir = self.dir();
        let policy = self.policy(raw.policy, &dir)?;
        let services = self.services(raw.service, &dir)?;
        let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
        let pipeline = self.pipeline(raw.pipeline, &dir, &names)?;
        let audit = self.audit(raw.audit, &dir)?;
        let interception = self.interception(raw.interception)?;
        let mocks = self.mocks(raw.mocks)?;
        let waivers = raw
            .waiver
            .into_iter()
            .map(|w| self.waiver(w))
            .collect::<Result<_, _>>()?;
        Ok(Config {
            path: self.path.to_path_buf(),
            dir,
            source: self.source.to_owned(),
            policy,
            pipeline,
            audit,
            interception,
            mocks,
            services,
            waivers,
        })
    }

    fn policy(&self, raw: raw::RawPolicy, dir: &Path) -> Result<PolicyConfig, FileError> {
        let allowed_providers = match raw.allowed_providers {
            None => vec!["openai".to_owned(), "gemini".to_owned()],
            Some(list) => {
                let mut out = Vec::new();
                for p in list.into_inner() {
                    let name = p.get_ref().as_str();
                    if !matches!(name, "openai" | "gemini") {
                        return self.err(
                            p.span(),
                            "policy.allowed_providers",
                            format!("unknown provider {name:?}; expected \"openai\" or \"gemini\""),
                        );
                    }
                    out.push(name.to_owned());
                }
                out
            }
        };
        let memory_grace =
            Duration::from_millis(raw.memory_grace_ms.map_or(500, Spanned::into_inner));
        let text = self.existing_file(raw.text, dir, "policy.text", "policy/privacy-policy.txt")?;
        let clauses =
            self.existing_file(raw.clauses, dir, "policy.clauses", "policy/clauses.toml")?;
        Ok(PolicyConfig {
            allowed_providers,
            memory_grace,
            text,
            clauses,
        })
    }

    /// A file the config names (relative to its folder, or `builtin:NAME`), or the built-in
    /// `default` when it names none.
    fn existing_file(
        &self,
        value: Option<Spanned<String>>,
        dir: &Path,
        key: &str,
        default: &str,
    ) -> Result<PathBuf, FileError> {
        self.existing(value, dir, key, default, Path::is_file, "file")
    }

    /// A folder, as [`Self::existing_file`].
    fn existing_dir(
        &self,
        value: Option<Spanned<String>>,
        dir: &Path,
        key: &str,
        default: &str,
    ) -> Result<PathBuf, FileError> {
        self.existing(value, dir, key, default, Path::is_dir, "folder")
    }

    fn existing(
        &self,
        value: Option<Spanned<String>>,
        dir: &Path,
        key: &str,
        default: &str,
        is_there: fn(&Path) -> bool,
        what: &str,
    ) -> Result<PathBuf, FileError> {
        let Some(value) = value else {
            return crate::assets::resolve(default).map_err(|e| {
                FileError::new(self.path, None, Some(key), format!("not set, and {e:#}"))
            });
        };
        let (span, rel) = (value.span(), value.into_inner());
        if let Some(name) = crate::assets::builtin_name(&rel) {
            return crate::assets::resolve(name).or_else(|e| self.err(span, key, format!("{e:#}")));
        }
        let path = dir.join(&rel);
        if is_there(&path) {
            return Ok(path);
        }
        self.err(
            span,
            key,
            format!(
                "no {what} at {} (taken relative to the config's folder; `{}NAME` names a built-in one)",
                path.display(),
                crate::assets::PREFIX
            ),
        )
    }

    fn pipeline(
        &self,
        raw: Spanned<raw::RawPipeline>,
        dir: &Path,
        services: &[String],
    ) -> Result<PipelineConfig, FileError> {
        let raw = raw.into_inner();
        let known = service::pipeline_placeholders(services);
        let command = self.argv(raw.command, dir, "pipeline.command", &known, services)?;
        let mut env = Vec::new();
        for (k, v) in raw.env {
            let t = self.template(&v, &format!("pipeline.env.{k}"), &known, services)?;
            env.push((k, t));
        }
        let health = self.health(raw.health, raw.health_statuses)?;
        let workdir = match raw.workdir {
            None => None,
            Some(w) => {
                let p = dir.join(w.get_ref());
                if !p.is_dir() {
                    return self.err(
                        w.span(),
                        "pipeline.workdir",
                        format!("no folder at {}", p.display()),
                    );
                }
                Some(p)
            }
        };
        let port = match raw.port {
            Some(p) if *p.get_ref() == 0 => {
                return self.err(
                    p.span(),
                    "pipeline.port",
                    "must be the port the backend listens on (1-65535), or left out for a free port handed over as {port}",
                );
            }
            p => p.map(Spanned::into_inner),
        };
        Ok(PipelineConfig {
            command,
            env,
            port,
            health,
            workdir,
            startup_timeout: Duration::from_millis(
                raw.startup_timeout_ms.map_or(30_000, Spanned::into_inner),
            ),
            shutdown_grace: Duration::from_millis(
                raw.shutdown_grace_ms.map_or(5_000, Spanned::into_inner),
            ),
            refuses_plaintext_providers: raw
                .refuses_plaintext_providers
                .is_none_or(Spanned::into_inner),
            request: self.request(raw.request)?,
            response: self.response(raw.response)?,
            job: self.job(raw.job)?,
        })
    }

    fn request(&self, raw: raw::RawRequest) -> Result<RequestMapping, FileError> {
        let s = |v: Option<Spanned<String>>, d: &str| {
            v.map_or_else(|| d.to_owned(), Spanned::into_inner)
        };
        let body = match raw.body {
            None => BodyEncoding::Multipart,
            Some(b) => match b.get_ref().as_str() {
                "multipart" => BodyEncoding::Multipart,
                "json" => BodyEncoding::Json,
                other => {
                    return self.err(
                        b.span(),
                        "pipeline.request.body",
                        format!("{other:?}: expected \"multipart\" or \"json\""),
                    );
                }
            },
        };
        let image_as = self.image_as(raw.image_as, "pipeline.request.image_as")?;
        if body == BodyEncoding::Json && image_as == ImageAs::File {
            return Err(FileError::new(
                self.path,
                None,
                Some("pipeline.request.image_as"),
                "a JSON body cannot carry a file part: set image_as to \"base64\" or \"data-url\"",
            ));
        }
        let age_gate = raw.age_gate.is_none_or(Spanned::into_inner);
        let age_field = age_gate.then(|| s(raw.age_field, "age_confirmed"));
        let method = s(raw.method, "POST").to_ascii_uppercase();
        let route = match raw.route {
            Some(r) if !r.get_ref().starts_with('/') => {
                return self.err(r.span(), "pipeline.request.route", "must start with `/`");
            }
            other => s(other, "/v1/generations"),
        };
        let mut provider_values: BTreeMap<String, String> =
            [("openai", "openai"), ("gemini", "gemini")]
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .into();
        for (k, v) in raw.provider_values {
            if !provider_values.contains_key(&k) {
                return self.err(
                    v.span(),
                    &format!("pipeline.request.provider_values.{k}"),
                    "only \"openai\" and \"gemini\" can be mapped",
                );
            }
            provider_values.insert(k, v.into_inner());
        }
        let provider_field = match raw.provider_field {
            Some(f) if f.get_ref().is_empty() => None,
            other => Some(s(other, "provider")),
        };
        Ok(RequestMapping {
            route,
            method,
            body,
            image_field: s(raw.image_field, "image"),
            image_as,
            prompt_field: s(raw.prompt_field, "prompt"),
            provider_field,
            age_field,
            age_true: s(raw.age_true, "true"),
            age_false: s(raw.age_false, "false"),
            provider_values,
            extra_fields: raw
                .extra_fields
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            headers: raw
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.into_inner()))
                .collect(),
            extra_images: self.extra_images(raw.images, body)?,
        })
    }

    fn response(&self, raw: raw::RawResponse) -> Result<ResponseMapping, FileError> {
        let kind = raw.image.map(|v| (v.span(), v.into_inner()));
        let pointer = raw.pointer.map(Spanned::into_inner);
        match (kind, pointer) {
            (None, None) => Ok(ResponseMapping::Body),
            (Some((_, k)), None) if k == "body" => Ok(ResponseMapping::Body),
            (Some((span, k)), None) => self.err(
                span,
                "pipeline.response.pointer",
                format!("image = {k:?} needs a JSON pointer"),
            ),
            (Some((span, k)), Some(p)) => match k.as_str() {
                "base64" => Ok(ResponseMapping::JsonBase64(p)),
                "data-url" => Ok(ResponseMapping::JsonDataUrl(p)),
                "url" => Ok(ResponseMapping::JsonUrl(p)),
                other => self.err(
                    span,
                    "pipeline.response.image",
                    format!("{other:?}: expected \"body\", \"base64\", \"data-url\" or \"url\""),
                ),
            },
            (None, Some(_)) => Err(FileError::new(
                self.path,
                None,
                Some("pipeline.response.image"),
                "a pointer is set but not what it points at: set image = \"base64\", \"data-url\" or \"url\"",
            )),
        }
    }

    fn audit(&self, raw: raw::RawAudit, dir: &Path) -> Result<AuditConfig, FileError> {
        let fixtures = self.existing_dir(raw.fixtures, dir, "audit.fixtures", "fixtures")?;
        let scenarios = match raw.scenarios {
            None => vec![self.builtin_glob(None, "scenarios/*.toml", "audit.scenarios")?],
            Some(list) => list
                .into_inner()
                .into_iter()
                .map(|p| {
                    let span = p.span();
                    let p = p.into_inner();
                    match crate::assets::builtin_name(&p) {
                        Some(name) => self.builtin_glob(Some(span), name, "audit.scenarios"),
                        None => Ok(p),
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        let mut required_monitors = Vec::new();
        match raw.required_monitors {
            None => required_monitors.extend(monitor_names().map(str::to_owned)),
            Some(list) => {
                for m in list.into_inner() {
                    if !monitor_names().any(|n| n == m.get_ref()) {
                        return self.err(
                            m.span(),
                            "audit.required_monitors",
                            format!(
                                "unknown monitor {:?}; known: {}",
                                m.get_ref(),
                                monitor_names().collect::<Vec<_>>().join(", ")
                            ),
                        );
                    }
                    required_monitors.push(m.into_inner());
                }
            }
        }
        let live_requests = match raw.live_requests {
            None => LIVE_REQUESTS,
            Some(n) if *n.get_ref() == 0 => {
                return self.err(
                    n.span(),
                    "audit.live_requests",
                    "must be at least 1 (the requests whose needles stay in memory)".to_owned(),
                );
            }
            Some(n) => n.into_inner(),
        };
        Ok(AuditConfig {
            scenarios,
            live_requests,
            fixtures: Fixtures {
                dir: fixtures,
                allow_outside: raw.allow_outside_fixtures.is_some_and(Spanned::into_inner),
            },
            cases: raw.cases.map_or(256, Spanned::into_inner),
            required_monitors,
            request_timeout: Duration::from_millis(
                raw.request_timeout_ms.map_or(30_000, Spanned::into_inner),
            ),
        })
    }

    /// A built-in scenario glob as an absolute glob into the written built-in tree.
    fn builtin_glob(
        &self,
        span: Option<std::ops::Range<usize>>,
        name: &str,
        key: &str,
    ) -> Result<String, FileError> {
        match crate::assets::resolve(name) {
            Ok(p) => Ok(p.display().to_string()),
            Err(e) => match span {
                Some(span) => self.err(span, key, format!("{e:#}")),
                None => Err(FileError::new(self.path, None, Some(key), format!("{e:#}"))),
            },
        }
    }

    fn interception(&self, raw: raw::RawInterception) -> Result<Interception, FileError> {
        let mut hosts = vec![
            "api.openai.com".to_owned(),
            "generativelanguage.googleapis.com".to_owned(),
        ];
        if let Some(list) = raw.hosts {
            for h in list.into_inner() {
                let valid = !h.get_ref().is_empty()
                    && h.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                if !valid {
                    return self.err(
                        h.span(),
                        "interception.hosts",
                        format!("{:?} is not a host name", h.get_ref()),
                    );
                }
                hosts.push(h.into_inner());
            }
        }
        let mut ca_env: Vec<String> = [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
            "CURL_CA_BUNDLE",
        ]
        .map(String::from)
        .into();
        if let Some(list) = raw.ca_env {
            ca_env.extend(list.into_inner().into_iter().map(Spanned::into_inner));
        }
        Ok(Interception { hosts, ca_env })
    }

    /// `[mocks]`: each list given replaces the default one; a pattern is a model name in which `*`
    /// matches any run of characters.
    fn mocks(&self, raw: raw::RawMocks) -> Result<traceless_mock::ModelRules, FileError> {
        let mut rules = traceless_mock::ModelRules::default();
        for (key, list, slot) in [
            (
                "mocks.openai_image_models",
                raw.openai_image_models,
                &mut rules.openai_image,
            ),
            (
                "mocks.openai_responses_models",
                raw.openai_responses_models,
                &mut rules.openai_responses,
            ),
            (
                "mocks.openai_retired_models",
                raw.openai_retired_models,
                &mut rules.openai_retired,
            ),
            (
                "mocks.gemini_image_models",
                raw.gemini_image_models,
                &mut rules.gemini_image,
            ),
            (
                "mocks.gemini_text_models",
                raw.gemini_text_models,
                &mut rules.gemini_text,
            ),
            (
                "mocks.gemini_retired_models",
                raw.gemini_retired_models,
                &mut rules.gemini_retired,
            ),
        ] {
            let Some(list) = list else { continue };
            let mut patterns = Vec::new();
            for pattern in list.into_inner() {
                let valid = !pattern.get_ref().is_empty()
                    && pattern
                        .get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '*'));
                if !valid {
                    return self.err(
                        pattern.span(),
                        key,
                        format!(
                            "{:?} is not a model name pattern (letters, digits, '.', '-', '_' and '*')",
                            pattern.get_ref()
                        ),
                    );
                }
                patterns.push(pattern.into_inner());
            }
            *slot = patterns;
        }
        Ok(rules)
    }

    fn waiver(&self, raw: Spanned<raw::RawWaiver>) -> Result<Waiver, FileError> {
        let span = raw.span();
        let line = error::line_of(self.source, span.start);
        let w = raw.into_inner();
        let target = match (w.kind, w.clause) {
            (Some(k), None) => {
                if !finding_kinds().contains(&k.get_ref().as_str()) {
                    return self.err(
                        k.span(),
                        "waiver.kind",
                        format!(
                            "unknown finding kind {:?}; known: {}",
                            k.get_ref(),
                            finding_kinds().join(", ")
                        ),
                    );
                }
                WaiverTarget::Kind(k.into_inner())
            }
            (None, Some(c)) => WaiverTarget::Clause(c.into_inner()),
            _ => return self.err(span, "waiver", "set exactly one of `kind` or `clause`"),
        };
        if w.justification.get_ref().trim().is_empty() {
            return self.err(
                w.justification.span(),
                "waiver.justification",
                "must say why the waiver is acceptable",
            );
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        let expires = time::Date::parse(w.expires.get_ref(), fmt).or_else(|_| {
            self.err(
                w.expires.span(),
                "waiver.expires",
                format!("{:?} is not a date like 2027-01-31", w.expires.get_ref()),
            )
        })?;
        Ok(Waiver {
            target,
            justification: w.justification.into_inner(),
            expires,
            line,
        })
    }
}

/// A command argument naming an existing file relative to the config's folder becomes absolute,
/// because the pipeline runs in a private working directory; so does a relative program path,
/// so that a missing build is reported with its full path.
fn resolve_relative(arg: &str, dir: &Path, is_program: bool) -> String {
    if arg.contains('{') || arg.starts_with('/') || arg.starts_with('-') {
        return arg.to_owned();
    }
    let candidate = dir.join(arg);
    if arg.contains('/') && (is_program || candidate.exists()) {
        // Absolute, but never through symlinks: a venv's `bin/python` is a link to the base
        // interpreter, which finds the venv's packages only when started by the link's path.
        return std::path::absolute(&candidate)
            .unwrap_or(candidate)
            .display()
            .to_string();
    }
    arg.to_owned()
}

#[cfg(test)]
mod tests;
