//! The console's `/lsp/python` WebSocket with the real pyright (from `/opt/runwarm-lsp`,
//! installed by `.ci/toolchains`): the gate (cookie, Origin), a session that gets diagnostics
//! and completions, and the server process gone after the idle period and after the console
//! exits.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async};

use super::client::ConsoleChild;

const PYRIGHT: &str = "/opt/runwarm-lsp/node_modules/.bin/pyright-langserver";
/// Bound on one answer of pyright (its first analysis loads the typeshed stubs).
const ANSWER: Duration = Duration::from_secs(90);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const UPGRADE: [(&str, &str); 4] = [
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// Opens `/lsp/python` with the session cookie and the console's Origin.
async fn open(console: &ConsoleChild, cookie: &str) -> Ws {
    let mut req = format!("ws://{}/lsp/python", console.host())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("Cookie", cookie.parse().unwrap());
    req.headers_mut()
        .insert("Origin", console.origin().parse().unwrap());
    let stream = TcpStream::connect(("127.0.0.1", console.port))
        .await
        .unwrap();
    let (ws, answer) = client_async(req, MaybeTlsStream::Plain(stream))
        .await
        .expect("WebSocket upgrade");
    assert_eq!(answer.status(), 101);
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// Reads messages until `wanted` matches one (answering the server's own requests with null,
/// as a minimal client may); fails after [`ANSWER`].
async fn until(ws: &mut Ws, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + ANSWER;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {ANSWER:?}"))
            .unwrap_or_else(|| panic!("socket ended before {what}"))
            .unwrap();
        let Message::Text(text) = frame else {
            assert!(
                !matches!(frame, Message::Close(_)),
                "closed before {what}: {frame:?}"
            );
            continue;
        };
        let m: Value = serde_json::from_str(&text).unwrap();
        if wanted(&m) {
            return m;
        }
        if m.get("id").is_some() && m.get("method").is_some() {
            let reply = json!({"jsonrpc": "2.0", "id": m["id"], "result": null});
            send(ws, reply).await;
        }
    }
}

async fn initialize(ws: &mut Ws) {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "processId": null, "rootUri": null, "workspaceFolders": null,
        "capabilities": {"textDocument": {
            "publishDiagnostics": {},
            "completion": {"completionItem": {"snippetSupport": false}}
        }}
    }});
    send(ws, init).await;
    let answer = until(ws, "the initialize answer", |m| m["id"] == 1).await;
    assert!(
        answer["result"]["capabilities"]["completionProvider"].is_object(),
        "{answer:#}"
    );
    send(
        ws,
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    )
    .await;
}

