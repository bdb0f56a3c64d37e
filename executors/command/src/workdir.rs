//! The per-request working directory: created fresh (mode 0700) under `$TMPDIR` or `/tmp`,
//! holds `args.json`, is the script's cwd, and is removed with everything in it when the
//! request ends, so one request never sees another's files.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the file holding the request payload.
pub const ARGS_FILE_NAME: &str = "args.json";

/// Why a working directory could not be prepared.
#[derive(Debug)]
pub struct WorkdirError {
    /// The path that failed.
    pub path: PathBuf,
    /// What was being done.
    pub action: &'static str,
    /// The OS error.
    pub source: io::Error,
}

impl std::fmt::Display for WorkdirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

/// A request's working directory; removed on drop.
#[derive(Debug)]
pub struct Workdir {
    path: PathBuf,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Workdir {
    /// Creates a fresh directory under `base` and writes `payload` to `args.json` in it.
    pub fn create(base: &Path, payload: &[u8]) -> Result<Self, WorkdirError> {
        let dir = Self::create_unique(base)?;
        let args = dir.args_file();
        fs::write(&args, payload).map_err(|source| WorkdirError {
            path: args,
            action: "writing",
            source,
        })?;
        Ok(dir)
    }

    fn create_unique(base: &Path) -> Result<Self, WorkdirError> {
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        loop {
            let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("runwarm-req-{pid}-{seq}-{nanos:08x}"));
            // `create` (not `recursive`) fails on an existing path, so a name somebody
            // prepared in a shared /tmp is never adopted.
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(source) => {
                    return Err(WorkdirError {
                        path,
                        action: "creating",
                        source,
                    });
                }
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The payload file.
    pub fn args_file(&self) -> PathBuf {
        self.path.join(ARGS_FILE_NAME)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.path).is_ok() {
            return;
        }
        // A script may have left a read-only subdirectory behind; make it writable and retry.
        make_writable(&self.path);
        if let Err(e) = fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            eprintln!(
                "runwarm-exec-command: removing {}: {e}",
                self.path.display()
            );
        }
    }
}

fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // `file_type` does not follow symlinks, so a link out of the directory is never walked.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&entry.path());
        }
    }
}

/// `$TMPDIR` when set and non-empty, else `/tmp`.
pub fn base_dir(tmpdir: Option<&std::ffi::OsStr>) -> PathBuf {
    match tmpdir {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/tmp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let base =
            std::env::temp_dir().join(format!("runwarm-workdir-test-{}", std::process::id()));
        fs::create_dir_all(&base).unwrap();
        base
    }

    #[test]
    fn creates_unique_dirs_with_args_and_removes_them() {
        let base = scratch();
        let a = Workdir::create(&base, b"{\"x\":1}").unwrap();
        let b = Workdir::create(&base, b"[]").unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(fs::read(a.args_file()).unwrap(), b"{\"x\":1}");
        let mode = fs::metadata(a.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let (pa, pb) = (a.path().to_owned(), b.path().to_owned());
        fs::create_dir(pa.join("ro")).unwrap();
        fs::write(pa.join("ro/f"), b"x").unwrap();
        fs::set_permissions(pa.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        drop(a);
        drop(b);
        assert!(!pa.exists() && !pb.exists());
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn base_dir_prefers_tmpdir() {
        assert_eq!(base_dir(Some("/x".as_ref())), PathBuf::from("/x"));
        assert_eq!(base_dir(Some("".as_ref())), PathBuf::from("/tmp"));
        assert_eq!(base_dir(None), PathBuf::from("/tmp"));
    }
}
