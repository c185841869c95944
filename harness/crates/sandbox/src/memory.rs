//! The memory monitor: every private, readable mapping of every live process, read through /proc/PID/mem and scanned.
//!
//! Code and read-only files mapped from disk cannot hold request data and are skipped. Mappings are
//! cut into segments (overlapping a little, so a match across a cut is still found whole) and spread
//! over the cores; each worker reuses one buffer. A mapping may vanish or shrink while it is read:
//! a read error ends that segment, nothing more.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use traceless_scan::scan::{Hit, Scanner, StreamState};

/// Bytes read (and scanned) at once.
const CHUNK: usize = 8 * 1024 * 1024;
/// Mappings larger than this are split between workers.
const SEGMENT: u64 = 32 * 1024 * 1024;
/// How far a segment reads into the next, so matches across the cut are found.
const OVERLAP: u64 = 256 * 1024;

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub inode: u64,
    pub path: String,
}

impl Mapping {
    pub fn parse(line: &str) -> Option<Mapping> {
        let mut f = line.split_ascii_whitespace();
        let (start, end) = f.next()?.split_once('-')?;
        let perms = f.next()?.to_string();
        let _offset = f.next()?;
        let _dev = f.next()?;
        let inode = f.next()?.parse().ok()?;
        let path = f.collect::<Vec<_>>().join(" ");
        Some(Mapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            perms,
            inode,
            path,
        })
    }

    /// Readable memory that may hold data: writable mappings and anonymous ones, not the kernel's pages.
    pub fn worth_scanning(&self) -> bool {
        let readable = self.perms.starts_with('r');
        let writable = self.perms.as_bytes().get(1) == Some(&b'w');
        let special = matches!(
            self.path.as_str(),
            "[vvar]" | "[vvar_vclock]" | "[vsyscall]" | "[vdso]"
        );
        readable && !special && (writable || self.inode == 0)
    }

    pub fn label(&self) -> String {
        let name = if self.path.is_empty() {
            "[anon]"
        } else {
            self.path.as_str()
        };
        format!("{name} {:x}-{:x} {}", self.start, self.end, self.perms)
    }
}

pub fn mappings(pid: u32) -> Vec<Mapping> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|text| text.lines().filter_map(Mapping::parse).collect())
        .unwrap_or_default()
}

/// Hits in one mapping of one process; hit offsets are virtual addresses.
#[derive(Debug, Clone)]
pub struct MappingHits {
    pub pid: u32,
    pub mapping: String,
    pub hits: Vec<Hit>,
}

/// What a scan covered.
#[derive(Debug, Clone, Default)]
pub struct MemoryScan {
    pub found: Vec<MappingHits>,
    pub bytes: u64,
    /// Processes whose memory could not be opened, with the reason.
    pub refused: Vec<(u32, String)>,
}

struct Segment {
    pid: u32,
    mapping: usize,
    start: u64,
    /// Where this segment's own part ends; reads go up to `read_end`.
    read_end: u64,
}

/// Scans the memory of `pids` with every available core.
pub fn scan_processes(pids: &[u32], scanner: &Scanner) -> MemoryScan {
    let mut files: HashMap<u32, File> = HashMap::new();
    let mut labels: Vec<(u32, String)> = Vec::new();
    let mut segments: Vec<Segment> = Vec::new();
    let mut refused = Vec::new();
    for &pid in pids {
        match File::open(format!("/proc/{pid}/mem")) {
            Ok(f) => {
                files.insert(pid, f);
            }
            Err(e) => {
                refused.push((pid, e.to_string()));
                continue;
            }
        }
        for m in mappings(pid).into_iter().filter(Mapping::worth_scanning) {
            let index = labels.len();
            labels.push((pid, m.label()));
            let mut start = m.start;
            while start < m.end {
                let own_end = (start + SEGMENT).min(m.end);
                segments.push(Segment {
                    pid,
                    mapping: index,
                    start,
                    read_end: (own_end + OVERLAP).min(m.end),
                });
                start = own_end;
            }
        }
    }
    let next = AtomicUsize::new(0);
    let found: Mutex<BTreeMap<usize, Vec<Hit>>> = Mutex::new(BTreeMap::new());
    let bytes = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(segments.len())
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(seg) = segments.get(i) else { break };
                    let Some(file) = files.get(&seg.pid) else {
                        continue;
                    };
                    let (hits, read) = scan_segment(file, seg, scanner, &mut buf);
                    bytes.fetch_add(read as usize, Ordering::Relaxed);
                    if !hits.is_empty() {
                        found
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(seg.mapping)
                            .or_default()
                            .extend(hits);
                    }
                }
            });
        }
    });
    let found = found
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|(index, mut hits)| {
            // segments overlap: the same match may be reported by both neighbours
            hits.sort_by_key(|h| (h.offset, h.len));
            hits.dedup_by(|a, b| {
                a.offset == b.offset && a.needle == b.needle && a.encoding == b.encoding
            });
            let (pid, mapping) = labels[index].clone();
            MappingHits { pid, mapping, hits }
        })
        .collect();
    MemoryScan {
        found,
        bytes: bytes.into_inner() as u64,
        refused,
    }
}

fn scan_segment(file: &File, seg: &Segment, scanner: &Scanner, buf: &mut [u8]) -> (Vec<Hit>, u64) {
    let mut state = StreamState::default();
    let mut hits = Vec::new();
    let mut pos = seg.start;
    while pos < seg.read_end {
        let want = ((seg.read_end - pos) as usize).min(buf.len());
        let n = match file.read_at(&mut buf[..want], pos) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for mut hit in scanner.scan_chunk(&mut state, &buf[..n]) {
            hit.offset += seg.start;
            hits.push(hit);
        }
        pos += n as u64;
    }
    (hits, pos - seg.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse_and_filter() {
        let cases = [
            (
                "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]",
                true,
            ),
            ("7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 ", true),
            (
                "7f1c2c5d0000-7f1c2c5f6000 r--p 00000000 fe:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6",
                false,
            ),
            (
                "7f1c2c5f6000-7f1c2c74b000 r-xp 00026000 fe:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6",
                false,
            ),
            (
                "7f1c2c7a3000-7f1c2c7a5000 rw-p 001d2000 fe:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6",
                true,
            ),
            (
                "7ffd1e7d2000-7ffd1e7f3000 rw-p 00000000 00:00 0                          [stack]",
                true,
            ),
            (
                "7ffd1e7f8000-7ffd1e7fc000 r--p 00000000 00:00 0                          [vvar]",
                false,
            ),
            (
                "7ffd1e7fc000-7ffd1e7fe000 r-xp 00000000 00:00 0                          [vdso]",
                false,
            ),
            (
                "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
                false,
            ),
            ("7f1c20000000-7f1c20021000 ---p 00000000 00:00 0 ", false),
            (
                "7f1c1f000000-7f1c1f100000 rw-s 00000000 00:01 2049                       /memfd:img (deleted)",
                true,
            ),
        ];
        for (line, want) in cases {
            let m = Mapping::parse(line).expect(line);
            assert_eq!(m.worth_scanning(), want, "{line}");
        }
        let m = Mapping::parse(cases[10].0).unwrap();
        assert_eq!(m.path, "/memfd:img (deleted)");
        assert_eq!(m.end - m.start, 0x100000);
        assert_eq!(
            m.label(),
            "/memfd:img (deleted) 7f1c1f000000-7f1c1f100000 rw-s"
        );
    }
}
