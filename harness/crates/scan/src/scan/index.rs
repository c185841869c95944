//! The copy index: sampled 8-byte grams of every needle's raw forms, probed at a fixed stride over a haystack.
//!
//! Why this shape: one automaton over a thousand long patterns touches every haystack byte and thrashes the cache.
//! Instead the haystack is probed only every `HAY_STRIDE` (16) bytes (one 8-byte load, a multiply, one bit test),
//! and each needle form is indexed every `NEEDLE_STRIDE` (3) bytes. The two strides are coprime, so among
//! `NEEDLE_STRIDE` consecutive probes one lands on an indexed needle position: any copy of at least
//! `HAY_STRIDE * NEEDLE_STRIDE + GRAM - 1` = 55 bytes is found, deterministically (see [`super::MIN_COPY`]).
//! Candidates are verified by extending the match both ways against the needle; only matches of `MIN_COPY`
//! bytes or more are kept.

use super::MIN_COPY;

/// Bytes per indexed gram (one little-endian u64 load).
pub(crate) const GRAM: usize = 8;
/// Haystack probe spacing.
pub(crate) const HAY_STRIDE: usize = 16;
/// Needle sampling spacing; coprime with `HAY_STRIDE`.
pub(crate) const NEEDLE_STRIDE: usize = 3;
const _: () = assert!(HAY_STRIDE * NEEDLE_STRIDE + GRAM - 1 <= MIN_COPY);
/// A gram repeated more often than this across the needles (flat backgrounds, container headers) is not evidence.
const MAX_GRAM_REPEATS: usize = 16;

const GRAM_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const BUCKET_MUL: u64 = 0xBF58_476D_1CE4_E5B9;

/// One needle form (file bytes, blob, or a decoded pixel buffer).
pub(crate) struct Form {
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Entry {
    gram: u64,
    form: u32,
    pos: u32,
}

/// A verified copy: `hay[hay_start..hay_end] == forms[form][src_start..]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawMatch {
    pub form: u32,
    pub hay_start: usize,
    pub hay_end: usize,
    pub src_start: usize,
}

/// One bit per hashed gram; a set bit means "maybe in the index".
struct Filter {
    bits: Vec<u64>,
    shift: u32,
}

impl Filter {
    fn new(entries: usize) -> Filter {
        // ~16-32 bits per entry keeps false positives at 3-6% with a filter that stays in cache.
        let bits = (entries * 16).next_power_of_two().clamp(1 << 12, 1 << 28);
        Filter {
            bits: vec![0; bits / 64],
            shift: 64 - bits.trailing_zeros(),
        }
    }

    fn slot(&self, gram: u64) -> usize {
        (gram.wrapping_mul(GRAM_MUL) >> self.shift) as usize
    }

    fn insert(&mut self, gram: u64) {
        let h = self.slot(gram);
        self.bits[h >> 6] |= 1 << (h & 63);
    }

    fn test(&self, gram: u64) -> u64 {
        let h = self.slot(gram);
        (self.bits[h >> 6] >> (h & 63)) & 1
    }
}

/// Grams of text (no byte with the high bit set) and of binary data are filtered apart: random-content needles
/// have almost no text grams, so probing log text touches only a filter small enough for L1, and only binary
/// haystack bytes pay for the large one.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The frozen index over every form.
pub(crate) struct GramIndex {
    text_filter: Filter,
    binary_filter: Filter,
    bucket_shift: u32,
    bucket_starts: Vec<u32>,
    entries: Vec<Entry>,
}

fn load(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + GRAM].try_into().expect("gram-sized slice"))
}

/// Grams with few distinct bytes (runs of zeros, flat colour) match unrelated data everywhere.
fn informative(gram: u64) -> bool {
    let bytes = gram.to_le_bytes();
    let mut distinct = [0u8; 8];
    let mut n = 0;
    for b in bytes {
        if !distinct[..n].contains(&b) {
            distinct[n] = b;
            n += 1;
        }
    }
    n >= 4
}

