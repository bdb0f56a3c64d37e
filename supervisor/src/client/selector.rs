//! Naming what to run: `NAME`, `NAME@VERSION` or `NAME:TAG`, and escaping names into URLs.

use std::fmt;

/// Which version of a script an invocation asks for; none means the `latest` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// An exact version id (`sha256:…`).
    Version(String),
    /// A tag (`prod`, `canary`, …).
    Tag(String),
}

impl Selector {
    /// The query string that selects it (`version=…` or `tag=…`), escaped.
    pub fn query(&self) -> String {
        match self {
            Selector::Version(v) => format!("version={}", escape(v)),
            Selector::Tag(t) => format!("tag={}", escape(t)),
        }
    }
}

/// A script reference as typed on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Script name.
    pub name: String,
    /// Version or tag, when given.
    pub selector: Option<Selector>,
}

/// A script reference that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid script reference {input:?}: {reason}")]
pub struct TargetError {
    /// What was typed.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Target {
    /// Parses `NAME`, `NAME@VERSION` or `NAME:TAG`.
    ///
    /// `@` is looked for first because version ids themselves contain a colon
    /// (`hello@sha256:ab…`).
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let fail = |reason| TargetError {
            input: input.to_owned(),
            reason,
        };
        let (name, selector) = if let Some((name, version)) = input.split_once('@') {
            if version.is_empty() {
                return Err(fail("the version after `@` is empty"));
            }
            (name, Some(Selector::Version(version.to_owned())))
        } else if let Some((name, tag)) = input.split_once(':') {
            if tag.is_empty() {
                return Err(fail("the tag after `:` is empty"));
            }
            (name, Some(Selector::Tag(tag.to_owned())))
        } else {
            (input, None)
        };
        if name.is_empty() {
            return Err(fail("the script name is empty"));
        }
        if !is_valid_name(name) {
            return Err(fail(
                "script names are 1-64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit",
            ));
        }
        Ok(Target {
            name: name.to_owned(),
            selector,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            None => write!(f, "{}", self.name),
            Some(Selector::Version(v)) => write!(f, "{}@{v}", self.name),
            Some(Selector::Tag(t)) => write!(f, "{}:{t}", self.name),
        }
    }
}

/// Whether `name` matches `[a-z0-9][a-z0-9._-]{0,63}` (DESIGN §3).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(b))
}

/// Percent-escapes everything but RFC 3986 unreserved characters, so a value is safe as a path
/// segment or a query value whatever it holds.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Target::parse("hello").unwrap(),
            Target {
                name: "hello".into(),
                selector: None
            }
        );
        let t = Target::parse("hello@sha256:abc").unwrap();
        assert_eq!(t.name, "hello");
        assert_eq!(t.selector, Some(Selector::Version("sha256:abc".into())));
        let t = Target::parse("hello:prod").unwrap();
        assert_eq!(t.selector, Some(Selector::Tag("prod".into())));
        assert_eq!(t.to_string(), "hello:prod");
    }

    #[test]
    fn refuses_empty_parts_and_bad_names() {
        for bad in [
            "",
            "@sha256:1",
            ":prod",
            "hello@",
            "hello:",
            "Hello",
            "a/b",
            "-x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Target::parse(&"a".repeat(64)).is_ok());
        assert!(Target::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn selector_queries_are_escaped() {
        assert_eq!(
            Selector::Version("sha256:ab".into()).query(),
            "version=sha256%3Aab"
        );
        assert_eq!(Selector::Tag("a b&c".into()).query(), "tag=a%20b%26c");
        assert_eq!(escape("é/"), "%C3%A9%2F");
    }
}
