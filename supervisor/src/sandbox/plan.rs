//! Turning one executor launch into a `runwarm-sandbox --spec JSON` launch.
//!
//! Inside the sandbox the script version is `/var/task`, the shims are under
//! `/opt/runwarm/executors` and the command-mode executor is `/opt/runwarm/bin/…`; the host's
//! state directory is never visible, only those read-only binds of it.

use std::path::{Path, PathBuf};

use runwarm_sandbox::SandboxSpec;

use super::Confinement;
use super::cgroup::{CgroupLimits, ExecutorCgroup};
use crate::worker::LaunchSpec;

/// Where the script version is inside.
pub const INSIDE_TASK: &str = "/var/task";
/// Where the shims are inside.
pub const INSIDE_EXECUTORS: &str = "/opt/runwarm/executors";
/// Where the command-mode executor is inside.
pub const INSIDE_EXEC_COMMAND: &str = "/opt/runwarm/bin/runwarm-exec-command";

/// A confined launch: the helper command and the executor's cgroup.
#[derive(Debug)]
pub struct SandboxLaunch {
    /// `runwarm-sandbox --spec …`.
    pub launch: LaunchSpec,
    /// The executor's cgroup (killed and removed when dropped).
    pub cgroup: Option<ExecutorCgroup>,
}

/// Host directories an interpreter outside the system directories needs (e.g. a pyenv prefix
/// under `/root`): the installation prefix, two levels above `bin/python3`.
fn interpreter_prefix(interpreter: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(interpreter).ok()?;
    let system = ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"];
    if system.iter().any(|p| real.starts_with(p)) {
        return None;
    }
    real.parent()?.parent().map(Path::to_path_buf)
}

impl Confinement {
    /// Wraps `inner` (already written with inside paths) in the sandbox helper.
    #[allow(clippy::too_many_arguments)]
    pub fn wrap(
        &self,
        id: &str,
        inner: &LaunchSpec,
        task_dir: &Path,
        executors_dir: &Path,
        exec_command: &Path,
        interpreter: Option<&Path>,
        network_host: bool,
        limits: &CgroupLimits,
    ) -> Result<SandboxLaunch, String> {
        let cgroup = match self.cgroups() {
            Some(c) => Some(
                c.create(id, limits)
                    .map_err(|e| format!("creating the executor's cgroup: {e}"))?,
            ),
            None => None,
        };
        let mut ro_binds = SandboxSpec::default_ro_binds();
        ro_binds.push((executors_dir.to_owned(), INSIDE_EXECUTORS.into()));
        if exec_command.exists() {
            ro_binds.push((exec_command.to_owned(), INSIDE_EXEC_COMMAND.into()));
        }
        if let Some(prefix) = interpreter.and_then(interpreter_prefix) {
            ro_binds.push((prefix.clone(), prefix));
        }
        let mut env = inner.env.clone();
        env.push((
            runwarm_protocol::env::STDOUT_FD.into(),
            runwarm_protocol::env::USER_STDOUT_FD.to_string(),
        ));
        env.push((
            runwarm_protocol::env::PROTOCOL.into(),
            runwarm_protocol::PROTOCOL_VERSION.to_string(),
        ));
        let s = self.settings();
        let spec = SandboxSpec {
            program: inner.program.clone(),
            args: inner.args.clone(),
            env,
            cwd: if self.minimal_root() {
                INSIDE_TASK.into()
            } else {
                task_dir.to_owned()
            },
            cgroups: cgroup
                .as_ref()
                .map(ExecutorCgroup::joins)
                .unwrap_or_default(),
            uid: s.uid,
            gid: s.gid,
            network_host,
            ro_binds,
            task_dir: task_dir.to_owned(),
            tmp_size_bytes: s.tmp_size_bytes,
            layers: self.layers(),
            ..SandboxSpec::default()
        };
        spec.validate()
            .map_err(|e| format!("invalid sandbox spec: {e}"))?;
        let json =
            serde_json::to_string(&spec).map_err(|e| format!("encoding the sandbox spec: {e}"))?;
        let launch = LaunchSpec {
            program: s.binary.clone(),
            args: vec!["--spec".into(), json],
            env: inner
                .env
                .iter()
                .filter(|(k, _)| k == "RUNWARM_INSTANCE")
                .cloned()
                .collect(),
            cwd: "/".into(),
        };
        Ok(SandboxLaunch { launch, cgroup })
    }
}
