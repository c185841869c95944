//! The memory monitor: the memory of every live process, read and scanned, skipping only what cannot hold data.
//!
//! What is read, and why the rest can be skipped (see [`Mapping::coverage`]):
//! - private mappings (heap, stacks, anonymous memory, a library's `.data`, and any private file mapping) are
//!   read only where the process wrote: pages that are present and anonymous, or swapped out, as
//!   /proc/PID/pagemap says. A page never touched reads as zeros and holds nothing; a private file page that was
//!   never written holds the file's own bytes (code, read-only data), while any write turns it into an
//!   anonymous page, which is read. So a canary copied into memory, raw, as base64 text or as decoded pixels,
//!   is always on a page that is read, including one written and then made read-only with `mprotect`;
//! - shared mappings of memory-only objects (memfd, SysV and POSIX shared memory, deleted files) are read whole:
//!   their pages may hold data without being mapped in this process yet;
//! - a read-only shared mapping of a file on disk shows the file's own bytes, which the filesystem monitor
//!   covers; it is skipped, as are the kernel's pages (vdso, vvar).
//!
//! Pages are read with `process_vm_readv` (one copy, straight into our buffer; /proc/PID/mem copies every page
//! twice and is the fallback), in large pieces cut into segments spread over the cores. Each worker reuses one
//! buffer and scans each piece in place, carrying [`Scanner::stream_overlap`] bytes into the next so a match
//! across a cut is still found whole. A mapping may vanish or shrink while it is read: a read error ends that
//! stretch of pages, nothing more.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;
use traceless_scan::scan::{Hit, Scanner, merge_hits};

/// Bytes read (and scanned) at once.
const CHUNK: usize = 8 * 1024 * 1024;
/// Stretches of pages larger than this are split between workers.
const SEGMENT: u64 = 32 * 1024 * 1024;
/// Pagemap entries read at once (8 bytes each).
const PAGEMAP_BATCH: usize = 64 * 1024;

/// Pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE_OR_SHARED: u64 = 1 << 61;

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub inode: u64,
    pub path: String,
}

/// Which pages of a mapping are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// None: nothing there can hold data the process received.
    Skip,
    /// Every page.
    All,
    /// The pages the process wrote: present and anonymous, or swapped out (every page when the page map cannot be
    /// read, for mappings that are writable or anonymous).
    Written,
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

    /// Which pages may hold data the process received (the module documentation explains each rule).
    pub fn coverage(&self) -> Coverage {
        let perm = |i: usize| self.perms.as_bytes().get(i).copied();
        let special = matches!(
            self.path.as_str(),
            "[vvar]" | "[vvar_vclock]" | "[vsyscall]" | "[vdso]"
        );
        if perm(0) != Some(b'r') || special {
            return Coverage::Skip;
        }
        // Objects that live in memory only: their pages are data, not a copy of something on disk.
        let memory_only = self.path.starts_with("/memfd:")
            || self.path.starts_with("/dev/shm/")
            || self.path.starts_with("/SYSV")
            || self.path.starts_with("/dev/zero")
            || self.path.ends_with(" (deleted)");
        let file_backed = self.inode != 0;
        if perm(3) == Some(b's') {
            if perm(1) == Some(b'w') || !file_backed || memory_only {
                Coverage::All
            } else {
                Coverage::Skip
            }
        } else if file_backed && memory_only {
            Coverage::All
        } else {
            Coverage::Written
        }
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

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as u64)
}

/// The stretches `[start, end)` of `m` that its coverage says to read; `None` when the page map is unreadable.
fn written_pages(pagemap: &File, m: &Mapping, page: u64) -> Option<Vec<(u64, u64)>> {
    let pages = ((m.end - m.start) / page) as usize;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut entries = vec![0u8; PAGEMAP_BATCH.min(pages) * 8];
    let mut done = 0;
    while done < pages {
        let batch = PAGEMAP_BATCH.min(pages - done);
        let bytes = &mut entries[..batch * 8];
        let first = m.start / page + done as u64;
        pagemap.read_exact_at(bytes, first * 8).ok()?;
        for (i, e) in bytes.chunks_exact(8).enumerate() {
            let e = u64::from_le_bytes(e.try_into().expect("eight bytes"));
            let written =
                (e & PM_PRESENT != 0 && e & PM_FILE_OR_SHARED == 0) || e & PM_SWAPPED != 0;
            if !written {
                continue;
            }
            let at = m.start + (done + i) as u64 * page;
            match ranges.last_mut() {
                Some((_, end)) if *end == at => *end = at + page,
                _ => ranges.push((at, at + page)),
            }
        }
        done += batch;
    }
    Some(ranges)
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
    /// Bytes read and scanned.
    pub bytes: u64,
    /// Bytes of readable mappings not read: pages never written, files' own pages (see [`Mapping::coverage`]).
    pub skipped: u64,
    /// Processes whose memory could not be opened, with the reason.
    pub refused: Vec<(u32, String)>,
}

