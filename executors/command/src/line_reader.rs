//! Reads protocol lines from a buffered reader without ever holding more than the maximum line
//! length in memory: an over-long line is reported as soon as it passes the limit, not after
//! the supervisor (or whatever is on the other end) has sent gigabytes without a newline.

use std::io::{self, BufRead};

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    /// A line (without its `\n`) is in the buffer. The last line of the stream may lack `\n`.
    Line,
    /// The stream ended cleanly.
    Eof,
    /// The line is longer than the maximum; the stream cannot be trusted past it.
    TooLong,
}

/// Reads the next line into `buf` (cleared first), refusing lines over `max` bytes.
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    max: usize,
    buf: &mut Vec<u8>,
) -> io::Result<LineRead> {
    buf.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (take, consume, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, i + 1, true),
            None => (available.len(), available.len(), false),
        };
        if buf.len() + take > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(consume);
        if complete {
            return Ok(LineRead::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn lines(input: &[u8], max: usize) -> Vec<(LineRead, String)> {
        // A tiny buffer forces lines to span several `fill_buf` calls.
        let mut reader = BufReader::with_capacity(3, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let read = read_line_bounded(&mut reader, max, &mut buf).unwrap();
            let stop = read != LineRead::Line;
            out.push((read, String::from_utf8(buf.clone()).unwrap()));
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn splits_lines_across_buffer_refills() {
        assert_eq!(
            lines(b"hello\nworld\n", 8),
            [
                (LineRead::Line, "hello".into()),
                (LineRead::Line, "world".into()),
                (LineRead::Eof, String::new())
            ]
        );
    }

    #[test]
    fn last_line_without_newline_counts() {
        assert_eq!(
            lines(b"a\nbc", 8),
            [
                (LineRead::Line, "a".into()),
                (LineRead::Line, "bc".into()),
                (LineRead::Eof, String::new())
            ]
        );
    }

    #[test]
    fn line_of_exactly_max_passes_and_one_more_byte_fails() {
        assert_eq!(lines(b"12345\n", 5)[0], (LineRead::Line, "12345".into()));
        assert_eq!(lines(b"123456\n", 5)[0].0, LineRead::TooLong);
        assert_eq!(lines(b"123456", 5)[0].0, LineRead::TooLong);
    }
}
