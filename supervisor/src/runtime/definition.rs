//! Runtime definitions: one TOML file per runtime (`runtimes/*.toml`), parsed and checked.
//!
//! Adding a runtime is adding a file; the loader test in this module loads every file shipped in
//! `runtimes/` so a broken one fails the build's tests with its file name and key.

use std::collections::BTreeMap;

use runwarm_protocol::Mode;
use serde::{Deserialize, Serialize};

use crate::manifest::Limits;

/// A runtime as written in its TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeDefinition {
    /// Name scripts refer to in their manifest (`runtime = "python3"`).
    pub name: String,
    /// Language, for people.
    #[serde(default)]
    pub language: String,
    /// File extensions `runwarm register FILE` maps to this runtime.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Modes this runtime supports.
    pub modes: Vec<Mode>,
    /// Mode used when a manifest names none.
    pub default_mode: Mode,
    /// Command whose first output line is the interpreter's real path and second its version.
    pub probe: Vec<String>,
    /// Handler-mode executor command (placeholders: `{interpreter}`, `{executors}`,
    /// `{exec_command}`, `{entry}`, `{root}`).
    #[serde(default)]
    pub handler: Option<Vec<String>>,
    /// Command-mode executor command (same placeholders).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Default limits for scripts of this runtime.
    #[serde(default)]
    pub limits: Limits,
    /// Extra environment for every executor of this runtime.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How long the executor may take to answer `init`, in milliseconds.
    #[serde(default)]
    pub init_timeout_ms: Option<u64>,
}

/// Why a runtime file was refused.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// Not valid TOML or a wrong key.
    #[error("runtime file {file}: {detail}")]
    Parse {
        /// File name.
        file: String,
        /// The parser's complaint (names the key).
        detail: String,
    },
    /// Parsed, but inconsistent.
    #[error("runtime file {file}: {detail}")]
    Invalid {
        /// File name.
        file: String,
        /// What is wrong.
        detail: String,
    },
}

impl RuntimeDefinition {
    /// Parses and checks one runtime file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, DefinitionError> {
        let def: RuntimeDefinition = toml::from_str(text).map_err(|e| DefinitionError::Parse {
            file: file.to_owned(),
            detail: e.to_string(),
        })?;
        let invalid = |detail: String| DefinitionError::Invalid {
            file: file.to_owned(),
            detail,
        };
        if def.name.is_empty() {
            return Err(invalid("name: must not be empty".into()));
        }
        if def.probe.is_empty() {
            return Err(invalid("probe: must name a command".into()));
        }
        if !def.modes.contains(&def.default_mode) {
            return Err(invalid(format!(
                "default_mode: {} is not one of modes",
                def.default_mode.as_str()
            )));
        }
        for mode in &def.modes {
            if def.command_for(*mode).is_none_or(|c| c.is_empty()) {
                return Err(invalid(format!(
                    "{}: mode {} is listed in modes but has no command",
                    mode.as_str(),
                    mode.as_str()
                )));
            }
        }
        Ok(def)
    }

    /// The executor command template for a mode.
    pub fn command_for(&self, mode: Mode) -> Option<&Vec<String>> {
        match mode {
            Mode::Handler => self.handler.as_ref(),
            Mode::Command => self.command.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_runtime_file_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtimes");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let def = RuntimeDefinition::parse(&path.display().to_string(), &text)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(path.file_stem().unwrap().to_str().unwrap(), def.name);
                n += 1;
            }
        }
        assert!(n >= 3, "expected at least python3, node and bash");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = RuntimeDefinition::parse(
            "x.toml",
            "name='x'\nmodes=['command']\ndefault_mode='command'\nprobe=['sh']\ncommand=['sh']\nbogus=1",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn a_mode_without_command_is_refused() {
        let err = RuntimeDefinition::parse(
            "x.toml",
            "name='x'\nmodes=['handler']\ndefault_mode='handler'\nprobe=['sh']",
        )
        .unwrap_err();
        assert!(err.to_string().contains("no command"), "{err}");
    }
}
