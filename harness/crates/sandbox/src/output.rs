//! The logs monitor: stdout and stderr read as they come, scanned as one stream each, only a tail kept.
//!
//! A pipeline may print without end; the harness reads continuously (so the pipeline never blocks on a
//! full pipe) and keeps in memory nothing but a bounded tail for error messages and the events for
//! chunks with hits. Every chunk also goes to the run's [`Spool`] on disk, swept with every needle at
//! the end.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::watch;
use traceless_scan::scan::{Scanner, StreamState};

use crate::events::{EventKind, EventLog, MonitorKind};
use crate::spool::Spool;
use crate::stopped::StoppedEarly;

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

nix::ioctl_read_bad!(bytes_waiting, libc::FIONREAD, libc::c_int);

/// How far a pump has got through its pipe, so that a caller can wait until everything the
/// pipeline wrote before some moment has been scanned and recorded (see [`Progress::settled`]).
#[derive(Debug)]
pub struct Progress {
    /// `stdout` or `stderr`.
    name: &'static str,
    /// A duplicate of the pipe's read end, only to ask how many bytes wait in it.
    pipe: OwnedFd,
    /// Bytes taken from the pipe; its lock is held across each read, so that the count and the
    /// pipe's backlog are read as one.
    taken: Mutex<u64>,
    /// Bytes scanned and recorded; `u64::MAX` once the stream has ended.
    recorded: watch::Sender<u64>,
    /// Why the pump stopped before the stream's end (a read error, a panic): what it did not read
    /// was never scanned, so the logs monitor cannot vouch for the run.
    stopped: StoppedEarly,
}

impl Progress {
    pub fn new(pipe: &impl AsFd, name: &'static str) -> std::io::Result<Arc<Progress>> {
        Ok(Arc::new(Progress {
            name,
            pipe: pipe.as_fd().try_clone_to_owned()?,
            taken: Mutex::new(0),
            recorded: watch::Sender::new(0),
            stopped: StoppedEarly::default(),
        }))
    }

    /// Why the pump stopped before the end of its stream, if it did.
    pub fn failure(&self) -> Option<String> {
        self.stopped.failure()
    }

    /// Records, once the pipeline has stopped and its readers were given their time, that this
    /// stream was still not read to its end (a reader stuck).
    pub fn check_ended(&self) {
        if *self.recorded.borrow() != u64::MAX {
            self.fail(format!(
                "the reader of the pipeline's {} had not reached its end when the audit stopped",
                self.name
            ));
        }
    }

    fn fail(&self, why: String) {
        self.stopped.fail(why);
    }

    /// Waits until every byte in the pipe now, and every byte already taken from it, has been
    /// scanned and recorded. Bytes written later are not waited for, so a pipeline that never
    /// stops printing does not hold the caller.
    pub async fn settled(&self) {
        let target = {
            let taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
            let mut waiting: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int through a pointer to a live local.
            let backlog = match unsafe { bytes_waiting(self.pipe.as_raw_fd(), &mut waiting) } {
                Ok(_) => u64::try_from(waiting).unwrap_or(0),
                Err(_) => 0,
            };
            *taken + backlog
        };
        let mut recorded = self.recorded.subscribe();
        // An error means the pump is gone: nothing more will be recorded.
        let _ = recorded.wait_for(|&r| r >= target).await;
    }

    /// Waits until the stream has ended and all of it has been recorded.
    pub async fn ended(&self) {
        let _ = self.recorded.subscribe().wait_for(|&r| r == u64::MAX).await;
    }
}

/// A stream whose reads are counted in its pump's [`Progress`].
struct Counted<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let mut taken = this
            .progress
            .taken
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            *taken += (buf.filled().len() - before) as u64;
        }
        poll
    }
}

/// Reads a stream to its end, scanning each chunk, keeping the tail, and spooling every chunk
/// for the end-of-run sweep; `progress` (which names the stream) says how far it has got.
pub async fn pump(
    stream: impl AsyncRead + Unpin,
    scanner: Arc<RwLock<Scanner>>,
    log: EventLog,
    tail: Arc<Mutex<Tail>>,
    spool: Arc<Spool>,
    progress: Arc<Progress>,
) {
    let name = progress.name;
    // However the pump ends (a panic included), nobody waits for it any longer.
    let _ended = Ended(progress.clone());
    let mut stream = Counted {
        inner: stream,
        progress: progress.clone(),
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut state = StreamState::default();
    let mut offset: u64 = 0;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                progress.fail(format!("reading the pipeline's {name} failed: {e}"));
                break;
            }
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
        progress.recorded.send_modify(|r| *r += n as u64);
    }
}

