//! Retired needles leave the live index, stay findable through every generation, and keep the live
//! index's size bounded however many requests pass.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::SeedableRng;
use rand::rngs::StdRng;
use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image};
use traceless_scan::scan::{Hit, NeedleId, Scanner, Staged, Subject};

fn id(request: u32, subject: Subject) -> NeedleId {
    NeedleId { request, subject }
}

fn image(seed: u64, format: ImageFormat) -> Vec<u8> {
    let spec = ImageSpec {
        format,
        width: 48,
        height: 40,
        metadata: false,
    };
    generate_image(&spec, &mut StdRng::seed_from_u64(seed))
        .unwrap()
        .bytes
}

fn token(request: u32) -> String {
    format!("tl-device-{request:08x}c0ffee")
}

/// Images and tokens of requests 1..=n, and a haystack leaking request `leak`'s in three ways.
fn scanner_and_leak(n: u32, leak: u32) -> (Scanner, Vec<u8>) {
    let mut scanner = Scanner::new();
    let mut hay = b"log: ".to_vec();
    scanner.add_token(id(0, Subject::ApiKey), "sk-audit-key-7f3a9c2e51d04b8a");
    for r in 1..=n {
        let png = image(u64::from(r), ImageFormat::Png);
        scanner.add_image(id(r, Subject::Image), &png);
        scanner.add_token(id(r, Subject::DeviceId), &token(r));
        if r == leak {
            hay.extend_from_slice(STANDARD.encode(&png).as_bytes());
            hay.extend_from_slice(b" device=");
            hay.extend_from_slice(hex::encode(token(r)).as_bytes());
            hay.extend_from_slice(b" pixels=");
            let rgba = image::load_from_memory(&png).unwrap().to_rgba8().into_raw();
            hay.extend_from_slice(&rgba[1000..1400]);
        }
    }
    hay.extend_from_slice(b" key=sk-audit-key-7f3a9c2e51d04b8a end");
    (scanner, hay)
}

fn sweep_one(scanner: &Scanner, hay: &[u8]) -> Vec<Hit> {
    scanner
        .sweep(1, |_| Some(Cow::Borrowed(hay)))
        .unwrap()
        .remove(0)
}

#[test]
fn a_retired_needle_is_found_by_a_sweep_exactly_as_before_and_not_by_a_live_scan() {
    let (mut scanner, hay) = scanner_and_leak(12, 3);
    let before = scanner.scan(&hay);
    assert!(before.iter().any(|h| h.needle == id(3, Subject::Image)));
    assert!(before.iter().any(|h| h.needle == id(3, Subject::DeviceId)));
    assert_eq!(sweep_one(&scanner, &hay), before, "nothing retired yet");

    let retired = scanner.retire_before(8).unwrap();
    assert!(retired >= 7 * 2, "{retired} forms and tokens retired");
    assert_eq!(scanner.retired_requests(), 7);
    let live = scanner.scan(&hay);
    assert!(
        live.iter().all(|h| h.needle.request == 0),
        "only the audit's own key stays live among the leaked needles: {live:?}"
    );
    assert_eq!(
        sweep_one(&scanner, &hay),
        before,
        "the sweep finds the same hits"
    );
}

#[test]
fn needles_of_later_requests_stay_live_and_retiring_twice_appends() {
    let (mut scanner, hay) = scanner_and_leak(10, 9);
    let before = scanner.scan(&hay);
    scanner.retire_before(4).unwrap();
    assert_eq!(scanner.scan(&hay), before, "request 9 is still live");
    scanner.retire_before(11).unwrap();
    assert_eq!(scanner.retired_requests(), 10);
    assert!(scanner.scan(&hay).iter().all(|h| h.needle.request == 0));
    assert_eq!(sweep_one(&scanner, &hay), before);
    assert_eq!(
        scanner.retire_before(11).unwrap(),
        0,
        "nothing left to retire"
    );
}

#[test]
fn the_live_index_stays_bounded_while_every_request_stays_findable() {
    let mut scanner = Scanner::new();
    let mut largest = 0;
    let mut leaks = Vec::new();
    for r in 1..=240u32 {
        let jpeg = image(u64::from(r) + 1000, ImageFormat::Jpeg);
        scanner.add_image(id(r, Subject::Image), &jpeg);
        if r % 60 == 1 {
            leaks.push((r, jpeg));
        }
        // As an audit does: keep the last 16 requests live, retire the older ones 16 at a time.
        if r % 16 == 0 {
            scanner.retire_before(r - 15).unwrap();
        }
        largest = largest.max(scanner.live_form_bytes());
    }
    let per_request = scanner.live_form_bytes() / 16;
    assert!(
        largest <= 32 * per_request + per_request,
        "live forms peaked at {largest} bytes, {per_request} per request"
    );
    let hays: Vec<&[u8]> = leaks.iter().map(|(_, b)| b.as_slice()).collect();
    let found = scanner
        .sweep(hays.len(), |i| Some(Cow::Borrowed(hays[i])))
        .unwrap();
    for ((r, _), hits) in leaks.iter().zip(&found) {
        assert!(
            hits.iter().any(|h| h.needle == id(*r, Subject::Image)),
            "request {r}'s copy was lost: {hits:?}"
        );
    }
    assert!(
        scanner.generations().count() >= 2,
        "the retired needles are read back in batches"
    );
}

