//! Conformance runner: replays the transcripts in `vectors/*.jsonl` against a real executor.
//!
//! Every executor shim (Python, Node, the command executor, …) is tested by the same vectors, so
//! they all behave alike. The runner is synchronous (std processes and threads, no tokio) so that
//! any crate can call it from a plain `#[test]`; every read is bounded by [`STEP_TIMEOUT`] and the
//! executor is always killed and reaped, so a broken shim fails its test instead of hanging it.

mod pattern;
#[allow(unsafe_code)]
mod session;
mod vector;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Mode;

use session::Session;
use vector::{ExitExpectation, Step, Vector};

/// How long one expected message, or the executor's exit, may take to arrive.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a failed executor may go on writing stderr before it is killed.
const FAILURE_GRACE: Duration = Duration::from_millis(200);

/// An executor under test and the fixture script it serves.
#[derive(Debug, Clone)]
pub struct Shim {
    /// Name used in failure messages, e.g. `python-sync`.
    pub name: String,
    /// Program and arguments that start the executor.
    pub command: Vec<String>,
    /// Directory holding the fixture script; replaces `$ROOT` in vectors.
    pub fixture_root: PathBuf,
    /// Fixture entry relative to `fixture_root`; replaces `$ENTRY`.
    pub entry: String,
    /// Mode the shim runs in; replaces `$MODE` and selects the vectors that apply.
    pub mode: Mode,
    /// Extra environment for the executor process (the rest is cleared).
    pub env: Vec<(String, String)>,
}

/// Says that a test cannot run here because `why` (a missing toolchain): a loud line on stderr
/// and a pass, except in strict mode (`CI=true` or `RUNWARM_TEST_STRICT=1`), where it panics so
/// the test fails instead of skipping.
pub fn skip(why: &str) {
    use std::io::Write;
    let current = std::thread::current();
    // libtest names each test's thread after the test.
    let test = current.name().unwrap_or("conformance");
    let strict = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1");
    assert!(
        !strict,
        "{test}: {why}; strict mode (CI or RUNWARM_TEST_STRICT) makes this a failure, not a skip"
    );
    // libtest captures eprintln! of passing tests; the raw handle is not captured.
    let _ = writeln!(std::io::stderr(), "*** SKIPPED {test}: {why}");
}

/// The directory that holds the conformance vectors (`CARGO_MANIFEST_DIR/vectors`).
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Replays one vector against `shim`. The error names the step, what was expected, what arrived
/// and the executor's stderr.
pub fn run_vector(shim: &Shim, vector: &Path) -> Result<(), String> {
    let vector = Vector::load(vector)?;
    let mut session = Session::spawn(shim).map_err(|e| {
        format!(
            "[{}] vector {}: cannot start executor {:?}: {e}",
            shim.name, vector.name, shim.command
        )
    })?;
    let outcome = replay(shim, &vector, &mut session);
    if outcome.is_err() {
        // A failing executor is often still writing its traceback; give it a moment.
        let _ = session.wait_exit(FAILURE_GRACE);
    }
    let report = session.finish();
    let outcome = outcome.and_then(|()| {
        for text in vector.steps.iter().filter_map(|(_, step)| match step {
            Step::ExpectUserStdoutContains(text) => Some(text),
            _ => None,
        }) {
            if !report.user_stdout.contains(text.as_str()) {
                return Err(format!(
                    "user stdout (fd 3) does not contain {text:?}; it was:\n{}",
                    report.user_stdout
                ));
            }
        }
        Ok(())
    });
    outcome.map_err(|e| {
        format!(
            "[{}] vector {}: {e}\n--- executor stderr ---\n{}--- end of stderr ---",
            shim.name, vector.name, report.stderr
        )
    })
}

/// Runs every vector whose modes include `shim.mode`. Returns how many ran, or every failure.
pub fn run_all(shim: &Shim) -> Result<usize, String> {
    let paths = vector::list(&vectors_dir())?;
    let mut ran = 0;
    let mut failures = Vec::new();
    for path in &paths {
        match Vector::load(path) {
            Ok(v) if !v.modes.contains(&shim.mode) => continue,
            Ok(_) => {}
            Err(e) => {
                failures.push(e);
                continue;
            }
        }
        ran += 1;
        if let Err(e) = run_vector(shim, path) {
            failures.push(e);
        }
    }
    if ran == 0 {
        failures.push(format!(
            "no vector in {} applies to mode {}",
            vectors_dir().display(),
            shim.mode.as_str()
        ));
    }
    if failures.is_empty() {
        Ok(ran)
    } else {
        Err(format!(
            "{} of {ran} vectors failed for {}:\n\n{}",
            failures.len(),
            shim.name,
            failures.join("\n\n")
        ))
    }
}

