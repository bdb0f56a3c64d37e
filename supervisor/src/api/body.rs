//! Reading request bodies as JSON with a size limit and problem+json errors.
//!
//! axum's own `Json` extractor answers malformed bodies with `text/plain`; the API promises
//! problem+json everywhere, so bodies are read here instead.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use runwarm_protocol::RawJson;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::problem::Problem;

/// Deepest JSON nesting accepted; deeper documents are refused before they are parsed. The same
/// as a result's: a payload is stored in its record and listed with others, and every reader of
/// those must still be able to parse them (serde_json refuses a document's 128th level).
const MAX_DEPTH: usize = runwarm_protocol::raw_json::MAX_NESTING;

/// How long a request body may take: a grace for everything, then the bytes received must keep
/// up with a minimum average rate. A client that sends 1 byte a second is cut off shortly after
/// the grace, one that sends megabytes over a slow link keeps going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRate {
    /// Time any body may take, whatever its size.
    pub grace: Duration,
    /// Bytes per second the body must average beyond the grace.
    pub min_bytes_per_s: u64,
}

impl Default for BodyRate {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(10),
            min_bytes_per_s: 1024,
        }
    }
}

impl BodyRate {
    /// Latest time by which the next bytes must arrive, having received `got` since `start`.
    fn deadline(&self, start: Instant, got: usize) -> Instant {
        let earned = Duration::from_secs_f64(got as f64 / self.min_bytes_per_s.max(1) as f64);
        start + self.grace + earned.min(Duration::from_secs(86_400))
    }
}

/// Reads the body (at most `limit` bytes, at least at `rate`) and parses it as JSON; an empty
/// body is `empty`. A `Content-Length` above the limit is refused before any byte is read.
pub(crate) async fn json_body(
    body: Body,
    limit: usize,
    empty: Value,
    rate: BodyRate,
) -> Result<Value, Problem> {
    let bytes = read_body(body, limit, rate).await?;
    // Only a body of no bytes at all means "none"; whitespace alone is not JSON (and a client
    // that sends some meant to send something).
    if bytes.is_empty() {
        return Ok(empty);
    }
    not_too_deep(&bytes)?;
    super::strict_json::from_slice(&bytes).map_err(not_json)
}

/// Reads an invocation's payload like [`json_body`] (an empty body is `{}`) and keeps it as the
/// text it came in. The daemon never looks inside a payload unless the version has a `params`
/// schema: it is checked here for what the API refuses (syntax, a repeated key, depth, a number
/// beyond a double) and then written verbatim to the executor and the record, without building
/// a tree of it and serialising that tree twice.
pub(crate) async fn json_payload(
    body: Body,
    limit: usize,
    rate: BodyRate,
) -> Result<RawJson, Problem> {
    let bytes = read_body(body, limit, rate).await?;
    if bytes.is_empty() {
        return Ok(RawJson::from_value(&Value::Object(serde_json::Map::new())));
    }
    not_too_deep(&bytes)?;
    super::strict_json::check(&bytes).map_err(not_json)?;
    let text = runwarm_protocol::raw_json::minify(&bytes);
    let raw = serde_json::from_slice::<Box<RawValue>>(&text).map_err(not_json)?;
    RawJson::new(raw).map_err(|e| Problem::bad_request(format!("the request body is refused: {e}")))
}

