//! The copy index: sampled 8-byte grams of every needle's raw forms, probed at a fixed stride over a haystack.
//!
//! Why this shape: one automaton over a thousand long patterns touches every haystack byte and thrashes the cache.
//! Instead the haystack is probed only every `HAY_STRIDE` (27) bytes (one 8-byte load, two multiplies, one test
//! in a blocked Bloom filter), and each needle form is indexed every `NEEDLE_STRIDE` (2) bytes. The two strides
//! are coprime, so among `NEEDLE_STRIDE` consecutive probes one lands on an indexed needle position: any copy of
//! at least `HAY_STRIDE * NEEDLE_STRIDE + GRAM - 1` = 61 bytes is found, deterministically (see
//! [`super::MIN_COPY`]). Probing sparsely and indexing densely is the cheaper side of the trade: probes cost
//! per haystack byte (every audit scans gigabytes of logs and memory), index entries per needle byte.
//! Candidates are verified by extending the match both ways against the needle; only matches of `MIN_COPY`
//! bytes or more are kept.

use super::MIN_COPY;

/// Bytes per indexed gram (one little-endian u64 load).
pub(crate) const GRAM: usize = 8;
/// Haystack probe spacing.
pub(crate) const HAY_STRIDE: usize = 27;
/// Needle sampling spacing; coprime with `HAY_STRIDE`.
pub(crate) const NEEDLE_STRIDE: usize = 2;
const _: () = assert!(HAY_STRIDE * NEEDLE_STRIDE + GRAM - 1 <= MIN_COPY);
/// A gram repeated more often than this within one segment (flat backgrounds, container headers) is not evidence.
const MAX_GRAM_REPEATS: usize = 16;

const GRAM_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const BUCKET_MUL: u64 = 0xBF58_476D_1CE4_E5B9;

/// One needle form (file bytes, blob, or a decoded pixel buffer).
pub(crate) struct Form {
    pub bytes: Vec<u8>,
}

/// An indexed gram, 8 bytes: the top half of its key (high 32 bits) and where it is (low 32 bits), in units
/// of [`NEEDLE_STRIDE`] bytes of all forms laid end to end (each form starting at an even offset, see
/// `GramIndex::starts`). Ordered by key, then location, which is the order of entries in a segment: one
/// integer comparison, which is what sorting and merging entries mostly do. Two grams may share a half key;
/// every candidate is verified byte by byte anyway, so that only costs a rare failed verification.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry(u64);

impl Entry {
    fn new(key: u32, loc: u32) -> Entry {
        Entry(u64::from(key) << 32 | u64::from(loc))
    }

    fn key(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn loc(self) -> u32 {
        self.0 as u32
    }
}
const _: () = assert!(NEEDLE_STRIDE == 2, "locations count pairs of bytes");

/// The lookup key of a gram: the top half of a bijection of it, whose top bits pick the bucket whatever the
/// bucket count, so segments sorted by key merge linearly, without a re-sort.
fn key(gram: u64) -> u32 {
    ((gram ^ (gram >> 31)).wrapping_mul(BUCKET_MUL) >> 32) as u32
}

/// A verified copy: `hay[hay_start..hay_end] == forms[form][src_start..]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawMatch {
    pub form: u32,
    pub hay_start: usize,
    pub hay_end: usize,
    pub src_start: usize,
}

/// Grams of text (no byte with the high bit set) and of binary data are filtered apart: random-content needles
/// have almost no text grams, so probing log text touches only a filter small enough for L2, and only binary
/// haystack bytes pay for the large one.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Bits set per gram (within its word).
const FILTER_HASHES: u32 = 4;
const MASK_MUL: u64 = 0xD6E8_FEB8_6659_FD93;

/// The masks a gram may set: [`FILTER_HASHES`] distinct bits each, drawn once (xorshift) when
/// compiling. A probe picks one with 10 bits of its hash: a shift and a load from a table that
/// stays in L1, where computing four bit positions took a dozen instructions of the few dozen a
/// probe costs.
const MASKS: [u64; 1024] = {
    let mut table = [0u64; 1024];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut i = 0;
    while i < table.len() {
        let mut mask = 0u64;
        while mask.count_ones() < FILTER_HASHES {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            mask |= 1 << (x >> 58);
        }
        table[i] = mask;
        i += 1;
    }
    table
};

