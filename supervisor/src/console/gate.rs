//! Who may use the console: the one-time token, the session it turns into, and the `Host` and
//! `Origin` rules. Pure decisions over header values, so they are tested without a socket.
//!
//! Invariants: the token is accepted once and only while no session exists; there is at most
//! one session; every comparison against a secret takes the same time whatever the input.

use std::sync::{Mutex, MutexGuard};

/// Name of the session cookie.
pub const COOKIE: &str = "runwarm_console";

/// Bytes of randomness in a token or a session id (256 bits).
const SECRET_BYTES: usize = 32;

/// A fresh secret from the operating system's CSPRNG, hex-encoded.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Whether two secrets are equal, in time that depends only on their lengths.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token waiting to be used and the session it became.
#[derive(Debug)]
pub struct Gate {
    port: u16,
    state: Mutex<Secrets>,
}

#[derive(Debug)]
struct Secrets {
    token: Option<String>,
    session: Option<String>,
}

impl Gate {
    /// A gate for a console on `port` with its one-time `token`.
    pub fn new(port: u16, token: String) -> Self {
        Self {
            port,
            state: Mutex::new(Secrets {
                token: Some(token),
                session: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Secrets> {
        // Two `Option<String>`s hold no invariant a panicking holder could break.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Trades the token for a new session id; `None` if it is wrong or was used already.
    pub fn redeem(&self, offered: &str, fresh_session: String) -> Option<String> {
        let mut state = self.lock();
        let matches = state
            .token
            .as_deref()
            .is_some_and(|token| same_secret(token, offered));
        if !matches {
            return None;
        }
        state.token = None;
        state.session = Some(fresh_session.clone());
        Some(fresh_session)
    }

    /// Whether a `Cookie` header carries the live session.
    pub fn has_session(&self, cookie_header: Option<&str>) -> bool {
        let Some(offered) = cookie_header.and_then(session_cookie) else {
            return false;
        };
        self.lock()
            .session
            .as_deref()
            .is_some_and(|session| same_secret(session, offered))
    }

    /// Whether `Host` names this console by a loopback name (a rebound DNS name does not).
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return false;
        };
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port),
            None => return false,
        };
        port == self.port.to_string()
            && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost"))
    }

    /// Whether a state-changing request comes from the page the console served: its `Origin`
    /// must be `http://` plus the (already allowed) `Host` it was sent to.
    pub fn origin_allowed(&self, host: &str, origin: Option<&str>) -> bool {
        origin.is_some_and(|origin| {
            origin
                .strip_prefix("http://")
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        })
    }

    /// The `Set-Cookie` value for a session.
    pub fn set_cookie(session: &str) -> String {
        format!("{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict")
    }
}

/// The value of the session cookie in a `Cookie` header.
fn session_cookie(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE).then_some(value)
    })
}

/// The `token` parameter of a query string.
pub fn token_param(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_works_once_and_becomes_the_only_session() {
        let gate = Gate::new(8080, "t0k".into());
        assert_eq!(gate.redeem("wrong", "s1".into()), None);
        assert_eq!(gate.redeem("t0k", "s1".into()).as_deref(), Some("s1"));
        assert_eq!(gate.redeem("t0k", "s2".into()), None, "single use");
        assert!(gate.has_session(Some("a=b; runwarm_console=s1")));
        assert!(!gate.has_session(Some("runwarm_console=s2")));
        assert!(!gate.has_session(Some("runwarm_console=")));
        assert!(!gate.has_session(Some("garbage")));
        assert!(!gate.has_session(None));
    }

    #[test]
    fn only_loopback_names_with_the_port_are_hosts() {
        let gate = Gate::new(8080, "t".into());
        assert!(gate.host_allowed(Some("127.0.0.1:8080")));
        assert!(gate.host_allowed(Some("LocalHost:8080")));
        for bad in [
            "evil.example:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "localhost",
            "127.0.0.1.nip.io:8080",
            "",
            ":8080",
        ] {
            assert!(!gate.host_allowed(Some(bad)), "{bad}");
        }
        assert!(!gate.host_allowed(None));
    }

    #[test]
    fn origin_must_be_the_console_itself() {
        let gate = Gate::new(8080, "t".into());
        let host = "127.0.0.1:8080";
        assert!(gate.origin_allowed(host, Some("http://127.0.0.1:8080")));
        assert!(!gate.origin_allowed(host, None));
        assert!(!gate.origin_allowed(host, Some("null")));
        assert!(!gate.origin_allowed(host, Some("http://evil.example")));
        assert!(!gate.origin_allowed(host, Some("https://127.0.0.1:8080")));
        assert!(!gate.origin_allowed(host, Some("http://localhost:8080")));
    }

    #[test]
    fn secrets_are_long_random_hex() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..63]));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let c = Gate::set_cookie("s");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        assert_eq!(token_param("a=1&token=xyz"), Some("xyz"));
        assert_eq!(token_param("a=1"), None);
    }
}
