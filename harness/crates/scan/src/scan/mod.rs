//! The scanner: finds image bytes, blobs and tokens in any haystack, in any of the encodings a leak takes.
//!
//! Three mechanisms, each where it is cheap:
//! - copies of images and blobs (file bytes and decoded pixel rows) are found by a sampled gram index probed every
//!   27 haystack bytes ([`index`]); any run of [`MIN_COPY`] consecutive source bytes is a hit;
//! - base64 (standard and URL-safe, any alignment, wrapped or not), hex and percent-encoded runs are decoded and
//!   the decoded bytes go through the same index ([`layers`]);
//! - short tokens are spelled out in every encoding and found by Aho-Corasick automata ([`tokens`]), run only
//!   over the stretches of the haystack made of bytes some token form contains.
//!
//! A large haystack is probed and searched for encoded runs a cache-sized piece at a time, so it is read from
//! memory once.
//!
//! Images are also hashed perceptually so a resized or re-encoded copy is recognised by [`Scanner::match_image`].

mod index;
mod layers;
mod phash;
mod retired;
mod sweep;
mod tokens;

pub use phash::MAX_DISTANCE as MAX_IMAGE_DISTANCE;
pub use sweep::{Coverage, Haystacks, Residue, ResiduePass, Residues, SweepPass, covered};

pub use traceless_evidence::hit::{
    EXCERPT_BYTES, Encoding, Hit, ImageMatch, MIN_COPY, NeedleId, RequestId, SourceForm, Subject,
};

/// Bytes of each chunk carried into the next by [`Scanner::scan_chunk`] (at least the longest token form).
const MIN_OVERLAP: usize = 1024;

/// Overlap carried between chunks of one stream.
#[derive(Debug, Default, Clone)]
pub struct StreamState {
    /// Stream offset of the first byte after everything seen so far.
    position: u64,
    carry: Vec<u8>,
    buf: Vec<u8>,
}

impl StreamState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the stream consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// Of a needle larger than these two together, only its first and last bytes are indexed: a
/// copy is found when it overlaps either.
pub const MAX_INDEXED_HEAD: usize = 3 << 20;
pub const MAX_INDEXED_TAIL: usize = 1 << 20;

struct FormMeta {
    needle: NeedleId,
    form: SourceForm,
    /// Where the indexed bytes start in the needle's source (hits report source offsets).
    base: u64,
}

/// Every needle of an audit and the machinery to find them. Add needles, then scan (from any thread).
#[derive(Default)]
pub struct Scanner {
    forms: Vec<index::Form>,
    form_meta: Vec<FormMeta>,
    images: Vec<(NeedleId, phash::Packed)>,
    /// Kept up to date by every add, so scanning needs no lock and no rebuild.
    index: index::GramIndex,
    tokens: tokens::TokenIndex,
    /// Every byte that occurs in some token form, one bit each.
    token_bytes: ByteSet,
    /// Needles retired from the live index, on disk (see [`Scanner::retire_before`]).
    retired: Option<retired::Retired>,
    /// The newest request any needle was ever added for (see [`Scanner::newest_request`]).
    newest: RequestId,
}

/// Bytes of retired needle forms rebuilt into one scanner at a time by [`Scanner::generations`]: indexed,
/// about ten times this in memory at its peak (heaptrack of the default audit: with 8 MB batches the end-of-run sweep was the
/// default audit's peak, 185 MB of one rebuilt index).
pub const RETIRED_BATCH_BYTES: usize = 4 << 20;

/// The filter shape of a live scanner's index, read (under a lock, briefly) before staging.
#[derive(Clone, Copy, Debug)]
pub struct StagingShape(Option<index::Shape>);

/// Image needles made ready apart from the scanner they are for: decoded, hashed and indexed
/// with no lock held, then added with [`Scanner::absorb`].
pub struct Staged {
    inner: Box<Scanner>,
}

impl Staged {
    /// Stages images as [`Scanner::add_images`] would add them, for a scanner whose index had
    /// `shape` when staging began (a scanner whose index changed shape since absorbs them
    /// correctly, only slower).
    pub fn images<'a>(
        shape: StagingShape,
        images: impl IntoIterator<Item = (NeedleId, &'a [u8])>,
    ) -> Staged {
        let mut inner = Box::new(Scanner::new());
        for (id, bytes) in images {
            inner.add_image_forms(id, bytes);
        }
        inner.index = index::GramIndex::detached(&inner.forms, shape.0);
        Staged { inner }
    }
}

