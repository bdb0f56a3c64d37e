//! Access control from the socket's peer credentials: the `[access]` config table, the role
//! each route needs, and the middleware that answers 403 when the caller lacks it.
//!
//! uid 0 and the daemon's own uid are always admin, and with no admin list they are the only
//! admins: administration is opened to others explicitly (least privilege). Invoking is open to
//! everyone who can open the socket until an invoke list is set. Executions are scoped by owner:
//! a record, its payload, output and events are visible to the uid that started it, to admins
//! and to readers (`reader_uids`/`reader_gids`), which the handlers check through [`Viewer`].
//! Gid lists match the caller's primary gid and its supplementary groups.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use runwarm_protocol::Caller;
use serde::Deserialize;

use super::AppState;
use super::peer::{Peer, PeerGroups};
use super::problem::Problem;

/// `[access]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    admin_uids: Option<Vec<u32>>,
    admin_gids: Option<Vec<u32>>,
    invoke_uids: Option<Vec<u32>>,
    invoke_gids: Option<Vec<u32>>,
    reader_uids: Option<Vec<u32>>,
    reader_gids: Option<Vec<u32>>,
    socket_group: Option<GroupSpec>,
    socket_mode: Option<ModeSpec>,
    #[serde(default)]
    scripts: BTreeMap<String, RawScriptAccess>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScriptAccess {
    #[serde(default)]
    uids: Vec<u32>,
    #[serde(default)]
    gids: Vec<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum GroupSpec {
    Gid(u32),
    Name(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ModeSpec {
    Int(u32),
    Octal(String),
}

/// A set of uids and gids; empty means "nobody listed".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principals {
    /// Listed uids.
    pub uids: BTreeSet<u32>,
    /// Listed gids (matched against the caller's primary and supplementary groups).
    pub gids: BTreeSet<u32>,
}

impl Principals {
    fn new(uids: Vec<u32>, gids: Vec<u32>) -> Self {
        Principals {
            uids: uids.into_iter().collect(),
            gids: gids.into_iter().collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }

    fn contains(&self, who: &Identity) -> bool {
        self.uids.contains(&who.caller.uid)
            || self.gids.contains(&who.caller.gid)
            || who.groups.iter().any(|g| self.gids.contains(g))
    }
}

/// The validated `[access]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// May change the registry and pools.
    pub admins: Principals,
    /// May invoke.
    pub invokers: Principals,
    /// May read every execution record (a monitoring user), without invoking.
    pub readers: Principals,
    /// Per-script invoke lists.
    pub scripts: BTreeMap<String, Principals>,
    /// Group of the socket file, if one is configured.
    pub socket_group: Option<u32>,
    /// Mode of the socket file.
    pub socket_mode: u32,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            admins: Principals::default(),
            invokers: Principals::default(),
            readers: Principals::default(),
            scripts: BTreeMap::new(),
            socket_group: None,
            socket_mode: 0o660,
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reads: anyone who can open the socket.
    Read,
    /// Acting on or reading one execution: the handler checks the caller against the record's
    /// owner (see [`Viewer`]), since only the record says whose it is.
    Execution,
    /// Invoking this script (or reading a version's manifest).
    Invoke(Option<String>),
    /// Changing the registry or pools.
    Admin,
}

impl AccessPolicy {
    /// Validates `[access]`, pushing each violation with its key path.
    pub fn validate(raw: RawAccess, v: &mut Vec<String>) -> AccessPolicy {
        let socket_group = match raw.socket_group {
            None => None,
            Some(GroupSpec::Gid(g)) => Some(g),
            Some(GroupSpec::Name(n)) if n.is_empty() => None,
            Some(GroupSpec::Name(n)) => match nix::unistd::Group::from_name(&n) {
                Ok(Some(g)) => Some(g.gid.as_raw()),
                Ok(None) => {
                    v.push(format!("access.socket_group: no group named {n:?}"));
                    None
                }
                Err(e) => {
                    v.push(format!("access.socket_group: cannot look up {n:?}: {e}"));
                    None
                }
            },
        };
        let socket_mode = match raw.socket_mode {
            None => 0o660,
            Some(ModeSpec::Int(m)) => m,
            Some(ModeSpec::Octal(s)) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .unwrap_or_else(|_| {
                    v.push(format!(
                        "access.socket_mode: {s:?} is not an octal mode such as \"0660\""
                    ));
                    0o660
                }),
        };
        if socket_mode > 0o777 {
            v.push(format!(
                "access.socket_mode: {socket_mode:#o} has bits beyond 0o777"
            ));
        }
        AccessPolicy {
            admins: Principals::new(
                raw.admin_uids.unwrap_or_default(),
                raw.admin_gids.unwrap_or_default(),
            ),
            invokers: Principals::new(
                raw.invoke_uids.unwrap_or_default(),
                raw.invoke_gids.unwrap_or_default(),
            ),
            readers: Principals::new(
                raw.reader_uids.unwrap_or_default(),
                raw.reader_gids.unwrap_or_default(),
            ),
            scripts: raw
                .scripts
                .into_iter()
                .map(|(k, s)| (k, Principals::new(s.uids, s.gids)))
                .collect(),
            socket_group,
            socket_mode: socket_mode & 0o777,
        }
    }

    /// Whether `who` administers: uid 0 and `daemon_uid` always, others only when listed (an
    /// empty admin list opens nothing, so a forgotten list never hands out the registry).
    pub fn is_admin(&self, who: &Identity, daemon_uid: u32) -> bool {
        who.caller.uid == 0 || who.caller.uid == daemon_uid || self.admins.contains(who)
    }

    /// Whether `who` may do what `role` needs; `daemon_uid` is always admin.
    pub fn allows(&self, who: &Identity, role: &Role, daemon_uid: u32) -> bool {
        let admin = self.is_admin(who, daemon_uid);
        match role {
            Role::Read | Role::Execution => true,
            Role::Admin => admin,
            Role::Invoke(_) if admin => true,
            Role::Invoke(script) => match script.as_ref().and_then(|s| self.scripts.get(s)) {
                Some(list) => list.contains(who),
                None => self.invokers.is_empty() || self.invokers.contains(who),
            },
        }
    }
}

/// A caller as access control sees it: the peer credentials and every group it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Peer credentials (uid, primary gid, pid).
    pub caller: Caller,
    /// Supplementary groups, read at accept (best effort: empty when unreadable).
    pub groups: std::sync::Arc<[u32]>,
}

/// What the access middleware resolved for one request, for the handlers that scope by owner
/// (executions) or by script.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who is asking.
    pub who: Identity,
    policy: std::sync::Arc<AccessPolicy>,
    daemon_uid: u32,
}

