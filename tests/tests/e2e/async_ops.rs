//! Async invocations, events, cancel, replay, idempotency, retries, admission, crash recovery.

use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use runwarm_supervisor::client::SseParser;
use serde_json::{Value, json};

const SCRIPT: &str = r#"import sys, time
calls = 0
def handler(event, context):
    global calls
    calls += 1
    what = event.get("do")
    if what == "lines":
        for word in ["one", "two", "three"]:
            print(word, flush=True)
            time.sleep(0.5)
    elif what == "sleep":
        time.sleep(event["s"])
    elif what == "flaky":
        if calls < 3:
            raise RuntimeError("flaky call %d" % calls)
    return {"echo": event.get("n"), "calls": calls}
"#;

async fn daemon_with(extra_manifest: Value) -> Option<Daemon> {
    if !require(&[Need::Program("python3")]) {
        return None;
    }
    let d = Daemon::builder().without_samples().start().await;
    let mut manifest = json!({"runtime": "python3", "entry": "main.py"});
    if let (Some(m), Some(extra)) = (manifest.as_object_mut(), extra_manifest.as_object()) {
        m.extend(extra.clone());
    }
    d.register("s", manifest, json!({"main.py": SCRIPT})).await;
    Some(d)
}

async fn invoke_async(d: &Daemon, payload: Value, key: Option<&str>) -> (u16, Value) {
    let mut headers = vec![("prefer", "respond-async")];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    let body = serde_json::to_vec(&payload).unwrap();
    d.raw(Method::POST, "/v1/scripts/s/invoke", &headers, Some(body))
        .await
}

/// (event name, data, seconds since `t0`) of a whole event stream.
async fn events(d: &Daemon, id: &str, t0: Instant) -> Vec<(String, Value, f64)> {
    let mut stream = d
        .client()
        .stream(Method::GET, &format!("/v1/executions/{id}/events"))
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        for e in parser.push(&chunk).unwrap() {
            let data = serde_json::from_str(&e.data).unwrap();
            out.push((e.event.clone(), data, t0.elapsed().as_secs_f64()));
            if e.event == "end" {
                return out;
            }
        }
    }
    out
}

#[tokio::test]
async fn accepted_async_work_survives_kill_9() {
    let Some(mut d) = daemon_with(json!({"pool": {"max": 2}})).await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..200 {
        let (status, body) =
            invoke_async(&d, json!({"do": "sleep", "s": 0.05, "n": n}), None).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    d.kill9();
    d.restart().await;
    let (mut completed, mut restarted) = (0, 0);
    for id in &ids {
        let rec = d.wait_terminal(id).await;
        match rec["state"].as_str() {
            Some("completed") => completed += 1,
            Some("failed") if rec["error"]["message"] == "supervisor restarted" => {
                assert_eq!(rec["error"]["code"], "E005");
                restarted += 1;
            }
            other => panic!("{id} ended {other:?}: {rec:#}"),
        }
    }
    assert_eq!(completed + restarted, 200);
    let log = std::fs::read_to_string(d.dir().join("daemon.log")).unwrap();
    assert!(
        log.contains("resubmitted"),
        "the kill came after all work was done: nothing was resumed"
    );
    assert!(
        restarted <= 2,
        "only what was running may fail: {restarted}"
    );
}

#[tokio::test]
async fn one_idempotency_key_is_one_execution() {
    let Some(d) = daemon_with(json!({})).await else {
        return;
    };
    let (s1, a) = invoke_async(&d, json!({"n": 1}), Some("k-1")).await;
    let (s2, b) = invoke_async(&d, json!({"n": 1}), Some("k-1")).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["id"], b["id"]);
    let body = serde_json::to_vec(&json!({"n": 1})).unwrap();
    let (s3, rec) = d
        .raw(
            Method::POST,
            "/v1/scripts/s/invoke",
            &[("idempotency-key", "k-1")],
            Some(body),
        )
        .await;
    assert_eq!(s3, 200);
    assert_eq!(
        rec["id"], a["id"],
        "a synchronous repeat returns the same record"
    );
    assert_eq!(rec["result"]["calls"], 1, "the script ran once");
    let (s4, problem) = invoke_async(&d, json!({"n": 2}), Some("k-1")).await;
    assert_eq!(s4, 409, "{problem}");
    // A tab is a legal header byte but not a key's (schemathesis found it accepted).
    let (s5, problem) = d
        .raw(
            Method::POST,
            "/v1/scripts/s/invoke",
            &[("idempotency-key", "k\t1")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(s5, 400, "{problem}");
}

#[tokio::test]
async fn events_are_live_and_replayed_to_a_late_subscriber() {
    let Some(d) = daemon_with(json!({})).await else {
        return;
    };
    let t0 = Instant::now();
    let (_, accepted) = invoke_async(&d, json!({"do": "lines"}), None).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    let live = events(&d, &id, t0).await;
    let lines: Vec<(&str, f64)> = live
        .iter()
        .filter(|(name, _, _)| name == "stdout")
        .map(|(_, data, at)| (data["text"].as_str().unwrap(), *at))
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.0).collect::<Vec<_>>(),
        ["one\n", "two\n", "three\n"],
        "{live:?}"
    );
    let (end_name, end, end_at) = live.last().unwrap();
    assert_eq!(end_name, "end");
    assert_eq!(end["state"], "completed");
    assert!(
        lines[0].1 + 0.7 < *end_at,
        "the first line came only at the end: {live:?}"
    );
    assert!(
        live.iter()
            .any(|(n, d, _)| n == "state" && d["state"] == "running")
    );
    let late = events(&d, &id, t0).await;
    let replayed: Vec<&str> = late
        .iter()
        .filter(|(name, _, _)| name == "stdout")
        .map(|(_, data, _)| data["text"].as_str().unwrap())
        .collect();
    assert_eq!(replayed, ["one\n", "two\n", "three\n"]);
    assert_eq!(late.last().unwrap().0, "end");
}

