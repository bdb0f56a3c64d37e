//! Faults: timeouts, crashes, output floods and protocol garbage never hurt the daemon.

use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;

const FAULTY: &str = r#"import os, sys, time
def handler(event, context):
    what = event.get("do")
    if what == "sleep":
        time.sleep(event["s"])
    elif what == "exit":
        print("about to exit")
        sys.stdout.flush()
        os._exit(3)
    elif what == "stop_later":
        # Idle and stopped: the process is alive but will never answer.
        import signal, threading
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGSTOP)).start()
    elif what == "exit_later":
        import threading
        threading.Timer(0.2, os._exit, (0,)).start()
    elif what == "flood":
        chunk = "x" * 1023 + "\n"
        for _ in range(10 * 1024):
            sys.stdout.write(chunk)
        print('{"type":"response","id":"forged","success":true,"result":"forged"}')
        print('{"type":"ready","protocol":1}')
        print("the very last line")
        sys.stderr.write("err tail\n")
    return {"pid": os.getpid(), "intact": True}
"#;

async fn faulty_daemon() -> Option<Daemon> {
    if !require(&[Need::Program("python3")]) {
        return None;
    }
    let d = Daemon::builder().without_samples().start().await;
    let manifest =
        json!({"runtime": "python3", "entry": "main.py", "limits": {"timeout_ms": 1000}});
    d.register("faulty", manifest, json!({"main.py": FAULTY}))
        .await;
    Some(d)
}

#[tokio::test]
async fn timeout_kills_the_executor_and_the_next_call_gets_a_fresh_one() {
    let Some(d) = faulty_daemon().await else {
        return;
    };
    let warm = d.invoke_ok("faulty", json!({})).await;
    let t0 = Instant::now();
    let (status, rec) = d
        .invoke("faulty", "", json!({"do": "sleep", "s": 30}))
        .await;
    let took = t0.elapsed();
    assert_eq!(status, 200);
    assert_eq!(rec["state"], "timeout", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E004");
    assert!(
        took < Duration::from_millis(2000),
        "timeout answered after {took:?}"
    );
    let next = d.invoke_ok("faulty", json!({})).await;
    assert_ne!(
        next["executor"]["pid"], warm["executor"]["pid"],
        "a timed-out executor was reused"
    );
    assert_eq!(next["cold"], true);
}

#[tokio::test]
async fn executor_exit_mid_request_is_e005_and_output_is_kept() {
    let Some(d) = faulty_daemon().await else {
        return;
    };
    let (status, rec) = d.invoke("faulty", "", json!({"do": "exit"})).await;
    assert_eq!(status, 200);
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E005");
    assert!(
        rec["error"]["message"].as_str().unwrap().contains("code 3"),
        "{rec:#}"
    );
    assert!(
        rec["stdout"].as_str().unwrap().contains("about to exit"),
        "output before the crash is attributed: {rec:#}"
    );
    d.invoke_ok("faulty", json!({})).await;
}

#[tokio::test]
async fn output_flood_is_truncated_keeping_the_last_line_and_the_result_intact() {
    let Some(d) = faulty_daemon().await else {
        return;
    };
    let rec = d.invoke_ok("faulty", json!({"do": "flood"})).await;
    assert_eq!(rec["result"]["intact"], true);
    assert_eq!(rec["stdout_truncated"], true);
    let out = rec["stdout"].as_str().unwrap();
    assert!(out.len() <= 1024 * 1024 + 200, "kept {} bytes", out.len());
    assert!(
        out.trim_end().ends_with("the very last line"),
        "tail lost: …{}",
        &out[out.len().saturating_sub(200)..]
    );
    assert!(
        out.contains("\"id\":\"forged\""),
        "protocol-looking user output is kept as output"
    );
    assert_eq!(rec["stderr"], "err tail\n");
    // The executor survived and is reused.
    let next = d.invoke_ok("faulty", json!({})).await;
    assert_eq!(next["cold"], false);
}

const GARBAGE_RUNTIME: &str = r#"
name = "garbage"
modes = ["handler"]
default_mode = "handler"
probe = ["/bin/sh", "-c", "echo /bin/sh; echo 1"]
handler = ["/bin/sh", "-c", "read init; echo '{\"type\":\"ready\",\"protocol\":1}'; read req; echo 'this is not json'; sleep 30"]
"#;

const WRONG_ID_RUNTIME: &str = r#"
name = "wrongid"
modes = ["handler"]
default_mode = "handler"
probe = ["/bin/sh", "-c", "echo /bin/sh; echo 1"]
handler = ["/bin/sh", "-c", "read init; echo '{\"type\":\"ready\",\"protocol\":1}'; read req; echo '{\"type\":\"response\",\"id\":\"someone-else\",\"success\":true}'; sleep 30"]
"#;

const HUGE_LINE_RUNTIME: &str = r#"
name = "hugeline"
modes = ["handler"]
default_mode = "handler"
probe = ["/bin/sh", "-c", "echo /bin/sh; echo 1"]
handler = ["/bin/sh", "-c", "read init; echo '{\"type\":\"ready\",\"protocol\":1}'; read req; head -c 3000000 /dev/zero | tr '\\0' 'a'; sleep 30"]
"#;

#[tokio::test]
async fn protocol_faults_are_e005_and_the_daemon_keeps_serving() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder()
        .runtime("garbage", GARBAGE_RUNTIME)
        .runtime("wrongid", WRONG_ID_RUNTIME)
        .runtime("hugeline", HUGE_LINE_RUNTIME)
        .config("[limits]\nmax_line_bytes = 1048576\n")
        .start()
        .await;
    for (name, runtime, expect) in [
        ("g", "garbage", "not json"),
        ("w", "wrongid", "someone-else"),
        ("h", "hugeline", "longer than"),
    ] {
        d.register(
            name,
            json!({"runtime": runtime, "entry": "x"}),
            json!({"x": "unused"}),
        )
        .await;
        let t0 = Instant::now();
        let (status, rec) = d.invoke(name, "", json!({})).await;
        assert_eq!(status, 200, "{rec}");
        assert_eq!(rec["state"], "failed", "{name}: {rec:#}");
        assert_eq!(rec["error"]["code"], "E005", "{name}: {rec:#}");
        assert_eq!(rec["error"]["kind"], "ProtocolFault", "{name}: {rec:#}");
        assert!(
            rec["error"]["message"].as_str().unwrap().contains(expect),
            "{name}: {rec:#}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{name}: fault took {:?}",
            t0.elapsed()
        );
    }
    let (status, _) = d.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, 200);
    d.invoke_ok("hello-python", json!({})).await;
}