#[test]
fn perceptual_hashes_are_never_retired() {
    let mut scanner = Scanner::new();
    let png = image(5, ImageFormat::Png);
    scanner.add_image(id(1, Subject::Image), &png);
    scanner.retire_before(2).unwrap();
    let decoded = image::load_from_memory(&png)
        .unwrap()
        .resize(96, 80, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut reencoded = Vec::new();
    decoded
        .write_to(
            &mut std::io::Cursor::new(&mut reencoded),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    assert_eq!(
        scanner.match_image(&reencoded).map(|m| m.needle),
        Some(id(1, Subject::Image))
    );
}

/// An answer carrying its own (live) request's image, with a retired request's image and token
/// beside it: the retired generations read only what the live needles left unexplained, and find
/// the old copies there.
#[test]
fn the_sweep_reads_again_only_what_the_live_needles_left_unexplained() {
    let mut scanner = Scanner::new();
    let old = image(7, ImageFormat::Png);
    scanner.add_image(id(1, Subject::Image), &old);
    scanner.add_token(id(1, Subject::DeviceId), &token(1));
    assert!(scanner.retire_before(2).unwrap() > 0);
    let own = image(8, ImageFormat::Png);
    scanner.add_image(id(2, Subject::Image), &own);
    scanner.add_token(id(2, Subject::DeviceId), &token(2));

    let mut hay = STANDARD.encode(&own).into_bytes();
    hay.extend_from_slice(b" then an old device id ");
    hay.extend_from_slice(token(1).as_bytes());
    hay.extend_from_slice(b" and an old photo ");
    hay.extend_from_slice(STANDARD.encode(&old).as_bytes());
    // (An image's container header is no needle: only a token explains a haystack whole.)
    let explained = token(2).into_bytes();

    let mut asked = [0usize; 2];
    let found = scanner
        .sweep(2, |i| {
            asked[i] += 1;
            Some(Cow::Borrowed(if i == 0 { &hay } else { &explained }))
        })
        .unwrap();
    let requests = |hits: &[Hit]| {
        let mut r: Vec<(u32, Subject)> = hits
            .iter()
            .map(|h| (h.needle.request, h.needle.subject))
            .collect();
        r.dedup();
        r.sort_by_key(|(r, _)| *r);
        r.dedup();
        r
    };
    let got = requests(&found[0]);
    assert!(got.contains(&(2, Subject::Image)), "{got:?}");
    assert!(got.contains(&(1, Subject::Image)), "{got:?}");
    assert!(
        found[0]
            .iter()
            .any(|h| h.needle == id(1, Subject::DeviceId)),
        "{:?}",
        found[0]
    );
    // Offsets are the haystack's, not the residue's.
    let at = hay.len() - STANDARD.encode(&old).len();
    assert!(
        found[0]
            .iter()
            .any(|h| h.needle == id(1, Subject::Image) && h.offset as usize >= at),
        "{:?}",
        found[0]
    );
    assert_eq!(requests(&found[1]), [(2, Subject::DeviceId)]);
    let generations = scanner.generations().count();
    assert!(generations >= 2);
    assert_eq!(
        asked,
        [1, 1],
        "each haystack is read once, by the live generation: the retired ones read its residue"
    );
}

/// Images staged apart (no scanner needed) and absorbed find what images added in place find,
/// live and, once retired, in a sweep; an index absorbed after the live one changed shape too.
#[test]
fn staged_images_are_found_as_added_ones_live_and_retired() {
    let (mut in_place, hay) = scanner_and_leak(10, 9);
    let (mut staged, _) = scanner_and_leak(10, 9);
    let (mut reshaped, _) = scanner_and_leak(10, 9);
    let new = [
        (id(11, Subject::Image), image(11, ImageFormat::Webp)),
        (id(12, Subject::Image), image(12, ImageFormat::Jpeg)),
    ];
    let mut hay = hay;
    for (_, bytes) in &new {
        // From the middle of the file: coded pixels, not the container's header.
        let mid = bytes.len() / 2;
        hay.extend_from_slice(b" late=");
        hay.extend_from_slice(&bytes[mid..mid + 200]);
    }
    let images = || new.iter().map(|(id, b)| (*id, b.as_slice()));
    in_place.add_images(images());
    let batch = Staged::images(staged.staging_shape(), images());
    staged.absorb(batch);
    let batch = Staged::images(reshaped.staging_shape(), images());
    // The live index is rebuilt meanwhile: the staged filters no longer fit it.
    reshaped.retire_before(3).unwrap();
    reshaped.absorb(batch);
    let live = in_place.scan(&hay);
    for r in [11, 12] {
        assert!(live.iter().any(|h| h.needle.request == r), "{live:?}");
    }
    assert_eq!(staged.scan(&hay), live);
    in_place.retire_before(12).unwrap();
    staged.retire_before(12).unwrap();
    reshaped.retire_before(12).unwrap();
    assert_eq!(staged.scan(&hay), in_place.scan(&hay));
    assert_eq!(reshaped.scan(&hay), in_place.scan(&hay));
    assert_eq!(sweep_one(&staged, &hay), sweep_one(&in_place, &hay));
    assert_eq!(sweep_one(&reshaped, &hay), sweep_one(&in_place, &hay));
}
