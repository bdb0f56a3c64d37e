//! Forwarding `/api/...` to the daemon's socket as the user running the console.
//!
//! Each forwarded request opens its own connection, so the daemon sees this process's
//! `SO_PEERCRED` and applies its access rules unchanged. The request body is read whole (up to
//! [`MAX_BODY`]); the answer's body is passed on as it arrives, so an event stream stays live.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::{Body, problem};

/// Largest request body passed on (registrations carry whole script folders).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Request headers the daemon reads; everything else (cookies, origin) stays here.
const REQUEST_HEADERS: [&str; 8] = [
    "content-type",
    "accept",
    "prefer",
    "idempotency-key",
    "last-event-id",
    "if-none-match",
    "if-match",
    "runwarm-callback",
];

/// Hop-by-hop answer headers, which belong to one connection and are not passed on.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// The daemon path for a console path: `/api/v1/scripts?q=x` → `/v1/scripts?q=x`.
pub fn daemon_path(path_and_query: &str) -> Option<&str> {
    path_and_query
        .strip_prefix("/api")
        .filter(|rest| rest.starts_with('/'))
}

/// Sends `req` (whose path is under `/api/`) to the daemon and returns its answer.
pub async fn forward(socket: &Path, req: Request<Incoming>) -> Response<Body> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .and_then(daemon_path)
        .map(str::to_owned);
    let Some(target) = target else {
        return problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such console path",
            None,
        );
    };
    let (parts, body) = req.into_parts();
    let too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY as u64);
    if too_large {
        return body_too_large();
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return body_too_large();
        }
        Err(e) => {
            let detail = format!("cannot read the request body: {e}");
            return problem(StatusCode::BAD_REQUEST, "bad-body", &detail, None);
        }
    };
    let mut out = Request::builder().method(parts.method).uri(target);
    for name in REQUEST_HEADERS {
        for value in parts.headers.get_all(name) {
            out = out.header(name, value);
        }
    }
    let out = match out.header(header::HOST, "localhost").body(Full::new(body)) {
        Ok(out) => out,
        Err(e) => {
            let detail = format!("cannot build the request: {e}");
            return problem(StatusCode::BAD_REQUEST, "bad-request", &detail, None);
        }
    };
    match send(socket, out).await {
        Ok(answer) => pass_on(answer),
        Err(detail) => problem(
            StatusCode::BAD_GATEWAY,
            "daemon-unreachable",
            &detail,
            Some(format!(
                "is runwarmd running and listening on {}? (runwarm console --socket PATH)",
                socket.display()
            )),
        ),
    }
}

fn body_too_large() -> Response<Body> {
    let detail = format!("the request body is over {MAX_BODY} bytes");
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        &detail,
        None,
    )
}

async fn send(socket: &Path, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, String> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with runwarmd failed: {e}"))?;
    tokio::spawn(async move {
        // A broken connection shows up as an error of the request or of the streamed body.
        let _ = connection.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("runwarmd did not answer: {e}"))
}

/// The daemon's answer for the browser: status and headers (a `Location` under `/api`), and
/// the body streamed through.
fn pass_on(answer: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = answer.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    let location = parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with('/'))
        .and_then(|v| HeaderValue::from_str(&format!("/api{v}")).ok());
    if let Some(location) = location {
        parts.headers.insert(header::LOCATION, location);
    }
    parts.headers.insert(
        HeaderName::from_static("cache-control"),
        HeaderValue::from_static("no-store"),
    );
    Response::from_parts(parts, body.map_err(Into::into).boxed_unsync())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_under_api_are_forwarded() {
        assert_eq!(daemon_path("/api/v1/scripts"), Some("/v1/scripts"));
        assert_eq!(daemon_path("/api/v1/scripts?q=a"), Some("/v1/scripts?q=a"));
        assert_eq!(daemon_path("/apiv1/scripts"), None);
        assert_eq!(daemon_path("/api"), None);
        assert_eq!(daemon_path("/v1/scripts"), None);
    }
}
