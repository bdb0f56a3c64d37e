//! The error every cgroup operation returns, with the path and the action that failed.

use std::io;
use std::path::PathBuf;

/// A cgroup operation that failed; each variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup filesystem found under {root}")]
    NoCgroupFs { root: PathBuf },
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no usable cgroup controller under {path} (wanted {wanted})")]
    NoControllers { path: PathBuf, wanted: String },
    #[error("invalid cgroup name {name:?}: use letters, digits, '-', '_' and '.' only")]
    InvalidName { name: String },
    #[error("invalid cgroup limit {what} = {value}")]
    InvalidLimit { what: &'static str, value: String },
    #[error("{remaining} process(es) still in {path} after kill")]
    KillTimeout { path: PathBuf, remaining: usize },
}

impl CgroupError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CgroupError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// What a person can do about it, for the startup log and `/v1/info`.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CgroupError::NoCgroupFs { .. } => {
                Some("mount cgroup2 at /sys/fs/cgroup (or set sandbox = \"off\")")
            }
            CgroupError::Io { source, .. } if source.raw_os_error() == Some(libc::EROFS) => Some(
                "/sys/fs/cgroup is read-only for runwarmd: under systemd ProtectControlGroups=yes \
                 does that (leave it off); a container must mount the cgroup file systems \
                 read-write",
            ),
            CgroupError::Io { source, .. }
                if matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM)) =>
            {
                Some(
                    "runwarmd may not write its cgroup: run it as root with its cgroup delegated \
                     (systemd: Delegate=yes)",
                )
            }
            CgroupError::Io { source, path, .. }
                if source.raw_os_error() == Some(libc::EBUSY)
                    && path.ends_with("cgroup.subtree_control") =>
            {
                Some(
                    "cgroup v2 allows controllers only on cgroups without processes: start runwarmd \
                     in its own delegated cgroup (systemd: Delegate=yes)",
                )
            }
            CgroupError::Io { .. } => None,
            CgroupError::NoControllers { .. } => Some(
                "enable the controllers for the daemon's cgroup (v2: add them to the parent's \
                 cgroup.subtree_control; systemd: Delegate=memory pids cpu)",
            ),
            CgroupError::InvalidName { .. } | CgroupError::InvalidLimit { .. } => None,
            CgroupError::KillTimeout { .. } => {
                Some("a process in uninterruptible sleep (D state) cannot die until its I/O ends")
            }
        }
    }
}