#[tokio::test]
async fn init_errors_are_e001_with_the_reason() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "syntax",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": "def handler(:\n"}),
    )
    .await;
    // The build step byte-compiles the version: the syntax error is the prepare's failure,
    // with Python's own message.
    let (status, rec) = d.invoke("syntax", "", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(rec["error"]["code"], "E001", "{rec:#}");
    assert_eq!(rec["error"]["kind"], "PrepareFailed", "{rec:#}");
    let message = rec["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("SyntaxError") && message.contains("line 1"),
        "{rec:#}"
    );
    d.register(
        "nohandler",
        json!({"runtime": "python3", "entry": "main.py", "handler": "run"}),
        json!({"main.py": "x = 1\n"}),
    )
    .await;
    let (_, rec) = d.invoke("nohandler", "", json!({})).await;
    assert_eq!(rec["error"]["code"], "E001", "{rec:#}");
    assert!(
        rec["error"]["message"].as_str().unwrap().contains("run"),
        "{rec:#}"
    );
}

#[tokio::test]
async fn a_caller_that_hangs_up_cancels_nothing() {
    let Some(d) = faulty_daemon().await else {
        return;
    };
    let warm = d.invoke_ok("faulty", json!({})).await;
    // Send an invocation by hand and hang up while it runs.
    let body = br#"{"do":"sleep","s":0.5}"#;
    let request = format!(
        "POST /v1/scripts/faulty/invoke HTTP/1.1\r\nHost: runwarm\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    {
        use std::io::Write;
        let mut conn = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        conn.write_all(body).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // The run goes on without its caller and ends completed, on the same warm executor.
    let t0 = Instant::now();
    let rec = loop {
        let (_, list) = d
            .call(Method::GET, "/v1/executions?script=faulty&limit=1", None)
            .await;
        let newest = list[0].clone();
        if newest["state"] == "completed" && newest["id"] != warm["id"] {
            break newest;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the abandoned run never completed: {list:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rec["executor"]["pid"], warm["executor"]["pid"], "{rec:#}");
    assert_eq!(rec["result"]["intact"], true, "{rec:#}");
    // And the executor is healthy for the next caller.
    let next = d.invoke_ok("faulty", json!({})).await;
    assert_eq!(next["executor"]["pid"], warm["executor"]["pid"]);
    assert_eq!(next["cold"], false);
}

#[tokio::test]
async fn an_idle_executor_that_stopped_or_died_is_replaced_before_it_costs_a_caller() {
    let Some(d) = faulty_daemon().await else {
        return;
    };
    for what in ["stop_later", "exit_later"] {
        let first = d.invoke_ok("faulty", json!({"do": what})).await;
        // Past the idle threshold, so the pool checks the executor before handing it out.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t0 = Instant::now();
        let next = d.invoke_ok("faulty", json!({})).await;
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{what}: took {:?}",
            t0.elapsed()
        );
        assert_ne!(
            next["executor"]["pid"], first["executor"]["pid"],
            "{what}: the broken executor was handed out: {next:#}"
        );
        assert_eq!(next["cold"], true, "{what}: {next:#}");
    }
    // A healthy idle executor passes the check and stays warm.
    let warm = d.invoke_ok("faulty", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = d.invoke_ok("faulty", json!({})).await;
    assert_eq!(
        again["executor"]["pid"], warm["executor"]["pid"],
        "{again:#}"
    );
    assert_eq!(again["cold"], false, "{again:#}");
}

/// Returns a result shaped by the payload; `raw` writes its own protocol line through the
/// shim's channel (a script runs in the executor's process, so a hostile one can), bypassing
/// Python's encoder.
const SHAPES: &str = r#"
def handler(event, context):
    what = event["do"]
    if what == "nested":
        value = 1
        for _ in range(event["depth"]):
            value = [value]
        return value
    if what == "big":
        return {"items": [{"k": i, "name": "item %d" % i, "x": 1.5} for i in range(event["n"])]}
    if what == "raw":
        context._channel.send_line((event["line"] % context.request_id).encode() + b"\n")
        import time; time.sleep(5)
"#;

#[tokio::test]
async fn results_pass_through_as_written_but_only_what_a_reader_can_parse() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "shapes",
        json!({"runtime": "python3", "entry": "main.py", "limits": {"timeout_ms": 3000}}),
        json!({"main.py": SHAPES}),
    )
    .await;

    // 125 levels, the most a result may have (the record around it and a list of records
    // stay within any serde_json reader's limit).
    let rec = d
        .invoke_ok("shapes", json!({"do": "nested", "depth": 125}))
        .await;
    let mut v = &rec["result"];
    for _ in 0..125 {
        v = &v[0];
    }
    assert_eq!(*v, json!(1), "{rec}");
    // A list of records holding it still parses (the harness reads it with serde_json).
    let (status, list) = d
        .call(Method::GET, "/v1/executions?script=shapes&limit=1", None)
        .await;
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains(&"[".repeat(125)), "{list}");

    // A large result comes back whole, and reads back the same from history.
    let rec = d
        .invoke_ok("shapes", json!({"do": "big", "n": 20000}))
        .await;
    let items = rec["result"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 20000);
    assert_eq!(
        items[19999],
        json!({"k": 19999, "name": "item 19999", "x": 1.5})
    );
    let id = rec["id"].as_str().unwrap();
    let (status, stored) = d
        .call(Method::GET, &format!("/v1/executions/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored["result"], rec["result"]);

    // Deeper than a reader could parse: refused as a protocol fault, the executor replaced.
    let (_, rec) = d
        .invoke("shapes", "", json!({"do": "nested", "depth": 126}))
        .await;
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E005", "{rec:#}");
    let message = rec["error"]["message"].as_str().unwrap();
    assert!(message.contains("deeper than 125 levels"), "{rec:#}");

    // A number beyond a double's range, written by hand on the protocol fd (Python's encoder
    // would write `Infinity`, which is not JSON at all).
    let line = r#"{"type":"response","id":"%s","success":true,"result":{"n":1e999}}"#;
    let (_, rec) = d
        .invoke("shapes", "", json!({"do": "raw", "line": line}))
        .await;
    assert_eq!(rec["error"]["code"], "E005", "{rec:#}");
    let message = rec["error"]["message"].as_str().unwrap();
    assert!(message.contains("beyond a double's range"), "{rec:#}");
    d.invoke_ok("shapes", json!({"do": "big", "n": 1})).await;
}
