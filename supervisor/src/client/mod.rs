//! The client of runwarmd's HTTP API on its Unix socket, shared by the `runwarm` CLI, the
//! end-to-end tests and the benchmarks.
//!
//! [`Client`] is cheap to clone (the connections are shared) and keeps a few keep-alive
//! HTTP/1.1 connections, so a loop of calls pays for one `connect` and one handshake, not one
//! per call. Any HTTP answer, error statuses included, is a [`Response`]; a [`ClientError`]
//! means no usable answer came back.

mod bundle;
mod connections;
mod error;
mod problem;
mod response;
mod selector;
mod sse;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
pub use hyper::{HeaderMap, Method};
use serde_json::Value;

pub use bundle::{BundleError, FileBundle, MANIFEST_FILE, bundle_from_dir, bundle_from_file};
pub use error::ClientError;
pub use problem::{Problem, Violation, snippet};
pub use response::{Response, Streaming};
pub use selector::{Selector, Target, TargetError, escape, is_valid_name};
pub use sse::{SseError, SseEvent, SseParser};

use connections::{Connections, Sender};
use response::read_body;

/// Extra time the client waits beyond an invocation's own timeout before giving up on the
/// daemon, which enforces the timeout and answers with a `timeout` record first.
const INVOKE_GRACE: Duration = Duration::from_secs(30);

/// A connection to runwarmd (see the module docs).
#[derive(Debug, Clone)]
pub struct Client {
    connections: Arc<Connections>,
    timeout: Option<Duration>,
}

/// Options of one invocation.
#[derive(Debug, Clone, Default)]
pub struct InvokeOptions {
    /// Ask for `202` and an execution id instead of waiting (`Prefer: respond-async`).
    pub respond_async: bool,
    /// Time limit for this invocation (`?timeout_ms=`); the manifest's limit when absent.
    pub timeout: Option<Duration>,
    /// `Idempotency-Key`: the same key and body return the same execution.
    pub idempotency_key: Option<String>,
    /// `Runwarm-Callback`: where runwarmd POSTs the terminal record, signed, at least once.
    pub callback: Option<String>,
}

// === impl Client ===

