//! Access control from the socket's peer credentials: the `[access]` config table, the role
//! each route needs, and the middleware that answers 403 when the caller lacks it.
//!
//! uid 0 and the daemon's own uid are always admin. A role whose lists are all empty is open to
//! everyone who can open the socket, so with no lists configured the socket's mode and group
//! are the only gate.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use runwarm_protocol::Caller;
use serde::Deserialize;

use super::AppState;
use super::peer::Peer;
use super::problem::Problem;

/// `[access]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    admin_uids: Option<Vec<u32>>,
    admin_gids: Option<Vec<u32>>,
    invoke_uids: Option<Vec<u32>>,
    invoke_gids: Option<Vec<u32>>,
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
    /// Listed (primary) gids.
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

    fn contains(&self, c: &Caller) -> bool {
        self.uids.contains(&c.uid) || self.gids.contains(&c.gid)
    }
}

/// The validated `[access]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// May change the registry and pools.
    pub admins: Principals,
    /// May invoke.
    pub invokers: Principals,
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
    /// Invoking this script (or acting on executions).
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
            scripts: raw
                .scripts
                .into_iter()
                .map(|(k, s)| (k, Principals::new(s.uids, s.gids)))
                .collect(),
            socket_group,
            socket_mode: socket_mode & 0o777,
        }
    }

    /// Whether `caller` may do what `role` needs; `daemon_uid` is always admin.
    pub fn allows(&self, caller: &Caller, role: &Role, daemon_uid: u32) -> bool {
        let named_admin =
            caller.uid == 0 || caller.uid == daemon_uid || self.admins.contains(caller);
        match role {
            Role::Read => true,
            Role::Admin => named_admin || self.admins.is_empty(),
            Role::Invoke(_) if named_admin => true,
            Role::Invoke(script) => match script.as_ref().and_then(|s| self.scripts.get(s)) {
                Some(list) => list.contains(caller),
                None => self.invokers.is_empty() || self.invokers.contains(caller),
            },
        }
    }
}

/// The role a route needs, from its method and path.
pub fn required_role(method: &Method, path: &str) -> Role {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return Role::Read;
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "scripts", name, "invoke"] => Role::Invoke(Some((*name).to_owned())),
        ["v1", "executions", ..] => Role::Invoke(None),
        _ => Role::Admin,
    }
}

/// Middleware: 403 unless the caller holds the route's role.
pub(crate) async fn enforce(State(app): State<AppState>, req: Request, next: Next) -> Response {
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
    let policy = app.access.current();
    if policy.allows(&caller, &role, app.access.daemon_uid) {
        return next.run(req).await;
    }
    let (what, key) = match &role {
        Role::Admin => (
            "change the registry or pools",
            "access.admin_uids / access.admin_gids",
        ),
        Role::Invoke(Some(s)) if policy.scripts.contains_key(s) => {
            ("invoke this script", "access.scripts.<name>.uids / .gids")
        }
        _ => ("invoke", "access.invoke_uids / access.invoke_gids"),
    };
    tracing::warn!(caller_uid = caller.uid, caller_gid = caller.gid, caller_pid = caller.pid, path = %req.uri().path(), "request forbidden");
    app.metrics.refused(crate::metrics::Refusal::Forbidden);
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("uid {} (gid {}) may not {what}", caller.uid, caller.gid),
    )
    .hint(Some(format!(
        "an administrator can grant it with {key} in the daemon's config"
    )))
    .into_response()
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
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller { uid, gid, pid: 1 }
    }

    fn policy(toml_text: &str) -> AccessPolicy {
        let raw: RawAccess = toml::from_str(toml_text).unwrap();
        let mut v = Vec::new();
        let p = AccessPolicy::validate(raw, &mut v);
        assert!(v.is_empty(), "{v:?}");
        p
    }

    #[test]
    fn without_lists_everyone_may_do_everything() {
        let p = policy("");
        assert!(p.allows(&caller(1234, 1234), &Role::Admin, 999));
        assert!(p.allows(&caller(1234, 1234), &Role::Invoke(Some("x".into())), 999));
        assert_eq!(p.socket_mode, 0o660);
    }

    #[test]
    fn admin_list_restricts_changes_but_not_invocations() {
        let p = policy("admin_uids = [1000]");
        assert!(!p.allows(&caller(65534, 65534), &Role::Admin, 999));
        assert!(p.allows(&caller(65534, 65534), &Role::Invoke(Some("x".into())), 999));
        assert!(p.allows(&caller(1000, 5), &Role::Admin, 999));
        assert!(p.allows(&caller(0, 0), &Role::Admin, 999));
        assert!(p.allows(&caller(999, 999), &Role::Admin, 999));
    }

    #[test]
    fn invoke_and_script_lists_apply() {
        let p = policy("admin_uids = [1000]\ninvoke_gids = [50]\n[scripts.secret]\nuids = [7]\n");
        assert!(p.allows(&caller(3, 50), &Role::Invoke(Some("x".into())), 999));
        assert!(!p.allows(&caller(3, 51), &Role::Invoke(Some("x".into())), 999));
        assert!(!p.allows(&caller(3, 50), &Role::Invoke(Some("secret".into())), 999));
        assert!(p.allows(&caller(7, 51), &Role::Invoke(Some("secret".into())), 999));
        assert!(p.allows(&caller(1000, 1), &Role::Invoke(Some("secret".into())), 999));
    }

    #[test]
    fn socket_mode_and_group_parse_and_bad_values_are_reported() {
        assert_eq!(
            policy("socket_mode = 0o666\nsocket_group = 42").socket_mode,
            0o666
        );
        assert_eq!(policy("socket_mode = \"0600\"").socket_mode, 0o600);
        assert_eq!(policy("socket_group = 42").socket_group, Some(42));
        let raw: RawAccess =
            toml::from_str("socket_mode = \"rw\"\nsocket_group = \"no-such-group-x\"").unwrap();
        let mut v = Vec::new();
        AccessPolicy::validate(raw, &mut v);
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn routes_map_to_roles() {
        assert_eq!(required_role(&Method::GET, "/v1/scripts"), Role::Read);
        assert_eq!(required_role(&Method::POST, "/v1/scripts"), Role::Admin);
        assert_eq!(
            required_role(&Method::POST, "/v1/scripts/a/invoke"),
            Role::Invoke(Some("a".into()))
        );
        assert_eq!(
            required_role(&Method::PUT, "/v1/scripts/a/tags/p"),
            Role::Admin
        );
        assert_eq!(required_role(&Method::POST, "/v1/prewarm"), Role::Admin);
        assert_eq!(required_role(&Method::DELETE, "/v1/scripts/a"), Role::Admin);
        assert_eq!(
            required_role(&Method::POST, "/v1/scripts/a/disable"),
            Role::Admin
        );
        assert_eq!(
            required_role(&Method::POST, "/v1/samples/x/clone"),
            Role::Admin
        );
        assert_eq!(
            required_role(&Method::POST, "/v1/executions/x/cancel"),
            Role::Invoke(None)
        );
    }
}
