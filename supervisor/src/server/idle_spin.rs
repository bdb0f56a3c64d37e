//! A bounded, adaptive spin before a runtime thread sleeps (`server.idle_spin_us`).
//!
//! A warm call wakes the daemon twice: when the caller's request arrives and when the
//! executor's reply does, each usually within tens of microseconds of the daemon running out
//! of work. A sleeping thread whose CPU halts pays that CPU's wake-up each time; on virtual
//! machines without guest halt polling that is 15–40 µs, more than the daemon's own work per
//! call (docs/design/0007-hot-path.md). So before a worker parks, it polls the runtime's epoll
//! instance — readable when any of its sources is ready, and polling it takes no event — and
//! returns as soon as something is ready: the park that follows finds the event at once
//! instead of sleeping. Wake-ups from other threads (the history writer answering, a timer)
//! go through the same instance (mio's waker is registered in it), so they end the spin too.
//!
//! The window adapts the way the kernel's halt polling does: it grows (from 10 µs, doubling up
//! to the budget) while idle spells are shorter than the budget, and halves when a spell
//! outlasts it, so an idle daemon soon stops spinning and a steady stream of calls keeps it.
//! It is off on a single CPU, where spinning would only delay the process it waits for.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Where a window starts growing from, and below which it is off.
const MIN_WINDOW: Duration = Duration::from_micros(10);

/// The runtime's epoll instance and the longest spin, set once at start.
#[derive(Debug)]
struct Armed {
    epoll: OwnedFd,
    budget: Duration,
}

static ARMED: OnceLock<Armed> = OnceLock::new();

thread_local! {
    /// This worker's spin window and when it last began to park.
    static WINDOW: Cell<Window> = const { Cell::new(Window { current: Duration::ZERO, parked_at: None }) };
}

/// One worker's adaptive state.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    current: Duration,
    parked_at: Option<Instant>,
}

impl Window {
    /// The next window after an idle spell of `idle`, for a `budget`.
    fn after_idle(self, idle: Duration, budget: Duration) -> Duration {
        if idle <= self.current {
            // The spin (or a park no longer than it) caught the event: keep it.
            self.current
        } else if idle <= budget {
            // Longer than the window but within the budget: a longer spin would have caught it.
            (self.current * 2).clamp(MIN_WINDOW, budget)
        } else {
            // Longer than any spin: waiting for it only burns the CPU.
            let half = self.current / 2;
            if half < MIN_WINDOW {
                Duration::ZERO
            } else {
                half
            }
        }
    }
}

/// The epoll instances of this process, one descriptor each (mio keeps a duplicate of its
/// own), with the instance's inode.
pub fn epoll_fds() -> Vec<(RawFd, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut found: Vec<(RawFd, u64)> = Vec::new();
    for e in dir.flatten() {
        let is_epoll =
            std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:[eventpoll]");
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Some(ino) = is_epoll.then(|| inode_of(fd)).flatten() else {
            continue;
        };
        if !found.iter().any(|&(_, i)| i == ino) {
            found.push((fd, ino));
        }
    }
    found
}

fn inode_of(fd: RawFd) -> Option<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("ino:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Arms the spin for the runtime just built: `before` are the epoll instances from before it
/// was built, so the one it made is the new one. Says why not when it stays off: a zero budget,
/// one CPU, or not exactly one new instance (the spin would not know what to poll).
pub fn arm(before: &[(RawFd, u64)], budget: Duration) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if budget.is_zero() {
        return Err("server.idle_spin_us is 0".into());
    }
    if cpus < 2 {
        return Err("one CPU: the spin would delay the process it waits for".into());
    }
    let new: Vec<RawFd> = epoll_fds()
        .into_iter()
        .filter(|&(_, ino)| !before.iter().any(|&(_, i)| i == ino))
        .map(|(fd, _)| fd)
        .collect();
    let [epoll] = new[..] else {
        return Err(format!(
            "{} new epoll instances after the runtime was built, not one",
            new.len()
        ));
    };
    // SAFETY: `epoll` was just listed in /proc/self/fd as the epoll instance the runtime built
    // by the caller created, and that runtime (which owns it) is alive; the borrow lasts only
    // for the duplicate, which then keeps the instance open on its own.
    let epoll = unsafe { BorrowedFd::borrow_raw(epoll) }
        .try_clone_to_owned()
        .map_err(|e| format!("duplicating the runtime's epoll descriptor: {e}"))?;
    ARMED
        .set(Armed { epoll, budget })
        .map_err(|_| "already armed".to_owned())
}

/// The runtime's `on_thread_park` hook.
pub fn before_park() {
    let Some(armed) = ARMED.get() else { return };
    let now = Instant::now();
    let mut w = WINDOW.get();
    w.parked_at = Some(now);
    WINDOW.set(w);
    if w.current.is_zero() {
        return;
    }
    let until = now + w.current;
    let fd = armed.epoll.as_fd();
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) if Instant::now() < until => std::hint::spin_loop(),
            _ => return,
        }
    }
}

/// The runtime's `on_thread_unpark` hook: adapts the window to the idle spell that ended.
pub fn after_unpark() {
    let Some(armed) = ARMED.get() else { return };
    let mut w = WINDOW.get();
    if let Some(at) = w.parked_at.take() {
        w.current = w.after_idle(at.elapsed(), armed.budget);
    }
    WINDOW.set(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_micros(50);

    fn window(us: u64) -> Window {
        Window {
            current: Duration::from_micros(us),
            parked_at: None,
        }
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn short_spells_grow_the_window_from_the_minimum_to_the_budget() {
        let mut w = window(0);
        let mut seen = Vec::new();
        for _ in 0..5 {
            w.current = w.after_idle(us(45), BUDGET);
            seen.push(w.current.as_micros());
        }
        assert_eq!(seen, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn a_spell_the_window_caught_keeps_it() {
        assert_eq!(window(40).after_idle(us(12), BUDGET), us(40));
    }

    #[test]
    fn long_spells_halve_the_window_until_it_is_off() {
        let mut w = window(50);
        let mut seen = Vec::new();
        for _ in 0..4 {
            w.current = w.after_idle(Duration::from_millis(3), BUDGET);
            seen.push(w.current.as_micros());
        }
        assert_eq!(seen, [25, 12, 0, 0]);
    }
}
