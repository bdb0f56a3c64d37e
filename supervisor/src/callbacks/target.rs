//! Where a callback goes: `unix:/run/engine.sock/hooks/done` (HTTP over a Unix socket; the
//! socket path ends at the first component ending in `.sock`, the rest is the HTTP path) or
//! `http://127.0.0.1:PORT/path`. Plain HTTP is for loopback (`127.0.0.0/8`, `::1`,
//! `localhost`) unless `[callbacks] allow_hosts` names the host: a callback body is an
//! execution record, and a caller must not be able to make the daemon send it anywhere.

use std::path::PathBuf;

/// A parsed callback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackTarget {
    /// HTTP over a Unix socket.
    Unix {
        /// The socket file.
        socket: PathBuf,
        /// The HTTP path (with query), starting with `/`.
        path: String,
    },
    /// HTTP over TCP.
    Http {
        /// Host name or address as written (brackets removed).
        host: String,
        /// Port (80 when absent).
        port: u16,
        /// The HTTP path (with query), starting with `/`.
        path: String,
    },
}

/// Why a callback address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid callback {url:?}: {reason}")]
pub struct TargetError {
    /// The address as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl TargetError {
    /// A next step for the caller.
    pub fn hint(&self) -> String {
        "use unix:/path/to/receiver.sock/http/path or http://127.0.0.1:PORT/path; other hosts \
         must be listed in the daemon's [callbacks] allow_hosts"
            .to_owned()
    }
}

impl CallbackTarget {
    /// Parses and checks `url` against the allowed hosts.
    pub fn parse(url: &str, allow_hosts: &[String]) -> Result<CallbackTarget, TargetError> {
        let fail = |reason: &str| TargetError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.len() > 2048 || url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(fail(
                "longer than 2048 bytes, or holds spaces or control characters",
            ));
        }
        if let Some(rest) = url.strip_prefix("unix:") {
            if !rest.starts_with('/') {
                return Err(fail("the socket path must be absolute"));
            }
            let mut socket = String::new();
            let mut segments = rest[1..].split('/');
            for segment in segments.by_ref() {
                if segment.is_empty() || segment == "." || segment == ".." {
                    return Err(fail("the socket path has an empty, `.` or `..` component"));
                }
                socket.push('/');
                socket.push_str(segment);
                if segment.ends_with(".sock") {
                    let tail: Vec<&str> = segments.collect();
                    let path = format!("/{}", tail.join("/"));
                    return Ok(CallbackTarget::Unix {
                        socket: PathBuf::from(socket),
                        path,
                    });
                }
            }
            return Err(fail("no component of the path ends in `.sock`"));
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(fail("the scheme must be unix: or http://"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(fail("credentials in the address are not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| fail("bad host or port"))?;
        let host = host.to_ascii_lowercase();
        if !is_loopback(&host) && !allow_hosts.contains(&host) {
            return Err(fail(
                "the host is not loopback and not in [callbacks] allow_hosts",
            ));
        }
        Ok(CallbackTarget::Http { host, port, path })
    }

    /// The receiver, for per-receiver limits and logs: the socket or `host:port`.
    pub fn receiver(&self) -> String {
        match self {
            CallbackTarget::Unix { socket, .. } => socket.display().to_string(),
            CallbackTarget::Http { host, port, .. } => format!("{host}:{port}"),
        }
    }
}

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        None => 80,
    };
    Some((host, port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses_split_at_the_socket() {
        assert_eq!(
            CallbackTarget::parse("unix:/run/engine.sock/hooks/done?x=1", &[]).unwrap(),
            CallbackTarget::Unix {
                socket: "/run/engine.sock".into(),
                path: "/hooks/done?x=1".into()
            }
        );
        assert_eq!(
            CallbackTarget::parse("unix:/tmp/a.sock", &[]).unwrap(),
            CallbackTarget::Unix {
                socket: "/tmp/a.sock".into(),
                path: "/".into()
            }
        );
        for bad in [
            "unix:run/a.sock/x",
            "unix:/tmp/a/x",
            "unix:/tmp/../a.sock/x",
        ] {
            assert!(CallbackTarget::parse(bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_is_loopback_unless_allowed() {
        assert_eq!(
            CallbackTarget::parse("http://127.0.0.1:8080/done", &[]).unwrap(),
            CallbackTarget::Http {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/done".into()
            }
        );
        assert!(CallbackTarget::parse("http://[::1]:9/x", &[]).is_ok());
        assert!(CallbackTarget::parse("http://localhost", &[]).is_ok());
        assert!(CallbackTarget::parse("http://example.org/x", &[]).is_err());
        assert!(CallbackTarget::parse("http://engine:81/x", &["engine".into()]).is_ok());
        for bad in [
            "https://127.0.0.1/",
            "http://u:p@127.0.0.1/",
            "http://127.0.0.1:0/",
            "http:// x",
        ] {
            assert!(CallbackTarget::parse(bad, &[]).is_err(), "{bad}");
        }
    }
}
