//! The editor's tools a runtime declares: `[[check]]` (checkers behind `POST /v1/check`) and
//! `[[format]]` (formatters behind `POST /v1/format`, the first one installed wins). Each is a
//! command line and, for a checker, the name of the Rust parser that reads its output
//! (`crate::check::parse`), so adding a language's tools is editing its TOML file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a checker's output is read (one parser per tool output format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputParser {
    /// One JSON object per line: `{"path", "line", "column", "end_line"?, "end_column"?,
    /// "severity"?, "message"}` (what the Python compile checker prints).
    JsonLines,
    /// `path:line:col: message` (pyflakes).
    Pyflakes,
    /// `ruff check --output-format=json`.
    Ruff,
    /// `bash -n`: `path: line N: message`.
    Bash,
    /// `shellcheck -f json1`.
    ShellcheckJson1,
    /// GNU style `path:line:col: [severity:] message` (gcc, g++, gofmt -e, go vet).
    Gnu,
    /// `node --check`: `path:line`, the source line, a caret line, then `SyntaxError: …`.
    Node,
    /// javac: `path:line: error: message`, the source line, a caret line.
    Javac,
    /// mcs: `path(line,col): error CS1002: message`.
    Mcs,
    /// esbuild's log: `✘ [ERROR] message` then `    path:line:col:`.
    Esbuild,
}

/// One `[[check]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckDefinition {
    /// Name reported in `checkers` and as the diagnostics' `source` (`pyflakes`, `g++`).
    pub name: String,
    /// Command: the program (a name looked up in the check PATH, or `{interpreter}`) and its
    /// arguments. `{file}` runs it once per file checked, `{files}` once with all of them;
    /// `{executors}` is the shims folder (the runtime's own library for `javac`/`mcs`).
    pub run: Vec<String>,
    /// Which parser reads its stdout and stderr.
    pub parser: OutputParser,
    /// File extensions it reads; the runtime's `extensions` when empty.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Run only when this other checker of the runtime is not installed (pyflakes when ruff,
    /// which covers its rules, is missing).
    #[serde(default)]
    pub unless: Option<String>,
}

/// One `[[format]]` entry: reads the file on stdin, writes it formatted to stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatDefinition {
    /// Name reported as `formatter` (`ruff format`, `gofmt`).
    pub name: String,
    /// Command (as for a checker; `{path}` is the file's relative path, for tools that choose
    /// the language or read settings from the name).
    pub run: Vec<String>,
    /// File extensions it formats; the runtime's `extensions` when empty.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// What to install when it is missing, for the `formatter-unavailable` hint.
    pub install: String,
}

/// Placeholders a tool command may use.
const PLACEHOLDERS: [&str; 5] = [
    "{interpreter}",
    "{file}",
    "{files}",
    "{executors}",
    "{path}",
];

/// Checks the tools of one runtime file; problems are returned as `key: detail`.
pub fn validate(check: &[CheckDefinition], format: &[FormatDefinition]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in check.iter().enumerate() {
        let key = format!("check[{i}]");
        if c.name.is_empty() || !names.insert(c.name.as_str()) {
            return Err(format!("{key}.name: must be non-empty and unique"));
        }
        validate_command(&key, &c.run)?;
        let per_file = c.run.iter().any(|a| a.contains("{file}"));
        let all = c.run.iter().any(|a| a.contains("{files}"));
        if per_file == all {
            return Err(format!(
                "{key}.run: must name either {{file}} (once per file) or {{files}} (all at once)"
            ));
        }
        if c.run.iter().any(|a| a.contains("{path}")) {
            return Err(format!("{key}.run: {{path}} is for formatters"));
        }
    }
    for (i, c) in check.iter().enumerate() {
        if let Some(other) = &c.unless
            && !check.iter().any(|o| &o.name == other && o.name != c.name)
        {
            return Err(format!(
                "check[{i}].unless: {other:?} is not another checker of this runtime"
            ));
        }
    }
    for (i, f) in format.iter().enumerate() {
        let key = format!("format[{i}]");
        if f.name.is_empty() {
            return Err(format!("{key}.name: must not be empty"));
        }
        validate_command(&key, &f.run)?;
        if f.run.iter().any(|a| a.contains("{file}")) {
            return Err(format!(
                "{key}.run: a formatter reads stdin; use {{path}} for the file's name"
            ));
        }
    }
    Ok(())
}

fn validate_command(key: &str, run: &[String]) -> Result<(), String> {
    let Some(program) = run.first() else {
        return Err(format!("{key}.run: must name a command"));
    };
    if program.contains('/') && program != "{interpreter}" {
        return Err(format!(
            "{key}.run: the program is a name looked up in the check PATH or {{interpreter}}, not a path"
        ));
    }
    for arg in run {
        let mut rest = arg.as_str();
        while let Some(open) = rest.find('{') {
            let tail = &rest[open..];
            let Some(close) = tail.find('}') else { break };
            let word = &tail[..=close];
            // Only `{word}` is a placeholder; braces around other text (a Python f-string, a
            // JSON literal in an inline script) are the tool's own.
            let is_word = word[1..close]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_');
            if is_word && close > 1 && !PLACEHOLDERS.contains(&word) {
                return Err(format!("{key}.run: unknown placeholder {word}"));
            }
            rest = &tail[close + 1..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, run: &[&str]) -> CheckDefinition {
        CheckDefinition {
            name: name.into(),
            run: run.iter().map(|s| (*s).to_owned()).collect(),
            parser: OutputParser::Gnu,
            extensions: Vec::new(),
            env: BTreeMap::new(),
            unless: None,
        }
    }

    #[test]
    fn a_checker_names_its_files_one_way() {
        assert!(validate(&[check("a", &["gcc", "{files}"])], &[]).is_ok());
        assert!(validate(&[check("a", &["bash", "-n", "{file}"])], &[]).is_ok());
        let both = validate(&[check("a", &["x", "{file}", "{files}"])], &[]);
        assert!(both.unwrap_err().contains("either"));
        let none = validate(&[check("a", &["x"])], &[]);
        assert!(none.is_err());
    }

    #[test]
    fn unknown_placeholders_paths_and_dangling_unless_are_refused() {
        let e = validate(&[check("a", &["x", "{file}", "{home}"])], &[]).unwrap_err();
        assert!(e.contains("{home}"), "{e}");
        let e = validate(&[check("a", &["/usr/bin/x", "{file}"])], &[]).unwrap_err();
        assert!(e.contains("not a path"), "{e}");
        let mut c = check("a", &["x", "{file}"]);
        c.unless = Some("b".into());
        assert!(validate(&[c.clone()], &[]).unwrap_err().contains("unless"));
        assert!(validate(&[c, check("b", &["y", "{files}"])], &[]).is_ok());
    }
}
