//! What the run keeps of each answer and provider call: read once with the live needles as it
//! arrives, then kept without its bytes, so that the harness's memory does not grow with the
//! photos and images a long audit moves.
//!
//! An answer is scanned when it arrives (the needles of its own batch, and the outputs of the
//! calls made for it, are live then), the links and ids it names are noted for the exposure probe,
//! and only its length is kept. A provider call is read when the driver attributes it: its wire
//! (headers, query, body) and every image it carried are scanned, its images are matched to the
//! audit's photos by perceptual hash and checked for metadata blocks, its output becomes a needle of
//! the requests it belongs to, and it is kept as evidence without its body, images, output or
//! headers.
//!
//! What the live needles left unexplained of each (its *residue*: in an audit, an answer is mostly
//! its own output image and a call its own upload) goes to an anonymous temporary file, and the
//! end-of-run sweep reads it with every needle, retired ones included ([`Kept::passes`]). A needle
//! registered after a haystack was read cannot be in it unless it was sent before: a request's
//! canaries are registered before it is sent, and an output only exists once its call was made.

use traceless_mock::RecordedRequest;
use traceless_sandbox::events::EventLog;
use traceless_scan::scan::{
    Hit, NeedleId, RequestId, ResiduePass, Scanner, Subject, SweepPass, covered, merge_hits,
};

use super::attribution::{self, arrival_ms};
use super::exposure::{self, AnswerLink};
use crate::evidence::{ProviderCall, SentRequest};

/// The answers and provider calls kept so far, and their residues.
#[derive(Default)]
pub struct Kept {
    /// Every provider call kept, in arrival order, without its bytes.
    pub calls: Vec<ProviderCall>,
    /// Per haystack of `call_residues` (each call's wire, then each of its images): its call.
    call_of: Vec<u32>,
    call_residues: ResiduePass,
    /// Haystack `i` is the answer of `evidence.requests[i]`.
    answer_residues: ResiduePass,
    answers: usize,
    /// The links and ids the answers named, in request order, at most
    /// [`exposure::MAX_ANSWER_LINKS`].
    pub links: Vec<AnswerLink>,
}

impl Kept {
    /// Reads the answer of `requests[i]` with the live needles and keeps what they left
    /// unexplained; `base` is the pipeline's URL (links to it are noted as paths).
    pub fn keep_answer(
        &mut self,
        i: usize,
        req: &mut SentRequest,
        body: &[u8],
        scanner: &Scanner,
        base: &str,
    ) -> std::io::Result<()> {
        req.response_bytes = body.len() as u64;
        req.response_hits = scanner.scan(body);
        self.answer_residues
            .add(i, body, &covered(&req.response_hits), scanner)?;
        self.answers = self.answers.max(i + 1);
        if self.links.len() < exposure::MAX_ANSWER_LINKS {
            let room = exposure::MAX_ANSWER_LINKS - self.links.len();
            let found = exposure::links_in_answers(std::iter::once((req.id, body)), base);
            self.links.extend(found.into_iter().take(room));
        }
        Ok(())
    }

    /// Reads a provider call with the live needles, registers its output under the requests it
    /// carried canaries of, and keeps it as evidence without its bytes.
    pub fn keep_call(
        &mut self,
        call: RecordedRequest,
        scanner: &mut Scanner,
        requests: &[SentRequest],
        log: &EventLog,
    ) -> std::io::Result<()> {
        let wire = attribution::wire(&call);
        let hays: Vec<&[u8]> = std::iter::once(wire.as_slice())
            .chain(call.images.iter().map(Vec::as_slice))
            .collect();
        let parts: Vec<Vec<Hit>> = hays.iter().map(|hay| scanner.scan(hay)).collect();
        let c = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        for (hay, hits) in hays.iter().zip(&parts) {
            self.call_residues
                .add(self.call_of.len(), hay, &covered(hits), scanner)?;
            self.call_of.push(c);
        }
        let perceptual = attribution::perceptual_owners(&call, scanner);
        let hits = merge_hits(parts.into_iter().flatten().collect());
        let mut owners = attribution::owners_by(&call, &hits, &perceptual, requests, log);
        if owners.any.is_empty() {
            owners.any = inherited(&self.calls, &call);
        }
        if let Some(out) = &call.output_image {
            for &owner in &owners.any {
                let id = NeedleId {
                    request: owner,
                    subject: Subject::Output,
                };
                scanner.add_image(id, out);
            }
        }
        let image_metadata = call
            .images
            .iter()
            .map(|img| super::metadata::metadata_block(img))
            .collect();
        self.calls.push(ProviderCall {
            t_ms: arrival_ms(&call, log),
            answered_ms: attribution::answered_ms(&call, log),
            body_bytes: call.body.len() as u64,
            image_metadata,
            perceptual,
            recorded: without_bytes(call),
            carried_images_of: owners.images,
            attributed_to: owners.any,
            hits,
        });
        Ok(())
    }

    /// The calls kept from arrival number `seq` on.
    pub fn calls_from(&self, seq: u64) -> &[ProviderCall] {
        let start = self.calls.partition_point(|c| c.recorded.seq < seq);
        &self.calls[start..]
    }

