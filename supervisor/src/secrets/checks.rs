//! What a secret's name and value must be, and what a manifest's `secrets` list must be: checks
//! that need no store, so registration makes them as well as the store's own `set`.

use std::collections::BTreeSet;

use super::{MAX_NAME, MAX_PER_MANIFEST, MAX_VALUE_CHARS, RESERVED, SecretError};

/// Checks a secret name: an environment variable name, not one the launcher sets itself.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > MAX_NAME || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "secret name {name:?} must be a letter or '_' followed by letters, digits or '_' (at most {MAX_NAME})"
        ));
    }
    if RESERVED.contains(&name) || name.starts_with("RUNWARM_") {
        return Err(format!(
            "secret name {name:?} is reserved (PATH, LANG, HOME, TMPDIR and RUNWARM_* are set by runwarm)"
        ));
    }
    Ok(())
}

/// Checks a value: an environment variable value of bounded size. The message never quotes it.
pub fn check_value(value: &str) -> Result<(), SecretError> {
    if value.is_empty() {
        return Err(SecretError::InvalidValue("the value is empty".into()));
    }
    let chars = value.chars().count();
    if chars > MAX_VALUE_CHARS {
        return Err(SecretError::InvalidValue(format!(
            "the value is {chars} characters; at most {MAX_VALUE_CHARS} are allowed"
        )));
    }
    if value.contains('\0') {
        return Err(SecretError::InvalidValue(
            "the value contains a NUL byte, which an environment variable cannot hold".into(),
        ));
    }
    Ok(())
}

/// The manifest's `secrets` list, checked without the store: names, count, duplicates, and no
/// clash with its own `env` (which of the two would win is not something to leave implicit).
pub fn check_manifest(m: &crate::registry::manifest::Manifest) -> Result<(), String> {
    if m.secrets.len() > MAX_PER_MANIFEST {
        return Err(format!(
            "secrets names {} secrets; at most {MAX_PER_MANIFEST} are allowed",
            m.secrets.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for name in m
        .secrets
        .iter()
        .map(crate::registry::manifest::SecretRef::name)
    {
        check_name(name).map_err(|e| format!("secrets: {e}"))?;
        if !seen.insert(name) {
            return Err(format!("secrets names {name:?} twice"));
        }
        if m.env.contains_key(name) {
            return Err(format!("{name:?} is both in env and in secrets"));
        }
    }
    Ok(())
}
