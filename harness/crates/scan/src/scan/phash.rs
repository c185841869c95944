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
pub(crate) fn hash_file(bytes: &[u8]) -> Option<Packed> {
    let img = image::load_from_memory(bytes).ok()?;
    Some(Packed::of(&hasher().hash_image(&img)))
}

/// A hash's bits packed in words: every image of a long run is compared with each image a
/// provider call carries, so a comparison is a few XORs and popcounts, not a walk over a bit
/// vector (which made attribution grow slower with the run's length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed(Box<[u64]>);

impl Packed {
    pub(crate) fn of(hash: &ImageHash) -> Packed {
        Packed(
            hash.as_bytes()
                .chunks(8)
                .map(|chunk| {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    u64::from_le_bytes(word)
                })
                .collect(),
        )
    }

    /// The Hamming distance, as [`ImageHash::dist`] counts it.
    pub(crate) fn distance(&self, other: &Packed) -> u32 {
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::{ImageFormat, ImageSpec, generate_image};
    use rand::SeedableRng as _;

    #[test]
    fn packed_distances_are_the_hashes_own() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let hashes: Vec<ImageHash> = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp]
            .into_iter()
            .flat_map(|format| [(format, 64, 48), (format, 33, 17)])
            .map(|(format, width, height)| {
                let spec = ImageSpec {
                    format,
                    width,
                    height,
                    metadata: false,
                };
                let bytes = generate_image(&spec, &mut rng).unwrap().bytes;
                hasher().hash_image(&image::load_from_memory(&bytes).unwrap())
            })
            .collect();
        for a in &hashes {
            for b in &hashes {
                assert_eq!(Packed::of(a).distance(&Packed::of(b)), a.dist(b));
            }
        }
        assert!(hashes.windows(2).any(|w| w[0].dist(&w[1]) > 0));
    }
}
