//! Upload validation: which format the bytes are (by magic number, never by the client's word)
//! and how many pixels their header declares, read before anything could be decoded.
//!
//! The pipeline never decodes pixels; it only needs to know that the upload is a PNG, JPEG or
//! WebP and that a decoder downstream would not be asked for more than [`MAX_PIXELS`].
//! `image::ImageReader::into_dimensions` parses headers only, so a decompression bomb (a tiny
//! file declaring 100000x100000 pixels) is refused without its pixels ever being allocated.

use std::io::Cursor;

use crate::config::MAX_PIXELS;

/// The formats accepted for upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    WebP,
}

impl ImageKind {
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::WebP => "image/webp",
        }
    }

    /// A neutral file name for multipart uploads: the client's own file name is never forwarded.
    pub fn file_name(self) -> &'static str {
        match self {
            ImageKind::Png => "image.png",
            ImageKind::Jpeg => "image.jpg",
            ImageKind::WebP => "image.webp",
        }
    }

    /// Recognises a format from its first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageKind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageKind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(ImageKind::WebP)
        } else {
            None
        }
    }

    fn image_format(self) -> image::ImageFormat {
        match self {
            ImageKind::Png => image::ImageFormat::Png,
            ImageKind::Jpeg => image::ImageFormat::Jpeg,
            ImageKind::WebP => image::ImageFormat::WebP,
        }
    }
}

/// What the header of an accepted upload says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

/// Why an upload was not accepted as an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRejection {
    #[error("the upload is not a PNG, JPEG or WebP image (unrecognised file signature)")]
    UnsupportedType,
    #[error("the {kind} image is corrupt: {detail}")]
    Corrupt { kind: &'static str, detail: String },
    #[error(
        "the image declares {width}x{height} pixels ({megapixels} megapixels); the limit is {limit} megapixels"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        megapixels: u64,
        limit: u64,
    },
}

/// Checks format and declared dimensions without decoding any pixel data.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ImageRejection> {
    let kind = ImageKind::sniff(bytes).ok_or(ImageRejection::UnsupportedType)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), kind.image_format());
    // Our own pixel limit applies below, with a clearer message than the decoder's allocation limit.
    reader.no_limits();
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| ImageRejection::Corrupt {
            kind: kind.mime().trim_start_matches("image/"),
            detail: format!("its header cannot be read ({e})"),
        })?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(ImageRejection::TooManyPixels {
            width,
            height,
            megapixels: pixels.div_ceil(1_000_000),
            limit: MAX_PIXELS / 1_000_000,
        });
    }
    Ok(ImageInfo {
        kind,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn sniffs_each_format_by_magic() {
        assert_eq!(ImageKind::sniff(&png(2, 2)), Some(ImageKind::Png));
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8L"),
            Some(ImageKind::WebP)
        );
        assert_eq!(ImageKind::sniff(b"GIF89a"), None);
        assert_eq!(ImageKind::sniff(b"RIFF\0\0\0\0WAVE"), None);
    }

    #[test]
    fn reads_dimensions_and_refuses_what_is_not_an_image() {
        let info = inspect(&png(7, 3)).unwrap();
        assert_eq!((info.kind, info.width, info.height), (ImageKind::Png, 7, 3));
        assert_eq!(
            inspect(b"hello, world"),
            Err(ImageRejection::UnsupportedType)
        );
        assert!(matches!(
            inspect(&png(7, 3)[..20]),
            Err(ImageRejection::Corrupt { .. })
        ));
    }

    #[test]
    fn a_bomb_header_is_refused_by_its_declared_size() {
        let mut bomb = png(1, 1);
        // IHDR data starts at offset 16: width, height (big endian), then the CRC at 29..33.
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        let started = std::time::Instant::now();
        let err = inspect(&bomb).unwrap_err();
        assert!(
            matches!(
                err,
                ImageRejection::TooManyPixels {
                    width: 100_000,
                    height: 100_000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
