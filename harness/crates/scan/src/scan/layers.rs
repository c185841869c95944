//! Text encodings undone: runs of base64, hex and percent-encoded text are found and decoded, so the one raw
//! copy index finds a needle in every encoding, every base64 alignment, wrapped or not.
//!
//! Why decode instead of indexing each encoded form: the encoded forms of 64 images in 16 encodings are ten times
//! the raw bytes, and a filter that large no longer fits in cache. Encoded runs are rare in logs (spaces, quotes
//! and punctuation break them), so finding them costs one table look-up per 8 haystack bytes, and decoding only
//! the runs is cheap. Each decoded byte keeps the haystack span of the characters it came from, so hits report
//! exact haystack offsets.

use std::rc::Rc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::Encoding;

/// Base64 alphabet (standard and URL-safe).
const B64: u8 = 1;
/// Hex digits, either case.
const HEX: u8 = 2;
/// What percent-encoded text may contain besides escapes: unreserved characters and those common encoders
/// leave alone (`encodeURIComponent` keeps `!*'()`), plus `=` padding.
const URL: u8 = 4;
/// Line breaks inside wrapped base64 (MIME, PEM: 76 or 64 columns, `\n` or `\r\n`).
const BRK: u8 = 8;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let alnum = c.is_ascii_alphanumeric();
        if alnum || c == b'+' || c == b'/' || c == b'-' || c == b'_' {
            t[b] |= B64 | URL;
        }
        if c.is_ascii_hexdigit() {
            t[b] |= HEX;
        }
        if matches!(
            c,
            b'%' | b'.' | b'~' | b'!' | b'*' | b'\'' | b'(' | b')' | b'='
        ) {
            t[b] |= URL;
        }
        if c == b'\n' || c == b'\r' {
            t[b] |= BRK;
        }
        b += 1;
    }
    t
};

/// A run shorter than this (line breaks not counted) cannot hold `MIN_COPY` encoded bytes.
pub(crate) const RUN_MIN: usize = super::MIN_COPY;
/// Base64 characters fully determined by 64 source bytes at the worst alignment.
const B64_MIN: usize = (super::MIN_COPY * 8 - 4) / 6;
/// Hex characters for 64 source bytes.
const HEX_MIN: usize = super::MIN_COPY * 2;
/// Runs are looked for by testing one 8-byte word in every `RUN_SAMPLE` bytes; any run of
/// `RUN_SAMPLE + 7` bytes or more contains a tested word.
const RUN_SAMPLE: usize = 56;
const _: () = assert!(RUN_SAMPLE + 7 <= RUN_MIN);

/// Where each decoded byte came from, relative to the decoded buffer's parent.
pub(crate) enum Origin {
    /// Explicit spans (percent-encoding, nested layers).
    Table { starts: Vec<u32>, ends: Vec<u32> },
    /// Base64 decoded from character `phase` of a run whose characters sit at `chars` (line breaks skipped), or
    /// at `start`, `start + 1`, ... when `chars` is `None` (no line breaks).
    Base64 {
        phase: usize,
        start: usize,
        chars: Option<Rc<[u32]>>,
    },
    /// Hex decoded from `start + phase`.
    Hex { start: usize, phase: usize },
}

/// Decoded text and where it came from.
pub(crate) struct Decoded {
    pub encoding: Encoding,
    pub bytes: Vec<u8>,
    pub origin: Origin,
}

impl Decoded {
    /// The parent range that decoded bytes `[d0, d1)` came from.
    pub fn parent_range(&self, d0: usize, d1: usize) -> (usize, usize) {
        match &self.origin {
            Origin::Table { starts, ends } => (starts[d0] as usize, ends[d1 - 1] as usize),
            Origin::Base64 {
                phase,
                start,
                chars,
            } => {
                // Byte i of a phase is bits of characters phase + 4*(i/3) + i%3 and the one after it.
                let first = |i: usize| phase + 4 * (i / 3) + i % 3;
                let at = |k: usize| chars.as_ref().map_or(start + k, |c| c[k] as usize);
                (at(first(d0)), at(first(d1 - 1) + 1) + 1)
            }
            Origin::Hex { start, phase } => (start + phase + 2 * d0, start + phase + 2 * d1),
        }
    }
}

