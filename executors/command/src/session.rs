//! The protocol session on fd 0 and fd 1: `init` → `ready` (or `init_error`), then `request` →
//! `response`, `ping` → `pong`, until `shutdown` or EOF. One request at a time, as the protocol
//! requires, so the loop runs each request to completion before it reads the next line.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use runwarm_protocol::codec::excerpt;
use runwarm_protocol::{ErrorBody, ExecutorMessage, PROTOCOL_VERSION, SupervisorMessage};
use serde_json::Value;

use crate::line_reader::{LineRead, read_line_bounded};
use crate::run::{Runner, Script};
use crate::signals::TERMINATED_EXIT;

/// Exit status of an executor that cannot serve more requests (`EX_TEMPFAIL`): the supervisor
/// replaces it.
const SPENT_EXIT: u8 = 75;

/// Message types this executor understands; others are skipped so newer supervisors can add
/// messages without breaking it.
const KNOWN_TYPES: [&str; 4] = ["init", "request", "ping", "shutdown"];

/// Serves the session until it ends; the exit code says how.
pub fn serve(runner: &Runner<'_>, input: &mut impl BufRead, output: &mut impl Write) -> ExitCode {
    let mut script: Option<Script> = None;
    let mut line = Vec::new();
    loop {
        match read_line_bounded(input, runner.max_line, &mut line) {
            Ok(LineRead::Line) => {}
            Ok(LineRead::Eof) => return ExitCode::SUCCESS,
            Ok(LineRead::TooLong) => {
                return fault(format!(
                    "protocol line longer than {} bytes",
                    runner.max_line
                ));
            }
            Err(e) => return fault(format!("reading the protocol pipe: {e}")),
        }
        let message = match parse(&line) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(e) => return fault(e),
        };
        let reply = match message {
            SupervisorMessage::Init {
                protocol,
                script: init,
                env,
            } => {
                if script.is_some() {
                    eprintln!("runwarm-exec-command: ignoring a second init");
                    continue;
                }
                match check_init(protocol, &init.root, &init.entry) {
                    Ok(entry) => {
                        script = Some(Script {
                            root: init.root,
                            entry,
                            env,
                        });
                        ExecutorMessage::Ready {
                            protocol: PROTOCOL_VERSION,
                            runtime: format!("command:{}", runner.template.program_name()),
                            pid: i64::from(std::process::id()),
                        }
                    }
                    Err(error) => {
                        let _ = send(output, &ExecutorMessage::InitError { error });
                        return ExitCode::FAILURE;
                    }
                }
            }
            SupervisorMessage::Request {
                id,
                payload,
                context,
            } => match &script {
                Some(script) => match payload.to_value() {
                    Ok(payload) => runner.run(script, id, &payload, &context),
                    Err(e) => ExecutorMessage::Response {
                        id,
                        success: false,
                        result: None,
                        error: Some(ErrorBody {
                            kind: "PayloadError".to_owned(),
                            message: format!("the payload is not JSON: {e}"),
                            trace: None,
                        }),
                        exit_code: None,
                    },
                },
                None => ExecutorMessage::Response {
                    id,
                    success: false,
                    result: None,
                    error: Some(ErrorBody {
                        kind: "NotInitialized".to_owned(),
                        message: "request before init".to_owned(),
                        trace: None,
                    }),
                    exit_code: None,
                },
            },
            SupervisorMessage::Ping { id } => ExecutorMessage::Pong { id },
            SupervisorMessage::Shutdown { .. } => return ExitCode::SUCCESS,
        };
        if let Err(e) = send(output, &reply) {
            eprintln!("runwarm-exec-command: writing to the protocol pipe: {e}");
            return ExitCode::FAILURE;
        }
        if runner.slot.termination_requested() {
            return ExitCode::from(TERMINATED_EXIT);
        }
        if runner.is_spent() {
            return ExitCode::from(SPENT_EXIT);
        }
    }
}

/// `Ok(None)` for blank lines and unknown message types; `Err` for anything unparseable.
fn parse(line: &[u8]) -> Result<Option<SupervisorMessage>, String> {
    if line.trim_ascii().is_empty() {
        return Ok(None);
    }
    let shown = || excerpt(&String::from_utf8_lossy(line));
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| format!("invalid protocol line {:?}: {e}", shown()))?;
    let Some(kind) = value.get("type").and_then(Value::as_str).map(str::to_owned) else {
        return Err(format!("protocol line without a type {:?}", shown()));
    };
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("invalid {kind} message {:?}: {e}", shown()))
}

/// The absolute entry path when `init` can be served, the `init_error` body otherwise.
fn check_init(protocol: u32, root: &str, entry: &str) -> Result<std::path::PathBuf, ErrorBody> {
    if protocol != PROTOCOL_VERSION {
        return Err(ErrorBody {
            kind: "ProtocolVersion".to_owned(),
            message: format!(
                "protocol {protocol} is not supported (this executor speaks {PROTOCOL_VERSION})"
            ),
            trace: None,
        });
    }
    let path = Path::new(root).join(entry);
    let problem = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => return Ok(path),
        Ok(_) => "is not a regular file".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
    };
    Err(ErrorBody {
        kind: "EntryNotFound".to_owned(),
        message: format!("entry {} {problem}", path.display()),
        trace: None,
    })
}

fn send(output: &mut impl Write, message: &ExecutorMessage) -> io::Result<()> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    output.write_all(&line)?;
    output.flush()
}

fn fault(why: String) -> ExitCode {
    eprintln!("runwarm-exec-command: {why}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_blank_lines_are_skipped() {
        assert_eq!(parse(b"  \r"), Ok(None));
        assert_eq!(parse(br#"{"type":"telemetry","x":1}"#), Ok(None));
    }

    #[test]
    fn known_types_parse_and_garbage_fails() {
        assert_eq!(
            parse(br#"{"type":"ping","id":"p"}"#),
            Ok(Some(SupervisorMessage::Ping { id: "p".into() }))
        );
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"id":"no type"}"#).is_err());
        assert!(parse(br#"{"type":"ping"}"#).is_err());
    }

    #[test]
    fn init_checks_protocol_and_entry() {
        let dir = std::env::temp_dir();
        let err = check_init(2, "/", "etc").unwrap_err();
        assert_eq!(err.kind, "ProtocolVersion");
        let err = check_init(1, dir.to_str().unwrap(), "no-such-entry-file").unwrap_err();
        assert_eq!(err.kind, "EntryNotFound");
        let err = check_init(1, "/", "tmp").unwrap_err();
        assert!(
            err.message.contains("not a regular file"),
            "{}",
            err.message
        );
    }
}
