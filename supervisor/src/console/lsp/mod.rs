//! `GET /lsp/{language}`: a language server for the console's editor, spoken over a WebSocket.
//!
//! The console (running as the user who started it, behind the same gate as the API, plus an
//! `Origin` check on the upgrade) starts one server process per WebSocket on its first frame's
//! way in, and bridges text frames to LSP's `Content-Length` framing on the server's stdio
//! ([`bridge`]). One server per socket, because LSP is a one-client protocol: `initialize`,
//! request ids and the open documents belong to one client. The server stops when its socket
//! closes, or when the client has sent nothing for the idle period (the socket is then closed
//! with code 4000, and the editor reconnects when it next needs it). See
//! docs/design/0009-check-format-lsp.md.

mod bridge;
mod framing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{Body, empty, problem};

/// The languages served: name in the path, the server program, its arguments.
const LANGUAGES: &[(&str, &str, &[&str])] = &[("python", "pyright-langserver", &["--stdio"])];

/// Language-server sockets open at once per console (each holds a server process).
const MAX_SOCKETS: usize = 4;

/// Where the servers are and when they stop.
#[derive(Debug, Clone)]
pub struct LspSettings {
    /// A folder holding the servers (`node_modules/.bin` and `bin` of it are searched, then
    /// `PATH`).
    pub dir: PathBuf,
    /// A server whose client sent nothing for this long is stopped.
    pub idle: Duration,
}

impl Default for LspSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/opt/runwarm-lsp"),
            idle: Duration::from_secs(300),
        }
    }
}

/// The language-server endpoint.
#[derive(Debug)]
pub struct Lsp {
    settings: LspSettings,
    sockets: Arc<Semaphore>,
}

impl Lsp {
    /// The endpoint.
    pub fn new(settings: LspSettings) -> Self {
        bridge::remove_orphaned_folders(&std::env::temp_dir());
        Self {
            settings,
            sockets: Arc::new(Semaphore::new(MAX_SOCKETS)),
        }
    }

    /// The languages whose server is installed: what `/features.json` tells the page, so the
    /// editor opens no socket that would only be refused.
    pub fn available(&self) -> Vec<&'static str> {
        LANGUAGES
            .iter()
            .filter(|(_, program, _)| find_program(&self.settings.dir, program).is_some())
            .map(|(name, ..)| *name)
            .collect()
    }

    /// Answers an upgrade to `/lsp/{language}` (the gate has let it through) with 101 and
    /// starts the bridge, or with a problem.
    pub fn upgrade(&self, language: &str, mut req: Request<Incoming>) -> Response<Body> {
        let Some((_, program, args)) = LANGUAGES.iter().find(|(name, ..)| *name == language) else {
            let names: Vec<&str> = LANGUAGES.iter().map(|(n, ..)| *n).collect();
            let detail = format!(
                "no language server for {language:?}; served: {}",
                names.join(", ")
            );
            return problem(StatusCode::NOT_FOUND, "unknown-language", &detail, None);
        };
        let Some(key) = websocket_key(&req) else {
            return problem(
                StatusCode::BAD_REQUEST,
                "not-a-websocket",
                "/lsp/ speaks WebSocket: a GET with Upgrade: websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key",
                None,
            );
        };
        let Some(path) = find_program(&self.settings.dir, program) else {
            let detail = format!("the language server `{program}` is not installed");
            let hint = format!(
                "install pyright: npm install --prefix {} pyright (as .ci/toolchains does), or put `{program}` on PATH",
                self.settings.dir.display()
            );
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "lsp-unavailable",
                &detail,
                Some(hint),
            );
        };
        let Ok(slot) = Arc::clone(&self.sockets).try_acquire_owned() else {
            let detail = format!("{MAX_SOCKETS} language-server sockets are open already");
            let hint = Some("close other editor tabs of this console".to_owned());
            return problem(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-lsp-sockets",
                &detail,
                hint,
            );
        };
        let server = bridge::Server {
            program: path,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            idle: self.settings.idle,
        };
        let upgrading = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrading.await else {
                return;
            };
            let config = WebSocketConfig::default()
                .max_message_size(Some(framing::MAX_MESSAGE))
                .max_frame_size(Some(framing::MAX_MESSAGE));
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            bridge::run(ws, server).await;
            drop(slot);
        });
        let mut answer = Response::new(empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = answer.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        answer
    }
}

/// The `Sec-WebSocket-Key` of a well-formed upgrade request.
fn websocket_key(req: &Request<Incoming>) -> Option<String> {
    let h = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let ok = req.method() == Method::GET
        && has(header::CONNECTION, "upgrade")
        && has(header::UPGRADE, "websocket")
        && has(header::SEC_WEBSOCKET_VERSION, "13");
    let key = h.get(header::SEC_WEBSOCKET_KEY)?.to_str().ok()?;
    (ok && !key.is_empty()).then(|| key.to_owned())
}

/// `program` in `dir`'s `node_modules/.bin` or `bin`, or on `PATH`.
fn find_program(dir: &Path, program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    [dir.join("node_modules/.bin"), dir.join("bin")]
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_found_in_the_folder_first() {
        let dir = std::env::temp_dir().join(format!("rw-lsp-{}", std::process::id()));
        let bin = dir.join("node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("some-server-xyz"), "").unwrap();
        assert_eq!(
            find_program(&dir, "some-server-xyz"),
            Some(bin.join("some-server-xyz"))
        );
        assert_eq!(find_program(&dir, "no-such-server-xyz"), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
