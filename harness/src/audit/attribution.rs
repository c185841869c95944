//! Which audit requests a provider call belongs to. A call belongs to every request whose
//! canaries it carries: the upload's bytes, the decoded image (by perceptual hash, so a backend
//! that re-encodes the upload before its SDK call is still recognised), the prompt marker, the
//! device id, the forwarded address or the metadata marker. Outputs of an attributed call become
//! needles of its requests (`kept.rs` reads each call as it arrives).

use std::time::Duration;

use traceless_mock::{Behaviour, RecordedRequest};
use traceless_sandbox::events::EventLog;
use traceless_scan::scan::{Hit, RequestId, Scanner, Subject};

use crate::evidence::SentRequest;

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
pub fn answered_ms(call: &RecordedRequest, log: &EventLog) -> u64 {
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
pub fn wire(call: &RecordedRequest) -> Vec<u8> {
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

/// The audit requests whose photo one of the call's images is, by perceptual hash (a backend that
/// re-encodes the upload before its SDK call is still recognised). Perceptual hashes are never
/// retired, so this is the answer of every needle.
pub fn perceptual_owners(call: &RecordedRequest, scanner: &Scanner) -> Vec<RequestId> {
    let mut ids: Vec<RequestId> = call
        .images
        .iter()
        .flat_map(|img| scanner.image_matches(img))
        .filter(|m| m.needle.subject == Subject::Image)
        .map(|m| m.needle.request)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The requests a call carried canaries of, from its canary hits and its images' perceptual
/// matches. The same photo (a face fixture) or prompt may be sent in several requests: then the
/// requests in flight when the call arrived are the ones it carried.
pub fn owners_by(
    call: &RecordedRequest,
    hits: &[Hit],
    perceptual: &[RequestId],
    requests: &[SentRequest],
    log: &EventLog,
) -> Owners {
    let t = arrival_ms(call, log);
    let mut images: Vec<RequestId> = hits
        .iter()
        .filter(|h| h.needle.subject == Subject::Image)
        .map(|h| h.needle.request)
        .chain(perceptual.iter().copied())
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
pub(crate) mod tests {
    use traceless_mock::{Behaviour, Endpoint, Provider};
    use traceless_scan::canary::{self, ImageFormat, ImageSpec};
    use traceless_scan::scan::NeedleId;

    use super::*;

    /// A recorded Gemini call carrying `images` in `body`: a fixture for this stage's tests.
    pub(crate) fn call(images: Vec<Vec<u8>>, body: &str) -> RecordedRequest {
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
            creates: None,
            continues: None,
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
        let hits: Vec<Hit> = std::iter::once(wire(call))
            .chain(call.images.iter().cloned())
            .flat_map(|hay| scanner.scan(&hay))
            .collect();
        owners_by(
            call,
            &hits,
            &perceptual_owners(call, scanner),
            requests,
            log,
        )
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
        let owners = owners(&call(Vec::new(), body), &scanner, &[], &EventLog::new());
        assert!(owners.images.is_empty());
        assert_eq!(owners.any, vec![2]);
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
