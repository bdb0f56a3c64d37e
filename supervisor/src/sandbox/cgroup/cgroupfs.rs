//! The thin file layer over cgroupfs: every read, write, mkdir and rmdir names its path and action.
//!
//! Writes never create files: a control file that does not exist means the controller is not
//! there, on the kernel and in fixture trees alike.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::CgroupError;

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| CgroupError::io("open for writing", path, e))?;
    // cgroupfs applies a value in one write(2); a short write would be a kernel rejection.
    file.write_all(value.as_bytes())
        .map_err(|e| CgroupError::io("write", path, e))
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

/// A control file's content, or `None` when it is absent or unreadable (an optional feature).
pub(crate) fn read_optional(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

pub(crate) fn make_dir_all(path: &Path) -> Result<(), CgroupError> {
    fs::create_dir_all(path).map_err(|e| CgroupError::io("create cgroup directory", path, e))
}

pub(crate) fn make_dir(path: &Path) -> Result<(), CgroupError> {
    fs::create_dir(path).map_err(|e| CgroupError::io("create cgroup directory", path, e))
}

/// Removes a cgroup directory, retrying while the kernel still reports it busy: after the last
/// process is killed the cgroup stays populated until the exit is fully accounted.
pub(crate) fn remove_dir_with_retry(path: &Path, within: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + within;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Fixture trees are plain directories that still hold the fixture files.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && !is_cgroupfs(path) => {
                return fs::remove_dir_all(path)
                    .map_err(|e| CgroupError::io("remove cgroup directory", path, e));
            }
            Err(e) => return Err(CgroupError::io("remove cgroup directory", path, e)),
        }
    }
}

/// Whether `path` lives on a real cgroup filesystem (v1 or v2), as opposed to a test fixture.
pub(crate) fn is_cgroupfs(path: &Path) -> bool {
    use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};
    statfs(path).is_ok_and(|s| {
        let t = s.filesystem_type();
        t == CGROUP_SUPER_MAGIC || t == CGROUP2_SUPER_MAGIC
    })
}

/// The pids listed in a `cgroup.procs` file; unparsable lines are skipped, never trusted.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    Ok(read(path)?
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|&p| p > 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_does_not_create_missing_control_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("pids.max"), "5").unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
        assert!(!dir.path().join("pids.max").exists());
    }

    #[test]
    fn read_pids_skips_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let procs = dir.path().join("cgroup.procs");
        std::fs::write(&procs, "12\n\nabc\n-3\n40\n").unwrap();
        assert_eq!(read_pids(&procs).unwrap(), vec![12, 40]);
    }

    #[test]
    fn remove_dir_with_retry_removes_fixture_dirs_and_tolerates_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("x");
        std::fs::create_dir(&cg).unwrap();
        std::fs::write(cg.join("cgroup.procs"), "").unwrap();
        remove_dir_with_retry(&cg, Duration::from_millis(50)).unwrap();
        assert!(!cg.exists());
        remove_dir_with_retry(&cg, Duration::from_millis(50)).unwrap();
    }
}
