//! Issue 13 §2: a retry policy per script. Each attempt is its own record linked to the first,
//! the failed attempts' output is kept, the chain is visible, and an attempt waiting for its
//! backoff survives a kill -9.

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, bin_dir, require};
use serde_json::{Value, json};

const FLAKY: &str = "calls = 0\ndef handler(e, c):\n    global calls\n    calls += 1\n    print('attempt', calls, flush=True)\n    if calls < e.get('succeed_at', 99):\n        raise ValueError('not yet: call %d' % calls)\n    return {'calls': calls}\n";

async fn daemon_with(retry: Value) -> Option<Daemon> {
    if !require(&[Need::Program("python3")]) {
        return None;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "flaky",
        json!({"runtime": "python3", "entry": "main.py", "pool": {"max": 1}, "retry": retry}),
        json!({"main.py": FLAKY}),
    )
    .await;
    Some(d)
}

async fn get(d: &Daemon, id: &str) -> Value {
    let (status, rec) = d
        .call(Method::GET, &format!("/v1/executions/{id}"), None)
        .await;
    assert_eq!(status, 200, "{rec}");
    rec
}

#[tokio::test]
async fn each_attempt_is_its_own_record_and_the_chain_is_visible() {
    let Some(d) = daemon_with(
        json!({"max_attempts": 4, "backoff_ms": 100, "max_backoff_ms": 150, "on": ["E002"]}),
    )
    .await
    else {
        return;
    };
    let t0 = Instant::now();
    let (status, last) = d.invoke("flaky", "", json!({"succeed_at": 3})).await;
    assert_eq!(status, 200, "{last}");
    assert_eq!(last["state"], "completed", "{last:#}");
    assert_eq!(last["attempt"], 3);
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "100 then 150 ms of backoff"
    );
    let first = last["retry_of"]
        .as_str()
        .expect("linked to the first")
        .to_owned();

    let shown = get(&d, &first).await;
    assert_eq!(shown["state"], "failed");
    assert_eq!(shown["error"]["code"], "E002");
    assert_eq!(shown["attempt"], 1);
    assert!(
        shown["stdout"].as_str().unwrap().contains("attempt 1"),
        "the failed attempt's output is kept: {shown}"
    );
    let chain: Vec<String> = shown["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(chain.len(), 3, "{shown}");
    assert_eq!(chain[0], first);
    assert_eq!(chain[2], last["id"].as_str().unwrap());
    assert_eq!(shown["retried_by"], chain[1].as_str());
    let second = get(&d, &chain[1]).await;
    assert_eq!(
        (second["attempt"].as_u64(), second["retry_of"].as_str()),
        (Some(2), Some(first.as_str()))
    );
    assert_eq!(
        get(&d, &chain[2]).await["chain"],
        shown["chain"],
        "every member shows the chain"
    );

    let out = Command::new(bin_dir().join("runwarm"))
        .arg("--socket")
        .arg(d.socket())
        .args(["executions", "--chain", &chain[1]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains(&first) && rows[0].contains("failed"),
        "{text}"
    );
    assert!(rows[2].contains("completed"), "{text}");
}

#[tokio::test]
async fn only_listed_outcomes_are_retried_and_the_limit_holds() {
    let Some(d) = daemon_with(json!({"max_attempts": 2, "backoff_ms": 10, "on": ["E004"]})).await
    else {
        return;
    };
    let (_, rec) = d.invoke("flaky", "", json!({"succeed_at": 2})).await;
    assert_eq!(
        (rec["state"].as_str(), rec["attempt"].as_u64()),
        (Some("failed"), Some(1)),
        "E002 is not listed: {rec}"
    );
    drop(d);
    let Some(d) = daemon_with(json!({"max_attempts": 2, "backoff_ms": 10, "on": ["E002"]})).await
    else {
        return;
    };
    let (_, rec) = d.invoke("flaky", "", json!({"succeed_at": 5})).await;
    assert_eq!(
        (rec["state"].as_str(), rec["attempt"].as_u64()),
        (Some("failed"), Some(2)),
        "{rec}"
    );
    // A policy the daemon cannot honour is refused at registration.
    let (status, problem) = d
        .call(
            Method::POST,
            "/v1/scripts",
            Some(
                json!({"name": "bad", "manifest": {"runtime": "python3", "entry": "main.py",
                "retry": {"on": ["E006"]}}, "files": {"main.py": FLAKY}}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn an_attempt_waiting_for_its_backoff_survives_a_kill_9() {
    let Some(mut d) =
        daemon_with(json!({"max_attempts": 2, "backoff_ms": 6000, "on": ["E002"]})).await
    else {
        return;
    };
    let body = serde_json::to_vec(&json!({})).unwrap();
    let (status, accepted) = d
        .raw(
            Method::POST,
            "/v1/scripts/flaky/invoke",
            &[("prefer", "respond-async")],
            Some(body),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let first = accepted["id"].as_str().unwrap().to_owned();
    // The first attempt fails and the second waits six seconds: kill the daemon meanwhile.
    let until = Instant::now() + Duration::from_secs(60);
    let next = loop {
        let rec = get(&d, &first).await;
        if let Some(next) = rec["retried_by"].as_str() {
            break next.to_owned();
        }
        assert!(
            Instant::now() < until,
            "first attempt not retried: {rec}\n{}",
            d.report()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = get(&d, &next).await;
    let not_before = waiting["timings"]["not_before"]
        .as_str()
        .unwrap_or_else(|| panic!("the waiting attempt names its start: {waiting}"))
        .to_owned();
    let not_before = humantime::parse_rfc3339(&not_before).unwrap();
    d.kill9();
    d.restart().await;
    let until = Instant::now() + Duration::from_secs(60);
    let rec = loop {
        let rec = get(&d, &next).await;
        if ["completed", "failed"].contains(&rec["state"].as_str().unwrap_or("")) {
            break rec;
        }
        assert!(
            Instant::now() < until,
            "the waiting attempt did not run after the restart: {rec}\n{}",
            d.report()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rec["attempt"], 2, "{rec}");
    assert_eq!(rec["retry_of"], first.as_str());
    assert_eq!(get(&d, &first).await["chain"], json!([first, next]));
    // The restart did not cut the backoff short: the attempt started when it was due.
    let started = humantime::parse_rfc3339(rec["timings"]["started_at"].as_str().unwrap()).unwrap();
    assert!(
        started >= not_before,
        "started {started:?} before its backoff ended at {not_before:?}: {rec}"
    );
}
