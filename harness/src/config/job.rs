//! `[pipeline.job]` and readiness: how an audit follows a backend whose generation answers with a
//! job (201/202 and an id or a URL) to its result, by polling a route or reading an event stream,
//! and when a started backend counts as ready.

use std::time::Duration;

use serde_spanned::Spanned;

use super::raw::RawJob;
use super::{FileError, Validator};

/// How a job-answering backend is followed from its submit answer to the generated image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobMapping {
    /// The submit statuses that mean "accepted, follow the job"; any other status is the
    /// request's answer, as for a synchronous backend (a refused age gate, say).
    pub submit_statuses: Vec<u16>,
    pub id: JobId,
    pub follow: Follow,
    /// Where each poll answer or event (JSON) tells the job's state.
    pub state_pointer: String,
    /// States that mean the result is ready.
    pub done: Vec<String>,
    /// States that mean the job failed: the request is then recorded with `failed_status`.
    pub failed: Vec<String>,
    pub failed_status: u16,
    /// Where the result is fetched (`{job}` filled); `None`: the last poll answer or event is
    /// read with `[pipeline.response]`.
    pub result: Option<String>,
}

/// Where the submit answer names its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobId {
    /// A JSON pointer into the submit answer's body.
    Pointer(String),
    /// A response header (e.g. `location`), holding an id, a path or a URL.
    Header(String),
}

/// How the job is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// `GET route` (`{job}` filled) every `interval` until a done or failed state.
    Poll { route: String, interval: Duration },
    /// One `GET route` read as a server-sent event stream until an event with a done or failed
    /// state.
    Events { route: String },
}

/// When a started backend counts as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `GET path` answers one of `statuses`.
    Http { path: String, statuses: Vec<u16> },
    /// The port accepts connections.
    Tcp,
}

const JOB_PLACEHOLDER: &str = "{job}";

impl Validator<'_> {
    /// `health` (a path, or `"tcp"`) and `health_statuses`.
    pub(super) fn health(
        &self,
        health: Option<Spanned<String>>,
        statuses: Option<Spanned<Vec<Spanned<u16>>>>,
    ) -> Result<Health, FileError> {
        let statuses = match statuses {
            None => vec![200],
            Some(list) => self.statuses(list, "pipeline.health_statuses")?,
        };
        match health {
            Some(h) if h.get_ref() == "tcp" => Ok(Health::Tcp),
            Some(h) if !h.get_ref().starts_with('/') => self.err(
                h.span(),
                "pipeline.health",
                "must be a path starting with `/`, e.g. \"/healthz\", or \"tcp\" (the port accepts connections)",
            ),
            Some(h) => Ok(Health::Http {
                path: h.into_inner(),
                statuses,
            }),
            None => Ok(Health::Http {
                path: "/healthz".to_owned(),
                statuses,
            }),
        }
    }

    fn statuses(&self, list: Spanned<Vec<Spanned<u16>>>, key: &str) -> Result<Vec<u16>, FileError> {
        let span = list.span();
        let list = list.into_inner();
        if list.is_empty() {
            return self.err(span, key, "must name at least one HTTP status");
        }
        list.into_iter()
            .map(|s| match *s.get_ref() {
                100..=599 => Ok(s.into_inner()),
                other => self.err(
                    s.span(),
                    key,
                    format!("{other} is not an HTTP status (100-599)"),
                ),
            })
            .collect()
    }

    fn job_route(&self, raw: Spanned<String>, key: &str) -> Result<String, FileError> {
        let text = raw.get_ref();
        if !text.contains(JOB_PLACEHOLDER) {
            return self.err(
                raw.span(),
                key,
                format!(
                    "must contain {JOB_PLACEHOLDER}, which the job's id or URL fills (e.g. \"/v1/jobs/{{job}}\", or \"{{job}}\" for a URL taken whole)"
                ),
            );
        }
        if !text.starts_with('/') && !text.starts_with(JOB_PLACEHOLDER) {
            return self.err(raw.span(), key, "must start with `/` or with {job}");
        }
        Ok(raw.into_inner())
    }

    pub(super) fn job(
        &self,
        raw: Option<Spanned<RawJob>>,
    ) -> Result<Option<JobMapping>, FileError> {
        let Some(raw) = raw else { return Ok(None) };
        let table_span = raw.span();
        let raw = raw.into_inner();
        let id = {
            let (span, text) = (raw.id.span(), raw.id.into_inner());
            if let Some(header) = text.strip_prefix("header:") {
                JobId::Header(header.trim().to_ascii_lowercase())
            } else if text.starts_with('/') {
                JobId::Pointer(text)
            } else {
                return self.err(
                    span,
                    "pipeline.job.id",
                    format!(
                        "{text:?}: expected a JSON pointer into the submit answer (\"/jobId\") or \"header:NAME\" (\"header:location\")"
                    ),
                );
            }
        };
        let follow = match (raw.poll, raw.events) {
            (Some(route), None) => Follow::Poll {
                route: self.job_route(route, "pipeline.job.poll")?,
                interval: Duration::from_millis(
                    raw.poll_interval_ms.map_or(100, Spanned::into_inner).max(1),
                ),
            },
            (None, Some(route)) => Follow::Events {
                route: self.job_route(route, "pipeline.job.events")?,
            },
            (Some(_), Some(events)) => {
                return self.err(
                    events.span(),
                    "pipeline.job.events",
                    "set either `poll` or `events`, not both",
                );
            }
            (None, None) => {
                return self.err(
                    table_span,
                    "pipeline.job",
                    "needs `poll = \"/route/{job}\"` or `events = \"/route/{job}\"` to follow the job",
                );
            }
        };
        let done = raw.done.into_inner();
        if done.is_empty() {
            return self.err(
                table_span,
                "pipeline.job.done",
                "must name at least one state",
            );
        }
        let submit_statuses = match raw.submit_status {
            None => vec![201, 202],
            Some(list) => self.statuses(list, "pipeline.job.submit_status")?,
        };
        let failed_status = match raw.failed_status {
            None => 502,
            Some(s) if (100..=599).contains(s.get_ref()) => s.into_inner(),
            Some(s) => {
                return self.err(
                    s.span(),
                    "pipeline.job.failed_status",
                    "must be an HTTP status (100-599)",
                );
            }
        };
        Ok(Some(JobMapping {
            submit_statuses,
            id,
            follow,
            state_pointer: raw
                .state_pointer
                .map_or_else(|| "/status".to_owned(), Spanned::into_inner),
            done: done.into_iter().map(Spanned::into_inner).collect(),
            failed: raw
                .failed
                .map(|l| {
                    l.into_inner()
                        .into_iter()
                        .map(Spanned::into_inner)
                        .collect()
                })
                .unwrap_or_default(),
            failed_status,
            result: raw
                .result
                .map(|r| self.job_route(r, "pipeline.job.result"))
                .transpose()?,
        }))
    }
}