/// One generation of needles: the live scanner, or a batch of retired needles rebuilt from disk.
pub enum Generation<'a> {
    Live(&'a Scanner),
    /// Retired needles, of requests `oldest` and later.
    Retired {
        needles: Box<Scanner>,
        oldest: RequestId,
    },
}

impl Generation<'_> {
    /// The oldest request with a needle in this generation (0 for the live one, which holds the
    /// audit's own): what a haystack read before that request's first needle was added cannot
    /// hold (see [`Scanner::newest_request`]).
    pub fn oldest_request(&self) -> RequestId {
        match self {
            Generation::Live(_) => 0,
            Generation::Retired { oldest, .. } => *oldest,
        }
    }
}

impl std::ops::Deref for Generation<'_> {
    type Target = Scanner;

    fn deref(&self) -> &Scanner {
        match self {
            Generation::Live(s) => s,
            Generation::Retired { needles, .. } => needles,
        }
    }
}

/// A set of byte values.
#[derive(Default, Clone, Copy)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    #[inline(always)]
    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] >> (b & 63) & 1 != 0
    }
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// An image file: its bytes in every encoding, its decoded pixel rows (as the decoder yields them, plus RGB8
    /// and RGBA8 conversions), and its perceptual hash. Of the file's bytes only the coded pixels are a needle
    /// (container headers and metadata are shared by every file of a kind): a file cut off before them adds
    /// no byte needle at all; bytes that are no image file are searched whole, as a blob.
    pub fn add_image(&mut self, id: NeedleId, bytes: &[u8]) {
        self.add_image_forms(id, bytes);
        self.index.extend(&self.forms);
    }

    /// Several images at once (see [`Scanner::add_image`]): the index takes all their forms in one
    /// segment, sorted once, instead of one segment an image merged into the others again and
    /// again.
    pub fn add_images<'a>(&mut self, images: impl IntoIterator<Item = (NeedleId, &'a [u8])>) {
        for (id, bytes) in images {
            self.add_image_forms(id, bytes);
        }
        self.index.extend(&self.forms);
    }

    /// The newest request any needle was ever added for, retired or not. A haystack read when this
    /// was `n` cannot hold a needle of a later request: requests get their needles before they
    /// are sent, and an output only exists once its request was sent. So the end-of-run sweep
    /// reads a residue kept then with the generations of requests up to `n` only.
    pub fn newest_request(&self) -> RequestId {
        self.newest
    }

    /// The shape its index's filters have now: what [`Staged::images`] builds for, so that
    /// [`Scanner::absorb`] is quick.
    pub fn staging_shape(&self) -> StagingShape {
        StagingShape(self.index.shape())
    }

    /// Adds needles staged apart ([`Staged::images`]): the same as [`Scanner::add_images`] with
    /// their images, but the decoding, hashing and indexing were done before, without this
    /// scanner, so a caller holding it behind a lock holds the lock only for this splice.
    pub fn absorb(&mut self, staged: Staged) {
        let Staged { inner } = staged;
        self.newest = self.newest.max(inner.newest);
        let Scanner {
            forms,
            form_meta,
            images,
            index,
            ..
        } = *inner;
        self.forms.extend(forms);
        self.form_meta.extend(form_meta);
        self.images.extend(images);
        self.index.absorb(index, &self.forms);
    }

    fn add_image_forms(&mut self, id: NeedleId, bytes: &[u8]) {
        self.newest = self.newest.max(id.request);
        // Only the coded pixels identify a picture: container headers, quantisation and Huffman
        // tables are shared by every file from the same encoder (and sit in any decoder's memory), and
        // metadata after the pixels (WebP's EXIF and XMP chunks) is mostly boilerplate shared by every
        // canary ("Traceless Canary" matched every log line naming the pipeline); the metadata's own
        // marker is a token of its own.
        let payload = payload_range(bytes);
        self.add_bytes(id, &bytes[payload.clone()], payload.start as u64);
        if let Ok(img) = image::load_from_memory(bytes) {
            let hash = phash::Packed::of(&phash::hasher().hash_image(&img));
            self.images.push((id, hash));
            let native = img.as_bytes().to_vec();
            let rgb = img.to_rgb8().into_raw();
            let rgba = img.to_rgba8().into_raw();
            for pixels in [native, rgb, rgba] {
                if !self
                    .forms
                    .iter()
                    .zip(&self.form_meta)
                    .any(|(f, m)| m.needle == id && f.bytes == pixels)
                {
                    self.add_form(id, SourceForm::PixelRows, pixels);
                }
            }
        }
    }

    /// Binary data: found in every encoding; any run of [`MIN_COPY`] bytes is a hit.
    pub fn add_blob(&mut self, id: NeedleId, bytes: &[u8]) {
        self.add_bytes(id, bytes, 0);
        self.index.extend(&self.forms);
    }

    /// Indexes a needle's bytes; of a very large one (a 20 MB upload), its head and tail only,
    /// which bounds the index's memory and the work of adding one.
    fn add_bytes(&mut self, id: NeedleId, bytes: &[u8], base: u64) {
        if bytes.len() <= MAX_INDEXED_HEAD + MAX_INDEXED_TAIL {
            self.add_form_at(id, SourceForm::Bytes, bytes.to_vec(), base);
            return;
        }
        let tail_start = bytes.len() - MAX_INDEXED_TAIL;
        self.add_form_at(
            id,
            SourceForm::Bytes,
            bytes[..MAX_INDEXED_HEAD].to_vec(),
            base,
        );
        self.add_form_at(
            id,
            SourceForm::Bytes,
            bytes[tail_start..].to_vec(),
            base + tail_start as u64,
        );
    }

    /// A short string, found whole in raw, JSON-escaped, percent, hex and base64 (every alignment) forms.
    pub fn add_token(&mut self, id: NeedleId, text: &str) {
        self.newest = self.newest.max(id.request);
        for (_, form) in tokens::forms(text) {
            for b in form {
                self.token_bytes.insert(b);
            }
        }
        self.tokens.add(id, text);
    }

    fn add_form(&mut self, id: NeedleId, form: SourceForm, bytes: Vec<u8>) {
        self.add_form_at(id, form, bytes, 0);
    }

    fn add_form_at(&mut self, id: NeedleId, form: SourceForm, bytes: Vec<u8>, base: u64) {
        self.newest = self.newest.max(id.request);
        if bytes.len() < MIN_COPY {
            return;
        }
        self.forms.push(index::Form { bytes });
        self.form_meta.push(FormMeta {
            needle: id,
            form,
            base,
        });
    }

    /// Moves every needle of requests `1..before` out of the live index to disk: [`Scanner::scan`] and its kin
    /// no longer find them, [`Scanner::generations`] and [`Scanner::sweep`] still do. Request 0 (the audit's
    /// own secrets) and perceptual hashes are never retired. The live index is rebuilt over what stays, so a
    /// caller retires in batches (at least as much as stays), which keeps the rebuilds' cost linear overall.
    /// Returns how many needle forms and tokens were retired.
    pub fn retire_before(&mut self, before: RequestId) -> std::io::Result<usize> {
        let gone = |n: &NeedleId| n.request != 0 && n.request < before;
        let mut records = Vec::new();
        let mut kept_forms = Vec::new();
        let mut kept_meta = Vec::new();
        let mut requests = std::collections::BTreeSet::new();
        for (form, meta) in std::mem::take(&mut self.forms)
            .into_iter()
            .zip(std::mem::take(&mut self.form_meta))
        {
            if gone(&meta.needle) {
                requests.insert(meta.needle.request);
                records.push(retired::Record::Form {
                    needle: meta.needle,
                    form: meta.form,
                    base: meta.base,
                    bytes: form.bytes,
                });
            } else {
                kept_forms.push(form);
                kept_meta.push(meta);
            }
        }
        for (needle, text) in self.tokens.split_off(gone) {
            requests.insert(needle.request);
            records.push(retired::Record::Token { needle, text });
        }
        self.forms = kept_forms;
        self.form_meta = kept_meta;
        if records.is_empty() {
            return Ok(0);
        }
        self.index = index::GramIndex::default();
        self.index.extend(&self.forms);
        let store = match &mut self.retired {
            Some(store) => store,
            None => self.retired.insert(retired::Retired::create()?),
        };
        store.append(&records)?;
        store.requests += requests.len() as u64;
        Ok(records.len())
    }

    /// Bytes of needle forms in the live index (about a sixth of its memory: each indexed gram costs 8 bytes per
    /// two bytes of form, plus its bucket and filter bits).
    pub fn live_form_bytes(&self) -> usize {
        self.forms.iter().map(|f| f.bytes.len()).sum()
    }

    /// Requests whose needles were retired to disk (a request retired in two steps counts twice).
    pub fn retired_requests(&self) -> u64 {
        self.retired.as_ref().map_or(0, |r| r.requests)
    }

    /// Every needle, a generation at a time: this scanner's live needles, then each batch of
    /// [`RETIRED_BATCH_BYTES`] of retired ones rebuilt from disk. Scanning a haystack with every
    /// generation finds what one scanner holding every needle would (perceptual hashes live only in the
    /// first).
    pub fn generations(&self) -> impl Iterator<Item = std::io::Result<Generation<'_>>> + '_ {
        std::iter::once(Ok(Generation::Live(self))).chain(
            self.retired
                .iter()
                .flat_map(|r| r.batches(RETIRED_BATCH_BYTES))
                .map(|batch| {
                    batch.map(|b| {
                        let oldest = b.iter().map(retired::Record::request).min().unwrap_or(0);
                        Generation::Retired {
                            needles: Box::new(Scanner::rebuilt(b)),
                            oldest,
                        }
                    })
                }),
        )
    }

    /// A scanner over retired records.
    fn rebuilt(records: Vec<retired::Record>) -> Scanner {
        let mut s = Scanner::new();
        for r in records {
            match r {
                retired::Record::Form {
                    needle,
                    form,
                    base,
                    bytes,
                } => s.add_form_at(needle, form, bytes, base),
                retired::Record::Token { needle, text } => s.add_token(needle, &text),
            }
        }
        s.index.extend(&s.forms);
        s
    }

    /// Every needle in `hay`; one hit per needle, encoding and contiguous region (none inside another
    /// of its needle), ordered by offset.
    pub fn scan(&self, hay: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        self.scan_into(hay, &mut hits);
        merge(hits)
    }

    fn scan_into(&self, hay: &[u8], hits: &mut Vec<Hit>) {
        if !self.index.is_empty() {
            // The haystack is probed and searched for encoded runs a piece at a time, so the second pass reads
            // the piece from cache rather than streaming the whole haystack from memory twice.
            const PIECE: usize = 1 << 16;
            let mut matches = Vec::new();
            let mut decoded_matches = Vec::new();
            let mut decoded = Vec::new();
            let mut runs = layers::RunFinder::default();
            let mut at = 0;
            while at < hay.len() {
                let end = (at + PIECE).min(hay.len());
                self.index
                    .find_in(&self.forms, hay, at..end, 0, &mut matches);
                runs.advance(hay, end, |start, end| {
                    decoded.clear();
                    layers::decode_run(hay, start, end, true, &mut decoded);
                    for d in &decoded {
                        decoded_matches.clear();
                        self.index.find(&self.forms, &d.bytes, &mut decoded_matches);
                        for m in &decoded_matches {
                            let (s, e) = d.parent_range(m.hay_start, m.hay_end);
                            hits.push(self.copy_hit(
                                m,
                                layers::refine(d.encoding, &hay[s..e]),
                                s,
                                e,
                            ));
                        }
                    }
                });
                at = end;
            }
            for m in &matches {
                let meta = &self.form_meta[m.form as usize];
                let encoding = match meta.form {
                    SourceForm::Bytes => Encoding::Raw,
                    SourceForm::PixelRows => Encoding::PixelRows,
                };
                hits.push(self.copy_hit(m, encoding, m.hay_start, m.hay_end));
            }
        }
        if !self.tokens.is_empty() {
            self.find_tokens(hay, hits);
        }
    }

    /// Tokens, searched only where they can be: a token form is made of bytes of `token_bytes` (hex digits,
    /// base64 and URL characters for the usual ASCII tokens), so every match lies inside a stretch of such bytes
    /// at least [`tokens::MIN_FORM_LEN`] long. Binary data (process memory, decoded pixels, compressed files)
    /// has few such stretches, and gathering them into one buffer, separated by a byte no form contains, lets
    /// the automata skip everything else; text, mostly such stretches, is searched whole.
    fn find_tokens(&self, hay: &[u8], hits: &mut Vec<Hit>) {
        let alphabet = &self.token_bytes;
        let mut push = |form: &tokens::TokenForm, start: usize, end: usize| {
            hits.push(Hit {
                needle: form.needle,
                encoding: form.encoding,
                offset: start as u64,
                len: (end - start) as u64,
                source_offset: 0,
                source_len: form.source_len as u64,
                form: SourceForm::Bytes,
            });
        };
        let Some(separator) = (0..=u8::MAX).find(|&b| !alphabet.contains(b)) else {
            self.tokens.find(hay, push);
            return;
        };
        let mut member = [0u8; 256];
        for (b, m) in member.iter_mut().enumerate() {
            *m = alphabet.contains(b as u8) as u8;
        }
        let t = |b: u8| member[usize::from(b)];
        // Every stretch of at least MIN_FORM_LEN (8) alphabet bytes contains a multiple of 8, `p`, and then
        // either `p - 3..=p` (it starts 3 or more before `p`) or `p..=p + 5` (it starts after, so ends at
        // `p + 6` or later). Testing both without a branch keeps the loop free of mispredictions on binary data,
        // where a single byte is in the alphabet a third of the time but such a pattern rarely holds.
        let step = tokens::MIN_FORM_LEN;
        const _: () = assert!(tokens::MIN_FORM_LEN == 8);
        let mut stretches: Vec<(usize, usize)> = Vec::new();
        let mut total = 0;
        let mut covered_to = 0;
        let mut p = 0;
        // Tokens in ASCII (the usual case) cannot touch a byte with the high bit set: two word loads rule out
        // most samples of binary data before any table look-up.
        let ascii = (128..=u8::MAX).all(|b| !alphabet.contains(b));
        const LOW4: u64 = 0x8080_8080;
        const LOW6: u64 = 0x8080_8080_8080;
        while p < hay.len() {
            if ascii && let Some(w) = hay.get(p.wrapping_sub(3)..p + 8) {
                let before = u64::from_le_bytes(w[..8].try_into().expect("eight bytes"));
                let after = u64::from_le_bytes(w[3..].try_into().expect("eight bytes"));
                if before & LOW4 != 0 && after & LOW6 != 0 {
                    p += step;
                    continue;
                }
            }
            let maybe = match hay.get(p.wrapping_sub(3)..p + 6) {
                Some(w) => {
                    let before = t(w[0]) & t(w[1]) & t(w[2]) & t(w[3]);
                    let after = t(w[3]) & t(w[4]) & t(w[5]) & t(w[6]) & t(w[7]) & t(w[8]);
                    before | after != 0
                }
                None => t(hay[p]) != 0,
            };
            if maybe && p >= covered_to {
                let mut start = p;
                while start > covered_to && t(hay[start - 1]) != 0 {
                    start -= 1;
                }
                let mut end = p + 1;
                while end < hay.len() && t(hay[end]) != 0 {
                    end += 1;
                }
                covered_to = end;
                if t(hay[p]) != 0 && end - start >= step {
                    stretches.push((start, end));
                    total += end - start;
                }
            }
            p += step;
        }
        if total > hay.len() / 2 {
            self.tokens.find(hay, push);
            return;
        }
        // Gathered: each stretch followed by the separator; `starts[i]` is where stretch i begins in it.
        let mut gathered = Vec::with_capacity(total + stretches.len());
        let mut starts = Vec::with_capacity(stretches.len());
        for &(s, e) in &stretches {
            starts.push(gathered.len());
            gathered.extend_from_slice(&hay[s..e]);
            gathered.push(separator);
        }
        self.tokens.find(&gathered, |form, start, end| {
            let i = starts.partition_point(|&s| s <= start) - 1;
            let shift = stretches[i].0 - starts[i];
            push(form, start + shift, end + shift);
        });
    }

    fn copy_hit(
        &self,
        m: &index::RawMatch,
        encoding: Encoding,
        hay_start: usize,
        hay_end: usize,
    ) -> Hit {
        let meta = &self.form_meta[m.form as usize];
        Hit {
            needle: meta.needle,
            encoding,
            offset: hay_start as u64,
            len: (hay_end - hay_start) as u64,
            source_offset: meta.base + m.src_start as u64,
            source_len: (m.hay_end - m.hay_start) as u64,
            form: meta.form,
        }
    }

    /// Bytes a caller streaming a haystack through [`Scanner::scan`] in pieces must carry from one piece into the
    /// next so every token and every copy of up to this many bytes is found whole (what
    /// [`Scanner::scan_chunk`] carries).
    pub fn stream_overlap(&self) -> usize {
        MIN_OVERLAP.max(self.tokens.longest)
    }

    /// Streaming scan: only an overlap of the previous chunk is kept, so a stream of any size is scanned in
    /// bounded memory and a copy split across chunks is still found. Offsets are stream offsets. A copy that
    /// straddles a chunk boundary may be reported by both chunks (overlapping hits, exact offsets each).
    pub fn scan_chunk(&self, state: &mut StreamState, chunk: &[u8]) -> Vec<Hit> {
        let overlap = self.stream_overlap();
        let mut buf = std::mem::take(&mut state.buf);
        buf.clear();
        buf.extend_from_slice(&state.carry);
        buf.extend_from_slice(chunk);
        let carried = state.carry.len();
        let base = state.position - carried as u64;
        let mut hits = Vec::new();
        self.scan_into(&buf, &mut hits);
        hits.retain(|h| h.end() > carried as u64);
        for h in &mut hits {
            h.offset += base;
        }
        let keep = buf.len().min(overlap);
        state.carry.clear();
        state.carry.extend_from_slice(&buf[buf.len() - keep..]);
        state.position += chunk.len() as u64;
        state.buf = buf;
        merge(hits)
    }

    /// Decodes `file_bytes` (PNG, JPEG or WebP) and returns the closest image needle by perceptual hash, if
    /// within [`MAX_IMAGE_DISTANCE`].
    pub fn match_image(&self, file_bytes: &[u8]) -> Option<ImageMatch> {
        self.image_matches(file_bytes)
            .into_iter()
            .min_by_key(|m| m.distance)
    }

    /// Every image needle within [`MAX_IMAGE_DISTANCE`] of the decoded `file_bytes`, closest first: a photo
    /// sent in several requests matches each of them.
    pub fn image_matches(&self, file_bytes: &[u8]) -> Vec<ImageMatch> {
        if self.images.is_empty() {
            return Vec::new();
        }
        let Some(hash) = phash::hash_file(file_bytes) else {
            return Vec::new();
        };
        let mut out: Vec<ImageMatch> = self
            .images
            .iter()
            .map(|(needle, h)| ImageMatch {
                needle: *needle,
                distance: h.distance(&hash),
            })
            .filter(|m| m.distance <= MAX_IMAGE_DISTANCE)
            .collect();
        out.sort_by_key(|m| (m.distance, m.needle));
        out
    }
}

