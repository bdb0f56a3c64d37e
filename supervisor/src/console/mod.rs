//! `runwarm console`: a loopback-only HTTP gateway that serves the embedded console page and
//! forwards `/api/...` to the daemon's socket as the user who started it.
//!
//! Every request passes, in this order: the `Host` check (403, against DNS rebinding), the
//! one-time token exchange or the session cookie (401), and for a state-changing method the
//! `Origin` check (403, against cross-site requests). See docs/design/0008-console.md.

mod assets;
mod forward;
mod gate;
mod lsp;

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use gate::{COOKIE, Gate, new_secret};
pub use lsp::LspSettings;

/// A response body: static bytes, or the daemon's answer streamed through.
pub type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept, so a lack of descriptors does not become a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Why the console could not start or went on serving.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The port cannot be bound.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The operating system gave no randomness for the token.
    #[error("cannot make a token: {0}")]
    Random(getrandom::Error),
}

/// A bound console, ready to serve.
#[derive(Debug)]
pub struct Console {
    listener: TcpListener,
    port: u16,
    token: String,
    socket: PathBuf,
    lsp: LspSettings,
}

impl Console {
    /// Binds `127.0.0.1:port` (0 for an ephemeral port) and makes the one-time token.
    pub async fn bind(port: u16, socket: PathBuf) -> Result<Self, ConsoleError> {
        let bind_error = |source| ConsoleError::Bind { port, source };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();
        let token = new_secret().map_err(ConsoleError::Random)?;
        Ok(Self {
            listener,
            port,
            token,
            socket,
            lsp: LspSettings::default(),
        })
    }

    /// Where the language servers are and when an idle one stops.
    pub fn with_lsp(mut self, lsp: LspSettings) -> Self {
        self.lsp = lsp;
        self
    }

    /// The URL to open, with the one-time token.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) -> Result<(), ConsoleError> {
        let shared = Arc::new(Shared {
            gate: Gate::new(self.port, self.token),
            socket: self.socket,
            lsp: lsp::Lsp::new(self.lsp),
        });
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return Ok(());
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(_) => {
                    // Out of descriptors, or a connection aborted before it was taken: both
                    // pass; serving the ones already open is what matters.
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(shared.handle(req).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    // `/lsp/…` becomes a WebSocket.
                    .with_upgrades();
                // A client that goes away mid-request is its own business.
                let _ = connection.await;
                drop(permit);
            });
        }
    }
}

/// What every request handler reads.
#[derive(Debug)]
struct Shared {
    gate: Gate,
    socket: PathBuf,
    lsp: lsp::Lsp,
}

impl Shared {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let headers = req.headers();
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let host = text(header::HOST);
        if !self.gate.host_allowed(host) {
            return problem(
                StatusCode::FORBIDDEN,
                "foreign-host",
                "the Host header does not name this console",
                Some("open the console as http://127.0.0.1:PORT/ or http://localhost:PORT/".into()),
            );
        }
        let host = host.unwrap_or_default().to_owned();
        // The token is taken only where the printed URL points, so no API query is mistaken
        // for one.
        let token = (req.uri().path() == "/")
            .then(|| req.uri().query().and_then(gate::token_param))
            .flatten();
        if let Some(token) = token {
            return self.redeem(token);
        }
        if !self.gate.has_session(text(header::COOKIE)) {
            return problem(
                StatusCode::UNAUTHORIZED,
                "no-session",
                "no valid console session",
                Some("open the URL `runwarm console` printed; its token works once".into()),
            );
        }
        // A page on another site may open a WebSocket to the console (browsers let it, and
        // send the cookie): the upgrade must come from the console's own page.
        if let Some(language) = req.uri().path().strip_prefix("/lsp/") {
            if !self.gate.origin_allowed(&host, text(header::ORIGIN)) {
                return problem(
                    StatusCode::FORBIDDEN,
                    "foreign-origin",
                    "a language-server socket must be opened by the console's own page",
                    None,
                );
            }
            let language = language.to_owned();
            return self.lsp.upgrade(&language, req);
        }
        let changes_state = matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if changes_state && !self.gate.origin_allowed(&host, text(header::ORIGIN)) {
            return problem(
                StatusCode::FORBIDDEN,
                "foreign-origin",
                "a state-changing request must come from the console's own page",
                None,
            );
        }
        if req.uri().path().starts_with("/api/") {
            return forward::forward(&self.socket, req).await;
        }
        if req.uri().path() == "/features.json" {
            return self.features();
        }
        match (req.method(), assets::find(req.uri().path())) {
            (&Method::GET | &Method::HEAD, Some(asset)) => assets::respond(&asset),
            (_, Some(_)) => problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "the console's pages are only read",
                None,
            ),
            (_, None) => problem(StatusCode::NOT_FOUND, "not-found", "no such page", None),
        }
    }

    /// What this console serves beyond the daemon's API, for the page to ask before it tries:
    /// the languages whose server is installed for `/lsp/<language>`. The page opens no socket
    /// the console would refuse (a refused WebSocket is a console error in the browser).
    fn features(&self) -> Response<Body> {
        let body = serde_json::json!({ "lsp": self.lsp.available() });
        let mut answer = Response::new(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|e| match e {})
                .boxed_unsync(),
        );
        let headers = answer.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        answer
    }

    /// The token exchange: a session cookie and a redirect to `/` without the token, or 401.
    fn redeem(&self, token: &str) -> Response<Body> {
        let session = match new_secret() {
            Ok(session) => session,
            Err(e) => {
                let detail = format!("cannot make a session id: {e}");
                return problem(StatusCode::INTERNAL_SERVER_ERROR, "random", &detail, None);
            }
        };
        let Some(session) = self.gate.redeem(token, session) else {
            return problem(
                StatusCode::UNAUTHORIZED,
                "token-used-or-wrong",
                "the token is wrong or was used already",
                Some("restart `runwarm console` for a new URL".into()),
            );
        };
        let cookie = HeaderValue::from_str(&Gate::set_cookie(&session));
        let mut answer = Response::new(empty());
        *answer.status_mut() = StatusCode::SEE_OTHER;
        let headers = answer.headers_mut();
        headers.insert(header::LOCATION, HeaderValue::from_static("/"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if let Ok(cookie) = cookie {
            headers.insert(header::SET_COOKIE, cookie);
        }
        answer
    }
}

pub(crate) fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// A problem+json answer, in the daemon's shape.
pub(crate) fn problem(
    status: StatusCode,
    slug: &str,
    detail: &str,
    hint: Option<String>,
) -> Response<Body> {
    let body = crate::api::problem::Problem::new(status, slug, detail).hint(hint);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut answer = Response::new(
        Full::new(Bytes::from(bytes))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    answer
}
