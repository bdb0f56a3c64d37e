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

/// A connection's supplementary groups, read once when it is accepted, so that gid lists in
/// `[access]` match every group a caller is in and not only its primary gid.
#[derive(Debug, Clone, Default)]
pub struct PeerGroups(pub std::sync::Arc<[u32]>);

impl PeerGroups {
    /// Reads the `Groups:` line of `/proc/<pid>/status` for `caller`. Best effort: an unreadable
    /// file (the process is gone, `hidepid`), or one whose effective uid is no longer the
    /// caller's (the pid was reused by someone else), gives no groups, so the caller keeps only
    /// its primary gid and never gains another process's groups.
    pub fn of(caller: &Caller) -> Self {
        if caller.pid <= 0 || caller.uid == u32::MAX {
            return PeerGroups::default();
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", caller.pid));
        PeerGroups(std::sync::Arc::from(
            status
                .ok()
                .and_then(|text| parse_groups(&text, caller.uid))
                .unwrap_or_default(),
        ))
    }
}

/// The groups of a `/proc/<pid>/status` text, if its effective uid is `uid`.
fn parse_groups(status: &str, uid: u32) -> Option<Vec<u32>> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::split_whitespace)
    };
    // `Uid:` is real, effective, saved, filesystem; SO_PEERCRED reports the effective one.
    let effective: u32 = field("Uid:")?.nth(1)?.parse().ok()?;
    if effective != uid {
        return None;
    }
    Some(field("Groups:")?.filter_map(|g| g.parse().ok()).collect())
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        Peer::of(stream.io())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_read_only_for_the_same_effective_uid() {
        let text = "Name:\tx\nUid:\t0\t1000\t1000\t1000\nGid:\t5\t5\t5\t5\nGroups:\t4 27 1000 \n";
        assert_eq!(parse_groups(text, 1000), Some(vec![4, 27, 1000]));
        assert_eq!(parse_groups(text, 0), None);
        assert_eq!(
            parse_groups("Uid:\t7\t7\t7\t7\nGroups:\t\n", 7),
            Some(vec![])
        );
        let own = Caller {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            pid: i32::try_from(std::process::id()).unwrap_or(0),
        };
        let mine: Vec<u32> = nix::unistd::getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        let mut read = PeerGroups::of(&own).0.to_vec();
        let mut want = mine;
        read.sort_unstable();
        want.sort_unstable();
        assert_eq!(read, want);
    }
}
