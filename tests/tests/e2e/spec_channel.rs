//! The sandbox helper gets its spec on an fd, not in argv: no local user reads a script's
//! environment in `/proc/PID/cmdline`, and a spec larger than one argument may be (128 KiB)
//! starts; what execve itself cannot take is refused at registration.

use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;

const MARKER: &str = "env-value-only-the-executor-may-see-7f3a";

fn cmdlines(d: &Daemon) -> Vec<String> {
    d.instance_processes()
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .collect()
}

#[tokio::test]
async fn no_argv_carries_the_environment_and_a_large_one_runs() {
    if !require(&[Need::Program("python3"), Need::Root]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    // Two variables of 100 KiB: each fits execve's limit for one string, the spec holding both
    // would not fit one argument.
    let big = "x".repeat(100 * 1024);
    d.register(
        "envy",
        json!({"runtime": "python3", "entry": "main.py",
               "env": {"MARKER": MARKER, "BIG": big, "BIG2": big}}),
        json!({"main.py": "import os, time\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return {'marker': os.environ['MARKER'], 'big': len(os.environ['BIG'])}\n"}),
    )
    .await;
    let rec = d.invoke_ok("envy", json!({})).await;
    assert_eq!(rec["result"]["marker"], MARKER, "{rec:#}");
    assert_eq!(rec["result"]["big"], 100 * 1024, "{rec:#}");
    // The executor is warm now: its helper (the sandbox's init) and the executor are alive.
    let lines = cmdlines(&d);
    assert!(
        lines.iter().any(|l| l.contains("runwarm-sandbox")),
        "the helper is running: {lines:?}"
    );
    for line in &lines {
        assert!(
            !line.contains(MARKER),
            "an argv shows the environment: {line}"
        );
        assert!(
            line.len() < 4096,
            "an argv carries the spec: {} bytes",
            line.len()
        );
    }
}

#[tokio::test]
async fn an_environment_execve_cannot_take_is_refused_at_registration() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let huge = "x".repeat(300 * 1024);
    let (status, body) = d
        .call(
            hyper::Method::POST,
            "/v1/scripts",
            Some(
                json!({"name": "huge", "manifest": {"runtime": "python3", "entry": "main.py",
                "env": {"HUGE": huge}}, "files": {"main.py": "def handler(e, c): return 1\n"}}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("\"HUGE\""),
        "{body}"
    );
}