fn not_too_deep(bytes: &[u8]) -> Result<(), Problem> {
    if runwarm_protocol::raw_json::nesting(bytes) > MAX_DEPTH {
        return Err(Problem::bad_request(format!(
            "the JSON body is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(())
}

fn not_json(e: serde_json::Error) -> Problem {
    Problem::bad_request(format!("the request body is not valid JSON: {e}"))
}

/// The body's bytes, within the size limit and the rate.
async fn read_body(mut body: Body, limit: usize, rate: BodyRate) -> Result<Bytes, Problem> {
    let hint = body.size_hint();
    if hint.lower() > limit as u64 {
        return Err(too_large(limit, Some(hint.lower())));
    }
    let declared = hint.exact();
    let start = Instant::now();
    // Most bodies come in one frame: keep it without copying.
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut got = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(rate.deadline(start, got), body.frame()).await {
            Err(_) => return Err(too_slow(got, declared, rate)),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Problem::bad_request(format!(
                    "the request body could not be read: {e}"
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        got += data.len();
        if got > limit {
            return Err(too_large(limit, None));
        }
        match &first {
            None if rest.is_empty() => first = Some(data),
            _ => {
                if let Some(f) = first.take() {
                    rest.extend_from_slice(&f);
                }
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

fn too_large(limit: usize, declared: Option<u64>) -> Problem {
    let said = declared.map_or(String::new(), |n| format!(" (Content-Length: {n})"));
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        format!("the request body is larger than the limit of {limit} bytes{said}"),
    )
    .hint(Some(
        "raise limits.max_body_bytes / limits.max_payload_bytes in the daemon config".into(),
    ))
}

fn too_slow(got: usize, declared: Option<u64>, rate: BodyRate) -> Problem {
    let of = declared.map_or(String::new(), |n| format!(" of {n}"));
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "body-too-slow",
        format!(
            "the request body arrived too slowly: {got}{of} bytes; after {} ms a body must \
             average at least {} bytes/s",
            rate.grace.as_millis(),
            rate.min_bytes_per_s
        ),
    )
    .hint(Some(
        "send the body with the request, or raise server.body_read_timeout_ms / \
         server.body_min_bytes_per_s in the daemon config"
            .into(),
    ))
}

/// A JSON object body as `T`; `shape` says what was expected. serde would also build a struct
/// from an array of its fields in order (`["sha256:…"]` as a tag body), which the API does not
/// take and the document does not promise: only objects are read.
pub(crate) fn from_object<T: DeserializeOwned>(body: Value, shape: &str) -> Result<T, Problem> {
    if !body.is_object() {
        return Err(Problem::bad_request(format!(
            "expected {shape}: the body must be a JSON object"
        )));
    }
    serde_json::from_value(body).map_err(|e| Problem::bad_request(format!("expected {shape}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deep_and_invalid_and_large_bodies_are_problems() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let p = json_body(Body::from(deep), 1 << 20, Value::Null, BodyRate::default())
            .await
            .unwrap_err();
        assert_eq!(p.status, 400);
        let p = json_body(
            Body::from("{nope"),
            1 << 20,
            Value::Null,
            BodyRate::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(p.status, 400);
        let p = json_body(
            Body::from(vec![b' '; 100]),
            10,
            Value::Null,
            BodyRate::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(p.status, 413);
        let v = json_body(
            Body::from(""),
            10,
            serde_json::json!({}),
            BodyRate::default(),
        )
        .await
        .unwrap();
        assert_eq!(v, serde_json::json!({}), "no body at all is the default");
        let p = json_body(
            Body::from("\r\n"),
            10,
            serde_json::json!({}),
            BodyRate::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(p.status, 400, "whitespace alone is not JSON");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_reading() {
        // A body whose length is known but whose bytes never come: only the header is used.
        let never =
            futures_util::stream::pending::<Result<hyper::body::Frame<Bytes>, std::io::Error>>();
        let body = http_body_util::StreamBody::new(never);
        let declared = Body::new(WithLength(body, 10 << 30));
        let p = json_body(declared, 1 << 20, Value::Null, BodyRate::default())
            .await
            .unwrap_err();
        assert_eq!(p.status, 413);
        assert!(
            p.detail.contains("Content-Length: 10737418240"),
            "{}",
            p.detail
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_slower_than_the_minimum_rate_is_refused() {
        let (tx, rx): (FrameTx, _) = tokio::sync::mpsc::channel(4);
        let body = channel_body(rx);
        let rate = BodyRate {
            grace: Duration::from_secs(10),
            min_bytes_per_s: 1024,
        };
        let dribble = tokio::spawn(async move {
            for _ in 0..100 {
                if tx
                    .send(Ok(hyper::body::Frame::data(Bytes::from_static(b" "))))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let started = Instant::now();
        let p = json_body(body, 1 << 20, Value::Null, rate)
            .await
            .unwrap_err();
        assert_eq!(p.status, 408, "{}", p.detail);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(11),
            "cut off just after the grace (paused clock): {took:?}"
        );
        dribble.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_body_at_a_good_rate_is_read_whole() {
        let (tx, rx): (FrameTx, _) = tokio::sync::mpsc::channel(4);
        let body = channel_body(rx);
        let rate = BodyRate {
            grace: Duration::from_secs(1),
            min_bytes_per_s: 1024,
        };
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"["))))
                .await;
            // 30 s in all, 4 KiB a second: slow, but above the minimum rate.
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let chunk = Bytes::from(format!("\"{}\",", "a".repeat(4093)));
                if tx.send(Ok(hyper::body::Frame::data(chunk))).await.is_err() {
                    return;
                }
            }
            let _ = tx
                .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"0]"))))
                .await;
        });
        let v = json_body(body, 1 << 20, Value::Null, rate).await.unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(31));
    }

    type FrameTx = tokio::sync::mpsc::Sender<Result<hyper::body::Frame<Bytes>, std::io::Error>>;

    /// A chunked body fed by a channel, as a client that sends a body in pieces.
    fn channel_body(
        rx: tokio::sync::mpsc::Receiver<Result<hyper::body::Frame<Bytes>, std::io::Error>>,
    ) -> Body {
        let frames =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            );
        Body::new(http_body_util::StreamBody::new(Box::pin(frames)))
    }

    /// A body with a declared length, as hyper makes one from `Content-Length`.
    struct WithLength<B>(B, u64);

    impl<B: HttpBody + Unpin> HttpBody for WithLength<B> {
        type Data = B::Data;
        type Error = B::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
            std::pin::Pin::new(&mut self.0).poll_frame(cx)
        }

        fn size_hint(&self) -> hyper::body::SizeHint {
            hyper::body::SizeHint::with_exact(self.1)
        }
    }

    #[test]
    fn only_objects_become_structs() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Tag {
            version: String,
        }
        let p = from_object::<Tag>(serde_json::json!(["sha256:0"]), "{\"version\"}").unwrap_err();
        assert_eq!(p.status, 400);
        assert!(from_object::<Tag>(serde_json::json!({"version": "x"}), "").is_ok());
    }
}