/// Pids of language servers this console started (they are told its pid).
fn servers_of(console_pid: u32) -> Vec<i32> {
    let marker = format!("--clientProcessId={console_pid}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a == marker.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

async fn gone_within(console_pid: u32, bound: Duration) -> bool {
    let until = Instant::now() + bound;
    while Instant::now() < until {
        if servers_of(console_pid).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn pyright_over_the_console_websocket_diagnoses_and_completes() {
    if !require(&[Need::Path(PYRIGHT)]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let console = ConsoleChild::start(&d);
    let cookie = console.login().await;

    // The gate: no cookie 401, a foreign or missing Origin 403, and no server started.
    let a = console.send("GET", "/lsp/python", &UPGRADE, b"").await;
    assert_eq!(a.status, 401, "{}", a.text());
    let mut foreign = UPGRADE.to_vec();
    foreign.push(("Cookie", &cookie));
    foreign.push(("Origin", "http://evil.example"));
    let a = console.send("GET", "/lsp/python", &foreign, b"").await;
    assert_eq!(a.status, 403, "{}", a.text());
    foreign.pop();
    let a = console.send("GET", "/lsp/python", &foreign, b"").await;
    assert_eq!(a.status, 403, "no Origin: {}", a.text());
    assert!(servers_of(console.pid()).is_empty());

    let mut ws = open(&console, &cookie).await;
    initialize(&mut ws).await;
    let uri = "file:///workspace/main.py";
    let text = "import os\n\nos.pa\nprint(undefined_name)\n";
    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}
        }}),
    )
    .await;
    let published = until(&mut ws, "diagnostics of main.py", |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == uri
            && m["params"]["diagnostics"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
    })
    .await;
    let diagnostics = published["params"]["diagnostics"].as_array().unwrap();
    let undefined = diagnostics
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("undefined_name")
        })
        .unwrap_or_else(|| panic!("{published:#}"));
    assert_eq!(
        undefined["range"]["start"],
        json!({"line": 3, "character": 6})
    );

    send(
        &mut ws,
        json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/completion", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 2, "character": 5}
        }}),
    )
    .await;
    let completion = until(&mut ws, "the completion answer", |m| m["id"] == 2).await;
    let items = completion["result"]["items"]
        .as_array()
        .or_else(|| completion["result"].as_array())
        .unwrap_or_else(|| panic!("{completion:#}"));
    assert!(
        items.iter().any(|i| i["label"] == "path"),
        "os.pa… completes to path: {completion:#}"
    );

    let servers = servers_of(console.pid());
    assert_eq!(servers.len(), 1, "one server for the socket");
    // Its temporary files live in its own folder, which goes with it.
    let folder = temp_folder_of(servers[0]);
    assert!(folder.is_dir(), "{}", folder.display());
    ws.close(None).await.unwrap();
    assert!(
        gone_within(console.pid(), Duration::from_secs(10)).await,
        "the server outlived its socket: {:?}",
        servers_of(console.pid())
    );
    let until = Instant::now() + Duration::from_secs(10);
    while folder.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!folder.exists(), "{} was left behind", folder.display());
}

/// The folder a language server was given as its own: the parent of its `TMPDIR`.
fn temp_folder_of(pid: i32) -> std::path::PathBuf {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let tmpdir = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"TMPDIR="))
        .unwrap_or_else(|| panic!("the language server has no TMPDIR of its own"));
    let tmpdir = std::path::PathBuf::from(String::from_utf8(tmpdir.to_vec()).unwrap());
    let folder = tmpdir.parent().unwrap().to_path_buf();
    assert!(
        folder
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("runwarm-lsp-")),
        "TMPDIR {} is not inside the server's own folder",
        tmpdir.display()
    );
    folder
}

#[tokio::test]
async fn an_idle_server_is_stopped_and_none_outlives_the_console() {
    if !require(&[Need::Path(PYRIGHT)]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let console = ConsoleChild::start_with(&d, None, &["--lsp-idle-secs", "3"]);
    let cookie = console.login().await;
    let mut ws = open(&console, &cookie).await;
    initialize(&mut ws).await;
    assert_eq!(servers_of(console.pid()).len(), 1);
    let started = Instant::now();
    let close = loop {
        match tokio::time::timeout(ANSWER, ws.next())
            .await
            .expect("closed for idleness")
        {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    let frame = close.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 4000, "{frame:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        gone_within(console.pid(), Duration::from_secs(10)).await,
        "the idle server lives on: {:?}",
        servers_of(console.pid())
    );

    // A new socket starts a new server; killing the console (SIGKILL: no cleanup of its own)
    // takes it down too, as its stdin closes and it watches the console's pid.
    let mut ws = open(&console, &cookie).await;
    initialize(&mut ws).await;
    let pid = console.pid();
    let servers = servers_of(pid);
    assert_eq!(servers.len(), 1);
    let folder = temp_folder_of(servers[0]);
    drop(console);
    assert!(
        gone_within(pid, Duration::from_secs(15)).await,
        "the server outlived the console: {:?}",
        servers_of(pid)
    );
    // The killed console could not remove the server's folder; the next console does.
    assert!(folder.is_dir(), "{}", folder.display());
    let next = ConsoleChild::start(&d);
    next.login().await;
    assert!(
        !folder.exists(),
        "{} outlived its console",
        folder.display()
    );
}
