//! `path:line:col: [severity:] message` (gcc, g++, gofmt -e, go vet) and mcs's
//! `path(line,col): error CS1525: message`.

use super::{Diagnostic, Severity, number};

/// GNU-style lines. gcc's context lines (`  in 'constexpr' expansion of …`, indented) and notes
/// are `info`; a line without a severity word (gofmt) is an error.
pub(super) fn gnu(text: &str) -> Vec<Diagnostic> {
    text.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("vet: ").unwrap_or(l);
            let (path, rest) = split_position(l)?;
            let (line, rest) = number(rest)?;
            let rest = rest.strip_prefix(':')?;
            let (column, rest) = number(rest)?;
            let rest = rest.strip_prefix(':')?;
            if rest.starts_with("  ") {
                return Some(Diagnostic::at(path, line, column, Severity::Info, rest));
            }
            let rest = rest.trim_start();
            let words = [
                ("fatal error:", Severity::Error),
                ("error:", Severity::Error),
                ("warning:", Severity::Warning),
                ("note:", Severity::Info),
            ];
            let (severity, message) = words
                .iter()
                .find_map(|(w, s)| rest.strip_prefix(w).map(|m| (*s, m)))
                .unwrap_or((Severity::Error, rest));
            Some(Diagnostic::at(path, line, column, severity, message))
        })
        .collect()
}

/// The path before the first `:digit`, so a path may hold colons but not that.
fn split_position(l: &str) -> Option<(&str, &str)> {
    let bytes = l.as_bytes();
    let at = (0..bytes.len().saturating_sub(1))
        .find(|&i| bytes[i] == b':' && bytes[i + 1].is_ascii_digit())?;
    (at > 0).then(|| (&l[..at], &l[at + 1..]))
}

/// mcs: `path(line,col): error|warning CSnnnn: message`.
pub(super) fn mcs(text: &str) -> Vec<Diagnostic> {
    text.lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once('(')?;
            let (line, rest) = number(rest)?;
            let (column, rest) = number(rest.strip_prefix(',')?)?;
            let rest = rest.strip_prefix("): ")?;
            let (severity, rest) = if let Some(r) = rest.strip_prefix("error ") {
                (Severity::Error, r)
            } else if let Some(r) = rest.strip_prefix("warning ") {
                (Severity::Warning, r)
            } else {
                return None;
            };
            let (code, message) = rest.split_once(": ")?;
            let message = format!("{message} ({code})");
            Some(Diagnostic::at(path, line, column, severity, &message))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gxx_12_output_with_context_lines() {
        // g++ 12 -fsyntax-only -fno-diagnostics-color -fdiagnostics-column-unit=byte -Wall
        let text = "bad.cpp: In function 'int main()':\nbad.cpp:3:3: error: expected ',' or ';' before 'return'\n    3 |   return y;\n      |   ^~~~~~\nbad.cpp:2:7: warning: unused variable 'x' [-Wunused-variable]\n    2 |   int x = 1\n      |       ^\nspin.cpp:2:24:   in 'constexpr' expansion of 'spin()'\nx.cpp:1:10: fatal error: nope.h: No such file or directory\n";
        let d = gnu(text);
        assert_eq!(d.len(), 4, "{d:?}");
        assert_eq!(
            (d[0].path.as_str(), d[0].line, d[0].column),
            ("bad.cpp", 3, 3)
        );
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d[0].message, "expected ',' or ';' before 'return'");
        assert_eq!(d[1].severity, Severity::Warning);
        assert_eq!(d[2].severity, Severity::Info);
        assert_eq!(d[3].message, "nope.h: No such file or directory");
    }

    #[test]
    fn gofmt_and_go_vet_output() {
        let text = "bad.go:5:1: expected operand, found '}'\nbad.go:5:3: expected ';', found 'EOF'\n# x\n./main.go:4:14: fmt.Printf format %d has arg \"s\" of wrong type string\n";
        let d = gnu(text);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].message, "expected operand, found '}'");
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d[2].path, "./main.go");
    }

    #[test]
    fn mcs_6_12_output() {
        let text = "p.cs(4,4): error CS1525: Unexpected symbol `Foo'\np.cs(3,9): warning CS0219: The variable `x' is assigned but its value is never used\nCompilation failed: 1 error(s), 0 warnings\n";
        let d = mcs(text);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].path.as_str(), d[0].line, d[0].column), ("p.cs", 4, 4));
        assert_eq!(d[0].message, "Unexpected symbol `Foo' (CS1525)");
        assert_eq!(d[1].severity, Severity::Warning);
    }
}
