//! The audit's temporary directory, and the removal of the ones a killed harness left behind.
//!
//! Each audit works in a `traceless-audit-*` directory (the pipeline's `TMPDIR`, `HOME` and
//! working directory, the audit's CA). Its owner holds an exclusive `flock` on a lock file inside
//! it for as long as the [`AuditDir`] lives. The kernel drops that lock when the owner's process
//! ends, however it ends, SIGKILL included, so the next audit can tell a directory whose owner is
//! gone from one in use and remove it ([`remove_stale`]). Nothing else can be cleaned after a
//! SIGKILL: this is the one thing that may outlive an audit, until the next one starts.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The name every audit directory starts with.
pub const PREFIX: &str = "traceless-audit-";
/// The lock file inside each audit directory; it also names the owner's pid, for people.
pub const LOCK_FILE: &str = ".traceless-owner.lock";
/// A directory without a lock file is left alone this long: its owner may be about to lock it.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

/// An audit's temporary directory, locked by this process; removed when dropped.
#[derive(Debug)]
pub struct AuditDir {
    // Field order: the lock is released only after the directory is gone.
    dir: tempfile::TempDir,
    _lock: Flock<File>,
}

impl AuditDir {
    /// A new `traceless-audit-*` directory in the system's temp dir.
    pub fn create() -> io::Result<AuditDir> {
        Self::create_in(&std::env::temp_dir())
    }

    /// A new `traceless-audit-*` directory in `parent`.
    pub fn create_in(parent: &Path) -> io::Result<AuditDir> {
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir_in(parent)?;
        // Close-on-exec (as every file std opens): no process of the pipeline holds the lock.
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(dir.path().join(LOCK_FILE))?;
        let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        writeln!(*lock, "{}", std::process::id())?;
        Ok(AuditDir { dir, _lock: lock })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes every `traceless-audit-*` directory in `parent` that belongs to this user and whose
/// owner is gone (its lock is free, or it has no lock file and is older than a minute); returns
/// the directories removed. Directories of running audits are left alone.
pub fn remove_stale(parent: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let uid = nix::unistd::geteuid().as_raw();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        // Not through a link, and only our own.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        let lock = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path.join(LOCK_FILE));
        let stale = match lock {
            Ok(file) => match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                // Held while the directory goes, so no one can take it meanwhile.
                Ok(held) => Some(held),
                Err((_, Errno::EWOULDBLOCK)) => continue,
                Err(_) => continue,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age > UNLOCKED_GRACE);
                if !old {
                    continue;
                }
                None
            }
            Err(_) => continue,
        };
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
        drop(stale);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_directory_is_kept_and_an_abandoned_one_removed() {
        let parent = tempfile::tempdir().unwrap();
        let live = AuditDir::create_in(parent.path()).unwrap();
        std::fs::write(live.path().join("file"), b"x").unwrap();
        // An abandoned one: its lock file exists but no process holds the lock.
        let abandoned = parent.path().join(format!("{PREFIX}abandoned"));
        std::fs::create_dir_all(abandoned.join("tmp")).unwrap();
        std::fs::write(abandoned.join(LOCK_FILE), b"1\n").unwrap();
        // A fresh one without a lock file yet: its owner may be about to lock it.
        let fresh = parent.path().join(format!("{PREFIX}fresh"));
        std::fs::create_dir(&fresh).unwrap();
        // Another program's directory.
        let other = parent.path().join("something-else");
        std::fs::create_dir(&other).unwrap();

        let removed = remove_stale(parent.path());
        assert_eq!(removed, vec![abandoned.clone()]);
        assert!(!abandoned.exists());
        assert!(live.path().join("file").exists());
        assert!(fresh.exists() && other.exists());

        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists(), "dropping the AuditDir removes it");
    }
}
