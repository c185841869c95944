//! Canaries and the scanner that finds them: the evidence engine of a Traceless audit.
//!
//! Every request an audit sends carries things that must never be kept: a fresh image of random content (with
//! EXIF GPS, camera and a marker when metadata is on, see [`canary`]), a device id, a forwarded-for address and a
//! prompt marker. Whatever the pipeline under audit writes, logs, sends or keeps in memory is handed to a
//! [`scan::Scanner`], which knows every canary of the audit and finds them in any form a leak takes: raw bytes,
//! base64 (standard or URL-safe, any alignment, wrapped at any width), hex, percent-encoding, JSON strings,
//! decoded pixel rows, or a resized and re-encoded copy of the image (perceptual hash).
//!
//! The scanner is built for volume: a gigabyte of logs or process memory is scanned on one core in well under a
//! second, with a thousand image patterns loaded, because it never runs an automaton over long patterns. It
//! probes a sampled gram index every 8 bytes and decodes only the runs of text that look encoded (see
//! [`scan`]). Any copy of [`scan::MIN_COPY`] consecutive bytes of an image is found; shorter fragments are not
//! evidence.
//!
//! The crate knows nothing of monitors, mocks or reports: it turns bytes into [`scan::Hit`]s.

pub mod canary;
pub mod scan;

/// Every copy of `image` (an image file) found in `file`: the scanner on its own, for `traceless scan --image`.
pub fn scan_file_for_image(image: &[u8], file: &[u8]) -> Vec<scan::Hit> {
    let mut scanner = scan::Scanner::new();
    scanner.add_image(
        scan::NeedleId {
            request: 0,
            subject: scan::Subject::Image,
        },
        image,
    );
    scanner.scan(file)
}
