//! The HTTP server's defences: slow headers cut off, deep or oversized bodies refused, and a
//! daemon at its connection limit still serving root and its watchdog.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use runwarm_supervisor::client::Client;
use serde_json::json;

use super::collect_notify;

#[tokio::test]
async fn slow_headers_are_cut_off_while_others_are_served() {
    let d = Daemon::builder()
        .without_samples()
        .config("[server]\nheader_read_timeout_ms = 1000\n")
        .start()
        .await;
    let sock = d.socket().to_path_buf();
    let slow = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let started = Instant::now();
        for b in b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaa\r\n" {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            if started.elapsed() > Duration::from_secs(8) {
                break;
            }
        }
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        (started.elapsed(), rest)
    });
    for _ in 0..5 {
        let (status, _) = d.call(Method::GET, "/healthz", None).await;
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (took, answer) = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert!(
        took < Duration::from_secs(6),
        "the slow connection was kept for {took:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "the slow request was served"
    );
}

#[tokio::test]
async fn deeply_nested_json_and_oversized_bodies_get_4xx() {
    let d = Daemon::builder()
        .without_samples()
        .config("[limits]\nmax_body_bytes = 100000\n")
        .start()
        .await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, body) = d
        .raw(
            Method::POST,
            "/v1/scripts",
            &[("content-type", "application/json")],
            Some(deep.into_bytes()),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = d
        .raw(
            Method::POST,
            "/v1/scripts",
            &[("content-type", "application/json")],
            Some(vec![b' '; 200_000]),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = d.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_daemon_turns_callers_away_but_serves_root_and_its_watchdog() {
    if !require(&[Need::Root, Need::Program("setpriv"), Need::Program("curl")]) {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("rwc")
        .tempdir_in("/tmp")
        .unwrap();
    let notify = tmp.path().join("notify.sock");
    let rx = UnixDatagram::bind(&notify).unwrap();
    let d = Daemon::builder()
        .without_samples()
        .config("[server]\nmax_connections = 2\n[access]\nsocket_mode = 0o666\n")
        .env("NOTIFY_SOCKET", notify.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000")
        .start()
        .await;
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d.register(
        "nap",
        json!({"runtime": "bash", "entry": "main.sh", "pool": {"max": 2}}),
        json!({"main.sh": "sleep 3\necho '{}'\n"}),
    )
    .await;
    // Two requests in flight from one unprivileged uid take both slots; nothing is idle.
    let busy: Vec<_> = (0..2)
        .map(|_| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .args([
                    "curl",
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-X",
                    "POST",
                    "--unix-socket",
                ])
                .arg(d.socket())
                .arg("http://localhost/v1/scripts/nap/invoke")
                .spawn()
                .unwrap()
        })
        .collect();
    // Polled on a client of its own, dropped before the check: an idle keep-alive connection,
    // even root's, is what the server closes to make room.
    let poll = Client::new(d.socket());
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let pools: serde_json::Value = poll.get("/v1/pools").await.unwrap().json().unwrap();
        let busy: u64 = pools
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["busy"].as_u64())
            .sum();
        if busy >= 2 {
            break;
        }
        assert!(Instant::now() < until, "the two naps never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(poll);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = d.call_as(65533, &[], "GET", "/healthz", None, &[]);
    assert_eq!(status, 0, "another uid was served over the connection cap");
    // Root is privileged: it gets a slot from the reserve above the cap.
    let root = Client::new(d.socket()).with_timeout(Duration::from_secs(5));
    assert_eq!(root.get("/healthz").await.unwrap().status, 200);
    // A full daemon is busy, not dead: the watchdog keeps pinging.
    rx.set_nonblocking(true).unwrap();
    while rx.recv(&mut [0u8; 4096]).is_ok() {}
    rx.set_nonblocking(false).unwrap();
    let mut seen = Vec::new();
    let waited = Instant::now();
    collect_notify(&rx, &mut seen, |s| {
        s.iter().filter(|l| *l == "WATCHDOG=1").count() >= 2
    });
    assert!(
        waited.elapsed() < Duration::from_secs(3),
        "no watchdog pings while the connection cap was reached\n{}",
        d.report()
    );
    for mut c in busy {
        assert!(c.wait().unwrap().success());
    }
    let (status, _) = d.call_as(65533, &[], "GET", "/healthz", None, &[]);
    assert_eq!(status, 200, "served once the slots freed");
}
