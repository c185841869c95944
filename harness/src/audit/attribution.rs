//! Which audit requests a provider call belongs to. A call belongs to every request whose
//! canaries it carries: the upload's bytes, the decoded image (by perceptual hash, so a backend
//! that re-encodes the upload before its SDK call is still recognised), the prompt marker, the
//! device id, the forwarded address or the metadata marker. Outputs of an attributed call become
//! needles of its requests.

use std::time::Duration;

use traceless_mock::{Behaviour, RecordedRequest};
use traceless_sandbox::events::EventLog;
use traceless_scan::scan::{
    Coverage, Generation, Hit, RequestId, Residues, Scanner, Subject, SweepPass, covered,
    merge_hits,
};

use crate::evidence::{ProviderCall, SentRequest};

/// The requests a call carried canaries of.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owners {
    /// Requests whose image (bytes, or decoded pixels by perceptual hash) the call carried.
    pub images: Vec<RequestId>,
    /// Requests any canary of which the call carried (images included).
    pub any: Vec<RequestId>,
}

/// How long a mock holds a call scripted to time out before it answers 504.
pub const TIMEOUT_HOLD: Duration = Duration::from_secs(120);

/// When a mock answered a call (or will), in the event log's milliseconds: its arrival plus the
/// delay its behaviour scripted.
fn answered_ms(call: &RecordedRequest, log: &EventLog) -> u64 {
    let delay = match call.behaviour {
        Behaviour::Timeout => TIMEOUT_HOLD.as_millis() as u64,
        Behaviour::Slow { delay_ms } => delay_ms,
        _ => 0,
    };
    arrival_ms(call, log) + delay
}

/// When a mock received a call, in the event log's milliseconds.
pub fn arrival_ms(call: &RecordedRequest, log: &EventLog) -> u64 {
    let secs = call
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    log.ms_at_unix(secs)
}

/// The call as it went over the wire: headers, query and body, where any token may sit.
fn wire(call: &RecordedRequest) -> Vec<u8> {
    let mut wire = Vec::new();
    for (k, v) in &call.headers {
        wire.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if let Some(q) = &call.query {
        wire.extend_from_slice(q.as_bytes());
        wire.push(b'\n');
    }
    wire.extend_from_slice(&call.body);
    wire
}

/// The requests a call carried canaries of, and what the live needles explained of the call's
/// wire and of each image it carried (for the end-of-run sweep, which then reads only the rest
/// with retired needles). The same photo (a face fixture) or prompt may be sent in several
/// requests: then the requests in flight when the call arrived are the ones it carried.
pub fn owners_and_coverage(
    call: &RecordedRequest,
    scanner: &Scanner,
    requests: &[SentRequest],
    log: &EventLog,
) -> (Owners, Vec<Coverage>) {
    let parts = live_parts(call, scanner);
    let coverage = parts.iter().map(|hits| covered(hits)).collect();
    let hits: Vec<Hit> = parts.into_iter().flatten().collect();
    (owners_by(call, &hits, scanner, requests, log), coverage)
}

/// The live needles in a call: its wire (headers, query, body), then each image it carried.
fn live_hits(call: &RecordedRequest, scanner: &Scanner) -> Vec<Hit> {
    live_parts(call, scanner).into_iter().flatten().collect()
}

/// [`live_hits`], a list per haystack: the wire's, then each image's.
fn live_parts(call: &RecordedRequest, scanner: &Scanner) -> Vec<Vec<Hit>> {
    std::iter::once(scanner.scan(&wire(call)))
        .chain(call.images.iter().map(|img| scanner.scan(img)))
        .collect()
}

/// [`owners`] from the call's canary hits; perceptual matches come from `scanner`.
fn owners_by(
    call: &RecordedRequest,
    hits: &[Hit],
    scanner: &Scanner,
    requests: &[SentRequest],
    log: &EventLog,
) -> Owners {
    let t = arrival_ms(call, log);
    let mut images: Vec<RequestId> = hits
        .iter()
        .filter(|h| h.needle.subject == Subject::Image)
        .map(|h| h.needle.request)
        .chain(
            call.images
                .iter()
                .flat_map(|img| scanner.image_matches(img))
                .filter(|m| m.needle.subject == Subject::Image)
                .map(|m| m.needle.request),
        )
        .collect();
    let mut any: Vec<RequestId> = hits
        .iter()
        .filter(|h| {
            matches!(
                h.needle.subject,
                Subject::Prompt | Subject::DeviceId | Subject::ForwardedFor | Subject::Metadata
            )
        })
        .map(|h| h.needle.request)
        .chain(images.iter().copied())
        .collect();
    let images = in_flight(&mut images, requests, t);
    let any = in_flight(&mut any, requests, t);
    Owners { images, any }
}

/// Sorted, deduplicated ids; of several, those of the requests in flight at `t` if any were.
fn in_flight(ids: &mut Vec<RequestId>, requests: &[SentRequest], t: u64) -> Vec<RequestId> {
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > 1 {
        let live: Vec<RequestId> = ids
            .iter()
            .copied()
            .filter(|id| {
                requests
                    .iter()
                    .any(|r| r.id == *id && r.started_ms <= t + 5 && t <= r.ended_ms + 5)
            })
            .collect();
        if !live.is_empty() {
            return live;
        }
    }
    std::mem::take(ids)
}

/// Every recorded call with its owners and canary hits (live needles), as evidence.
pub fn attribute(
    recorded: Vec<RecordedRequest>,
    scanner: &Scanner,
    requests: &[SentRequest],
    log: &EventLog,
) -> Vec<ProviderCall> {
    let hits = recorded.iter().map(|r| live_hits(r, scanner)).collect();
    attributed(recorded, hits, scanner, requests, log)
}

/// [`attribute`] with the hits of an end-of-run sweep (every needle, retired ones too): the
/// evidence of the whole run's calls.
pub fn attribute_swept(
    recorded: Vec<RecordedRequest>,
    hits: Vec<Vec<Hit>>,
    scanner: &Scanner,
    requests: &[SentRequest],
    log: &EventLog,
) -> Vec<ProviderCall> {
    attributed(recorded, hits, scanner, requests, log)
}

/// The calls as one pass of the end-of-run sweep: each call's wire, then each image it carried,
/// each a haystack of its own (offsets are per haystack).
pub struct CallsPass<'a> {
    recorded: &'a [RecordedRequest],
    /// Haystack `i` is call `parts[i].0`'s wire (`None`) or one of its images.
    parts: Vec<(usize, Option<usize>)>,
    /// Per haystack, what the live scan during the run explained.
    known: Vec<Coverage>,
    hits: Vec<Vec<Hit>>,
    residues: Residues,
}

