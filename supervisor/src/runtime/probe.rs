//! Probing a runtime: run its probe command, read the interpreter path and version.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// What a successful probe found.
#[derive(Debug, Clone)]
pub(crate) struct Probed {
    pub(crate) interpreter: PathBuf,
    pub(crate) version: String,
}

/// Why a runtime is unavailable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("probe command `{program}` could not start: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("probe command `{program}` did not finish within {timeout:?}")]
    Timeout { program: String, timeout: Duration },
    #[error("probe command `{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("probe command `{program}` printed no absolute interpreter path on its first line")]
    NoInterpreter { program: String },
}

pub(crate) async fn run(command: &[String], timeout: Duration) -> Result<Probed, ProbeError> {
    let program = command.first().cloned().unwrap_or_default();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&command[1.min(command.len())..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| ProbeError::Spawn {
        program: program.clone(),
        source,
    })?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| ProbeError::Timeout {
            program: program.clone(),
            timeout,
        })?
        .map_err(|source| ProbeError::Spawn {
            program: program.clone(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr)
            .trim()
            .chars()
            .take(500)
            .collect();
        return Err(ProbeError::Failed {
            program,
            status: out.status,
            stderr,
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(str::trim);
    let interpreter = PathBuf::from(lines.next().unwrap_or_default());
    if !interpreter.is_absolute() {
        return Err(ProbeError::NoInterpreter { program });
    }
    let version = lines.next().unwrap_or_default().to_owned();
    Ok(Probed {
        interpreter,
        version,
    })
}