    /// Bytes kept for the sweep: of the answers, of the calls.
    pub fn residue_bytes(&self) -> (u64, u64) {
        (
            self.answer_residues.residue_bytes(),
            self.call_residues.residue_bytes(),
        )
    }

    /// The two passes of the end-of-run sweep: the answers' residues, the calls'.
    pub fn passes(&mut self) -> [&mut dyn SweepPass; 2] {
        [&mut self.answer_residues, &mut self.call_residues]
    }

    /// Once the sweep has read the residues: each answer's hits and each call's get what it found,
    /// and each call's owners are drawn again from all its hits. Returns the calls.
    pub fn finish(self, requests: &mut [SentRequest], log: &EventLog) -> Vec<ProviderCall> {
        let answer_hits = self.answer_residues.into_hits(self.answers);
        for (req, found) in requests.iter_mut().zip(answer_hits) {
            if !found.is_empty() {
                let mut hits = std::mem::take(&mut req.response_hits);
                hits.extend(found);
                req.response_hits = merge_hits(hits);
            }
        }
        let mut calls = self.calls;
        let mut found = vec![Vec::new(); calls.len()];
        let call_hits = self.call_residues.into_hits(self.call_of.len());
        for (&c, hits) in self.call_of.iter().zip(call_hits) {
            found[c as usize].extend(hits);
        }
        for c in 0..calls.len() {
            let found = std::mem::take(&mut found[c]);
            let call = &mut calls[c];
            if !found.is_empty() {
                let mut hits = std::mem::take(&mut call.hits);
                hits.extend(found);
                call.hits = merge_hits(hits);
                let owners = attribution::owners_by(
                    &call.recorded,
                    &call.hits,
                    &call.perceptual,
                    requests,
                    log,
                );
                call.carried_images_of = owners.images;
                call.attributed_to = owners.any;
            }
            if calls[c].attributed_to.is_empty() {
                calls[c].attributed_to = inherited(&calls[..c], &calls[c].recorded);
            }
        }
        calls
    }
}

/// For a call that carried nothing of an audit request's (a poll of a background interaction, its
/// cancel, a follow-up turn): the requests of the call that created the stored object it carries
/// on. What it answers, a background run's image above all, is theirs.
fn inherited(earlier: &[ProviderCall], call: &RecordedRequest) -> Vec<RequestId> {
    let Some(object) = &call.continues else {
        return Vec::new();
    };
    earlier
        .iter()
        .rev()
        .find(|c| c.recorded.creates.as_ref() == Some(object))
        .map(|c| c.attributed_to.clone())
        .unwrap_or_default()
}

/// The call as evidence keeps it: what it was, not what it carried (its prompt, a user's text,
/// was read for canaries when the call was attributed: kept, it would only cost memory for every
/// call of a long run).
fn without_bytes(mut call: RecordedRequest) -> RecordedRequest {
    call.body = Vec::new();
    call.images = Vec::new();
    call.output_image = None;
    call.headers = Vec::new();
    call.prompt = None;
    call
}

#[cfg(test)]
mod tests {
    use traceless_scan::canary::{self, ImageFormat, ImageSpec};
    use traceless_scan::scan::RequestId;

    use super::*;

    fn photo(metadata: bool) -> Vec<u8> {
        let spec = ImageSpec {
            format: ImageFormat::Jpeg,
            width: 96,
            height: 64,
            metadata,
        };
        canary::generate_image(&spec, &mut rand::rng())
            .unwrap()
            .bytes
    }

    /// An OpenAI edit whose answer was `output`.
    fn call(body: Vec<u8>, images: Vec<Vec<u8>>, output: Vec<u8>) -> RecordedRequest {
        let mut call = super::super::attribution::tests::call(images, "");
        call.body = body;
        call.headers = vec![("authorization".into(), "Bearer k".into())];
        call.output_image = Some(output);
        call.prompt = Some("draw me as a pirate".into());
        call
    }

    fn sent(id: RequestId) -> SentRequest {
        SentRequest {
            id,
            scenario: "s".into(),
            provider: "openai".into(),
            age: crate::scenario::Age::Confirmed,
            behaviour: Vec::new(),
            client: crate::scenario::ClientBehaviour::Normal,
            expected_status: Some(200),
            status: Some(200),
            started_ms: 0,
            ended_ms: u64::MAX / 2,
            response_bytes: 0,
            response_hits: Vec::new(),
            error: None,
            had_metadata: true,
            shared_prompt: false,
        }
    }

    fn needle(request: RequestId, subject: Subject) -> NeedleId {
        NeedleId { request, subject }
    }

