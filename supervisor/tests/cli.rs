//! The built `runwarm` binary: help, usage errors, a missing daemon, and exit codes against a
//! fake daemon that answers with canned records and problems.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness helpers: a failed setup should fail the test loudly"
)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

fn runwarm(args: &[&str], socket: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runwarm"))
        .args(args)
        .env("RUNWARM_SOCKET", socket)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("runs the runwarm binary")
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_documents_the_exit_codes() {
    let out = runwarm(&["invoke", "--help"], Path::new("/nonexistent.sock"));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0  success",
        "1  the script failed",
        "2  usage",
        "3  timeout",
        "4  rejected",
        "5  system error",
    ] {
        assert!(help.contains(line), "{line:?} missing from\n{help}");
    }
    let out = runwarm(&["--help"], Path::new("/nonexistent.sock"));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("invoke"));
}

#[test]
fn bad_usage_exits_2() {
    let missing_socket = Path::new("/nonexistent/runwarm.sock");
    for args in [
        &["invoke"][..],
        &["frobnicate"],
        &["invoke", "hello", "--timeout", "soon"],
        &["invoke", "hello", "-d", "{not json"],
        &["invoke", "hello", "-d", "@/nonexistent/payload.json"],
        &["invoke", "Not A Name"],
    ] {
        let out = runwarm(args, missing_socket);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", describe(&out));
    }
}

#[test]
fn a_missing_daemon_exits_5_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    for args in [&["ls"][..], &["invoke", "hello"]] {
        let out = runwarm(args, &socket);
        assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error: cannot connect to runwarmd"),
            "{stderr}"
        );
        assert!(stderr.contains("\nhint: is runwarmd running?"), "{stderr}");
        assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
    }
}

/// A daemon on a tempdir socket answering by script name: `ok` completes, `boom` fails with
/// E002, `slow` times out, `crash` fails with E005, `strict` refuses the payload, `busy` is
/// overloaded, `later` accepts asynchronously.
struct FakeDaemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

fn answer_for(path: &str) -> (u16, Value) {
    let record = |state: &str, error: Value, result: Value| {
        json!({"id": "0193-x", "script": "s", "version": "sha256:1", "state": state,
               "result": result, "error": error, "stdout": "printed\n", "stderr": ""})
    };
    let error =
        |code: &str, kind: &str| json!({"code": code, "kind": kind, "message": "went wrong"});
    match path {
        "/v1/scripts/ok/invoke" => (200, record("completed", Value::Null, json!({"answer": 42}))),
        "/v1/scripts/boom/invoke" => (
            200,
            record("failed", error("E002", "ValueError"), Value::Null),
        ),
        "/v1/scripts/slow/invoke" => (
            200,
            record("timeout", error("E004", "Timeout"), Value::Null),
        ),
        "/v1/scripts/crash/invoke" => (
            200,
            record("failed", error("E005", "ExecutorCrashed"), Value::Null),
        ),
        "/v1/scripts/strict/invoke" => (
            400,
            json!({"type": "about:blank", "title": "invalid parameters",
            "status": 400, "detail": "1 violation", "code": "E006",
            "violations": [{"pointer": "/name", "message": "must be a string"}]}),
        ),
        "/v1/scripts/busy/invoke" => (
            429,
            json!({"title": "overloaded", "status": 429, "code": "E006",
            "hint": "retry later"}),
        ),
        "/v1/scripts/later/invoke" => (202, json!({"id": "0193-async"})),
        "/v1/scripts" => (
            200,
            json!([{"name": "ok", "runtime": "python3",
            "latest_version": "sha256:0123456789abcdef0123", "tags": ["demo"], "disabled": false,
            "description": "says ok"}]),
        ),
        "/v1/executions/e1" => (
            200,
            json!({"id": "e1", "state": "completed", "stdout": "hello\n",
            "stderr": "", "result": 1, "error": null}),
        ),
        "/v1/executions/e2" => (
            200,
            record("failed", error("E002", "ValueError"), Value::Null),
        ),
        "/v1/info" => (
            503,
            json!({"title": "not ready", "status": 503, "code": "E005"}),
        ),
        _ => (
            404,
            json!({"title": "unknown script", "status": 404, "code": "E006"}),
        ),
    }
}

const SSE_E1: &[u8] = b": ping\n\nevent: state\ndata: {\"state\":\"running\"}\n\n\
event: stdout\ndata: {\"line\":\"hello\"}\n\nevent: state\ndata: {\"state\":\"completed\"}\n\n";

