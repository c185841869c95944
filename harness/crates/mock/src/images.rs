//! Image handling shared by both mocks: fresh output images, input checks, base64 and data-URL decoding.

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder as _, ImageFormat, ImageReader};

/// A fresh `side` x `side` PNG of random pixels: every answer carries a different image, so a copy
/// of one is attributable to exactly one answer. Random pixels do not compress, so the encoder's
/// fastest setting costs no size and keeps a 1024 x 1024 answer cheap.
pub fn random_png(side: u32) -> Vec<u8> {
    let mut pixels = vec![0u8; (side * side * 3) as usize];
    rand::fill(&mut pixels[..]);
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter)
        .write_image(&pixels, side, side, ExtendedColorType::Rgb8)
        .expect("encoding a PNG into memory cannot fail");
    out
}

/// A fresh `side` x `side` JPEG of random pixels, for an answer that asks for `image/jpeg`.
pub fn random_jpeg(side: u32) -> Vec<u8> {
    let mut pixels = vec![0u8; (side * side * 3) as usize];
    rand::fill(&mut pixels[..]);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(&pixels, side, side, ExtendedColorType::Rgb8)
        .expect("encoding a JPEG into memory cannot fail");
    out
}

/// The container a byte string is, by its magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Png,
    Jpeg,
    Webp,
    Gif,
    Other,
}

pub fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Sniffed::Png
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Sniffed::Jpeg
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Sniffed::Webp
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Sniffed::Gif
    } else {
        Sniffed::Other
    }
}

/// Whether bytes look like an image worth recording (any known container).
pub fn looks_like_image(bytes: &[u8]) -> bool {
    sniff(bytes) != Sniffed::Other
}

/// Decodes the whole image, as the real services do before generating: a truncated or corrupt file
/// fails here even when its header is fine. Returns the dimensions.
pub fn decode_dimensions(bytes: &[u8]) -> Result<(u32, u32), String> {
    let format = match sniff(bytes) {
        Sniffed::Png => ImageFormat::Png,
        Sniffed::Jpeg => ImageFormat::Jpeg,
        Sniffed::Webp => ImageFormat::WebP,
        Sniffed::Gif => return Err("GIF input is not decoded by this mock".to_owned()),
        Sniffed::Other => return Err("not a PNG, JPEG or WebP file".to_owned()),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image::Limits::default());
    let img = reader.decode().map_err(|e| e.to_string())?;
    Ok((img.width(), img.height()))
}

/// Base64 as the providers accept it: standard or URL-safe alphabet, padding optional, whitespace ignored.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD_PAD_INDIFFERENT
        .decode(&compact)
        .or_else(|_| URL_SAFE_PAD_INDIFFERENT.decode(&compact))
        .ok()
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `data:` URL split into its media type and decoded bytes; None for other URLs or bad base64.
pub fn decode_data_url(url: &str) -> Option<(String, Vec<u8>)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.split(';').next().unwrap_or("").to_ascii_lowercase();
    if !meta.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some((mime, decode_base64(data)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_pngs_decode_and_differ() {
        for side in [64, 1024] {
            let a = random_png(side);
            let b = random_png(side);
            assert_eq!(sniff(&a), Sniffed::Png);
            assert_eq!(decode_dimensions(&a).unwrap(), (side, side));
            assert_ne!(a, b);
            let j = random_jpeg(side);
            assert_eq!(sniff(&j), Sniffed::Jpeg);
            assert_eq!(decode_dimensions(&j).unwrap(), (side, side));
            // Random pixels do not compress: about 3 bytes a pixel, as a real photo-like answer.
            assert!(
                a.len() as u32 >= side * side * 3,
                "{side}: {} bytes",
                a.len()
            );
        }
    }

    #[test]
    fn truncated_png_fails_to_decode() {
        let a = random_png(64);
        assert!(decode_dimensions(&a[..a.len() / 2]).is_err());
    }

    #[test]
    fn data_urls_and_base64_variants() {
        let png = random_png(64);
        let url = format!("data:image/png;base64,{}", encode_base64(&png));
        assert_eq!(
            decode_data_url(&url),
            Some(("image/png".to_owned(), png.clone()))
        );
        let urlsafe = URL_SAFE_PAD_INDIFFERENT.encode(&png);
        assert_eq!(decode_base64(&urlsafe), Some(png));
        assert_eq!(decode_data_url("https://example.invalid/a.png"), None);
        assert_eq!(decode_base64("not base64 !!"), None);
    }
}