/// Bits per inserted gram below which a filter is rebuilt bigger: at 16-32 bits per gram and four bits per
/// word, roughly 0.05-0.3% false positives.
const MIN_BITS_PER_GRAM: usize = 16;
const MIN_FILTER_BITS: usize = 1 << 12;
const MAX_FILTER_BITS: usize = 1 << 28;

/// Two blocked Bloom filters, for text grams (class 0) and binary grams (class 1), in one array so a probe picks
/// its filter without a branch. Each gram sets [`FILTER_HASHES`] bits of one 64-bit word: a probe is one load
/// and one compare, like a one-bit-per-gram filter, while false positives fall from ~3% to ~0.1% (each false
/// positive costs a look-up in every segment, a few cache misses; at 3% on log text those cost as much as the
/// probes themselves).
struct Filters {
    /// The text filter's words, then the binary filter's.
    words: Vec<u64>,
    /// Per class: its first word, and the shift that maps a hash to one of its (power of two) words.
    base: [usize; 2],
    shift: [u32; 2],
    /// Grams inserted per class since the filters were sized (with repeats).
    grams: [usize; 2],
}

fn class(gram: u64) -> usize {
    (gram & HIGH_BITS != 0) as usize
}

/// Words for at least twice `grams` at [`MIN_BITS_PER_GRAM`], so growth by doubling is amortised.
fn words_for(grams: usize) -> usize {
    (grams * 2 * MIN_BITS_PER_GRAM)
        .next_power_of_two()
        .clamp(MIN_FILTER_BITS, MAX_FILTER_BITS)
        / 64
}

impl Filters {
    /// Empty filters with room for `grams` (text, binary).
    fn with_room_for(grams: [usize; 2]) -> Filters {
        let sizes = grams.map(words_for);
        Filters {
            words: huge_zeroed(sizes[0] + sizes[1]),
            base: [0, sizes[0]],
            shift: sizes.map(|n| 64 - n.trailing_zeros()),
            grams: [0, 0],
        }
    }

    /// Empty filters of the shape `shift` (see [`Shape`]).
    fn shaped(shift: [u32; 2]) -> Filters {
        let sizes = shift.map(|s| 1usize << (64 - s));
        Filters {
            words: huge_zeroed(sizes[0] + sizes[1]),
            base: [0, sizes[0]],
            shift,
            grams: [0, 0],
        }
    }

    /// Whether `added` more grams (text, binary) would leave too few bits per gram.
    fn outgrown_by(&self, added: [usize; 2]) -> bool {
        (0..2).any(|c| {
            let bits = (1usize << (64 - self.shift[c])) * 64;
            bits < MAX_FILTER_BITS && (self.grams[c] + added[c]) * MIN_BITS_PER_GRAM > bits
        })
    }

    /// The word holding `gram` and its bits there, from two independent multiplicative hashes.
    #[inline(always)]
    fn slot(&self, gram: u64) -> (usize, u64) {
        let c = class(gram);
        let word = self.base[c] + (gram.wrapping_mul(GRAM_MUL) >> self.shift[c]) as usize;
        let h = (gram ^ (gram >> 29)).wrapping_mul(MASK_MUL);
        (word, MASKS[(h >> 54) as usize])
    }

    /// Inserts `grams` a block at a time: the first pass hashes each and prefetches its word, the second
    /// sets the bits. A filter of tens of MB misses the cache on nearly every insert; one insert at a time
    /// waited on each miss (GramIndex::extend spent most of its time there), a block keeps dozens in flight.
    fn insert_all(&mut self, grams: impl Iterator<Item = u64>) {
        const BLOCK: usize = 64;
        let mut slots = [(0usize, 0u64); BLOCK];
        let mut grams = grams.peekable();
        // Counted in registers: an increment in memory per gram was a chain of dependent stores.
        let mut counts = [0usize; 2];
        while grams.peek().is_some() {
            let mut n = 0;
            for gram in grams.by_ref().take(BLOCK) {
                let slot = self.slot(gram);
                prefetch(&self.words, slot.0);
                counts[class(gram)] += 1;
                slots[n] = slot;
                n += 1;
            }
            for &(word, mask) in &slots[..n] {
                self.words[word] |= mask;
            }
        }
        self.grams[0] += counts[0];
        self.grams[1] += counts[1];
    }

