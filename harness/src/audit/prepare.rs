//! Turns a scenario's request spec into a concrete payload with fresh canaries, and registers
//! every canary with the scanner before anything is sent.

use rand::RngExt as _;
use traceless_scan::canary::{self, ImageFormat};
use traceless_scan::scan::{NeedleId, RequestId, Scanner, Subject};

use super::client::{ExtraPart, Payload};
use crate::config::ExtraImage;
use crate::scenario::{ImageSource, PromptSpec, RequestSpec};

pub struct Prepared {
    pub payload: Payload,
    pub had_metadata: bool,
    /// Whether the main image is a needle of its request (a canary, whole or truncated; never raw
    /// scenario bytes). It and every extra image are indexed by the caller, all the batch's
    /// images at once, before any is sent (see [`Prepared::images`]).
    pub image_is_needle: bool,
}

impl Prepared {
    /// The images of this request that are needles: the main one when it is a canary, and every
    /// extra image (another image of the same request: found anywhere, it is this request's).
    pub fn images(&self, id: RequestId) -> impl Iterator<Item = (NeedleId, &[u8])> {
        let needle = NeedleId {
            request: id,
            subject: Subject::Image,
        };
        self.image_is_needle
            .then_some(self.payload.image.as_slice())
            .into_iter()
            .chain(self.payload.extra_images.iter().map(|e| e.bytes.as_slice()))
            .map(move |bytes| (needle, bytes))
    }
}

pub fn prepare(
    id: RequestId,
    spec: &RequestSpec,
    extra_images: &[ExtraImage],
    rng: &mut impl rand::Rng,
    scanner: &mut Scanner,
) -> anyhow::Result<Prepared> {
    let personal = canary::personal(rng);
    let (mut bytes, format, metadata_marker) = match &spec.image.source {
        ImageSource::Generate {
            format,
            width,
            height,
        } => {
            let img = canary::generate_image(
                &canary::ImageSpec {
                    format: *format,
                    width: *width,
                    height: *height,
                    metadata: spec.image.metadata,
                },
                rng,
            )?;
            (img.bytes, Some(*format), img.metadata_marker)
        }
        ImageSource::Fixture(path) => {
            let raw = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("fixture {}: {e}", path.display()))?;
            let img = canary::from_photo(&raw, spec.image.metadata, rng)?;
            (img.bytes, Some(img.format), img.metadata_marker)
        }
        ImageSource::Raw(raw) => (raw.clone(), None, None),
    };
    if let Some(target) = spec.image.pad_to {
        pad_png(&mut bytes, target, rng);
    }
    if let Some(n) = spec.image.truncate {
        bytes.truncate(n);
    }
    let prompt = match &spec.prompt {
        PromptSpec::Text(t) => format!("{t} [{}]", personal.prompt_marker).into_bytes(),
        PromptSpec::Length(n) => {
            let mut p = personal.prompt_marker.clone();
            while p.len() < *n {
                p.push(char::from(b'a' + rng.random_range(0..26u8)));
            }
            p.truncate(*n);
            p.into_bytes()
        }
        PromptSpec::Bytes(b) => b.clone(),
        PromptSpec::Shared(t) => t.clone().into_bytes(),
    };
    if matches!(spec.prompt, PromptSpec::Text(_) | PromptSpec::Length(_))
        && prompt.len() >= personal.prompt_marker.len()
    {
        scanner.add_token(
            NeedleId {
                request: id,
                subject: Subject::Prompt,
            },
            &personal.prompt_marker,
        );
    }
    scanner.add_token(
        NeedleId {
            request: id,
            subject: Subject::DeviceId,
        },
        &personal.device_id,
    );
    scanner.add_token(
        NeedleId {
            request: id,
            subject: Subject::ForwardedFor,
        },
        &personal.forwarded_for,
    );
    if let Some(marker) = &metadata_marker {
        scanner.add_token(
            NeedleId {
                request: id,
                subject: Subject::Metadata,
            },
            marker,
        );
    }
    let mut extra = Vec::new();
    for part in extra_images {
        let img = canary::generate_image(
            &canary::ImageSpec {
                format: part.format,
                width: part.width,
                height: part.height,
                metadata: false,
            },
            rng,
        )?;
        extra.push(ExtraPart {
            field: part.field.clone(),
            image_as: part.image_as,
            mime: part.format.mime().to_owned(),
            filename: format!("{}.{}", part.field, part.format.extension()),
            bytes: img.bytes,
        });
    }
    // Only bytes specific to this request are its needles: of a canary image (whole or truncated),
    // the coded pixels, never the headers every file of its kind shares. Raw bytes from a scenario
    // file are the same in every request that sends them and say nothing about which one leaked.
    let image_is_needle = format.is_some();
    let format = format.unwrap_or(ImageFormat::Png);
    Ok(Prepared {
        payload: Payload {
            image_mime: spec
                .content_type
                .clone()
                .unwrap_or_else(|| format.mime().to_owned()),
            filename: format!("photo.{}", format.extension()),
            image: bytes,
            prompt,
            provider: spec.provider.clone(),
            age: spec.age,
            device_id: personal.device_id,
            forwarded_for: personal.forwarded_for,
            extra_images: extra,
        },
        had_metadata: metadata_marker.is_some(),
        image_is_needle,
    })
}

/// Grows a PNG to exactly `target` bytes with a private ancillary chunk before IEND, so the
/// image stays valid while its size sits just under or over a limit.
fn pad_png(bytes: &mut Vec<u8>, target: usize, rng: &mut impl rand::Rng) {
    const IEND: usize = 12;
    const CHUNK_OVERHEAD: usize = 12;
    if !bytes.starts_with(b"\x89PNG") || bytes.len() + CHUNK_OVERHEAD > target {
        bytes.resize(target.max(bytes.len()), 0);
        return;
    }
    let data_len = target - bytes.len() - CHUNK_OVERHEAD;
    let iend = bytes.split_off(bytes.len() - IEND);
    // Built in place: a 20 MB pad held in a chunk, then copied, peaked at four times its size.
    bytes.reserve_exact(data_len + CHUNK_OVERHEAD + IEND);
    let chunk = bytes.len();
    bytes.extend_from_slice(&(data_len as u32).to_be_bytes());
    bytes.extend_from_slice(b"tlPd");
    let data = bytes.len();
    bytes.resize(data + data_len, 0);
    rng.fill_bytes(&mut bytes[data..]);
    let crc = crc32fast::hash(&bytes[chunk + 4..]);
    bytes.extend_from_slice(&crc.to_be_bytes());
    bytes.extend_from_slice(&iend);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_keeps_a_png_valid_at_the_exact_size() {
        let mut rng = rand::rng();
        let img = canary::generate_image(
            &canary::ImageSpec {
                format: ImageFormat::Png,
                width: 8,
                height: 8,
                metadata: false,
            },
            &mut rng,
        )
        .unwrap();
        let mut bytes = img.bytes;
        pad_png(&mut bytes, 100_000, &mut rng);
        assert_eq!(bytes.len(), 100_000);
        let decoded = image::load_from_memory(&bytes).expect("padded PNG still decodes");
        assert_eq!(decoded.width(), 8);
    }
}