/// One hit per needle, encoding, form and contiguous (or overlapping) haystack region: what [`Scanner::scan`]
/// returns, for callers that scan one haystack in overlapping pieces and gather the hits (offsets must be in
/// one address space).
pub fn merge_hits(hits: Vec<Hit>) -> Vec<Hit> {
    merge(hits)
}

/// One hit per needle, encoding, form and contiguous (or overlapping) haystack region.
fn merge(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_by_key(|h| {
        (
            h.needle,
            h.encoding,
            h.form,
            h.offset,
            std::cmp::Reverse(h.len),
        )
    });
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if let Some(last) = out.last_mut()
            && (last.needle, last.encoding, last.form) == (h.needle, h.encoding, h.form)
            && h.offset <= last.end()
        {
            let end = last.end().max(h.end());
            let src_start = last.source_offset.min(h.source_offset);
            let src_end =
                (last.source_offset + last.source_len).max(h.source_offset + h.source_len);
            last.len = end - last.offset;
            last.source_offset = src_start;
            last.source_len = src_end - src_start;
            continue;
        }
        out.push(h);
    }
    // A region decoded one way may also decode another way (the escape-free tail of percent-encoded
    // base64 is plain base64), and a file's bytes hold its pixel rows when it is stored uncompressed:
    // of the hits of one needle, keep only those no other hit's region contains. A hit that says
    // nothing new costs memory for the run's length (an uncompressed PNG answer gave one hit per
    // row besides the file's own).
    drop_contained(&mut out);
    out.sort_by_key(|h| (h.offset, h.needle, h.encoding));
    // The filters above reuse the allocation made for every raw hit: hits are kept for the
    // run's length, so they keep no more room than they fill.
    out.shrink_to_fit();
    out
}