    #[inline(always)]
    fn test(&self, word: usize, mask: u64) -> bool {
        self.words[word] & mask == mask
    }
}

/// How far ahead of the probes the haystack is prefetched: a probe every 27 bytes uses 8 bytes of each cache
/// line, too little for the hardware prefetcher to run far enough ahead of memory.
const HAY_AHEAD: usize = 4096;

/// A zeroed array, on transparent huge pages where the system offers them for the asking: probes hit the
/// binary filter (up to 32 MB) at random, and with 4 KiB pages nearly every probe also missed the TLB, adding
/// a page walk to its memory access.
fn huge_zeroed(len: usize) -> Vec<u64> {
    let words = vec![0u64; len];
    on_huge_pages(&words);
    words
}

/// Asks for transparent huge pages under `v`'s whole capacity (where the system offers them for the
/// asking): a large buffer then costs a page fault every 2 MiB, not every 4 KiB (faults were a
/// fifth of building the index of 64 images).
fn on_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + v.capacity() * std::mem::size_of::<T>();
        let (first, last) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if last > first {
            // SAFETY: the range lies inside `v`'s own allocation and madvise only changes how the kernel backs
            // it (contents stay as they are); failure is harmless.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                )
            };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// A hint that `words[at]` is wanted soon (`at` may be out of bounds: nothing is read).
#[inline(always)]
fn prefetch<T>(words: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of x86_64; a prefetch never faults and only hints the cache (the address is in
        // bounds anyway).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(words.as_ptr().wrapping_add(at).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (words, at);
}

/// The index over every form added so far, maintained incrementally as forms are added.
///
/// The filters answer "maybe" for every probe; they take the new grams as forms are added and are rebuilt twice
/// as big only when their gram count outgrows them. Exact lookup goes through a
/// few immutable segments, each a bucketed array over a contiguous range of forms. Adding forms makes one new
/// segment over them; segments are then merged like a counter (while the one before the last is not more than
/// [`MERGE_RATIO`] times the size of the last), so there are O(log n) segments and each entry is merged
/// O(log n) times. A filter hit probes every segment.
///
/// [`MAX_GRAM_REPEATS`] applies per segment: a gram is dropped from a segment where it repeats too often
/// (merges keep this exact over the merged range), but a gram repeated a few times in each of several segments
/// stays. That only keeps more entries than a global rule would, so nothing a single index would find is lost.
#[derive(Default)]
pub(crate) struct GramIndex {
    filters: Option<Filters>,
    segments: Vec<Segment>,
    /// Forms `0..indexed` are in the segments and filters.
    indexed: usize,
    /// Where each indexed form starts when all lie end to end, each at an even offset; one more
    /// entry: where the next form would start.
    starts: Vec<u64>,
}

/// Segments are merged while the one before the last is at most this many times the last: a binary counter,
/// so each entry is merged O(log n) times and there are O(log n) segments. A larger ratio leaves fewer segments
/// for a filter hit to probe, but merges more often: at 4 a batch of a quarter of the live index merged the
/// whole index, and 1,000 property cases took 40 s against 36 s at 1 (the live index is rebuilt at every
/// retirement anyway, so its segments stay few).
const MERGE_RATIO: usize = 1;

/// Exact lookup over a contiguous range of forms: entries sorted by key, bucketed by the key's top bits.
struct Segment {
    bucket_shift: u32,
    bucket_starts: Vec<u32>,
    entries: Vec<Entry>,
    /// Keys dropped from this segment for repeating too often, sorted, so a merge drops them too.
    dropped: Vec<u32>,
}

fn load(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + GRAM].try_into().expect("gram-sized slice"))
}

