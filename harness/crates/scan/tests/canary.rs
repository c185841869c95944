//! Canary images decode, carry real metadata in their container, and differ on every call.

use exif::{In, Tag, Value};
use rand::SeedableRng;
use rand::rngs::StdRng;
use traceless_scan::canary::{ImageFormat, ImageSpec, from_photo, generate_image, personal};

const FORMATS: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];

fn spec(format: ImageFormat, metadata: bool) -> ImageSpec {
    ImageSpec {
        format,
        width: 96,
        height: 64,
        metadata,
    }
}

fn exif_of(bytes: &[u8]) -> exif::Exif {
    exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(bytes))
        .expect("EXIF block readable")
}

fn ascii(exif: &exif::Exif, tag: Tag) -> String {
    match &exif
        .get_field(tag, In::PRIMARY)
        .unwrap_or_else(|| panic!("{tag} present"))
        .value
    {
        Value::Ascii(v) => String::from_utf8(v[0].clone()).unwrap(),
        other => panic!("{tag} is {other:?}"),
    }
}

fn degrees(exif: &exif::Exif, tag: Tag, reference: Tag, negative: &str) -> f64 {
    let Value::Rational(v) = &exif.get_field(tag, In::PRIMARY).expect("GPS field").value else {
        panic!()
    };
    let d = v[0].to_f64() + v[1].to_f64() / 60.0 + v[2].to_f64() / 3600.0;
    if ascii(exif, reference) == negative {
        -d
    } else {
        d
    }
}

