//! LSP's base protocol on a language server's stdio: `Content-Length: N\r\n` headers, a blank
//! line, then N bytes of JSON. The WebSocket side carries one message per text frame, so the
//! bridge only adds and strips this framing, bounded by [`MAX_MESSAGE`].

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Largest message either way (a completion list of a big module is a few MiB at most).
pub const MAX_MESSAGE: usize = 16 << 20;

/// Longest header line accepted.
const MAX_HEADER_LINE: usize = 1024;

/// Why the server's output is no longer LSP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    /// A header line without a usable `Content-Length`, or too long.
    #[error("bad header from the language server: {0}")]
    Header(String),
    /// A message over [`MAX_MESSAGE`].
    #[error("a {0}-byte message from the language server is over the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    /// The body is not UTF-8 (a WebSocket text frame must be).
    #[error("a message from the language server is not UTF-8")]
    NotText,
    /// Reading failed.
    #[error("reading the language server's output: {0}")]
    Io(String),
}

/// `body` framed for the server's stdin.
pub fn encode(body: &str) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The next message from `r`; `None` at a clean end of the stream.
pub async fn read_message(
    r: &mut (impl AsyncBufRead + Unpin),
) -> Result<Option<String>, FramingError> {
    let mut length: Option<usize> = None;
    let mut seen_header = false;
    loop {
        let mut line = Vec::new();
        let n = (&mut *r)
            .take(MAX_HEADER_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| FramingError::Io(e.to_string()))?;
        if n == 0 {
            return if seen_header {
                Err(FramingError::Io("the stream ended inside a header".into()))
            } else {
                Ok(None)
            };
        }
        if line.len() > MAX_HEADER_LINE || !line.ends_with(b"\n") {
            return Err(FramingError::Header("a header line is too long".into()));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if !seen_header {
                continue;
            }
            break;
        }
        seen_header = true;
        let Some((name, value)) = text.split_once(':') else {
            return Err(FramingError::Header(text.chars().take(100).collect()));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let n = value
                .trim()
                .parse::<usize>()
                .map_err(|_| FramingError::Header(text.chars().take(100).collect()))?;
            length = Some(n);
        }
    }
    let Some(length) = length else {
        return Err(FramingError::Header("no Content-Length".into()));
    };
    if length > MAX_MESSAGE {
        return Err(FramingError::TooLarge(length));
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body)
        .await
        .map_err(|e| FramingError::Io(e.to_string()))?;
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| FramingError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_and_the_stream_ends_cleanly() {
        let mut wire = encode(r#"{"jsonrpc":"2.0","id":1}"#);
        wire.extend(b"Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}");
        let mut r = &wire[..];
        assert_eq!(
            read_message(&mut r).await.unwrap().as_deref(),
            Some(r#"{"jsonrpc":"2.0","id":1}"#)
        );
        assert_eq!(read_message(&mut r).await.unwrap().as_deref(), Some("{}"));
        assert_eq!(read_message(&mut r).await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_and_broken_frames_are_errors() {
        let big = format!("Content-Length: {}\r\n\r\n", MAX_MESSAGE + 1);
        let mut r = big.as_bytes();
        assert_eq!(
            read_message(&mut r).await,
            Err(FramingError::TooLarge(MAX_MESSAGE + 1))
        );
        let mut r = &b"Content-Length: x\r\n\r\n"[..];
        assert!(matches!(
            read_message(&mut r).await,
            Err(FramingError::Header(_))
        ));
        let mut r = &b"Content-Type: a\r\n\r\n{}"[..];
        assert!(matches!(
            read_message(&mut r).await,
            Err(FramingError::Header(_))
        ));
        let long = vec![b'a'; 5000];
        let mut r = &long[..];
        assert!(matches!(
            read_message(&mut r).await,
            Err(FramingError::Header(_))
        ));
        let mut r = &b"Content-Length: 10\r\n\r\n{}"[..];
        assert!(matches!(
            read_message(&mut r).await,
            Err(FramingError::Io(_))
        ));
    }
}
