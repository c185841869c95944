//! Config and scenario errors that point at the file, line and key to fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a TOML file the user wrote, located precisely enough to fix without guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl FileError {
    pub fn new(
        file: &Path,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            key: key.map(str::to_owned),
            message: message.into(),
        }
    }

    /// An error at a byte span of `source`, converted to a 1-based line number.
    pub fn at_span(
        file: &Path,
        source: &str,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(file, Some(line_of(source, span.start)), Some(key), message)
    }

    /// Wraps a `toml` parse or type error, which already knows its span.
    pub fn from_toml(file: &Path, source: &str, err: &toml::de::Error) -> Self {
        let line = err.span().map(|s| line_of(source, s.start));
        Self::new(file, line, None, err.message().trim().to_owned())
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}