impl<'a> CallsPass<'a> {
    /// `coverage`: per call, what [`owners_and_coverage`] returned during the run (a call it did
    /// not see has none).
    pub fn new(recorded: &'a [RecordedRequest], mut coverage: Vec<Vec<Coverage>>) -> Self {
        coverage.resize(recorded.len(), Vec::new());
        let mut parts = Vec::new();
        let mut known = Vec::new();
        for (c, (r, mut cov)) in recorded.iter().zip(coverage).enumerate() {
            cov.resize(1 + r.images.len(), Vec::new());
            parts.push((c, None));
            parts.extend((0..r.images.len()).map(|i| (c, Some(i))));
            known.extend(cov);
        }
        CallsPass {
            recorded,
            hits: vec![Vec::new(); parts.len()],
            parts,
            known,
            residues: Residues::default(),
        }
    }

    /// Bytes the retired generations read (with separators).
    pub fn residue_bytes(&self) -> usize {
        self.residues.len()
    }

    /// Each call's hits (its wire's, then its images'), in the order of the calls.
    pub fn into_hits(self) -> Vec<Vec<Hit>> {
        let mut out = vec![Vec::new(); self.recorded.len()];
        for ((c, _), hits) in self.parts.into_iter().zip(self.hits) {
            out[c].extend(merge_hits(hits));
        }
        out
    }
}

impl SweepPass for CallsPass<'_> {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()> {
        let Generation::Live(live) = generation else {
            for (i, hit) in self.residues.scan(generation) {
                self.hits[i].push(hit);
            }
            return Ok(());
        };
        for (i, &(c, part)) in self.parts.iter().enumerate() {
            let call = &self.recorded[c];
            let hay = match part {
                None => std::borrow::Cow::Owned(wire(call)),
                Some(img) => std::borrow::Cow::Borrowed(call.images[img].as_slice()),
            };
            let found = live.scan(&hay);
            let mut explained = covered(&found);
            explained.extend_from_slice(&self.known[i]);
            self.residues.add(i, &hay, &explained);
            self.hits[i].extend(found);
        }
        Ok(())
    }
}

fn attributed(
    recorded: Vec<RecordedRequest>,
    hits: Vec<Vec<Hit>>,
    scanner: &Scanner,
    requests: &[SentRequest],
    log: &EventLog,
) -> Vec<ProviderCall> {
    recorded
        .into_iter()
        .zip(hits)
        .map(|(r, hits)| {
            let owners = owners_by(&r, &hits, scanner, requests, log);
            ProviderCall {
                t_ms: arrival_ms(&r, log),
                answered_ms: answered_ms(&r, log),
                recorded: r,
                carried_images_of: owners.images,
                attributed_to: owners.any,
                hits,
            }
        })
        .collect()
}