fn replay(shim: &Shim, vector: &Vector, session: &mut Session) -> Result<(), String> {
    for (line, step) in &vector.steps {
        let at = format!("step at line {line}");
        match step {
            Step::Send(msg) => {
                let msg = vector::substitute(msg, shim);
                session
                    .send(&msg)
                    .map_err(|e| format!("{at}: sending {msg}: {e}"))?;
            }
            Step::Expect(pattern) => {
                let got = session
                    .next_message(STEP_TIMEOUT)
                    .map_err(|e| format!("{at}: expected {pattern}, got {e}"))?;
                pattern::check(pattern, &got)
                    .map_err(|e| format!("{at}: expected {pattern}, got {got} ({e})"))?;
            }
            Step::CloseStdin => session.close_stdin(),
            Step::ExpectExit(want) => {
                let status = session
                    .wait_exit(STEP_TIMEOUT)
                    .map_err(|e| format!("{at}: expected exit {want}, but {e}"))?;
                let ok = match want {
                    ExitExpectation::Code(code) => status.code() == Some(*code),
                    ExitExpectation::Nonzero => status.code() != Some(0),
                };
                if !ok {
                    return Err(format!("{at}: expected exit {want}, got {status}"));
                }
                if let Some(extra) = session.leftover_message() {
                    return Err(format!("{at}: unexpected message before exit: {extra}"));
                }
            }
            Step::ExpectUserStdoutContains(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in executor in sh: writes to fd 3 and stderr, answers the first line with
    /// `ready`, then behaves as `rest` says.
    fn sh_shim(rest: &str) -> Shim {
        let script = format!(
            "read -r line; echo user-out >&3; echo user-err >&2; \
             echo '{{\"type\":\"ready\",\"protocol\":1,\"runtime\":\"sh\",\"pid\":1}}'; {rest}"
        );
        Shim {
            name: "sh".into(),
            command: vec!["sh".into(), "-c".into(), script],
            fixture_root: "/nowhere".into(),
            entry: "x".into(),
            mode: Mode::Handler,
            env: vec![],
        }
    }

    fn vector(steps: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let header = r#"{"vector":"t","modes":["handler"],"description":"d"}"#;
        std::io::Write::write_all(&mut f, format!("{header}\n{steps}").as_bytes()).unwrap();
        f
    }

    const INIT: &str = r#"{"send":{"type":"init","protocol":1,"script":{"name":"n","version":"v","root":"$ROOT","entry":"$ENTRY"}}}"#;

    #[test]
    fn passing_conversation_with_fd3_output() {
        let v = vector(&format!(
            "{INIT}\n{{\"expect\":{{\"type\":\"ready\",\"pid\":\"$any\"}}}}\n\
             {{\"close_stdin\":true}}\n{{\"expect_exit\":0}}\n\
             {{\"expect_user_stdout_contains\":\"user-out\"}}"
        ));
        run_vector(&sh_shim("cat >/dev/null; exit 0"), v.path()).unwrap();
    }

    #[test]
    fn mismatch_reports_step_and_stderr() {
        let v = vector(&format!("{INIT}\n{{\"expect\":{{\"type\":\"pong\"}}}}"));
        let err = run_vector(&sh_shim("sleep 30"), v.path()).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("user-err"), "{err}");
    }

    #[test]
    fn garbage_on_the_protocol_channel_fails() {
        let v = vector(&format!(
            "{INIT}\n{{\"expect\":{{\"type\":\"ready\"}}}}\n{{\"expect\":{{\"type\":\"pong\"}}}}"
        ));
        let err = run_vector(&sh_shim("echo not-json; sleep 30"), v.path()).unwrap_err();
        assert!(err.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn missing_user_output_and_wrong_exit_fail() {
        let v = vector(&format!(
            "{INIT}\n{{\"expect\":{{\"type\":\"ready\"}}}}\n{{\"expect_user_stdout_contains\":\"absent\"}}"
        ));
        let err = run_vector(&sh_shim("sleep 30"), v.path()).unwrap_err();
        assert!(err.contains("absent"), "{err}");
        let v = vector(&format!(
            "{INIT}\n{{\"expect\":{{\"type\":\"ready\"}}}}\n{{\"expect_exit\":0}}"
        ));
        let err = run_vector(&sh_shim("exit 4"), v.path()).unwrap_err();
        assert!(err.contains("exit status: 4"), "{err}");
    }

    #[test]
    fn unexpected_message_before_exit_fails() {
        let v = vector(&format!(
            "{INIT}\n{{\"expect\":{{\"type\":\"ready\"}}}}\n{{\"expect_exit\":0}}"
        ));
        let err = run_vector(
            &sh_shim(r#"echo '{"type":"pong","id":"x"}'; exit 0"#),
            v.path(),
        )
        .unwrap_err();
        assert!(err.contains("unexpected message"), "{err}");
    }
}
