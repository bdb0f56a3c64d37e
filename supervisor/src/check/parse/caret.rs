//! Tools that point at the column with a caret under the source line (node, javac), and
//! esbuild, whose log names `path:line:col:` (0-based column) under each message.

use super::{Diagnostic, Severity, number};

/// The column (1-based) of the first `^` of a caret line, if it is one.
fn caret_column(line: &str) -> Option<u32> {
    let trimmed = line.trim_start();
    if !trimmed.starts_with('^') {
        return None;
    }
    u32::try_from(line.chars().take_while(|c| *c != '^').count() + 1).ok()
}

/// `node --check`: `path:line`, the source, the caret, a blank line, `SyntaxError: message`.
pub(super) fn node(err: &str) -> Vec<Diagnostic> {
    let lines: Vec<&str> = err.lines().collect();
    let Some((at, path, line)) = lines.iter().enumerate().find_map(|(i, l)| {
        let (path, n) = l.rsplit_once(':')?;
        let (line, rest) = number(n)?;
        rest.is_empty().then_some((i, path, line))
    }) else {
        return Vec::new();
    };
    let column = lines
        .iter()
        .skip(at + 1)
        .take(3)
        .find_map(|l| caret_column(l))
        .unwrap_or(1);
    let message = lines
        .iter()
        .skip(at + 1)
        .find(|l| {
            l.split_once(':')
                .is_some_and(|(kind, _)| kind.ends_with("Error") && !kind.contains(' '))
        })
        .copied()
        .unwrap_or("syntax error");
    vec![Diagnostic::at(path, line, column, Severity::Error, message)]
}

/// javac: `path:line: error|warning: message`, the source, the caret, then detail lines
/// (`symbol:`, `location:`) that belong to the message.
pub(super) fn javac(err: &str) -> Vec<Diagnostic> {
    let lines: Vec<&str> = err.lines().collect();
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        let Some((path, rest)) = l.split_once(':') else {
            continue;
        };
        let Some((line, rest)) = number(rest) else {
            continue;
        };
        let (severity, message) = if let Some(m) = rest.strip_prefix(": error: ") {
            (Severity::Error, m)
        } else if let Some(m) = rest.strip_prefix(": warning: ") {
            (Severity::Warning, m)
        } else {
            continue;
        };
        let mut column = 1;
        let mut message = message.to_owned();
        if let Some(c) = lines.get(i + 1).and_then(|l| caret_column(l)) {
            column = c;
            i += 2;
            while let Some(detail) = lines.get(i).filter(|l| l.starts_with("  ")) {
                message.push_str("; ");
                message.push_str(detail.trim());
                i += 1;
            }
        }
        out.push(Diagnostic::at(path, line, column, severity, &message));
    }
    out
}

/// esbuild's text log (`--color=false`): `✘ [ERROR] message` or `▲ [WARNING] message`, then
/// `    path:line:col:` with a 0-based column.
pub(super) fn esbuild(err: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut pending: Option<(Severity, &str)> = None;
    for l in err.lines() {
        if let Some((_, m)) = l.split_once("[ERROR] ") {
            pending = Some((Severity::Error, m));
            continue;
        }
        if let Some((_, m)) = l.split_once("[WARNING] ") {
            pending = Some((Severity::Warning, m));
            continue;
        }
        let Some((severity, message)) = pending else {
            continue;
        };
        let Some(place) = l.trim().strip_suffix(':') else {
            continue;
        };
        let mut parts = place.rsplitn(3, ':');
        let (Some(col), Some(line), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(line), Ok(col)) = (line.parse::<u32>(), col.parse::<u32>()) else {
            continue;
        };
        out.push(Diagnostic::at(path, line, col + 1, severity, message));
        pending = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_20_check_output() {
        let err = "/var/task/bad.js:3\n  return a;\n         ^\n\nSyntaxError: Unexpected identifier 'a'\n    at wrapSafe (node:internal/modules/cjs/loader:1464:18)\n    at checkSyntax (node:internal/main/check_syntax:78:3)\n\nNode.js v20.20.2\n";
        let d = node(err);
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].path.as_str(), d[0].line, d[0].column),
            ("/var/task/bad.js", 3, 10)
        );
        assert_eq!(d[0].message, "SyntaxError: Unexpected identifier 'a'");
        assert!(node("").is_empty());
    }

    #[test]
    fn javac_17_output_with_details() {
        let err = "Main.java:3: error: ';' expected\n    int x = 1\n             ^\nMain.java:4: error: cannot find symbol\n    foo();\n    ^\n  symbol:   method foo()\n  location: class Main\n2 errors\n";
        let d = javac(err);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].line, d[0].column), (3, 14));
        assert_eq!(d[0].message, "';' expected");
        assert_eq!((d[1].line, d[1].column), (4, 5));
        assert_eq!(
            d[1].message,
            "cannot find symbol; symbol:   method foo(); location: class Main"
        );
    }

    #[test]
    fn esbuild_0_28_log() {
        let err = "✘ [ERROR] Unexpected \";\"\n\n    bad.ts:2:11:\n      2 │ let y = x +;\n        ╵            ^\n\n▲ [WARNING] Comparison with NaN using the \"==\" operator here is always false [equals-nan]\n\n    w.ts:2:2:\n      2 │ x == NaN;\n        ╵   ~~\n\n  Floating-point equality is defined such that NaN is never equal to anything.\n";
        let d = esbuild(err);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].path.as_str(), d[0].line, d[0].column),
            ("bad.ts", 2, 12)
        );
        assert_eq!(d[0].message, "Unexpected \";\"");
        assert_eq!(d[1].severity, Severity::Warning);
        assert_eq!((d[1].line, d[1].column), (2, 3));
    }
}