/// Grams with few distinct bytes (runs of zeros, flat colour) match unrelated data everywhere: a gram is
/// informative when at least four of its eight bytes differ.
///
/// Branch-free (every needle byte pays for it): byte `i` repeats an earlier one when, for some shift `s`, it
/// equals byte `i - s`, i.e. `gram ^ (gram << 8s)` has a zero byte at `i`. The `s` bytes below `i = s` have no
/// byte that far back and are made non-zero. The zero bytes are found exactly (no carry between bytes).
#[inline(always)]
fn informative(gram: u64) -> bool {
    // Four distinct bytes among the first four settle it for most grams of image data, in a third of
    // the work: no byte of the low half equals its neighbour (cyclically) or the byte two away.
    let low = gram as u32;
    let has_zero_byte = |v: u32| v.wrapping_sub(0x0101_0101) & !v & 0x8080_8080 != 0;
    if !has_zero_byte(low ^ low.rotate_left(8)) && !has_zero_byte(low ^ low.rotate_left(16)) {
        return true;
    }
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut repeats = 0u64;
    for s in 1..8 {
        let below = (1u64 << (8 * s)) - 1;
        let x = (gram ^ (gram << (8 * s))) | (ONES & below);
        repeats |= !(((x & LOW7) + LOW7) | x) & HIGH_BITS;
    }
    repeats.count_ones() <= 4
}

/// The positions of `form` sampled for the index: every [`NEEDLE_STRIDE`]th while a gram fits.
fn positions(form: &Form) -> std::iter::StepBy<std::ops::Range<usize>> {
    (0..form.bytes.len().saturating_sub(GRAM - 1)).step_by(NEEDLE_STRIDE)
}

/// Calls `each` with every indexed gram of `form` and its position, in a plain loop: sampled through
/// an iterator chain, and again for filters rebuilt as they grew, sampling was half the time it took
/// to index 64 images.
#[inline(always)]
fn for_each_gram(form: &Form, mut each: impl FnMut(u64, usize)) {
    for pos in positions(form) {
        let gram = load(&form.bytes, pos);
        if informative(gram) {
            each(gram, pos);
        }
    }
}

/// How many grams of each class (text, binary) `form` could add: every sampled position, before
/// uninformative grams are left out.
fn class_bound(form: &Form) -> [usize; 2] {
    let binary = positions(form)
        .filter(|&pos| class(load(&form.bytes, pos)) == 1)
        .count();
    [positions(form).len() - binary, binary]
}

/// The grams of `form` appended to `grams`, with their entries in `entries` when given (locations
/// counted from `start`, where the form begins when all lie end to end).
fn sample_into(
    form: &Form,
    start: u64,
    grams: &mut Vec<u64>,
    mut entries: Option<&mut Vec<Entry>>,
) {
    grams.clear();
    for_each_gram(form, |gram, pos| {
        grams.push(gram);
        if let Some(entries) = entries.as_deref_mut() {
            entries.push(Entry::new(key(gram), ((start + pos as u64) / 2) as u32));
        }
    });
}

impl Segment {
    /// A segment from entries already sorted; drops keys listed in `dropped` and keys repeated too often.
    fn from_sorted(mut entries: Vec<Entry>, mut dropped: Vec<u32>) -> Segment {
        let mut newly_dropped = Vec::new();
        let mut known = 0;
        let mut kept = 0;
        let mut i = 0;
        while i < entries.len() {
            let k = entries[i].key();
            let mut j = i + 1;
            while j < entries.len() && entries[j].key() == k {
                j += 1;
            }
            while known < dropped.len() && dropped[known] < k {
                known += 1;
            }
            if known < dropped.len() && dropped[known] == k {
                // Dropped already.
            } else if j - i > MAX_GRAM_REPEATS {
                newly_dropped.push(k);
            } else {
                // Nothing was dropped before this key yet in most segments: no copy at all then (a
                // `copy_within` call per key cost more than the rest of the loop).
                if kept != i {
                    for k in i..j {
                        entries[kept + k - i] = entries[k];
                    }
                }
                kept += j - i;
            }
            i = j;
        }
        entries.truncate(kept);
        if !newly_dropped.is_empty() {
            dropped.extend(newly_dropped);
            dropped.sort_unstable();
        }
        // About four entries a bucket: a lookup's binary search stays within one cache line or two,
        // and the bucket table costs one byte an entry, not four to eight.
        let buckets = (entries.len() / 4)
            .next_power_of_two()
            .clamp(1 << 4, 1 << 26);
        let bucket_shift = 32 - buckets.trailing_zeros();
        let mut bucket_starts = vec![0u32; buckets + 1];
        for e in &entries {
            bucket_starts[(e.key() >> bucket_shift) as usize + 1] += 1;
        }
        for b in 0..buckets {
            bucket_starts[b + 1] += bucket_starts[b];
        }
        Segment {
            bucket_shift,
            bucket_starts,
            entries,
            dropped,
        }
    }