/// The mocks' router: a generation call follows the behaviour script of the audit request whose
/// image or prompt marker it carries, so concurrent requests each meet their own scripted faults
/// whatever order their calls arrive in, and a seed replays the same statuses.
pub fn router(scanner: std::sync::Arc<std::sync::RwLock<Scanner>>) -> traceless_mock::Router {
    std::sync::Arc::new(move |call: &RecordedRequest| {
        let scanner = scanner.read().unwrap_or_else(|e| e.into_inner());
        let by = |subject: Subject, hay: &[u8]| {
            scanner
                .scan(hay)
                .into_iter()
                .find(|h| h.needle.subject == subject)
                .map(|h| u64::from(h.needle.request))
        };
        call.images
            .iter()
            .find_map(|img| by(Subject::Image, img))
            .or_else(|| {
                call.prompt
                    .as_deref()
                    .and_then(|p| by(Subject::Prompt, p.as_bytes()))
            })
    })
}

#[cfg(test)]
mod tests {
    use traceless_mock::{Behaviour, Endpoint, Provider};
    use traceless_scan::canary::{self, ImageFormat, ImageSpec};
    use traceless_scan::scan::NeedleId;

    use super::*;

    fn call(images: Vec<Vec<u8>>, body: &str) -> RecordedRequest {
        RecordedRequest {
            seq: 0,
            at: std::time::SystemTime::now(),
            provider: Provider::Gemini,
            tls: true,
            method: "POST".into(),
            path: "/v1beta/models/m:generateContent".into(),
            query: None,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            endpoint: Endpoint::GenerateContent,
            model: None,
            user: None,
            store: None,
            images,
            prompt: None,
            rejected: None,
            behaviour: Behaviour::Ok,
            status: 200,
            output_image: None,
        }
    }

    /// Request 1's canary photo and request 2's prompt marker are registered; request 3 sent nothing
    /// the calls carry.
    fn setup() -> (Scanner, Vec<u8>) {
        let mut rng = rand::rng();
        let photo = canary::generate_image(
            &ImageSpec {
                format: ImageFormat::Jpeg,
                width: 96,
                height: 64,
                metadata: true,
            },
            &mut rng,
        )
        .unwrap()
        .bytes;
        let mut scanner = Scanner::new();
        let id = |request, subject| NeedleId { request, subject };
        scanner.add_image(id(1, Subject::Image), &photo);
        scanner.add_token(id(2, Subject::Prompt), "tl-marker-5f0c2a91d7");
        scanner.add_token(id(3, Subject::DeviceId), "dev-7d1e0b44c2a9");
        (scanner, photo)
    }

    /// What an image library does before an SDK call: decode, re-encode (here as a JPEG of another
    /// quality, so neither a byte of the upload nor a row of its decoded pixels survives).
    fn reencoded(photo: &[u8]) -> Vec<u8> {
        let img = image::load_from_memory(photo).unwrap().to_rgb8();
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 60)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn owners(
        call: &RecordedRequest,
        scanner: &Scanner,
        requests: &[SentRequest],
        log: &EventLog,
    ) -> Owners {
        owners_and_coverage(call, scanner, requests, log).0
    }

    #[test]
    fn a_re_encoded_upload_is_attributed_by_its_decoded_image() {
        let (scanner, photo) = setup();
        let png = reencoded(&photo);
        assert!(
            scanner.scan(&png).is_empty(),
            "the re-encoded copy shares no bytes or pixel rows with the upload"
        );
        let owners = owners(&call(vec![png], "{}"), &scanner, &[], &EventLog::new());
        assert_eq!(owners.images, vec![1]);
        assert_eq!(owners.any, vec![1]);
    }

    #[test]
    fn a_call_belongs_to_the_request_whose_prompt_marker_it_carries() {
        let (scanner, _) = setup();
        let body = r#"{"contents":[{"parts":[{"text":"watercolour [tl-marker-5f0c2a91d7]"}]}]}"#;
        let (owners, coverage) =
            owners_and_coverage(&call(Vec::new(), body), &scanner, &[], &EventLog::new());
        assert!(owners.images.is_empty());
        assert_eq!(owners.any, vec![2]);
        // The wire is its one haystack; the marker's bytes in it are explained.
        let marker = wire(&call(Vec::new(), body))
            .windows(19)
            .position(|w| w == b"[tl-marker-5f0c2a91")
            .unwrap() as u32;
        let [wire_coverage] = coverage.as_slice() else {
            panic!("{coverage:?}")
        };
        assert!(
            wire_coverage
                .iter()
                .any(|&(s, e)| s <= marker + 1 && marker + 18 <= e),
            "{wire_coverage:?}"
        );
    }

    #[test]
    fn a_call_without_canaries_belongs_to_no_request() {
        let (scanner, _) = setup();
        let other = canary::generate_image(
            &ImageSpec {
                format: ImageFormat::Png,
                width: 96,
                height: 64,
                metadata: false,
            },
            &mut rand::rng(),
        )
        .unwrap()
        .bytes;
        let owners = owners(
            &call(vec![other], r#"{"text":"a prompt"}"#),
            &scanner,
            &[],
            &EventLog::new(),
        );
        assert_eq!(owners, Owners::default());
    }
}
