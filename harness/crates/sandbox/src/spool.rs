//! The spool: every byte the logs and filesystem monitors read, kept in an anonymous temp file
//! until the end of the run, then scanned again with every needle.
//!
//! A monitor scans what it reads with the needles live at that moment. Two kinds of needle are
//! not live then: those of requests already retired to disk (long audits), and a generated image,
//! which becomes a needle only once its provider call is attributed. A copy printed or written at
//! such a moment would be missed for good if the bytes were gone: a log line is not there to read
//! again, a file may be deleted or overwritten before the end. So the monitors append what they
//! read here, and [`Spool::sweep`] scans it with every generation of needles once the pipeline
//! has stopped. Hits the live scans already reported are not reported twice.
//!
//! The file is unlinked at creation (nothing outlives the process, however it ends) and bounded
//! by a byte limit; past it nothing more is kept, and the sweep says which monitor's evidence is
//! then incomplete.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;

use traceless_scan::scan::{Generation, Hit, NeedleId, Scanner, StreamState, SweepPass};

use crate::events::{Event, EventKind, MonitorKind};

/// Bytes kept at most (output and files together).
pub const DEFAULT_LIMIT: u64 = 2 << 30;
/// Chunks of one stream closer in time than this are kept as one segment.
const MERGE_MS: u64 = 1000;
/// How much of the spool is read at a time when it is swept.
const SWEEP_CHUNK: usize = 1 << 20;

/// Where a segment's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A stream of the pipeline's (stdout, stderr), from the stream offset `origin`.
    Stream { name: &'static str, origin: u64 },
    /// A file, as read once by the filesystem monitor: `copy` numbers the reads (a copy's bytes
    /// may lie in several segments when a stream's chunk came between them).
    File {
        path: PathBuf,
        pid: Option<u32>,
        copy: u64,
    },
}

#[derive(Debug)]
struct Segment {
    source: Source,
    /// When its first byte was read, on the event log's clock.
    t_ms: u64,
    /// Where it lies in the spool file.
    at: u64,
    len: u64,
}

#[derive(Debug, Default)]
struct Inner {
    file: Option<File>,
    len: u64,
    segments: Vec<Segment>,
    /// Bytes not kept: over the limit, or after a write failed.
    dropped: u64,
    /// Which monitors lost bytes.
    dropped_from: Vec<MonitorKind>,
    error: Option<String>,
    copies: u64,
}

/// The spool of one supervised run. Shared by the monitors that append to it.
#[derive(Debug)]
pub struct Spool {
    limit: u64,
    inner: Mutex<Inner>,
}

impl Default for Spool {
    fn default() -> Self {
        Spool::with_limit(DEFAULT_LIMIT)
    }
}

/// What the sweep found that the live scans had not, and what it could not look at.
#[derive(Debug, Default)]
pub struct Swept {
    /// New events: output chunks and file contents with hits no live scan reported.
    pub events: Vec<Event>,
    /// Monitors whose bytes were not all kept, and why: their evidence is incomplete.
    pub incomplete: Vec<(MonitorKind, String)>,
}