impl Viewer {
    /// Admins (and the daemon's uid).
    pub fn is_admin(&self) -> bool {
        self.policy.is_admin(&self.who, self.daemon_uid)
    }

    /// Whether every execution is visible: admins and readers.
    pub fn sees_all(&self) -> bool {
        self.is_admin() || self.policy.readers.contains(&self.who)
    }

    /// Whether the execution started by `owner` is visible (record, payload, output, events).
    pub fn may_see(&self, owner: &Caller) -> bool {
        // u32::MAX is "credentials unreadable": two such callers are not the same one.
        self.sees_all() || (owner.uid == self.who.caller.uid && owner.uid != u32::MAX)
    }

    /// Whether the execution started by `owner` may be cancelled: its owner or an admin.
    pub fn may_cancel(&self, owner: &Caller) -> bool {
        self.is_admin() || (owner.uid == self.who.caller.uid && owner.uid != u32::MAX)
    }

    /// Whether `script` may be invoked (which a replay of one of its executions also needs).
    pub fn may_invoke(&self, script: &str) -> bool {
        self.policy.allows(
            &self.who,
            &Role::Invoke(Some(script.to_owned())),
            self.daemon_uid,
        )
    }

    /// The 403 for a refused `what`, with the config key that grants it.
    pub fn forbidden(&self, what: &str, key: &str) -> Problem {
        forbidden(&self.who.caller, what, key)
    }

    /// The 403 for a refused invocation of `script`.
    pub fn forbidden_invoke(&self, script: &str) -> Problem {
        let (what, key) = invoke_refusal(&self.policy, Some(script));
        forbidden(&self.who.caller, what, key)
    }
}