/// Marks a pump's stream as ended when the pump stops.
struct Ended(Arc<Progress>);

impl Drop for Ended {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let why = format!("the reader of the pipeline's {} panicked", self.0.name);
            self.0.fail(why);
        }
        self.0.recorded.send_replace(u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use traceless_scan::scan::{NeedleId, Subject};

    /// A pump on a pipe that already holds a log line with a canary; the test's runtime has one
    /// thread, so the pump runs only when the test awaits.
    async fn pump_with_waiting_line() -> (EventLog, Arc<Progress>, impl Sized) {
        let canary = b"canary-7f3a9c0e1d2b4a58";
        let mut scanner = Scanner::new();
        let needle = NeedleId {
            request: 1,
            subject: Subject::Prompt,
        };
        scanner.add_token(needle, std::str::from_utf8(canary).unwrap());
        let (mut writer, reader) = tokio::net::unix::pipe::pipe().unwrap();
        let mut line = vec![b'.'; 30_000];
        line.extend_from_slice(b" prompt=");
        line.extend_from_slice(canary);
        line.push(b'\n');
        tokio::io::AsyncWriteExt::write_all(&mut writer, &line)
            .await
            .unwrap();
        let log = EventLog::new();
        let progress = Progress::new(&reader, "stderr").unwrap();
        tokio::spawn(pump(
            reader,
            Arc::new(RwLock::new(scanner)),
            log.clone(),
            Arc::new(Mutex::new(Tail::default())),
            Arc::new(Spool::default()),
            progress.clone(),
        ));
        // The writer stays open: the stream has not ended, as while a pipeline runs.
        (log, progress, writer)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn once_settled_what_was_written_before_is_recorded() {
        let (log, progress, _writer) = pump_with_waiting_line().await;
        progress.settled().await;
        assert_eq!(
            log.len(),
            1,
            "the line written before settling was not recorded"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_settling_a_waiting_line_is_not_yet_recorded() {
        // What the barrier is for: without it the line is still in the pipe when judging starts.
        let (log, _progress, _writer) = pump_with_waiting_line().await;
        assert_eq!(log.len(), 0);
    }

    /// A stream that gives one chunk, then fails: with an error, or by panicking.
    struct Breaking {
        given: bool,
        panic: bool,
    }

    impl AsyncRead for Breaking {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if !self.given {
                self.given = true;
                buf.put_slice(b"a line\n");
                return Poll::Ready(Ok(()));
            }
            assert!(!self.panic, "a reader bug");
            Poll::Ready(Err(std::io::Error::other("the pipe broke")))
        }
    }

    /// A pump with no needles, log, tail or spool anyone looks at: only its progress matters.
    async fn pump_alone(stream: impl AsyncRead + Unpin, progress: Arc<Progress>) {
        pump(
            stream,
            Arc::new(RwLock::new(Scanner::new())),
            EventLog::new(),
            Arc::new(Mutex::new(Tail::default())),
            Arc::new(Spool::default()),
            progress,
        )
        .await;
    }

    async fn pump_until_it_breaks(panic: bool) -> Arc<Progress> {
        let (_writer, reader) = tokio::net::unix::pipe::pipe().unwrap();
        let progress = Progress::new(&reader, "stderr").unwrap();
        let ran = tokio::spawn(pump_alone(
            Breaking {
                given: false,
                panic,
            },
            progress.clone(),
        ))
        .await;
        assert_eq!(ran.is_err(), panic);
        progress
    }

    /// A pump that stops before its stream's end says why (the logs monitor then degrades), and
    /// nobody waits for it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_pump_that_breaks_or_panics_says_why_and_is_not_waited_for() {
        for panic in [false, true] {
            let progress = pump_until_it_breaks(panic).await;
            progress.settled().await;
            progress.ended().await;
            let why = progress.failure().expect("a failure recorded");
            let expected = if panic { "panicked" } else { "the pipe broke" };
            assert!(why.contains(expected), "{why}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stream_read_to_its_end_is_no_failure() {
        let (writer, reader) = tokio::net::unix::pipe::pipe().unwrap();
        drop(writer);
        let progress = Progress::new(&reader, "stderr").unwrap();
        pump_alone(reader, progress.clone()).await;
        assert_eq!(progress.failure(), None);
    }

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
