//! From what the script did to the `response` it gets: the last non-empty line of its stdout
//! (tracked chunk by chunk, bounded in memory) and how it ended (exit code or signal).

use nix::sys::signal::Signal;
use runwarm_protocol::ErrorBody;
use serde_json::Value;

/// How the script's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit(code)`.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

/// The fields of a `response` that depend on the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the script succeeded (exit code 0).
    pub success: bool,
    /// The parsed last line on success (`null` when it is not JSON).
    pub result: Option<Value>,
    /// Why it failed.
    pub error: Option<ErrorBody>,
    /// The exit code, `128 + n` for death by signal `n` as a shell reports it.
    pub exit_code: i32,
}

/// The last non-empty line seen so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Last {
    #[default]
    Nothing,
    Line(Vec<u8>),
    /// Longer than the cap: cannot be a result the supervisor would accept anyway.
    TooLong,
}

/// Tracks the last non-empty line of a byte stream fed in arbitrary chunks. Holds at most one
/// line of up to `max` bytes plus the last complete one, whatever the script prints.
#[derive(Debug)]
pub struct LastLine {
    max: usize,
    current: Vec<u8>,
    current_too_long: bool,
    last: Last,
}

impl LastLine {
    /// A tracker that gives up on lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            current: Vec::new(),
            current_too_long: false,
            last: Last::Nothing,
        }
    }

    /// Feeds the next chunk of output.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            self.append(&chunk[..pos]);
            self.end_line();
            chunk = &chunk[pos + 1..];
        }
        self.append(chunk);
    }

    /// Ends the stream (a last line without `\n` counts) and gives the result the line stands
    /// for: its JSON value, or `null` when there is no line or it is not JSON.
    pub fn into_result(mut self) -> Value {
        self.end_line();
        match self.last {
            Last::Line(line) => serde_json::from_slice(&line).unwrap_or(Value::Null),
            Last::Nothing | Last::TooLong => Value::Null,
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.current_too_long {
            return;
        }
        if self.current.len() + bytes.len() > self.max {
            self.current_too_long = true;
            self.current = Vec::new();
            return;
        }
        self.current.extend_from_slice(bytes);
    }

    fn end_line(&mut self) {
        if self.current_too_long {
            self.last = Last::TooLong;
        } else if !self.current.trim_ascii().is_empty() {
            self.last = Last::Line(std::mem::take(&mut self.current));
        }
        self.current.clear();
        self.current_too_long = false;
    }
}

/// The response fields for a script that ended with `exit` and printed `result` last.
pub fn outcome(exit: Exit, result: Value) -> Outcome {
    match exit {
        Exit::Code(0) => Outcome {
            success: true,
            result: Some(result),
            error: None,
            exit_code: 0,
        },
        Exit::Code(code) => Outcome {
            success: false,
            result: None,
            error: Some(ErrorBody {
                kind: "ExitCode".to_owned(),
                message: format!("exited with code {code}"),
                trace: None,
            }),
            exit_code: code,
        },
        Exit::Signal(n) => Outcome {
            success: false,
            result: None,
            error: Some(ErrorBody {
                kind: "Signal".to_owned(),
                message: format!("killed by signal {n} ({})", signal_name(n)),
                trace: None,
            }),
            exit_code: 128 + n,
        },
    }
}

fn signal_name(n: i32) -> &'static str {
    Signal::try_from(n).map_or("unknown", Signal::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result_of(chunks: &[&[u8]]) -> Value {
        let mut last = LastLine::new(64);
        for chunk in chunks {
            last.feed(chunk);
        }
        last.into_result()
    }

    #[test]
    fn last_json_line_is_the_result() {
        assert_eq!(result_of(&[b"progress\n{\"a\":1}\n"]), json!({"a": 1}));
    }

    #[test]
    fn trailing_blank_lines_and_crlf_are_skipped() {
        assert_eq!(result_of(&[b"{\"a\":2}\r\n\n  \n"]), json!({"a": 2}));
    }

    #[test]
    fn line_split_across_chunks_and_without_newline() {
        assert_eq!(result_of(&[b"x\n{\"a\"", b":", b"3}"]), json!({"a": 3}));
    }

    #[test]
    fn non_json_last_line_or_no_output_is_null() {
        assert_eq!(result_of(&[b"{\"a\":1}\ndone\n"]), Value::Null);
        assert_eq!(result_of(&[]), Value::Null);
        assert_eq!(result_of(&[b"\n\n"]), Value::Null);
    }

    #[test]
    fn scalars_are_results_too() {
        assert_eq!(result_of(&[b"42\n"]), json!(42));
        assert_eq!(result_of(&[b"\"ok\"\n"]), json!("ok"));
    }

    #[test]
    fn overlong_last_line_is_null_but_shorter_later_line_counts() {
        let long = vec![b'1'; 100];
        assert_eq!(result_of(&[b"{\"a\":1}\n", &long, b"\n"]), Value::Null);
        assert_eq!(result_of(&[&long, b"\n", b"7\n"]), json!(7));
    }

    #[test]
    fn exit_zero_succeeds_with_result() {
        let o = outcome(Exit::Code(0), json!({"x": 1}));
        assert!(o.success);
        assert_eq!(o.result, Some(json!({"x": 1})));
        assert_eq!(o.error, None);
        assert_eq!(o.exit_code, 0);
    }

    #[test]
    fn nonzero_exit_fails_with_code() {
        let o = outcome(Exit::Code(3), json!({"x": 1}));
        assert!(!o.success);
        assert_eq!(o.result, None);
        let error = o.error.unwrap();
        assert_eq!(error.kind, "ExitCode");
        assert_eq!(error.message, "exited with code 3");
        assert_eq!(o.exit_code, 3);
    }

    #[test]
    fn signal_death_maps_to_128_plus_n() {
        let o = outcome(Exit::Signal(9), Value::Null);
        assert!(!o.success);
        let error = o.error.unwrap();
        assert_eq!(error.kind, "Signal");
        assert_eq!(error.message, "killed by signal 9 (SIGKILL)");
        assert_eq!(o.exit_code, 137);
    }
}