const TEXTUAL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (CLASS[b] & (URL | BRK) != 0) as u8;
        b += 1;
    }
    t
};

/// Whether every byte of `w` is textual.
#[inline(always)]
fn word_is_textual(w: &[u8; 8]) -> bool {
    w.iter().fold(1u8, |acc, &b| acc & TEXTUAL[b as usize]) != 0
}

/// The end of the textual stretch starting at `from`, eight bytes at a time.
fn textual_end(buf: &[u8], mut from: usize) -> usize {
    while let Some(w) = buf.get(from..from + 8) {
        if !word_is_textual(w.try_into().expect("eight bytes")) {
            break;
        }
        from += 8;
    }
    while from < buf.len() && TEXTUAL[buf[from] as usize] != 0 {
        from += 1;
    }
    from
}

/// The start of the textual stretch ending at `to`, not before `floor`, eight bytes at a time.
fn textual_start(buf: &[u8], floor: usize, mut to: usize) -> usize {
    while to >= floor + 8 && word_is_textual(buf[to - 8..to].try_into().expect("eight bytes")) {
        to -= 8;
    }
    while to > floor && TEXTUAL[buf[to - 1] as usize] != 0 {
        to -= 1;
    }
    to
}

/// Half of what a run needs beyond one word.
const HALF: usize = (RUN_MIN - 8) / 2;
const _: () = assert!(8 + 2 * HALF == RUN_MIN);

/// Whether a run of [`RUN_MIN`] characters or more could hold the textual word at `p`: such a run
/// starts `HALF` bytes before it or earlier, or ends `HALF` bytes after it or later (else it would
/// be shorter), so the two words at the far ends of one of those stretches are textual too. In log
/// text most words are short and this rules them out with a word or two, where walking to both ends
/// of the stretch cost three times as much.
#[inline(always)]
fn may_be_long(buf: &[u8], p: usize) -> bool {
    let textual = |at: usize| {
        buf.get(at..at + 8)
            .is_some_and(|w| word_is_textual(w.try_into().expect("eight bytes")))
    };
    (textual(p + 8) && textual(p + HALF)) || (p >= HALF && textual(p - 8) && textual(p - HALF))
}

/// Every maximal run of encoded-looking text of at least `RUN_MIN` characters, as `[start, end)`.
pub(crate) fn find_runs(buf: &[u8], on_run: impl FnMut(usize, usize)) {
    RunFinder::default().advance(buf, buf.len(), on_run);
}

/// [`find_runs`] a piece of the buffer at a time.
#[derive(Default)]
pub(crate) struct RunFinder {
    /// Where the last run found ends: samples before it are inside it.
    covered_to: usize,
    /// The next sampled position.
    next: usize,
}

impl RunFinder {
    /// Reports the runs through every sample before `upto` (runs may extend past it).
    pub fn advance(&mut self, buf: &[u8], upto: usize, mut on_run: impl FnMut(usize, usize)) {
        let mut p = self.next;
        while p < upto && p + 8 <= buf.len() {
            if p >= self.covered_to
                && word_is_textual(buf[p..p + 8].try_into().expect("eight bytes"))
                && may_be_long(buf, p)
            {
                let start = textual_start(buf, self.covered_to, p);
                let end = textual_end(buf, p + 8);
                self.covered_to = end;
                if end - start >= RUN_MIN
                    && end - start - memchr::memchr2_iter(b'\n', b'\r', &buf[start..end]).count()
                        >= RUN_MIN
                {
                    on_run(start, end);
                }
            }
            p += RUN_SAMPLE;
        }
        self.next = p;
    }
}

fn b64_engine(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(alphabet, config)
}

/// Decodes one run (`buf[start..end]`) every way it could be encoded; `nested` allows one more layer inside
/// percent-encoding (base64 in a URL query).
pub(crate) fn decode_run(
    buf: &[u8],
    start: usize,
    end: usize,
    nested: bool,
    out: &mut Vec<Decoded>,
) {
    let run = &buf[start..end];
    if memchr::memchr(b'%', run).is_some()
        && let Some(pct) = percent_decode(run, start)
    {
        if nested {
            let mut inner = Vec::new();
            find_runs(&pct.bytes, |s, e| {
                decode_base64_runs(&pct.bytes, s, e, &mut inner)
            });
            for d in inner {
                let (starts, ends) = (0..d.bytes.len())
                    .map(|i| {
                        let (s, e) = d.parent_range(i, i + 1);
                        (
                            pct.parent_range(s, e).0 as u32,
                            pct.parent_range(s, e).1 as u32,
                        )
                    })
                    .unzip();
                out.push(Decoded {
                    encoding: Encoding::PercentBase64,
                    bytes: d.bytes,
                    origin: Origin::Table { starts, ends },
                });
            }
        }
        out.push(pct);
    }
    decode_base64_runs(buf, start, end, out);
    decode_hex_runs(buf, start, end, out);
}

