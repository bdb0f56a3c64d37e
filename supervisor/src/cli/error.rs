//! Why a `runwarm` command stopped, with the outcome (and so the exit code) of each reason.

use std::path::PathBuf;

use crate::client::{BundleError, ClientError, Problem, SseError, TargetError};

use super::outcome::Outcome;

/// A command line that cannot be carried out as written.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// `-d @file` or a body file could not be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `-d -` could not read stdin.
    #[error("cannot read the payload from stdin")]
    ReadStdin(#[source] std::io::Error),
    /// The payload is not JSON.
    #[error("the payload from {from} is not valid JSON")]
    InvalidJson {
        /// `the command line`, `stdin` or the file.
        from: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// `NAME@VERSION` / `NAME:TAG` could not be read.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Anything else wrong with the arguments.
    #[error("{0}")]
    Invalid(String),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line cannot be used.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The script folder or file cannot be bundled.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// No usable answer from the daemon.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The daemon answered with an error status.
    #[error("{method} {path} answered {}", describe(problem))]
    Refused {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// The problem+json answer (boxed: it is large and rare).
        problem: Box<Problem>,
    },
    /// The event stream broke its framing.
    #[error("the event stream of runwarmd is broken")]
    Stream(#[source] SseError),
    /// Writing to stdout failed (other than the reader going away).
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    /// The console could not start or stopped serving.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// Writing a pulled version's folder failed.
    #[error("cannot write {}", path.display())]
    WriteFolder {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn describe(problem: &Problem) -> String {
    let mut text = problem.status.to_string();
    if let Some(code) = &problem.code {
        text.push_str(&format!(" {code}"));
    }
    for part in [&problem.title, &problem.detail] {
        if !part.is_empty() && !text.ends_with(part.as_str()) {
            text.push_str(": ");
            text.push_str(part);
        }
    }
    text
}

impl CliError {
    /// The outcome this failure stands for.
    pub fn outcome(&self) -> Outcome {
        match self {
            CliError::Usage(_) | CliError::Bundle(_) | CliError::WriteFolder { .. } => {
                Outcome::Usage
            }
            CliError::Refused { problem, .. } => Outcome::of_status(problem.status),
            CliError::Client(client) => match client {
                ClientError::InvalidRequest(_) => Outcome::Usage,
                ClientError::Connect { .. }
                | ClientError::Io(_)
                | ClientError::Http(_)
                | ClientError::InvalidResponse(_)
                | ClientError::Timeout(_) => Outcome::SystemError,
            },
            CliError::Stream(_) | CliError::Output(_) | CliError::Console(_) => {
                Outcome::SystemError
            }
        }
    }

    /// What the person might do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Client(e) => e.hint(),
            CliError::Bundle(e) => e.hint(),
            CliError::Refused { problem, .. } => problem.hint.clone(),
            CliError::Usage(UsageError::InvalidJson { .. }) => Some(
                "pass JSON inline (-d '{\"k\": 1}'), from a file (-d @payload.json) or from \
                 stdin (-d -)"
                    .into(),
            ),
            CliError::WriteFolder { .. } => {
                Some("pull into a new folder, or an empty one you may write to".into())
            }
            CliError::Console(crate::console::ConsoleError::Bind { .. }) => {
                Some("pick another port with --port, or --port 0 for a free one".into())
            }
            CliError::Usage(_)
            | CliError::Stream(_)
            | CliError::Output(_)
            | CliError::Console(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_their_exit_codes() {
        let refused = |status| CliError::Refused {
            method: "POST".into(),
            path: "/v1/scripts/x/invoke".into(),
            problem: Box::new(Problem {
                status,
                ..Problem::default()
            }),
        };
        let bad_json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let rows = [
            (CliError::Usage(UsageError::Invalid("x".into())), 2),
            (
                CliError::Usage(UsageError::InvalidJson {
                    from: "stdin".into(),
                    source: bad_json,
                }),
                2,
            ),
            (
                CliError::Bundle(BundleError::NoManifest { dir: "/x".into() }),
                2,
            ),
            (
                CliError::Client(ClientError::Connect {
                    socket: "/s".into(),
                    source: std::io::ErrorKind::NotFound.into(),
                }),
                5,
            ),
            (
                CliError::Client(ClientError::InvalidResponse("x".into())),
                5,
            ),
            (CliError::Client(ClientError::InvalidRequest("x".into())), 2),
            (refused(404), 4),
            (refused(400), 4),
            (refused(429), 4),
            (refused(503), 5),
            (refused(500), 5),
            (CliError::Stream(SseError { limit: 1 }), 5),
        ];
        for (err, code) in rows {
            assert_eq!(err.outcome().exit_code(), code, "{err:?}");
        }
    }

    #[test]
    fn refusals_read_as_one_line() {
        let err = CliError::Refused {
            method: "GET".into(),
            path: "/v1/scripts/nope".into(),
            problem: Box::new(Problem {
                status: 404,
                title: "unknown script".into(),
                detail: "no script named \"nope\"".into(),
                code: Some("E006".into()),
                ..Problem::default()
            }),
        };
        assert_eq!(
            err.to_string(),
            "GET /v1/scripts/nope answered 404 E006: unknown script: no script named \"nope\""
        );
    }
}
