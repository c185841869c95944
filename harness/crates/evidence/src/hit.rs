//! Canary hits: which needle (a request's image, prompt marker, device id...) was found where, and
//! in which encoding. The scanner makes them; the checks read them.

use serde::{Deserialize, Serialize};

/// Smallest copy of an image or blob that counts as a hit, in source bytes. Any run of this many consecutive
/// bytes, in any supported encoding, is found (deterministically: the scanner's gram index guarantees it); shorter runs are never reported,
/// so 32 random bytes that happen to match are not evidence.
pub const MIN_COPY: usize = 64;
/// Longest match excerpt, in haystack bytes.
pub const EXCERPT_BYTES: usize = 48;

pub type RequestId = u32;

/// What a needle stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    Image,
    Prompt,
    DeviceId,
    ForwardedFor,
    Metadata,
    Output,
    ApiKey,
}

/// One needle: a request's image, prompt marker, device id...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NeedleId {
    pub request: RequestId,
    pub subject: Subject,
}

/// How the matched haystack bytes encode the needle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Raw,
    Base64,
    Base64Url,
    HexLower,
    HexUpper,
    Percent,
    /// Base64 inside percent-encoding (a base64 value in a URL query or form body).
    PercentBase64,
    JsonEscaped,
    /// The image's decoded pixels, raw.
    PixelRows,
}

/// Which bytes of the needle matched: the bytes as given, or the image's decoded pixel buffer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum SourceForm {
    #[default]
    Bytes,
    PixelRows,
}

/// A needle found in a haystack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Hit {
    pub needle: NeedleId,
    pub encoding: Encoding,
    /// Where in the haystack (stream offset for streams).
    pub offset: u64,
    /// Haystack bytes matched.
    pub len: u64,
    /// Where in the needle's source bytes (see `form`) the match starts.
    pub source_offset: u64,
    /// How many source bytes the match covers (for tokens: the token's length).
    pub source_len: u64,
    #[serde(default)]
    pub form: SourceForm,
}

impl Hit {
    /// Short, escaped view of the match: at most [`EXCERPT_BYTES`] haystack bytes, non-printable bytes as `\xNN`.
    /// `hay` is the buffer the offsets refer to; out-of-range parts are left out.
    pub fn excerpt(&self, hay: &[u8]) -> String {
        let start = (self.offset as usize).min(hay.len());
        let end = (self.offset.saturating_add(self.len) as usize)
            .min(hay.len())
            .min(start + EXCERPT_BYTES);
        let mut out = String::new();
        for &b in &hay[start..end] {
            match b {
                b'\\' => out.push_str("\\\\"),
                b' '..=b'~' => out.push(b as char),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        if (end as u64) < self.offset + self.len {
            out.push_str("...");
        }
        out
    }

    /// [`Hit::excerpt`] of a hit in a stream, from the chunk `hay` that starts at stream offset
    /// `hay_offset` and holds (the end of) it.
    pub fn excerpt_at(&self, hay: &[u8], hay_offset: u64) -> String {
        let mut local = self.clone();
        local.offset = self.offset.saturating_sub(hay_offset).min(hay.len() as u64);
        local.len = self.len.min(hay.len() as u64 - local.offset);
        local.excerpt(hay)
    }

    /// The offset just past the hit.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// An image file recognised by its perceptual hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageMatch {
    pub needle: NeedleId,
    /// Hamming distance between the perceptual hashes (0 = identical; the scanner's `MAX_IMAGE_DISTANCE` is the most that counts).
    pub distance: u32,
}
