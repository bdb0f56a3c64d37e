//! Answers of the daemon: whole ([`Response`]) or read as they stream in ([`Streaming`]).

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::HeaderMap;
use hyper::body::Incoming;
use serde_json::Value;

use super::connections::Sender;
use super::{ClientError, Problem, snippet};

/// Answers larger than this are refused rather than buffered.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// A complete HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Answer headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

pub(super) async fn read_body(incoming: Incoming) -> Result<Bytes, ClientError> {
    match Limited::new(incoming, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => match error.downcast::<hyper::Error>() {
            Ok(http) => Err(ClientError::Http(*http)),
            Err(other) => Err(ClientError::InvalidResponse(format!(
                "reading the answer: {other}"
            ))),
        },
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ClientError::InvalidResponse(format!(
                "status {} with a body that is not JSON ({e}): {}",
                self.status,
                snippet(&self.body)
            ))
        })
    }

    /// The body read as a problem answer.
    pub fn problem(&self) -> Problem {
        Problem::from_answer(self.status, &self.body)
    }

    /// A header's value, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An answer whose body is read chunk by chunk (event streams).
#[derive(Debug)]
pub struct Streaming {
    /// HTTP status code.
    pub status: u16,
    /// Answer headers.
    pub headers: HeaderMap,
    pub(super) body: Incoming,
    // Keeps the connection's sending half alive while the answer streams in.
    pub(super) _sender: Sender,
}

impl Streaming {
    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        while let Some(frame) = self.body.frame().await {
            let frame = frame.map_err(ClientError::Http)?;
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// Reads the rest of the body into a [`Response`] (for answers that are not streams).
    pub async fn into_response(self) -> Result<Response, ClientError> {
        Ok(Response {
            status: self.status,
            headers: self.headers,
            body: read_body(self.body).await?,
        })
    }
}
