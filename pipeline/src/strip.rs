//! Metadata removal before an image leaves for a provider, without touching the pixel data.
//!
//! Each format is walked chunk by chunk (segment by segment for JPEG) and only what is needed to
//! decode the pixels, with their intended colours, is copied; the compressed image data is
//! copied byte for byte, never re-encoded. What is kept is an allow-list, so an unknown chunk
//! (a new metadata kind, an application's private data) is dropped by default:
//!
//! - PNG keeps `IHDR PLTE tRNS gAMA cHRM sRGB IDAT IEND`: the critical chunks, transparency, and
//!   the three numeric colour-space hints, which carry no personal data. Everything else goes:
//!   `eXIf`, `tEXt`, `zTXt`, `iTXt`, `tIME`, `iCCP`, `pHYs`, APNG chunks, private chunks, and any
//!   bytes after `IEND`.
//! - JPEG keeps the frame, table, restart and scan segments with their entropy-coded data,
//!   `APP0` JFIF (rewritten without its thumbnail) and `APP14` Adobe (it decides the colour
//!   transform). Every other `APPn` (Exif, XMP, ICC, MPF, Photoshop IRB...) and `COM` goes,
//!   between scans too, and so does everything after `EOI` (MPF secondary images, motion-photo
//!   videos, vendor trailers).
//! - WebP keeps `VP8X ANIM ANMF ALPH VP8 VP8L` (and inside each `ANMF` only `ALPH VP8 VP8L`),
//!   drops `EXIF`, `XMP `, `ICCP` and unknown chunks, clears the matching `VP8X` flags and
//!   rewrites the RIFF size.
//!
//! ICC profiles are dropped in every format: a profile is free-form data (descriptions,
//! copyright, device manufacturer and model tags) that can identify the camera; the cost is that
//! wide-gamut photos are read as sRGB. We chose a hand-written walker over the `img-parts` crate
//! because `img-parts` keeps everything after a JPEG's first scan verbatim (segments between
//! progressive scans, data after `EOI`) and does not clear the WebP XMP flag.
//!
//! Structural damage found on the way (a chunk running past the end, a missing `IEND`/`EOI`)
//! is reported, so a truncated upload is refused rather than forwarded.

use crate::image_check::ImageKind;

/// Why an image could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripError {
    #[error("the {0} image is truncated: {1}")]
    Truncated(&'static str, &'static str),
    #[error("the {0} image is malformed: {1}")]
    Malformed(&'static str, String),
}