fn fake_daemon() -> FakeDaemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("d.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(std_listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service =
                        service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                            if req.uri().path() == "/v1/executions/e1/events" {
                                return Ok(hyper::Response::builder()
                                    .header("content-type", "text/event-stream")
                                    .body(Full::new(bytes::Bytes::from_static(SSE_E1)))
                                    .unwrap());
                            }
                            let (status, body) = answer_for(req.uri().path());
                            let content_type = if status >= 400 {
                                "application/problem+json"
                            } else {
                                "application/json"
                            };
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", content_type)
                                    .body(Full::new(bytes::Bytes::from(body.to_string())))
                                    .unwrap(),
                            )
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    FakeDaemon { _dir: dir, socket }
}

#[test]
fn invocation_outcomes_become_the_documented_exit_codes() {
    let daemon = fake_daemon();
    for (script, code) in [
        ("ok", 0),
        ("boom", 1),
        ("slow", 3),
        ("strict", 4),
        ("busy", 4),
        ("nope", 4),
        ("crash", 5),
        ("later", 0),
    ] {
        let out = runwarm(&["invoke", script], &daemon.socket);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{script}\n{}",
            describe(&out)
        );
    }
    let out = runwarm(&["info"], &daemon.socket);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
}

#[test]
fn invoke_prints_the_result_the_error_or_the_record() {
    let daemon = fake_daemon();
    let ok = runwarm(&["invoke", "ok", "-d", "{\"x\": 1}"], &daemon.socket);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "{\"answer\":42}\n",
        "{}",
        describe(&ok)
    );

    let shown = runwarm(&["invoke", "ok", "--show-output"], &daemon.socket);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "printed\n{\"answer\":42}\n"
    );

    let record = runwarm(&["invoke", "boom", "--json"], &daemon.socket);
    let record: Value = serde_json::from_slice(&record.stdout).unwrap();
    assert_eq!(record["error"]["code"], "E002");

    let boom = runwarm(&["invoke", "boom"], &daemon.socket);
    assert!(boom.stdout.is_empty());
    assert!(String::from_utf8_lossy(&boom.stderr).contains("error: E002 ValueError: went wrong"));

    let strict = runwarm(&["invoke", "strict"], &daemon.socket);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("  /name: must be a string"), "{stderr}");

    let busy = runwarm(&["invoke", "busy"], &daemon.socket);
    assert!(String::from_utf8_lossy(&busy.stderr).contains("\nhint: retry later"));

    let later = runwarm(&["invoke", "later", "--async"], &daemon.socket);
    assert_eq!(String::from_utf8_lossy(&later.stdout), "0193-async\n");
}

#[test]
fn ls_prints_a_table_and_api_passes_answers_through() {
    let daemon = fake_daemon();
    let ls = runwarm(&["ls"], &daemon.socket);
    assert_eq!(ls.status.code(), Some(0), "{}", describe(&ls));
    let table = String::from_utf8_lossy(&ls.stdout);
    assert!(
        table.lines().next().unwrap_or_default().starts_with("NAME"),
        "{table}"
    );
    assert!(
        table.contains("sha256:0123456789ab ") && table.contains("says ok"),
        "{table}"
    );

    let api = runwarm(&["api", "GET", "/v1/nothing"], &daemon.socket);
    assert_eq!(api.status.code(), Some(4));
    let body: Value = serde_json::from_slice(&api.stdout).unwrap();
    assert_eq!(body["status"], 404);
}

#[test]
fn logs_follow_the_event_stream_or_poll_and_exit_with_the_outcome() {
    let daemon = fake_daemon();
    let streamed = runwarm(&["logs", "-f", "e1"], &daemon.socket);
    assert_eq!(streamed.status.code(), Some(0), "{}", describe(&streamed));
    assert_eq!(String::from_utf8_lossy(&streamed.stdout), "hello\n");

    // No event stream for e2 (404): the client polls the record instead.
    let polled = runwarm(&["logs", "-f", "e2"], &daemon.socket);
    assert_eq!(polled.status.code(), Some(1), "{}", describe(&polled));
    assert_eq!(String::from_utf8_lossy(&polled.stdout), "printed\n");
    assert!(String::from_utf8_lossy(&polled.stderr).contains("E002 ValueError"));

    let plain = runwarm(&["logs", "e1"], &daemon.socket);
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "hello\n");

    let unknown = runwarm(&["logs", "-f", "nope"], &daemon.socket);
    assert_eq!(unknown.status.code(), Some(4), "{}", describe(&unknown));
}