impl Spool {
    pub fn with_limit(limit: u64) -> Spool {
        Spool {
            limit,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Keeps `bytes` of a stream chunk starting at stream offset `offset`, read at `t_ms`.
    pub fn stream(&self, name: &'static str, offset: u64, t_ms: u64, bytes: &[u8]) {
        let mut inner = self.lock();
        let spool_len = inner.len;
        if let Some(last) = inner.segments.last_mut()
            && let Source::Stream { name: n, origin } = &last.source
            && *n == name
            && last.at + last.len == spool_len
            && origin + last.len == offset
            && t_ms.saturating_sub(last.t_ms) < MERGE_MS
        {
            if self.write(&mut inner, bytes, MonitorKind::Logs) {
                inner.segments.last_mut().expect("just matched").len += bytes.len() as u64;
            }
            return;
        }
        self.append(
            &mut inner,
            Source::Stream {
                name,
                origin: offset,
            },
            t_ms,
            bytes,
            MonitorKind::Logs,
        );
    }

    /// Starts keeping a file's content as read at `t_ms`; [`FileCopy::push`] adds its bytes.
    pub fn file(&self, path: PathBuf, pid: Option<u32>, t_ms: u64) -> FileCopy<'_> {
        let mut inner = self.lock();
        inner.copies += 1;
        FileCopy {
            spool: self,
            source: Source::File {
                path,
                pid,
                copy: inner.copies,
            },
            t_ms,
        }
    }

    /// Bytes kept so far.
    pub fn len(&self) -> u64 {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(
        &self,
        inner: &mut Inner,
        source: Source,
        t_ms: u64,
        bytes: &[u8],
        monitor: MonitorKind,
    ) {
        let at = inner.len;
        if self.write(inner, bytes, monitor) {
            inner.segments.push(Segment {
                source,
                t_ms,
                at,
                len: bytes.len() as u64,
            });
        }
    }

    /// Appends to the file; false (and the bytes counted as dropped) when over the limit or failing.
    fn write(&self, inner: &mut Inner, bytes: &[u8], monitor: MonitorKind) -> bool {
        let lost = |inner: &mut Inner| {
            inner.dropped += bytes.len() as u64;
            if !inner.dropped_from.contains(&monitor) {
                inner.dropped_from.push(monitor);
            }
            false
        };
        if inner.error.is_some() || inner.len + bytes.len() as u64 > self.limit {
            return lost(inner);
        }
        if inner.file.is_none() {
            match tempfile::tempfile() {
                Ok(f) => inner.file = Some(f),
                Err(e) => {
                    inner.error = Some(format!("creating the spool file: {e}"));
                    return lost(inner);
                }
            }
        }
        let file = inner.file.as_mut().expect("created above");
        match file.write_all(bytes) {
            Ok(()) => {
                inner.len += bytes.len() as u64;
                true
            }
            Err(e) => {
                inner.error = Some(format!("writing the spool file: {e}"));
                lost(inner)
            }
        }
    }

    /// Scans everything kept with every needle `scanner` knows, live and retired, and returns what
    /// `known` (the events recorded so far) does not already report. Run once the monitors have
    /// stopped appending.
    pub fn sweep(&self, scanner: &Scanner, known: &[Event]) -> io::Result<Swept> {
        let mut pass = self.sweep_pass(known);
        scanner.sweep_passes(&mut [&mut pass])?;
        Ok(pass.finish(&[]))
    }

    /// The spool as one pass of an end-of-run sweep ([`Scanner::sweep_passes`]); it holds the
    /// spool's lock until [`SpoolPass::finish`]. Start it once the monitors have stopped appending.
    pub fn sweep_pass(&self, known: &[Event]) -> SpoolPass<'_> {
        SpoolPass {
            spool: self,
            inner: self.lock(),
            found: Found::new(known),
        }
    }
}

/// [`Spool::sweep`]'s work, one generation of needles at a time.
pub struct SpoolPass<'a> {
    spool: &'a Spool,
    inner: std::sync::MutexGuard<'a, Inner>,
    found: Found,
}

impl SweepPass for SpoolPass<'_> {
    fn scan_with(&mut self, generation: &Generation<'_>) -> io::Result<()> {
        if let Some(file) = &self.inner.file {
            sweep_streams(file, &self.inner.segments, generation, &mut self.found)?;
            sweep_files(file, &self.inner.segments, generation, &mut self.found)?;
        }
        Ok(())
    }
}

impl SpoolPass<'_> {
    /// What the sweep found that no event in `known` reports (the events recorded so far, which
    /// may include some recorded while the sweep ran), and which monitors' bytes were not all kept.
    pub fn finish(self, known: &[Event]) -> Swept {
        let inner = &self.inner;
        let reported = Found::new(known);
        let mut events = self.found.events;
        events.retain_mut(|e| match &mut e.kind {
            EventKind::Output { stream, hits, .. } => {
                hits.retain(|h| !reported.covers_stream(stream, h));
                !hits.is_empty()
            }
            EventKind::FileWritten { path, hits, .. } => {
                hits.retain(|h| !reported.covers_file(path, h));
                !hits.is_empty()
            }
            _ => true,
        });
        let mut incomplete = Vec::new();
        if inner.dropped > 0 {
            let why = inner.error.clone().unwrap_or_else(|| {
                format!(
                    "the spool's limit of {} MiB was reached",
                    self.spool.limit >> 20
                )
            });
            for m in &inner.dropped_from {
                incomplete.push((
                    *m,
                    format!(
                        "{} bytes read by this monitor were scanned only with the needles live at the time ({why}): \
                         a retired request's or a not yet attributed output's copy in them is not found",
                        inner.dropped
                    ),
                ));
            }
        }
        Swept { events, incomplete }
    }
}

/// A file's content being copied into the spool.
pub struct FileCopy<'a> {
    spool: &'a Spool,
    source: Source,
    t_ms: u64,
}