/// Returns a copy of `input` without metadata. The pixel data is copied unchanged.
pub fn strip(kind: ImageKind, input: &[u8]) -> Result<Vec<u8>, StripError> {
    match kind {
        ImageKind::Png => strip_png(input),
        ImageKind::Jpeg => strip_jpeg(input),
        ImageKind::WebP => strip_webp(input),
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// PNG chunk types kept; everything else is dropped.
pub const PNG_KEPT: [&[u8; 4]; 8] = [
    b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"IDAT", b"IEND",
];

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn le32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn strip_png(input: &[u8]) -> Result<Vec<u8>, StripError> {
    const KIND: &str = "PNG";
    if !input.starts_with(PNG_SIGNATURE) {
        return Err(StripError::Malformed(KIND, "no PNG signature".into()));
    }
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut pos = PNG_SIGNATURE.len();
    let mut seen_idat = false;
    loop {
        let header = input
            .get(pos..pos + 8)
            .ok_or(StripError::Truncated(KIND, "it ends before its IEND chunk"))?;
        let len = be32(header) as usize;
        let kind: &[u8; 4] = header[4..8].try_into().expect("4 bytes");
        if pos == PNG_SIGNATURE.len() && kind != b"IHDR" {
            return Err(StripError::Malformed(
                KIND,
                "the first chunk is not IHDR".into(),
            ));
        }
        let end = pos
            .checked_add(12 + len)
            .filter(|&end| end <= input.len())
            .ok_or(StripError::Truncated(
                KIND,
                "a chunk runs past the end of the file",
            ))?;
        if PNG_KEPT.contains(&kind) {
            out.extend_from_slice(&input[pos..end]);
        }
        seen_idat |= kind == b"IDAT";
        pos = end;
        if kind == b"IEND" {
            break;
        }
    }
    if !seen_idat {
        return Err(StripError::Malformed(KIND, "it has no IDAT chunk".into()));
    }
    Ok(out)
}

const JPEG_APP0: u8 = 0xE0;
const JPEG_APP14: u8 = 0xEE;
const JPEG_COM: u8 = 0xFE;
const JPEG_SOS: u8 = 0xDA;
const JPEG_EOI: u8 = 0xD9;

fn is_rst(marker: u8) -> bool {
    (0xD0..=0xD7).contains(&marker)
}

fn strip_jpeg(input: &[u8]) -> Result<Vec<u8>, StripError> {
    const KIND: &str = "JPEG";
    const TRUNCATED: StripError = StripError::Truncated(KIND, "it ends before its EOI marker");
    if !input.starts_with(&[0xFF, 0xD8]) {
        return Err(StripError::Malformed(KIND, "no SOI marker".into()));
    }
    let mut out = Vec::with_capacity(input.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut pos = 2;
    let mut seen_scan = false;
    loop {
        if *input.get(pos).ok_or(TRUNCATED)? != 0xFF {
            return Err(StripError::Malformed(
                KIND,
                format!("expected a marker at byte {pos}"),
            ));
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *input.get(pos).ok_or(TRUNCATED)? == 0xFF {
            pos += 1;
        }
        let marker = input[pos];
        pos += 1;
        match marker {
            JPEG_EOI => {
                if !seen_scan {
                    return Err(StripError::Malformed(KIND, "it has no image scan".into()));
                }
                out.extend_from_slice(&[0xFF, JPEG_EOI]);
                // Whatever follows EOI is not part of this image.
                return Ok(out);
            }
            0x01 => out.extend_from_slice(&[0xFF, marker]),
            m if is_rst(m) => out.extend_from_slice(&[0xFF, marker]),
            0x00 | 0xD8 => {
                return Err(StripError::Malformed(
                    KIND,
                    format!("unexpected marker 0x{marker:02X} at byte {pos}"),
                ));
            }
            _ => {
                let len_bytes = input.get(pos..pos + 2).ok_or(TRUNCATED)?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                if len < 2 {
                    return Err(StripError::Malformed(
                        KIND,
                        format!("segment length {len} at byte {pos}"),
                    ));
                }
                let end = pos + len;
                let content = input.get(pos + 2..end).ok_or(TRUNCATED)?;
                match marker {
                    // JFIF: version, units and density only; the thumbnail is set to 0x0.
                    JPEG_APP0 if content.starts_with(b"JFIF\0") && content.len() >= 14 => {
                        out.extend_from_slice(&[0xFF, JPEG_APP0, 0, 16]);
                        out.extend_from_slice(&content[..12]);
                        out.extend_from_slice(&[0, 0]);
                    }
                    // Adobe: version, two flag words and the colour transform.
                    JPEG_APP14 if content.starts_with(b"Adobe") && content.len() >= 12 => {
                        out.extend_from_slice(&[0xFF, JPEG_APP14, 0, 14]);
                        out.extend_from_slice(&content[..12]);
                    }
                    0xE0..=0xEF | JPEG_COM => {}
                    _ => out.extend_from_slice(&input[pos - 2..end]),
                }
                pos = end;
                if marker == JPEG_SOS {
                    seen_scan = true;
                    let scan_end = entropy_end(input, pos).ok_or(TRUNCATED)?;
                    out.extend_from_slice(&input[pos..scan_end]);
                    pos = scan_end;
                }
            }
        }
    }
}

/// Where the entropy-coded data starting at `from` ends: the first 0xFF that is neither a
/// stuffed zero nor a restart marker. `None` when the file ends first.
fn entropy_end(input: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let ff = from + memchr::memchr(0xFF, &input[from..])?;
        let next = *input.get(ff + 1)?;
        if next == 0x00 || is_rst(next) {
            from = ff + 2;
        } else {
            return Some(ff);
        }
    }
}

const VP8X_ICC: u8 = 0x20;
const VP8X_EXIF: u8 = 0x08;
const VP8X_XMP: u8 = 0x04;
/// WebP chunks kept at the top level.
pub const WEBP_KEPT: [&[u8; 4]; 6] = [b"VP8X", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L"];
/// WebP chunks kept inside an `ANMF` frame.
const WEBP_FRAME_KEPT: [&[u8; 4]; 3] = [b"ALPH", b"VP8 ", b"VP8L"];

/// One RIFF chunk: its id, payload range, and the end of the chunk including its pad byte.
struct RiffChunk<'a> {
    id: &'a [u8; 4],
    payload: std::ops::Range<usize>,
    end: usize,
}

fn riff_chunks(
    input: &[u8],
    mut pos: usize,
    limit: usize,
) -> impl Iterator<Item = Result<RiffChunk<'_>, StripError>> {
    std::iter::from_fn(move || {
        if pos >= limit {
            return None;
        }
        let Some(header) = input.get(pos..pos + 8).filter(|_| pos + 8 <= limit) else {
            pos = limit;
            return Some(Err(StripError::Truncated(
                "WebP",
                "a chunk header runs past its container",
            )));
        };
        let size = le32(&header[4..8]) as usize;
        let payload = pos + 8..pos + 8 + size;
        if payload.end > limit {
            pos = limit;
            return Some(Err(StripError::Truncated(
                "WebP",
                "a chunk runs past its container",
            )));
        }
        // The pad byte after an odd-sized chunk may be missing at the very end.
        let end = (payload.end + (size & 1)).min(limit);
        let chunk = RiffChunk {
            id: header[..4].try_into().expect("4 bytes"),
            payload,
            end,
        };
        pos = end;
        Some(Ok(chunk))
    })
}

fn strip_webp(input: &[u8]) -> Result<Vec<u8>, StripError> {
    const KIND: &str = "WebP";
    if input.len() < 12 || &input[..4] != b"RIFF" || &input[8..12] != b"WEBP" {
        return Err(StripError::Malformed(KIND, "no RIFF/WEBP header".into()));
    }
    let riff_end = 8usize
        .checked_add(le32(&input[4..8]) as usize)
        .filter(|&end| end <= input.len())
        .ok_or(StripError::Truncated(
            KIND,
            "the file is shorter than its RIFF header says",
        ))?;
    let mut out = Vec::with_capacity(riff_end);
    out.extend_from_slice(&input[..12]);
    let mut vp8x_flags_at = None;
    let mut has_bitstream = false;
    for chunk in riff_chunks(input, 12, riff_end) {
        let chunk = chunk?;
        if !WEBP_KEPT.contains(&chunk.id) {
            continue;
        }
        let start = chunk.payload.start - 8;
        match chunk.id {
            b"VP8X" => {
                if chunk.payload.len() < 10 {
                    return Err(StripError::Malformed(
                        KIND,
                        "VP8X chunk shorter than 10 bytes".into(),
                    ));
                }
                vp8x_flags_at = Some(out.len() + 8);
                out.extend_from_slice(&input[start..chunk.end]);
            }
            b"ANMF" => {
                if chunk.payload.len() < 16 {
                    return Err(StripError::Malformed(
                        KIND,
                        "ANMF chunk shorter than 16 bytes".into(),
                    ));
                }
                let frame_at = out.len();
                out.extend_from_slice(&input[start..chunk.payload.start + 16]);
                for sub in riff_chunks(input, chunk.payload.start + 16, chunk.payload.end) {
                    let sub = sub?;
                    if WEBP_FRAME_KEPT.contains(&sub.id) {
                        has_bitstream |= sub.id != b"ALPH";
                        out.extend_from_slice(&input[sub.payload.start - 8..sub.end]);
                    }
                }
                let frame_size = (out.len() - frame_at - 8) as u32;
                out[frame_at + 4..frame_at + 8].copy_from_slice(&frame_size.to_le_bytes());
            }
            id => {
                has_bitstream |= id == b"VP8 " || id == b"VP8L";
                out.extend_from_slice(&input[start..chunk.end]);
                // A chunk whose pad byte was missing at the end of the file gets one back.
                if chunk.end - chunk.payload.end < chunk.payload.len() & 1 {
                    out.push(0);
                }
            }
        }
    }
    if !has_bitstream {
        return Err(StripError::Malformed(
            KIND,
            "it has no VP8/VP8L image data".into(),
        ));
    }
    if let Some(at) = vp8x_flags_at {
        out[at] &= !(VP8X_ICC | VP8X_EXIF | VP8X_XMP);
    }
    let riff_size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0, 0, 0, 0]); // CRC is not checked by the walker
        out
    }

    #[test]
    fn png_keeps_only_the_allow_list_and_drops_trailing_bytes() {
        let mut png = PNG_SIGNATURE.to_vec();
        for (kind, data) in [
            (b"IHDR", &[0u8; 13][..]),
            (b"tEXt", b"Author\0someone"),
            (b"gAMA", &[0, 0, 177, 143]),
            (b"eXIf", b"MM\0*"),
            (b"IDAT", b"pixels"),
            (b"tIME", &[0; 7]),
            (b"IEND", b""),
        ] {
            png.extend(png_chunk(kind, data));
        }
        png.extend_from_slice(b"trailing secret");
        let out = strip_png(&png).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("IHDR")
                && text.contains("gAMA")
                && text.contains("IDAT")
                && text.ends_with("IEND\0\0\0\0")
        );
        for gone in ["tEXt", "someone", "eXIf", "tIME", "trailing"] {
            assert!(!text.contains(gone), "{gone} survived");
        }
    }

    #[test]
    fn png_without_iend_is_truncated() {
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend(png_chunk(b"IHDR", &[0; 13]));
        png.extend(png_chunk(b"IDAT", b"x"));
        assert!(matches!(strip_png(&png), Err(StripError::Truncated(..))));
        png.truncate(png.len() - 3);
        assert!(matches!(strip_png(&png), Err(StripError::Truncated(..))));
    }

    #[test]
    fn jpeg_drops_app_segments_comments_and_trailers_but_keeps_scans() {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend([0xFF, 0xE0, 0, 19]);
        jpeg.extend(b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\x01\x01abc"); // 1x1 thumbnail "abc"
        jpeg.extend([0xFF, 0xE1, 0, 10]);
        jpeg.extend(b"Exif\0\0GP");
        jpeg.extend([0xFF, 0xDB, 0, 4, 7, 7]);
        jpeg.extend([0xFF, 0xDA, 0, 3, 1]);
        jpeg.extend([1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]);
        jpeg.extend([0xFF, 0xFE, 0, 6]);
        jpeg.extend(b"note");
        jpeg.extend([0xFF, 0xDA, 0, 3, 2, 5, 6]);
        jpeg.extend([0xFF, 0xFF, 0xD9]);
        jpeg.extend(b"motion photo video");
        let out = strip_jpeg(&jpeg).unwrap();
        let mut expected = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        expected.extend(b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\0\0");
        expected.extend([0xFF, 0xDB, 0, 4, 7, 7]);
        expected.extend([0xFF, 0xDA, 0, 3, 1, 1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]);
        expected.extend([0xFF, 0xDA, 0, 3, 2, 5, 6, 0xFF, 0xD9]);
        assert_eq!(out, expected);
    }

    #[test]
    fn jpeg_without_eoi_is_truncated() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xDA, 0, 3, 1, 9, 9, 9];
        assert!(matches!(strip_jpeg(&jpeg), Err(StripError::Truncated(..))));
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

    #[test]
    fn webp_drops_metadata_chunks_and_clears_their_flags() {
        let mut body = b"WEBP".to_vec();
        body.extend(riff_chunk(
            b"VP8X",
            &[
                VP8X_ICC | VP8X_EXIF | VP8X_XMP | 0x10,
                0,
                0,
                0,
                1,
                0,
                0,
                1,
                0,
                0,
            ],
        ));
        body.extend(riff_chunk(b"ICCP", b"profile"));
        body.extend(riff_chunk(b"ALPH", b"a"));
        body.extend(riff_chunk(b"VP8L", b"bits"));
        body.extend(riff_chunk(b"EXIF", b"gps!"));
        body.extend(riff_chunk(b"XMP ", b"<x:xmpmeta/>"));
        let mut webp = b"RIFF".to_vec();
        webp.extend((body.len() as u32).to_le_bytes());
        webp.extend(body);
        webp.extend(b"junk after the RIFF");
        let out = strip_webp(&webp).unwrap();
        assert_eq!(le32(&out[4..8]) as usize, out.len() - 8);
        assert_eq!(out[20], 0x10, "only the alpha flag remains");
        let text = String::from_utf8_lossy(&out);
        for gone in ["ICCP", "EXIF", "XMP", "gps", "junk"] {
            assert!(!text.contains(gone), "{gone} survived");
        }
        assert!(text.contains("ALPH") && text.contains("bits"));
    }

    #[test]
    fn webp_frames_keep_only_their_bitstreams() {
        let mut frame = vec![0u8; 16];
        frame.extend(riff_chunk(b"VP8L", b"fr"));
        frame.extend(riff_chunk(b"EXIF", b"hidden"));
        let mut body = b"WEBP".to_vec();
        body.extend(riff_chunk(b"VP8X", &[0x02, 0, 0, 0, 1, 0, 0, 1, 0, 0]));
        body.extend(riff_chunk(b"ANIM", &[0; 6]));
        body.extend(riff_chunk(b"ANMF", &frame));
        let mut webp = b"RIFF".to_vec();
        webp.extend((body.len() as u32).to_le_bytes());
        webp.extend(body);
        let out = strip_webp(&webp).unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("hidden"));
        let anmf = out.windows(4).position(|w| w == b"ANMF").unwrap();
        assert_eq!(le32(&out[anmf + 4..anmf + 8]), 16 + 8 + 2);
        assert_eq!(le32(&out[4..8]) as usize, out.len() - 8);
    }
}
