//! The fake daemon the CLI tests talk to: canned records, problems, prepares and event
//! streams on a tempdir socket, answered by script name.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// A daemon on a tempdir socket answering by script name: `ok` completes, `boom` fails with
/// E002, `slow` times out, `crash` fails with E005, `strict` refuses the payload, `busy` is
/// overloaded, `later` accepts asynchronously. Registrations answer by the registered name
/// (see [`registration`]).
pub struct FakeDaemon {
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
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
        "/v1/runtimes" => (
            200,
            json!([
                {"name": "bash", "language": "bash", "extensions": ["sh", "bash"],
                 "modes": ["command"], "available": true, "version": "5.2"},
                {"name": "python3", "language": "python", "extensions": ["py"],
                 "modes": ["handler", "command"], "available": true, "version": "3.12.1",
                 "limits": {"timeout_ms": 30000, "memory_mb": 256, "pids": 64, "cpu": 1.0},
                 "cache": {"entries": 3, "size_bytes": 432_345_678_u64, "hits": 12, "misses": 3,
                           "failures": 1, "last_prepare_ms": 14_230.0}},
            ]),
        ),
        "/v1/samples" => (
            200,
            json!([
                {"id": "hello-python", "runtime": "python3", "description": "greets"},
                {"id": "hello-node", "runtime": "node", "description": "greets too"},
                {"id": "port-check", "runtime": "python3", "description": "checks a port"},
            ]),
        ),
        "/v1/info" => (
            503,
            json!({"title": "not ready", "status": 503, "code": "E005"}),
        ),
        "/v1/executions/e1/cancel" => (200, record("cancelled", Value::Null, Value::Null)),
        "/v1/executions/done/cancel" => (
            409,
            json!({"title": "already-finished", "status": 409,
            "detail": "execution done already ended (completed); it cannot be cancelled"}),
        ),
        "/v1/executions/e1/replay" => (200, record("completed", Value::Null, json!("again"))),
        "/v1/executions/e2/replay" => (
            200,
            record("failed", error("E002", "ValueError"), Value::Null),
        ),
        // Newest first, as the daemon pages them; `old` was queued long ago.
        "/v1/executions" => (
            200,
            json!([
                {"id": "0193-c", "script": "s", "state": "completed", "stdout": "c1\nc2\n",
                 "stderr": "", "logs": [], "timings": {"queued_at": now_minus(60)}},
                {"id": "0193-b", "script": "s", "state": "failed", "stdout": "",
                 "stderr": "b-err\n", "logs": [{"level": "warn", "message": "careful"}],
                 "timings": {"queued_at": now_minus(120)}},
                {"id": "0193-a", "script": "s", "state": "completed", "stdout": "old\n",
                 "stderr": "", "logs": [], "timings": {"queued_at": now_minus(86_400)}},
            ]),
        ),
        "/v1/prewarm" => (
            202,
            json!({"scripts": [
                {"name": "ok", "version": "sha256:0123456789abcdef0123", "requested": 2, "started": 2},
                {"name": "broken", "version": "sha256:ffff", "requested": 2, "started": 1},
            ]}),
        ),
        "/v1/scripts/ok" => (
            200,
            json!({"name": "ok", "disabled": false, "latest": "sha256:0123456789abcdef0123",
            "tags": {"latest": "sha256:0123456789abcdef0123"}, "created_at": "2026-05-01T10:00:00.000Z",
            "description": "says ok", "runtime": "python3", "labels": [], "versions": 1}),
        ),
        "/v1/scripts/ok/disable" => (
            200,
            json!({"name": "ok", "disabled": true, "latest": "sha256:0123456789abcdef0123"}),
        ),
        "/v1/scripts/ok/versions" => (
            200,
            json!([{"id": "sha256:0123456789abcdef0123", "created_at": "2026-05-01T10:00:00.000Z",
            "runtime": "python3", "tags": ["latest"], "registered_by": {"uid": 4321, "gid": 4321}}]),
        ),
        _ => (
            404,
            json!({"title": "unknown script", "status": 404, "code": "E006"}),
        ),
    }
}

/// An RFC 3339 time `secs` before now, as records carry it.
fn now_minus(secs: u64) -> String {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_millis(then).to_string()
}

