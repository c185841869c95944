//! The scanner fires on every encoding, alignment and partial copy it promises, and stays quiet otherwise.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image};
use traceless_scan::scan::{
    Encoding, Hit, MIN_COPY, NeedleId, Scanner, SourceForm, StreamState, Subject,
};

const BLOB: NeedleId = NeedleId {
    request: 7,
    subject: Subject::Image,
};
const OTHER: NeedleId = NeedleId {
    request: 8,
    subject: Subject::Output,
};

/// How a leak writes bytes out.
#[derive(Debug, Clone, Copy)]
enum Form {
    Raw,
    B64,
    B64NoPad,
    B64Url,
    B64UrlNoPad,
    B64Wrapped76,
    B64Mime,
    B64Wrapped64Crlf,
    HexLower,
    HexUpper,
    PercentUpper,
    PercentLower,
    PercentB64,
}

const FORMS: [Form; 13] = [
    Form::Raw,
    Form::B64,
    Form::B64NoPad,
    Form::B64Url,
    Form::B64UrlNoPad,
    Form::B64Wrapped76,
    Form::B64Mime,
    Form::B64Wrapped64Crlf,
    Form::HexLower,
    Form::HexUpper,
    Form::PercentUpper,
    Form::PercentLower,
    Form::PercentB64,
];

fn wrap(text: &str, width: usize, eol: &str) -> Vec<u8> {
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    lines.join(eol).into_bytes()
}

fn encode(form: Form, bytes: &[u8]) -> (Vec<u8>, Encoding) {
    match form {
        Form::Raw => (bytes.to_vec(), Encoding::Raw),
        Form::B64 => (STANDARD.encode(bytes).into_bytes(), Encoding::Base64),
        Form::B64NoPad => (STANDARD_NO_PAD.encode(bytes).into_bytes(), Encoding::Base64),
        Form::B64Url => (URL_SAFE.encode(bytes).into_bytes(), Encoding::Base64Url),
        Form::B64UrlNoPad => (
            URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
            Encoding::Base64Url,
        ),
        Form::B64Wrapped76 => (wrap(&STANDARD.encode(bytes), 76, "\n"), Encoding::Base64),
        Form::B64Mime => (wrap(&STANDARD.encode(bytes), 76, "\r\n"), Encoding::Base64),
        Form::B64Wrapped64Crlf => (wrap(&STANDARD.encode(bytes), 64, "\r\n"), Encoding::Base64),
        Form::HexLower => (hex::encode(bytes).into_bytes(), Encoding::HexLower),
        Form::HexUpper => (hex::encode_upper(bytes).into_bytes(), Encoding::HexUpper),
        Form::PercentUpper => (
            percent_encode(bytes, NON_ALPHANUMERIC)
                .to_string()
                .into_bytes(),
            Encoding::Percent,
        ),
        Form::PercentLower => {
            let upper = percent_encode(bytes, NON_ALPHANUMERIC).to_string();
            let mut out = Vec::new();
            let mut digits = 0u8;
            for b in upper.bytes() {
                out.push(if digits > 0 {
                    b.to_ascii_lowercase()
                } else {
                    b
                });
                digits = if b == b'%' {
                    2
                } else {
                    digits.saturating_sub(1)
                };
            }
            (out, Encoding::Percent)
        }
        Form::PercentB64 => {
            let b64 = STANDARD.encode(bytes);
            (
                percent_encode(b64.as_bytes(), NON_ALPHANUMERIC)
                    .to_string()
                    .into_bytes(),
                Encoding::PercentBase64,
            )
        }
    }
}

fn random_bytes(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill_bytes(&mut v);
    v
}

/// Log-like filler: words, spaces and punctuation.
fn log_text(rng: &mut impl Rng, n: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "INFO ",
        "request ",
        "done; ",
        "status=200 ",
        "path=/v1/x ",
        "\"ok\": true, ",
        "\n",
        "t=12ms ",
    ];
    let mut out = Vec::new();
    while out.len() < n {
        out.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
    }
    out.truncate(n);
    out
}

