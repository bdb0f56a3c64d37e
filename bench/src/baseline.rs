//! The baseline: the benchmark's handler run the way it would be without runwarm, as a fresh
//! `python3` process per call that loads `main.py`, calls `handler(payload, None)` and prints
//! the result as JSON.
//!
//! The real interpreter is resolved once (`sys.executable`), because the pyenv shim in front of
//! `python3` on this kind of host adds tens of milliseconds per start that are not Python's own
//! cost; the shim is still measured a few times and reported next to it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::measure::Summary;
use crate::scenarios::{HANDLER_PY, expected_result};

/// Loads main.py from `argv[1]`, calls its handler with the JSON payload in `argv[2]`.
const RUNNER: &str = "import importlib.util, json, sys
spec = importlib.util.spec_from_file_location('main', sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(module.handler(json.loads(sys.argv[2]), None)))";

/// What the baseline measured.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The interpreter `python3` on PATH resolves to.
    pub interpreter: PathBuf,
    /// Fresh processes of that interpreter.
    pub real: Summary,
    /// Fresh processes started through `python3` on PATH (the shim, when there is one).
    pub via_path: Summary,
}

/// Runs `runs` fresh processes of the real interpreter and `path_runs` through `python3` on PATH.
pub fn measure(runs: usize, path_runs: usize, payload: &Value) -> Result<Baseline> {
    let interpreter = resolve_interpreter()?;
    let dir = tempfile::Builder::new()
        .prefix("rwb-py")
        .tempdir()
        .context("creating a temporary directory for the baseline script")?;
    let script = dir.path().join("main.py");
    fs_err::write(&script, HANDLER_PY)?;
    let payload_text = payload.to_string();
    let expected = expected_result(payload);
    // One unmeasured run each so both start from a warm page cache, as the daemon's do.
    run_once(&interpreter, &script, &payload_text, &expected)?;
    run_once(Path::new("python3"), &script, &payload_text, &expected)?;
    let real = time_runs(runs, &interpreter, &script, &payload_text, &expected)?;
    let via_path = time_runs(
        path_runs,
        Path::new("python3"),
        &script,
        &payload_text,
        &expected,
    )?;
    Ok(Baseline {
        interpreter,
        real,
        via_path,
    })
}

/// `python3 -c 'import sys; print(sys.executable)'`: the binary behind any shim.
pub(crate) fn resolve_interpreter() -> Result<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .output()
        .context("running `python3` from PATH to find the real interpreter")?;
    ensure!(
        out.status.success(),
        "`python3 -c 'import sys; print(sys.executable)'` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    ensure!(
        !path.is_empty(),
        "python3 printed no sys.executable (an embedded interpreter?)"
    );
    Ok(PathBuf::from(path))
}

fn time_runs(
    runs: usize,
    interpreter: &Path,
    script: &Path,
    payload: &str,
    expected: &Value,
) -> Result<Summary> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        samples.push(run_once(interpreter, script, payload, expected)?);
    }
    Summary::of_durations(&samples).context("no baseline samples")
}

/// One fresh process, timed from spawn to exit with its output read and checked.
fn run_once(
    interpreter: &Path,
    script: &Path,
    payload: &str,
    expected: &Value,
) -> Result<Duration> {
    let started = Instant::now();
    let out = Command::new(interpreter)
        .arg("-c")
        .arg(RUNNER)
        .arg(script)
        .arg(payload)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", interpreter.display()))?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{} running the handler failed ({}): {}",
            interpreter.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let printed: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{} printed something that is not JSON: {}",
            interpreter.display(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })?;
    ensure!(
        &printed == expected,
        "{} returned {printed}, expected {expected}",
        interpreter.display()
    );
    Ok(took)
}
