//! `sandbox.mode = "best-effort"` on a host that refuses a layer: only that layer is given up.

use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

use super::HOSTILE;

/// A helper that refuses one step whenever the spec asks for its layer, the way a host whose
/// kernel forbids that would; otherwise it is the real `runwarm-sandbox`.
const REFUSING_HELPER: &str = r#"#!/bin/sh
case "$2" in
  *'"LAYER":true'*)
    echo 'runwarm-sandbox: {"step":"STEP","errno":1,"detail":"test host: STEP refused"}' >&2
    exit 125 ;;
esac
exec REAL_HELPER "$@"
"#;

/// A best-effort daemon whose helper refuses `step` while `layer` is on.
async fn best_effort_daemon(layer: &str, step: &str) -> Option<(Daemon, tempfile::TempDir)> {
    if !require(&[Need::Program("python3"), Need::Root]) {
        return None;
    }
    let scratch = tempfile::tempdir().unwrap();
    let helper = scratch.path().join("refusing-helper");
    // The daemon starts its helper with an empty environment: the real path goes into the text.
    let real = runwarm_e2e::bin_dir().join("runwarm-sandbox");
    let script = REFUSING_HELPER
        .replace("LAYER", layer)
        .replace("STEP", step)
        .replace("REAL_HELPER", &format!("'{}'", real.display()));
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = Daemon::builder()
        .config(&format!(
            "[sandbox]\nmode = \"best-effort\"\nbinary = \"{}\"\n",
            helper.display()
        ))
        .start()
        .await;
    d.register(
        "hostile",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": HOSTILE}),
    )
    .await;
    Some((d, scratch))
}

/// `/v1/info`'s `sandbox`, checked for best-effort mode, the refused step named, namespace `off`
/// given up and every other namespace and seccomp still active.
async fn best_effort_report(d: &Daemon, step: &str, off: &str) -> Value {
    let (_, info) = d.call(hyper::Method::GET, "/v1/info", None).await;
    let sandbox = info["sandbox"].clone();
    assert_eq!(sandbox["mode"], "best-effort", "{sandbox:#}");
    assert!(
        sandbox["problems"].to_string().contains(step),
        "the given-up layer is named: {sandbox:#}"
    );
    for ns in ["user", "mnt", "pid", "net", "ipc", "uts"] {
        assert_eq!(sandbox["namespaces"][ns], ns != off, "{ns}: {sandbox:#}");
    }
    assert_eq!(sandbox["seccomp"], true, "{sandbox:#}");
    sandbox
}

#[tokio::test]
async fn best_effort_gives_up_only_the_layer_that_fails() {
    let Some((d, _helper)) = best_effort_daemon("net_ns", "loopback").await else {
        return;
    };
    let sandbox = best_effort_report(&d, "loopback", "net").await;
    assert_eq!(sandbox["minimal_root"], true, "{sandbox:#}");
    // Executors start with the layers that work: minimal root yes, own network no.
    let state = d.dir().join("state");
    let payload = json!({"do": "fs", "db": state.join("registry.db"), "versions": state.join("versions"), "state": state});
    let fs = d.invoke_ok("hostile", payload).await;
    assert_eq!(fs["result"]["shadow"], 2, "{fs:#}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let net = d
        .invoke_ok("hostile", json!({"do": "connect", "port": port}))
        .await;
    assert_eq!(
        net["result"]["connect"], "ok",
        "shares the host network: {net:#}"
    );
}

#[tokio::test]
async fn best_effort_without_a_minimal_root_runs_executors_on_host_paths() {
    let Some((d, _helper)) = best_effort_daemon("mount_ns", "new_root").await else {
        return;
    };
    let sandbox = best_effort_report(&d, "new_root", "mnt").await;
    assert_eq!(sandbox["minimal_root"], false, "{sandbox:#}");
    assert!(
        sandbox["problems"]
            .to_string()
            .contains("host paths as uid 65534"),
        "the consequence is said: {sandbox:#}"
    );
    // Without /var/task the executors get the host paths of the version and the shims, and open
    // them as the unprivileged sandbox user: what that user can reach runs.
    std::fs::set_permissions(d.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    d.register(
        "cmd",
        json!({"runtime": "bash", "entry": "cmd.sh"}),
        json!({"cmd.sh": "echo \"{\\\"uid\\\": $(id -u), \\\"entry\\\": \\\"$0\\\"}\"\n"}),
    )
    .await;
    let cmd = d.invoke_ok("cmd", json!({})).await;
    assert_eq!(cmd["result"]["uid"], 1000, "{cmd:#}");
    let versions = d.dir().join("state").join("versions");
    assert!(
        cmd["result"]["entry"]
            .as_str()
            .is_some_and(|entry| entry.starts_with(&*versions.to_string_lossy())),
        "runs the entry from the version's host directory: {cmd:#}"
    );
    // What it cannot reach fails with a clear reason: this host's Python lives under /root.
    let (_, rec) = d.invoke("hello-python", "", json!({})).await;
    let message = rec["error"]["message"].as_str().unwrap_or_default();
    if !message.is_empty() {
        assert!(
            message.to_lowercase().contains("permission denied"),
            "{rec:#}"
        );
    }
}