/// Reads another process's memory.
struct Reader {
    pid: Pid,
    mem: File,
}

impl Reader {
    fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        match process_vm_readv(self.pid, &mut [IoSliceMut::new(buf)], &remote) {
            Ok(n) => Ok(n),
            // Not allowed here (seccomp, an old kernel): /proc/PID/mem reads the same pages.
            Err(Errno::ENOSYS | Errno::EPERM) => self.mem.read_at(buf, addr),
            Err(e) => Err(e.into()),
        }
    }
}

struct Segment {
    pid: u32,
    mapping: usize,
    start: u64,
    /// Where this segment's own part ends; reads go up to `read_end`.
    read_end: u64,
}

/// Every process's readers and the segments of memory to read.
struct Plan {
    readers: HashMap<u32, Reader>,
    labels: Vec<(u32, String)>,
    segments: Vec<Segment>,
    skipped: u64,
    refused: Vec<(u32, String)>,
}

impl Plan {
    /// `overlap`: how far each segment reads into the next part of the same stretch.
    fn new(pids: &[u32], overlap: u64) -> Plan {
        let page = page_size();
        let mut plan = Plan {
            readers: HashMap::new(),
            labels: Vec::new(),
            segments: Vec::new(),
            skipped: 0,
            refused: Vec::new(),
        };
        for &pid in pids {
            let mem = match File::open(format!("/proc/{pid}/mem")) {
                Ok(f) => f,
                Err(e) => {
                    plan.refused.push((pid, e.to_string()));
                    continue;
                }
            };
            plan.readers.insert(
                pid,
                Reader {
                    pid: Pid::from_raw(pid as i32),
                    mem,
                },
            );
            let pagemap = File::open(format!("/proc/{pid}/pagemap")).ok();
            for m in mappings(pid) {
                let size = m.end - m.start;
                let ranges = match m.coverage() {
                    Coverage::Skip => Vec::new(),
                    Coverage::All => vec![(m.start, m.end)],
                    Coverage::Written => pagemap
                        .as_ref()
                        .and_then(|p| written_pages(p, &m, page))
                        .unwrap_or_else(|| {
                            // No page map: the rule before it, writable or anonymous memory whole.
                            let writable = m.perms.as_bytes().get(1) == Some(&b'w');
                            if writable || m.inode == 0 {
                                vec![(m.start, m.end)]
                            } else {
                                Vec::new()
                            }
                        }),
                };
                let read: u64 = ranges.iter().map(|(s, e)| e - s).sum();
                plan.skipped += size - read;
                if ranges.is_empty() {
                    continue;
                }
                let index = plan.labels.len();
                plan.labels.push((pid, m.label()));
                for (start, end) in ranges {
                    let mut at = start;
                    while at < end {
                        let own_end = (at + SEGMENT).min(end);
                        plan.segments.push(Segment {
                            pid,
                            mapping: index,
                            start: at,
                            read_end: (own_end + overlap).min(end),
                        });
                        at = own_end;
                    }
                }
            }
        }
        plan
    }

    /// Runs `work` on every segment with every available core; each worker has its own buffer.
    fn run(&self, work: impl Fn(&Reader, &Segment, &mut Vec<u8>) + Sync) {
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(self.segments.len())
            .max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut buf = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(seg) = self.segments.get(i) else {
                            break;
                        };
                        if let Some(reader) = self.readers.get(&seg.pid) {
                            work(reader, seg, &mut buf);
                        }
                    }
                });
            }
        });
    }
}