fn invoke_refusal(policy: &AccessPolicy, script: Option<&str>) -> (&'static str, &'static str) {
    match script {
        Some(s) if policy.scripts.contains_key(s) => {
            ("invoke this script", "access.scripts.<name>.uids / .gids")
        }
        _ => ("invoke", "access.invoke_uids / access.invoke_gids"),
    }
}

fn forbidden(caller: &Caller, what: &str, key: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("uid {} (gid {}) may not {what}", caller.uid, caller.gid),
    )
    .hint(Some(format!(
        "an administrator can grant it with {key} in the daemon's config"
    )))
}

/// The role a route needs, from its method and path.
pub fn required_role(method: &Method, path: &str) -> Role {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return match parts.as_slice() {
            // A version's manifest and files are for those who may run it.
            ["v1", "scripts", name, "versions", _, ..] => Role::Invoke(Some((*name).to_owned())),
            ["v1", "executions", ..] => Role::Execution,
            // Subscriptions name receivers of everyone's records; deliveries are scoped to
            // their execution's owner by the handler.
            ["v1", "subscriptions", ..] => Role::Admin,
            ["v1", "deliveries", ..] => Role::Execution,
            _ => Role::Read,
        };
    }
    match parts.as_slice() {
        ["v1", "scripts", name, "invoke"] => Role::Invoke(Some((*name).to_owned())),
        ["v1", "executions", ..] => Role::Execution,
        ["v1", "deliveries", _, "redeliver"] => Role::Execution,
        _ => Role::Admin,
    }
}

/// Middleware: 403 unless the caller holds the route's role.
pub(crate) async fn enforce(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let role = required_role(req.method(), req.uri().path());
    let caller = req
        .extensions()
        .get::<ConnectInfo<Peer>>()
        .map(|ConnectInfo(Peer(c))| *c)
        .unwrap_or(Caller {
            uid: u32::MAX,
            gid: u32::MAX,
            pid: 0,
        });
    // Read at accept by the server; a connection served another way has its primary gid only.
    let groups = req
        .extensions()
        .get::<PeerGroups>()
        .map(|g| std::sync::Arc::clone(&g.0))
        .unwrap_or_else(|| std::sync::Arc::from(Vec::new()));
    let who = Identity { caller, groups };
    let policy = app.access.current();
    if policy.allows(&who, &role, app.access.daemon_uid) {
        req.extensions_mut().insert(Viewer {
            who,
            policy,
            daemon_uid: app.access.daemon_uid,
        });
        return next.run(req).await;
    }
    let (what, key) = match &role {
        Role::Admin => (
            "change the registry or pools",
            "access.admin_uids / access.admin_gids",
        ),
        Role::Invoke(script) => invoke_refusal(&policy, script.as_deref()),
        Role::Read | Role::Execution => ("do this", "access"),
    };
    tracing::warn!(caller_uid = caller.uid, caller_gid = caller.gid, caller_pid = caller.pid, path = %req.uri().path(), "request forbidden");
    app.metrics.refused(crate::metrics::Refusal::Forbidden);
    forbidden(&caller, what, key).into_response()
}

/// The policy in force, swapped on reload.
#[derive(Debug)]
pub struct AccessState {
    policy: std::sync::RwLock<std::sync::Arc<AccessPolicy>>,
    /// The daemon's own uid (always admin).
    pub daemon_uid: u32,
}

impl AccessState {
    /// Starts with `policy`.
    pub fn new(policy: AccessPolicy) -> Self {
        AccessState {
            policy: std::sync::RwLock::new(std::sync::Arc::new(policy)),
            daemon_uid: nix::unistd::geteuid().as_raw(),
        }
    }

    /// The policy in force.
    pub fn current(&self) -> std::sync::Arc<AccessPolicy> {
        match self.policy.read() {
            Ok(p) => std::sync::Arc::clone(&p),
            Err(p) => std::sync::Arc::clone(&p.into_inner()),
        }
    }

    /// Replaces the policy.
    pub fn set(&self, policy: AccessPolicy) {
        let p = std::sync::Arc::new(policy);
        match self.policy.write() {
            Ok(mut g) => *g = p,
            Err(e) => *e.into_inner() = p,
        }
    }
}

#[cfg(test)]
mod tests;
