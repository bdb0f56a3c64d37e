//! SIGTERM handling: forwarded to the script process while one runs, the executor's own death
//! otherwise.
//!
//! How signals reach a script process (the same questions uv's `child.rs` answers for `uv run`):
//!
//! - The script runs in the executor's process group, and the executor in the one the supervisor
//!   gave it. On a timeout or a protocol fault the supervisor kills the whole group (and the
//!   sandbox kills the whole cgroup), so a script and anything it started die with the executor
//!   without any forwarding here.
//! - A SIGTERM sent to the executor's pid alone (an operator's `kill`, the supervisor's polite
//!   first step) is different: the executor forwards it to the script's pid, so the script gets
//!   the chance to clean up it would have had if it ran on its own, lets it end, answers the
//!   request with whatever the script did (usually `Signal`, `killed by signal 15`), and then
//!   exits 143. A SIGTERM that arrives while no script runs ends the executor at once, exactly as
//!   the default action would.
//! - SIGTERM is blocked in every executor thread and taken by one thread with `sigwait`, so no
//!   signal handler runs and no async-signal-safety rules apply to the forwarding. A blocked
//!   mask survives `fork` and `exec`, and `std::process::Command` does not reset it (checked:
//!   without the hook a script showed `SigBlk: 0000000000004000` and never saw the forwarded
//!   SIGTERM), so every script is spawned with a `pre_exec` hook that empties its mask.
//! - Forwarding goes to a pid, which the kernel may reuse once the process is reaped. The main
//!   thread therefore first waits with `WNOWAIT` (the zombie keeps its pid), then clears the pid
//!   here under the lock, and only then reaps: a forward can never hit a stranger.
//! - SIGQUIT is forwarded the same way but does not end the executor: a person or a tool that
//!   sends it wants the running script's diagnostic (a JVM's thread dump, Python's
//!   `faulthandler`, a shell's trap), and the next request is served as usual. With no script
//!   running it takes its default action on the executor.
//! - SIGINT keeps its default action: nothing sends it to a headless executor but a person, who
//!   means the executor itself.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Mutex, PoisonError};
use std::thread;

use nix::errno::Errno;
use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::Pid;

/// Exit status of an executor that ended because of SIGTERM, as a shell would report it.
pub const TERMINATED_EXIT: u8 = 128 + 15;

/// The script process currently running, shared by the main thread and the signal thread.
#[derive(Debug)]
pub struct ChildSlot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    pid: Option<Pid>,
    terminate: bool,
}

impl ChildSlot {
    /// An empty slot, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(SlotState {
                pid: None,
                terminate: false,
            }),
        }
    }

    /// Starts the script and records its pid under one lock: from then on SIGTERM is forwarded
    /// to it. A SIGTERM that comes while the script starts waits for the pid instead of finding
    /// no script and ending the executor without an answer (the script may already be running
    /// and visible to whoever sent it).
    pub fn spawn(&self, command: &mut Command) -> io::Result<Child> {
        let mut state = self.lock();
        let child = command.spawn()?;
        state.pid = i32::try_from(child.id()).ok().map(Pid::from_raw);
        Ok(child)
    }

    /// Forgets the script's pid. Call before reaping it.
    pub fn clear(&self) {
        self.lock().pid = None;
    }

    /// Whether a SIGTERM was forwarded, so the executor must exit after answering.
    pub fn termination_requested(&self) -> bool {
        self.lock().terminate
    }

    /// A poisoned lock only means a thread panicked while holding plain data; the data is
    /// still a valid pid or none.
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The signals the forwarding thread takes.
fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGQUIT);
    set
}

/// Blocks the forwarded signals in the calling thread and every thread it starts later. Call
/// first in `main`.
pub fn block_forwarded() -> nix::Result<()> {
    forwarded_set().thread_block()
}

/// Makes `command` start its process with no blocked signals, as a process started by a shell
/// would, instead of with the executor's mask.
pub fn unblock_signals_on_exec(command: &mut Command) {
    // SAFETY: the hook runs in the forked child before exec and calls only `sigemptyset` and
    // `sigprocmask`, both async-signal-safe; it allocates nothing and touches only its own stack.
    unsafe {
        command.pre_exec(|| {
            let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            if libc::sigemptyset(empty.as_mut_ptr()) != 0
                || libc::sigprocmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut()) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Starts the thread that takes SIGTERM and SIGQUIT for the whole process.
pub fn spawn_forwarder(slot: &'static ChildSlot) -> io::Result<()> {
    thread::Builder::new()
        .name("sigterm".to_owned())
        .spawn(move || forward_loop(slot))
        .map(drop)
}

fn forward_loop(slot: &'static ChildSlot) {
    let set = forwarded_set();
    loop {
        let Ok(sig) = set.wait() else {
            continue;
        };
        let mut state = slot.lock();
        match state.pid {
            Some(pid) => {
                if sig == Signal::SIGTERM {
                    state.terminate = true;
                }
                match signal::kill(pid, sig) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => eprintln!("runwarm-exec-command: forwarding {sig} to {pid}: {e}"),
                }
            }
            None => die_by(sig),
        }
    }
}

/// Ends the process the way the unhandled signal would, so the supervisor sees the same wait
/// status it would see without this thread.
fn die_by(sig: Signal) -> ! {
    let mut only = SigSet::empty();
    only.add(sig);
    if only.thread_unblock().is_ok() {
        // The signal is now deliverable to this thread; with the default action it ends the
        // process before `raise` returns.
        let _ = signal::raise(sig);
    }
    // The signal is ignored (an inherited SIG_IGN): exit with the status a shell would show.
    std::process::exit(128 + sig as i32)
}