fn blob_scanner(blob: &[u8]) -> Scanner {
    let mut s = Scanner::new();
    s.add_blob(BLOB, blob);
    s.add_blob(OTHER, &random_bytes(&mut StdRng::seed_from_u64(99), 4096));
    s
}

/// Embeds `form(blob[range])` after `prefix` filler bytes and checks the scanner reports exactly it.
fn check(scanner: &Scanner, blob: &[u8], form: Form, range: std::ops::Range<usize>, prefix: usize) {
    let mut rng = StdRng::seed_from_u64(prefix as u64);
    let (encoded, encoding) = encode(form, &blob[range.clone()]);
    let mut hay = log_text(&mut rng, prefix);
    hay.extend_from_slice(b" data=");
    let at = hay.len();
    hay.extend_from_slice(&encoded);
    hay.extend_from_slice(b" end\n");
    hay.extend_from_slice(&log_text(&mut rng, 300));
    let hits = scanner.scan(&hay);
    let ctx = format!("{form:?} range {range:?} prefix {prefix}: {hits:?}");
    assert_eq!(hits.len(), 1, "{ctx}");
    let h = &hits[0];
    assert_eq!(
        (h.needle, h.encoding, h.form),
        (BLOB, encoding, SourceForm::Bytes),
        "{ctx}"
    );
    // Exact for raw; base64 may leave out the last partial group, decoded bytes map to whole characters.
    let slack = if matches!(form, Form::Raw) { 0 } else { 4 };
    assert!(
        h.offset as usize >= at && h.offset as usize <= at + slack,
        "{ctx}"
    );
    assert!((h.offset + h.len) as usize <= at + encoded.len(), "{ctx}");
    assert!(
        h.source_offset as usize >= range.start
            && (h.source_offset + h.source_len) as usize <= range.end,
        "{ctx}"
    );
    assert!(h.source_len as usize + slack.min(2) >= range.len(), "{ctx}");
}

#[test]
fn every_encoding_found_at_every_alignment_and_offset() {
    let blob = random_bytes(&mut StdRng::seed_from_u64(1), 4096);
    let scanner = blob_scanner(&blob);
    for form in FORMS {
        for start in [0, 1, 2, 3, 100, 1001, 4096 - 300] {
            for prefix in [0, 5, 13, 200] {
                check(&scanner, &blob, form, start..start + 300, prefix);
            }
        }
        check(&scanner, &blob, form, 0..blob.len(), 17);
    }
}

/// Needles added one at a time between scans (as an audit adds them per request) are each found from the scan
/// after their add on, at `MIN_COPY` bytes in any encoding, and a needle not yet added never is.
#[test]
fn needles_added_between_scans_are_all_found() {
    let mut rng = StdRng::seed_from_u64(21);
    let blobs: Vec<Vec<u8>> = (0..70)
        .map(|i| random_bytes(&mut rng, 500 + (i * 977) % 6000))
        .collect();
    let id = |i: usize| NeedleId {
        request: i as u32,
        subject: if i.is_multiple_of(3) {
            Subject::Prompt
        } else {
            Subject::Image
        },
    };
    let token = |i: usize| format!("tok-{i:04}-marker");
    // Every needle, added or not, copied once into the haystack: a short slice of each blob, in some encoding.
    let mut hay = Vec::new();
    for (i, blob) in blobs.iter().enumerate() {
        hay.extend_from_slice(&log_text(&mut rng, 40 + i % 17));
        let start = (i * 131) % (blob.len() - MIN_COPY);
        let (encoded, _) = encode(FORMS[i % FORMS.len()], &blob[start..start + MIN_COPY]);
        hay.extend_from_slice(&encoded);
        hay.push(b' ');
        if i.is_multiple_of(3) {
            hay.extend_from_slice(STANDARD.encode(token(i)).as_bytes());
        }
    }
    let mut scanner = Scanner::new();
    let mut stream = StreamState::new();
    for (added, blob) in blobs.iter().enumerate() {
        scanner.add_blob(id(added), blob);
        if added.is_multiple_of(3) {
            scanner.add_token(id(added), &token(added));
        }
        let mut found: Vec<NeedleId> = scanner.scan(&hay).iter().map(|h| h.needle).collect();
        found.sort();
        found.dedup();
        let mut expected: Vec<NeedleId> = (0..=added).map(id).collect();
        expected.sort();
        assert_eq!(found, expected, "after adding needle {added}");
        // Blob copies are found where they were put, in order.
        let blob_hits: Vec<u64> = scanner
            .scan(&hay)
            .iter()
            .filter(|h| h.source_len >= MIN_COPY as u64 - 2)
            .map(|h| h.needle.request as u64)
            .collect();
        assert_eq!(blob_hits, (0..=added as u64).collect::<Vec<_>>());
        // A stream scanned alongside the adds names only needles added so far.
        let chunk = &hay[added * hay.len() / blobs.len()..(added + 1) * hay.len() / blobs.len()];
        for h in scanner.scan_chunk(&mut stream, chunk) {
            assert!(h.needle.request as usize <= added, "{h:?}");
        }
    }
}