    /// A background interaction's image comes back on a poll that carries nothing of the
    /// request's: the poll belongs to the requests of the create that started the run, so its
    /// image becomes their output needle (a backend that keeps it is then caught).
    #[test]
    fn a_poll_that_carries_nothing_belongs_to_the_requests_of_the_create_it_continues() {
        let log = EventLog::new();
        let mut scanner = Scanner::new();
        let upload = photo(true);
        scanner.add_image(needle(1, Subject::Image), &upload);
        let requests = [sent(1)];
        let mut kept = Kept::default();
        let mut create = call(upload.clone(), vec![upload.clone()], Vec::new());
        create.output_image = None;
        create.creates = Some("v1_run".into());
        kept.keep_call(create, &mut scanner, &requests, &log)
            .unwrap();
        let output = photo(false);
        let mut poll = call(b"{}".to_vec(), Vec::new(), output.clone());
        poll.seq = 1;
        poll.continues = Some("v1_run".into());
        let mut other = call(b"{}".to_vec(), Vec::new(), photo(false));
        other.seq = 2;
        other.continues = Some("v1_another".into());
        for c in [poll, other] {
            kept.keep_call(c, &mut scanner, &requests, &log).unwrap();
        }
        assert_eq!(kept.calls[1].attributed_to, vec![1]);
        assert!(kept.calls[1].carried_images_of.is_empty());
        assert!(
            scanner
                .scan(&output)
                .iter()
                .any(|h| h.needle == needle(1, Subject::Output)),
            "the run's image became the request's output needle"
        );
        assert!(
            kept.calls[2].attributed_to.is_empty(),
            "another object's poll"
        );
        let mut requests = requests.to_vec();
        let calls = kept.finish(&mut requests, &log);
        assert_eq!(calls[1].attributed_to, vec![1], "and so after the sweep");
    }

    /// A call is kept without its bytes; what the live needles did not explain of it is read by
    /// the sweep with needles retired since, and its owners are drawn again from every hit.
    #[test]
    fn a_kept_call_holds_no_bytes_and_the_sweep_finds_what_the_live_needles_could_not() {
        let log = EventLog::new();
        let mut scanner = Scanner::new();
        let upload = photo(true);
        scanner.add_image(needle(1, Subject::Image), &upload);
        let output = photo(false);
        let mut body = b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n".to_vec();
        body.extend_from_slice(&upload);
        body.extend_from_slice(b"\r\n--b\r\n device tl-device-00c0ffee11 --b--\r\n");
        let mut kept = Kept::default();
        let requests = [sent(1), sent(2)];
        kept.keep_call(
            call(body.clone(), vec![upload.clone()], output.clone()),
            &mut scanner,
            &requests,
            &log,
        )
        .unwrap();
        let c = &kept.calls[0];
        assert_eq!(c.body_bytes, body.len() as u64);
        assert_eq!(c.image_metadata, vec![Some("EXIF")]);
        assert!(c.recorded.body.is_empty() && c.recorded.images.is_empty());
        assert!(c.recorded.output_image.is_none() && c.recorded.headers.is_empty());
        assert_eq!(c.recorded.prompt, None);
        assert_eq!(c.attributed_to, vec![1]);
        assert!(
            scanner
                .scan(&output)
                .iter()
                .any(|h| h.needle == needle(1, Subject::Output)),
            "the output became a needle of the request the call carried"
        );
        let (_, residue) = kept.residue_bytes();
        assert!(
            residue < body.len() as u64 / 2,
            "the upload's bytes were explained: {residue} of {} kept",
            body.len()
        );
        // A device id registered only now (as if it had been retired before the call arrived).
        scanner.add_token(needle(2, Subject::DeviceId), "tl-device-00c0ffee11");
        scanner.sweep_passes(&mut kept.passes()).unwrap();
        let mut requests = requests;
        let calls = kept.finish(&mut requests, &log);
        assert!(
            calls[0]
                .hits
                .iter()
                .any(|h| h.needle == needle(2, Subject::DeviceId)),
            "{:?}",
            calls[0].hits
        );
        assert_eq!(calls[0].attributed_to, vec![1, 2]);
        assert_eq!(calls[0].carried_images_of, vec![1]);
    }

    /// An answer is scanned when kept; what the live needles left of it is swept later.
    #[test]
    fn a_kept_answer_holds_its_length_and_its_hits_and_names_its_links() {
        let log = EventLog::new();
        let mut scanner = Scanner::new();
        scanner.add_token(needle(1, Subject::Prompt), "tl-marker-0123456789");
        let body = br#"{"url":"/results/r1.png","note":"tl-marker-0123456789","leak":"tl-device-aabbccdd00"}"#;
        let mut kept = Kept::default();
        let mut requests = vec![sent(1)];
        kept.keep_answer(0, &mut requests[0], body, &scanner, "http://127.0.0.1:1")
            .unwrap();
        assert_eq!(requests[0].response_bytes, body.len() as u64);
        assert_eq!(requests[0].response_hits.len(), 1);
        assert!(
            kept.links
                .iter()
                .any(|l| l.request == 1 && l.link == "/results/r1.png"),
            "{:?}",
            kept.links
        );
        scanner.add_token(needle(7, Subject::DeviceId), "tl-device-aabbccdd00");
        scanner.sweep_passes(&mut kept.passes()).unwrap();
        kept.finish(&mut requests, &log);
        let found: Vec<_> = requests[0].response_hits.iter().map(|h| h.needle).collect();
        assert_eq!(
            found,
            [needle(1, Subject::Prompt), needle(7, Subject::DeviceId)]
        );
    }
}
