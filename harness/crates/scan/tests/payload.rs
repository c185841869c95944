//! Only coded pixels identify an image: headers and encoder tables shared by every file of a
//! format are never reported, while any copy of the coded data still is.

use traceless_scan::canary::{ImageFormat, ImageSpec, generate_image};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

fn check(format: ImageFormat) {
    let mut rng = rand::rng();
    let spec = ImageSpec {
        format,
        width: 96,
        height: 64,
        metadata: false,
    };
    let img = generate_image(&spec, &mut rng).unwrap();
    let id = NeedleId {
        request: 1,
        subject: Subject::Image,
    };
    let mut scanner = Scanner::new();
    scanner.add_image(id, &img.bytes);
    // Another file from the same encoder shares its headers and tables, not its coded pixels.
    let other = generate_image(&spec, &mut rng).unwrap();
    assert!(
        scanner.scan(&other.bytes).iter().all(|h| h.needle != id),
        "{format:?}: a sibling file matched"
    );
    let tail = &img.bytes[img.bytes.len() - 200..];
    let hits = scanner.scan(tail);
    assert!(
        hits.iter()
            .any(|h| h.needle == id && h.source_offset >= (img.bytes.len() - 200) as u64),
        "{format:?}: {hits:?}"
    );
}

#[test]
fn png_jpeg_and_webp_match_on_coded_data_only() {
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp] {
        check(format);
    }
}
