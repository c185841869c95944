//! The evidence file, `evidence.jsonl` beside the report: every record the audit judged, one JSON
//! object per line, so an auditor can check any verdict against what was seen, including the
//! requests of passing property cases the report only counts.
//!
//! JSON lines and not an embedded store: the file is append-only by nature, readable with `jq`
//! or `grep` on any machine without this tool, streams in and out one record at a time, and its
//! SHA-256 (listed in the report's provenance) pins it byte for byte.
//!
//! Records (`"record"` names the kind): `header` (schema and run), `request`, `provider-call`
//! (its metadata, owners and canary hits; never its body, which holds the photo), `event` (every
//! monitor event), `memory-scan`, `exposure-probe`, `orphan`.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use traceless_sandbox::events::Event;
use traceless_scan::scan::{Hit, RequestId};

use crate::evidence::Evidence;
use crate::scenario::Age;

/// The value of the header's `schema`.
pub const SCHEMA: &str = "traceless.evidence/v1";

#[derive(Serialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
enum Record<'a> {
    Header {
        schema: &'static str,
        seed: u64,
    },
    #[serde(rename_all = "kebab-case")]
    Request {
        id: RequestId,
        scenario: &'a str,
        provider: &'a str,
        age_confirmed: bool,
        behaviour: &'a [String],
        client: &'a str,
        expected_status: Option<u16>,
        status: Option<u16>,
        started_ms: u64,
        ended_ms: u64,
        response_bytes: u64,
        response_hits: &'a [Hit],
        error: Option<&'a str>,
        had_metadata: bool,
        shared_prompt: bool,
    },
    #[serde(rename_all = "kebab-case")]
    ProviderCall {
        seq: u64,
        provider: String,
        tls: bool,
        method: &'a str,
        path: &'a str,
        model: Option<&'a str>,
        status: u16,
        behaviour: String,
        t_ms: u64,
        answered_ms: u64,
        body_bytes: u64,
        images: usize,
        carried_images_of: &'a [RequestId],
        attributed_to: &'a [RequestId],
        hits: &'a [Hit],
    },
    Event(&'a Event),
    #[serde(rename_all = "kebab-case")]
    MemoryScan {
        ended_ms: u64,
    },
    #[serde(rename_all = "kebab-case")]
    ExposureProbe {
        url: &'a str,
        status: u16,
        what: &'a str,
        hits: &'a [Hit],
    },
    Orphan(&'a traceless_sandbox::events::Orphan),
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the evidence to `path`, one record a line; returns its SHA-256 (lowercase hex).
pub fn write(ev: &Evidence, seed: u64, path: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("creating the evidence file {}", path.display()))?;
    let mut out = Hashing {
        inner: BufWriter::new(file),
        hash: Sha256::new(),
    };
    write_records(ev, seed, &mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing the evidence file {}", path.display()))?;
    Ok(hex::encode(out.hash.finalize()))
}

fn write_records(ev: &Evidence, seed: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut line = |record: Record<'_>| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")
    };
    line(Record::Header {
        schema: SCHEMA,
        seed,
    })?;
    for r in &ev.requests {
        line(Record::Request {
            id: r.id,
            scenario: &r.scenario,
            provider: &r.provider,
            age_confirmed: r.age == Age::Confirmed,
            behaviour: &r.behaviour,
            client: r.client.label(),
            expected_status: r.expected_status,
            status: r.status,
            started_ms: r.started_ms,
            ended_ms: r.ended_ms,
            response_bytes: r.response_bytes,
            response_hits: &r.response_hits,
            error: r.error.as_deref(),
            had_metadata: r.had_metadata,
            shared_prompt: r.shared_prompt,
        })?;
    }
    for c in &ev.provider_calls {
        let r = &c.recorded;
        line(Record::ProviderCall {
            seq: r.seq,
            provider: r.provider.to_string(),
            tls: r.tls,
            method: &r.method,
            path: &r.path,
            model: r.model.as_deref(),
            status: r.status,
            behaviour: r.behaviour.to_string(),
            t_ms: c.t_ms,
            answered_ms: c.answered_ms,
            body_bytes: c.body_bytes,
            images: c.image_metadata.len(),
            carried_images_of: &c.carried_images_of,
            attributed_to: &c.attributed_to,
            hits: &c.hits,
        })?;
    }
    for e in &ev.events {
        line(Record::Event(e))?;
    }
    for &ended_ms in &ev.memory_scans {
        line(Record::MemoryScan { ended_ms })?;
    }
    for p in &ev.exposure_probes {
        line(Record::ExposureProbe {
            url: &p.url,
            status: p.status,
            what: &p.what,
            hits: &p.hits,
        })?;
    }
    for o in &ev.orphans {
        line(Record::Orphan(o))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::SentRequest;
    use crate::scenario::ClientBehaviour;

    #[test]
    fn every_record_is_one_json_line_and_the_digest_is_the_files() {
        let ev = Evidence {
            requests: vec![SentRequest {
                id: 7,
                scenario: "properties".into(),
                provider: "openai".into(),
                age: Age::Confirmed,
                behaviour: vec!["429".into(), "ok".into()],
                client: ClientBehaviour::Normal,
                expected_status: None,
                status: Some(200),
                started_ms: 10,
                ended_ms: 30,
                response_bytes: 17,
                response_hits: Vec::new(),
                error: None,
                had_metadata: true,
                shared_prompt: false,
            }],
            memory_scans: vec![40, 90],
            ..Evidence::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evidence.jsonl");
        let digest = write(&ev, 5, &path).unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(digest, hex::encode(Sha256::digest(&text)));
        let lines: Vec<serde_json::Value> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["schema"], SCHEMA);
        assert_eq!(lines[1]["record"], "request");
        assert_eq!(lines[1]["id"], 7);
        assert_eq!(lines[1]["response-bytes"], 17);
        assert_eq!(lines[1]["behaviour"], serde_json::json!(["429", "ok"]));
        assert_eq!(lines[3]["record"], "memory-scan");
        assert!(
            !String::from_utf8_lossy(&text).contains("a generated image"),
            "a body was written"
        );
    }
}
