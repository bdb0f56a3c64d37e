//! Joining the executor's cgroups without the kernel's slow path.
//!
//! Writing a pid to `cgroup.procs` write-locks the global `cgroup_threadgroup_rwsem`, which first
//! waits out an RCU grace period: 7–15 ms on the hosts this was measured on, the largest single
//! cost of a confined cold start. Two ways in skip that lock, and the helper uses both:
//! - v1: writing `0` to a hierarchy's `tasks` file moves only the calling thread, and the kernel
//!   takes no threadgroup lock for that. The helper is single-threaded, so that thread is the whole
//!   process, and everything it creates afterwards is born inside.
//! - v2: `clone3(CLONE_INTO_CGROUP)` creates the sandbox's init directly in the cgroup (fork only
//!   takes the read side of the lock). The outer helper itself stays where it was.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use runwarm_sandbox::{CgroupJoin, CgroupVersion, Step, StepFailure};

/// Joins every v1 cgroup now and opens the v2 one (if any) for the clone that creates the init.
pub(crate) fn join(cgroups: &[CgroupJoin]) -> Result<Option<OwnedFd>, StepFailure> {
    let mut v2 = None;
    for join in cgroups {
        match join.version {
            CgroupVersion::V1 => write_file(&join.dir.join("tasks"), "0")?,
            CgroupVersion::V2 => {
                let fd = open(
                    &join.dir,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| {
                    StepFailure::sys(
                        Step::AttachCgroups,
                        e,
                        format!("opening cgroup {}", join.dir.display()),
                    )
                })?;
                v2 = Some(fd);
            }
        }
    }
    Ok(v2)
}

/// The slow way into a v2 cgroup, for kernels without `clone3` (before 5.7): the helper moves
/// itself, so the init it creates next is born inside.
pub(crate) fn join_v2_by_procs(cgroups: &[CgroupJoin]) -> Result<(), StepFailure> {
    let pid = std::process::id().to_string();
    for join in cgroups.iter().filter(|j| j.version == CgroupVersion::V2) {
        write_file(&join.dir.join("cgroup.procs"), &pid)?;
    }
    Ok(())
}

fn write_file(path: &Path, content: &str) -> Result<(), StepFailure> {
    std::fs::write(path, content.as_bytes()).map_err(|e| {
        StepFailure::io(
            Step::AttachCgroups,
            &e,
            format!("writing {content:?} to {}", path.display()),
        )
    })
}
