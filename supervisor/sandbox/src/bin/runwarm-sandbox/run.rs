//! `run()`: every layer of confinement as one straight list of ordered steps. The process splits
//! twice on the way: the outer helper stays in the host namespaces and waits; its child is the
//! init of the new namespaces and waits too; the init's child becomes the executor. Each process
//! reports its own failure on the status fd. docs/sandbox.md lists the same steps in this order.

use std::ffi::CString;

use nix::sys::stat::{Mode, umask};
use nix::unistd::{ForkResult, Gid, Uid, fork, setfsgid, setfsuid};
use runwarm_sandbox::{SandboxSpec, Step, StepFailure, build_filters};

use crate::namespaces::{Cloned, SyncPipe, clone_flags, clone_into_new_namespaces, write_id_maps};
use crate::status_pipe::StatusPipe;
use crate::{cgroups, mounts, network, privileges, reaper};

/// Applies the spec and execs the executor. Returns only in the waiting processes (with the exit
/// code to leave with) or with the failure of a step.
pub(crate) fn run(spec: &SandboxSpec, status: &mut StatusPipe) -> Result<i32, StepFailure> {
    // Validate first, and turn everything exec needs into C strings now, so a bad spec fails here
    // with a clear report instead of halfway through the namespaces.
    spec.validate()
        .map_err(|e| StepFailure::new(Step::Validate, libc::EINVAL, e.to_string()))?;
    let exec = ExecArgs::new(spec)?;
    let filters = if spec.layers.seccomp {
        build_filters().map_err(|e| StepFailure::new(Step::Seccomp, 0, format!("{e}: {:?}", e)))?
    } else {
        Vec::new()
    };

    // Close whatever the daemon leaked to us before anything else is created, so none of it
    // survives into the init or the executor (0–3 are the executor's, the status fd is ours).
    privileges::close_fds_above_3(status.raw(), false)?;

    // Join the executor's cgroups before creating any process, so the init, the executor and
    // everything they start are accounted and killable as one from the first instruction.
    let cgroup_v2 = cgroups::join(&spec.cgroups)?;

    // Block the forwarded signals before the clone, so a SIGTERM that arrives while the child is
    // still starting is queued and forwarded, not lost (the mask is inherited by the child).
    reaper::block_forwarded_signals()?;

    // Create the child in new namespaces. The parent stays outside: only there can it map the
    // sandbox ids to an arbitrary outside uid/gid.
    let setgroups_denied = spec.layers.user_ns && !Uid::effective().is_root();
    let sync = SyncPipe::new()?;
    let cloned = clone_into_new_namespaces(clone_flags(spec), cgroup_v2.as_ref(), || {
        cgroups::join_v2_by_procs(&spec.cgroups)
    })?;
    drop(cgroup_v2);
    match cloned {
        Cloned::Parent(child) => {
            // Write the child's uid/gid maps, release it, then only wait: our status fd copy is
            // dropped so that the executor's exec is what closes the pipe.
            if spec.layers.user_ns {
                write_id_maps(child, spec, setgroups_denied)?;
            }
            sync.release()?;
            status.close();
            return Ok(reaper::reap_until_exit(child));
        }
        Cloned::Child => {}
    }

    // --- the init: pid 1 of the new pid namespace ---
    // Wait for the maps: until they exist our ids are unmapped and setuid/setgid would fail.
    if !sync.wait()? {
        // The parent failed and reported it; leave quietly.
        return Ok(runwarm_sandbox::EXIT_STEP_FAILED);
    }
    if !spec.layers.pid_ns {
        // Without a pid namespace, orphans of the executor must still come back to us to be reaped.
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| StepFailure::sys(Step::SyncMaps, e, "PR_SET_CHILD_SUBREAPER"))?;
    }

    if spec.layers.mount_ns {
        // Private first: every mount below must stay inside this namespace.
        mounts::make_mounts_private()?;
        // Open the bind sources while we still have the host root's file identity...
        let plan = mounts::open_bind_sources(spec)?;
        // ...then take the sandbox ids as fs ids: a tmpfs mounted in a user namespace refuses to
        // create files for an owner it cannot map, and the root's skeleton must be created.
        if spec.layers.user_ns {
            umask(Mode::from_bits_truncate(0o022));
            setfsgid(Gid::from_raw(spec.inside_gid));
            setfsuid(Uid::from_raw(spec.inside_uid));
        }
        // Build the new root, with /proc mounted after the pid namespace exists so it shows ours.
        let root = mounts::build_new_root(spec, plan)?;
        // Swap roots and detach the old one: nothing of the host remains reachable by path.
        mounts::pivot_into(&root)?;
        // Read-only root last: it was writable only to create the mount points.
        mounts::remount_root_read_only()?;
    }

    // Our own hostname, so the host's name does not leak in.
    if spec.layers.ipc_uts_ns {
        nix::unistd::sethostname(&spec.hostname)
            .map_err(|e| StepFailure::sys(Step::Hostname, e, "sethostname"))?;
    }

    // A new network namespace starts with loopback down; bring it up so 127.0.0.1 works.
    if spec.layers.net_ns && !spec.network_host {
        network::bring_up_loopback()?;
    }

    // Die with the outer helper (the daemon kills it on drop); as pid 1 that takes the executor
    // and everything it started with us. Set here, after the fs id change above, because any
    // credential change clears the parent-death signal.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| StepFailure::sys(Step::ForkExecutor, e, "PR_SET_PDEATHSIG"))?;

    // Fork the executor (pid 2): the init must stay behind to reap zombies, and pid 1 ignores
    // signals it has no handler for, which would make the executor unkillable from inside.
    // SAFETY: the helper is single-threaded, so the child starts with consistent state.
    match unsafe { fork() }.map_err(|e| StepFailure::sys(Step::ForkExecutor, e, "fork"))? {
        ForkResult::Parent { child } => {
            status.close();
            return Ok(reaper::reap_until_exit(child));
        }
        ForkResult::Child => {}
    }

    // --- the executor ---
    // Default signal state: the blocked mask would otherwise survive the exec.
    reaper::restore_default_signals()?;
    // rlimits while still privileged (lowering is always allowed, but errors are clearer here).
    privileges::set_rlimits(&spec.rlimits)?;
    // The bounding set needs CAP_SETPCAP, which the id switch below takes away.
    if spec.layers.capabilities {
        privileges::drop_bounding_set()?;
    }
    // Become the unprivileged sandbox user (the outside ids when there is no user namespace).
    let (uid, gid) = if spec.layers.user_ns {
        (spec.inside_uid, spec.inside_gid)
    } else {
        (spec.uid, spec.gid)
    };
    privileges::switch_ids(uid, gid, setgroups_denied)?;
    // Explicitly empty every capability set: an id change from an unmapped uid keeps them.
    if spec.layers.capabilities {
        privileges::clear_capabilities()?;
    }
    // no_new_privs: no setuid binary or file capability hands privileges back.
    if spec.layers.no_new_privs {
        privileges::set_no_new_privs()?;
    }
    // Every fd above 3 close-on-exec: the status fd must survive until the exec itself.
    privileges::close_fds_above_3(None, true)?;
    // Seccomp last before exec, so none of the setup above needs a filtered call.
    privileges::install_seccomp(&filters)?;
    // The working directory inside the new root.
    nix::unistd::chdir(&spec.cwd)
        .map_err(|e| StepFailure::sys(Step::Chdir, e, format!("chdir {}", spec.cwd.display())))?;
    // Exec: on success the CLOEXEC status pipe closes and the daemon sees EOF with no report.
    let Err(err) = nix::unistd::execve(&exec.program, &exec.argv, &exec.env);
    Err(StepFailure::sys(
        Step::Exec,
        err,
        format!("execve {}", spec.program.display()),
    ))
}

/// Program, argv and environment as C strings, built before any namespace exists.
struct ExecArgs {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl ExecArgs {
    fn new(spec: &SandboxSpec) -> Result<Self, StepFailure> {
        let c = |s: String| {
            CString::new(s).map_err(|_| {
                StepFailure::new(Step::Validate, libc::EINVAL, "NUL byte in exec arguments")
            })
        };
        let program = c(spec.program.to_string_lossy().into_owned())?;
        let mut argv = vec![program.clone()];
        for arg in &spec.args {
            argv.push(c(arg.clone())?);
        }
        let mut env = Vec::new();
        for (k, v) in &spec.env {
            env.push(c(format!("{k}={v}"))?);
        }
        Ok(Self { program, argv, env })
    }
}