#[test]
fn every_format_decodes_at_its_size_with_its_mime() {
    let mut rng = StdRng::seed_from_u64(1);
    for format in FORMATS {
        for metadata in [false, true] {
            let c = generate_image(&spec(format, metadata), &mut rng).unwrap();
            let img =
                image::load_from_memory(&c.bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((img.width(), img.height()), (96, 64));
            assert_eq!(ImageFormat::detect(&c.bytes), Some(format));
            assert_eq!(c.metadata_marker.is_some(), metadata);
        }
    }
    assert_eq!(ImageFormat::Webp.mime(), "image/webp");
    assert_eq!(ImageFormat::Jpeg.extension(), "jpg");
}

#[test]
fn metadata_is_real_exif_with_gps_camera_and_marker() {
    let mut rng = StdRng::seed_from_u64(2);
    for format in FORMATS {
        let c = generate_image(&spec(format, true), &mut rng).unwrap();
        let marker = c.metadata_marker.clone().unwrap();
        let exif = exif_of(&c.bytes);
        assert_eq!(ascii(&exif, Tag::Make), "Traceless Canary", "{format:?}");
        assert!(ascii(&exif, Tag::Model).starts_with("TLC-"));
        assert_eq!(ascii(&exif, Tag::ImageDescription), marker);
        let comment = exif
            .get_field(Tag::UserComment, In::PRIMARY)
            .expect("UserComment");
        let Value::Undefined(raw, _) = &comment.value else {
            panic!("UserComment type")
        };
        assert!(raw.ends_with(marker.as_bytes()));
        let (lat, lon) = c.gps.unwrap();
        assert!(
            (degrees(&exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, "S") - lat).abs() < 1e-6,
            "{format:?}"
        );
        assert!((degrees(&exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, "W") - lon).abs() < 1e-6);
        // The marker also sits in the format's own text metadata (tEXt, XMP, COM).
        let occurrences = c
            .bytes
            .windows(marker.len())
            .filter(|w| *w == marker.as_bytes())
            .count();
        assert!(
            occurrences >= 3,
            "{format:?}: marker found {occurrences} times"
        );
    }
}

#[test]
fn containers_are_well_formed() {
    let mut rng = StdRng::seed_from_u64(3);
    let png = generate_image(&spec(ImageFormat::Png, true), &mut rng)
        .unwrap()
        .bytes;
    let chunks: Vec<[u8; 4]> = img_parts::png::Png::from_bytes(png.into())
        .unwrap()
        .chunks()
        .iter()
        .map(|c| c.kind())
        .collect();
    assert_eq!(&chunks[..3], &[*b"IHDR", *b"eXIf", *b"tEXt"]);

    let webp = generate_image(&spec(ImageFormat::Webp, true), &mut rng)
        .unwrap()
        .bytes;
    assert_eq!(
        u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize,
        webp.len() - 8,
        "RIFF size"
    );
    assert_eq!(&webp[12..16], b"VP8X");
    assert_eq!(webp[20] & 0b1100, 0b1100, "EXIF and XMP flags");
    let ids: Vec<[u8; 4]> = img_parts::webp::WebP::from_bytes(webp.into())
        .unwrap()
        .chunks()
        .iter()
        .map(|c| c.id())
        .collect();
    assert_eq!(ids, [*b"VP8X", *b"VP8L", *b"EXIF", *b"XMP "]);

    let jpeg = generate_image(&spec(ImageFormat::Jpeg, true), &mut rng)
        .unwrap()
        .bytes;
    let markers: Vec<u8> = img_parts::jpeg::Jpeg::from_bytes(jpeg.into())
        .unwrap()
        .segments()
        .iter()
        .map(|s| s.marker())
        .collect();
    let app1 = markers.iter().filter(|&&m| m == 0xE1).count();
    assert_eq!(app1, 2, "EXIF and XMP APP1 segments: {markers:x?}");
    assert!(markers.contains(&0xFE), "COM segment");
}

#[test]
fn every_call_is_fresh_and_high_entropy() {
    let mut rng = StdRng::seed_from_u64(4);
    for format in FORMATS {
        let a = generate_image(&spec(format, true), &mut rng).unwrap();
        let b = generate_image(&spec(format, true), &mut rng).unwrap();
        assert_ne!(a.bytes, b.bytes);
        assert_ne!(a.metadata_marker, b.metadata_marker);
        // Container headers and metadata layout are shared; the image data is not.
        let blocks = a.bytes.len() / 16;
        let shared = a
            .bytes
            .chunks_exact(16)
            .filter(|w| b.bytes.windows(16).any(|x| x == *w))
            .count();
        assert!(
            shared * 4 < blocks,
            "{format:?}: {shared} of {blocks} 16-byte blocks shared"
        );
    }
}

#[test]
fn from_photo_keeps_pixels_and_injects_fresh_metadata() {
    let mut rng = StdRng::seed_from_u64(5);
    for format in FORMATS {
        let photo = generate_image(&spec(format, true), &mut rng).unwrap();
        let again = from_photo(&photo.bytes, true, &mut rng).unwrap();
        assert_eq!(again.format, format);
        assert_eq!((again.width, again.height), (96, 64));
        assert_ne!(again.metadata_marker, photo.metadata_marker);
        let before = image::load_from_memory(&photo.bytes).unwrap();
        let after = image::load_from_memory(&again.bytes).unwrap();
        assert_eq!(
            before.as_bytes(),
            after.as_bytes(),
            "{format:?}: pixels changed"
        );
        assert_eq!(
            ascii(&exif_of(&again.bytes), Tag::ImageDescription),
            again.metadata_marker.unwrap()
        );
        let untouched = from_photo(&photo.bytes, false, &mut rng).unwrap();
        assert_eq!(untouched.bytes, photo.bytes);
    }
    assert!(from_photo(b"not an image at all", true, &mut rng).is_err());
}

#[test]
fn personal_canaries_have_their_shapes() {
    let mut rng = StdRng::seed_from_u64(6);
    let p = personal(&mut rng);
    let q = personal(&mut rng);
    assert_ne!(p, q);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(
        hex(p.device_id.strip_prefix("tl-dev-").unwrap(), 16),
        "{}",
        p.device_id
    );
    assert!(
        hex(p.prompt_marker.strip_prefix("tlp-").unwrap(), 12),
        "{}",
        p.prompt_marker
    );
    let ip: std::net::Ipv4Addr = p.forwarded_for.parse().unwrap();
    assert!(ip.is_loopback());
}
