//! The command line, environment and init message an executor starts with, filled in from the
//! runtime's templates; kept apart from the start because it starts nothing and can be shown.

use std::path::{Path, PathBuf};

use runwarm_protocol::InitScript;
use serde_json::{Map, Value};

use super::{Launcher, ScriptRef};
use crate::prepare::Prepared;
use crate::worker::{LaunchSpec, StartError};

/// Base environment of every executor; nothing of the daemon's own environment leaks in.
const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

impl Launcher {
    /// Builds the launch spec without starting anything.
    /// With `inside`, paths are written as the executor sees them in the sandbox's minimal root.
    pub fn plan(
        &self,
        script: ScriptRef<'_>,
        inside: bool,
        prepared: &Prepared,
    ) -> Result<(LaunchSpec, InitScript, Map<String, Value>), StartError> {
        let catalog = self.catalog();
        let m = script.manifest;
        let unavailable = |detail: String| StartError::Unavailable { detail };
        let rt = catalog
            .get(&m.runtime)
            .ok_or_else(|| unavailable(format!("runtime {:?} is not defined", m.runtime)))?;
        if !rt.available {
            return Err(unavailable(format!(
                "runtime {:?} is not available on this host: {}",
                m.runtime,
                rt.detail.as_deref().unwrap_or("probe failed")
            )));
        }
        let mode = m.mode.unwrap_or(rt.def.default_mode);
        let template = rt
            .def
            .command_for(mode)
            .filter(|_| rt.def.modes.contains(&mode))
            .ok_or_else(|| {
                unavailable(format!(
                    "runtime {:?} has no {} mode",
                    m.runtime,
                    mode.as_str()
                ))
            })?;
        let (root, executors, exec_command) = if inside {
            (
                PathBuf::from(crate::sandbox::INSIDE_TASK),
                PathBuf::from(crate::sandbox::INSIDE_EXECUTORS),
                PathBuf::from(crate::sandbox::INSIDE_EXEC_COMMAND),
            )
        } else {
            (
                script.root.to_owned(),
                self.executors_dir.clone(),
                self.exec_command.clone(),
            )
        };
        let entry = root.join(&m.entry);
        let entry_stem = m
            .entry
            .rsplit_once('.')
            .map_or(m.entry.as_str(), |(s, _)| s);
        // A runtime without that step still gets the path: a classpath or module path naming
        // a folder that does not exist is harmless, and a program there fails with its name.
        let (deps, build) = if inside {
            (
                PathBuf::from(crate::sandbox::INSIDE_DEPS),
                PathBuf::from(crate::sandbox::INSIDE_BUILD),
            )
        } else {
            let missing = || script.root.join(".runwarm-not-prepared");
            (
                prepared.deps.clone().unwrap_or_else(missing),
                prepared.build.clone().unwrap_or_else(missing),
            )
        };
        let interpreter = rt
            .interpreter
            .as_deref()
            .map(Path::to_string_lossy)
            .unwrap_or_default();
        let fill = |arg: &str| {
            arg.replace("{interpreter}", &interpreter)
                .replace("{executors}", &executors.to_string_lossy())
                .replace("{exec_command}", &exec_command.to_string_lossy())
                .replace("{entry}", &entry.to_string_lossy())
                .replace("{entry_stem}", entry_stem)
                .replace("{root}", &root.to_string_lossy())
                .replace("{deps}", &deps.to_string_lossy())
                .replace("{build}", &build.to_string_lossy())
        };
        let mut argv = template.iter().map(|a| fill(a));
        let program = PathBuf::from(argv.next().unwrap_or_default());
        let args: Vec<String> = argv.collect();

        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), BASE_PATH.into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), "/tmp".into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("RUNWARM_INSTANCE".into(), self.instance.clone()),
        ];
        env.extend(rt.def.env.iter().map(|(k, v)| (k.clone(), fill(v))));
        env.extend(m.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let init_env: Map<String, Value> = m
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let (load_root, load_entry) = match &rt.def.load {
            Some(load) => (fill(&load.root), fill(&load.entry)),
            None => (root.to_string_lossy().into_owned(), m.entry.clone()),
        };
        let init = InitScript {
            name: script.name.to_owned(),
            version: script.version.to_owned(),
            root: load_root,
            entry: load_entry,
            handler: m.handler.clone(),
            mode,
        };
        let spec = LaunchSpec {
            program,
            args,
            env,
            cwd: root,
            spec_fd: None,
        };
        Ok((spec, init, init_env))
    }
}