/// Hand-rolled because the decoded bytes must keep the span of their escape, which `percent-encoding` does not
/// expose; the decoding itself is the trivial `%XX` rule.
fn percent_decode(run: &[u8], base: usize) -> Option<Decoded> {
    let (mut bytes, mut starts, mut ends) = (Vec::new(), Vec::new(), Vec::new());
    let mut escapes = 0;
    let mut i = 0;
    while i < run.len() {
        let hex_pair = run.get(i + 1..i + 3).and_then(|h| {
            let mut b = [0u8; 1];
            hex::decode_to_slice(h, &mut b).ok().map(|()| b[0])
        });
        match (run[i], hex_pair) {
            (b'%', Some(byte)) => {
                bytes.push(byte);
                starts.push((base + i) as u32);
                ends.push((base + i + 3) as u32);
                escapes += 1;
                i += 3;
            }
            (b, _) => {
                bytes.push(b);
                starts.push((base + i) as u32);
                ends.push((base + i + 1) as u32);
                i += 1;
            }
        }
    }
    (escapes > 0).then_some(Decoded {
        encoding: Encoding::Percent,
        bytes,
        origin: Origin::Table { starts, ends },
    })
}

/// Maximal sub-runs of the class `class` (optionally spanning line breaks) with at least `min` characters.
fn sub_runs(
    buf: &[u8],
    start: usize,
    end: usize,
    class: u8,
    min: usize,
    mut on: impl FnMut(usize, usize),
) {
    let mut i = start;
    while i < end {
        if CLASS[buf[i] as usize] & class == 0 {
            i += 1;
            continue;
        }
        let s = i;
        let mut count = 0;
        while i < end && CLASS[buf[i] as usize] & (class | BRK) != 0 {
            if CLASS[buf[i] as usize] & class != 0 {
                count += 1;
            }
            i += 1;
        }
        if count >= min {
            on(s, i);
        }
    }
}

fn decode_base64_runs(buf: &[u8], start: usize, end: usize, out: &mut Vec<Decoded>) {
    let run = &buf[start..end];
    // The common case, a plain base64 blob, is decoded whole: the decoder itself rejects a run
    // holding anything but base64 and line breaks (checking every byte first cost as much as
    // decoding), and only then is the run walked byte by byte for its base64 stretches.
    let chars = run.len() - memchr::memchr2_iter(b'\n', b'\r', run).count();
    if chars < B64_MIN {
        return;
    }
    // Padding ends a blob: the run's own is left out, and a run holding more is split at it, as at
    // any other byte.
    let (s, mut e) = trim_breaks(buf, start, end);
    while e > s && (buf[e - 1] == b'=' || CLASS[buf[e - 1] as usize] & BRK != 0) {
        e -= 1;
    }
    if memchr::memchr(b'=', &buf[s..e]).is_some() || !decode_base64(buf, s, e, out) {
        sub_runs(buf, start, end, B64, B64_MIN, |s, e| {
            decode_base64(buf, s, e, out);
        });
    }
}

fn trim_breaks(buf: &[u8], mut s: usize, mut e: usize) -> (usize, usize) {
    while s < e && CLASS[buf[s] as usize] & BRK != 0 {
        s += 1;
    }
    while e > s && CLASS[buf[e - 1] as usize] & BRK != 0 {
        e -= 1;
    }
    (s, e)
}

