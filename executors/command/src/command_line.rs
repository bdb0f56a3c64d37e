//! The per-request command given on the executor's command line, and how the entry path is put
//! into it: every `{entry}` placeholder is replaced by the absolute entry path, and when there is
//! none the entry path is appended as the last argument.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;

/// The text replaced by the absolute path of the script's entry file.
pub const ENTRY_PLACEHOLDER: &str = "{entry}";

/// `runwarm-exec-command [--] PROGRAM [ARGS...]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    program: OsString,
    args: Vec<OsString>,
}

/// Why the command line could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum UsageError {
    /// No program was named.
    MissingProgram,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::MissingProgram => {
                f.write_str("usage: runwarm-exec-command [--] PROGRAM [ARGS...]")
            }
        }
    }
}

impl CommandTemplate {
    /// Parses the arguments after the executor's own name.
    pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Self, UsageError> {
        let mut argv = argv.into_iter().peekable();
        if argv.peek().is_some_and(|first| first == "--") {
            argv.next();
        }
        let program = argv.next().ok_or(UsageError::MissingProgram)?;
        if program.is_empty() {
            return Err(UsageError::MissingProgram);
        }
        Ok(Self {
            program,
            args: argv.collect(),
        })
    }

    /// The program, with any placeholder replaced.
    pub fn program(&self, entry: &Path) -> OsString {
        substitute(&self.program, entry).unwrap_or_else(|| self.program.clone())
    }

    /// A short name for the runtime in `ready`, e.g. `bash` for `/usr/bin/bash`.
    pub fn program_name(&self) -> String {
        Path::new(&self.program)
            .file_name()
            .unwrap_or(&self.program)
            .to_string_lossy()
            .into_owned()
    }

    /// The arguments for one run against `entry` (an absolute path).
    pub fn args(&self, entry: &Path) -> Vec<OsString> {
        let mut placed = substitute(&self.program, entry).is_some();
        let mut out = Vec::with_capacity(self.args.len() + 1);
        for arg in &self.args {
            match substitute(arg, entry) {
                Some(replaced) => {
                    placed = true;
                    out.push(replaced);
                }
                None => out.push(arg.clone()),
            }
        }
        if !placed {
            out.push(entry.as_os_str().to_owned());
        }
        out
    }
}

/// `Some` with every placeholder replaced when `arg` holds one; `None` otherwise. Arguments
/// that are not UTF-8 cannot hold the placeholder and are passed through untouched.
fn substitute(arg: &OsStr, entry: &Path) -> Option<OsString> {
    let text = arg.to_str()?;
    if !text.contains(ENTRY_PLACEHOLDER) {
        return None;
    }
    let mut out = OsString::new();
    let mut pieces = text.split(ENTRY_PLACEHOLDER);
    if let Some(first) = pieces.next() {
        out.push(first);
    }
    for piece in pieces {
        out.push(entry.as_os_str());
        out.push(piece);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(args: &[&str]) -> Result<CommandTemplate, UsageError> {
        CommandTemplate::parse(args.iter().map(OsString::from))
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn entry_is_appended_without_placeholder() {
        let t = template(&["--", "bash", "-e"]).unwrap();
        assert_eq!(t.program(Path::new("/r/m.sh")), "bash");
        assert_eq!(strings(t.args(Path::new("/r/m.sh"))), ["-e", "/r/m.sh"]);
        assert_eq!(t.program_name(), "bash");
    }

    #[test]
    fn placeholder_is_replaced_everywhere_and_nothing_appended() {
        let t = template(&["/usr/bin/python3", "{entry}", "--src={entry}:{entry}", "x"]).unwrap();
        assert_eq!(
            strings(t.args(Path::new("/r/a.py"))),
            ["/r/a.py", "--src=/r/a.py:/r/a.py", "x"]
        );
        assert_eq!(t.program_name(), "python3");
    }

    #[test]
    fn program_may_be_the_entry_itself() {
        let t = template(&["{entry}", "--flag"]).unwrap();
        assert_eq!(t.program(Path::new("/r/bin")), "/r/bin");
        assert_eq!(strings(t.args(Path::new("/r/bin"))), ["--flag"]);
    }

    #[test]
    fn missing_program_is_a_usage_error() {
        assert_eq!(template(&[]), Err(UsageError::MissingProgram));
        assert_eq!(template(&["--"]), Err(UsageError::MissingProgram));
        assert_eq!(template(&[""]), Err(UsageError::MissingProgram));
    }

    #[test]
    fn only_a_leading_double_dash_is_dropped() {
        let t = template(&["bash", "--", "x"]).unwrap();
        assert_eq!(strings(t.args(Path::new("/e"))), ["--", "x", "/e"]);
    }
}