impl FileCopy<'_> {
    pub fn push(&mut self, bytes: &[u8]) {
        let mut inner = self.spool.lock();
        let spool_len = inner.len;
        if let Some(last) = inner.segments.last_mut()
            && last.source == self.source
            && last.at + last.len == spool_len
        {
            if self.spool.write(&mut inner, bytes, MonitorKind::Filesystem) {
                inner.segments.last_mut().expect("just matched").len += bytes.len() as u64;
            }
            return;
        }
        let (source, t_ms) = (self.source.clone(), self.t_ms);
        self.spool
            .append(&mut inner, source, t_ms, bytes, MonitorKind::Filesystem);
    }
}

/// The sweep's findings, and the hits already reported (by live scans or an earlier generation).
struct Found {
    streams: HashMap<(String, NeedleId), Vec<(u64, u64)>>,
    files: HashMap<(PathBuf, NeedleId), Vec<(u64, u64)>>,
    events: Vec<Event>,
}

impl Found {
    fn new(known: &[Event]) -> Found {
        let mut found = Found {
            streams: HashMap::new(),
            files: HashMap::new(),
            events: Vec::new(),
        };
        for e in known {
            match &e.kind {
                EventKind::Output { stream, hits, .. } => {
                    for h in hits {
                        found.seen_stream(stream, h);
                    }
                }
                EventKind::FileWritten { path, hits, .. } => {
                    for h in hits {
                        found.seen_file(path, h);
                    }
                }
                _ => {}
            }
        }
        found
    }

    /// Whether a hit overlaps one already known; records it either way.
    fn seen_stream(&mut self, stream: &str, h: &Hit) -> bool {
        seen(
            self.streams
                .entry((stream.to_owned(), h.needle))
                .or_default(),
            h,
        )
    }

    fn seen_file(&mut self, path: &std::path::Path, h: &Hit) -> bool {
        seen(
            self.files
                .entry((path.to_path_buf(), h.needle))
                .or_default(),
            h,
        )
    }
}

impl Found {
    fn covers_stream(&self, stream: &str, h: &Hit) -> bool {
        self.streams
            .get(&(stream.to_owned(), h.needle))
            .is_some_and(|r| covers(r, h))
    }

    fn covers_file(&self, path: &std::path::Path, h: &Hit) -> bool {
        self.files
            .get(&(path.to_path_buf(), h.needle))
            .is_some_and(|r| covers(r, h))
    }
}

/// Whether the union of `ranges` (sorted, disjoint) covers the hit.
fn covers(ranges: &[(u64, u64)], h: &Hit) -> bool {
    ranges.iter().any(|&(s, e)| s <= h.offset && h.end() <= e)
}

/// Whether the union of `ranges` (sorted, disjoint) covers the hit; merges the hit in either way.
fn seen(ranges: &mut Vec<(u64, u64)>, h: &Hit) -> bool {
    let (start, end) = (h.offset, h.end());
    let covered = covers(ranges, h);
    let first = ranges.partition_point(|&(_, e)| e < start);
    let last = ranges.partition_point(|&(s, _)| s <= end);
    let merged = ranges[first..last]
        .iter()
        .fold((start, end), |(s, e), &(rs, re)| (s.min(rs), e.max(re)));
    ranges.splice(first..last, [merged]);
    covered
}

