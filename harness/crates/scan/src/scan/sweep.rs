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

use super::{Generation, Hit, RequestId, Scanner, merge, tokens};

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
    count: usize,
    /// The residues the live generation left, and every hit so far.
    pass: ResiduePass,
}

impl<'h, F: FnMut(usize) -> Option<Cow<'h, [u8]>>> Haystacks<F> {
    pub fn new(count: usize, hay: F) -> Self {
        Haystacks {
            hay,
            count,
            pass: ResiduePass::default(),
        }
    }

    /// Each haystack's hits, in the order they were handed out.
    pub fn into_hits(self) -> Vec<Vec<Hit>> {
        self.pass.into_hits(self.count)
    }

    /// Bytes the retired generations read (with separators).
    pub fn residue_bytes(&self) -> u64 {
        self.pass.residue_bytes()
    }
}

impl<'h, F: FnMut(usize) -> Option<Cow<'h, [u8]>>> SweepPass for Haystacks<F> {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()> {
        let Generation::Live(live) = generation else {
            return self.pass.scan_with(generation);
        };
        for i in 0..self.count {
            if let Some(h) = (self.hay)(i) {
                let found = live.scan(&h);
                self.pass.add(i, &h, &covered(&found), live)?;
                self.pass.push(i, found);
            }
        }
        Ok(())
    }
}

/// Between two stretches laid end to end: bytes no token form contains (a NUL and a high byte end
/// every token stretch and encoded run), so nothing found spans two stretches but a copy of a
/// needle holding these very bytes at that point, and such a hit is cut at its stretch's end.
const SEPARATOR: &[u8] = b"\0\xff\0\xff\n";

/// The residues of many haystacks, laid end to end in an anonymous temporary file (unlinked from
/// the start, so nothing outlives the process), so that what a long audit keeps for its sweep costs
/// memory only for the list of stretches. A scan reads them back a bounded batch at a time.
#[derive(Default)]
pub struct Residues {
    /// Created with the first stretch.
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// Bytes written, separators included.
    len: u64,
    /// In file order.
    stretches: Vec<Stretch>,
}

/// One stretch of a haystack's residue in the file.
#[derive(Clone, Copy)]
struct Stretch {
    /// The haystack's index.
    hay: u32,
    /// Where the stretch starts in its haystack.
    hay_start: u32,
    /// Where it starts in the file.
    at: u64,
    len: u32,
    /// The newest request with a needle when the haystack was read
    /// ([`Scanner::newest_request`]): no needle of a later one can be in it.
    newest: RequestId,
}

/// How many residue bytes a scan reads back at once (a longer single stretch is read whole).
const BATCH: u64 = 8 << 20;

impl Residues {
    /// Keeps what of haystack `i`, read with `scanner`, the stretches in `explained` leave out.
    pub fn add(
        &mut self,
        i: usize,
        hay: &[u8],
        explained: &[(u32, u32)],
        scanner: &Scanner,
    ) -> std::io::Result<()> {
        use std::io::Write as _;
        let newest = scanner.newest_request();
        debug_assert!(
            self.stretches.last().is_none_or(|s| s.newest <= newest),
            "haystacks are added in the order they were read"
        );
        for r in uncovered(hay.len(), explained) {
            if self.file.is_none() {
                self.file = Some(std::io::BufWriter::with_capacity(
                    1 << 16,
                    tempfile::tempfile()?,
                ));
            }
            let file = self.file.as_mut().expect("created above");
            file.write_all(&hay[r.clone()])?;
            file.write_all(SEPARATOR)?;
            self.stretches.push(Stretch {
                hay: u32::try_from(i).unwrap_or(u32::MAX),
                hay_start: u32::try_from(r.start).unwrap_or(u32::MAX),
                at: self.len,
                len: u32::try_from(r.len()).unwrap_or(u32::MAX),
                newest,
            });
            self.len += (r.len() + SEPARATOR.len()) as u64;
        }
        Ok(())
    }

    /// Scans with `generation` every residue read when request `oldest` had its needles (the
    /// earlier ones cannot hold any of a generation of requests `oldest` and later): (haystack,
    /// hit in that haystack's offsets). A long audit's retired generations so read half the
    /// residues on average, not all of them.
    pub fn scan(
        &mut self,
        generation: &Scanner,
        oldest: RequestId,
    ) -> std::io::Result<Vec<(usize, Hit)>> {
        use std::io::Write as _;
        use std::os::unix::fs::FileExt as _;
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        file.flush()?;
        let file = file.get_ref();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut first = self.stretches.partition_point(|s| s.newest < oldest);
        while first < self.stretches.len() {
            let start = self.stretches[first].at;
            let mut last = first;
            while last + 1 < self.stretches.len() && self.stretches[last + 1].at - start < BATCH {
                last += 1;
            }
            let batch = &self.stretches[first..=last];
            let end = batch[batch.len() - 1].at + u64::from(batch[batch.len() - 1].len);
            buf.resize((end - start) as usize, 0);
            file.read_exact_at(&mut buf, start)?;
            for mut h in generation.scan(&buf) {
                let at = h.offset + start;
                let s = batch.partition_point(|st| st.at <= at);
                let Some(st) = s.checked_sub(1).map(|s| batch[s]) else {
                    continue;
                };
                let stretch_end = st.at + u64::from(st.len);
                if at >= stretch_end {
                    continue; // within a separator
                }
                h.len = h.len.min(stretch_end - at);
                h.offset = u64::from(st.hay_start) + (at - st.at);
                out.push((st.hay as usize, h));
            }
            first = last + 1;
        }
        Ok(out)
    }

