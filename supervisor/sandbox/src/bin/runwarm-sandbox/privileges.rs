//! The executor's last steps before exec: rlimits, the capability bounding set, the inside ids,
//! the remaining capability sets, no_new_privs, inherited fds and the seccomp filter.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::resource::{Resource, setrlimit};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
use runwarm_sandbox::{Rlimits, Step, StepFailure};
use seccompiler::BpfProgram;

/// Sets soft = hard for core, file size and open files.
pub(crate) fn set_rlimits(limits: &Rlimits) -> Result<(), StepFailure> {
    for (resource, value, name) in [
        (Resource::RLIMIT_CORE, limits.core, "RLIMIT_CORE"),
        (Resource::RLIMIT_FSIZE, limits.fsize, "RLIMIT_FSIZE"),
        (Resource::RLIMIT_NOFILE, limits.nofile, "RLIMIT_NOFILE"),
    ] {
        setrlimit(resource, value, value).map_err(|e| {
            StepFailure::sys(Step::Rlimits, e, format!("setrlimit({name}, {value})"))
        })?;
    }
    Ok(())
}

/// Drops every capability from the bounding set. Needs CAP_SETPCAP, so it runs before the ids
/// change; the loop ends at the first capability the kernel does not know (EINVAL).
pub(crate) fn drop_bounding_set() -> Result<(), StepFailure> {
    for cap in 0..64 {
        // SAFETY: PR_CAPBSET_DROP takes an integer argument and touches no memory of ours.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if ret < 0 {
            match Errno::last() {
                Errno::EINVAL if cap > 0 => return Ok(()),
                errno => {
                    return Err(StepFailure::sys(
                        Step::BoundingSet,
                        errno,
                        format!("PR_CAPBSET_DROP {cap}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Switches every uid and gid (real, effective, saved, fs) and empties the supplementary groups.
/// `setgroups` is skipped when it was denied for an unprivileged helper's user namespace.
pub(crate) fn switch_ids(uid: u32, gid: u32, setgroups_denied: bool) -> Result<(), StepFailure> {
    if !setgroups_denied {
        setgroups(&[]).map_err(|e| StepFailure::sys(Step::Ids, e, "setgroups([])"))?;
    }
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    setresgid(gid, gid, gid)
        .map_err(|e| StepFailure::sys(Step::Ids, e, format!("setresgid({gid})")))?;
    setresuid(uid, uid, uid)
        .map_err(|e| StepFailure::sys(Step::Ids, e, format!("setresuid({uid})")))?;
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Empties the effective, permitted and inheritable sets and clears the ambient set. Changing the
/// uid does not do this for us when the old uid was unmapped (as the init's is), so it is explicit.
pub(crate) fn clear_capabilities() -> Result<(), StepFailure> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset reads a v3 header and two data structs, which is exactly what we pass.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) } < 0 {
        return Err(StepFailure::sys(
            Step::Capabilities,
            Errno::last(),
            "capset(all empty)",
        ));
    }
    // SAFETY: integer-only prctl.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // Kernels before 4.3 have no ambient set (EINVAL): then there is nothing to clear.
    if ret < 0 && Errno::last() != Errno::EINVAL {
        return Err(StepFailure::sys(
            Step::Capabilities,
            Errno::last(),
            "PR_CAP_AMBIENT_CLEAR_ALL",
        ));
    }
    Ok(())
}

/// `PR_SET_NO_NEW_PRIVS`: no setuid bit or file capability can give privileges back after exec.
pub(crate) fn set_no_new_privs() -> Result<(), StepFailure> {
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| StepFailure::sys(Step::NoNewPrivs, e, "PR_SET_NO_NEW_PRIVS"))
}

const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Closes every fd above 3, or marks it close-on-exec when `cloexec`, so the status pipe stays
/// usable until the exec closes it.
pub(crate) fn close_fds_above_3(keep: Option<i32>, cloexec: bool) -> Result<(), StepFailure> {
    let flags = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    let step = if cloexec {
        Step::CloseFds
    } else {
        Step::CloseInheritedFds
    };
    let ranges = match keep
        .and_then(|fd| u32::try_from(fd).ok())
        .filter(|fd| *fd > 3)
    {
        Some(fd) if !cloexec => vec![(4, fd - 1), (fd.saturating_add(1), u32::MAX)],
        _ => vec![(4, u32::MAX)],
    };
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: close_range only closes fds; none of the closed ones is owned by Rust code
        // that would use it afterwards (the kept status fd is outside the ranges).
        if unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) } < 0 {
            return Err(StepFailure::sys(
                step,
                Errno::last(),
                format!("close_range({first}, {last})"),
            ));
        }
    }
    Ok(())
}

/// Installs the filters; the last step before exec, so nothing of the setup is filtered.
pub(crate) fn install_seccomp(filters: &[BpfProgram]) -> Result<(), StepFailure> {
    for filter in filters {
        seccompiler::apply_filter(filter).map_err(|e| {
            let errno = match &e {
                seccompiler::Error::Seccomp(io) | seccompiler::Error::Prctl(io) => {
                    io.raw_os_error().unwrap_or(0)
                }
                _ => 0,
            };
            StepFailure::new(
                Step::Seccomp,
                errno,
                format!("installing the seccomp filter: {e}"),
            )
        })?;
    }
    Ok(())
}
