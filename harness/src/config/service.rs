//! `[[service]]`: a local service the backend needs (a database, a cache), declared so that the
//! audit starts it beside the pipeline, outside the pipeline's monitors, hands its address over
//! through `{service.NAME.port}` and `{service.NAME.url}`, and scans its data folder at the end.

use std::path::Path;
use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::{RawArgv, RawService};
use super::{FileError, PLACEHOLDERS, Template, Validator, resolve_relative};

/// A declared local service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub name: String,
    /// argv; `{port}` and `{data_dir}` are the service's own.
    pub command: Vec<Template>,
    pub env: Vec<(String, Template)>,
    /// A fixed port; `None`: a free one, handed over as `{port}`.
    pub port: Option<u16>,
    /// What `{service.NAME.url}` becomes (default `127.0.0.1:{port}`).
    pub url: Template,
    pub ready: ServiceReady,
    pub ready_timeout: Duration,
    pub stop_grace: Duration,
    /// Commands run in order before the start (e.g. `initdb`); each must exit 0.
    pub setup: Vec<Vec<Template>>,
    /// Commands run in order once it is ready (e.g. `createdb`, a schema); each must exit 0.
    pub init: Vec<Vec<Template>>,
    /// Run as this user (its uid and gid mapped in a user namespace of the service's own), for
    /// servers that refuse to run as root.
    pub user: Option<String>,
}

/// When a started service counts as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceReady {
    /// Its port accepts connections.
    Tcp,
    /// This command exits 0 (tried again until the timeout).
    Command(Vec<Template>),
}

/// The placeholders the pipeline's command and environment may use, given the declared services.
pub(super) fn pipeline_placeholders(services: &[String]) -> Vec<String> {
    let mut known: Vec<String> = PLACEHOLDERS.iter().map(|p| (*p).to_owned()).collect();
    known.extend(service_placeholders(services));
    known
}

/// The placeholders a service's own commands may use.
fn own_placeholders(services: &[String]) -> Vec<String> {
    let mut known = vec!["port".to_owned(), "data_dir".to_owned()];
    known.extend(service_placeholders(services));
    known
}

fn service_placeholders(services: &[String]) -> impl Iterator<Item = String> + '_ {
    services
        .iter()
        .flat_map(|s| [format!("service.{s}.port"), format!("service.{s}.url")])
}

/// Why `name` (a placeholder not known) is wrong, when it names an undeclared service.
pub(super) fn unknown_service(name: &str, services: &[String]) -> Option<String> {
    let rest = name.strip_prefix("service.")?;
    let service = rest.rsplit_once('.').map_or(rest, |(s, _)| s);
    if services.iter().any(|s| s == service) {
        return None;
    }
    let declared = if services.is_empty() {
        "none is declared".to_owned()
    } else {
        format!("declared: {}", services.join(", "))
    };
    Some(format!(
        "`{{{name}}}` names no [[service]] {service:?} ({declared}); a service's placeholders are {{service.NAME.port}} and {{service.NAME.url}}"
    ))
}

