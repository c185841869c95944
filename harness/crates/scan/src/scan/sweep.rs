//! The end-of-run sweep: haystacks scanned with every needle, live and retired, one generation at
//! a time.
//!
//! Retired needles are rebuilt into an index a generation (4 MB of needle forms) at a time, and
//! rebuilding is what a sweep costs: [`Scanner::sweep_passes`] builds each generation once for every
//! kind of haystack a caller hands it (each a [`SweepPass`]).
//!
//! The live generation reads each haystack whole. The retired ones read only its *residue*: the
//! stretches no live hit covers. In an audit most of a haystack's bytes are the copy of its own
//! request's needle (an answer is its output image, a provider call its upload), and those bytes
//! are that needle's copy whatever older needle they might also match. The residues of all the
//! haystacks of a pass are laid end to end ([`Residues`]), so a retired generation scans them in
//! one call rather than one per stretch; a haystack the live needles explained whole is not read
//! again at all.

use std::borrow::Cow;
use std::ops::Range;

use super::{Generation, Hit, Scanner, merge, tokens};

/// One kind of haystack the end-of-run sweep reads: it scans what it holds with each generation of
/// needles in turn ([`Scanner::sweep_passes`]), the live one first, and keeps what it found.
pub trait SweepPass {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()>;
}

impl Scanner {
    /// [`Scanner::scan`] with every needle, live and retired, of `count` haystacks that `hay` hands
    /// out by index (`None`: skip it). Each haystack is asked for once, by the live generation; the
    /// retired ones read its residue.
    pub fn sweep<'h>(
        &self,
        count: usize,
        hay: impl FnMut(usize) -> Option<Cow<'h, [u8]>>,
    ) -> std::io::Result<Vec<Vec<Hit>>> {
        let mut pass = Haystacks::new(count, hay);
        self.sweep_passes(&mut [&mut pass])?;
        Ok(pass.into_hits())
    }

    /// Runs every pass with every generation of needles, live and retired, each retired generation
    /// rebuilt from disk once for all the passes.
    pub fn sweep_passes(&self, passes: &mut [&mut dyn SweepPass]) -> std::io::Result<()> {
        for generation in self.generations() {
            let generation = generation?;
            for pass in passes.iter_mut() {
                pass.scan_with(&generation)?;
            }
        }
        Ok(())
    }
}

/// Haystacks handed out by index (`None`: skip this one) to the live generation; their residues
/// kept for the retired ones. Their hits, merged, once the sweep is over ([`Haystacks::into_hits`]).
pub struct Haystacks<F> {
    hay: F,
    hits: Vec<Vec<Hit>>,
    residues: Residues,
    /// Per haystack, what a scan during the run already explained (see [`Haystacks::explained`]).
    known: Vec<Coverage>,
}

impl<'h, F: FnMut(usize) -> Option<Cow<'h, [u8]>>> Haystacks<F> {
    pub fn new(count: usize, hay: F) -> Self {
        Haystacks {
            hay,
            hits: vec![Vec::new(); count],
            residues: Residues::default(),
            known: Vec::new(),
        }
    }

    /// What scans during the run explained of each haystack ([`covered`] by their hits), taken out
    /// of the residue too: with the needles live *then* (the haystack's own request's among them),
    /// which the end of a long run may hold only in a retired generation.
    pub fn explained(mut self, known: Vec<Coverage>) -> Self {
        self.known = known;
        self
    }

    /// Each haystack's hits, in the order they were handed out.
    pub fn into_hits(self) -> Vec<Vec<Hit>> {
        self.hits.into_iter().map(merge).collect()
    }

    /// Bytes the retired generations read (with separators).
    pub fn residue_bytes(&self) -> usize {
        self.residues.len()
    }
}

impl<'h, F: FnMut(usize) -> Option<Cow<'h, [u8]>>> SweepPass for Haystacks<F> {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()> {
        if let Generation::Live(live) = generation {
            for (i, hits) in self.hits.iter_mut().enumerate() {
                if let Some(h) = (self.hay)(i) {
                    let found = live.scan(&h);
                    let mut explained = covered(&found);
                    explained.extend(self.known.get(i).into_iter().flatten());
                    self.residues.add(i, &h, &explained);
                    hits.extend(found);
                }
            }
        } else {
            for (i, hit) in self.residues.scan(generation) {
                self.hits[i].push(hit);
            }
        }
        Ok(())
    }
}

/// Between two stretches laid end to end: bytes no token form contains (a NUL and a high byte end
/// every token stretch and encoded run), so nothing found spans two stretches but a copy of a
/// needle holding these very bytes at that point, and such a hit is cut at its stretch's end.
const SEPARATOR: &[u8] = b"\0\xff\0\xff\n";

/// The residues of many haystacks, laid end to end in one buffer.
#[derive(Default)]
pub struct Residues {
    bytes: Vec<u8>,
    /// (haystack, where the stretch starts in it, where in `bytes`, its length), in `bytes` order.
    stretches: Vec<(usize, usize, usize, usize)>,
}

impl Residues {
    /// Keeps what of haystack `i` the stretches in `explained` leave out.
    pub fn add(&mut self, i: usize, hay: &[u8], explained: &[(u32, u32)]) {
        for r in uncovered(hay.len(), explained) {
            self.stretches.push((i, r.start, self.bytes.len(), r.len()));
            self.bytes.extend_from_slice(&hay[r]);
            self.bytes.extend_from_slice(SEPARATOR);
        }
    }

