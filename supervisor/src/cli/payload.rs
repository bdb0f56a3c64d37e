//! Reading `-d JSON`, `-d @file` and `-d -` (and `api`'s BODY, which takes the same forms).

use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;

use super::error::UsageError;

/// The bytes an argument names: `@path` reads the file, `-` reads `stdin`, anything else is
/// taken literally.
pub fn read_body_arg(arg: &str, stdin: impl Read) -> Result<(Vec<u8>, String), UsageError> {
    if arg == "-" {
        let mut bytes = Vec::new();
        let mut stdin = stdin;
        stdin
            .read_to_end(&mut bytes)
            .map_err(UsageError::ReadStdin)?;
        Ok((bytes, "stdin".to_owned()))
    } else if let Some(path) = arg.strip_prefix('@') {
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|source| UsageError::ReadFile {
            path: path.clone(),
            source,
        })?;
        Ok((bytes, path.display().to_string()))
    } else {
        Ok((arg.as_bytes().to_vec(), "the command line".to_owned()))
    }
}

/// The invocation payload: `{}` when no `-d` was given.
pub fn read_payload(arg: Option<&str>, stdin: impl Read) -> Result<Value, UsageError> {
    let Some(arg) = arg else {
        return Ok(Value::Object(serde_json::Map::new()));
    };
    let (bytes, from) = read_body_arg(arg, stdin)?;
    serde_json::from_slice(&bytes).map_err(|source| UsageError::InvalidJson { from, source })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn no_argument_is_an_empty_object() {
        assert_eq!(read_payload(None, &b""[..]).unwrap(), json!({}));
    }

    #[test]
    fn inline_json() {
        assert_eq!(
            read_payload(Some(r#"{"n": [1, 2]}"#), &b""[..]).unwrap(),
            json!({"n": [1, 2]})
        );
        assert_eq!(read_payload(Some("3"), &b""[..]).unwrap(), json!(3));
    }

    #[test]
    fn from_stdin() {
        let stdin = &b"{\"from\": \"stdin\"}\n"[..];
        assert_eq!(
            read_payload(Some("-"), stdin).unwrap(),
            json!({"from": "stdin"})
        );
    }

    #[test]
    fn from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, br#"{"file": true}"#).unwrap();
        let arg = format!("@{}", path.display());
        assert_eq!(
            read_payload(Some(&arg), &b""[..]).unwrap(),
            json!({"file": true})
        );
    }

    #[test]
    fn a_missing_file_and_bad_json_are_usage_errors() {
        let missing = read_payload(Some("@/nonexistent/p.json"), &b""[..]).unwrap_err();
        assert!(matches!(missing, UsageError::ReadFile { .. }));
        assert!(missing.to_string().contains("/nonexistent/p.json"));
        let bad = read_payload(Some("{nope"), &b""[..]).unwrap_err();
        assert!(matches!(&bad, UsageError::InvalidJson { from, .. } if from == "the command line"));
        let empty = read_payload(Some("-"), &b""[..]).unwrap_err();
        assert!(matches!(&empty, UsageError::InvalidJson { from, .. } if from == "stdin"));
    }

    #[test]
    fn body_arguments_are_passed_through_untouched() {
        let (bytes, _) = read_body_arg("not json", &b""[..]).unwrap();
        assert_eq!(bytes, b"not json");
    }
}
