//! `log-leak`: image data, a prompt or a personal canary in stdout, stderr or a log file.

use traceless_evidence::events::{EventKind, MonitorKind};
use traceless_evidence::hit::Subject;

use super::{Draft, Kind, hit_items, main_request, subject_names};
use crate::evidence::Evidence;

pub const KIND: Kind = Kind {
    name: "log-leak",
    code: "TL-LOG-001",
    description: "Image data, a prompt or a personal canary reached stdout, stderr or a log file.",
    needs: &[MonitorKind::Logs],
    run,
    exercised,
};

fn run(ev: &Evidence) -> Vec<Draft> {
    let mut out = Vec::new();
    for e in &ev.events {
        let (location, hits) = match &e.kind {
            EventKind::Output {
                stream,
                offset,
                hits,
                ..
            } => (format!("{stream} @ {offset}"), hits.clone()),
            // A text file holding prompts or identifiers is a log, whatever its name.
            EventKind::FileWritten { path, hits, .. } => {
                let is_log = path
                    .extension()
                    .is_some_and(|x| x == "log" || x == "txt" || x == "jsonl");
                let text: Vec<_> = hits
                    .iter()
                    .filter(|h| {
                        is_log
                            || matches!(
                                h.needle.subject,
                                Subject::Prompt | Subject::DeviceId | Subject::ForwardedFor
                            )
                    })
                    .cloned()
                    .collect();
                (path.display().to_string(), text)
            }
            _ => continue,
        };
        let hits: Vec<_> = hits
            .into_iter()
            .filter(|h| h.needle.subject != Subject::ApiKey)
            .collect();
        if hits.is_empty() {
            continue;
        }
        let what = subject_names(&hits);
        let mut evidence = hit_items("log", Some(e), &location, &hits);
        if let EventKind::Output { excerpt, .. } = &e.kind
            && let Some(first) = evidence.first_mut()
        {
            first.excerpt = Some(excerpt.clone());
        }
        out.push(Draft {
            kind: KIND.name,
            summary: format!("{} written to {location}", what.join(", ")),
            request: main_request(&hits),
            evidence,
        });
    }
    out
}

/// Exercised once the pipeline answered a request: it had a prompt and an image to log.
fn exercised(ev: &Evidence) -> Result<(), String> {
    super::some_request_answered(ev)
}