    /// One segment over `older` and `newer`, whose forms follow `older`'s; the same as building it afresh.
    fn merge(older: Segment, newer: Segment) -> Segment {
        let (a, b) = (older.entries, newer.entries);
        let mut entries = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        // Branch-free: which side is smaller is a coin toss, and a mispredicted branch per entry cost
        // more than the copy itself.
        while i < a.len() && j < b.len() {
            let take_a = a[i] <= b[j];
            entries.push(if take_a { a[i] } else { b[j] });
            i += usize::from(take_a);
            j += usize::from(!take_a);
        }
        entries.extend_from_slice(&a[i..]);
        entries.extend_from_slice(&b[j..]);
        drop((a, b));
        let mut dropped = older.dropped;
        dropped.extend(newer.dropped);
        dropped.sort_unstable();
        dropped.dedup();
        Segment::from_sorted(entries, dropped)
    }

    /// The entries whose gram has key `key`.
    fn lookup(&self, key: u32) -> &[Entry] {
        let bucket = (key >> self.bucket_shift) as usize;
        let range = &self.entries
            [self.bucket_starts[bucket] as usize..self.bucket_starts[bucket + 1] as usize];
        let start = range.partition_point(|e| e.key() < key);
        let len = range[start..].partition_point(|e| e.key() == key);
        &range[start..start + len]
    }
}

/// Filters with room for `added` more grams (text, binary) besides those of `older`, the forms
/// indexed so far: filters they would outgrow are rebuilt first, with room for twice everything,
/// from `older`'s grams sampled again. So the first batch of an index sizes its filters once and
/// samples nothing twice.
fn make_room<'f>(
    filters: &'f mut Option<Filters>,
    older: &[Form],
    added: [usize; 2],
) -> &'f mut Filters {
    let before = match filters {
        Some(f) if !f.outgrown_by(added) => return filters.as_mut().expect("matched above"),
        Some(f) => f.grams,
        None => [0, 0],
    };
    let mut fresh = Filters::with_room_for([before[0] + added[0], before[1] + added[1]]);
    let mut grams = Vec::new();
    for form in older {
        sample_into(form, 0, &mut grams, None);
        fresh.insert_all(grams.iter().copied());
    }
    filters.insert(fresh)
}

/// The size of an index's filters. An index built apart with its live index's shape is absorbed
/// by OR-ing filter words, without sampling its forms again ([`GramIndex::absorb`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Shape([u32; 2]);

impl GramIndex {
    /// The shape of this index's filters, if it has any.
    pub fn shape(&self) -> Option<Shape> {
        self.filters.as_ref().map(|f| Shape(f.shift))
    }

    /// An index of `forms` alone, its filters of shape `shape` when they have room for its grams,
    /// built apart from the live index it is meant for (no lock held) and then absorbed by it.
    pub fn detached(forms: &[Form], shape: Option<Shape>) -> GramIndex {
        let mut index = GramIndex {
            filters: shape.map(|s| Filters::shaped(s.0)),
            ..GramIndex::default()
        };
        index.extend(forms);
        index
    }

