//! Issue 13 §3: replays name their original and the original lists them; manifest `label`,
//! `author` and `changelog`; `NAME@LABEL`; who registered each version; and state directories
//! written by the previous schemas upgraded in place.

use std::process::Command;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

const SCRIPT: &str =
    "def handler(event, context):\n    return {'v': VERSION, 'echo': event.get('n')}\n";

fn source(v: &str) -> Value {
    json!({ "main.py": format!("VERSION = {v:?}\n{SCRIPT}") })
}

#[tokio::test]
async fn labels_select_versions_and_every_version_names_its_registrant() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let v1 = d
        .register(
            "lab",
            json!({"runtime": "python3", "entry": "main.py", "label": "1.4.0",
                   "author": "Ada <ada@example.org>", "changelog": "first cut"}),
            source("one"),
        )
        .await;
    // `version` is what people write; it is the same key as `label`.
    let v2 = d
        .register(
            "lab",
            json!({"runtime": "python3", "entry": "main.py", "version": "2.0.0"}),
            source("two"),
        )
        .await;

    let (status, versions) = d.call(Method::GET, "/v1/scripts/lab/versions", None).await;
    assert_eq!(status, 200, "{versions}");
    let newest = &versions[0];
    let oldest = &versions[1];
    assert_eq!(newest["id"], v2.as_str());
    assert_eq!(newest["label"], "2.0.0");
    assert_eq!(oldest["label"], "1.4.0");
    assert_eq!(oldest["author"], "Ada <ada@example.org>");
    assert_eq!(oldest["changelog"], "first cut");
    let me = nix::unistd::getuid().as_raw();
    for v in [newest, oldest] {
        let by = &v["registered_by"];
        assert_eq!(by["uid"], me, "{v}");
        assert_eq!(by["gid"], nix::unistd::getgid().as_raw(), "{v}");
        assert!(by["pid"].as_u64().is_some_and(|p| p > 0), "{v}");
    }

    // NAME@LABEL, in the API and in the CLI; the record carries the label.
    let (status, rec) = d.invoke("lab", "?version=1.4.0", json!({"n": 1})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["version"], v1.as_str());
    assert_eq!(rec["label"], "1.4.0");
    assert_eq!(rec["result"]["v"], "one");
    let (code, out, err) = d.cli(&["invoke", "lab@1.4.0", "-d", "{\"n\": 2}"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"one\""), "{out}");
    let (code, out, err) = d.cli(&["versions", "lab"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("LABEL") && out.contains("1.4.0") && out.contains("2.0.0"),
        "{out}"
    );
    let (code, out, err) = d.cli(&["show", "lab"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2.0.0"), "{out}");

    // A label two versions carry selects neither, and says which ids to use instead.
    let v3 = d
        .register(
            "lab",
            json!({"runtime": "python3", "entry": "main.py", "label": "2.0.0"}),
            source("three"),
        )
        .await;
    let (status, problem) = d.invoke("lab", "?version=2.0.0", json!({})).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("/ambiguous-label"),
        "{problem}"
    );
    let hint = problem["hint"].as_str().unwrap_or_default();
    for id in [&v2, &v3] {
        let short = &id["sha256:".len().."sha256:".len() + 12];
        assert!(hint.contains(short), "{hint}");
    }
    let (code, _, err) = d.cli(&["invoke", "lab@2.0.0"]);
    assert_ne!(code, 0);
    assert!(err.contains("2.0.0") && err.contains("hint:"), "{err}");

    // A label must survive being typed as NAME@LABEL.
    let (status, problem) = d
        .call(
            Method::POST,
            "/v1/scripts",
            Some(
                json!({"name": "lab", "manifest": {"runtime": "python3", "entry": "main.py",
                "label": "a@b"}, "files": source("bad")}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn a_replay_names_its_original_and_the_original_lists_its_replays() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "lab",
        json!({"runtime": "python3", "entry": "main.py"}),
        source("one"),
    )
    .await;
    let original = d.invoke_ok("lab", json!({"n": 7})).await;
    let id = original["id"].as_str().unwrap();
    assert!(original.get("replay_of").is_none(), "{original}");
    let mut replays = Vec::new();
    for _ in 0..2 {
        let (status, rec) = d
            .call(Method::POST, &format!("/v1/executions/{id}/replay"), None)
            .await;
        assert_eq!(status, 200, "{rec}");
        assert_eq!(rec["replay_of"], id, "{rec}");
        assert_eq!(rec["result"]["echo"], 7);
        replays.push(rec["id"].as_str().unwrap().to_owned());
    }
    let (status, shown) = d
        .call(Method::GET, &format!("/v1/executions/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["replays"], json!(replays), "{shown}");
    // The replay's own record, read back from the database.
    let (_, replay) = d
        .call(Method::GET, &format!("/v1/executions/{}", replays[0]), None)
        .await;
    assert_eq!(replay["replay_of"], id, "{replay}");
}

/// A state directory from before this issue: registry schema 2 (no registrant pid) and
/// history schema 1 (no lineage columns, no callback outbox). The daemon upgrades both in place and keeps
/// every version and record.
#[tokio::test]
async fn an_older_state_directory_is_upgraded_in_place() {
    if !require(&[Need::Program("python3"), Need::Program("sqlite3")]) {
        return;
    }
    let mut d = Daemon::builder().without_samples().start().await;
    let v1 = d
        .register(
            "lab",
            json!({"runtime": "python3", "entry": "main.py"}),
            source("one"),
        )
        .await;
    let old = d.invoke_ok("lab", json!({"n": 1})).await;
    d.stop();
    let state = d.dir().join("state");
    sqlite(
        &state.join("registry.db"),
        "ALTER TABLE versions DROP COLUMN registered_pid; PRAGMA user_version = 2;",
    );
    sqlite(
        &state.join("history.db"),
        "DROP INDEX executions_replay_of; ALTER TABLE executions DROP COLUMN replay_of; \
         DROP INDEX executions_retry_of; ALTER TABLE executions DROP COLUMN retry_of; \
         DROP TABLE delivery_attempts; DROP TABLE deliveries; DROP TABLE subscriptions; \
         PRAGMA user_version = 1;",
    );
    d.restart().await;

    let (status, versions) = d.call(Method::GET, "/v1/scripts/lab/versions", None).await;
    assert_eq!(status, 200, "{versions}");
    assert_eq!(versions[0]["id"], v1.as_str());
    assert_eq!(
        versions[0]["registered_by"]["uid"],
        nix::unistd::getuid().as_raw()
    );
    assert!(
        versions[0]["registered_by"].get("pid").is_none(),
        "unknown after the upgrade"
    );
    let id = old["id"].as_str().unwrap();
    let (status, rec) = d
        .call(Method::POST, &format!("/v1/executions/{id}/replay"), None)
        .await;
    assert_eq!(status, 200, "{rec}");
    let (_, shown) = d
        .call(Method::GET, &format!("/v1/executions/{id}"), None)
        .await;
    assert_eq!(shown["replays"][0], rec["id"], "{shown}");
    d.stop();
    assert_eq!(user_version(&state.join("registry.db")), "3");
    assert_eq!(user_version(&state.join("history.db")), "3");
    d.restart().await;
}

fn sqlite(db: &std::path::Path, sql: &str) {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(
        out.status.success(),
        "sqlite3 {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn user_version(db: &std::path::Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("PRAGMA user_version;")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
