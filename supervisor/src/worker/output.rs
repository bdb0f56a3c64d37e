//! Bounded capture of one invocation's user output (fd 2 and fd 3).
//!
//! Keeps the first and the last `cap / 2` bytes so both the start of the output and its final
//! lines survive a flood, and flags truncation. Lines of fd 3 that start with `@@` followed by a
//! JSON object are also parsed into structured log records.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::execution::LogRecord;

/// Structured log records kept per invocation; more are counted but dropped.
const MAX_LOGS: usize = 1000;
/// A `@@` line longer than this is not parsed (it is still kept as output).
const MAX_LOG_LINE: usize = 64 * 1024;

/// Head-and-tail byte buffer.
#[derive(Debug)]
pub struct Capture {
    cap_head: usize,
    cap_tail: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    /// A buffer that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        let cap_head = cap / 2;
        Self {
            cap_head,
            cap_tail: cap - cap_head,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.head.len() < self.cap_head {
            let n = (self.cap_head - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.cap_tail {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.cap_tail..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.cap_tail);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Whether bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }

    /// Total bytes seen.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept text (lossy UTF-8), with a marker where bytes were dropped.
    pub fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.truncated() {
            let dropped = self.total - (self.head.len() + self.tail.len()) as u64;
            out.push_str(&format!("\n…[{dropped} bytes truncated]…\n"));
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

/// Splits a byte stream into lines and picks out `@@{json}` log records.
#[derive(Debug, Default)]
pub struct LogScanner {
    partial: Vec<u8>,
    overlong: bool,
    /// Records found so far.
    pub logs: Vec<LogRecord>,
    /// Records dropped because of `MAX_LOGS`.
    pub dropped: usize,
}

impl LogScanner {
    /// Feeds bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let complete = chunk.last() == Some(&b'\n');
            if !self.overlong {
                if self.partial.len() + chunk.len() > MAX_LOG_LINE {
                    self.overlong = true;
                    self.partial.clear();
                } else {
                    self.partial.extend_from_slice(chunk);
                }
            }
            if complete {
                if !self.overlong {
                    let line = std::mem::take(&mut self.partial);
                    self.scan_line(&line);
                }
                self.overlong = false;
                self.partial.clear();
            }
        }
    }

    /// Treats what is left as a last line (the stream ended without `\n`).
    pub fn finish(&mut self) {
        if !self.overlong && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.scan_line(&line);
        }
    }

    fn scan_line(&mut self, line: &[u8]) {
        let Some(rest) = line.strip_prefix(b"@@") else {
            return;
        };
        let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(rest) else {
            return;
        };
        if self.logs.len() >= MAX_LOGS {
            self.dropped += 1;
            return;
        }
        self.logs.push(log_from_object(&mut obj));
    }
}

/// Builds a record from a JSON object: `level` and `message` (or `msg`) are lifted out, the
/// rest become fields (either nested under `fields` or given flat).
pub fn log_from_object(obj: &mut Map<String, Value>) -> LogRecord {
    let level = match obj.remove("level") {
        Some(Value::String(s)) => s,
        _ => "info".to_owned(),
    };
    let message = match obj.remove("message").or_else(|| obj.remove("msg")) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let fields = match obj.remove("fields") {
        Some(Value::Object(f)) if obj.is_empty() => f,
        Some(other) => {
            obj.insert("fields".into(), other);
            std::mem::take(obj)
        }
        None => std::mem::take(obj),
    };
    LogRecord {
        level,
        message,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Capture::new(16);
        c.push(b"hello\n");
        assert!(!c.truncated());
        assert_eq!(c.text(), "hello\n");
    }

    #[test]
    fn flood_keeps_head_and_tail() {
        let mut c = Capture::new(10);
        for i in 0..1000 {
            c.push(format!("{i}\n").as_bytes());
        }
        c.push(b"last\n");
        assert!(c.truncated());
        let t = c.text();
        assert!(t.starts_with("0\n1\n2\n"), "{t}");
        assert!(t.ends_with("last\n"), "{t}");
        assert!(t.contains("bytes truncated"), "{t}");
    }

    #[test]
    fn one_huge_chunk_keeps_its_end() {
        let mut c = Capture::new(8);
        let mut big = vec![b'x'; 100];
        big.extend_from_slice(b"END!");
        c.push(&big);
        assert!(c.text().ends_with("END!"));
        assert_eq!(c.total(), 104);
    }

    #[test]
    fn scanner_finds_log_lines_split_across_chunks() {
        let mut s = LogScanner::default();
        s.push(b"plain\n@@{\"level\":\"warn\",\"mess");
        s.push(b"age\":\"disk\",\"pct\":91}\n@@not json\n");
        assert_eq!(s.logs.len(), 1);
        assert_eq!(s.logs[0].level, "warn");
        assert_eq!(s.logs[0].message, "disk");
        assert_eq!(s.logs[0].fields["pct"], 91);
    }

    #[test]
    fn scanner_handles_a_last_line_without_newline() {
        let mut s = LogScanner::default();
        s.push(b"@@{\"message\":\"end\"}");
        assert!(s.logs.is_empty());
        s.finish();
        assert_eq!(s.logs[0].message, "end");
        assert_eq!(s.logs[0].level, "info");
    }
}
