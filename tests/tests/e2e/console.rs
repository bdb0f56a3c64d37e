//! `runwarm console` as a person's browser meets it: a real daemon, a real console child, and
//! plain HTTP/1.1 over TCP (so the tests can send the Host and Origin a hostile page would).

pub(crate) mod client;
mod lsp;

use std::time::{Duration, Instant};

use client::{ConsoleChild, EXCHANGE};
use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn console_refuses_strangers_foreign_hosts_and_cross_site_writes() {
    let d = Daemon::builder().without_samples().start().await;
    let console = ConsoleChild::start(&d);
    let token_path = format!("/?token={}", console.token);
    let a = console
        .send("GET", &token_path, &[("Host", "evil.example:80")], b"")
        .await;
    assert_eq!(
        a.status,
        403,
        "the Host check comes before the token: {}",
        a.text()
    );

    let cookie = console.login().await;
    let a = console.send("GET", &token_path, &[], b"").await;
    assert_eq!(a.status, 401, "the token works once: {}", a.text());
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert!(a.json()["hint"].is_string(), "{}", a.text());

    let a = console.send("GET", "/", &[], b"").await;
    assert_eq!(a.status, 401, "no cookie");
    let a = console
        .send(
            "GET",
            "/api/v1/scripts",
            &[("Cookie", "runwarm_console=forged")],
            b"",
        )
        .await;
    assert_eq!(a.status, 401, "forged cookie");

    let with_cookie = [("Cookie", cookie.as_str())];
    let a = console.send("GET", "/", &with_cookie, b"").await;
    assert_eq!(a.status, 200);
    assert!(a.text().contains("runwarm console"), "{}", a.text());
    assert!(a.header("content-security-policy").is_some());
    let rebound = format!("rebind.example:{}", console.port);
    let a = console
        .send(
            "GET",
            "/api/v1/scripts",
            &[("Cookie", &cookie), ("Host", &rebound)],
            b"",
        )
        .await;
    assert_eq!(a.status, 403, "DNS rebinding: {}", a.text());
    let localhost = format!("localhost:{}", console.port);
    let a = console
        .send(
            "GET",
            "/api/v1/scripts",
            &[("Cookie", &cookie), ("Host", &localhost)],
            b"",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json(), json!([]));

    let register = serde_json::to_vec(&json!({
        "name": "x", "manifest": {"runtime": "python3", "entry": "main.py"},
        "files": {"main.py": "def handler(e, c):\n    return 1\n"}
    }))
    .unwrap();
    let json_type = ("Content-Type", "application/json");
    for origin in [None, Some("http://evil.example"), Some("null")] {
        let mut headers = vec![("Cookie", cookie.as_str()), json_type];
        if let Some(origin) = origin {
            headers.push(("Origin", origin));
        }
        let a = console
            .send("POST", "/api/v1/scripts", &headers, &register)
            .await;
        assert_eq!(a.status, 403, "origin {origin:?}: {}", a.text());
    }
    let a = console
        .send("GET", "/api/v1/scripts", &with_cookie, b"")
        .await;
    assert_eq!(a.json(), json!([]), "nothing reached the daemon");

    // Hostile input: an oversized body is refused from its length, garbage gets a 400, and
    // the console goes on serving.
    let origin = console.origin();
    let mut stream = console
        .open(
            "POST",
            "/api/v1/scripts",
            &[
                ("Cookie", &cookie),
                ("Origin", &origin),
                ("Content-Length", "999999999"),
            ],
            b"",
        )
        .await;
    let mut raw = vec![0u8; 4096];
    let n = tokio::time::timeout(EXCHANGE, stream.read(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&raw[..n]).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 413") || head.starts_with("HTTP/1.1 400"),
        "{head}"
    );
    let mut garbage = TcpStream::connect(("127.0.0.1", console.port))
        .await
        .unwrap();
    garbage
        .write_all(b"\x00\xff NOT HTTP\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(EXCHANGE, garbage.read_to_end(&mut sink)).await;
    let a = console
        .send("GET", "/api/v1/scripts", &with_cookie, b"")
        .await;
    assert_eq!(a.status, 200, "still serving: {}", a.text());
}

const SCRIPT: &str = "import time\ndef handler(event, context):\n    for word in ['one', 'two', 'three'] if event.get('lines') else []:\n        print(word, flush=True)\n        time.sleep(1)\n    return {'n': event.get('n')}\n";

const LINES: &[u8] = br#"{"lines": true}"#;

#[tokio::test]
async fn console_forwards_as_its_user_and_streams_events() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let console = ConsoleChild::start(&d);
    let cookie = console.login().await;
    let origin = console.origin();
    let writes = [
        ("Cookie", cookie.as_str()),
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let register = serde_json::to_vec(&json!({
        "name": "s", "manifest": {"runtime": "python3", "entry": "main.py"},
        "files": {"main.py": SCRIPT}
    }))
    .unwrap();
    let a = console
        .send("POST", "/api/v1/scripts", &writes, &register)
        .await;
    assert_eq!(a.status, 201, "{}\n{}", a.text(), d.report());

    let a = console
        .send("POST", "/api/v1/scripts/s/invoke", &writes, br#"{"n": 7}"#)
        .await;
    assert_eq!(a.status, 200, "{}\n{}", a.text(), d.report());
    let rec = a.json();
    assert_eq!(rec["state"], "completed", "{rec}");
    assert_eq!(rec["result"]["n"], 7, "{rec}");
    assert_eq!(
        rec["caller"]["uid"],
        nix::unistd::getuid().as_raw(),
        "the daemon sees the console's user: {rec}"
    );

    let mut async_headers = writes.to_vec();
    async_headers.extend([
        ("Prefer", "respond-async"),
        ("Idempotency-Key", "console-1"),
    ]);
    let a = console
        .send("POST", "/api/v1/scripts/s/invoke", &async_headers, LINES)
        .await;
    assert_eq!(a.status, 202, "{}", a.text());
    let id = a.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        a.header("location"),
        Some(format!("/api/v1/executions/{id}").as_str())
    );
    let again = console
        .send("POST", "/api/v1/scripts/s/invoke", &async_headers, LINES)
        .await;
    assert_eq!(
        again.json()["id"],
        id.as_str(),
        "Idempotency-Key reached the daemon"
    );

    // The event stream arrives as it is written, not when the execution ends.
    let t0 = Instant::now();
    let mut stream = console
        .open(
            "GET",
            &format!("/api/v1/executions/{id}/events"),
            &[("Cookie", &cookie)],
            b"",
        )
        .await;
    let (mut seen, mut first_line, mut end) = (String::new(), None, None);
    let mut buf = vec![0u8; 8192];
    while end.is_none() {
        let n = tokio::time::timeout(EXCHANGE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream ended before `end`: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if first_line.is_none() && seen.contains("one\\n") {
            first_line = Some(t0.elapsed());
        }
        if seen.contains("event: end") {
            end = Some(t0.elapsed());
        }
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    let (first_line, end) = (first_line.unwrap(), end.unwrap());
    assert!(
        first_line + Duration::from_millis(700) < end,
        "the first line came only at the end ({first_line:?} vs {end:?}): {seen}"
    );
}

/// The console is a per-user gateway: started by another uid, the daemon sees that uid and
/// applies its rules to it, not the rules of whoever else uses the machine.
#[tokio::test]
async fn a_console_started_by_another_user_has_that_users_rights_only() {
    if !require(&[Need::Root, Need::Program("setpriv"), Need::Program("bash")]) {
        return;
    }
    const NOBODY: u32 = 65534;
    let d = Daemon::builder()
        .without_samples()
        .config("[access]\nsocket_mode = 0o666\n")
        .start()
        .await;
    std::fs::set_permissions(d.dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    d.register(
        "hi",
        json!({"runtime": "bash", "entry": "main.sh"}),
        json!({"main.sh": "echo '{\"hi\": true}'\n"}),
    )
    .await;
    let (status, root_run) = d.invoke("hi", "", json!({})).await;
    assert_eq!(status, 200, "{root_run}");

    let console = ConsoleChild::start_as(&d, Some(NOBODY));
    let cookie = console.login().await;
    let origin = console.origin();
    let writes = [
        ("Cookie", cookie.as_str()),
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let a = console
        .send("POST", "/api/v1/scripts/hi/invoke", &writes, b"{}")
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let mine = a.json();
    assert_eq!(mine["caller"]["uid"], NOBODY, "{mine}");

    let register = serde_json::to_vec(&json!({
        "name": "other", "manifest": {"runtime": "bash", "entry": "main.sh"},
        "files": {"main.sh": "echo '{}'"}
    }))
    .unwrap();
    let a = console
        .send("POST", "/api/v1/scripts", &writes, &register)
        .await;
    assert_eq!(
        a.status,
        403,
        "administration stays closed to uid {NOBODY}: {}",
        a.text()
    );

    let reads = [("Cookie", cookie.as_str())];
    let a = console.send("GET", "/api/v1/executions", &reads, b"").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let ids: Vec<String> = a
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids,
        vec![mine["id"].as_str().unwrap().to_owned()],
        "only its own execution"
    );
    let root_id = root_run["id"].as_str().unwrap();
    let a = console
        .send("GET", &format!("/api/v1/executions/{root_id}"), &reads, b"")
        .await;
    assert_eq!(
        a.status,
        403,
        "root's execution is not readable through uid {NOBODY}'s console: {}",
        a.text()
    );
}
