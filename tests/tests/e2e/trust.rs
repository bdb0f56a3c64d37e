//! Trust between callers of one daemon (issue 11, section 1): each test talks to a real daemon
//! as root and as another uid (curl under `setpriv`), and each fails on the behaviour before
//! the fix: replay and cancel of another caller's execution, reads of other callers'
//! executions, administration left open by default, supplementary groups ignored, and a SIGHUP
//! that ignored `[admission]`, `sandbox` and `load_samples`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use hyper::Method;
use nix::sys::signal::Signal;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

/// The unprivileged caller.
const NOBODY: u32 = 65534;
/// A monitoring user, listed in `reader_uids` where a test needs one.
const MONITOR: u32 = 65533;

/// A daemon whose socket every local uid can open, with `access` appended to its `[access]`
/// table; `None` (the test is skipped) when this host cannot act as another uid.
async fn daemon(access: &str, extra: &str) -> Option<Daemon> {
    if !require(&[
        Need::Program("setpriv"),
        Need::Program("curl"),
        Need::Program("bash"),
    ]) {
        return None;
    }
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED trust test: needs root to act as another uid ***"
        );
        return None;
    }
    let d = Daemon::builder()
        .without_samples()
        .config(&format!(
            "{extra}\n[access]\nsocket_mode = 0o666\n{access}\n"
        ))
        .start()
        .await;
    // The socket lives in the test's temp dir, which must be reachable for the other uids.
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(d)
}

/// `GET path` as `uid` with no supplementary groups.
fn get_as(d: &Daemon, uid: u32, path: &str) -> (u16, Value) {
    d.call_as(uid, &[], "GET", path, None, &[])
}

/// `POST path` with `body` as `uid` with no supplementary groups.
fn post_as(d: &Daemon, uid: u32, path: &str, body: Option<&str>) -> (u16, Value) {
    d.call_as(uid, &[], "POST", path, body, &[])
}

fn bash() -> Value {
    json!({"runtime": "bash", "entry": "main.sh"})
}

fn echo_files() -> Value {
    json!({"main.sh": "echo \"{\\\"secret\\\": \\\"${PARAM_SECRET:-none}\\\"}\"\n"})
}