/// Scans the memory of `pids` with every available core.
pub fn scan_processes(pids: &[u32], scanner: &Scanner) -> MemoryScan {
    let overlap = scanner.stream_overlap();
    let plan = Plan::new(pids, overlap as u64);
    let found: Mutex<BTreeMap<usize, Vec<Hit>>> = Mutex::new(BTreeMap::new());
    let bytes = AtomicU64::new(0);
    plan.run(|reader, seg, buf| {
        let (hits, read) = scan_segment(reader, seg, scanner, overlap, buf);
        bytes.fetch_add(read, Ordering::Relaxed);
        if !hits.is_empty() {
            found
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(seg.mapping)
                .or_default()
                .extend(hits);
        }
    });
    let found = found
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|(index, hits)| {
            // Segments overlap, and a copy across a cut is reported by both neighbours: one hit each.
            let hits = merge_hits(hits);
            let (pid, mapping) = plan.labels[index].clone();
            MappingHits { pid, mapping, hits }
        })
        .collect();
    MemoryScan {
        found,
        bytes: bytes.into_inner(),
        skipped: plan.skipped,
        refused: plan.refused,
    }
}

/// Reads exactly what [`scan_processes`] reads, without scanning: what reading memory costs alone (benchmarks).
pub fn read_processes(pids: &[u32]) -> MemoryScan {
    let plan = Plan::new(pids, 0);
    let bytes = AtomicU64::new(0);
    plan.run(|reader, seg, buf| {
        buf.resize(CHUNK, 0);
        let mut pos = seg.start;
        while pos < seg.read_end {
            let want = ((seg.read_end - pos) as usize).min(CHUNK);
            match reader.read(pos, &mut buf[..want]) {
                Ok(0) | Err(_) => break,
                Ok(n) => pos += n as u64,
            }
        }
        bytes.fetch_add(pos - seg.start, Ordering::Relaxed);
    });
    MemoryScan {
        found: Vec::new(),
        bytes: bytes.into_inner(),
        skipped: plan.skipped,
        refused: plan.refused,
    }
}

