//! Server-Sent Events framing (`event: NAME\ndata: JSON\n\n`), fed chunk by chunk.
//!
//! Chunks split frames anywhere, even inside a UTF-8 sequence, so bytes are buffered until a
//! blank line ends a frame. The buffer is bounded: a daemon that never ends a frame gets an
//! error, not an ever-growing allocation.

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when absent, as the SSE spec says.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, when present.
    pub id: Option<String>,
}

/// A frame longer than the parser accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event stream frame over {limit} bytes without an end")]
pub struct SseError {
    /// The limit.
    pub limit: usize,
}

/// Incremental parser.
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    // Bytes of `buf` already searched for a frame end, so a frame arriving in many small
    // chunks is scanned once, not once per chunk.
    scanned: usize,
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(16 * 1024 * 1024)
    }
}

impl SseParser {
    /// A parser refusing frames longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            scanned: 0,
            limit,
        }
    }

    /// Adds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((frame_len, sep_len)) = find_frame_end(&self.buf, self.scanned) {
            let frame = String::from_utf8_lossy(&self.buf[..frame_len]).into_owned();
            self.buf.drain(..frame_len + sep_len);
            self.scanned = 0;
            if let Some(event) = parse_frame(&frame) {
                events.push(event);
            }
        }
        // A separator is at most 4 bytes, so its start may sit in the last 3 scanned ones.
        self.scanned = self.buf.len().saturating_sub(3);
        if self.buf.len() > self.limit {
            self.buf.clear();
            self.scanned = 0;
            return Err(SseError { limit: self.limit });
        }
        Ok(events)
    }
}

/// Finds the first blank line: returns (frame length, separator length).
fn find_frame_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < buf.len() {
        for sep in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buf[i..].starts_with(sep) {
                return Some((i, sep.len()));
            }
        }
        i += 1;
    }
    None
}

fn parse_frame(frame: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data: Option<String> = None;
    let mut id = None;
    for line in frame.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            "id" => id = Some(value.to_owned()),
            _ => {}
        }
    }
    // A frame of comments only (keep-alive pings) carries no event.
    if event.is_none() && data.is_none() {
        return None;
    }
    Some(SseEvent {
        event: event.unwrap_or_else(|| "message".to_owned()),
        data: data.unwrap_or_default(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frames_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: stdout\nda").unwrap().is_empty());
        let events = p
            .push(b"ta: {\"line\":\"hi\"}\n\nevent: end\ndata: {}\n\n")
            .unwrap();
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "stdout".into(),
                    data: "{\"line\":\"hi\"}".into(),
                    id: None
                },
                SseEvent {
                    event: "end".into(),
                    data: "{}".into(),
                    id: None
                },
            ]
        );
    }

    #[test]
    fn joins_data_lines_skips_comments_and_defaults_the_name() {
        let mut p = SseParser::default();
        let events = p
            .push(b": ping\n\nid: 7\r\ndata: a\r\ndata:b\r\n\r\n")
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "a\nb");
        assert_eq!(events[0].id.as_deref(), Some("7"));
    }

    #[test]
    fn survives_a_utf8_sequence_split_between_chunks() {
        let mut p = SseParser::default();
        let text = "data: é\n\n".as_bytes();
        assert!(p.push(&text[..7]).unwrap().is_empty());
        assert_eq!(p.push(&text[7..]).unwrap()[0].data, "é");
    }

    #[test]
    fn refuses_an_endless_frame() {
        let mut p = SseParser::new(16);
        assert_eq!(
            p.push(b"data: 0123456789abcdef").unwrap_err(),
            SseError { limit: 16 }
        );
    }
}