impl Validator<'_> {
    /// Every `[[service]]`, names unique.
    pub(super) fn services(
        &self,
        raw: Vec<Spanned<RawService>>,
        dir: &Path,
    ) -> Result<Vec<ServiceConfig>, FileError> {
        let names = self.service_names(&raw)?;
        raw.into_iter()
            .map(|s| self.service(s.into_inner(), dir, &names))
            .collect()
    }

    fn service_names(&self, raw: &[Spanned<RawService>]) -> Result<Vec<String>, FileError> {
        let mut names: Vec<String> = Vec::new();
        for s in raw {
            let name = &s.get_ref().name;
            let valid = !name.get_ref().is_empty()
                && name
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !valid {
                return self.err(
                    name.span(),
                    "service.name",
                    format!(
                        "{:?} is not a service name (letters, digits, '-' and '_')",
                        name.get_ref()
                    ),
                );
            }
            if names.contains(name.get_ref()) {
                return self.err(
                    name.span(),
                    "service.name",
                    format!("a second [[service]] named {:?}", name.get_ref()),
                );
            }
            names.push(name.get_ref().clone());
        }
        Ok(names)
    }

    fn service(
        &self,
        raw: RawService,
        dir: &Path,
        names: &[String],
    ) -> Result<ServiceConfig, FileError> {
        let name = raw.name.into_inner();
        let key = |k: &str| format!("service.{name}.{k}");
        let known = own_placeholders(names);
        let command = self.argv(raw.command, dir, &key("command"), &known, names)?;
        let mut env = Vec::new();
        for (k, v) in raw.env {
            let t = self.template(&v, &key(&format!("env.{k}")), &known, names)?;
            env.push((k, t));
        }
        let url = match raw.url {
            Some(u) => self.template(&u, &key("url"), &known, names)?,
            None => Template("127.0.0.1:{port}".to_owned()),
        };
        let ready = self.service_ready(raw.ready, dir, &key("ready"), &known, names)?;
        let lists = |list: Vec<RawArgv>, what: &str| -> Result<Vec<Vec<Template>>, FileError> {
            list.into_iter()
                .enumerate()
                .map(|(i, c)| self.argv(c, dir, &key(&format!("{what}[{i}]")), &known, names))
                .collect()
        };
        Ok(ServiceConfig {
            command,
            env,
            port: self.service_port(raw.port, &key("port"))?,
            url,
            ready,
            ready_timeout: Duration::from_millis(
                raw.ready_timeout_ms.map_or(30_000, Spanned::into_inner),
            ),
            stop_grace: Duration::from_millis(raw.stop_grace_ms.map_or(5_000, Spanned::into_inner)),
            setup: lists(raw.setup, "setup")?,
            init: lists(raw.init, "init")?,
            user: self.service_user(raw.user, &key("user"))?,
            name,
        })
    }

    fn service_port(&self, raw: Option<Spanned<u16>>, key: &str) -> Result<Option<u16>, FileError> {
        match raw {
            Some(p) if *p.get_ref() == 0 => self.err(
                p.span(),
                key,
                "must be the port the service listens on (1-65535), or left out for a free port handed over as {port}",
            ),
            p => Ok(p.map(Spanned::into_inner)),
        }
    }

    fn service_user(
        &self,
        raw: Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<String>, FileError> {
        match raw {
            Some(u) if u.get_ref().trim().is_empty() => {
                self.err(u.span(), key, "must name a user, e.g. \"nobody\"")
            }
            u => Ok(u.map(Spanned::into_inner)),
        }
    }

    fn service_ready(
        &self,
        raw: Option<Spanned<toml::Value>>,
        dir: &Path,
        key: &str,
        known: &[String],
        names: &[String],
    ) -> Result<ServiceReady, FileError> {
        let Some(raw) = raw else {
            return Ok(ServiceReady::Tcp);
        };
        let span = raw.span();
        let bad = || {
            self.err(
                span.clone(),
                key,
                "must be \"tcp\" (the port accepts connections) or a command that exits 0 once ready, e.g. [\"pg_isready\", \"-h\", \"127.0.0.1\", \"-p\", \"{port}\"]",
            )
        };
        match raw.into_inner() {
            toml::Value::String(s) if s == "tcp" => Ok(ServiceReady::Tcp),
            toml::Value::Array(args) if !args.is_empty() => {
                let mut argv = Vec::new();
                for (i, arg) in args.into_iter().enumerate() {
                    let toml::Value::String(arg) = arg else {
                        return bad();
                    };
                    let text = resolve_relative(&arg, dir, i == 0);
                    argv.push(
                        Template::parse(&text, known)
                            .or_else(|m| self.placeholder_err(span.clone(), key, &m, names))?,
                    );
                }
                Ok(ServiceReady::Command(argv))
            }
            _ => bad(),
        }
    }

    /// A command line: a program and its arguments, each a template; relative paths resolved.
    pub(super) fn argv(
        &self,
        raw: RawArgv,
        dir: &Path,
        key: &str,
        known: &[String],
        names: &[String],
    ) -> Result<Vec<Template>, FileError> {
        let span = raw.span();
        let args = raw.into_inner();
        if args.is_empty() {
            return self.err(span, key, "must name a program to run");
        }
        let mut out = Vec::new();
        for (i, arg) in args.into_iter().enumerate() {
            let text = resolve_relative(arg.get_ref(), dir, i == 0);
            let t = Template::parse(&text, known)
                .or_else(|m| self.placeholder_err(arg.span(), &format!("{key}[{i}]"), &m, names))?;
            out.push(t);
        }
        Ok(out)
    }

    pub(super) fn template(
        &self,
        value: &Spanned<String>,
        key: &str,
        known: &[String],
        names: &[String],
    ) -> Result<Template, FileError> {
        Template::parse(value.get_ref(), known)
            .or_else(|m| self.placeholder_err(value.span(), key, &m, names))
    }

    /// A template error; an unknown `{service.X...}` says which services there are.
    fn placeholder_err<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: &super::TemplateError,
        names: &[String],
    ) -> Result<T, FileError> {
        let text = match message {
            super::TemplateError::Unknown(name, _) => {
                unknown_service(name, names).unwrap_or_else(|| message.to_string())
            }
            other => other.to_string(),
        };
        self.err(span, key, text)
    }
}
