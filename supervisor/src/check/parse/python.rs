//! Python: the interpreter's own compile (JSON lines written by the runtime's check command),
//! pyflakes and `ruff check --output-format=json`.
//!
//! Syntax errors come from the compile checker only (the interpreter's verdict is the one that
//! counts at registration); pyflakes and ruff repeat them, so their copies are dropped.

use serde::Deserialize;

use super::{Diagnostic, Severity, number};

#[derive(Deserialize)]
struct JsonLine {
    path: String,
    line: Option<u32>,
    column: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
    severity: Option<String>,
    message: String,
}

/// One JSON object per line; other lines are ignored.
pub(super) fn json_lines(out: &str) -> Vec<Diagnostic> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<JsonLine>(l.trim()).ok())
        .map(|j| {
            let severity = match j.severity.as_deref() {
                Some("warning") => Severity::Warning,
                Some("info") => Severity::Info,
                _ => Severity::Error,
            };
            let mut d = Diagnostic::at(
                &j.path,
                j.line.unwrap_or(1),
                j.column.unwrap_or(1),
                severity,
                &j.message,
            );
            d.end_line = j.end_line.filter(|&l| l >= d.line);
            d.end_column = j.end_column.filter(|&c| c >= 1);
            d
        })
        .collect()
}

/// `path:line:col: message` on stdout (syntax errors, on stderr, are not read).
pub(super) fn pyflakes(out: &str) -> Vec<Diagnostic> {
    out.lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once(':')?;
            let (line, rest) = number(rest)?;
            let rest = rest.strip_prefix(':')?;
            let (column, rest) = number(rest)?;
            let message = rest.strip_prefix(':')?;
            let severity = if message.contains("undefined name") {
                Severity::Error
            } else {
                Severity::Warning
            };
            Some(Diagnostic::at(path, line, column, severity, message))
        })
        .collect()
}

#[derive(Deserialize)]
struct RuffLocation {
    row: u32,
    column: u32,
}

#[derive(Deserialize)]
struct RuffItem {
    code: Option<String>,
    filename: String,
    location: RuffLocation,
    end_location: Option<RuffLocation>,
    message: String,
}

/// ruff's JSON array. Names that do not exist and syntax-class rules are errors; the rest
/// (unused imports and variables, style) warnings.
pub(super) fn ruff(out: &str) -> Vec<Diagnostic> {
    let Ok(items) = serde_json::from_str::<Vec<RuffItem>>(out.trim()) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter(|i| i.code.as_deref() != Some("invalid-syntax"))
        .map(|i| {
            let code = i.code.unwrap_or_default();
            let error = code.starts_with("E9") || matches!(code.as_str(), "F821" | "F822" | "F823");
            let severity = if error {
                Severity::Error
            } else {
                Severity::Warning
            };
            let message = if code.is_empty() {
                i.message
            } else {
                format!("{} ({code})", i.message)
            };
            let mut d = Diagnostic::at(
                &i.filename,
                i.location.row,
                i.location.column,
                severity,
                &message,
            );
            if let Some(end) = i.end_location {
                d.end_line = Some(end.row);
                d.end_column = Some(end.column);
            }
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_json_lines_keep_their_range() {
        let out = "{\"path\": \"main.py\", \"line\": 4, \"column\": 7, \"end_line\": 4, \"end_column\": 8, \"message\": \"SyntaxError: invalid syntax\"}\nnoise\n";
        let d = json_lines(out);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].column, d[0].end_column), (4, 7, Some(8)));
        assert_eq!(d[0].severity, Severity::Error);
    }

    #[test]
    fn pyflakes_4_1_output() {
        // pyflakes 4.1.0 on a file with an unused import and an undefined name.
        let out = "unused.py:1:1: 'os' imported but unused\nunused.py:3:5: undefined name 'undefined_name'\n";
        let d = pyflakes(out);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "unused.py");
        assert_eq!((d[0].line, d[0].column), (1, 1));
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[1].severity, Severity::Error);
        assert_eq!(d[1].message, "undefined name 'undefined_name'");
    }

    #[test]
    fn ruff_0_17_json_output() {
        // ruff 0.17.6 `check --output-format=json` (trimmed of fields the parser ignores).
        let out = r#"[
  {"cell": null, "code": "invalid-syntax", "end_location": {"column": 8, "row": 4},
   "filename": "/var/task/syn.py", "fix": null, "location": {"column": 7, "row": 4},
   "message": "Expected a parameter or the end of the parameter list", "name": "invalid-syntax",
   "noqa_row": null, "severity": "error", "url": null},
  {"cell": null, "code": "F401", "end_location": {"column": 10, "row": 1},
   "filename": "/var/task/unused.py", "fix": {"applicability": "safe", "edits": [], "message": "Remove unused import: `os`"},
   "location": {"column": 8, "row": 1}, "message": "`os` imported but unused", "name": "unused-import",
   "noqa_row": 1, "severity": "error", "url": "https://docs.astral.sh/ruff/rules/unused-import"},
  {"cell": null, "code": "F821", "end_location": {"column": 19, "row": 3},
   "filename": "/var/task/unused.py", "fix": null, "location": {"column": 5, "row": 3},
   "message": "Undefined name `undefined_name`", "name": "undefined-name", "noqa_row": 3,
   "severity": "error", "url": "https://docs.astral.sh/ruff/rules/undefined-name"}
]"#;
        let d = ruff(out);
        assert_eq!(
            d.len(),
            2,
            "the syntax error is the compile checker's: {d:?}"
        );
        assert_eq!(d[0].path, "/var/task/unused.py");
        assert_eq!(
            (d[0].line, d[0].column, d[0].end_line, d[0].end_column),
            (1, 8, Some(1), Some(10))
        );
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[0].message, "`os` imported but unused (F401)");
        assert_eq!(d[1].severity, Severity::Error);
        assert!(ruff("not json").is_empty());
    }
}