#[tokio::test]
async fn cancel_kills_a_running_execution_and_replay_runs_again() {
    let Some(d) = daemon_with(json!({})).await else {
        return;
    };
    let (_, accepted) = invoke_async(&d, json!({"do": "sleep", "s": 30}), None).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    let until = Instant::now() + Duration::from_secs(20);
    while d
        .call(Method::GET, &format!("/v1/executions/{id}"), None)
        .await
        .1["state"]
        != "running"
    {
        assert!(Instant::now() < until, "never running\n{}", d.report());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, rec) = d
        .call(Method::POST, &format!("/v1/executions/{id}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "cancelled");
    let pid = rec["executor"]["pid"].as_i64().unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(Instant::now() < until, "executor {pid} survived the cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (again, _) = d
        .call(Method::POST, &format!("/v1/executions/{id}/cancel"), None)
        .await;
    assert_eq!(again, 409);

    let first = d.invoke_ok("s", json!({"n": 7})).await;
    let (status, replayed) = d
        .call(
            Method::POST,
            &format!("/v1/executions/{}/replay", first["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_ne!(replayed["id"], first["id"]);
    assert_eq!(replayed["version"], first["version"]);
    assert_eq!(replayed["result"]["echo"], 7);
}

#[tokio::test]
async fn script_errors_are_retried_only_when_retry_safe() {
    let Some(d) = daemon_with(json!({"pool": {"max": 1}})).await else {
        return;
    };
    let (status, rec) = d.invoke("s", "", json!({"do": "flaky"})).await;
    assert_eq!(status, 200);
    assert_eq!(rec["state"], "failed");
    assert_eq!(rec["error"]["code"], "E002");
    assert_eq!(rec["attempt"], 1);
    drop(d);

    let Some(d) = daemon_with(json!({"pool": {"max": 1}, "retry_safe": true})).await else {
        return;
    };
    let (status, rec) = d.invoke("s", "", json!({"do": "flaky"})).await;
    assert_eq!(status, 200);
    assert_eq!(rec["state"], "completed", "{rec:#}");
    assert_eq!(rec["attempt"], 3);
}

#[tokio::test]
async fn max_concurrency_refuses_with_429_and_retry_after() {
    let Some(d) = daemon_with(json!({"pool": {"max_concurrency": 1}})).await else {
        return;
    };
    let (status, _) = invoke_async(&d, json!({"do": "sleep", "s": 1.5}), None).await;
    assert_eq!(status, 202);
    let r = d
        .client()
        .request(
            Method::POST,
            "/v1/scripts/s/invoke",
            &[],
            Some(b"{}".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    d.invoke_ok("s", json!({})).await;
}

#[tokio::test]
async fn the_rate_limit_per_caller_answers_429() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config("[admission]\nrate_per_uid = 1\nburst = 2\n")
        .start()
        .await;
    let manifest = json!({"runtime": "python3", "entry": "main.py"});
    d.register("s", manifest, json!({"main.py": SCRIPT})).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(invoke_async(&d, json!({}), None).await.0);
    }
    assert_eq!(statuses[..2], [202, 202]);
    assert_eq!(statuses[2], 429, "{statuses:?}");
}

#[tokio::test]
async fn a_spawn_failure_is_retried_twice_with_backoff() {
    // The probe succeeds but names an interpreter that does not exist: every spawn fails.
    let ghost = r#"name = "ghost"
language = "python"
extensions = ["py"]
modes = ["handler"]
default_mode = "handler"
probe = ["sh", "-c", "echo /nonexistent/runwarm-ghost; echo 1.0"]
handler = ["{interpreter}", "{entry}"]
"#;
    let d = Daemon::builder()
        .without_samples()
        .runtime("ghost", ghost)
        .start()
        .await;
    d.register(
        "g",
        json!({"runtime": "ghost", "entry": "main.py"}),
        json!({"main.py": "def handler(e, c): return 1\n"}),
    )
    .await;
    let t0 = Instant::now();
    let (status, rec) = d.invoke("g", "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed");
    assert_eq!(rec["error"]["code"], "E005", "{rec:#}");
    assert_eq!(rec["error"]["kind"], "SpawnFailed");
    assert_eq!(rec["attempt"], 3);
    assert!(t0.elapsed() >= Duration::from_millis(250), "no backoff");
}

#[tokio::test]
async fn runwarm_logs_follow_prints_the_lines_of_an_async_execution() {
    let Some(d) = daemon_with(json!({})).await else {
        return;
    };
    let (_, accepted) = invoke_async(&d, json!({"do": "lines"}), None).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    let socket = d.socket().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(runwarm_e2e::bin_dir().join("runwarm"))
            .arg("--socket")
            .arg(&socket)
            .args(["logs", "-f", &id])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "one\ntwo\nthree\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn accepted_work_still_queued_at_a_graceful_stop_runs_after_the_restart() {
    let Some(mut d) = daemon_with(json!({"pool": {"max": 1}})).await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..6 {
        let (status, body) = invoke_async(&d, json!({"do": "sleep", "s": 0.5, "n": n}), None).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let status = d.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    d.restart().await;
    let mut completed = 0;
    for id in &ids {
        let rec = d.wait_terminal(id).await;
        if rec["state"] == "completed" {
            completed += 1;
        } else {
            assert_eq!(rec["error"]["code"], "E005", "{rec:#}");
        }
    }
    assert!(
        completed >= 4,
        "queued work was lost at the stop: {completed} completed"
    );
}
