//! JSON Lines codec with a maximum line length.
//!
//! Wraps tokio-util's `LinesCodec`. Unlike `LinesCodec`, an over-long line is not skipped: it is
//! a [`CodecError::LineTooLong`] and the session that sees it must treat the peer as faulty,
//! because the bytes after it can no longer be trusted to be framed the way the peer meant.

use std::marker::PhantomData;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder, LinesCodec, LinesCodecError};

/// Why a line could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent a line longer than the configured maximum.
    #[error("protocol line longer than {max} bytes")]
    LineTooLong {
        /// The configured maximum.
        max: usize,
    },
    /// The line is not a JSON object of a known message type.
    // The parser's complaint is in the message (not a `source`): the message is what reaches
    // an execution record, and without it the record says only that the line was bad.
    #[error("invalid protocol line ({error}): {excerpt:?}")]
    InvalidJson {
        /// The start of the offending line, for the log.
        excerpt: String,
        /// The parser's complaint.
        error: serde_json::Error,
    },
    /// Reading or writing the pipe failed.
    #[error("protocol pipe i/o failed")]
    Io(#[from] std::io::Error),
}

/// Encodes any serialisable message as one line; decodes lines into `D`.
#[derive(Debug)]
pub struct JsonLinesCodec<D> {
    lines: LinesCodec,
    max: usize,
    _decodes: PhantomData<fn() -> D>,
}

impl<D> JsonLinesCodec<D> {
    /// A codec that refuses lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            lines: LinesCodec::new_with_max_length(max),
            max,
            _decodes: PhantomData,
        }
    }
}

/// At most this many characters of a bad line are kept for error messages.
const EXCERPT_CHARS: usize = 200;

/// The first `EXCERPT_CHARS` characters of a line, for error messages.
pub fn excerpt(line: &str) -> String {
    line.chars().take(EXCERPT_CHARS).collect()
}

impl<D: DeserializeOwned> Decoder for JsonLinesCodec<D> {
    type Item = D;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D>, CodecError> {
        loop {
            let line = match self.lines.decode(src) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.map_err(e)),
            };
            if let Some(msg) = parse_line(&line)? {
                return Ok(Some(msg));
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<D>, CodecError> {
        loop {
            let line = match self.lines.decode_eof(src) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.map_err(e)),
            };
            if let Some(msg) = parse_line(&line)? {
                return Ok(Some(msg));
            }
        }
    }
}

impl<D> JsonLinesCodec<D> {
    fn map_err(&self, e: LinesCodecError) -> CodecError {
        match e {
            LinesCodecError::MaxLineLengthExceeded => CodecError::LineTooLong { max: self.max },
            LinesCodecError::Io(e) => CodecError::Io(e),
        }
    }
}

/// Blank lines (and a stray `\r`) carry nothing and are skipped; anything else must parse.
fn parse_line<D: DeserializeOwned>(line: &str) -> Result<Option<D>, CodecError> {
    let trimmed = line.trim_end_matches('\r');
    if trimmed.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(trimmed)
        .map(Some)
        .map_err(|error| CodecError::InvalidJson {
            excerpt: excerpt(trimmed),
            error,
        })
}

impl<D, T: Serialize> Encoder<T> for JsonLinesCodec<D> {
    type Error = CodecError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let line = serde_json::to_vec(&item).map_err(|error| CodecError::InvalidJson {
            excerpt: String::from("<outgoing message>"),
            error,
        })?;
        dst.reserve(line.len() + 1);
        dst.extend_from_slice(&line);
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExecutorMessage;

    fn codec() -> JsonLinesCodec<ExecutorMessage> {
        JsonLinesCodec::new(64)
    }

    #[test]
    fn decodes_two_messages_split_across_reads() {
        let mut c = codec();
        let mut buf = BytesMut::from(&b"{\"type\":\"pong\",\"id\":\"1\"}\n{\"type\":\"po"[..]);
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(ExecutorMessage::Pong { id: "1".into() })
        );
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"ng\",\"id\":\"2\"}\n");
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(ExecutorMessage::Pong { id: "2".into() })
        );
    }

    #[test]
    fn overlong_line_is_an_error_not_a_skip() {
        let mut c = codec();
        let mut buf = BytesMut::from(vec![b'x'; 100].as_slice());
        assert!(matches!(
            c.decode(&mut buf),
            Err(CodecError::LineTooLong { max: 64 })
        ));
    }

    #[test]
    fn garbage_is_invalid_json_with_excerpt() {
        let mut c = codec();
        let mut buf = BytesMut::from(&b"hello world\n"[..]);
        match c.decode(&mut buf) {
            Err(CodecError::InvalidJson { excerpt, .. }) => assert_eq!(excerpt, "hello world"),
            other => panic!("expected InvalidJson, got {other:?}"),
        }
    }

    #[test]
    fn blank_lines_are_skipped_and_crlf_tolerated() {
        let mut c = codec();
        let mut buf = BytesMut::from(&b"\n\r\n{\"type\":\"pong\",\"id\":\"1\"}\r\n"[..]);
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(ExecutorMessage::Pong { id: "1".into() })
        );
    }

    #[test]
    fn encodes_one_line() {
        let mut c = codec();
        let mut buf = BytesMut::new();
        c.encode(crate::SupervisorMessage::Ping { id: "p".into() }, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], b"{\"type\":\"ping\",\"id\":\"p\"}\n");
    }
}