/// Each stream read again from its first byte, as one stream.
fn sweep_streams(
    file: &File,
    segments: &[Segment],
    scanner: &Scanner,
    found: &mut Found,
) -> io::Result<()> {
    let mut names: Vec<&'static str> = Vec::new();
    for s in segments {
        if let Source::Stream { name, .. } = s.source
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    for name in names {
        let mut state = StreamState::default();
        for seg in segments
            .iter()
            .filter(|s| matches!(s.source, Source::Stream { name: n, .. } if n == name))
        {
            let Source::Stream { origin, .. } = seg.source else {
                unreachable!("filtered to streams")
            };
            let mut new_hits = Vec::new();
            let mut first_excerpt = None;
            read_segment(file, seg, |piece, piece_at| {
                for h in scanner.scan_chunk(&mut state, piece) {
                    if !found.seen_stream(name, &h) {
                        first_excerpt.get_or_insert_with(|| h.excerpt_at(piece, origin + piece_at));
                        new_hits.push(h);
                    }
                }
            })?;
            if !new_hits.is_empty() {
                found.events.push(Event {
                    t_ms: seg.t_ms,
                    monitor: MonitorKind::Logs,
                    pid: None,
                    kind: EventKind::Output {
                        stream: name.to_owned(),
                        offset: origin,
                        excerpt: first_excerpt.unwrap_or_default(),
                        hits: new_hits,
                    },
                });
            }
        }
    }
    Ok(())
}

/// Each copy of a file read again as a whole.
fn sweep_files(
    file: &File,
    segments: &[Segment],
    scanner: &Scanner,
    found: &mut Found,
) -> io::Result<()> {
    // A copy's segments, in order (one worker copies a file at a time, but streams interleave).
    let mut copies: Vec<(u64, Vec<&Segment>)> = Vec::new();
    let mut where_is: HashMap<u64, usize> = HashMap::new();
    for seg in segments {
        if let Source::File { copy, .. } = seg.source {
            let i = *where_is.entry(copy).or_insert_with(|| {
                copies.push((copy, Vec::new()));
                copies.len() - 1
            });
            copies[i].1.push(seg);
        }
    }
    for (_, parts) in copies {
        let Source::File { path, pid, .. } = &parts[0].source else {
            unreachable!("grouped from files")
        };
        let mut state = StreamState::default();
        let mut new_hits = Vec::new();
        for seg in &parts {
            read_segment(file, seg, |piece, _| {
                for h in scanner.scan_chunk(&mut state, piece) {
                    if !found.seen_file(path, &h) {
                        new_hits.push(h);
                    }
                }
            })?;
        }
        if !new_hits.is_empty() {
            found.events.push(Event {
                t_ms: parts[0].t_ms,
                monitor: MonitorKind::Filesystem,
                pid: *pid,
                kind: EventKind::FileWritten {
                    path: path.clone(),
                    size: parts.iter().map(|s| s.len).sum(),
                    hits: new_hits,
                    image_match: None,
                },
            });
        }
    }
    Ok(())
}

/// Hands a segment's bytes to `piece` a chunk at a time, with each chunk's offset in the segment.
fn read_segment(file: &File, seg: &Segment, mut piece: impl FnMut(&[u8], u64)) -> io::Result<()> {
    let mut buf = vec![0u8; SWEEP_CHUNK.min(seg.len as usize)];
    let mut done = 0u64;
    while done < seg.len {
        let n = ((seg.len - done) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], seg.at + done)?;
        piece(&buf[..n], done);
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_of_one_stream_close_in_time_are_one_segment() {
        let spool = Spool::default();
        spool.stream("stdout", 0, 10, b"abc");
        spool.stream("stdout", 3, 20, b"def");
        spool.stream("stderr", 0, 25, b"xyz");
        spool.stream("stdout", 6, 30, b"ghi");
        spool.stream("stdout", 9, 30 + MERGE_MS, b"jkl");
        let inner = spool.lock();
        let lens: Vec<u64> = inner.segments.iter().map(|s| s.len).collect();
        assert_eq!(lens, [6, 3, 3, 3]);
        assert_eq!(inner.len, 15);
    }

    #[test]
    fn bytes_past_the_limit_are_counted_and_make_the_sweep_incomplete() {
        let spool = Spool::with_limit(8);
        spool.stream("stdout", 0, 0, b"12345");
        spool.stream("stdout", 5, 0, b"6789");
        spool.file(PathBuf::from("/tmp/x"), None, 0).push(b"abcd");
        assert_eq!(spool.len(), 5);
        let swept = spool.sweep(&Scanner::new(), &[]).unwrap();
        let monitors: Vec<MonitorKind> = swept.incomplete.iter().map(|(m, _)| *m).collect();
        assert_eq!(monitors, [MonitorKind::Logs, MonitorKind::Filesystem]);
        assert!(
            swept.incomplete[0].1.contains("8 bytes"),
            "{:?}",
            swept.incomplete
        );
    }

    fn blob(seed: u8) -> Vec<u8> {
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
            .collect()
    }

    fn needle(request: u32) -> NeedleId {
        NeedleId {
            request,
            subject: traceless_scan::scan::Subject::Image,
        }
    }

    /// A scanner that knew requests 1 and 2, then retired request 1 to disk.
    fn retired_scanner() -> Scanner {
        let mut scanner = Scanner::new();
        scanner.add_blob(needle(1), &blob(1));
        scanner.add_blob(needle(2), &blob(2));
        assert_eq!(scanner.retire_before(2).unwrap(), 1);
        scanner
    }

    #[test]
    fn a_retired_needle_printed_is_found_by_the_sweep_and_a_live_hit_is_not_repeated() {
        let scanner = retired_scanner();
        let spool = Spool::default();
        let mut printed = b"log line: ".to_vec();
        printed.extend_from_slice(&blob(1));
        printed.extend_from_slice(b" and ");
        printed.extend_from_slice(&blob(2));
        // As the pump does: a live scan of each chunk, then the chunk spooled.
        let mut state = StreamState::default();
        let mut known = Vec::new();
        let mut offset = 0;
        for chunk in printed.chunks(1000) {
            let hits = scanner.scan_chunk(&mut state, chunk);
            if !hits.is_empty() {
                known.push(Event {
                    t_ms: 1,
                    monitor: MonitorKind::Logs,
                    pid: None,
                    kind: EventKind::Output {
                        stream: "stdout".into(),
                        offset,
                        excerpt: String::new(),
                        hits,
                    },
                });
            }
            spool.stream("stdout", offset, 1, chunk);
            offset += chunk.len() as u64;
        }
        let live: Vec<u32> = known
            .iter()
            .flat_map(|e| match &e.kind {
                EventKind::Output { hits, .. } => hits.iter().map(|h| h.needle.request).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert!(!live.is_empty() && live.iter().all(|r| *r == 2), "{live:?}");

        let swept = spool.sweep(&scanner, &known).unwrap();
        assert!(swept.incomplete.is_empty());
        let [event] = swept.events.as_slice() else {
            panic!("{:?}", swept.events)
        };
        let EventKind::Output { stream, hits, .. } = &event.kind else {
            panic!("{event:?}")
        };
        assert_eq!(stream, "stdout");
        assert!(hits.iter().all(|h| h.needle == needle(1)), "{hits:?}");
        let covered: u64 = hits.iter().map(|h| h.len).sum();
        assert!(covered >= 4000, "{hits:?}");
        assert_eq!(
            hits[0].offset, 10,
            "stream offsets, as the live scan gives them"
        );
    }

    #[test]
    fn a_file_copy_split_by_a_stream_chunk_is_scanned_whole() {
        let scanner = retired_scanner();
        let spool = Spool::default();
        let image = blob(1);
        let mut copy = spool.file(PathBuf::from("/tmp/kept.bin"), Some(7), 5);
        copy.push(&image[..2000]);
        spool.stream("stderr", 0, 6, b"a line between the two reads\n");
        copy.push(&image[2000..]);
        drop(copy);
        let swept = spool.sweep(&scanner, &[]).unwrap();
        let [event] = swept.events.as_slice() else {
            panic!("{:?}", swept.events)
        };
        let EventKind::FileWritten {
            path, size, hits, ..
        } = &event.kind
        else {
            panic!("{event:?}")
        };
        assert_eq!(
            (path.to_str(), *size, event.pid, event.t_ms),
            (Some("/tmp/kept.bin"), 4096, Some(7), 5)
        );
        let start = hits.iter().map(|h| h.offset).min();
        let end = hits.iter().map(|h| h.end()).max();
        assert_eq!((start, end), (Some(0), Some(4096)), "{hits:?}");
    }

    #[test]
    fn what_another_pass_reported_while_the_sweep_ran_is_not_reported_twice() {
        let scanner = retired_scanner();
        let spool = Spool::default();
        let mut copy = spool.file(PathBuf::from("/tmp/kept.bin"), Some(7), 5);
        copy.push(&blob(1));
        drop(copy);
        let sweep = |known: &[Event]| {
            let mut pass = spool.sweep_pass(&[]);
            scanner.sweep_passes(&mut [&mut pass]).unwrap();
            pass.finish(known).events
        };
        let found = sweep(&[]);
        let [event] = found.as_slice() else {
            panic!("{found:?}")
        };
        // The same file, read again and reported by the rescan of written files in the same sweep.
        let again = sweep(std::slice::from_ref(event));
        assert!(again.is_empty(), "{again:?}");
        let mut elsewhere = event.clone();
        if let EventKind::FileWritten { path, .. } = &mut elsewhere.kind {
            *path = PathBuf::from("/tmp/other.bin");
        }
        assert_eq!(
            sweep(&[elsewhere]).len(),
            1,
            "another file's hits cover nothing here"
        );
    }

    #[test]
    fn nothing_spooled_sweeps_to_nothing() {
        let swept = Spool::default().sweep(&retired_scanner(), &[]).unwrap();
        assert!(swept.events.is_empty() && swept.incomplete.is_empty());
    }
}