/// Drops the fragments: every hit whose haystack region lies inside another hit's of the same
/// needle, read the same way (encoding) or at least [`MIN_COPY`] bytes shorter. A stored PNG's hit
/// thus stands for the pixel rows inside it, while a reading of nearly the same bytes in another
/// encoding stays: decoded pixels held in memory also read as the rows a PNG stores unfiltered
/// (with the filter bytes between them), and which reading reaches a byte further depends on the
/// bytes around them.
fn drop_contained(hits: &mut Vec<Hit>) {
    hits.sort_by_key(|h| {
        (
            h.needle,
            h.offset,
            std::cmp::Reverse(h.len),
            std::cmp::Reverse(h.source_len),
            h.form,
            h.encoding,
        )
    });
    // Earlier hits of a needle start no later: the kept one that reaches furthest contains the next
    // hit if that ends no later.
    let mut container: Option<(NeedleId, u64, Encoding, u64)> = None;
    hits.retain(|h| {
        let fragment = container.is_some_and(|(needle, end, encoding, len)| {
            needle == h.needle
                && h.end() <= end
                && (encoding == h.encoding || h.len + MIN_COPY as u64 <= len)
        });
        if !fragment && container.is_none_or(|(n, end, ..)| n != h.needle || h.end() > end) {
            container = Some((h.needle, h.end(), h.encoding, h.len));
        }
        !fragment
    });
}

