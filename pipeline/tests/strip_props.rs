//! Property tests of metadata stripping: whatever metadata an image carries, the stripped copy
//! carries none of it and decodes to exactly the same pixels.

mod support;

use proptest::prelude::*;
use support::{METADATA_MARKER, encode, exif_block, png_chunk};
use traceless_pipeline::image_check::ImageKind;
use traceless_pipeline::strip::{PNG_KEPT, WEBP_KEPT, strip};

fn image_from(width: u32, height: u32, seed: &[u8], alpha: bool) -> image::DynamicImage {
    let channels = if alpha { 4 } else { 3 };
    let pixels: Vec<u8> = (0..(width * height * channels) as usize)
        .map(|i| seed[i % seed.len()].wrapping_mul(i as u8 | 1))
        .collect();
    if alpha {
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(width, height, pixels).unwrap())
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, pixels).unwrap())
    }
}

fn jpeg_segment(marker: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend(((content.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(content);
    out
}

fn riff_chunk(id: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend((data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// Plants metadata of every kind the format knows, choosing which with `mask`.
fn with_metadata(kind: ImageKind, clean: &[u8], width: u32, height: u32, mask: u8) -> Vec<u8> {
    let marker = METADATA_MARKER.as_bytes();
    let on = |bit: u8| mask & (1 << bit) != 0;
    match kind {
        ImageKind::Png => {
            let mut out = clean[..33].to_vec();
            if on(0) {
                out.extend(png_chunk(b"eXIf", &exif_block(METADATA_MARKER)));
            }
            if on(1) {
                out.extend(png_chunk(b"tEXt", &[b"Author\0", marker].concat()));
            }
            if on(2) {
                out.extend(png_chunk(
                    b"iCCP",
                    &[b"Camera profile ", marker, b"\0\0"].concat(),
                ));
            }
            if on(3) {
                out.extend(png_chunk(b"prVt", marker));
            }
            let iend = clean.len() - 12;
            out.extend_from_slice(&clean[33..iend]);
            if on(4) {
                out.extend(png_chunk(b"zTXt", &[b"Raw profile\0\0", marker].concat()));
            }
            if on(5) {
                out.extend(png_chunk(b"tIME", &[7, 234, 1, 2, 3, 4, 5]));
            }
            out.extend_from_slice(&clean[iend..]);
            out.extend_from_slice(marker); // after IEND
            out
        }
        ImageKind::Jpeg => {
            let mut out = clean[..2].to_vec();
            if on(0) {
                out.extend(jpeg_segment(
                    0xE1,
                    &[b"Exif\0\0".as_slice(), &exif_block(METADATA_MARKER)].concat(),
                ));
            }
            if on(1) {
                out.extend(jpeg_segment(
                    0xE1,
                    &[b"http://ns.adobe.com/xap/1.0/\0".as_slice(), marker].concat(),
                ));
            }
            if on(2) {
                out.extend(jpeg_segment(
                    0xE2,
                    &[b"ICC_PROFILE\0\x01\x01".as_slice(), marker].concat(),
                ));
            }
            if on(3) {
                out.extend(jpeg_segment(
                    0xED,
                    &[b"Photoshop 3.0\0".as_slice(), marker].concat(),
                ));
            }
            out.extend_from_slice(&clean[2..clean.len() - 2]);
            if on(4) {
                out.extend(jpeg_segment(0xFE, marker));
            } // between the scan and EOI
            out.extend_from_slice(&[0xFF, 0xD9]);
            if on(5) {
                out.extend_from_slice(marker);
            } // trailer after EOI
            out
        }
        ImageKind::WebP => {
            // The encoder writes a simple VP8L file; rebuild it as an extended one with metadata.
            assert_eq!(&clean[12..16], b"VP8L");
            let bitstream = &clean[12..];
            let mut flags = 0u8;
            let mut chunks = Vec::new();
            if on(0) {
                flags |= 0x20;
                chunks.extend(riff_chunk(b"ICCP", marker));
            }
            chunks.extend_from_slice(bitstream);
            if on(1) {
                flags |= 0x08;
                chunks.extend(riff_chunk(b"EXIF", &exif_block(METADATA_MARKER)));
            }
            if on(2) {
                flags |= 0x04;
                chunks.extend(riff_chunk(b"XMP ", marker));
            }
            if on(3) {
                chunks.extend(riff_chunk(b"tlPV", marker));
            }
            // VP8X carries the alpha flag the VP8L header already states, so both decode alike.
            let vp8l_header = u32::from_le_bytes(clean[21..25].try_into().unwrap());
            if vp8l_header & (1 << 28) != 0 {
                flags |= 0x10;
            }
            let mut vp8x = vec![flags, 0, 0, 0];
            vp8x.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
            vp8x.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
            let mut body = b"WEBP".to_vec();
            body.extend(riff_chunk(b"VP8X", &vp8x));
            body.extend(chunks);
            let mut out = b"RIFF".to_vec();
            out.extend((body.len() as u32).to_le_bytes());
            out.extend(body);
            if on(4) {
                out.extend_from_slice(marker);
            } // after the RIFF container
            out
        }
    }
}

/// Asserts the structure of `out` carries nothing outside the allow-lists.
fn assert_no_metadata_structure(kind: ImageKind, out: &[u8]) {
    match kind {
        ImageKind::Png => {
            let mut pos = 8;
            while pos < out.len() {
                let len = u32::from_be_bytes(out[pos..pos + 4].try_into().unwrap()) as usize;
                let chunk: &[u8; 4] = out[pos + 4..pos + 8].try_into().unwrap();
                assert!(
                    PNG_KEPT.contains(&chunk),
                    "PNG chunk {:?} kept",
                    String::from_utf8_lossy(chunk)
                );
                pos += 12 + len;
            }
            assert_eq!(pos, out.len());
        }
        ImageKind::Jpeg => {
            let mut pos = 2;
            loop {
                assert_eq!(out[pos], 0xFF);
                let marker = out[pos + 1];
                if marker == 0xD9 {
                    assert_eq!(pos + 2, out.len(), "bytes after EOI");
                    break;
                }
                assert!(
                    !(0xE1..=0xED).contains(&marker) && marker != 0xEF && marker != 0xFE,
                    "segment 0x{marker:02X} kept"
                );
                let len = u16::from_be_bytes([out[pos + 2], out[pos + 3]]) as usize;
                pos += 2 + len;
                if marker == 0xDA {
                    while !(out[pos] == 0xFF
                        && out[pos + 1] != 0
                        && !(0xD0..=0xD7).contains(&out[pos + 1]))
                    {
                        pos += 1;
                    }
                }
            }
        }
        ImageKind::WebP => {
            assert_eq!(
                u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize,
                out.len() - 8
            );
            let mut pos = 12;
            while pos < out.len() {
                let id: &[u8; 4] = out[pos..pos + 4].try_into().unwrap();
                assert!(
                    WEBP_KEPT.contains(&id),
                    "WebP chunk {:?} kept",
                    String::from_utf8_lossy(id)
                );
                if id == b"VP8X" {
                    assert_eq!(
                        out[pos + 8] & (0x20 | 0x08 | 0x04),
                        0,
                        "metadata flags left set"
                    );
                }
                let size = u32::from_le_bytes(out[pos + 4..pos + 8].try_into().unwrap()) as usize;
                pos += 8 + size + (size & 1);
            }
            assert_eq!(pos, out.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn stripping_removes_all_metadata_and_keeps_every_pixel(
        width in 1u32..40,
        height in 1u32..40,
        seed in proptest::collection::vec(any::<u8>(), 1..64),
        alpha in any::<bool>(),
        kind_index in 0usize..3,
        mask in any::<u8>(),
    ) {
        let kind = [ImageKind::Png, ImageKind::Jpeg, ImageKind::WebP][kind_index];
        let format = match kind {
            ImageKind::Png => image::ImageFormat::Png,
            ImageKind::Jpeg => image::ImageFormat::Jpeg,
            ImageKind::WebP => image::ImageFormat::WebP,
        };
        let img = image_from(width, height, &seed, alpha && kind != ImageKind::Jpeg);
        let clean = encode(img, format);
        let dirty = with_metadata(kind, &clean, width, height, mask);

        let out = strip(kind, &dirty).unwrap();
        prop_assert!(!out.windows(METADATA_MARKER.len()).any(|w| w == METADATA_MARKER.as_bytes()));
        assert_no_metadata_structure(kind, &out);
        // Compared with the image before metadata was planted: a comment between the last scan
        // and EOI makes the JPEG decoder return different pixels for the planted file itself.
        let before = image::load_from_memory_with_format(&clean, format).unwrap();
        let after = image::load_from_memory_with_format(&out, format).unwrap();
        prop_assert_eq!(before.color(), after.color());
        prop_assert!(before.as_bytes() == after.as_bytes(), "pixels differ");
        // Stripping is idempotent: a stripped image has nothing left to remove.
        prop_assert_eq!(strip(kind, &out).unwrap(), out);
    }
}
