//! The client against small fake daemons on a Unix socket in a tempdir.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use super::*;

struct FakeDaemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    connections: Arc<AtomicUsize>,
}

/// Echoes each request as JSON; `keep_alive = false` makes the server close after each answer.
fn echo_daemon(keep_alive: bool) -> FakeDaemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("d.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
                    let answer = if parts.uri.path() == "/events" {
                        hyper::Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                b"event: stdout\ndata: {\"line\":\"a\"}\n\nevent: end\ndata: {}\n\n",
                            )))
                    } else {
                        let echo = json!({
                            "method": parts.method.as_str(),
                            "uri": parts.uri.to_string(),
                            "content_type": header("content-type"),
                            "prefer": header("prefer"),
                            "idempotency_key": header("idempotency-key"),
                            "callback": header("runwarm-callback"),
                            "host": header("host"),
                            "body": String::from_utf8_lossy(&body),
                        });
                        hyper::Response::builder()
                            .status(if parts.uri.path() == "/missing" {
                                404
                            } else {
                                200
                            })
                            .body(http_body_util::Full::new(bytes::Bytes::from(
                                echo.to_string(),
                            )))
                    };
                    Ok::<_, Infallible>(answer.unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    FakeDaemon {
        _dir: dir,
        socket,
        connections,
    }
}

/// Answers one request per connection and then drops the socket without `Connection: close`,
/// as a daemon closing idle keep-alive connections does.
fn abrupt_daemon() -> FakeDaemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("d.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
            drop(stream);
        }
    });
    FakeDaemon {
        _dir: dir,
        socket,
        connections,
    }
}

#[tokio::test]
async fn a_request_round_trips() {
    let daemon = echo_daemon(true);
    let client = Client::new(&daemon.socket);
    let answer = client
        .request(
            Method::POST,
            "/v1/x?a=1",
            &[("x-k", "v")],
            Some(b"{\"n\":1}".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let echo = answer.json().unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/v1/x?a=1");
    assert_eq!(echo["content_type"], "application/json");
    assert_eq!(echo["host"], "localhost");
    assert_eq!(echo["body"], "{\"n\":1}");

    let missing = client.get("/missing").await.unwrap();
    assert_eq!(missing.status, 404);
    assert!(!missing.is_success());
    assert!(client.get_json("/missing").await.is_err());
}

#[tokio::test]
async fn invoke_builds_the_documented_request() {
    let daemon = echo_daemon(true);
    let client = Client::new(&daemon.socket);
    let opts = InvokeOptions {
        respond_async: true,
        timeout: Some(Duration::from_millis(1500)),
        idempotency_key: Some("k-1".into()),
        callback: Some("unix:/run/hooks.sock/done".into()),
    };
    let selector = Selector::Tag("prod".into());
    let answer = client
        .invoke("hello", Some(&selector), &json!({"x": 1}), &opts)
        .await
        .unwrap();
    let echo = answer.json().unwrap();
    assert_eq!(
        echo["uri"],
        "/v1/scripts/hello/invoke?tag=prod&timeout_ms=1500"
    );
    assert_eq!(echo["prefer"], "respond-async");
    assert_eq!(echo["idempotency_key"], "k-1");
    assert_eq!(echo["callback"], "unix:/run/hooks.sock/done");
    assert_eq!(echo["body"], "{\"x\":1}");

    let plain = client
        .invoke("hello", None, &json!({}), &InvokeOptions::default())
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(plain["uri"], "/v1/scripts/hello/invoke");
    assert_eq!(plain["prefer"], Value::Null);
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let daemon = echo_daemon(true);
    let client = Client::new(&daemon.socket);
    for i in 0..200 {
        let answer = client.get(&format!("/n/{i}")).await.unwrap();
        assert_eq!(answer.json().unwrap()["uri"], format!("/n/{i}"));
    }
    assert_eq!(daemon.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_callers_share_a_few_connections() {
    let daemon = echo_daemon(true);
    let client = Client::new(&daemon.socket);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    assert_eq!(client.get("/c").await.unwrap().status, 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let opened = daemon.connections.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&opened),
        "{opened} connections for 4 callers"
    );
}

#[tokio::test]
async fn reconnects_when_the_daemon_closes_after_each_answer() {
    let daemon = echo_daemon(false);
    let client = Client::new(&daemon.socket);
    for _ in 0..5 {
        let answer = client
            .request(Method::POST, "/p", &[], Some(b"{}".to_vec()))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
    }
    assert_eq!(daemon.connections.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn reconnects_when_the_daemon_drops_an_idle_connection() {
    let daemon = abrupt_daemon();
    let client = Client::new(&daemon.socket);
    for _ in 0..5 {
        let answer = client.get("/g").await.unwrap();
        assert_eq!(&answer.body[..], b"ok");
    }
    assert_eq!(daemon.connections.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_missing_socket_is_a_connect_error_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(dir.path().join("absent.sock"));
    let err = client.get("/v1/info").await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.hint().unwrap_or_default().contains("runwarmd"));
}

#[tokio::test]
async fn refuses_relative_paths_and_bad_headers() {
    let daemon = echo_daemon(true);
    let client = Client::new(&daemon.socket);
    let relative = client.get("v1/info").await.unwrap_err();
    assert!(matches!(relative, ClientError::InvalidRequest(_)));
    let header = client
        .request(Method::GET, "/x", &[("bad header", "v")], None)
        .await
        .unwrap_err();
    assert!(matches!(header, ClientError::InvalidRequest(_)));
}

#[tokio::test]
async fn streams_event_frames() {
    let daemon = echo_daemon(true);
    let client = Client::new(&daemon.socket);
    let mut stream = client.stream(Method::GET, "/events").await.unwrap();
    assert_eq!(stream.status, 200);
    let mut parser = SseParser::default();
    let mut names = Vec::new();
    while let Some(chunk) = stream.chunk().await.unwrap() {
        names.extend(parser.push(&chunk).unwrap().into_iter().map(|e| e.event));
    }
    assert_eq!(names, ["stdout", "end"]);
}

#[tokio::test]
async fn a_silent_daemon_hits_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Client::new(&socket).with_timeout(Duration::from_millis(100));
    let err = client.get("/v1/info").await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
}
