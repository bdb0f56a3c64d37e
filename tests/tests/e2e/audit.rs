//! The audit trail: every administrative action against a real daemon leaves a row with who
//! (the connection's peer credentials), what and the before/after; `GET /v1/audit` and
//! `runwarm audit` show it; it survives a restart.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use nix::sys::signal::Signal;
use runwarm_e2e::{Daemon, Need, bin_dir, require};
use serde_json::{Value, json};

fn bash_manifest() -> Value {
    json!({"runtime": "bash", "entry": "main.sh"})
}

async fn trail(d: &Daemon, query: &str) -> Vec<Value> {
    let (status, body) = d
        .call(Method::GET, &format!("/v1/audit{query}"), None)
        .await;
    assert_eq!(status, 200, "GET /v1/audit{query}: {body}");
    body.as_array().cloned().unwrap_or_default()
}

/// The newest row of `action` on `script`.
fn newest<'a>(rows: &'a [Value], action: &str, script: Option<&str>) -> &'a Value {
    rows.iter()
        .find(|r| r["action"] == action && script.is_none_or(|s| r["script"] == s))
        .unwrap_or_else(|| panic!("no {action} row for {script:?} in {rows:#?}"))
}

#[tokio::test]
async fn every_admin_action_is_recorded_with_who_what_and_before_after_and_survives_a_restart() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let mut d = Daemon::builder().without_samples().start().await;
    let (uid, gid, pid) = (
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
        std::process::id(),
    );

    // register: two versions, and the same content again (created = false).
    let v1 = d
        .register(
            "audited",
            bash_manifest(),
            json!({"main.sh": "echo '{\"v\": 1}'\n"}),
        )
        .await;
    let v2 = d
        .register(
            "audited",
            bash_manifest(),
            json!({"main.sh": "echo '{\"v\": 2}'\n"}),
        )
        .await;
    let again = d
        .register_answer(
            "audited",
            bash_manifest(),
            json!({"main.sh": "echo '{\"v\": 2}'\n"}),
        )
        .await;
    assert_eq!(again["created"], false, "{again}");

    // tag: created at v1, then moved to v2.
    for v in [&v1, &v2] {
        let (status, body) = d
            .call(
                Method::PUT,
                "/v1/scripts/audited/tags/prod",
                Some(json!({"version": v})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for (method, path) in [
        (Method::POST, "/v1/scripts/audited/disable"),
        (Method::POST, "/v1/scripts/audited/enable"),
        (Method::DELETE, "/v1/scripts/audited"),
        (Method::POST, "/v1/scripts/audited/enable"),
    ] {
        let (status, body) = d.call(method.clone(), path, None).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
    let (status, body) = d
        .call(
            Method::POST,
            "/v1/prewarm",
            Some(json!({"scripts": [{"name": "audited", "tag": "prod", "count": 1}]})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = d
        .call(
            Method::POST,
            "/v1/samples/disk-space/clone",
            Some(json!({"name": "disk-copy"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");

    let rows = trail(&d, "").await;
    // Every API row names this test process (same uid, gid and pid: the client is in-process).
    for r in rows.iter().filter(|r| r["via"] == "socket") {
        assert_eq!(
            (&r["uid"], &r["gid"], &r["pid"]),
            (&json!(uid), &json!(gid), &json!(pid)),
            "{r}"
        );
        assert!(r["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{r}");
    }
    let registers: Vec<&Value> = rows.iter().filter(|r| r["action"] == "register").collect();
    assert_eq!(registers.len(), 3, "{rows:#?}");
    // Newest first: the identical re-registration, then v2 (latest was v1), then v1 (new script).
    assert_eq!(
        registers[0]["after"],
        json!({"version": v2, "created": false})
    );
    assert_eq!(
        registers[1]["after"],
        json!({"version": v2, "created": true})
    );
    assert_eq!(registers[1]["before"], json!({"latest": v1}));
    assert_eq!(
        registers[2]["after"],
        json!({"version": v1, "created": true})
    );
    assert_eq!(registers[2]["before"], json!({"latest": null}));

    let tags: Vec<&Value> = rows.iter().filter(|r| r["action"] == "tag").collect();
    assert_eq!(tags.len(), 2, "{rows:#?}");
    assert_eq!(tags[0]["target"], "prod");
    assert_eq!(
        tags[0]["before"],
        json!({"version": v1}),
        "the move's old version"
    );
    assert_eq!(
        tags[0]["after"],
        json!({"version": v2}),
        "the move's new version"
    );
    assert_eq!(tags[1]["before"], json!({"version": null}));
    assert_eq!(tags[1]["after"], json!({"version": v1}));

    let disable = newest(&rows, "disable", Some("audited"));
    assert_eq!(disable["before"], json!({"disabled": false}));
    assert_eq!(disable["after"], json!({"disabled": true}));
    let delete = newest(&rows, "delete", Some("audited"));
    assert_eq!(delete["before"], json!({"disabled": false}));
    assert_eq!(delete["after"], json!({"disabled": true}));
    let enables: Vec<&Value> = rows.iter().filter(|r| r["action"] == "enable").collect();
    assert_eq!(enables.len(), 2);
    assert_eq!(enables[0]["before"], json!({"disabled": true}));
    assert_eq!(enables[0]["after"], json!({"disabled": false}));

    let prewarm = newest(&rows, "prewarm", Some("audited"));
    assert_eq!(prewarm["target"], json!(v2), "prewarm of :prod warms v2");
    assert_eq!(prewarm["after"]["requested"], 1);

    let clone = newest(&rows, "clone", Some("disk-copy"));
    assert_eq!(clone["target"], "disk-space");
    assert_eq!(clone["after"]["created"], true);

    // Filters and paging.
    let of_script = trail(&d, "?script=audited&action=tag").await;
    assert_eq!(of_script.len(), 2);
    let first = trail(&d, "?limit=1").await;
    assert_eq!(first.len(), 1);
    let older = trail(&d, &format!("?before={}&limit=1000", first[0]["id"])).await;
    assert_eq!(older.len(), rows.len() - 1);
    let (status, _) = d.call(Method::GET, "/v1/audit?limit=0", None).await;
    assert_eq!(status, 400);

    // A reload by SIGHUP: recorded as uid 0, via signal.
    d.signal(Signal::SIGHUP);
    let until = Instant::now() + Duration::from_secs(20);
    let reload = loop {
        let rows = trail(&d, "?action=reload").await;
        if let Some(r) = rows.first() {
            break r.clone();
        }
        assert!(Instant::now() < until, "no reload row\n{}", d.report());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (&reload["uid"], &reload["via"], &reload["after"]),
        (&json!(0), &json!("signal"), &json!({"applied": true})),
        "{reload}"
    );

    // One log line per action, with fields.
    let log = d.log_with("administrative action", rows.len() + 1).await;
    let lines = log
        .lines()
        .filter(|l| l.contains("administrative action"))
        .count();
    assert!(
        lines > rows.len(),
        "{lines} audit log lines for {} rows",
        rows.len() + 1
    );
    assert!(log.contains("\"action\":\"tag\""), "{log}");

    // The trail survives a restart, unchanged.
    let before_restart = trail(&d, "").await;
    assert!(d.stop().is_some_and(|s| s.success()));
    d.restart().await;
    assert_eq!(trail(&d, "").await, before_restart);

    // The CLI: a table by default, the daemon's JSON with --json.
    let run = |args: &[&str]| {
        let (code, out, err) = d.cli(args);
        assert_eq!(code, 0, "runwarm {args:?}: {out}{err}");
        out
    };
    let table = run(&["audit", "--script", "audited"]);
    for expected in ["ACTION", "WHO", "tag", "prewarm", "disable", "→"] {
        assert!(
            table.contains(expected),
            "{expected:?} missing from\n{table}"
        );
    }
    assert!(!table.contains("disk-copy"), "--script filters\n{table}");
    let json: Value = serde_json::from_str(&run(&["--json", "audit", "--action", "tag"])).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2), "{json}");
    // The CLI's own call is a read: it records nothing.
    assert_eq!(trail(&d, "").await, before_restart);
}

#[tokio::test]
async fn the_trail_names_another_uid_and_is_for_admins_only() {
    if !require(&[Need::Program("setpriv"), Need::Program("bash")]) {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("*** SKIPPED audit access test: needs root to act as another uid ***");
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config("[access]\nadmin_uids = [4242]\nsocket_mode = 0o666\n")
        .start()
        .await;
    let v = d
        .register("owned", bash_manifest(), json!({"main.sh": "echo '{}'\n"}))
        .await;
    // The temp dir must be reachable for the other uids.
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_uid = |uid: u32, args: &[&str]| {
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(bin_dir().join("runwarm"))
            .arg("--socket")
            .arg(d.socket())
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    // An admin by uid: the row names it (uid and gid from SO_PEERCRED).
    let (code, out) = as_uid(4242, &["tag", "owned", "stable", &v]);
    assert_eq!(code, Some(0), "{out}");
    let rows = trail(&d, "?action=tag").await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(
        (&rows[0]["uid"], &rows[0]["gid"]),
        (&json!(4242), &json!(4242))
    );
    assert!(
        rows[0]["pid"].as_i64().is_some_and(|p| p > 0),
        "{}",
        rows[0]
    );
    // Not an admin: the trail is refused, and a refused action records nothing.
    let (code, out) = as_uid(65534, &["audit"]);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("may not read the audit trail"), "{out}");
    let (code, out) = as_uid(65534, &["disable", "owned"]);
    assert_eq!(code, Some(4), "{out}");
    assert!(trail(&d, "?action=disable").await.is_empty());
    // The admin reads it through the CLI.
    let (code, out) = as_uid(4242, &["--json", "audit", "--script", "owned"]);
    assert_eq!(code, Some(0), "{out}");
}
