//! What can go wrong talking to runwarmd, with a hint a person can act on.

use std::path::PathBuf;
use std::time::Duration;

/// An error from [`super::Client`]: nothing usable came back from the daemon.
///
/// An HTTP error status is not a `ClientError`: the daemon answered, and the caller reads the
/// status and the problem+json body of the [`super::Response`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be connected.
    #[error("cannot connect to runwarmd at {}", socket.display())]
    Connect {
        /// The socket path tried.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("i/o error talking to runwarmd")]
    Io(#[source] std::io::Error),
    /// The HTTP exchange failed (the daemon closed the connection mid-answer, malformed framing …).
    #[error("http exchange with runwarmd failed")]
    Http(#[source] hyper::Error),
    /// The request could not be built (a header name or value that HTTP does not allow …).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The daemon answered something this client cannot use.
    #[error("invalid response from runwarmd: {0}")]
    InvalidResponse(String),
    /// No answer within the client's deadline.
    #[error("no answer from runwarmd within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

impl ClientError {
    /// What the person might do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClientError::Connect { socket, source } => Some(connect_hint(socket, source)),
            ClientError::Timeout(_) => Some(
                "the daemon may be overloaded or stuck; check `runwarm pools` and its logs".into(),
            ),
            ClientError::InvalidResponse(_) => Some(
                "the daemon and this client may be different versions; compare `runwarm info`"
                    .into(),
            ),
            ClientError::Io(_) | ClientError::Http(_) | ClientError::InvalidRequest(_) => None,
        }
    }
}

/// Where the installed service listens (`runwarm.socket`); the CLI's default after a checkout's
/// `./.runwarm/` and the user's runtime directory.
const SERVICE_SOCKET: &str = "/run/runwarm/runwarm.sock";

/// How to start the daemon that should own `socket`: the systemd units for the service's
/// socket, a development daemon for any other, and both ways when the path says nothing.
fn how_to_start(socket: &std::path::Path) -> String {
    let service = "on an installed system `sudo systemctl start runwarm.socket` (then \
                   `systemctl status runwarm` says how it went)";
    let checkout = "in a checkout `cargo run --release --bin runwarmd`";
    if socket == std::path::Path::new(SERVICE_SOCKET) {
        format!("start it {service}, or {checkout}")
    } else {
        format!("start it {checkout}, or {service}")
    }
}

fn connect_hint(socket: &std::path::Path, source: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match source.kind() {
        ErrorKind::PermissionDenied => format!(
            "you may not access {}; ask an operator to add you to the socket's group (the \
             service's is `runwarm`: `sudo usermod -aG runwarm $USER`, then log in again)",
            socket.display()
        ),
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => format!(
            "is runwarmd running? {}; or point --socket / RUNWARM_SOCKET at its socket (tried {})",
            how_to_start(socket),
            socket.display()
        ),
        _ => format!("is runwarmd running? {}", how_to_start(socket)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_say_how_to_start_the_daemon() {
        let err = ClientError::Connect {
            socket: "/nope/runwarm.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let hint = err.hint().unwrap_or_default();
        assert!(
            hint.contains(
                "start it in a checkout `cargo run --release --bin runwarmd`, or on an \
                 installed system `sudo systemctl start runwarm.socket`"
            ),
            "{hint}"
        );
        assert!(hint.contains("/nope/runwarm.sock"), "{hint}");
        assert_eq!(
            err.to_string(),
            "cannot connect to runwarmd at /nope/runwarm.sock"
        );
        // The service's socket: the systemd way first.
        let err = ClientError::Connect {
            socket: SERVICE_SOCKET.into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let hint = err.hint().unwrap_or_default();
        assert!(
            hint.starts_with(
                "is runwarmd running? start it on an installed system `sudo systemctl start \
                 runwarm.socket`"
            ),
            "{hint}"
        );
    }

    #[test]
    fn permission_denied_points_at_the_socket_group() {
        let err = ClientError::Connect {
            socket: "/run/runwarm/runwarm.sock".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(err.hint().unwrap_or_default().contains("group"));
    }
}