#[test]
fn scanner_is_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Scanner>();
}

#[test]
fn a_64_byte_copy_is_found_in_every_encoding() {
    let blob = random_bytes(&mut StdRng::seed_from_u64(2), 4096);
    let scanner = blob_scanner(&blob);
    for form in FORMS {
        for start in [0, 1, 2, 77, 500] {
            for prefix in [0, 1, 2, 3, 4, 5, 6, 7] {
                check(&scanner, &blob, form, start..start + MIN_COPY, prefix);
            }
        }
    }
}

#[test]
fn a_32_byte_copy_is_not_evidence() {
    let blob = random_bytes(&mut StdRng::seed_from_u64(3), 4096);
    let scanner = blob_scanner(&blob);
    for form in FORMS {
        for start in [0, 1, 2, 900] {
            let (encoded, _) = encode(form, &blob[start..start + 32]);
            let mut hay = b"prefix ".to_vec();
            hay.extend_from_slice(&encoded);
            hay.extend_from_slice(b" suffix");
            assert_eq!(scanner.scan(&hay), vec![], "{form:?} {start}");
        }
    }
}

#[test]
fn unrelated_data_has_no_hits() {
    let blob = random_bytes(&mut StdRng::seed_from_u64(4), 64 * 1024);
    let scanner = blob_scanner(&blob);
    let mut rng = StdRng::seed_from_u64(5);
    let noise = random_bytes(&mut rng, 4 << 20);
    assert_eq!(scanner.scan(&noise), vec![]);
    let other = random_bytes(&mut rng, 256 * 1024);
    for form in FORMS {
        assert_eq!(scanner.scan(&encode(form, &other).0), vec![], "{form:?}");
    }
    assert_eq!(scanner.scan(&vec![0u8; 1 << 20]), vec![]);
    assert_eq!(scanner.scan(&log_text(&mut rng, 1 << 20)), vec![]);
}