    /// Takes in `other`, a [`GramIndex::detached`] index of the forms `forms[self.indexed..]`
    /// (appended to `forms` since the last call): its segments are kept as they are, their
    /// locations moved past this index's forms (which leaves them sorted), and its filter words
    /// OR-ed into this index's when both have one shape and room. Otherwise its forms are sampled
    /// again into filters made room for. The same lookups as indexing the forms here would give.
    pub fn absorb(&mut self, other: GramIndex, forms: &[Form]) {
        let new = self.indexed..forms.len();
        assert_eq!(
            other.indexed,
            new.len(),
            "absorbing an index of other forms"
        );
        if other.indexed == 0 {
            return;
        }
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        let base = self.starts[new.start];
        for &start in &other.starts[1..] {
            assert!(
                (base + start) / 2 <= u64::from(u32::MAX),
                "the copy index holds at most 8 GiB of needle forms"
            );
            self.starts.push(base + start);
        }
        self.indexed = forms.len();
        let theirs = other.filters.expect("an index of forms has filters");
        match &mut self.filters {
            Some(mine) if mine.shift == theirs.shift && !mine.outgrown_by(theirs.grams) => {
                for (w, t) in mine.words.iter_mut().zip(&theirs.words) {
                    *w |= t;
                }
                mine.grams[0] += theirs.grams[0];
                mine.grams[1] += theirs.grams[1];
            }
            None => self.filters = Some(theirs),
            Some(_) => {
                let filters = make_room(&mut self.filters, &forms[..new.start], theirs.grams);
                let mut grams = Vec::new();
                for form in &forms[new] {
                    sample_into(form, 0, &mut grams, None);
                    filters.insert_all(grams.iter().copied());
                }
            }
        }
        let moved = (base / 2) as u32;
        for mut segment in other.segments {
            for e in &mut segment.entries {
                *e = Entry::new(e.key(), e.loc() + moved);
            }
            self.segments.push(segment);
        }
    }

    /// Indexes the forms added to `forms` since the last call (forms are only ever appended).
    pub fn extend(&mut self, forms: &[Form]) {
        if self.indexed >= forms.len() {
            return;
        }
        let new = self.indexed..forms.len();
        self.indexed = forms.len();
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        for f in new.clone() {
            let next = self.starts[f] + (forms[f].bytes.len() as u64).next_multiple_of(2);
            assert!(
                next / 2 <= u64::from(u32::MAX),
                "the copy index holds at most 8 GiB of needle forms"
            );
            self.starts.push(next);
        }
        let upper = new.clone().fold([0, 0], |[t, b], f| {
            let [ft, fb] = class_bound(&forms[f]);
            [t + ft, b + fb]
        });
        let filters = make_room(&mut self.filters, &forms[..new.start], upper);
        // Each new gram is sampled once, for its entry and for the filters alike, a form at a time.
        // Room for every sampled gram: pages never written (grams found uninformative) are never
        // made resident, and growing by doubling would hold the old and new arrays at once.
        let mut entries = Vec::with_capacity(upper[0] + upper[1]);
        on_huge_pages(&entries);
        let mut grams = Vec::new();
        for f in new.clone() {
            sample_into(&forms[f], self.starts[f], &mut grams, Some(&mut entries));
            filters.insert_all(grams.iter().copied());
        }
        drop(grams);
        // Entries were sampled in location order, so a stable sort by key alone leaves them in
        // (key, location) order: a radix sort of the 32-bit key, in about 60% of the time a
        // comparison sort of whole entries took.
        radsort::sort_by_key(&mut entries, |e| e.key());
        let segment = Segment::from_sorted(entries, Vec::new());
        if segment.entries.is_empty() && segment.dropped.is_empty() {
            return;
        }
        self.segments.push(segment);
        while let [.., older, newer] = &self.segments[..]
            && older.entries.len() <= MERGE_RATIO * newer.entries.len()
        {
            let newer = self.segments.pop().expect("two segments");
            let older = self.segments.pop().expect("two segments");
            self.segments.push(Segment::merge(older, newer));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.entries.is_empty())
    }

    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Every copy of >= `MIN_COPY` bytes of any form in `hay`, each reported once per (form, diagonal).
    pub fn find(&self, forms: &[Form], hay: &[u8], out: &mut Vec<RawMatch>) {
        let first = out.len();
        self.find_in(forms, hay, 0..hay.len(), first, out);
    }

