//! Signal forwarding and reaping for the helper's waiting processes: the outer helper waits for the
//! namespace init, and the init (pid 1 of the new pid namespace) reaps every zombie and waits for
//! the executor. Both block the forwarded signals and take them with `sigwait`, so nothing runs in
//! a signal handler.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, kill, sigaction,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use runwarm_sandbox::{EXIT_STEP_FAILED, Step, StepFailure};

/// Signals passed on to the child. SIGQUIT too: the executor hands it to a running script for
/// its diagnostic dump, and a namespace init would otherwise drop it.
const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

extern "C" fn ignore_signal(_: libc::c_int) {}

/// The set the waiting processes `sigwait` on: the forwarded signals and SIGCHLD.
pub(crate) fn waited_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks the waited set and installs a no-op handler for the forwarded signals. The handler
/// matters: the kernel drops signals sent from outside to a pid namespace's init when their
/// disposition is the default, even blocked ones.
pub(crate) fn block_forwarded_signals() -> Result<(), StepFailure> {
    let handler = SigAction::new(
        SigHandler::Handler(ignore_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in FORWARDED {
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        unsafe { sigaction(sig, &handler) }
            .map_err(|e| StepFailure::sys(Step::Signals, e, format!("sigaction({sig})")))?;
    }
    // SIGCHLD must not be ignored (an inherited SIG_IGN would auto-reap and hide the exit status).
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing the default disposition runs no code of ours.
    unsafe { sigaction(Signal::SIGCHLD, &default) }
        .map_err(|e| StepFailure::sys(Step::Signals, e, "sigaction(SIGCHLD)"))?;
    waited_set()
        .thread_block()
        .map_err(|e| StepFailure::sys(Step::Signals, e, "blocking forwarded signals"))
}

/// Undoes [`block_forwarded_signals`] for the executor: the mask survives `execve`, handlers do
/// not, but a default disposition is what the executor should start from either way.
pub(crate) fn restore_default_signals() -> Result<(), StepFailure> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in FORWARDED {
        // SAFETY: installing the default disposition runs no code of ours.
        unsafe { sigaction(sig, &default) }
            .map_err(|e| StepFailure::sys(Step::Signals, e, format!("sigaction({sig})")))?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| StepFailure::sys(Step::Signals, e, "unblocking signals"))
}

/// Reaps every child until `main` ends, forwarding the forwarded signals to it; returns the exit
/// code to leave with: `main`'s own, or 128+signal when it was killed.
pub(crate) fn reap_until_exit(main: Pid) -> i32 {
    let set = waited_set();
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(main, sig);
            continue;
        }
        // SIGCHLD coalesces: one delivery can stand for many exits, so drain them all.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == main => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                // No children left yet `main` was never seen: nothing more can be learnt.
                Err(_) => return EXIT_STEP_FAILED,
            }
        }
    }
}
