//! Bash: `bash -n` (no columns: column 1) and `shellcheck -f json1`.

use serde::Deserialize;

use super::{Diagnostic, Severity, number};

/// `path: line N: message` lines of `bash -n`'s stderr.
pub(super) fn bash(err: &str) -> Vec<Diagnostic> {
    err.lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once(": line ")?;
            let (line, rest) = number(rest)?;
            let message = rest.strip_prefix(": ")?;
            Some(Diagnostic::at(path, line, 1, Severity::Error, message))
        })
        .collect()
}

#[derive(Deserialize)]
struct Json1 {
    comments: Vec<Comment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Comment {
    file: String,
    line: u32,
    end_line: Option<u32>,
    column: u32,
    end_column: Option<u32>,
    level: String,
    code: u32,
    message: String,
}

/// shellcheck's `json1` document.
pub(super) fn shellcheck_json1(out: &str) -> Vec<Diagnostic> {
    let Ok(doc) = serde_json::from_str::<Json1>(out.trim()) else {
        return Vec::new();
    };
    doc.comments
        .into_iter()
        .map(|c| {
            let severity = match c.level.as_str() {
                "error" => Severity::Error,
                "warning" => Severity::Warning,
                _ => Severity::Info,
            };
            let message = format!("{} (SC{})", c.message, c.code);
            let mut d = Diagnostic::at(&c.file, c.line, c.column, severity, &message);
            d.end_line = c.end_line;
            // shellcheck marks a point as a range of length 0; that is no range.
            d.end_column = c
                .end_column
                .filter(|&e| c.end_line != Some(c.line) || e > c.column);
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_5_2_syntax_errors() {
        let err = "bad.sh: line 2: unexpected EOF while looking for matching `\"'\nbad2.sh: line 3: syntax error: unexpected end of file\nbad.sh: line 5: syntax error near unexpected token `)'\n";
        let d = bash(err);
        assert_eq!(d.len(), 3);
        assert_eq!(
            (d[1].path.as_str(), d[1].line, d[1].column),
            ("bad2.sh", 3, 1)
        );
        assert_eq!(d[1].message, "syntax error: unexpected end of file");
    }

    #[test]
    fn shellcheck_0_9_json1() {
        let out = r#"{"comments":[{"file":"bad2.sh","line":3,"endLine":3,"column":1,"endColumn":1,"level":"error","code":1047,"message":"Expected 'fi' matching previously mentioned 'if'.","fix":null},{"file":"warn.sh","line":3,"endLine":3,"column":4,"endColumn":6,"level":"info","code":2086,"message":"Double quote to prevent globbing and word splitting.","fix":{"replacements":[]}},{"file":"w.sh","line":2,"endLine":2,"column":1,"endColumn":3,"level":"warning","code":2034,"message":"x appears unused.","fix":null}]}"#;
        let d = shellcheck_json1(out);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d[0].end_column, None);
        assert_eq!((d[1].line, d[1].column, d[1].end_column), (3, 4, Some(6)));
        assert_eq!(d[1].severity, Severity::Info);
        assert_eq!(
            d[1].message,
            "Double quote to prevent globbing and word splitting. (SC2086)"
        );
        assert_eq!(d[2].severity, Severity::Warning);
    }
}