/// Decodes `buf[s..e]` as base64 from each of its four phases; false (and nothing decoded) when it
/// holds a byte that is neither base64 nor a line break.
fn decode_base64(buf: &[u8], s: usize, e: usize, out: &mut Vec<Decoded>) -> bool {
    let run = &buf[s..e];
    let url_safe = memchr::memchr2(b'-', b'_', run).is_some();
    let standard = memchr::memchr2(b'+', b'/', run).is_some();
    let has_breaks = memchr::memchr2(b'\n', b'\r', run).is_some();
    // Line breaks dropped and, in the rare run mixing both alphabets, the URL-safe one folded onto the standard
    // one; a plain run is decoded in place.
    let compacted: Option<(Vec<u8>, Rc<[u32]>)> =
        (has_breaks || (url_safe && standard)).then(|| {
            let (chars, pos): (Vec<u8>, Vec<u32>) = run
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b != b'\n' && b != b'\r')
                .map(|(i, &b)| {
                    let c = match b {
                        b'-' if standard => b'+',
                        b'_' if standard => b'/',
                        o => o,
                    };
                    (c, (s + i) as u32)
                })
                .unzip();
            (chars, pos.into())
        });
    let chars: &[u8] = compacted.as_ref().map_or(run, |(c, _)| c);
    let n = chars.len();
    if n < B64_MIN {
        return true;
    }
    let encoding = if url_safe {
        Encoding::Base64Url
    } else {
        Encoding::Base64
    };
    let engine = b64_engine(if url_safe && !standard {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    });
    // The whole run as one bit stream: the full 4-character groups, then the last partial group padded with
    // zero bits ('A'), so `stream` holds all 6n bits (and one spare byte for the shifts below).
    let full = n / 4 * 4;
    let mut stream = vec![0u8; n.div_ceil(4) * 3 + 1];
    let Ok(done) = engine.decode_slice(&chars[..full], &mut stream) else {
        return false;
    };
    if full < n {
        let mut group = [b'A'; 4];
        group[..n - full].copy_from_slice(&chars[full..]);
        if engine.decode_slice(group, &mut stream[done..]).is_err() {
            return false;
        }
    }
    // A copy may start at any character of a 4-character group, so its bytes sit at bit 6 * phase (mod 8) of
    // the stream for one phase in 0..4: each phase's bytes are the stream shifted by that many bits, which is
    // four times cheaper than decoding the run four times.
    for phase in 0..4 {
        // Whole bytes from character `phase` on (a trailing character alone holds none).
        let len = 6 * (n - phase) / 8;
        if n - phase < B64_MIN {
            continue;
        }
        let (skip, shift) = ((6 * phase) / 8, (6 * phase) % 8);
        let bytes = if shift == 0 {
            stream[skip..skip + len].to_vec()
        } else {
            shifted(&stream[skip..skip + len + 1], shift)
        };
        out.push(Decoded {
            encoding,
            bytes,
            origin: Origin::Base64 {
                phase,
                start: s,
                chars: compacted.as_ref().map(|(_, pos)| Rc::clone(pos)),
            },
        });
    }
    true
}

/// `src` as a bit stream, without its first `shift` (1..8) bits: `src.len() - 1` bytes, eight at a time.
fn shifted(src: &[u8], shift: usize) -> Vec<u8> {
    let len = src.len() - 1;
    let mut out = vec![0u8; len];
    let mut i = 0;
    while i + 9 <= src.len() {
        let word = u64::from_be_bytes(src[i..i + 8].try_into().expect("eight bytes"));
        let word = (word << shift) | u64::from(src[i + 8] >> (8 - shift));
        out[i..i + 8].copy_from_slice(&word.to_be_bytes());
        i += 8;
    }
    while i < len {
        out[i] = (src[i] << shift) | (src[i + 1] >> (8 - shift));
        i += 1;
    }
    out
}

fn decode_hex_runs(buf: &[u8], start: usize, end: usize, out: &mut Vec<Decoded>) {
    // A hex run of HEX_MIN characters holds 3 consecutive samples taken every HEX_SAMPLE characters; base64 text
    // almost never does, so only such stretches are walked byte by byte.
    const HEX_SAMPLE: usize = HEX_MIN / 4;
    let is_hex = |b: u8| CLASS[b as usize] & (HEX | BRK) != 0;
    let mut i = start;
    let mut streak = 0;
    let mut done_to = start;
    while i < end {
        streak = if is_hex(buf[i]) { streak + 1 } else { 0 };
        if streak >= 3 && i >= done_to {
            let mut s = i;
            while s > done_to && is_hex(buf[s - 1]) {
                s -= 1;
            }
            let mut e = i;
            while e < end && is_hex(buf[e]) {
                e += 1;
            }
            decode_hex_stretch(buf, s, e, out);
            done_to = e;
            streak = 0;
        }
        i += HEX_SAMPLE;
    }
}