    /// Bytes kept, separators included.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Residues gathered as the run went, each haystack reduced when it was read to what the needles
/// live then left unexplained (its bytes are not kept): a pass that reads them with every
/// generation, the live one included. Hits come back per haystack index.
#[derive(Default)]
pub struct ResiduePass {
    residues: Residues,
    hits: Vec<Vec<Hit>>,
}

impl ResiduePass {
    /// Keeps what of haystack `i`, read with `scanner`, `explained` leaves out.
    pub fn add(
        &mut self,
        i: usize,
        hay: &[u8],
        explained: &[(u32, u32)],
        scanner: &Scanner,
    ) -> std::io::Result<()> {
        self.residues.add(i, hay, explained, scanner)
    }

    /// Bytes kept, separators included.
    pub fn residue_bytes(&self) -> u64 {
        self.residues.len()
    }

    /// The hits of `count` haystacks, merged, by index.
    pub fn into_hits(self, count: usize) -> Vec<Vec<Hit>> {
        let mut out = vec![Vec::new(); count];
        for (i, hits) in self.hits.into_iter().enumerate().take(count) {
            out[i] = merge(hits);
        }
        out
    }
}

impl ResiduePass {
    /// Adds hits found in haystack `i`.
    fn push(&mut self, i: usize, hits: impl IntoIterator<Item = Hit>) {
        if self.hits.len() <= i {
            self.hits.resize(i + 1, Vec::new());
        }
        self.hits[i].extend(hits);
    }
}

impl SweepPass for ResiduePass {
    fn scan_with(&mut self, generation: &Generation<'_>) -> std::io::Result<()> {
        for (i, hit) in self
            .residues
            .scan(generation, generation.oldest_request())?
        {
            self.push(i, [hit]);
        }
        Ok(())
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
            (Some(ranges), Generation::Retired { .. }) => {
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
    use crate::scan::{Encoding, NeedleId, RequestId, SourceForm, Subject};

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
        r.add(0, b"explained........", &[(0, 17)], &scanner)
            .unwrap();
        r.add(
            4,
            b"xxxxxxxxxxxx tl-device-0000beef yy",
            &[(0, 4)],
            &scanner,
        )
        .unwrap();
        let found = r.scan(&scanner, 0).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let (i, h) = &found[0];
        assert_eq!((*i, h.needle, h.offset, h.len), (4, id, 13, 18));
    }

    #[test]
    fn residues_read_back_in_batches_find_a_token_on_either_side_of_a_batch_boundary() {
        let mut scanner = Scanner::new();
        let id = |request| NeedleId {
            request,
            subject: Subject::DeviceId,
        };
        scanner.add_token(id(1), "tl-device-0000aaaa");
        scanner.add_token(id(2), "tl-device-0000bbbb");
        let filler = vec![b'.'; 3 << 20];
        let mut r = Residues::default();
        // Haystacks 0..3 are 3 MiB each: the batch of 8 MiB ends within the third; the token at
        // the end of haystack 2 and the one at the start of haystack 3 fall on either side.
        for i in 0..5 {
            let mut hay = filler.clone();
            if i == 2 {
                hay.extend_from_slice(b" tl-device-0000aaaa");
            }
            if i == 3 {
                hay.splice(0..0, b"tl-device-0000bbbb ".iter().copied());
            }
            r.add(i, &hay, &[], &scanner).unwrap();
        }
        let mut found: Vec<(usize, RequestId, u64)> = r
            .scan(&scanner, 0)
            .unwrap()
            .into_iter()
            .map(|(i, h)| (i, h.needle.request, h.offset))
            .collect();
        found.sort_unstable();
        assert_eq!(found, [(2, 1, (3 << 20) + 1), (3, 2, 0)]);
        assert!(r.len() > BATCH, "the residues span more than one batch");
    }

    /// A residue read before a request had needles is not read with that request's generation
    /// (it cannot hold them); one read after is, and its copy is found.
    #[test]
    fn residues_read_before_a_request_had_needles_are_not_read_for_it() {
        let id = |request| NeedleId {
            request,
            subject: Subject::DeviceId,
        };
        let token = |request: u32| format!("tl-device-{request:08x}beef");
        let mut live = Scanner::new();
        live.add_token(id(1), &token(1));
        let mut r = Residues::default();
        // Read when request 1 was the newest: request 5's token printed there (impossible in an
        // audit, where a request's canaries are fresh) is left unread for request 5's generation.
        r.add(0, format!("early {} .", token(5)).as_bytes(), &[], &live)
            .unwrap();
        live.add_token(id(5), &token(5));
        r.add(1, format!("late {} .", token(5)).as_bytes(), &[], &live)
            .unwrap();
        let mut generation = Scanner::new();
        generation.add_token(id(5), &token(5));
        let found: Vec<usize> = r
            .scan(&generation, 5)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(found, [1], "only the haystack read once request 5 existed");
        let all: Vec<usize> = r
            .scan(&generation, 0)
            .unwrap()
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(all, [0, 1], "from request 0 on, both are read");
    }
}
