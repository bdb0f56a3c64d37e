//! The caller's identity from the Unix socket's peer credentials (`SO_PEERCRED`).

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use runwarm_protocol::Caller;
use tokio::net::{UnixListener, UnixStream};

/// Peer credentials of one connection, read once when it is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Caller);

impl Peer {
    /// Reads the credentials of `stream`.
    pub fn of(stream: &UnixStream) -> Self {
        // A peer whose credentials cannot be read gets uid/gid u32::MAX: it matches no role.
        let caller = match stream.peer_cred() {
            Ok(c) => Caller {
                uid: c.uid(),
                gid: c.gid(),
                pid: c.pid().unwrap_or(0),
            },
            Err(_) => Caller {
                uid: u32::MAX,
                gid: u32::MAX,
                pid: 0,
            },
        };
        Peer(caller)
    }
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        Peer::of(stream.io())
    }
}
