//! The logs monitor: stdout and stderr read as they come, scanned as one stream each, only a tail kept.
//!
//! A pipeline may print without end; the harness reads continuously (so the pipeline never blocks on a
//! full pipe) and keeps in memory nothing but a bounded tail for error messages and the events for
//! chunks with hits. Every chunk also goes to the run's [`Spool`] on disk, swept with every needle at
//! the end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use tokio::io::{AsyncRead, AsyncReadExt};
use traceless_scan::scan::{Scanner, StreamState};

use crate::events::{EventKind, EventLog, MonitorKind};
use crate::spool::Spool;

/// How much of each stream is kept for error messages.
pub const TAIL_BYTES: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// The last bytes of a stream.
#[derive(Debug, Default)]
pub struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    pub fn push(&mut self, chunk: &[u8]) {
        let keep = chunk.len().min(TAIL_BYTES);
        let overflow = (self.bytes.len() + keep).saturating_sub(TAIL_BYTES);
        self.bytes.drain(..overflow);
        self.bytes.extend(&chunk[chunk.len() - keep..]);
    }

    pub fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

/// Reads a stream to its end, scanning each chunk, keeping the tail, and spooling every chunk
/// for the end-of-run sweep.
pub async fn pump(
    mut stream: impl AsyncRead + Unpin,
    name: &'static str,
    scanner: Arc<RwLock<Scanner>>,
    log: EventLog,
    tail: Arc<Mutex<Tail>>,
    spool: Arc<Spool>,
) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut state = StreamState::default();
    let mut offset: u64 = 0;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let hits = scanner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .scan_chunk(&mut state, chunk);
        if let Some(first) = hits.first() {
            let excerpt = first.excerpt_at(chunk, offset);
            log.record(
                MonitorKind::Logs,
                None,
                EventKind::Output {
                    stream: name.to_string(),
                    offset,
                    excerpt,
                    hits,
                },
            );
        }
        spool.stream(name, offset, log.since_start_ms(), chunk);
        tail.lock().unwrap_or_else(|e| e.into_inner()).push(chunk);
        offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_only_the_last_bytes() {
        let mut tail = Tail::default();
        tail.push(b"hello ");
        tail.push(&vec![b'x'; TAIL_BYTES]);
        tail.push(b"end");
        let text = tail.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("xend"));
        assert!(!text.contains("hello"));
    }
}