impl GramIndex {
    pub fn build(forms: &[Form]) -> GramIndex {
        let mut entries = Vec::new();
        for (f, form) in forms.iter().enumerate() {
            let b = &form.bytes;
            let mut pos = 0;
            while pos + GRAM <= b.len() {
                let gram = load(b, pos);
                if informative(gram) {
                    entries.push(Entry {
                        gram,
                        form: f as u32,
                        pos: pos as u32,
                    });
                }
                pos += NEEDLE_STRIDE;
            }
        }
        let buckets = entries.len().next_power_of_two().clamp(1 << 4, 1 << 26);
        let bucket_shift = 64 - buckets.trailing_zeros();
        let bucket_of =
            |g: u64| ((g ^ (g >> 31)).wrapping_mul(BUCKET_MUL) >> bucket_shift) as usize;
        entries.sort_unstable_by_key(|e| (bucket_of(e.gram), e.gram, e.form, e.pos));
        // Drop grams that repeat too often.
        let mut kept = Vec::with_capacity(entries.len());
        let mut i = 0;
        while i < entries.len() {
            let mut j = i + 1;
            while j < entries.len() && entries[j].gram == entries[i].gram {
                j += 1;
            }
            if j - i <= MAX_GRAM_REPEATS {
                kept.extend_from_slice(&entries[i..j]);
            }
            i = j;
        }
        let entries = kept;
        let text = entries.iter().filter(|e| e.gram & HIGH_BITS == 0).count();
        let mut text_filter = Filter::new(text);
        let mut binary_filter = Filter::new(entries.len() - text);
        let mut bucket_starts = vec![0u32; buckets + 1];
        for e in &entries {
            if e.gram & HIGH_BITS == 0 {
                text_filter.insert(e.gram)
            } else {
                binary_filter.insert(e.gram)
            }
            bucket_starts[bucket_of(e.gram) + 1] += 1;
        }
        for b in 0..buckets {
            bucket_starts[b + 1] += bucket_starts[b];
        }
        GramIndex {
            text_filter,
            binary_filter,
            bucket_shift,
            bucket_starts,
            entries,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every copy of >= `MIN_COPY` bytes of any form in `hay`, each reported once per (form, diagonal).
    pub fn find(&self, forms: &[Form], hay: &[u8], out: &mut Vec<RawMatch>) {
        if self.entries.is_empty() || hay.len() < MIN_COPY {
            return;
        }
        let first = out.len();
        // Probes are tested without branching into a candidate list, a block at a time, so the filter loads of
        // many probes are in flight at once; verification follows per block.
        const BLOCK: usize = 1024;
        let mut candidates = [0u32; BLOCK];
        // Probe positions 0, 16, 32, ... while a whole gram fits.
        let probes = (hay.len() - GRAM) / HAY_STRIDE + 1;
        let mut first_probe = 0;
        while first_probe < probes {
            let last = (first_probe + BLOCK).min(probes);
            let mut n = 0;
            for probe in first_probe..last {
                let gram = load(hay, probe * HAY_STRIDE);
                let maybe = if gram & HIGH_BITS == 0 {
                    self.text_filter.test(gram)
                } else {
                    self.binary_filter.test(gram)
                };
                candidates[n] = probe as u32;
                n += maybe as usize;
            }
            for &probe in &candidates[..n] {
                let p = probe as usize * HAY_STRIDE;
                self.verify(forms, hay, p, load(hay, p), first, out);
            }
            first_probe = last;
        }
    }

    #[cold]
    #[inline(never)]
    fn verify(
        &self,
        forms: &[Form],
        hay: &[u8],
        p: usize,
        gram: u64,
        first: usize,
        out: &mut Vec<RawMatch>,
    ) {
        let bucket = ((gram ^ (gram >> 31)).wrapping_mul(BUCKET_MUL) >> self.bucket_shift) as usize;
        let range = self.bucket_starts[bucket] as usize..self.bucket_starts[bucket + 1] as usize;
        for e in &self.entries[range] {
            if e.gram != gram {
                continue;
            }
            let src = &forms[e.form as usize].bytes;
            let j = e.pos as usize;
            // Already reported as part of a longer copy on the same diagonal?
            let diag = p as i64 - j as i64;
            let seen = out[first..].iter().rev().take(64).any(|m| {
                m.form == e.form
                    && m.hay_start as i64 - m.src_start as i64 == diag
                    && m.hay_start <= p
                    && p < m.hay_end
            });
            if seen {
                continue;
            }
            let back = common_suffix(&hay[..p], &src[..j]);
            let fwd = common_prefix(&hay[p..], &src[j..]);
            if back + fwd >= MIN_COPY {
                out.push(RawMatch {
                    form: e.form,
                    hay_start: p - back,
                    hay_end: p + fwd,
                    src_start: j - back,
                });
            }
        }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = load(a, i) ^ load(b, i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut i = 0;
    while i + 8 <= n {
        let x = load(a, n - i - 8) ^ load(b, n - i - 8);
        if x != 0 {
            return i + (x.leading_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[n - 1 - i] == b[n - 1 - i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stride argument, exhaustively: every haystack phase against every needle phase.
    #[test]
    fn every_min_copy_is_found_whatever_its_phases() {
        let needle: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let forms = vec![Form {
            bytes: needle.clone(),
        }];
        let index = GramIndex::build(&forms);
        for hay_phase in 0..HAY_STRIDE {
            for src in (100..100 + NEEDLE_STRIDE * 5).chain([0, 2000 - MIN_COPY]) {
                let mut hay = vec![b' '; hay_phase];
                hay.extend_from_slice(&needle[src..src + MIN_COPY]);
                hay.extend_from_slice(b" tail");
                let mut out = Vec::new();
                index.find(&forms, &hay, &mut out);
                let expect = RawMatch {
                    form: 0,
                    hay_start: hay_phase,
                    hay_end: hay_phase + MIN_COPY,
                    src_start: src,
                };
                assert_eq!(out, vec![expect], "hay phase {hay_phase}, source {src}");
                let mut short = Vec::new();
                index.find(&forms, &hay[..hay_phase + MIN_COPY - 1], &mut short);
                assert!(short.is_empty());
            }
        }
    }

    #[test]
    fn prefix_and_suffix_lengths() {
        let a = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut b = a.to_vec();
        b[20] = b'!';
        assert_eq!(common_prefix(a, &b), 20);
        assert_eq!(common_suffix(a, &b), a.len() - 21);
        assert_eq!(common_prefix(a, a), a.len());
        assert_eq!(common_suffix(&a[..5], &a[..3]), 0);
        assert_eq!(common_suffix(&a[..3], &a[..3]), 3);
    }
}