impl Client {
    /// A client of the daemon listening on `socket`; connects lazily, on the first request.
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            connections: Arc::new(Connections::new(socket.into())),
            timeout: None,
        }
    }

    /// Gives every request a deadline; none by default.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        self.connections.socket()
    }

    /// Sends one request and reads the whole answer.
    ///
    /// `path_and_query` starts with `/` and is sent as is: escape names with [`escape`]. A body
    /// is sent as `application/json` unless `headers` name another content type.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        self.request_within(self.timeout, method, path_and_query, headers, body)
            .await
    }

    async fn request_within(
        &self,
        deadline: Option<Duration>,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        let exchange = async {
            let (answer, sender) = self
                .send(method, path_and_query, headers, body.map(Bytes::from))
                .await?;
            let (parts, incoming) = answer.into_parts();
            let body = read_body(incoming).await?;
            // Only now is the connection between messages and safe to hand to another call.
            self.connections.put_back(sender);
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match deadline {
            None => exchange.await,
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .map_err(|_| ClientError::Timeout(limit))?,
        }
    }

    /// Sends a request and hands back the answer with its body unread, for event streams.
    ///
    /// The client's deadline covers the answer's head only; the stream lasts as long as the
    /// daemon keeps it open.
    pub async fn stream(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<Streaming, ClientError> {
        let open = self.send(
            method,
            path_and_query,
            &[("accept", "text/event-stream")],
            None,
        );
        let (answer, sender) = match self.timeout {
            None => open.await?,
            Some(limit) => tokio::time::timeout(limit, open)
                .await
                .map_err(|_| ClientError::Timeout(limit))??,
        };
        let (parts, body) = answer.into_parts();
        Ok(Streaming {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            _sender: sender,
        })
    }

    /// `POST /v1/scripts/{name}/invoke[?version=|?tag=][&timeout_ms=]` with `payload` as body.
    pub async fn invoke(
        &self,
        name: &str,
        selector: Option<&Selector>,
        payload: &Value,
        opts: &InvokeOptions,
    ) -> Result<Response, ClientError> {
        let mut path = format!("/v1/scripts/{}/invoke", escape(name));
        let mut query = Vec::new();
        if let Some(selector) = selector {
            query.push(selector.query());
        }
        if let Some(timeout) = opts.timeout {
            query.push(format!("timeout_ms={}", timeout.as_millis()));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        let mut headers = Vec::new();
        if opts.respond_async {
            headers.push(("prefer", "respond-async"));
        }
        if let Some(key) = &opts.idempotency_key {
            headers.push(("idempotency-key", key.as_str()));
        }
        if let Some(url) = &opts.callback {
            headers.push(("runwarm-callback", url.as_str()));
        }
        let body = serde_json::to_vec(payload)
            .map_err(|e| ClientError::InvalidRequest(format!("payload: {e}")))?;
        // The daemon answers a timed-out invocation itself; the client only guards against a
        // daemon that never answers.
        let deadline = match (self.timeout, opts.timeout) {
            (Some(base), Some(t)) => Some(base.max(t + INVOKE_GRACE)),
            (None, Some(t)) => Some(t + INVOKE_GRACE),
            (base, None) => base,
        };
        self.request_within(deadline, Method::POST, &path, &headers, Some(body))
            .await
    }

    /// `POST /v1/scripts` with a registration body (see [`bundle_from_dir`]).
    pub async fn register(&self, body: &Value) -> Result<Response, ClientError> {
        self.send_json(Method::POST, "/v1/scripts", body).await
    }

    /// `GET path`.
    pub async fn get(&self, path_and_query: &str) -> Result<Response, ClientError> {
        self.request(Method::GET, path_and_query, &[], None).await
    }

    /// `method path` with a JSON body.
    pub async fn send_json(
        &self,
        method: Method,
        path_and_query: &str,
        body: &Value,
    ) -> Result<Response, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ClientError::InvalidRequest(format!("body: {e}")))?;
        self.request(method, path_and_query, &[], Some(body)).await
    }

    /// `GET path` expecting a 2xx JSON answer; an error status becomes
    /// [`ClientError::InvalidResponse`] with the problem's text, so use [`Client::get`] where
    /// the caller wants to tell statuses apart.
    pub async fn get_json(&self, path_and_query: &str) -> Result<Value, ClientError> {
        let answer = self.get(path_and_query).await?;
        if !answer.is_success() {
            let problem = Problem::from_answer(answer.status, &answer.body);
            return Err(ClientError::InvalidResponse(format!(
                "GET {path_and_query} answered {}: {} {}",
                answer.status, problem.title, problem.detail
            )));
        }
        answer.json()
    }

    /// Sends on an idle connection, or a new one; see [`connections`] for when it retries.
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<(hyper::Response<Incoming>, Sender), ClientError> {
        if !path_and_query.starts_with('/') {
            return Err(ClientError::InvalidRequest(format!(
                "path {path_and_query:?} must start with `/`"
            )));
        }
        // Sending twice is harmless for these; for the rest only when nothing went out.
        let resend_allowed = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ) || headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("idempotency-key"));
        let mut reuse = true;
        loop {
            let idle = if reuse {
                self.connections.take_ready().await
            } else {
                None
            };
            let reused = idle.is_some();
            let mut sender = match idle {
                Some(sender) => sender,
                None => self.connections.connect().await?,
            };
            let request = build_request(&method, path_and_query, headers, body.clone())?;
            match sender.try_send_request(request).await {
                Ok(answer) => return Ok((answer, sender)),
                Err(mut failed) => {
                    let unsent = failed.take_message().is_some();
                    let error = failed.into_error();
                    // A reused connection the daemon closed while it sat idle: try a new one.
                    // Errors of our own making (`is_user`) would only repeat.
                    if reused && (unsent || (resend_allowed && !error.is_user())) {
                        reuse = false;
                        continue;
                    }
                    return Err(ClientError::Http(error));
                }
            }
        }
    }
}

fn build_request(
    method: &Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<Bytes>,
) -> Result<hyper::Request<Full<Bytes>>, ClientError> {
    let mut builder = hyper::Request::builder()
        .method(method.clone())
        .uri(path_and_query)
        .header(HOST, "localhost")
        .header(USER_AGENT, concat!("runwarm/", env!("CARGO_PKG_VERSION")));
    let has_content_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
    if body.is_some() && !has_content_type {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| ClientError::InvalidRequest(e.to_string()))
}
