//! systemd integration: `sd_notify` messages (READY, WATCHDOG, STATUS, RELOADING, STOPPING) and
//! socket activation (`LISTEN_FDS`/`LISTEN_PID`).
//!
//! The environment is read from a map the caller passes, so tests need no `set_var`; messages
//! are formatted by the `sd-notify` crate and sent to the socket that map names.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The first inherited fd of socket activation (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// What the service manager told the daemon through its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemdEnv {
    /// `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
    pub notify_socket: Option<String>,
    /// `WATCHDOG_USEC`, when it is meant for this process.
    pub watchdog: Option<Duration>,
    /// Inherited listening fds, when `LISTEN_PID` is this process.
    pub listen_fds: u32,
}

impl SystemdEnv {
    /// Reads the variables from `env`; `pid` is this process's id (for `*_PID` checks).
    pub fn from_map(env: &HashMap<String, String>, pid: u32) -> Self {
        let for_us = |key: &str| {
            env.get(key)
                .is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid))
        };
        let watchdog = env
            .get("WATCHDOG_USEC")
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && for_us("WATCHDOG_PID"))
            .map(Duration::from_micros);
        let listen_fds = match env.get("LISTEN_PID") {
            Some(p) if p.trim().parse::<u32>().ok() == Some(pid) => env
                .get("LISTEN_FDS")
                .and_then(|n| n.trim().parse::<u32>().ok())
                .unwrap_or(0),
            _ => 0,
        };
        SystemdEnv {
            notify_socket: env.get("NOTIFY_SOCKET").filter(|s| !s.is_empty()).cloned(),
            watchdog,
            listen_fds,
        }
    }

    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_map(&std::env::vars().collect(), std::process::id())
    }
}

/// Sends `sd_notify` messages; does nothing when there is no `NOTIFY_SOCKET`.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<String>,
}

impl Notifier {
    /// A notifier for `env`.
    pub fn new(env: &SystemdEnv) -> Self {
        Notifier {
            target: env.notify_socket.clone(),
        }
    }

    /// Sends `states` as one datagram. Failures are logged, never fatal: the daemon serves
    /// whether or not a service manager listens.
    pub fn notify(&self, states: &[NotifyState<'_>]) {
        let Some(target) = &self.target else {
            return;
        };
        let msg: String = states.iter().map(|s| format!("{s}\n")).collect();
        match send(target, msg.as_bytes()) {
            Ok(_) => {}
            // The manager is not reading (its queue is full): this message is dropped rather
            // than blocking a runtime thread, which would stall every task queued behind it.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tracing::debug!(notify_socket = %target, "sd_notify dropped: the socket's queue is full");
            }
            Err(e) => tracing::warn!(notify_socket = %target, error = %e, "sd_notify failed"),
        }
    }
}

fn send(target: &str, msg: &[u8]) -> std::io::Result<usize> {
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(msg, &addr)
    } else {
        sock.send_to(msg, target)
    }
}

/// Takes the listener systemd passed as fd 3, if `env` says there is one.
pub fn inherited_listener(
    env: &SystemdEnv,
) -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    use std::os::fd::{FromRawFd, OwnedFd};
    if env.listen_fds == 0 {
        return Ok(None);
    }
    if env.listen_fds > 1 {
        tracing::warn!(
            listen_fds = env.listen_fds,
            "more than one socket passed; only the first is served"
        );
    }
    // SAFETY: LISTEN_PID names this process, so by the sd_listen_fds protocol fd 3 is an open
    // descriptor the service manager handed to us and nothing else in the process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTEN_FDS_START) };
    // Executors must not inherit the API socket.
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(std::io::Error::from)?;
    let listener = std::os::unix::net::UnixListener::from(fd);
    // Fails unless fd 3 really is a Unix socket.
    listener.local_addr()?;
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Sends `WATCHDOG=1` every half interval, but only after a real `GET /healthz` through the
/// socket succeeded: a daemon whose accept loop or router is wedged stops pinging.
pub async fn watchdog_loop(notifier: Notifier, interval: Duration, socket: PathBuf) {
    let period = interval / 2;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(period, probe_healthz(&socket)).await {
            Ok(Ok(())) => notifier.notify(&[NotifyState::Watchdog]),
            Ok(Err(e)) => tracing::warn!(error = %e, "watchdog probe failed; not pinging"),
            Err(_) => tracing::warn!("watchdog probe timed out; not pinging"),
        }
    }
}

async fn probe_healthz(socket: &Path) -> std::io::Result<()> {
    let mut s = tokio::net::UnixStream::connect(socket).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: runwarmd\r\nconnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).await?;
    if &head == b"HTTP/1.1 200" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "/healthz answered {:?}",
            String::from_utf8_lossy(&head)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_notify_watchdog_and_listen_fds_for_this_pid() {
        let e = SystemdEnv::from_map(
            &env(&[
                ("NOTIFY_SOCKET", "/run/n"),
                ("WATCHDOG_USEC", "400000"),
                ("LISTEN_PID", "42"),
                ("LISTEN_FDS", "1"),
            ]),
            42,
        );
        assert_eq!(e.notify_socket.as_deref(), Some("/run/n"));
        assert_eq!(e.watchdog, Some(Duration::from_millis(400)));
        assert_eq!(e.listen_fds, 1);
    }

    #[test]
    fn ignores_variables_meant_for_another_process() {
        let e = SystemdEnv::from_map(
            &env(&[
                ("WATCHDOG_USEC", "400000"),
                ("WATCHDOG_PID", "7"),
                ("LISTEN_PID", "7"),
                ("LISTEN_FDS", "1"),
            ]),
            42,
        );
        assert_eq!(e, SystemdEnv::default());
    }

    #[test]
    fn notifier_sends_newline_separated_states() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&SystemdEnv {
            notify_socket: Some(path.display().to_string()),
            ..SystemdEnv::default()
        });
        n.notify(&[NotifyState::Ready, NotifyState::Status("ok")]);
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok\n");
    }
}

#[cfg(test)]
mod full_queue {
    use super::*;

    /// A manager that stops reading must not block the daemon: before, the 11th message blocked
    /// the calling thread forever (a datagram queue holds 10 by default).
    #[test]
    fn a_manager_that_does_not_read_never_blocks_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sock");
        let _rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&SystemdEnv {
            notify_socket: Some(path.display().to_string()),
            ..SystemdEnv::default()
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                n.notify(&[NotifyState::Watchdog]);
            }
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
            "sd_notify blocked on a full queue"
        );
    }
}
