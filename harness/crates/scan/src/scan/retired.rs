//! Needles of requests judged long ago, kept on disk so the scanner's memory stays bounded whatever the
//! audit's length.
//!
//! A long audit sends hundreds of thousands of canaries; indexed, each upload costs about a megabyte. Once a
//! request has been judged by everything that watches it live (its answer, its provider calls, a memory scan
//! after its grace period), its needles are *retired*: their forms and tokens are appended to an anonymous
//! temporary file (unlinked from the start, so nothing outlives the process however it ends) and dropped from
//! the live index. The passes that must still see every needle (the files, answers, provider calls and
//! service folders gathered at the end of the run) read the file back a bounded batch at a time, each batch
//! a scanner of its own ([`super::Scanner::generations`]). Perceptual hashes are small and never retired.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

use super::{NeedleId, RequestId, SourceForm, Subject};

/// One retired needle form or token, as written to the file.
pub(crate) enum Record {
    Form {
        needle: NeedleId,
        form: SourceForm,
        base: u64,
        bytes: Vec<u8>,
    },
    Token {
        needle: NeedleId,
        text: String,
    },
}

impl Record {
    /// The request whose needle this is.
    pub fn request(&self) -> RequestId {
        match self {
            Record::Form { needle, .. } | Record::Token { needle, .. } => needle.request,
        }
    }
}

const SUBJECTS: [Subject; 7] = [
    Subject::Image,
    Subject::Prompt,
    Subject::DeviceId,
    Subject::ForwardedFor,
    Subject::Metadata,
    Subject::Output,
    Subject::ApiKey,
];

/// tag (1), request (4), subject (1), form (1), base (8), length (4).
const HEADER: usize = 19;
const TAG_FORM: u8 = 0;
const TAG_TOKEN: u8 = 1;

fn subject_code(s: Subject) -> u8 {
    SUBJECTS
        .iter()
        .position(|&x| x == s)
        .expect("every subject is listed") as u8
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the retired-needle file is corrupt: {what}"),
    )
}

/// The file of retired needles.
pub(crate) struct Retired {
    writer: BufWriter<File>,
    /// Bytes written (and flushed) so far.
    len: u64,
    /// Requests with any needle in the file.
    pub requests: u64,
}

impl Retired {
    pub fn create() -> io::Result<Retired> {
        Ok(Retired {
            writer: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            len: 0,
            requests: 0,
        })
    }

    /// Appends records; they are readable once this returns.
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        for r in records {
            let (tag, needle, form, base, bytes) = match r {
                Record::Form {
                    needle,
                    form,
                    base,
                    bytes,
                } => (TAG_FORM, needle, *form, *base, bytes.as_slice()),
                Record::Token { needle, text } => {
                    (TAG_TOKEN, needle, SourceForm::Bytes, 0, text.as_bytes())
                }
            };
            let len = u32::try_from(bytes.len()).map_err(|_| corrupt("a form over 4 GB"))?;
            let mut header = [0u8; HEADER];
            header[0] = tag;
            header[1..5].copy_from_slice(&needle.request.to_le_bytes());
            header[5] = subject_code(needle.subject);
            header[6] = (form == SourceForm::PixelRows) as u8;
            header[7..15].copy_from_slice(&base.to_le_bytes());
            header[15..19].copy_from_slice(&len.to_le_bytes());
            self.writer.write_all(&header)?;
            self.writer.write_all(bytes)?;
            self.len += (HEADER + bytes.len()) as u64;
        }
        self.writer.flush()
    }

    /// The records from byte `at` on, in batches whose forms hold about `budget` bytes (a form larger
    /// than the budget is a batch of its own).
    pub fn batches(&self, budget: usize) -> Batches<'_> {
        Batches {
            file: self.writer.get_ref(),
            at: 0,
            end: self.len,
            budget,
        }
    }
}

/// Batches of retired records, read back in the order they were written.
pub(crate) struct Batches<'a> {
    file: &'a File,
    at: u64,
    end: u64,
    budget: usize,
}

impl Batches<'_> {
    fn record(&mut self) -> io::Result<Record> {
        let mut header = [0u8; HEADER];
        self.file.read_exact_at(&mut header, self.at)?;
        let len = u32::from_le_bytes(header[15..19].try_into().expect("four bytes")) as usize;
        let mut bytes = vec![0u8; len];
        self.file
            .read_exact_at(&mut bytes, self.at + HEADER as u64)?;
        self.at += (HEADER + len) as u64;
        let needle = NeedleId {
            request: RequestId::from_le_bytes(header[1..5].try_into().expect("four bytes")),
            subject: *SUBJECTS
                .get(usize::from(header[5]))
                .ok_or_else(|| corrupt("unknown subject"))?,
        };
        match header[0] {
            TAG_FORM => Ok(Record::Form {
                needle,
                form: if header[6] == 1 {
                    SourceForm::PixelRows
                } else {
                    SourceForm::Bytes
                },
                base: u64::from_le_bytes(header[7..15].try_into().expect("eight bytes")),
                bytes,
            }),
            TAG_TOKEN => Ok(Record::Token {
                needle,
                text: String::from_utf8(bytes).map_err(|_| corrupt("a token not in UTF-8"))?,
            }),
            _ => Err(corrupt("unknown record tag")),
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = io::Result<Vec<Record>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while self.at < self.end && bytes < self.budget {
            match self.record() {
                Ok(r) => {
                    if let Record::Form { bytes: b, .. } = &r {
                        bytes += b.len();
                    }
                    batch.push(r);
                }
                Err(e) => {
                    self.at = self.end;
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(batch))
    }
}