/// Invokes `name` as root with `secret` and returns the record's id.
async fn root_run(d: &Daemon, name: &str, secret: &str) -> String {
    let rec = d.invoke_ok(name, json!({"secret": secret})).await;
    assert_eq!(rec["result"]["secret"], secret, "{rec}");
    rec["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn replay_needs_the_right_to_invoke_the_script_and_to_see_the_original() {
    let Some(d) = daemon("[access.scripts.restricted]\nuids = [0]\n", "").await else {
        return;
    };
    d.register("restricted", bash(), echo_files()).await;
    d.register("open", bash(), echo_files()).await;
    let restricted = root_run(&d, "restricted", "root-only").await;
    let (s, p) = post_as(&d, NOBODY, "/v1/scripts/restricted/invoke", Some("{}"));
    assert_eq!(s, 403, "{p}");
    // Before: 200 with root's result.
    let (s, p) = post_as(
        &d,
        NOBODY,
        &format!("/v1/executions/{restricted}/replay"),
        None,
    );
    assert_eq!(s, 403, "{p}");
    assert!(!p.to_string().contains("root-only"), "{p}");
    // An open script, but root's payload: not nobody's to rerun either.
    let open = root_run(&d, "open", "root-payload").await;
    let (s, p) = post_as(&d, NOBODY, &format!("/v1/executions/{open}/replay"), None);
    assert_eq!(s, 403, "{p}");
    // Its own execution it may replay; root may replay anything.
    let (s, own) = post_as(
        &d,
        NOBODY,
        "/v1/scripts/open/invoke",
        Some(r#"{"secret": "mine"}"#),
    );
    assert_eq!(s, 200, "{own}");
    let (s, again) = post_as(
        &d,
        NOBODY,
        &format!("/v1/executions/{}/replay", own["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["result"]["secret"], "mine", "{again}");
    let (s, r) = d
        .call(
            Method::POST,
            &format!("/v1/executions/{restricted}/replay"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
}

#[tokio::test]
async fn only_the_starter_or_an_admin_cancels() {
    let Some(d) = daemon("", "").await else {
        return;
    };
    d.register(
        "sleepy",
        bash(),
        json!({"main.sh": "sleep \"${PARAM_SECS:-20}\"\necho '{}'\n"}),
    )
    .await;
    let (s, v) = d
        .raw(
            Method::POST,
            "/v1/scripts/sleepy/invoke",
            &[("prefer", "respond-async")],
            Some(br#"{"secs": 20}"#.to_vec()),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let roots = v["id"].as_str().unwrap().to_owned();
    // Before: 200, root's run cancelled by nobody.
    let (s, p) = post_as(&d, NOBODY, &format!("/v1/executions/{roots}/cancel"), None);
    assert_eq!(s, 403, "{p}");
    let (_, rec) = d
        .call(Method::GET, &format!("/v1/executions/{roots}"), None)
        .await;
    assert_ne!(rec["state"], "cancelled", "{rec}");
    // nobody cancels its own run; root (an admin) cancels root's.
    let (s, acc) = d.call_as(
        NOBODY,
        &[],
        "POST",
        "/v1/scripts/sleepy/invoke",
        Some(r#"{"secs": 20}"#),
        &["Prefer: respond-async"],
    );
    assert_eq!(s, 202, "{acc}");
    let own = acc["id"].as_str().unwrap();
    let (s, rec) = post_as(&d, NOBODY, &format!("/v1/executions/{own}/cancel"), None);
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["state"], "cancelled", "{rec}");
    let (s, rec) = d
        .call(
            Method::POST,
            &format!("/v1/executions/{roots}/cancel"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["state"], "cancelled", "{rec}");
}

#[tokio::test]
async fn reads_are_scoped_by_owner_and_admins_see_all() {
    let Some(d) = daemon("[access.scripts.restricted]\nuids = [0]\n", "").await else {
        return;
    };
    let open_version = d.register("open", bash(), echo_files()).await;
    let restricted_version = d.register("restricted", bash(), echo_files()).await;
    let roots = root_run(&d, "open", "root-payload").await;
    let (s, mine) = post_as(
        &d,
        NOBODY,
        "/v1/scripts/open/invoke",
        Some(r#"{"secret": "nobody-payload"}"#),
    );
    assert_eq!(s, 200, "{mine}");
    let mine = mine["id"].as_str().unwrap().to_owned();

    // Before: 200 with root's payload and result, and both in the list.
    for path in [
        format!("/v1/executions/{roots}"),
        format!("/v1/executions/{roots}/events"),
    ] {
        let (s, p) = get_as(&d, NOBODY, &path);
        assert_eq!(s, 403, "{path}: {p}");
        assert!(!p.to_string().contains("root-payload"), "{p}");
    }
    let (s, list) = get_as(&d, NOBODY, "/v1/executions");
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [mine.as_str()], "{list}");
    let (s, rec) = get_as(&d, NOBODY, &format!("/v1/executions/{mine}"));
    assert_eq!(s, 200, "{rec}");
    let (s, events) = get_as(&d, NOBODY, &format!("/v1/executions/{mine}/events"));
    assert_eq!(s, 200, "{events}");
    assert!(events.to_string().contains("event: end"), "{events}");

    // Root sees both.
    let (_, list) = d.call(Method::GET, "/v1/executions", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // A version's manifest: for those who may invoke the script.
    let (s, v) = get_as(
        &d,
        NOBODY,
        &format!("/v1/scripts/restricted/versions/{restricted_version}"),
    );
    assert_eq!(s, 403, "{v}");
    let (s, v) = get_as(
        &d,
        NOBODY,
        &format!("/v1/scripts/open/versions/{open_version}"),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["manifest"]["entry"], "main.sh", "{v}");
}

#[tokio::test]
async fn an_idempotency_key_never_returns_another_callers_execution() {
    let Some(d) = daemon("", "").await else {
        return;
    };
    d.register("open", bash(), echo_files()).await;
    let body = r#"{"secret": "root-payload"}"#;
    let (s, roots) = d
        .raw(
            Method::POST,
            "/v1/scripts/open/invoke",
            &[("idempotency-key", "same-key")],
            Some(body.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(s, 200, "{roots}");
    // Before: root's record, payload and result.
    let (s, other) = d.call_as(
        NOBODY,
        &[],
        "POST",
        "/v1/scripts/open/invoke",
        Some(body),
        &["Idempotency-Key: same-key"],
    );
    assert_eq!(s, 200, "{other}");
    assert_ne!(other["id"], roots["id"], "{other}");
    assert_eq!(other["caller"]["uid"], NOBODY, "{other}");
}

#[tokio::test]
async fn administration_is_closed_by_default_and_an_invoke_list_does_not_open_it() {
    let Some(d) = daemon("", "").await else {
        return;
    };
    let v1 = d.register("prod", bash(), echo_files()).await;
    let bundle =
        r#"{"name":"x","manifest":{"runtime":"bash","entry":"a.sh"},"files":{"a.sh":"echo 1"}}"#;
    // No lists at all: uid 65534 may invoke but not administer (before: 201).
    let (s, p) = post_as(&d, NOBODY, "/v1/scripts", Some(bundle));
    assert_eq!(s, 403, "{p}");
    assert!(
        p["hint"].as_str().unwrap().contains("access.admin_uids"),
        "{p}"
    );
    let (s, p) = post_as(&d, NOBODY, "/v1/scripts/prod/invoke", Some("{}"));
    assert_eq!(s, 200, "{p}");
    drop(d);

    // The operator's case from the review: only invoke_uids set.
    let Some(d) = daemon("invoke_uids = [1000]\n", "").await else {
        return;
    };
    let v1b = d.register("prod", bash(), echo_files()).await;
    assert_eq!(v1, v1b);
    d.register("prod", bash(), json!({"main.sh": "echo '{\"v\": 2}'\n"}))
        .await;
    let (s, p) = post_as(&d, NOBODY, "/v1/scripts/prod/invoke", Some("{}"));
    assert_eq!(s, 403, "{p}");
    // Before: 201 and 200 (a production rollback by a caller refused invoke).
    let (s, p) = post_as(&d, NOBODY, "/v1/scripts", Some(bundle));
    assert_eq!(s, 403, "{p}");
    let (s, p) = d.call_as(
        NOBODY,
        &[],
        "PUT",
        "/v1/scripts/prod/tags/latest",
        Some(&format!(r#"{{"version": "{v1}"}}"#)),
        &[],
    );
    assert_eq!(s, 403, "{p}");
    for path in ["/v1/scripts/prod/disable", "/v1/prewarm"] {
        let (s, p) = post_as(&d, NOBODY, path, Some(r#"{"scripts": [{"name": "prod"}]}"#));
        assert_eq!(s, 403, "{path}: {p}");
    }
    let rec = d.invoke_ok("prod", json!({})).await;
    assert_eq!(rec["result"]["v"], 2, "{rec}");
}

#[tokio::test]
async fn supplementary_groups_count() {
    let Some(d) = daemon("invoke_gids = [4242]\n", "").await else {
        return;
    };
    d.register("grouped", bash(), echo_files()).await;
    // Before: 403, only the primary gid (65534) was checked.
    let (s, p) = d.call_as(
        NOBODY,
        &[4242],
        "POST",
        "/v1/scripts/grouped/invoke",
        Some("{}"),
        &[],
    );
    assert_eq!(s, 200, "{p}");
    let (s, p) = post_as(&d, NOBODY, "/v1/scripts/grouped/invoke", Some("{}"));
    assert_eq!(s, 403, "{p}");
}

/// The log's `configuration reloaded` lines, parsed.
async fn reload_lines(d: &Daemon, count: usize) -> Vec<Value> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<Value> = d
            .log()
            .lines()
            .filter(|l| l.contains("configuration reloaded"))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(Instant::now() < until, "no reload line\n{}", d.report());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_applies_admission_and_reports_sandbox_and_load_samples() {
    let Some(d) = daemon("", "[admission]\nrate_per_uid = 1\nburst = 1\n").await else {
        return;
    };
    d.register("quick", bash(), echo_files()).await;
    let burst = |n: usize| {
        let d = &d;
        async move {
            let calls = (0..n).map(|_| d.invoke("quick", "", json!({})));
            futures_util::future::join_all(calls)
                .await
                .into_iter()
                .map(|(s, _)| s)
                .collect::<Vec<u16>>()
        }
    };
    let before = burst(4).await;
    assert!(before.contains(&429), "{before:?}");

    let config = d.dir().join("runwarmd.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("rate_per_uid = 1", "rate_per_uid = 0")
        .replace("load_samples = false", "load_samples = true");
    std::fs::write(
        &config,
        format!("{text}\n[sandbox]\nmode = \"best-effort\"\n"),
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    let line = reload_lines(&d, 1).await.remove(0);
    let fields = if line["fields"].is_object() {
        &line["fields"]
    } else {
        &line
    };
    let changed = fields["changed"].to_string();
    let restart = fields["needs_restart"].to_string();
    // Before: `changed: [] needs_restart: []`, and the 429s went on.
    assert!(changed.contains("admission"), "{line}");
    assert!(restart.contains("sandbox"), "{line}");
    assert!(restart.contains("load_samples"), "{line}");
    let after = burst(4).await;
    assert!(after.iter().all(|s| *s == 200), "{after:?}\n{}", d.report());
}

#[tokio::test]
async fn a_reader_sees_every_execution_but_cancels_none() {
    // Before: `reader_uids` was an unknown key and the daemon refused to start.
    let Some(d) = daemon(&format!("reader_uids = [{MONITOR}]\n"), "").await else {
        return;
    };
    d.register("open", bash(), echo_files()).await;
    let roots = root_run(&d, "open", "root-payload").await;
    let (s, list) = get_as(&d, MONITOR, "/v1/executions");
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (s, rec) = get_as(&d, MONITOR, &format!("/v1/executions/{roots}"));
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["result"]["secret"], "root-payload", "{rec}");
    let (s, p) = post_as(&d, MONITOR, &format!("/v1/executions/{roots}/cancel"), None);
    assert_eq!(s, 403, "{p}");
    // Seeing is not running: replay needs the invoke right, which a reader holds like any
    // caller here (no invoke list), so it runs as the reader, not as root.
    let (s, rec) = post_as(&d, MONITOR, &format!("/v1/executions/{roots}/replay"), None);
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["caller"]["uid"], MONITOR, "{rec}");
    // Nobody else sees root's run.
    let (s, list) = get_as(&d, NOBODY, "/v1/executions");
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}
