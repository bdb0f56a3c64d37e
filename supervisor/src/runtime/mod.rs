//! Runtimes: the definitions (`runtimes/*.toml`), which of them work on this host, and how an
//! executor of a given script version is launched.
//!
//! The shipped definitions are embedded in the binary so `runwarmd` works from any directory;
//! files in the configured `runtimes_dir` add runtimes or replace embedded ones by name.

mod definition;
mod launch;
mod probe;
pub mod shims;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use include_dir::{Dir, include_dir};
use serde::Serialize;

pub use definition::{
    BuildStep, DefinitionError, DependencyStep, LoadOverride, PrepareDefinition, RuntimeDefinition,
};
pub use launch::{Launcher, ScriptRef};
pub use tools::{CheckDefinition, FormatDefinition, OutputParser};

static EMBEDDED_RUNTIMES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../runtimes");

/// A runtime and what the probe found on this host.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Runtime {
    /// The definition.
    #[serde(flatten)]
    pub def: RuntimeDefinition,
    /// Whether the probe ran and printed an interpreter path.
    pub available: bool,
    /// Resolved interpreter path (absolute).
    #[schema(value_type = Option<String>)]
    pub interpreter: Option<PathBuf>,
    /// Interpreter version.
    pub version: Option<String>,
    /// Why it is unavailable, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where the definition came from.
    pub source: String,
}

/// The runtimes known to this daemon, probed.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    runtimes: BTreeMap<String, Runtime>,
}

/// Why the runtime catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A definition is broken.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// The runtimes directory cannot be read.
    #[error("cannot read runtimes directory {path}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Catalog {
    /// Loads the embedded definitions, then those in `extra_dirs` (later ones win by name), and
    /// probes every runtime concurrently.
    pub async fn load(
        extra_dirs: &[PathBuf],
        probe_timeout: Duration,
    ) -> Result<Self, CatalogError> {
        let mut defs: BTreeMap<String, (RuntimeDefinition, String)> = BTreeMap::new();
        for file in EMBEDDED_RUNTIMES.files() {
            let name = file.path().display().to_string();
            if !name.ends_with(".toml") {
                continue;
            }
            let text = file.contents_utf8().unwrap_or_default();
            let def = RuntimeDefinition::parse(&name, text)?;
            defs.insert(def.name.clone(), (def, format!("embedded:{name}")));
        }
        for dir in extra_dirs {
            for (def, source) in load_dir(dir)? {
                defs.insert(def.name.clone(), (def, source));
            }
        }
        let probes = defs.into_values().map(|(def, source)| async move {
            let found = probe::run(&def.probe, probe_timeout).await;
            let (available, interpreter, version, detail) = match found {
                Ok(p) => (true, Some(p.interpreter), Some(p.version), None),
                Err(e) => (false, None, None, Some(e.to_string())),
            };
            Runtime {
                def,
                available,
                interpreter,
                version,
                detail,
                source,
            }
        });
        let runtimes = futures_util::future::join_all(probes)
            .await
            .into_iter()
            .map(|r| (r.def.name.clone(), r))
            .collect();
        Ok(Self { runtimes })
    }

    /// A runtime by name.
    pub fn get(&self, name: &str) -> Option<&Runtime> {
        self.runtimes.get(name)
    }

    /// Every runtime, by name.
    pub fn all(&self) -> impl Iterator<Item = &Runtime> {
        self.runtimes.values()
    }

    /// Names of all runtimes, for error messages.
    pub fn names(&self) -> Vec<String> {
        self.runtimes.keys().cloned().collect()
    }
}

/// Every problem the runtime definitions in `extra_dirs` have, without probing anything (what
/// `runwarmd --check-config` reports; [`Catalog::load`] stops at the first).
pub fn check_definitions(extra_dirs: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for dir in extra_dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("runtimes_dirs: cannot read {}: {e}", dir.display()));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let shown = path.display().to_string();
            let checked = std::fs::read_to_string(path)
                .map_err(|e| format!("runtime file {shown}: {e}"))
                .and_then(|text| {
                    RuntimeDefinition::parse(&shown, &text).map_err(|e| e.to_string())
                });
            if let Err(e) = checked {
                problems.push(e.trim().replace('\n', "\n  "));
            }
        }
    }
    problems
}

fn load_dir(dir: &Path) -> Result<Vec<(RuntimeDefinition, String)>, CatalogError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| DefinitionError::Parse {
            file: shown.clone(),
            detail: e.to_string(),
        })?;
        out.push((RuntimeDefinition::parse(&shown, &text)?, shown));
    }
    Ok(out)
}