fn decode_hex_stretch(buf: &[u8], start: usize, end: usize, out: &mut Vec<Decoded>) {
    sub_runs(buf, start, end, HEX, HEX_MIN, |s, e| {
        let digits = &buf[s..e];
        if digits.iter().any(|&b| CLASS[b as usize] & BRK != 0) {
            // Hex is not wrapped by the encoders we look for; the parts are long enough on their own or not at all.
            let mut i = s;
            while i < e {
                let j = buf[i..e]
                    .iter()
                    .position(|&b| CLASS[b as usize] & BRK != 0)
                    .map_or(e, |k| i + k);
                if j - i >= HEX_MIN {
                    decode_hex(buf, i, j, out);
                }
                i = j + 1;
            }
        } else {
            decode_hex(buf, s, e, out);
        }
    });
}

fn decode_hex(buf: &[u8], s: usize, e: usize, out: &mut Vec<Decoded>) {
    let digits = &buf[s..e];
    let upper = digits.iter().any(u8::is_ascii_uppercase);
    let lower = digits.iter().any(u8::is_ascii_lowercase);
    let encoding = if upper && !lower {
        Encoding::HexUpper
    } else {
        Encoding::HexLower
    };
    for phase in 0..2 {
        let n = (digits.len() - phase) / 2;
        let mut bytes = vec![0u8; n];
        if hex::decode_to_slice(&digits[phase..phase + 2 * n], &mut bytes).is_err() {
            continue;
        }
        out.push(Decoded {
            encoding,
            bytes,
            origin: Origin::Hex { start: s, phase },
        });
    }
}

/// The encoding's exact name, from the matched characters only (a run may start with unrelated text).
pub(crate) fn refine(encoding: Encoding, matched: &[u8]) -> Encoding {
    match encoding {
        Encoding::HexLower | Encoding::HexUpper => {
            let upper = matched.iter().any(u8::is_ascii_uppercase);
            let lower = matched.iter().any(u8::is_ascii_lowercase);
            if upper && !lower {
                Encoding::HexUpper
            } else {
                Encoding::HexLower
            }
        }
        Encoding::Base64 | Encoding::Base64Url => {
            if matched.iter().any(|&b| b == b'-' || b == b'_') {
                Encoding::Base64Url
            } else {
                Encoding::Base64
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every maximal textual stretch holding at least `RUN_MIN` characters besides line breaks,
    /// found byte by byte.
    fn runs_by_hand(buf: &[u8]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            if TEXTUAL[buf[i] as usize] == 0 {
                i += 1;
                continue;
            }
            let s = i;
            while i < buf.len() && TEXTUAL[buf[i] as usize] != 0 {
                i += 1;
            }
            let breaks = buf[s..i]
                .iter()
                .filter(|&&b| b == b'\n' || b == b'\r')
                .count();
            if i - s - breaks >= RUN_MIN {
                runs.push((s, i));
            }
        }
        runs
    }

    proptest! {
        /// The sampled search, fed a piece at a time, finds exactly the runs a byte-by-byte walk does:
        /// stretches of every length around `RUN_MIN`, at every offset, between separators.
        #[test]
        fn sampled_run_search_misses_no_run(
            stretches in prop::collection::vec((0usize..140, prop::sample::select(b" \":{,\n\x80".to_vec()), any::<bool>()), 1..40),
            piece in 1usize..300,
        ) {
            let mut buf = Vec::new();
            for (len, separator, breaks) in stretches {
                for k in 0..len {
                    buf.push(if breaks && k % 37 == 36 { b'\n' } else { b"aZ09+/-_%.="[k % 11] });
                }
                buf.push(separator);
            }
            let mut found = Vec::new();
            let mut finder = RunFinder::default();
            let mut upto = 0;
            while upto < buf.len() {
                upto = (upto + piece).min(buf.len());
                finder.advance(&buf, upto, |s, e| found.push((s, e)));
            }
            prop_assert_eq!(found, runs_by_hand(&buf));
        }
    }
}
