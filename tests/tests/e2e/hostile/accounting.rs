//! CPU time accounted per invocation from the executor's cgroup.

use serde_json::{Value, json};

use super::hostile_daemon;

/// A script that burns `ms` milliseconds of CPU, in user space: the CPU clock (a system call)
/// is read only every 20,000 additions.
const BURN: &str = r#"import time

def handler(event, ctx):
    end = time.thread_time() + event["ms"] / 1000
    x = 0
    while time.thread_time() < end:
        for i in range(20000):
            x += i
    return {"burned_ms": event["ms"]}
"#;

fn cpu_ms(rec: &Value) -> f64 {
    let r = &rec["resources"];
    r["cpu_user_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("{rec:#}"))
        + r["cpu_system_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{rec:#}"))
}

#[tokio::test]
async fn cpu_time_is_accounted_per_invocation_from_the_cgroup() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    d.register(
        "burn",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": BURN}),
    )
    .await;
    // Warm, so the start-up's CPU is not in what follows.
    d.invoke_ok("burn", json!({"ms": 0})).await;
    for _ in 0..3 {
        // Several calls of about a tick each: a reading that skipped the tick counters must
        // still count the precise total.
        let rec = d.invoke_ok("burn", json!({"ms": 40})).await;
        let used = cpu_ms(&rec);
        assert!(
            (38.0..400.0).contains(&used),
            "40 ms burned, {used} ms accounted: {rec:#}"
        );
        // A loop in user space is mostly user time (the split is the kernel's sampled ratio).
        let user = rec["resources"]["cpu_user_ms"].as_f64().unwrap();
        assert!(
            user > used / 2.0,
            "{user} of {used} ms in user space: {rec:#}"
        );
        // The next call is charged its own CPU, not the one before it.
        let rec = d.invoke_ok("burn", json!({"ms": 0})).await;
        let used = cpu_ms(&rec);
        assert!(used < 20.0, "an idle call was charged {used} ms: {rec:#}");
    }
}
