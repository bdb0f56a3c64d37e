//! Where `runwarm` writes: data on stdout (pretty JSON on a terminal, compact otherwise),
//! messages and errors on stderr, a `hint:` line after a blank one when there is a hint.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use serde_json::Value;

use super::error::CliError;

/// Writes data to stdout. A reader that went away (`runwarm ls | head`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        Ok(()) | Err(_) => Ok(()),
    }
}

/// Writes text to stdout, ending it with a newline if it has none.
pub fn print_text(text: &str) -> Result<(), CliError> {
    if text.is_empty() || text.ends_with('\n') {
        write_stdout(text.as_bytes())
    } else {
        write_stdout(format!("{text}\n").as_bytes())
    }
}

/// Writes JSON to stdout: indented for a person at a terminal, one line for a program.
pub fn print_json(value: &Value) -> Result<(), CliError> {
    let text = if std::io::stdout().is_terminal() {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // Serialising a `Value` cannot fail; an empty line is the harmless fallback anyway.
    print_text(&format!("{}\n", text.unwrap_or_default()))
}

/// `text` with its control characters but tab written as escapes (`\u{1b}`), for text from a
/// script or a registrant shown inside runwarm's own lines (an error, a table cell): an escape
/// sequence there could move the cursor, retitle the terminal or hide the lines around it.
/// Output a person asked for as it is (`logs`, `--show-output`) is passed through unchanged, as
/// the script itself would have printed it.
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes text to stderr, ending it with a newline if it has none.
pub fn print_stderr(text: &str) {
    if text.is_empty() {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    // Nowhere left to report a failing stderr.
    let _ = stderr.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stderr.write_all(b"\n");
    }
}

/// A one-line message for the person (`registered …`, `disabled …`).
pub fn note(text: &str) {
    print_stderr(text);
}

/// The full report of a failure: the error, its causes, parameter violations, then the hint.
pub fn format_error(err: &CliError) -> String {
    let mut text = format!("error: {err}\n");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!("  caused by: {cause}\n"));
        source = cause.source();
    }
    if let CliError::Refused { problem, .. } = err {
        for v in &problem.violations {
            let pointer = if v.pointer.is_empty() {
                "/"
            } else {
                &v.pointer
            };
            text.push_str(&format!("  {pointer}: {}\n", v.message));
        }
    }
    if let Some(hint) = err.hint() {
        text.push_str(&format!("\nhint: {hint}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::client::{ClientError, Problem, Violation};

    use super::*;

    #[test]
    fn control_characters_are_shown_as_escapes_and_tabs_kept() {
        assert!(matches!(printable("plain\ttext é"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}red\u{1b}[31m\r\n\u{9b}"),
            "\\u{1b}]0;pwned\\u{7}red\\u{1b}[31m\\r\\n\\u{9b}"
        );
    }

    #[test]
    fn errors_list_causes_violations_and_the_hint() {
        let refused = CliError::Refused {
            method: "POST".into(),
            path: "/v1/scripts/greet/invoke".into(),
            problem: Box::new(Problem {
                status: 400,
                title: "invalid parameters".into(),
                code: Some("E006".into()),
                hint: Some("see `runwarm show greet` for the schema".into()),
                violations: vec![
                    Violation {
                        pointer: "/name".into(),
                        message: "must be a string".into(),
                    },
                    Violation {
                        pointer: String::new(),
                        message: "missing `name`".into(),
                    },
                ],
                ..Problem::default()
            }),
        };
        assert_eq!(
            format_error(&refused),
            "error: POST /v1/scripts/greet/invoke answered 400 E006: invalid parameters\n  \
             /name: must be a string\n  /: missing `name`\n\nhint: see `runwarm show greet` \
             for the schema\n"
        );
        let connect = CliError::Client(ClientError::Connect {
            socket: "/x.sock".into(),
            source: std::io::ErrorKind::NotFound.into(),
        });
        let text = format_error(&connect);
        assert!(text.starts_with("error: cannot connect to runwarmd at /x.sock\n  caused by: "));
        assert!(text.contains("\n\nhint: is runwarmd running?"), "{text}");
    }
}
