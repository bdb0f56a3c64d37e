//! What an audit row records: the action and its objects ([`Event`]), and how the actor came
//! ([`Via`]).

use serde_json::Value;

/// How the actor reached the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A connection to the API socket; uid, gid and pid are its peer credentials.
    Socket,
    /// A signal (SIGHUP): the kernel does not say who sent it, so it is recorded as uid 0,
    /// gid 0, pid 0 with `via = "signal"`.
    Signal,
}

impl Via {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Via::Socket => "socket",
            Via::Signal => "signal",
        }
    }
}

/// What one row records besides who and when.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// `register`, `tag`, `disable`, `enable`, `delete`, `prewarm`, `clone`, `reload`,
    /// `secret.set`, `secret.rm`.
    pub action: String,
    /// The script acted on, if any.
    pub script: Option<String>,
    /// What else names the object: the tag, the version, the sample id, the secret's name.
    pub target: Option<String>,
    /// State before the action (e.g. `{"version": old}` of a tag), if it applies.
    pub before: Option<Value>,
    /// State after the action, if it applies.
    pub after: Option<Value>,
}

impl Event {
    /// An event of `action`.
    pub fn new(action: &str) -> Self {
        Event {
            action: action.to_owned(),
            ..Event::default()
        }
    }

    /// Names the script.
    pub fn script(mut self, script: &str) -> Self {
        self.script = Some(script.to_owned());
        self
    }

    /// Names the target.
    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    /// Sets the state before.
    pub fn before(mut self, before: Value) -> Self {
        self.before = Some(before);
        self
    }

    /// Sets the state after.
    pub fn after(mut self, after: Value) -> Self {
        self.after = Some(after);
        self
    }
}