#[test]
fn streaming_finds_copies_split_over_chunks_at_stream_offsets() {
    let blob = random_bytes(&mut StdRng::seed_from_u64(6), 4096);
    let scanner = blob_scanner(&blob);
    let mut rng = StdRng::seed_from_u64(7);
    for form in [Form::Raw, Form::B64Mime, Form::HexUpper, Form::PercentLower] {
        let mut hay = log_text(&mut rng, 5000);
        let (encoded, encoding) = encode(form, &blob[1000..1000 + 200]);
        let at = hay.len();
        hay.extend_from_slice(&encoded);
        hay.extend_from_slice(&log_text(&mut rng, 5000));
        for split in [at + 1, at + encoded.len() / 2, at + encoded.len() - 1] {
            for chunk_size in [split, 97] {
                let mut state = StreamState::new();
                let mut hits: Vec<Hit> = Vec::new();
                let (first, rest) = hay.split_at(split);
                hits.extend(scanner.scan_chunk(&mut state, &first[..chunk_size.min(first.len())]));
                let mut pos = chunk_size.min(first.len());
                while pos < hay.len() {
                    let end = if pos < split {
                        split
                    } else {
                        (pos + chunk_size).min(hay.len())
                    };
                    let end = end.max(pos + 1);
                    hits.extend(scanner.scan_chunk(&mut state, &hay[pos..end]));
                    pos = end;
                }
                let _ = rest;
                assert_eq!(state.position(), hay.len() as u64);
                assert!(
                    !hits.is_empty(),
                    "{form:?} split {split} chunk {chunk_size}"
                );
                for h in &hits {
                    assert_eq!((h.needle, h.encoding), (BLOB, encoding));
                    assert!(
                        h.offset as usize >= at
                            && (h.offset + h.len) as usize <= at + encoded.len()
                    );
                }
                let covered: u64 = hits
                    .iter()
                    .map(|h| h.source_offset + h.source_len)
                    .max()
                    .unwrap()
                    - hits.iter().map(|h| h.source_offset).min().unwrap();
                assert!(covered >= 196, "{form:?}: {hits:?}");
            }
        }
    }
}

