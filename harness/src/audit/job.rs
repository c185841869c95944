//! Follows a job-answering backend from its submit answer to the generated image, as its own
//! client would: take the job's id or URL from the answer, poll its route (or read its event
//! stream) until a done or failed state, then fetch the result. Only the pipeline's own port is
//! ever asked.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;

use super::client::{Answer, Client};
use crate::config::{Follow, JobId, JobMapping, ResponseMapping};

/// What the job's state said, with the answer (or event) that said it.
enum Outcome {
    Done(Vec<u8>),
    Failed(Vec<u8>),
}

/// Follows the job the submit answer (`status`, `headers`, `body`) names; the returned answer's
/// body holds every body read on the way (submit, last state, result), so that the checks scan
/// all of what the client was told.
pub async fn follow(
    client: &Client,
    job: &JobMapping,
    resp: &ResponseMapping,
    submit: Answer,
) -> Answer {
    let deadline = Instant::now() + client.timeout();
    let mut bodies = submit.body.clone();
    let failed = |error: String, bodies: Vec<u8>| Answer {
        status: submit.status,
        headers: submit.headers.clone(),
        body: bodies,
        image: None,
        error: Some(error),
    };
    let Some(job_ref) = job_ref(job, &submit) else {
        return failed(
            format!(
                "the submit answer ({}) names no job at {}",
                submit.status.unwrap_or_default(),
                match &job.id {
                    JobId::Pointer(p) => format!("pointer {p}"),
                    JobId::Header(h) => format!("header {h}"),
                }
            ),
            bodies,
        );
    };
    let outcome = match &job.follow {
        Follow::Poll { route, interval } => {
            poll(client, job, &fill(route, &job_ref), *interval, deadline).await
        }
        Follow::Events { route } => events(client, job, &fill(route, &job_ref), deadline).await,
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return failed(format!("following job {job_ref}: {e:#}"), bodies),
    };
    match outcome {
        Outcome::Failed(last) => {
            bodies.extend_from_slice(b"\n");
            bodies.extend_from_slice(&last);
            Answer {
                status: Some(job.failed_status),
                headers: submit.headers.clone(),
                body: bodies,
                image: None,
                error: None,
            }
        }
        Outcome::Done(last) => {
            bodies.extend_from_slice(b"\n");
            bodies.extend_from_slice(&last);
            let Some(result) = &job.result else {
                let image = client.extract_image(resp, &last).await;
                return Answer {
                    status: Some(200),
                    headers: submit.headers.clone(),
                    body: bodies,
                    image,
                    error: None,
                };
            };
            match client.get_within(&fill(result, &job_ref), deadline).await {
                Ok((status, headers, body)) => {
                    let image = if status == 200 {
                        client.extract_image(resp, &body).await
                    } else {
                        None
                    };
                    bodies.extend_from_slice(b"\n");
                    bodies.extend_from_slice(&body);
                    Answer {
                        status: Some(status),
                        headers,
                        body: bodies,
                        image,
                        error: None,
                    }
                }
                Err(e) => failed(format!("fetching job {job_ref}'s result: {e:#}"), bodies),
            }
        }
    }
}

/// The job's id or URL, as the submit answer gives it.
fn job_ref(job: &JobMapping, submit: &Answer) -> Option<String> {
    match &job.id {
        JobId::Pointer(p) => {
            let v: serde_json::Value = serde_json::from_slice(&submit.body).ok()?;
            scalar(v.pointer(p)?)
        }
        JobId::Header(name) => submit
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()),
    }
}

/// A JSON string or number as text; `None` for anything else.
fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn fill(route: &str, job_ref: &str) -> String {
    route.replace("{job}", job_ref)
}

/// The job's state in a JSON answer or event, when it says one of the done or failed states.
fn judge(job: &JobMapping, body: &[u8], event_name: Option<&str>) -> Option<Outcome> {
    let state = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer(&job.state_pointer).and_then(scalar))
        .or_else(|| event_name.map(str::to_owned))?;
    if job.done.contains(&state) {
        Some(Outcome::Done(body.to_vec()))
    } else if job.failed.contains(&state) {
        Some(Outcome::Failed(body.to_vec()))
    } else {
        None
    }
}

async fn poll(
    client: &Client,
    job: &JobMapping,
    target: &str,
    interval: Duration,
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    loop {
        let (status, _, body) = client.get_within(target, deadline).await?;
        if status != 200 {
            anyhow::bail!(
                "{target} answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        if let Some(outcome) = judge(job, &body, None) {
            return Ok(outcome);
        }
        if Instant::now() + interval >= deadline {
            anyhow::bail!(
                "not done within the request timeout (last state: {target} answered {})",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        // The backend's own polling interval, as its client would wait: not a synchronisation.
        tokio::time::sleep(interval).await;
    }
}

async fn events(
    client: &Client,
    job: &JobMapping,
    target: &str,
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    let response = client.stream_within(target, deadline).await?;
    let status = response.status().as_u16();
    if status != 200 {
        anyhow::bail!("{target} answered {status}");
    }
    let mut stream = response.bytes_stream().eventsource();
    let read = async {
        while let Some(event) = stream.next().await {
            let event = event.map_err(|e| anyhow::anyhow!("reading the event stream: {e}"))?;
            let name = (!event.event.is_empty()).then_some(event.event.as_str());
            if let Some(outcome) = judge(job, event.data.as_bytes(), name) {
                return Ok(outcome);
            }
        }
        anyhow::bail!("the event stream ended before a done or failed state")
    };
    tokio::time::timeout_at(deadline.into(), read)
        .await
        .map_err(|_| anyhow::anyhow!("no done or failed state within the request timeout"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> JobMapping {
        JobMapping {
            submit_statuses: vec![202],
            id: JobId::Pointer("/job/id".into()),
            follow: Follow::Events {
                route: "/jobs/{job}/events".into(),
            },
            state_pointer: "/status".into(),
            done: vec!["succeeded".into()],
            failed: vec!["failed".into()],
            failed_status: 502,
            result: None,
        }
    }

    fn submit(body: &str, headers: &[(&str, &str)]) -> Answer {
        Answer {
            status: Some(202),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            ..Answer::default()
        }
    }

    #[test]
    fn the_job_is_named_by_pointer_or_header() {
        let mut job = mapping();
        assert_eq!(
            job_ref(&job, &submit(r#"{"job":{"id":42}}"#, &[])),
            Some("42".into())
        );
        assert_eq!(job_ref(&job, &submit(r#"{"job":{}}"#, &[])), None);
        job.id = JobId::Header("location".into());
        assert_eq!(
            job_ref(&job, &submit("", &[("Location", "/jobs/7")])),
            Some("/jobs/7".into())
        );
        assert_eq!(fill("{job}/result", "/jobs/7"), "/jobs/7/result");
    }

    #[test]
    fn states_come_from_the_pointer_or_the_event_name() {
        let job = mapping();
        assert!(matches!(
            judge(&job, br#"{"status":"succeeded"}"#, None),
            Some(Outcome::Done(_))
        ));
        assert!(matches!(
            judge(&job, br#"{"status":"failed"}"#, None),
            Some(Outcome::Failed(_))
        ));
        assert!(judge(&job, br#"{"status":"running"}"#, None).is_none());
        assert!(matches!(
            judge(&job, b"ready", Some("succeeded")),
            Some(Outcome::Done(_))
        ));
        assert!(judge(&job, b"not json", None).is_none());
    }
}