/// Where the coded image data sits in a PNG (its IDAT chunks), JPEG (after the first SOS header) or WebP (the
/// VP8/VP8L bitstream); the whole file for anything else or anything malformed.
fn payload_range(b: &[u8]) -> std::ops::Range<usize> {
    let be32 = |i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    let le32 = |i: usize| {
        b.get(i..i + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut i = 8;
        let mut start = None;
        while let Some(len) = be32(i) {
            let idat = b.get(i + 4..i + 8) == Some(b"IDAT");
            match (idat, start) {
                (true, None) => start = Some(i + 8),
                // IDAT chunks are consecutive: the first other chunk after them ends the image data.
                (false, Some(s)) => return s..i.min(b.len()),
                _ => {}
            }
            i = i.saturating_add(12 + len);
        }
        if let Some(s) = start {
            return s..b.len();
        }
    } else if b.starts_with(&[0xff, 0xd8]) {
        let mut i = 2;
        while b.get(i) == Some(&0xff) {
            let marker = b.get(i + 1).copied().unwrap_or(0);
            let Some(len) = b
                .get(i + 2..i + 4)
                .map(|x| usize::from(u16::from_be_bytes([x[0], x[1]])))
            else {
                break;
            };
            if marker == 0xda {
                return (i + 2 + len).min(b.len())..b.len();
            }
            i += 2 + len;
        }
    } else if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        let mut i = 12;
        while let Some(len) = le32(i + 4) {
            if matches!(b.get(i..i + 4), Some(b"VP8 " | b"VP8L")) {
                return i + 8..(i + 8).saturating_add(len).min(b.len());
            }
            i = i.saturating_add(8 + len + (len & 1));
        }
    }
    if looks_like_image(b) {
        // An image file cut off before its coded pixels (a truncated upload) is only headers and
        // metadata boilerplate that every file from the same encoder shares: nothing in it is
        // specific to one request.
        return b.len()..b.len();
    }
    0..b.len()
}

