//! The status fd: where a failing step writes its one JSON line. It is close-on-exec, so the
//! executor's successful `execve` closes the last copy and the daemon reads EOF with no line.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use runwarm_sandbox::StepFailure;

/// The helper's copy of the status fd (each process of the helper holds its own after fork).
#[derive(Debug)]
pub(crate) struct StatusPipe {
    fd: Option<OwnedFd>,
}

impl StatusPipe {
    /// No status fd: failures go to stderr only.
    pub(crate) fn none() -> Self {
        Self { fd: None }
    }

    /// Takes the fd and makes it close-on-exec, so the executor never inherits it.
    pub(crate) fn new(fd: OwnedFd) -> Self {
        // A failure here (EBADF: the daemon passed a closed fd) leaves us with no usable pipe.
        match fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)) {
            Ok(_) => Self { fd: Some(fd) },
            Err(_) => {
                // The number may be free, or (worse) reused by nothing of ours: do not close it.
                std::mem::forget(fd);
                Self { fd: None }
            }
        }
    }

    /// The raw number to keep open when closing inherited fds.
    pub(crate) fn raw(&self) -> Option<i32> {
        use std::os::fd::AsRawFd;
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Writes the failure to the status fd and to stderr.
    pub(crate) fn report(&mut self, failure: &StepFailure) {
        let line = failure.to_line();
        if let Some(fd) = &self.fd {
            // One short write: the line is far below PIPE_BUF, so the daemon reads it whole.
            let _ = nix::unistd::write(fd, line.as_bytes());
        }
        let _ = std::io::stderr().write_all(failure.to_stderr_line().as_bytes());
    }

    /// Drops this process's copy, so only the processes still before exec hold the pipe open.
    pub(crate) fn close(&mut self) {
        self.fd = None;
    }
}
