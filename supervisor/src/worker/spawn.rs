//! The spawn seam: the one function through which every executor process starts.
//!
//! The child gets the protocol on fd 0/1, user stderr on fd 2 and user stdout on fd 3, a clean
//! environment, and its own process group so it can be killed as a group. Nothing but fd
//! placement runs between `fork` and `exec` here: the daemon is multi-threaded, so the `pre_exec`
//! hook only calls the async-signal-safe `dup2`/`fcntl`. Confinement wraps this function.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use runwarm_protocol::env as proto_env;

/// How to start one executor process.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// Program to exec (absolute path).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment (nothing of the daemon's is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// An fd the child gets as [`runwarm_sandbox::SPEC_FD`]: the sandbox helper's spec.
    pub spec_fd: Option<std::sync::Arc<OwnedFd>>,
}

/// A started executor process and the daemon's ends of its pipes.
#[derive(Debug)]
pub struct Spawned {
    /// The process (waited on through tokio; killed on drop).
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// Protocol in.
    pub stdin: ChildStdin,
    /// Protocol out.
    pub stdout: ChildStdout,
    /// User stderr.
    pub stderr: pipe::Receiver,
    /// User stdout (the child's fd 3).
    pub user_out: pipe::Receiver,
}

/// Why an executor could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A pipe could not be made.
    #[error("cannot create pipe for executor")]
    Pipe(#[source] std::io::Error),
    /// exec failed (missing program, permissions, …).
    #[error("cannot start executor {program}")]
    Exec {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Starts an executor process as `spec` says.
pub fn spawn_executor(spec: &LaunchSpec) -> Result<Spawned, SpawnError> {
    let (err_read, err_write) = cloexec_pipe()?;
    let (out_read, out_write) = cloexec_pipe()?;
    // Both sources sit above the targets (3 and 4), so placing one never overwrites the other.
    let out_write = above_targets(&out_write)?;
    let user_fd = out_write.as_raw_fd();
    let spec_copy = spec.spec_fd.as_deref().map(above_targets).transpose()?;
    let spec_fd = spec_copy.as_ref().map(AsRawFd::as_raw_fd);

    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(proto_env::STDOUT_FD, proto_env::USER_STDOUT_FD.to_string())
        .env(
            proto_env::PROTOCOL,
            runwarm_protocol::PROTOCOL_VERSION.to_string(),
        )
        .current_dir(&spec.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err_write))
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and only calls dup2/fcntl, which
    // are async-signal-safe; it allocates nothing and touches no lock. `user_fd` stays open in
    // the child until exec because `out_write` is alive in the parent until `spawn` returns.
    unsafe {
        cmd.pre_exec(move || {
            let target = proto_env::USER_STDOUT_FD;
            if user_fd == target {
                // dup2 onto itself keeps FD_CLOEXEC; clear it so fd 3 survives exec.
                if libc::fcntl(target, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(user_fd, target) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = spec_fd
                && libc::dup2(fd, runwarm_sandbox::SPEC_FD) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| SpawnError::Exec {
        program: spec.program.clone(),
        source,
    })?;
    drop(out_write);
    drop(spec_copy);
    drop(cmd);
    let pid = child.id().unwrap_or_default();
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(SpawnError::Pipe(std::io::Error::other(
            "child pipes missing",
        )));
    };
    Ok(Spawned {
        child,
        pid,
        stdin,
        stdout,
        stderr: receiver(err_read)?,
        user_out: receiver(out_read)?,
    })
}

/// A close-on-exec duplicate numbered 10 or above.
fn above_targets(fd: &OwnedFd) -> Result<OwnedFd, SpawnError> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(10)).map_err(|e| SpawnError::Pipe(e.into()))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// Gives a child spawned through `cmd` the sandbox spec `fd` as [`runwarm_sandbox::SPEC_FD`]
/// (for the commands that do not go through [`spawn_executor`]: prepare steps).
pub fn pass_spec_fd(cmd: &mut Command, fd: &OwnedFd) -> Result<OwnedFd, SpawnError> {
    let copy = above_targets(fd)?;
    let raw = copy.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls dup2, which is
    // async-signal-safe; `copy` stays open in the parent until the caller has spawned.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, runwarm_sandbox::SPEC_FD) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(copy)
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Pipe(e.into()))
}

fn receiver(fd: OwnedFd) -> Result<pipe::Receiver, SpawnError> {
    fcntl(&fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| SpawnError::Pipe(e.into()))?;
    pipe::Receiver::from_owned_fd(fd).map_err(SpawnError::Pipe)
}
