//! One WebSocket and its language server: text frames in become `Content-Length` messages on the
//! server's stdin, messages on its stdout become text frames out. The server is killed (its
//! process group) when the socket closes, when it goes idle, or when the console goes away:
//! tokio kills it when its task is dropped, and the server itself watches the console's pid
//! (`--clientProcessId`, vscode-languageserver's watchdog) in case the console is SIGKILLed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::framing;

/// The close code for "stopped for idleness" (4000–4999 are the application's).
pub const CLOSE_IDLE: u16 = 4000;

/// The server to start for one socket.
#[derive(Debug)]
pub struct Server {
    /// Its program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Stop it after this long without a frame from the client.
    pub idle: Duration,
}

type Socket = WebSocketStream<TokioIo<Upgraded>>;

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// A server's folder in the temp dir: this prefix, the console's pid, `-`, a unique id.
const FOLDER_PREFIX: &str = "runwarm-lsp-";

/// Removes the folders of servers whose console is gone: a console killed outright (SIGKILL,
/// OOM) cannot remove its own, so the next console to start does.
pub fn remove_orphaned_folders(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(FOLDER_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Bridges `ws` to a fresh server until either side ends or the client goes idle.
pub async fn run(ws: Socket, server: Server) {
    let (mut ws_out, mut ws_in) = ws.split();
    // The server's folder: an empty one of its own (pyright indexes its working directory).
    let cwd = std::env::temp_dir().join(format!(
        "{FOLDER_PREFIX}{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    // Its temporary files go inside that folder too, so removing it leaves nothing behind
    // (pyright makes a `pyright-<pid>-*` folder in the temp dir and never removes it).
    let tmp = cwd.join("tmp");
    let spawned = std::fs::create_dir(&cwd).and_then(|()| {
        std::fs::create_dir(&tmp)?;
        tokio::process::Command::new(&server.program)
            .args(&server.args)
            .arg(format!("--clientProcessId={}", std::process::id()))
            .current_dir(&cwd)
            .env("TMPDIR", &tmp)
            .env("TMP", &tmp)
            .env("TEMP", &tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let reason = format!("cannot start the language server: {e}");
            let _ = ws_out.send(close(CloseCode::Error, &reason)).await;
            let _ = std::fs::remove_dir_all(&cwd);
            return;
        }
    };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = std::fs::remove_dir_all(&cwd);
        return;
    };
    // Frames out come from the server and from this task (a close); one writer owns the sink.
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(16);
    let mut writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let closing = matches!(m, Message::Close(_));
            if ws_out.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = ws_out.close().await;
    });
    let from_server_tx = out_tx.clone();
    let mut from_server = tokio::spawn(async move {
        let mut reader = BufReader::new(stdout);
        loop {
            match framing::read_message(&mut reader).await {
                Ok(Some(body)) => {
                    if from_server_tx.send(Message::text(body)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {
                    let m = close(CloseCode::Error, "the language server exited");
                    let _ = from_server_tx.send(m).await;
                    return;
                }
                Err(e) => {
                    let _ = from_server_tx
                        .send(close(CloseCode::Error, &e.to_string()))
                        .await;
                    return;
                }
            }
        }
    });
    let (seen_tx, seen_rx) = watch::channel(Instant::now());
    let to_server_tx = out_tx.clone();
    let mut to_server = tokio::spawn(async move {
        while let Some(frame) = ws_in.next().await {
            let Ok(frame) = frame else { return };
            let _ = seen_tx.send(Instant::now());
            match frame {
                Message::Text(text) => {
                    if stdin.write_all(&framing::encode(&text)).await.is_err() {
                        return;
                    }
                }
                Message::Binary(_) => {
                    let m = close(CloseCode::Unsupported, "LSP messages are text frames");
                    let _ = to_server_tx.send(m).await;
                    return;
                }
                Message::Close(_) => return,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    });
    loop {
        let idle_at = *seen_rx.borrow() + server.idle;
        tokio::select! {
            _ = &mut to_server => break,
            _ = &mut from_server => break,
            _ = &mut writer => break,
            () = tokio::time::sleep_until(idle_at) => {
                if *seen_rx.borrow() + server.idle <= Instant::now() {
                    let _ = out_tx.send(close(CloseCode::Library(CLOSE_IDLE), "idle: the language server was stopped")).await;
                    break;
                }
            }
        }
    }
    // Let a close frame queued above go out, briefly (the writer ends once every sender is
    // gone); then stop everything.
    to_server.abort();
    from_server.abort();
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
    writer.abort();
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // Its process group: whatever helpers the server started go with it.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&cwd);
}