/// `GET /v1/pools` at its `call`-th time (from 0): `broken` fails a start after the first.
fn pools_at(call: usize) -> Value {
    json!([
        {"script": "ok", "version": "sha256:0123456789abcdef0123", "idle": 2, "busy": 0,
         "starting": 0, "start_failures": 0},
        {"script": "broken", "version": "sha256:ffff", "idle": 0, "busy": 0,
         "starting": 0, "start_failures": usize::from(call > 0)},
    ])
}

/// The version detail `show ok` reads.
fn ok_version() -> Value {
    json!({"id": "sha256:0123456789abcdef0123", "registered_by": {"uid": 4321, "gid": 4321},
        "manifest": {"runtime": "python3", "entry": "main.py", "handler": "handler",
            "params": {"type": "object", "properties": {"name": {"type": "string"}}},
            "limits": {"timeout_ms": 5000},
            "pool": {"min_warm": 0, "max": 4, "idle_ttl_s": 600, "max_requests": 10000}}})
}

/// The answer to `POST /v1/scripts`, by the registered name: `waits` is prepared after two
/// polls, `breaks` fails its prepare, `hangs` never finishes, anything else has no prepare. The
/// answer echoes the manifest's runtime so a test can see what the client chose.
fn registration(body: &[u8]) -> (u16, Value) {
    let body: Value = serde_json::from_slice(body).unwrap_or_default();
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    let mut answer = json!({"name": name, "version": format!("sha256:{name}"), "created": true,
        "runtime": body["manifest"]["runtime"]});
    if ["waits", "breaks", "hangs"].contains(&name.as_str()) {
        answer["prepare"] = json!("pending");
    }
    (201, answer)
}

/// The version's prepare at the `poll`-th `GET` (from 0).
fn prepare_at(name: &str, poll: usize) -> Value {
    match (name, poll) {
        ("waits", 0) | ("hangs", _) => json!({"state": "running", "step": "dependencies"}),
        ("waits", 1) => json!({"state": "running", "step": "build"}),
        ("waits", _) => json!({"state": "ready", "duration_ms": 2500.0,
            "dependencies": {"key": "d", "cached": true, "duration_ms": 0.0},
            "build": {"key": "b", "cached": false, "duration_ms": 2500.0}}),
        _ => json!({"state": "failed", "duration_ms": 900.0,
            "error": "the dependencies step exited with status 1\nno-such-package-xyz: not found"}),
    }
}

const SSE_E1: &[u8] = b": ping\n\nevent: state\ndata: {\"state\":\"running\"}\n\n\
event: stdout\ndata: {\"line\":\"hello\"}\n\nevent: state\ndata: {\"state\":\"completed\"}\n\n";

pub fn fake_daemon() -> FakeDaemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("d.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let polls = Arc::new(AtomicUsize::new(0));
    let pool_calls = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(std_listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let polls = Arc::clone(&polls);
                let pool_calls = Arc::clone(&pool_calls);
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let polls = Arc::clone(&polls);
                        let pool_calls = Arc::clone(&pool_calls);
                        async move {
                            let path = req.uri().path().to_owned();
                            if path == "/v1/scripts/slowok/invoke" {
                                // Long enough for a spinner, which a pipe must not see.
                                tokio::time::sleep(std::time::Duration::from_millis(900)).await;
                                let (_, body) = answer_for("/v1/scripts/ok/invoke");
                                return Ok(hyper::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(bytes::Bytes::from(body.to_string())))
                                    .unwrap());
                            }
                            if path == "/v1/executions/e1/events" {
                                return Ok(hyper::Response::builder()
                                    .header("content-type", "text/event-stream")
                                    .body(Full::new(bytes::Bytes::from_static(SSE_E1)))
                                    .unwrap());
                            }
                            let version = path
                                .strip_prefix("/v1/scripts/")
                                .and_then(|rest| rest.split_once("/versions/"));
                            let (status, body) =
                                if req.method() == hyper::Method::POST && path == "/v1/scripts" {
                                    let body = req.into_body().collect().await.unwrap().to_bytes();
                                    registration(&body)
                                } else if path == "/v1/pools" {
                                    (200, pools_at(pool_calls.fetch_add(1, Ordering::SeqCst)))
                                } else if let Some(("ok", _)) = version {
                                    (200, ok_version())
                                } else if let Some((name, _)) = version {
                                    let poll = polls.fetch_add(1, Ordering::SeqCst);
                                    (200, json!({"id": "v", "prepare": prepare_at(name, poll)}))
                                } else {
                                    answer_for(&path)
                                };
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
                        }
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
