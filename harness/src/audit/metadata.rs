//! Metadata blocks in an image: what the personal-data check needs to know of each image a
//! provider call carried, derived when the call is kept (its bytes are not kept).

use img_parts::Bytes;
use img_parts::png::Png;
use img_parts::webp::WebP;

/// The kind of metadata block an image still carries, if any (EXIF, XMP, PNG text chunks).
///
/// Chunk types are read from the container's structure, never searched for in the bytes: four bytes such as
/// `tEXt` occur by chance in about one random-content image in ten thousand, and an audit sends hundreds.
/// Signatures of six bytes or more are searched anywhere, so a block outside the parsed structure (after a
/// JPEG's first scan, after PNG's IEND) is still seen.
pub fn metadata_block(image: &[u8]) -> Option<&'static str> {
    let has = |needle: &[u8]| memchr::memmem::find(image, needle).is_some();
    if has(b"Exif\0\0") {
        return Some("EXIF");
    }
    if has(b"<x:xmpmeta") || has(b"http://ns.adobe.com/xap/1.0/") {
        return Some("XMP");
    }
    let bytes = || Bytes::copy_from_slice(image);
    if image.starts_with(b"\x89PNG") {
        let png = Png::from_bytes(bytes()).ok()?;
        return png.chunks().iter().find_map(|c| match &c.kind() {
            b"eXIf" => Some("EXIF"),
            b"tEXt" | b"iTXt" | b"zTXt" => Some("PNG text"),
            _ => None,
        });
    }
    if image.starts_with(b"RIFF") {
        let webp = WebP::from_bytes(bytes()).ok()?;
        return webp.chunks().iter().find_map(|c| match &c.id() {
            b"EXIF" => Some("EXIF"),
            b"XMP " => Some("XMP"),
            _ => None,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::metadata_block;
    use img_parts::png::{Png, PngChunk};
    use img_parts::riff::{RiffChunk, RiffContent};
    use img_parts::webp::WebP;
    use img_parts::{Bytes, ImageEXIF};

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let pixels = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let img = image::RgbImage::from_raw(64, 48, pixels).unwrap();
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A TIFF header with no `Exif\0\0` prefix: what PNG's eXIf and WebP's EXIF chunks hold.
    const TIFF: &[u8] = b"MM\0*\0\0\0\x08\0\0";

    fn png_with(kind: &[u8; 4], contents: &[u8]) -> Vec<u8> {
        let mut png = Png::from_bytes(encoded(image::ImageFormat::Png).into()).unwrap();
        let at = png.chunks().len() - 1;
        png.chunks_mut()
            .insert(at, PngChunk::new(*kind, Bytes::copy_from_slice(contents)));
        png.encoder().bytes().to_vec()
    }

    #[test]
    fn clean_images_carry_nothing() {
        for format in [
            image::ImageFormat::Png,
            image::ImageFormat::Jpeg,
            image::ImageFormat::WebP,
        ] {
            assert_eq!(metadata_block(&encoded(format)), None, "{format:?}");
        }
    }

    #[test]
    fn chunk_names_inside_image_data_are_not_metadata() {
        // The chunk names as bytes of compressed pixel data, inside IDAT, where a random image may have them.
        let mut data = vec![0u8; 4096];
        for (i, name) in [b"tEXt", b"iTXt", b"zTXt", b"eXIf"].iter().enumerate() {
            data[1000 * i + 17..1000 * i + 21].copy_from_slice(*name);
        }
        let png = png_with(b"IDAT", &data);
        assert!(png.windows(4).any(|w| w == b"tEXt"));
        assert_eq!(metadata_block(&png), None);
    }

    #[test]
    fn every_metadata_block_is_named() {
        assert_eq!(metadata_block(&png_with(b"eXIf", TIFF)), Some("EXIF"));
        assert_eq!(
            metadata_block(&png_with(b"tEXt", b"Author\0someone")),
            Some("PNG text")
        );
        assert_eq!(
            metadata_block(&png_with(b"zTXt", b"Comment\0\0x")),
            Some("PNG text")
        );
        let xmp = b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>";
        assert_eq!(metadata_block(&png_with(b"iTXt", xmp)), Some("XMP"));

        let mut jpeg =
            img_parts::jpeg::Jpeg::from_bytes(encoded(image::ImageFormat::Jpeg).into()).unwrap();
        jpeg.set_exif(Some(Bytes::copy_from_slice(TIFF)));
        assert_eq!(
            metadata_block(&jpeg.encoder().bytes()),
            Some("EXIF"),
            "JPEG APP1"
        );

        for (id, want) in [(*b"EXIF", "EXIF"), (*b"XMP ", "XMP")] {
            let mut webp = WebP::from_bytes(encoded(image::ImageFormat::WebP).into()).unwrap();
            let chunk = RiffChunk::new(id, RiffContent::Data(Bytes::copy_from_slice(TIFF)));
            webp.chunks_mut().push(chunk);
            assert_eq!(metadata_block(&webp.encoder().bytes()), Some(want));
        }
    }

    #[test]
    fn a_block_after_the_image_is_still_seen() {
        let mut png = encoded(image::ImageFormat::Png);
        png.extend_from_slice(b"Exif\0\0MM\0*");
        assert_eq!(metadata_block(&png), Some("EXIF"));
    }
}