    /// [`GramIndex::find`] for the probes that start in `range` of `hay` (matches may extend outside it), so a
    /// large haystack is probed a cache-sized piece at a time, interleaved with other passes over the same
    /// piece. `out[first..]` holds this haystack's earlier matches (a copy crossing pieces is reported once).
    pub fn find_in(
        &self,
        forms: &[Form],
        hay: &[u8],
        range: std::ops::Range<usize>,
        first: usize,
        out: &mut Vec<RawMatch>,
    ) {
        let Some(filters) = &self.filters else {
            return;
        };
        if self.is_empty() || hay.len() < MIN_COPY {
            return;
        }
        // Two passes per block of probes: the first hashes every probe and prefetches its filter word, the
        // second tests them without branching into a candidate list. The binary filter does not fit in cache
        // (tens of MB for a few hundred images): prefetching keeps dozens of its loads in flight where the
        // out-of-order window alone held about ten, which made binary haystacks (process memory, decoded
        // base64) wait on memory for most of their probes.
        const BLOCK: usize = 128;
        let mut slots = [0usize; BLOCK];
        let mut masks = [0u64; BLOCK];
        let mut candidates = [0u32; BLOCK];
        // Probe positions 0, HAY_STRIDE, 2 * HAY_STRIDE, ... while a whole gram fits.
        let probes = ((hay.len() - GRAM) / HAY_STRIDE + 1).min(range.end.div_ceil(HAY_STRIDE));
        let mut first_probe = range.start.div_ceil(HAY_STRIDE);
        while first_probe < probes {
            let count = BLOCK.min(probes - first_probe);
            let block = &hay[first_probe * HAY_STRIDE..];
            for i in 0..count {
                let gram = load(block, i * HAY_STRIDE);
                prefetch(block, i * HAY_STRIDE + HAY_AHEAD);
                let (slot, mask) = filters.slot(gram);
                prefetch(&filters.words, slot);
                slots[i] = slot;
                masks[i] = mask;
            }
            let mut n = 0;
            for i in 0..count {
                candidates[n] = (first_probe + i) as u32;
                n += filters.test(slots[i], masks[i]) as usize;
            }
            for &probe in &candidates[..n] {
                let p = probe as usize * HAY_STRIDE;
                self.verify(forms, hay, p, load(hay, p), first, out);
            }
            first_probe += count;
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
        let key = key(gram);
        for e in self.segments.iter().flat_map(|s| s.lookup(key)) {
            let at = u64::from(e.loc()) * 2;
            let form = self.starts.partition_point(|&s| s <= at) - 1;
            let src = &forms[form].bytes;
            let j = (at - self.starts[form]) as usize;
            let form = form as u32;
            // Already reported as part of a longer copy on the same diagonal?
            let diag = p as i64 - j as i64;
            let seen = out[first..].iter().rev().take(64).any(|m| {
                m.form == form
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
                    form,
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
        let mut index = GramIndex::default();
        index.extend(&forms);
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

    /// The branch-free test counts distinct bytes exactly as a plain count does.
    #[test]
    fn informative_counts_distinct_bytes_exactly() {
        fn distinct(gram: u64) -> usize {
            let mut bytes = gram.to_le_bytes().to_vec();
            bytes.sort_unstable();
            bytes.dedup();
            bytes.len()
        }
        let random = pseudo_random(7, 1 << 16);
        // Few-valued grams hit every boundary: zero bytes, repeats near and far, 3, 4 and 5 distinct.
        let few: Vec<u64> = (0..1u64 << 16)
            .map(|i| {
                (0..8).fold(0u64, |g, k| {
                    g | ([0u8, 1, 0x80, 0xff, 0x7f][((i >> (2 * k)) % 5) as usize] as u64)
                        << (8 * k)
                })
            })
            .collect();
        for gram in random
            .windows(GRAM)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
            .chain(few)
        {
            assert_eq!(informative(gram), distinct(gram) >= 4, "{gram:016x}");
        }
    }

    fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(GRAM_MUL) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Segments merge like a counter: never more than about log2 of the forms added, one at a time or in
    /// uneven batches.
    /// An index built apart and absorbed finds exactly what one index built in place finds, whether
    /// the filters are merged word by word (same shape, room left) or sampled again (the live index
    /// changed shape since, or has no room).
    #[test]
    fn an_absorbed_index_finds_what_an_index_built_in_place_finds() {
        let forms: Vec<Form> = (0..40u64)
            .map(|n| Form {
                bytes: pseudo_random(n + 1, 300 + (n as usize * 7919) % 3000),
            })
            .collect();
        let mut in_place = GramIndex::default();
        in_place.extend(&forms[..25]);
        in_place.extend(&forms);
        // A haystack with a copy of every form's middle, at odd offsets, between filler.
        let mut hay = Vec::new();
        for (i, f) in forms.iter().enumerate() {
            hay.extend(std::iter::repeat_n(b'.', 13 + i));
            let mid = f.bytes.len() / 3;
            hay.extend_from_slice(&f.bytes[mid..mid + MIN_COPY + i]);
        }
        let found = |index: &GramIndex| {
            let mut out = Vec::new();
            index.find(&forms, &hay, &mut out);
            out.sort_by_key(|m| (m.form, m.hay_start));
            out
        };
        let expected = found(&in_place);
        assert_eq!(
            expected.iter().map(|m| m.form).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>(),
            "every form's copy is found"
        );
        // Live filters sized for more than the absorbed grams: merged word by word.
        let roomy = |live: &mut GramIndex| {
            live.extend(&forms[..25]);
            let shape = live.shape();
            let apart = GramIndex::detached(&forms[25..], shape);
            assert_eq!(apart.shape(), shape, "staged with the live shape");
            apart
        };
        let mut live = GramIndex::default();
        let apart = roomy(&mut live);
        live.absorb(apart, &forms);
        assert_eq!(found(&live), expected, "filters merged word by word");
        // Staged with no shape (a live index of another size): its forms are sampled again.
        let mut live = GramIndex::default();
        live.extend(&forms[..25]);
        live.absorb(GramIndex::detached(&forms[25..], None), &forms);
        assert_eq!(found(&live), expected, "filters rebuilt from the forms");
        // Into an empty index: its filters are taken as they are.
        let mut empty = GramIndex::default();
        empty.absorb(GramIndex::detached(&forms, None), &forms);
        assert_eq!(found(&empty), expected, "absorbed into an empty index");
        // A later extension still finds everything.
        let mut more = forms;
        more.push(Form {
            bytes: pseudo_random(99, 1000),
        });
        live.extend(&more);
        let mut out = Vec::new();
        live.find(&more, &more[40].bytes[100..300], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].form, 40);
    }

    #[test]
    fn segment_count_stays_logarithmic() {
        let mut forms = Vec::new();
        let mut index = GramIndex::default();
        let mut most = 0;
        for n in 1..=300usize {
            // Sizes vary so merges do not line up with powers of two.
            let len = 200 + (n * 7919) % 1500;
            forms.push(Form {
                bytes: pseudo_random(n as u64, len),
            });
            if !n.is_multiple_of(5) {
                index.extend(&forms);
            }
            let bound = (forms.len() as f64).log2().ceil() as usize + 2;
            assert!(
                index.segment_count() <= bound,
                "{} segments for {} forms",
                index.segment_count(),
                forms.len()
            );
            most = most.max(index.segment_count());
        }
        assert!(most >= 3, "segments were merged eagerly into {most}");
        index.extend(&forms);
        let entries: usize = index.segments.iter().map(|s| s.entries.len()).sum();
        let mut expected = 0;
        for f in &forms {
            for_each_gram(f, |_, _| expected += 1);
        }
        assert_eq!(entries, expected, "random forms lose no grams to merges");
    }

    /// A gram repeated beyond the limit across forms that were added separately is dropped once their segments
    /// merge, exactly as if they had been indexed together.
    #[test]
    fn repeat_limit_survives_merges() {
        let common = pseudo_random(1, 64);
        let mut forms = Vec::new();
        let mut index = GramIndex::default();
        // Half the limit, then the rest plus one: each segment keeps the block; merged, it repeats too often.
        // Then as many again in one batch, which alone stay within the limit: the merge still drops them.
        let half = MAX_GRAM_REPEATS as u64 / 2;
        for batch in [
            0..half,
            half..MAX_GRAM_REPEATS as u64 + 1,
            100..100 + MAX_GRAM_REPEATS as u64,
        ] {
            for n in batch {
                let mut bytes = pseudo_random(n + 1000, 90);
                bytes.extend_from_slice(&common);
                forms.push(Form { bytes });
            }
            index.extend(&forms);
            assert_eq!(index.segment_count(), 1, "similar segments merge into one");
        }
        let mut out = Vec::new();
        index.find(&forms, &common, &mut out);
        assert!(out.is_empty(), "{} copies of a repeated block", out.len());
        let mut out = Vec::new();
        index.find(&forms, &forms[3].bytes[..MIN_COPY], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].form, 3);
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
