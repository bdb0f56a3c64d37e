//! Creating the child in new namespaces and giving it its uid/gid maps. The parent stays in the
//! initial namespaces, where it still has the privilege to map the sandbox ids to an arbitrary
//! outside uid/gid; the child waits on a sync pipe until the maps are written.
#![allow(unsafe_code)]

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{Pid, pipe2};
use runwarm_sandbox::{SandboxSpec, Step, StepFailure};

/// Which side of the clone we are on.
pub(crate) enum Cloned {
    /// The original process; holds the child's pid.
    Parent(Pid),
    /// The new process (pid 1 of the new pid namespace when there is one).
    Child,
}

/// The namespaces the spec asks for.
pub(crate) fn clone_flags(spec: &SandboxSpec) -> CloneFlags {
    let layers = spec.layers;
    let mut flags = CloneFlags::empty();
    for (on, flag) in [
        (layers.user_ns, CloneFlags::CLONE_NEWUSER),
        (layers.mount_ns, CloneFlags::CLONE_NEWNS),
        (layers.pid_ns, CloneFlags::CLONE_NEWPID),
        (
            layers.ipc_uts_ns,
            CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS,
        ),
        (
            layers.net_ns && !spec.network_host,
            CloneFlags::CLONE_NEWNET,
        ),
    ] {
        if on {
            flags |= flag;
        }
    }
    flags
}

/// `CLONE_INTO_CGROUP` (Linux 5.7), spelled out because libc types it per architecture.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `clone3(2)` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Creates the child with fork semantics (no new stack, SIGCHLD on exit) in new namespaces and,
/// when `cgroup` is given, directly inside that v2 cgroup. On a kernel without `clone3` the
/// `join_slowly` fallback moves the helper into the cgroup first, then a plain `clone` follows.
pub(crate) fn clone_into_new_namespaces(
    flags: CloneFlags,
    cgroup: Option<&OwnedFd>,
    join_slowly: impl FnOnce() -> Result<(), StepFailure>,
) -> Result<Cloned, StepFailure> {
    let namespaces = u64::from(flags.bits().unsigned_abs());
    if let Some(fd) = cgroup {
        let args = CloneArgs {
            flags: namespaces | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: u64::from(fd.as_raw_fd().unsigned_abs()),
            ..CloneArgs::default()
        };
        // SAFETY: a zero stack gives clone3 fork semantics: the child runs on a copy-on-write copy
        // of our stack and returns here. The helper is single-threaded, so no lock can be held by
        // a thread missing in the child. `args` outlives the call and its size is passed with it.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                std::ptr::from_ref(&args),
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match ret {
            -1 if matches!(Errno::last(), Errno::ENOSYS | Errno::E2BIG) => join_slowly()?,
            -1 => {
                return Err(StepFailure::sys(
                    Step::CloneNamespaces,
                    Errno::last(),
                    format!("clone3({flags:?} | CLONE_INTO_CGROUP)"),
                ));
            }
            ret => return cloned(ret),
        }
    }
    let raw = namespaces | libc::SIGCHLD as u64;
    // SAFETY: with a null stack pointer clone(2) behaves like fork(2): the child runs on a
    // copy-on-write copy of our stack. The helper is single-threaded (no lock can be held by a
    // thread that does not exist in the child), and the trailing arguments are zero on every
    // architecture's argument order.
    let ret = unsafe { libc::syscall(libc::SYS_clone, raw, 0usize, 0usize, 0usize, 0usize) };
    if ret == -1 {
        return Err(StepFailure::sys(
            Step::CloneNamespaces,
            Errno::last(),
            format!("clone({flags:?})"),
        ));
    }
    cloned(ret)
}

fn cloned(ret: libc::c_long) -> Result<Cloned, StepFailure> {
    match ret {
        0 => Ok(Cloned::Child),
        pid => match i32::try_from(pid) {
            Ok(pid) => Ok(Cloned::Parent(Pid::from_raw(pid))),
            Err(_) => Err(StepFailure::new(
                Step::CloneNamespaces,
                0,
                format!("clone returned {pid}"),
            )),
        },
    }
}

/// Maps the inside uid/gid of `child`'s user namespace to the outside ones (one line each).
/// `setgroups` is set to `deny` only when the helper is not root, where the kernel demands it.
pub(crate) fn write_id_maps(
    child: Pid,
    spec: &SandboxSpec,
    deny_setgroups: bool,
) -> Result<(), StepFailure> {
    let proc = format!("/proc/{child}");
    let write = |file: &str, content: String| {
        let path = format!("{proc}/{file}");
        std::fs::write(&path, content.as_bytes()).map_err(|e| {
            StepFailure::io(Step::IdMaps, &e, format!("writing {content:?} to {path}"))
        })
    };
    if deny_setgroups {
        write("setgroups", "deny".to_owned())?;
    }
    write("uid_map", format!("{} {} 1\n", spec.inside_uid, spec.uid))?;
    write("gid_map", format!("{} {} 1\n", spec.inside_gid, spec.gid))?;
    Ok(())
}

/// A one-shot pipe: the parent writes one byte once the child's maps are in place.
#[derive(Debug)]
pub(crate) struct SyncPipe {
    read: Option<OwnedFd>,
    write: Option<OwnedFd>,
}

impl SyncPipe {
    /// A close-on-exec pipe, so neither end reaches the executor.
    pub(crate) fn new() -> Result<Self, StepFailure> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| StepFailure::sys(Step::CloneNamespaces, e, "sync pipe"))?;
        Ok(Self {
            read: Some(read),
            write: Some(write),
        })
    }

    /// Parent: lets the child go on.
    pub(crate) fn release(mut self) -> Result<(), StepFailure> {
        self.read = None;
        if let Some(write) = self.write.take() {
            nix::unistd::write(&write, b"1")
                .map_err(|e| StepFailure::sys(Step::IdMaps, e, "releasing the child"))?;
        }
        Ok(())
    }

    /// Child: waits for the parent. `Ok(false)` when the parent went away without releasing us
    /// (it failed and reports that itself).
    pub(crate) fn wait(mut self) -> Result<bool, StepFailure> {
        self.write = None;
        let Some(read) = self.read.take() else {
            return Ok(false);
        };
        let mut byte = [0u8; 1];
        let mut file = std::fs::File::from(read);
        loop {
            match file.read(&mut byte) {
                Ok(n) => return Ok(n == 1),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(StepFailure::io(
                        Step::SyncMaps,
                        &e,
                        "waiting for the id maps",
                    ));
                }
            }
        }
    }
}