    /// Scans every residue with `generation`: (haystack, hit in that haystack's offsets).
    pub fn scan(&self, generation: &Scanner) -> Vec<(usize, Hit)> {
        if self.stretches.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for mut h in generation.scan(&self.bytes) {
            let at = h.offset as usize;
            let s = self
                .stretches
                .partition_point(|&(_, _, start, _)| start <= at);
            let Some(&(i, hay_start, start, len)) = s.checked_sub(1).map(|s| &self.stretches[s])
            else {
                continue;
            };
            if at >= start + len {
                continue; // within a separator
            }
            h.len = h.len.min((start + len - at) as u64);
            h.offset = (hay_start + at - start) as u64;
            out.push((i, h));
        }
        out
    }

    /// Bytes kept.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What of one haystack the sweep still reads, for a haystack read again at each generation (a
/// file on disk, which is not kept): all of it until the live generation has scanned it, then its
/// residue's stretches.
#[derive(Clone, Debug, Default)]
pub struct Residue(Option<Vec<Range<usize>>>);

impl Residue {
    /// Whether the live needles explained every byte: nothing is left to read.
    pub fn is_explained(&self) -> bool {
        self.0.as_ref().is_some_and(|r| r.is_empty())
    }

    /// Scans `hay` with `generation`: whole with the live one (which sets the residue), only the
    /// residue with a retired one. Offsets are the haystack's.
    pub fn scan(&mut self, generation: &Generation<'_>, hay: &[u8]) -> Vec<Hit> {
        match (&self.0, generation) {
            (None, _) | (_, Generation::Live(_)) => {
                let hits = generation.scan(hay);
                if matches!(generation, Generation::Live(_)) {
                    self.0 = Some(uncovered(hay.len(), &covered(&hits)));
                }
                hits
            }
            (Some(ranges), Generation::Retired(_)) => {
                let mut out = Vec::new();
                for r in ranges {
                    let Some(piece) = hay.get(r.clone()) else {
                        continue;
                    };
                    out.extend(generation.scan(piece).into_iter().map(|mut h| {
                        h.offset += r.start as u64;
                        h
                    }));
                }
                out
            }
        }
    }
}

/// Stretches of a haystack, `(start, end)`, sorted and disjoint.
pub type Coverage = Vec<(u32, u32)>;

/// The stretches the hits cover, merged.
pub fn covered(hits: &[Hit]) -> Coverage {
    let mut ranges: Vec<(u32, u32)> = hits
        .iter()
        .map(|h| {
            let end = h.offset.saturating_add(h.len);
            (
                u32::try_from(h.offset).unwrap_or(u32::MAX),
                u32::try_from(end).unwrap_or(u32::MAX),
            )
        })
        .collect();
    ranges.sort_unstable();
    let mut out: Coverage = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The stretches of `0..len` nothing in `explained` covers (in any order, overlapping or not), each
/// at least [`tokens::MIN_FORM_LEN`] long (a shorter one cannot hold a needle).
fn uncovered(len: usize, explained: &[(u32, u32)]) -> Vec<Range<usize>> {
    let mut explained = explained.to_vec();
    explained.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for (start, end) in explained {
        let start = (start as usize).min(len);
        if start > at && start - at >= tokens::MIN_FORM_LEN {
            out.push(at..start);
        }
        at = at.max(end as usize);
    }
    if len > at && len - at >= tokens::MIN_FORM_LEN {
        out.push(at..len);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{Encoding, NeedleId, SourceForm, Subject};

    fn hit(offset: u64, len: u64) -> Hit {
        Hit {
            needle: NeedleId {
                request: 1,
                subject: Subject::Image,
            },
            encoding: Encoding::Raw,
            offset,
            len,
            source_offset: 0,
            source_len: len,
            form: SourceForm::Bytes,
        }
    }

    #[test]
    fn the_residue_is_every_stretch_no_hit_covers_and_long_enough_to_hold_a_token() {
        let hits = [hit(10, 20), hit(25, 10), hit(40, 5), hit(96, 4)];
        assert_eq!(covered(&hits), [(10, 35), (40, 45), (96, 100)]);
        assert_eq!(uncovered(100, &[]), vec![0..100]);
        assert_eq!(
            uncovered(100, &covered(&hits)),
            [0..10, 45..96],
            "35..40 is shorter than any token form"
        );
        assert_eq!(
            uncovered(100, &[(50, 60), (0, 10)]),
            [10..50, 60..100],
            "in any order"
        );
        assert!(uncovered(100, &[(0, 100)]).is_empty());
    }

    #[test]
    fn residues_map_hits_back_to_their_haystack_and_stay_within_a_stretch() {
        let mut scanner = Scanner::new();
        let id = NeedleId {
            request: 3,
            subject: Subject::DeviceId,
        };
        scanner.add_token(id, "tl-device-0000beef");
        let mut r = Residues::default();
        r.add(0, b"explained........", &[(0, 17)]);
        r.add(4, b"xxxxxxxxxxxx tl-device-0000beef yy", &[(0, 4)]);
        let found = r.scan(&scanner);
        assert_eq!(found.len(), 1, "{found:?}");
        let (i, h) = &found[0];
        assert_eq!((*i, h.needle, h.offset, h.len), (4, id, 13, 18));
    }
}
