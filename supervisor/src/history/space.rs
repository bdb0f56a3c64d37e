//! Free space under the state directory, as the daemon's admission sees it.
//!
//! A full disk must cost a caller an immediate `507`, not a request that hangs while the writer
//! retries: accepted work is promised to survive, so the daemon stops accepting new asynchronous
//! work before it can no longer keep that promise. Two signals say "full": the free space of the
//! file system, sampled about once a second against a headroom (`history.min_free_mb`), and a
//! write the history writer had refused with `SQLITE_FULL` since its last successful commit.
//! The headroom is kept so that work already accepted can still write its terminal records.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What the daemon knows about the space left under its state directory.
#[derive(Debug)]
pub struct Space {
    dir: PathBuf,
    min_free: u64,
    low: AtomicBool,
    write_refused: AtomicBool,
    free: AtomicU64,
}

impl Space {
    /// Watches `dir`, calling it full below `min_free` bytes available (`0`: only a refused
    /// write counts).
    pub fn new(dir: &Path, min_free: u64) -> Self {
        let space = Self {
            dir: dir.to_path_buf(),
            min_free,
            low: AtomicBool::new(false),
            write_refused: AtomicBool::new(false),
            free: AtomicU64::new(u64::MAX),
        };
        space.sample();
        space
    }

    /// Whether new durable work must be refused.
    pub fn is_full(&self) -> bool {
        self.low.load(Ordering::Relaxed) || self.write_refused.load(Ordering::Relaxed)
    }

    /// Bytes available to the daemon at the last sample.
    pub fn free_bytes(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the file system's free space now. An unreadable file system keeps the last figure:
    /// a failing `statvfs` says nothing about space, and the writer still reports refusals.
    pub fn sample(&self) {
        let Ok(st) = nix::sys::statvfs::statvfs(&self.dir) else {
            return;
        };
        let free = st.blocks_available().saturating_mul(st.fragment_size());
        self.free.store(free, Ordering::Relaxed);
        let low = free < self.min_free;
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(state_dir = %self.dir.display(), free_bytes = free, min_free_bytes = self.min_free,
                    "state directory nearly full: refusing asynchronous invocations until space returns");
            } else {
                tracing::warn!(state_dir = %self.dir.display(), free_bytes = free,
                    "space returned under the state directory: accepting asynchronous invocations again");
            }
        }
    }

    /// The writer's report of one commit.
    pub fn note_write(&self, disk_full: bool) {
        if disk_full {
            // For the figure in the problem a caller gets.
            self.sample();
        }
        if self.write_refused.swap(disk_full, Ordering::Relaxed) != disk_full && !disk_full {
            tracing::warn!(state_dir = %self.dir.display(), "execution history writable again");
        }
    }
}

/// Whether SQLite refused a write because the disk is full.
pub fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_and_refused_writes_each_mean_full() {
        let dir = tempfile::tempdir().unwrap();
        let roomy = Space::new(dir.path(), 1);
        assert!(!roomy.is_full(), "a temp dir has more than one byte free");
        assert!(roomy.free_bytes() > 0 && roomy.free_bytes() < u64::MAX);
        roomy.note_write(true);
        assert!(roomy.is_full(), "a refused write means full");
        roomy.note_write(false);
        assert!(!roomy.is_full(), "a successful commit clears it");
        let starved = Space::new(dir.path(), u64::MAX);
        assert!(starved.is_full(), "no file system has u64::MAX bytes free");
    }

    #[test]
    fn only_sqlite_full_is_disk_full() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(is_disk_full(&full));
        assert!(!is_disk_full(&busy));
        assert!(!is_disk_full(&rusqlite::Error::QueryReturnedNoRows));
    }
}
