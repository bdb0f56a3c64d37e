//! Runtime definitions: one TOML file per runtime (`runtimes/*.toml`), parsed and checked.
//!
//! Adding a runtime is adding a file; the loader test in this module loads every file shipped in
//! `runtimes/` so a broken one fails the build's tests with its file name and key.

use std::collections::BTreeMap;

use runwarm_protocol::Mode;
use serde::{Deserialize, Serialize};

use super::tools::{CheckDefinition, FormatDefinition};
use crate::registry::manifest::Limits;

/// A runtime as written in its TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Extra host paths the runtime's executors and prepare steps need, bound read-only at the
    /// same place (a JDK's `/etc/java-17-openjdk`, Mono's `/etc/mono`); missing ones are skipped.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub host_paths: Vec<std::path::PathBuf>,
    /// What the executor is told to load, when not the script's own entry: a transpiled or
    /// compiled file under `{build}` (placeholders as in `handler`, plus `{entry_stem}`).
    #[serde(default)]
    pub load: Option<LoadOverride>,
    /// How a registered version is turned into something runnable; absent: nothing to do.
    #[serde(default)]
    pub prepare: Option<PrepareDefinition>,
    /// Checkers behind `POST /v1/check` (`[[check]]`), all of those installed run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check: Vec<CheckDefinition>,
    /// Formatters behind `POST /v1/format` (`[[format]]`), the first installed one is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub format: Vec<FormatDefinition>,
}

/// The `root` and `entry` sent in `init` instead of the bundle's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadOverride {
    /// Directory the executor loads from.
    pub root: String,
    /// Entry relative to `root`.
    pub entry: String,
}

/// The `[prepare]` section: dependency and build steps, each a shell script run confined with
/// the host network, cached by content (see `crate::prepare`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareDefinition {
    /// Installs dependencies into `$RUNWARM_DEPS`; cached per runtime version and input hash.
    #[serde(default)]
    pub dependencies: Option<DependencyStep>,
    /// Builds the version into `$RUNWARM_BUILD`; cached per version.
    #[serde(default)]
    pub build: Option<BuildStep>,
    /// Seeds `$RUNWARM_OUT` once per runtime version from nothing but the toolchain itself
    /// (Go's standard library, compiled); the other steps see it read-only as
    /// `$RUNWARM_TOOLCHAIN`. No script's files take part, so every script may share it.
    #[serde(default)]
    pub toolchain: Option<BuildStep>,
    /// Extra environment for both steps.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Read-only binds into executors of paths inside the prepared folders, inside path ->
    /// source (`{deps}/…` or `{build}/…`); e.g. `node_modules` where ES module resolution looks.
    #[serde(default)]
    pub binds: BTreeMap<String, String>,
}

/// The dependency step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DependencyStep {
    /// Bundle files whose contents key the environment (`requirements.txt`, `package.json`, …).
    pub inputs: Vec<String>,
    /// Run even when the bundle has none of the inputs (one shared environment per runtime
    /// version then), so executors can always use it.
    #[serde(default)]
    pub always: bool,
    /// Shell script (`/bin/sh -eu`).
    pub run: String,
}

/// The build step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildStep {
    /// Shell script (`/bin/sh -eu`).
    pub run: String,
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
        if let Some(p) = &def.prepare {
            let inputs = p.dependencies.iter().flat_map(|d| &d.inputs);
            if inputs.clone().any(|i| !is_relative_plain(i)) {
                return Err(invalid(
                    "prepare.dependencies.inputs: each must be a plain relative path".into(),
                ));
            }
            for (inside, source) in &p.binds {
                let from_prepared = source.starts_with("{deps}/") || source.starts_with("{build}/");
                if !inside.starts_with('/') || !from_prepared || source.contains("..") {
                    return Err(invalid(format!(
                        "prepare.binds: {inside:?} = {source:?} must bind an absolute inside path to a path under {{deps}} or {{build}}"
                    )));
                }
            }
        }
        super::tools::validate(&def.check, &def.format).map_err(invalid)?;
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

fn is_relative_plain(path: &str) -> bool {
    let p = std::path::Path::new(path);
    !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
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

    const BASE: &str =
        "name='x'\nmodes=['command']\ndefault_mode='command'\nprobe=['sh']\ncommand=['sh']\n";

    #[test]
    fn a_prepare_section_parses_with_both_steps() {
        let def = RuntimeDefinition::parse(
            "x.toml",
            &format!(
                "{BASE}[prepare.dependencies]\ninputs=['requirements.txt']\nalways=true\nrun='pip'\n[prepare.build]\nrun='cc'\n[prepare.binds]\n'/node_modules'='{{deps}}/node_modules'\n"
            ),
        )
        .unwrap();
        let p = def.prepare.unwrap();
        assert_eq!(p.dependencies.unwrap().inputs, ["requirements.txt"]);
        assert_eq!(p.build.unwrap().run, "cc");
        assert_eq!(p.binds["/node_modules"], "{deps}/node_modules");
    }

    #[test]
    fn prepare_inputs_and_binds_must_stay_inside_their_folders() {
        for (extra, needle) in [
            (
                "[prepare.dependencies]\ninputs=['../etc/passwd']\nrun='x'\n",
                "inputs",
            ),
            (
                "[prepare.dependencies]\ninputs=['/etc/passwd']\nrun='x'\n",
                "inputs",
            ),
            ("[prepare.binds]\n'/x'='/etc'\n", "binds"),
            ("[prepare.binds]\n'/x'='{deps}/../../etc'\n", "binds"),
            ("[prepare.binds]\n'x'='{deps}/a'\n", "binds"),
            ("[prepare.build]\nrun='x'\nbogus=1\n", "bogus"),
        ] {
            let err = RuntimeDefinition::parse("x.toml", &format!("{BASE}{extra}")).unwrap_err();
            assert!(err.to_string().contains(needle), "{extra}: {err}");
        }
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