#[test]
fn tokens_are_found_in_each_encoding() {
    let token = "tlp-0a1b2c3d4e5f";
    let id = NeedleId {
        request: 3,
        subject: Subject::Prompt,
    };
    let mut scanner = Scanner::new();
    scanner.add_token(id, token);
    scanner.add_token(
        NeedleId {
            request: 4,
            subject: Subject::DeviceId,
        },
        "tl-dev-00112233aabbccdd",
    );
    let cases: Vec<(Vec<u8>, Encoding)> = vec![
        (format!("prompt: {token}!").into_bytes(), Encoding::Raw),
        (b"q=tlp%2D0a1b2c3d4e5f&x".to_vec(), Encoding::Percent),
        (b"q=tlp%2d0a1b2c3d4e5f&x".to_vec(), Encoding::Percent),
        (
            format!("hex {} end", hex::encode(token)).into_bytes(),
            Encoding::HexLower,
        ),
        (
            format!("HEX {} end", hex::encode_upper(token)).into_bytes(),
            Encoding::HexUpper,
        ),
        (
            format!(
                "{{\"p\":\"{}\"}}",
                STANDARD.encode(format!("say {token} now"))
            )
            .into_bytes(),
            Encoding::Base64,
        ),
        (
            STANDARD.encode(format!("x{token}")).into_bytes(),
            Encoding::Base64,
        ),
        (
            STANDARD.encode(format!("xy{token}")).into_bytes(),
            Encoding::Base64,
        ),
        // At this alignment the token's characters hold no URL-only symbol, so the form is the standard one.
        (
            URL_SAFE_NO_PAD
                .encode(format!("\u{ff}\u{fe}{token}"))
                .into_bytes(),
            Encoding::Base64,
        ),
        (
            URL_SAFE_NO_PAD
                .encode(format!("{token}\u{ff}"))
                .into_bytes(),
            Encoding::Base64,
        ),
    ];
    for (hay, encoding) in cases {
        let hits: Vec<Hit> = scanner
            .scan(&hay)
            .into_iter()
            .filter(|h| h.needle == id)
            .collect();
        assert!(
            hits.iter().any(|h| h.encoding == encoding),
            "{}: {hits:?}",
            String::from_utf8_lossy(&hay)
        );
    }
    let mut key_scanner = Scanner::new();
    key_scanner.add_token(id, "key~~~~~~~~~~~~");
    let hits = key_scanner.scan(
        URL_SAFE_NO_PAD
            .encode("prefix key~~~~~~~~~~~~ suffix")
            .as_bytes(),
    );
    assert!(
        hits.iter().any(|h| h.encoding == Encoding::Base64Url),
        "{hits:?}"
    );
    let mut json_scanner = Scanner::new();
    json_scanner.add_token(id, "say \"hi\"\n");
    let hits = json_scanner.scan(br#"{"prompt":"say \"hi\"\n"}"#);
    assert_eq!(
        hits.iter().map(|h| h.encoding).collect::<Vec<_>>(),
        vec![Encoding::JsonEscaped]
    );
    assert_eq!(
        scanner.scan(b"tlp-0a1b2c3d4e5 tl-dev-00112233aabbccd"),
        vec![]
    );
}

/// In binary data the automata only see the stretches made of token bytes: every form is still found at its
/// exact offset, at the very start and end of the haystack too, and for a token with non-ASCII characters.
#[test]
fn tokens_in_binary_data_are_found_at_their_offsets() {
    let tokens = [
        "tlp-0a1b2c3d4e5f",
        "127.3.4.5",
        "tl-dev-00112233aabbccdd",
        "marqueur-café-ünï",
    ];
    let mut scanner = Scanner::new();
    for (i, t) in tokens.iter().enumerate() {
        scanner.add_token(
            NeedleId {
                request: i as u32,
                subject: Subject::Prompt,
            },
            t,
        );
    }
    let mut rng = StdRng::seed_from_u64(0xb1a5);
    for (i, t) in tokens.iter().enumerate() {
        let spellings = [
            (t.as_bytes().to_vec(), Encoding::Raw),
            (hex::encode(t).into_bytes(), Encoding::HexLower),
            (
                percent_encode(t.as_bytes(), NON_ALPHANUMERIC)
                    .to_string()
                    .into_bytes(),
                Encoding::Percent,
            ),
            (STANDARD_NO_PAD.encode(t).into_bytes(), Encoding::Base64),
        ];
        for (form, encoding) in spellings {
            let hay_len = 4096;
            for at in [0, 1000, 1001, 2003, hay_len - form.len()] {
                let mut hay = random_bytes(&mut rng, hay_len);
                hay[at..at + form.len()].copy_from_slice(&form);
                let hits: Vec<Hit> = scanner
                    .scan(&hay)
                    .into_iter()
                    .filter(|h| h.needle.request == i as u32 && h.encoding == encoding)
                    .collect();
                assert!(
                    hits.iter()
                        .any(|h| h.offset == at as u64 && h.len as usize <= form.len()),
                    "{t} as {encoding:?} at {at}: {hits:?}"
                );
                if encoding != Encoding::Base64 {
                    assert!(
                        hits.iter().any(|h| h.len as usize == form.len()),
                        "{hits:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn image_bytes_and_pixel_rows_are_found() {
    let mut rng = StdRng::seed_from_u64(8);
    // JPEG: its file bytes do not hold raw pixel rows (a PNG of noise stores them), so each hit is unambiguous.
    let spec = ImageSpec {
        format: ImageFormat::Jpeg,
        width: 96,
        height: 64,
        metadata: true,
    };
    let canary = generate_image(&spec, &mut rng).unwrap();
    let mut scanner = Scanner::new();
    scanner.add_image(BLOB, &canary.bytes);
    let pixels = image::load_from_memory(&canary.bytes).unwrap();
    let rgb = pixels.to_rgb8().into_raw();
    let rgba = pixels.to_rgba8().into_raw();

    let mut hay = b"file: ".to_vec();
    hay.extend_from_slice(&canary.bytes);
    hay.extend_from_slice(b" pixels: ");
    hay.extend_from_slice(&rgba[4000..4400]);
    hay.extend_from_slice(b" b64 pixels: ");
    hay.extend_from_slice(STANDARD.encode(&rgb[999..1999]).as_bytes());
    let hits = scanner.scan(&hay);
    let summary: Vec<_> = hits
        .iter()
        .map(|h| (h.encoding, h.form, h.source_len))
        .collect();
    // Only the coded pixels are indexed (headers and tables are shared by every file of an encoder): the raw
    // hit covers the file from its payload to its end.
    let raw = hits.iter().find(|h| h.encoding == Encoding::Raw).unwrap();
    assert_eq!(raw.form, SourceForm::Bytes);
    assert!(raw.source_offset > 0, "{raw:?}");
    assert_eq!(
        raw.source_offset + raw.source_len,
        canary.bytes.len() as u64,
        "{summary:?}"
    );
    assert!(
        summary.contains(&(Encoding::PixelRows, SourceForm::PixelRows, 400)),
        "{summary:?}"
    );
    assert!(
        summary.contains(&(Encoding::Base64, SourceForm::PixelRows, 1000)),
        "{summary:?}"
    );
    assert_eq!(raw.offset, 6 + raw.source_offset);
    assert_eq!(raw.len, raw.source_len);
    assert_eq!(
        traceless_scan::scan_file_for_image(&canary.bytes, &hay).len(),
        hits.len()
    );
}

/// A PNG of noise stores its pixel rows as they are: the file's own hit explains them, and a row
/// hit inside it adds nothing but memory (an answer gave one per row). A row copied elsewhere is
/// still found, read both ways: as the stored file's bytes and as pixel rows.
#[test]
fn hits_inside_another_hit_of_the_same_needle_are_left_out() {
    use image::ImageEncoder as _;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut rng = StdRng::seed_from_u64(10);
    let rgb = random_bytes(&mut rng, 64 * 64 * 3);
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::NoFilter)
        .write_image(&rgb, 64, 64, image::ExtendedColorType::Rgb8)
        .unwrap();
    let mut scanner = Scanner::new();
    scanner.add_image(BLOB, &png);
    let mut hay = b"answer: ".to_vec();
    hay.extend_from_slice(&png);
    let file_end = hay.len() as u64;
    hay.extend_from_slice(b" and a row: ");
    hay.extend_from_slice(&rgb[600..900]);
    let hits = scanner.scan(&hay);
    let summary: Vec<_> = hits
        .iter()
        .map(|h| (h.offset, h.len, h.encoding, h.form))
        .collect();
    assert_eq!(hits.len(), 3, "{summary:?}");
    // The file's hit: its coded pixels (the needle), which end before the closing chunk.
    assert_eq!(
        (hits[0].encoding, hits[0].form),
        (Encoding::Raw, SourceForm::Bytes)
    );
    assert!(hits[0].len > 64 * 64 * 3, "{summary:?}");
    assert!(hits[0].offset + hits[0].len <= file_end, "{summary:?}");
    let row = &summary[1..];
    assert_eq!(
        row,
        [
            (file_end + 12, 300, Encoding::Raw, SourceForm::Bytes),
            (
                file_end + 12,
                300,
                Encoding::PixelRows,
                SourceForm::PixelRows
            )
        ],
        "{summary:?}"
    );
}

#[test]
fn images_added_at_once_are_found_as_if_added_one_by_one() {
    let mut rng = StdRng::seed_from_u64(9);
    let images: Vec<Vec<u8>> = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp]
        .into_iter()
        .map(|format| {
            let spec = ImageSpec {
                format,
                width: 80,
                height: 48,
                metadata: false,
            };
            generate_image(&spec, &mut rng).unwrap().bytes
        })
        .collect();
    let id = |i: usize| NeedleId {
        request: i as u32 + 1,
        subject: Subject::Image,
    };
    let mut one_by_one = Scanner::new();
    for (i, img) in images.iter().enumerate() {
        one_by_one.add_image(id(i), img);
    }
    let mut at_once = Scanner::new();
    at_once.add_images(
        images
            .iter()
            .enumerate()
            .map(|(i, img)| (id(i), img.as_slice())),
    );
    let mut hay = log_text(&mut rng, 4000);
    for img in &images {
        let pixels = image::load_from_memory(img).unwrap().to_rgba8().into_raw();
        hay.extend_from_slice(STANDARD.encode(img).as_bytes());
        hay.extend_from_slice(&log_text(&mut rng, 500));
        hay.extend_from_slice(&pixels[1000..1300]);
    }
    let found = one_by_one.scan(&hay);
    let needles: std::collections::BTreeSet<u32> = found.iter().map(|h| h.needle.request).collect();
    assert_eq!(needles.len(), images.len(), "{found:?}");
    assert_eq!(at_once.scan(&hay), found);
}

#[test]
fn excerpts_are_short_and_escaped() {
    let hit = Hit {
        needle: BLOB,
        encoding: Encoding::Raw,
        offset: 2,
        len: 100,
        source_offset: 0,
        source_len: 100,
        form: SourceForm::Bytes,
    };
    let hay: Vec<u8> = (0..=255u8).collect();
    let excerpt = hit.excerpt(&hay);
    assert!(excerpt.starts_with("\\x02\\x03"), "{excerpt}");
    assert!(
        excerpt.ends_with("01...") && excerpt.contains(" !\"#"),
        "{excerpt}"
    );
    assert_eq!(
        Hit {
            offset: 250,
            len: 6,
            ..hit.clone()
        }
        .excerpt(&hay),
        "\\xfa\\xfb\\xfc\\xfd\\xfe\\xff"
    );
    assert_eq!(
        Hit {
            offset: 1000,
            ..hit
        }
        .excerpt(&hay),
        "..."
    );
}

#[test]
fn resized_and_reencoded_copies_match_unrelated_images_do_not() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut scanner = Scanner::new();
    let mut canaries = Vec::new();
    for (i, format) in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp]
        .into_iter()
        .enumerate()
    {
        let c = generate_image(
            &ImageSpec {
                format,
                width: 256,
                height: 192,
                metadata: true,
            },
            &mut rng,
        )
        .unwrap();
        scanner.add_image(
            NeedleId {
                request: i as u32,
                subject: Subject::Image,
            },
            &c.bytes,
        );
        canaries.push(c);
    }
    for (i, c) in canaries.iter().enumerate() {
        let img = image::load_from_memory(&c.bytes).unwrap();
        let thumb = img.resize(128, 96, image::imageops::FilterType::Triangle);
        let mut jpeg = Vec::new();
        thumb
            .to_rgb8()
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let small = img.resize(64, 48, image::imageops::FilterType::Lanczos3);
        let mut png = Vec::new();
        small
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        for copy in [&c.bytes, &jpeg, &png] {
            let m = scanner.match_image(copy).expect("a copy matches");
            assert_eq!(m.needle.request, i as u32, "{m:?}");
        }
    }
    for _ in 0..20 {
        let unrelated = generate_image(
            &ImageSpec {
                format: ImageFormat::Png,
                width: 256,
                height: 192,
                metadata: false,
            },
            &mut rng,
        )
        .unwrap();
        assert_eq!(scanner.match_image(&unrelated.bytes), None);
    }
    assert_eq!(scanner.match_image(b"not an image"), None);
}

fn form_strategy() -> impl Strategy<Value = Form> {
    (0..FORMS.len()).prop_map(|i| FORMS[i])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any slice of >= 64 bytes of a needle, in any encoding, embedded in random data, is found.
    #[test]
    fn any_long_enough_slice_in_any_encoding_is_found(
        seed in any::<u64>(),
        start in 0usize..2000,
        len in MIN_COPY..600,
        form in form_strategy(),
        prefix in 0usize..300,
        binary_filler in any::<bool>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let blob = random_bytes(&mut rng, 2600);
        let scanner = blob_scanner(&blob);
        let (encoded, encoding) = encode(form, &blob[start..start + len]);
        let filler = |rng: &mut StdRng, n| if binary_filler { random_bytes(rng, n) } else { log_text(rng, n) };
        let mut hay = filler(&mut rng, prefix);
        let at = hay.len();
        hay.extend_from_slice(&encoded);
        hay.extend(filler(&mut rng, 200));
        let hits = scanner.scan(&hay);
        // Base64url text without `-` or `_` is also standard base64: either name is right.
        let same_alphabet = encoding == Encoding::Base64Url && !encoded.iter().any(|b| *b == b'-' || *b == b'_');
        // Percent-encoded base64 with no `+`, `/` or `=` to escape is plain base64 (about one
        // 66-byte slice in sixteen): either name is right.
        let nothing_escaped = encoding == Encoding::PercentBase64 && !encoded.contains(&b'%');
        let found = hits.iter().any(|h| h.needle == BLOB
            && (h.encoding == encoding
                || ((same_alphabet || nothing_escaped) && h.encoding == Encoding::Base64))
            && (h.offset as usize) < at + encoded.len() && (h.offset + h.len) as usize > at);
        prop_assert!(found, "{:?} {}..{} in {} filler: {:?}", form, start, start + len,
            if binary_filler { "binary" } else { "text" }, hits);
    }
}

/// A canary image cut off at `n` bytes, as a truncated-upload scenario sends it.
fn truncated_canary(format: ImageFormat, n: usize, rng: &mut impl Rng) -> Vec<u8> {
    let spec = ImageSpec {
        format,
        width: 64,
        height: 48,
        metadata: true,
    };
    let mut bytes = generate_image(&spec, rng).unwrap().bytes;
    bytes.truncate(n);
    bytes
}

#[test]
fn a_truncated_image_s_shared_header_is_no_needle() {
    let mut rng = StdRng::seed_from_u64(11);
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp] {
        // Two requests' 100-byte uploads: headers and metadata boilerplate, nothing else.
        let mine = truncated_canary(format, 100, &mut rng);
        let theirs = truncated_canary(format, 100, &mut rng);
        let mut scanner = Scanner::new();
        scanner.add_image(BLOB, &mine);
        assert!(
            scanner.scan(&theirs).is_empty(),
            "{format:?}: another request's header matched: {:?}",
            scanner.scan(&theirs)
        );
        assert!(
            scanner.scan(&mine).is_empty(),
            "{format:?}: nothing of it is specific"
        );
    }
}

#[test]
fn a_truncated_image_s_coded_pixels_are_still_its_own() {
    let mut rng = StdRng::seed_from_u64(12);
    let mine = truncated_canary(ImageFormat::Png, 4000, &mut rng);
    let theirs = truncated_canary(ImageFormat::Png, 4000, &mut rng);
    let mut scanner = Scanner::new();
    scanner.add_image(BLOB, &mine);
    let hits = scanner.scan(&mine);
    assert!(
        hits.iter().any(|h| h.needle == BLOB && h.source_offset > 0),
        "{hits:?}"
    );
    assert!(
        scanner.scan(&theirs).is_empty(),
        "{:?}",
        scanner.scan(&theirs)
    );
}

#[test]
fn content_two_requests_share_names_both() {
    // The same photo (a fixture) uploaded by requests 7 and 9: a copy of it is theirs, both.
    let mut rng = StdRng::seed_from_u64(13);
    let photo = generate_image(
        &ImageSpec {
            format: ImageFormat::Jpeg,
            width: 64,
            height: 48,
            metadata: false,
        },
        &mut rng,
    )
    .unwrap()
    .bytes;
    let nine = NeedleId {
        request: 9,
        subject: Subject::Image,
    };
    let mut scanner = Scanner::new();
    scanner.add_image(BLOB, &photo);
    scanner.add_image(nine, &photo);
    let mut hay = b"kept: ".to_vec();
    hay.extend_from_slice(&photo);
    let mut owners: Vec<u32> = scanner
        .scan(&hay)
        .iter()
        .map(|h| h.needle.request)
        .collect();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners, [7, 9]);
}
