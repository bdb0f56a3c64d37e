use super::*;

fn caller(uid: u32, gid: u32) -> Identity {
    member(uid, gid, &[])
}

fn member(uid: u32, gid: u32, groups: &[u32]) -> Identity {
    Identity {
        caller: Caller { uid, gid, pid: 1 },
        groups: std::sync::Arc::from(groups.to_vec()),
    }
}

fn viewer(p: &AccessPolicy, who: Identity) -> Viewer {
    Viewer {
        who,
        policy: std::sync::Arc::new(p.clone()),
        daemon_uid: 999,
    }
}

fn policy(toml_text: &str) -> AccessPolicy {
    let raw: RawAccess = toml::from_str(toml_text).unwrap();
    let mut v = Vec::new();
    let p = AccessPolicy::validate(raw, &mut v);
    assert!(v.is_empty(), "{v:?}");
    p
}

#[test]
fn without_lists_only_root_and_the_daemon_administer_and_everyone_invokes() {
    let p = policy("");
    assert!(!p.allows(&caller(1234, 1234), &Role::Admin, 999));
    assert!(p.allows(&caller(0, 0), &Role::Admin, 999));
    assert!(p.allows(&caller(999, 5), &Role::Admin, 999));
    assert!(p.allows(&caller(1234, 1234), &Role::Invoke(Some("x".into())), 999));
    assert_eq!(p.socket_mode, 0o660);
}

#[test]
fn an_invoke_list_alone_opens_no_administration() {
    let p = policy("invoke_uids = [1000]");
    assert!(!p.allows(&caller(65534, 65534), &Role::Admin, 999));
    assert!(!p.allows(&caller(1000, 1000), &Role::Admin, 999));
    assert!(!p.allows(&caller(65534, 65534), &Role::Invoke(None), 999));
}

#[test]
fn supplementary_groups_match_gid_lists() {
    let p = policy("admin_gids = [10]\ninvoke_gids = [20]\n[scripts.s]\ngids = [30]\n");
    assert!(p.allows(&member(5, 5, &[10]), &Role::Admin, 999));
    assert!(!p.allows(&member(5, 5, &[11]), &Role::Admin, 999));
    assert!(p.allows(&member(5, 5, &[7, 20]), &Role::Invoke(None), 999));
    assert!(p.allows(&member(5, 5, &[30]), &Role::Invoke(Some("s".into())), 999));
    assert!(!p.allows(&member(5, 5, &[20]), &Role::Invoke(Some("s".into())), 999));
}

#[test]
fn executions_are_scoped_by_owner_with_readers_and_admins_seeing_all() {
    let p = policy("reader_uids = [70]\nadmin_uids = [80]\n[scripts.s]\nuids = [5]\n");
    let owner = Caller {
        uid: 5,
        gid: 5,
        pid: 9,
    };
    let by_owner = viewer(&p, caller(5, 5));
    assert!(by_owner.may_see(&owner) && by_owner.may_cancel(&owner));
    let other = viewer(&p, caller(6, 5));
    assert!(!other.may_see(&owner) && !other.may_cancel(&owner));
    assert!(!other.may_invoke("s") && other.may_invoke("t"));
    let reader = viewer(&p, caller(70, 70));
    assert!(reader.may_see(&owner) && !reader.may_cancel(&owner));
    let admin = viewer(&p, caller(80, 80));
    assert!(admin.may_see(&owner) && admin.may_cancel(&owner) && admin.may_invoke("s"));
    let unknown = Caller {
        uid: u32::MAX,
        gid: u32::MAX,
        pid: 0,
    };
    assert!(!viewer(&p, caller(u32::MAX, u32::MAX)).may_see(&unknown));
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
        Role::Execution
    );
    assert_eq!(
        required_role(&Method::GET, "/v1/executions/x/events"),
        Role::Execution
    );
    assert_eq!(
        required_role(&Method::GET, "/v1/scripts/a/versions/sha256:1"),
        Role::Invoke(Some("a".into()))
    );
    assert_eq!(
        required_role(&Method::GET, "/v1/scripts/a/versions"),
        Role::Read
    );
}
