//! Perceptual hashes: a resized or re-encoded copy of an image needle is still recognised.

use image_hasher::{HashAlg, Hasher, HasherConfig, ImageHash};

/// Hash side in cells (horizontal and vertical gradients).
const HASH_SIDE: u32 = 16;
/// Largest Hamming distance still called the same image. Measured on 256x192 canaries: JPEG thumbnails down to
/// 32x24 stay at 0..=8; unrelated canaries sit at 42 and above (`tests/scan.rs` checks both sides).
pub const MAX_DISTANCE: u32 = 20;

pub(crate) fn hasher() -> Hasher {
    HasherConfig::new()
        .hash_size(HASH_SIDE, HASH_SIDE)
        .hash_alg(HashAlg::DoubleGradient)
        .to_hasher()
}

/// Decodes any PNG/JPEG/WebP file and hashes it; `None` when it does not decode.
pub(crate) fn hash_file(bytes: &[u8]) -> Option<ImageHash> {
    let img = image::load_from_memory(bytes).ok()?;
    Some(hasher().hash_image(&img))
}