/// Reads a segment a chunk at a time into `buf` after the bytes carried from the previous chunk, and scans the
/// whole buffer in place; hits that end inside the carried bytes were reported with the previous chunk.
fn scan_segment(
    reader: &Reader,
    seg: &Segment,
    scanner: &Scanner,
    overlap: usize,
    buf: &mut Vec<u8>,
) -> (Vec<Hit>, u64) {
    buf.resize(overlap + CHUNK, 0);
    let mut hits = Vec::new();
    let mut carried = 0;
    let mut pos = seg.start;
    while pos < seg.read_end {
        let want = ((seg.read_end - pos) as usize).min(CHUNK);
        let n = match reader.read(pos, &mut buf[carried..carried + want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let filled = carried + n;
        let base = pos - carried as u64;
        for mut hit in scanner.scan(&buf[..filled]) {
            if hit.offset + hit.len > carried as u64 {
                hit.offset += base;
                hits.push(hit);
            }
        }
        pos += n as u64;
        let keep = filled.min(overlap);
        buf.copy_within(filled - keep..filled, 0);
        carried = keep;
    }
    (hits, pos - seg.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse_and_say_what_to_read() {
        use Coverage::{All, Skip, Written};
        let cases = [
            (
                "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]",
                Written,
            ),
            ("7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 ", Written),
            // a library's read-only pages: only pages written (then protected) are read
            (
                "7f1c2c5d0000-7f1c2c5f6000 r--p 00000000 fe:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6",
                Written,
            ),
            (
                "7f1c2c5f6000-7f1c2c74b000 r-xp 00026000 fe:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6",
                Written,
            ),
            (
                "7f1c2c7a3000-7f1c2c7a5000 rw-p 001d2000 fe:01 1311                       /usr/lib/x86_64-linux-gnu/libc.so.6",
                Written,
            ),
            (
                "7ffd1e7d2000-7ffd1e7f3000 rw-p 00000000 00:00 0                          [stack]",
                Written,
            ),
            (
                "7ffd1e7f8000-7ffd1e7fc000 r--p 00000000 00:00 0                          [vvar]",
                Skip,
            ),
            (
                "7ffd1e7fc000-7ffd1e7fe000 r-xp 00000000 00:00 0                          [vdso]",
                Skip,
            ),
            (
                "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
                Skip,
            ),
            ("7f1c20000000-7f1c20021000 ---p 00000000 00:00 0 ", Skip),
            (
                "7f1c1f000000-7f1c1f100000 rw-s 00000000 00:01 2049                       /memfd:img (deleted)",
                All,
            ),
            // read-only memory-only objects are data even though nothing maps them writable
            (
                "7f1c1f000000-7f1c1f100000 r--s 00000000 00:01 2050                       /memfd:img (deleted)",
                All,
            ),
            (
                "7f1c1f000000-7f1c1f100000 r--p 00000000 08:01 4242                       /tmp/upload.jpg (deleted)",
                All,
            ),
            (
                "7f1c1f000000-7f1c1f100000 r--s 00000000 00:1a 77                         /dev/shm/cache",
                All,
            ),
            // a shared read-only view of a file on disk is the file's own bytes
            (
                "7f1c1f000000-7f1c1f100000 r--s 00000000 08:01 4243                       /var/lib/app/model.bin",
                Skip,
            ),
        ];
        for (line, want) in cases {
            let m = Mapping::parse(line).expect(line);
            assert_eq!(m.coverage(), want, "{line}");
        }
        let m = Mapping::parse(cases[10].0).unwrap();
        assert_eq!(m.path, "/memfd:img (deleted)");
        assert_eq!(m.end - m.start, 0x100000);
        assert_eq!(
            m.label(),
            "/memfd:img (deleted) 7f1c1f000000-7f1c1f100000 rw-s"
        );
    }

    /// A copy across the cut between two segments is read by both and reported once, whole, at its address.
    #[test]
    fn a_copy_across_a_segment_cut_is_one_hit() {
        use traceless_scan::scan::{NeedleId, Subject};
        let page = page_size() as usize;
        let len = (SEGMENT as usize) + 8 * page;
        // SAFETY: a fresh private anonymous mapping, unmapped below; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // SAFETY: the mapping made above, `len` bytes, used only here.
        let region = unsafe { std::slice::from_raw_parts_mut(base as *mut u8, len) };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in region.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 32) as u8;
        }
        let blob: Vec<u8> = region[..5000].iter().map(|b| b ^ 0x5a).collect();
        let mut scanner = Scanner::new();
        let id = NeedleId {
            request: 9,
            subject: Subject::Image,
        };
        scanner.add_blob(id, &blob);
        let start = base as u64;
        let pid = std::process::id();
        let plan = Plan::new(&[pid], scanner.stream_overlap() as u64);
        let cut = plan
            .segments
            .iter()
            .map(|s| s.start)
            .find(|&s| s > start && s < start + len as u64)
            .expect("the region is cut between two segments");
        let at = (cut - start) as usize - 2000;
        region[at..at + blob.len()].copy_from_slice(&blob);
        let scan = scan_processes(&[pid], &scanner);
        let hits: Vec<Hit> = scan
            .found
            .iter()
            .flat_map(|m| m.hits.clone())
            .filter(|h| h.needle == id && h.offset >= start && h.offset < start + len as u64)
            .collect();
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(base, len) };
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(
            (hits[0].offset, hits[0].len, hits[0].source_len),
            (start + at as u64, blob.len() as u64, blob.len() as u64)
        );
    }

    /// Our own memory: pages written are read, pages never touched are not, and a page written and then made
    /// read-only still is.
    #[test]
    fn only_written_pages_are_read_from_the_page_map() {
        let page = page_size() as usize;
        let pages = 64;
        // SAFETY: a fresh private anonymous mapping, unmapped below; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let start = base as u64;
        // SAFETY: pages 3, 4 and 40 lie inside the mapping made above.
        unsafe {
            for p in [3, 4, 40] {
                (base as *mut u8).add(p * page + 7).write_volatile(0xa5);
            }
            assert_eq!(libc::mprotect(base, pages * page, libc::PROT_READ), 0);
        }
        let m = mappings(std::process::id())
            .into_iter()
            .find(|m| m.start <= start && start < m.end)
            .expect("our mapping is listed");
        assert_eq!(m.coverage(), Coverage::Written, "{m:?}");
        let pagemap = File::open("/proc/self/pagemap").unwrap();
        let ranges = written_pages(&pagemap, &m, page as u64).expect("page map readable");
        let p = |n: usize| start + (n * page) as u64;
        let ours: Vec<_> = ranges
            .into_iter()
            .filter(|&(s, e)| s >= start && e <= p(pages))
            .collect();
        // SAFETY: the mapping made above, no longer used.
        unsafe { libc::munmap(base, pages * page) };
        assert_eq!(ours, vec![(p(3), p(5)), (p(40), p(41))]);
    }
}
