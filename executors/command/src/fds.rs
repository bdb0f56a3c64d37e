//! The file descriptors the executor inherits: user stdout (fd 3, named in `RUNWARM_STDOUT_FD`)
//! becomes an owned `File`, and every inherited fd above 2 is marked close-on-exec so no script
//! process sees the supervisor's pipes. The only module with `unsafe`: taking ownership of a raw
//! fd and `fcntl` on fds nothing else in the process owns.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

use runwarm_protocol::env::{STDOUT_FD, USER_STDOUT_FD};

/// Marks every fd above 2 close-on-exec. Must run before any other thread starts or file is
/// opened, so the fds it touches are exactly the inherited ones. Without it an fd the
/// supervisor (or a sandbox helper) left open would reach every script process, and a pipe
/// held open by a script keeps its reader waiting for EOF.
pub fn mark_inherited_fds_cloexec() -> io::Result<()> {
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD only read and set the close-on-exec flag of `fd` and touch
        // no memory; an fd that is already closed (the directory handle `read_dir` used)
        // fails with EBADF, which is ignored.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

/// Where user stdout goes, and a warning when it is not where the supervisor said.
pub fn user_stdout(env_value: Option<&str>) -> io::Result<(File, Option<String>)> {
    let fd = match env_value {
        None => USER_STDOUT_FD,
        Some(text) => match text.trim().parse::<RawFd>() {
            Ok(fd) => fd,
            Err(_) => return stderr_copy(format!("{STDOUT_FD}={text:?} is not an fd number")),
        },
    };
    // fds 0 to 2 are the protocol pipes and stderr: script output there would corrupt the
    // protocol or lose its attribution.
    if fd <= 2 {
        return stderr_copy(format!("{STDOUT_FD}={fd} names a standard stream"));
    }
    // SAFETY: F_GETFD only reads the flags of `fd`; it fails with EBADF when `fd` is not open.
    let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
    if !open {
        return stderr_copy(format!("user stdout fd {fd} is not open"));
    }
    // SAFETY: `fd` is open (checked above), above the standard streams, and was handed to this
    // process by the supervisor for user stdout alone; `main` calls this once, so this
    // `OwnedFd` is its only owner and closing it on drop is correct.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((File::from(owned), None))
}

/// Falls back to a copy of stderr: user output still reaches the supervisor, attributed to the
/// request, and never touches the protocol channel.
fn stderr_copy(why: String) -> io::Result<(File, Option<String>)> {
    let fd = io::stderr().as_fd().try_clone_to_owned()?;
    Ok((
        File::from(fd),
        Some(format!("{why}; user stdout goes to stderr")),
    ))
}
