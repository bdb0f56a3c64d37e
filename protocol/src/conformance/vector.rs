//! Parsing of vector files: a header line, then one step per line (see PROTOCOL.md §9).

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Shim;
use crate::Mode;

/// How the executor must exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExitExpectation {
    /// Exactly this status code.
    Code(i32),
    /// Any status but 0, including death by signal.
    Nonzero,
}

impl fmt::Display for ExitExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitExpectation::Code(c) => write!(f, "status {c}"),
            ExitExpectation::Nonzero => f.write_str("a nonzero status"),
        }
    }
}

/// One line of a transcript after the header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Write this message to the executor's stdin.
    Send(Value),
    /// The next protocol message must match this pattern.
    Expect(Value),
    /// Close the executor's stdin (EOF).
    CloseStdin,
    /// The executor exits with this status within the step timeout.
    ExpectExit(ExitExpectation),
    /// Checked after the run against everything written on fd 3.
    ExpectUserStdoutContains(String),
}

/// A parsed vector file.
#[derive(Debug, Clone)]
pub(crate) struct Vector {
    pub name: String,
    pub modes: Vec<Mode>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub description: String,
    /// Steps with their 1-based line numbers.
    pub steps: Vec<(usize, Step)>,
}

impl Vector {
    pub fn load(path: &Path) -> Result<Vector, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read vector {}: {e}", path.display()))?;
        Vector::parse(&text).map_err(|e| format!("vector {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Vector, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or("empty vector file")?;
        let header: Value =
            serde_json::from_str(header).map_err(|e| format!("line 1: invalid header: {e}"))?;
        let name = header["vector"]
            .as_str()
            .ok_or("header lacks a string \"vector\"")?
            .to_owned();
        let modes = serde_json::from_value::<Vec<Mode>>(header["modes"].clone())
            .map_err(|e| format!("header \"modes\": {e}"))?;
        if modes.is_empty() {
            return Err("header \"modes\" is empty".into());
        }
        let description = header["description"].as_str().unwrap_or("").to_owned();
        let mut steps = Vec::new();
        for (n, line) in lines {
            let step = parse_step(line).map_err(|e| format!("line {n}: {e}"))?;
            steps.push((n, step));
        }
        Ok(Vector {
            name,
            modes,
            description,
            steps,
        })
    }
}

fn parse_step(line: &str) -> Result<Step, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let obj = value.as_object().ok_or("a step must be a JSON object")?;
    let mut keys = obj.iter();
    let (Some((key, arg)), None) = (keys.next(), keys.next()) else {
        return Err("a step must have exactly one key".into());
    };
    match key.as_str() {
        "send" if arg.is_object() => Ok(Step::Send(arg.clone())),
        "expect" if arg.is_object() => Ok(Step::Expect(arg.clone())),
        "close_stdin" => Ok(Step::CloseStdin),
        "expect_exit" => match arg {
            Value::String(s) if s == "nonzero" => Ok(Step::ExpectExit(ExitExpectation::Nonzero)),
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| Step::ExpectExit(ExitExpectation::Code(n)))
                .ok_or_else(|| format!("bad exit status {n}")),
            other => Err(format!(
                "expect_exit takes a number or \"nonzero\", not {other}"
            )),
        },
        "expect_user_stdout_contains" => arg
            .as_str()
            .map(|s| Step::ExpectUserStdoutContains(s.to_owned()))
            .ok_or_else(|| "expect_user_stdout_contains takes a string".into()),
        other => Err(format!(
            "unknown step {other:?} (or its argument has the wrong type)"
        )),
    }
}

/// Replaces `$ROOT`, `$ENTRY` and `$MODE` inside every string of `msg`.
pub(crate) fn substitute(msg: &Value, shim: &Shim) -> Value {
    match msg {
        Value::String(s) if s.contains('$') => Value::String(
            s.replace("$ROOT", &shim.fixture_root.to_string_lossy())
                .replace("$ENTRY", &shim.entry)
                .replace("$MODE", shim.mode.as_str()),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, shim)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, shim)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every `*.jsonl` file in `dir`, sorted by name.
pub(crate) fn list(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
#[path = "vector_tests.rs"]
mod tests;
