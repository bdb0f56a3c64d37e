//! The bodies of `POST /v1/check` and `POST /v1/format`, and what is refused before any tool
//! runs: unknown runtimes, unsafe paths, too many or too large files.
//!
//! A path is relative, plain (no `..`, no `.`, no empty part) and made of a conservative set of
//! characters (no `@`); no part starts with `-`, `+` or `.`, because every tool gets paths as
//! arguments and would read `-o…` as an option (and javac and mcs `@file` as a file of more
//! arguments).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /v1/check`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The runtime whose checkers run (`python3`, `go`, …).
    pub runtime: String,
    /// The files, by relative path: the script's whole tree, so imports resolve.
    pub files: BTreeMap<String, String>,
    /// The one file to report on; absent: all of them.
    #[serde(default)]
    pub path: Option<String>,
}

/// `POST /v1/format`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatRequest {
    /// The runtime whose formatter runs.
    pub runtime: String,
    /// The file's relative path (its extension picks the formatter).
    pub path: String,
    /// The file's content.
    pub content: String,
}

/// Bounds on what one request may send.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Files in one check.
    pub max_files: usize,
    /// Bytes of all files together (one file for format).
    pub max_bytes: usize,
}

/// Why a request is refused before anything runs.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    /// A path is not a plain relative path of safe characters.
    #[error("invalid path {path:?}: {why}")]
    InvalidPath {
        /// The path sent.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `path` is not among `files`.
    #[error("path {0:?} is not among the files sent")]
    PathNotSent(String),
    /// No files.
    #[error("no files to check")]
    NoFiles,
    /// Over the file count.
    #[error("{count} files sent; at most {max} are checked at once")]
    TooManyFiles {
        /// Sent.
        count: usize,
        /// Allowed.
        max: usize,
    },
    /// Over the byte budget.
    #[error("{bytes} bytes of source sent; at most {max} are checked at once")]
    TooLarge {
        /// Sent.
        bytes: usize,
        /// Allowed.
        max: usize,
    },
}

/// The rule [`check_path`] applies, as the API document states it.
pub const PATH_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9._+-]*(/[A-Za-z0-9_][A-Za-z0-9._+-]*)*$";

/// Most bytes of one path.
pub const PATH_MAX: usize = 255;

/// Checks one relative path: [`PATH_PATTERN`], at most [`PATH_MAX`] bytes.
pub fn check_path(path: &str) -> Result<(), RequestError> {
    let bad = |why| {
        Err(RequestError::InvalidPath {
            path: path.chars().take(200).collect(),
            why,
        })
    };
    if path.is_empty() || path.len() > PATH_MAX {
        return bad("must be 1 to 255 bytes");
    }
    if path.starts_with('/') {
        return bad("must be relative");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("must not have empty, `.` or `..` parts");
        }
        if part.starts_with(['-', '+', '.']) {
            return bad(
                "no part may start with `-`, `+` or `.` (a tool would read `-…` as an option)",
            );
        }
        let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+');
        if !part.chars().all(safe) {
            return bad("may hold only ASCII letters, digits, `.`, `_`, `-`, `+` and `/`");
        }
    }
    Ok(())
}

impl CheckRequest {
    /// Checks paths and sizes.
    pub fn validate(&self, limits: RequestLimits) -> Result<(), RequestError> {
        if self.files.is_empty() {
            return Err(RequestError::NoFiles);
        }
        if self.files.len() > limits.max_files {
            return Err(RequestError::TooManyFiles {
                count: self.files.len(),
                max: limits.max_files,
            });
        }
        let bytes: usize = self.files.values().map(String::len).sum();
        if bytes > limits.max_bytes {
            return Err(RequestError::TooLarge {
                bytes,
                max: limits.max_bytes,
            });
        }
        for path in self.files.keys() {
            check_path(path)?;
        }
        // `a` and `a/b` cannot both be files.
        for path in self.files.keys() {
            let mut prefix = String::new();
            for part in path.split('/') {
                if !prefix.is_empty() && self.files.contains_key(&prefix) {
                    return Err(RequestError::InvalidPath {
                        path: path.clone(),
                        why: "a file of that name is also sent",
                    });
                }
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
            }
        }
        match &self.path {
            Some(p) if !self.files.contains_key(p) => Err(RequestError::PathNotSent(p.clone())),
            _ => Ok(()),
        }
    }
}

impl FormatRequest {
    /// Checks the path and the size.
    pub fn validate(&self, limits: RequestLimits) -> Result<(), RequestError> {
        check_path(&self.path)?;
        if self.content.len() > limits.max_bytes {
            return Err(RequestError::TooLarge {
                bytes: self.content.len(),
                max: limits.max_bytes,
            });
        }
        Ok(())
    }
}

/// The extension of a path, without the dot.
pub fn extension(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    name.rsplit_once('.').map(|(_, ext)| ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits {
        max_files: 3,
        max_bytes: 100,
    };

    fn req(files: &[(&str, &str)], path: Option<&str>) -> CheckRequest {
        CheckRequest {
            runtime: "python3".into(),
            files: files
                .iter()
                .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
                .collect(),
            path: path.map(str::to_owned),
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        for p in [
            "../../etc/passwd",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "-o",
            "x/-rf",
            "@args",
            "a b.py",
            "a\0b",
            "é.py",
            "",
            ".hidden",
            "+x",
        ] {
            assert!(check_path(p).is_err(), "{p:?}");
        }
        for p in ["main.py", "lib/util.py", "a-b_c.d+e", "src/Main.java"] {
            assert!(check_path(p).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn the_documented_pattern_is_the_rule() {
        let schema =
            serde_json::json!({"type": "string", "pattern": PATH_PATTERN, "maxLength": PATH_MAX});
        let v = jsonschema::validator_for(&schema).unwrap();
        let long = format!("{}.py", "a".repeat(260));
        for p in [
            "main.py",
            "lib/u.py",
            "a-b_c.d+e",
            "_x",
            "9",
            "../x",
            ".x",
            "a/.b",
            "-o",
            "+x",
            "a//b",
            "/a",
            "a/",
            "",
            "a b",
            "@f",
            "é",
            long.as_str(),
            "a/..",
            "x/-y",
        ] {
            assert_eq!(
                v.is_valid(&serde_json::json!(p)),
                check_path(p).is_ok(),
                "{p:?}"
            );
        }
    }

    #[test]
    fn counts_sizes_and_the_path_are_checked() {
        assert_eq!(req(&[], None).validate(LIMITS), Err(RequestError::NoFiles));
        let many = req(&[("a", ""), ("b", ""), ("c", ""), ("d", "")], None);
        assert!(matches!(
            many.validate(LIMITS),
            Err(RequestError::TooManyFiles { count: 4, max: 3 })
        ));
        let big = "x".repeat(101);
        assert!(matches!(
            req(&[("a", &big)], None).validate(LIMITS),
            Err(RequestError::TooLarge { .. })
        ));
        assert_eq!(
            req(&[("a.py", "")], Some("b.py")).validate(LIMITS),
            Err(RequestError::PathNotSent("b.py".into()))
        );
        assert!(
            req(&[("a", ""), ("a/b", "")], None)
                .validate(LIMITS)
                .is_err()
        );
        assert!(
            req(&[("a.py", ""), ("lib/b.py", "")], Some("a.py"))
                .validate(LIMITS)
                .is_ok()
        );
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("lib/a.tar.py"), Some("py"));
        assert_eq!(extension("Makefile"), None);
        assert_eq!(extension("d.x/Makefile"), None);
    }
}
