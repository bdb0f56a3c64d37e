//! Readers of checker output: one function per tool output format, each turning what the tool
//! printed (stdout and stderr) into [`Diagnostic`]s with 1-based lines and columns. Paths are
//! left as the tool printed them; `crate::check` maps them back to the request's files.
//!
//! Each parser is tested on output captured from the real tool (the versions `.ci/toolchains`
//! installs), so a tool that changes its format fails here first.

mod caret;
mod gnu;
mod python;
mod shell;

use serde::Serialize;

use crate::runtime::OutputParser;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file does not compile or cannot run.
    Error,
    /// Likely a mistake.
    Warning,
    /// Style and hints.
    Info,
}

/// One finding of a checker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Diagnostic {
    /// The file, relative to the request's root.
    pub path: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1 (characters as the tool counts them).
    pub column: u32,
    /// Last line of the range, when the tool gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u32>,
    /// Column just past the range, when the tool gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
    /// How bad it is.
    pub severity: Severity,
    /// What the tool said.
    pub message: String,
    /// The checker that found it (`python`, `ruff`, `g++`, …).
    pub source: String,
}

impl Diagnostic {
    /// A point diagnostic; `source` is filled in by the caller.
    pub(crate) fn at(
        path: &str,
        line: u32,
        column: u32,
        severity: Severity,
        message: &str,
    ) -> Self {
        Self {
            path: path.to_owned(),
            line: line.max(1),
            column: column.max(1),
            end_line: None,
            end_column: None,
            severity,
            message: message.trim().to_owned(),
            source: String::new(),
        }
    }
}

/// Reads one run's output with the parser the runtime names.
pub fn parse(parser: OutputParser, stdout: &str, stderr: &str) -> Vec<Diagnostic> {
    match parser {
        OutputParser::JsonLines => python::json_lines(stdout),
        OutputParser::Pyflakes => python::pyflakes(stdout),
        OutputParser::Ruff => python::ruff(stdout),
        OutputParser::Bash => shell::bash(stderr),
        OutputParser::ShellcheckJson1 => shell::shellcheck_json1(stdout),
        OutputParser::Gnu => gnu::gnu(&format!("{stdout}\n{stderr}")),
        OutputParser::Mcs => gnu::mcs(&format!("{stdout}\n{stderr}")),
        OutputParser::Node => caret::node(stderr),
        OutputParser::Javac => caret::javac(stderr),
        OutputParser::Esbuild => caret::esbuild(stderr),
    }
}

/// A decimal number at the start of `s`, and the rest.
fn number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}