fn looks_like_image(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG\r\n\x1a\n")
        || b.starts_with(&[0xff, 0xd8])
        || (b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(encoding: Encoding, offset: u64, len: u64, source_len: u64) -> Hit {
        Hit {
            needle: NeedleId {
                request: 1,
                subject: Subject::Image,
            },
            encoding,
            offset,
            len,
            source_offset: 0,
            source_len,
            form: match encoding {
                Encoding::PixelRows => SourceForm::PixelRows,
                _ => SourceForm::Bytes,
            },
        }
    }

    /// Planted pixel rows also read as the rows a noise PNG stores unfiltered (across the filter
    /// bytes, so more source bytes), a byte further when a neighbouring byte happens to match a
    /// filter byte. Both readings stay; a hit inside of the same encoding, or a row's fragment,
    /// does not.
    #[test]
    fn fragments_are_left_out_and_other_readings_of_the_same_bytes_stay() {
        for stored_len in [18432, 18433] {
            let mut hits = vec![
                hit(Encoding::PixelRows, 100, 18432, 18432),
                hit(Encoding::Raw, 100, stored_len, 18495),
                hit(Encoding::Raw, 100, 18432, 18400),
                hit(Encoding::PixelRows, 400, 288, 288),
            ];
            drop_contained(&mut hits);
            let kept: Vec<_> = hits.iter().map(|h| (h.encoding, h.source_len)).collect();
            assert_eq!(
                kept,
                vec![(Encoding::Raw, 18495), (Encoding::PixelRows, 18432)]
            );
        }
    }
}
