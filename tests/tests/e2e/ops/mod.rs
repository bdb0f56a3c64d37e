//! Operations: systemd units checked, the configuration check, access control, socket mode and
//! metrics here; the daemon's life under systemd and signals in `lifecycle`, the HTTP server's
//! defences in `defences`.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use runwarm_e2e::{Daemon, Need, bin_dir, require};
use serde_json::json;

mod defences;
mod lifecycle;

const SLEEPY: &str = "sleep \"${PARAM_SECS:-2}\"\necho '{\"slept\": true}'\n";

fn greeting_runtime(greeting: &str) -> String {
    format!(
        "name = \"greet\"\nlanguage = \"bash\"\nextensions = [\"sh\"]\nmodes = [\"command\"]\n\
         default_mode = \"command\"\nprobe = [\"bash\", \"-c\", \"command -v bash; echo \\\"${{BASH_VERSION}}\\\"\"]\n\
         command = [\"{{exec_command}}\", \"--\", \"{{interpreter}}\", \"{{entry}}\"]\n\
         [env]\nGREETING = \"{greeting}\"\n"
    )
}

fn bash_manifest() -> serde_json::Value {
    json!({"runtime": "bash", "entry": "main.sh"})
}

/// Messages received on a fake `NOTIFY_SOCKET` until `until` says stop (or 15 s pass).
fn collect_notify(rx: &UnixDatagram, seen: &mut Vec<String>, until: impl Fn(&[String]) -> bool) {
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while !until(seen) && Instant::now() < deadline {
        if let Ok(n) = rx.recv(&mut buf) {
            seen.extend(
                String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !require(&[Need::Program("systemd-analyze")]) {
        return;
    }
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = bin_dir().join("runwarmd");
    for unit in ["runwarm.service", "runwarm.socket"] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        // verify insists the binary exists: point it at the one just built.
        let text = text.replace("/usr/local/bin/runwarmd", &daemon.display().to_string());
        std::fs::write(tmp.path().join(unit), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(tmp.path().join("runwarm.socket"))
        .arg(tmp.path().join("runwarm.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Outside a booted systemd, verify may complain about the host; only our units count.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("runwarm.")).collect();
    assert!(
        out.status.success() || ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    assert!(
        ours.is_empty(),
        "systemd-analyze verify complained: {ours:?}"
    );
}

#[test]
fn check_config_reports_every_violation_or_ok_without_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let daemon = bin_dir().join("runwarmd");
    let check = |file: &Path| {
        Command::new(&daemon)
            .arg("--check-config")
            .arg(file)
            .env_remove("JOURNAL_STREAM")
            .output()
            .unwrap()
    };
    // The shipped example names group runwarm, which exists only once installed (the
    // real-systemd test checks it there); the same file with this host's root group instead.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/runwarmd.toml"),
    )
    .unwrap()
    .replace("socket_group = \"runwarm\"", "socket_group = 0");
    let example_path = tmp.path().join("runwarmd.toml");
    std::fs::write(&example_path, example).unwrap();
    let example = example_path;
    let out = check(&example);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration ok"), "{stdout}");

    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "socket = \"s.sock\"\n[pools]\nmax_workers = 0\nqueue_max = -1\n[sandbox]\nmode = \"maybe\"\n",
    )
    .unwrap();
    let out = check(&bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for key in ["pools.max_workers", "pools.queue_max", "sandbox.mode"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("bad.toml") && l.contains(key)),
            "{key} missing from:\n{stderr}"
        );
    }
    // Nothing started: no socket, no state directory next to the file.
    assert!(!tmp.path().join("s.sock").exists());
    assert!(!tmp.path().join(".runwarm").exists());
}

#[tokio::test]
async fn a_non_admin_uid_can_invoke_but_not_register_and_the_socket_is_as_configured() {
    if !require(&[Need::Program("setpriv"), Need::Program("bash")]) {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED access control test: needs root to act as another uid ***"
        );
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config("[access]\nadmin_uids = [0]\nsocket_mode = 0o666\nsocket_group = 65534\n")
        .start()
        .await;
    let meta = std::fs::metadata(d.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    assert_eq!(meta.gid(), 65534);
    d.register(
        "hello",
        bash_manifest(),
        json!({"main.sh": "echo '{\"hi\": 1}'\n"}),
    )
    .await;
    // The temp dir must be reachable for uid 65534.
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_dir().join("runwarm"))
            .arg("--socket")
            .arg(d.socket())
            .args(args)
            .output()
            .unwrap()
    };
    let reg = as_nobody(&[
        "api",
        "--json",
        "POST",
        "/v1/scripts",
        r#"{"name":"x","manifest":{"runtime":"bash","entry":"a.sh"},"files":{"a.sh":"echo 1"}}"#,
    ]);
    let out =
        String::from_utf8_lossy(&reg.stdout).into_owned() + &String::from_utf8_lossy(&reg.stderr);
    assert_eq!(reg.status.code(), Some(4), "{out}");
    assert!(out.contains("403") || out.contains("forbidden"), "{out}");
    assert!(out.contains("access.admin_uids"), "{out}");
    let inv = as_nobody(&["api", "--json", "POST", "/v1/scripts/hello/invoke", "{}"]);
    let out = String::from_utf8_lossy(&inv.stdout).into_owned();
    assert!(
        inv.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&inv.stderr)
    );
    assert!(out.contains("\"caller\""), "{out}");
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rec["caller"]["uid"], 65534, "{rec}");
    d.log_with("\"caller_uid\":65534", 1).await;
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{text}"))
}

fn counter(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_with_traffic() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "m",
        bash_manifest(),
        json!({"main.sh": "echo '{\"ok\": 1}'\n"}),
    )
    .await;
    let get = || async {
        let r = d.client().get("/metrics").await.unwrap();
        assert_eq!(r.status, 200);
        scrape(&String::from_utf8_lossy(&r.body))
    };
    let before = get().await;
    for _ in 0..3 {
        d.invoke_ok("m", json!({})).await;
    }
    let after = get().await;
    let inv = |s: &prometheus_parse::Scrape| {
        counter(s, "runwarm_invocations_total", Some(("script", "m")))
    };
    assert_eq!(inv(&after) - inv(&before), 3.0);
    assert!(
        counter(&after, "runwarm_spawns_total", None) >= 1.0,
        "{:?}",
        after.samples
    );
    assert!(
        after
            .samples
            .iter()
            .any(|x| x.metric == "runwarm_pool_executors" && x.labels.get("state") == Some("idle")),
        "{:?}",
        after.samples
    );
    for name in [
        "runwarm_queue_depth",
        "runwarm_history_pending_records",
        "runwarm_oom_kills_total",
        "runwarm_timeouts_total",
        "runwarm_protocol_faults_total",
    ] {
        assert!(
            after.samples.iter().any(|x| x.metric == name),
            "{name} missing"
        );
    }
    assert!(
        after
            .samples
            .iter()
            .any(|x| x.metric.starts_with("runwarm_invocation_duration_seconds")),
        "no duration histogram"
    );
}
