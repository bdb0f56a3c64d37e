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
/// Where a version's prepared dependencies are inside (read-only, writable to its own step).
pub const INSIDE_DEPS: &str = "/opt/runwarm/deps";
/// Where a version's build output is inside (read-only, writable to its own step).
pub const INSIDE_BUILD: &str = "/opt/runwarm/build";
/// A runtime's toolchain seed, read-only to the dependency and build steps.
pub const INSIDE_TOOLCHAIN: &str = "/opt/runwarm/toolchain";
/// Disk-backed scratch space of a prepare step (tool caches, a writable copy of the sources).
pub const INSIDE_SCRATCH: &str = "/opt/runwarm/scratch";

/// The spec in an anonymous memory file, rewound: what the helper reads on its spec fd. Not in
/// argv, where every local user could read the script's environment in `/proc/PID/cmdline`.
fn spec_memfd(json: &[u8]) -> Result<std::os::fd::OwnedFd, String> {
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use std::io::{Seek, Write};
    let fd = memfd_create(c"runwarm-sandbox-spec", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| format!("creating the sandbox spec's memfd: {e}"))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(json)
        .and_then(|()| file.rewind())
        .map_err(|e| format!("writing the sandbox spec: {e}"))?;
    Ok(file.into())
}

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
pub(crate) fn interpreter_prefix(interpreter: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(interpreter).ok()?;
    let system = ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"];
    if system.iter().any(|p| real.starts_with(p)) {
        return None;
    }
    real.parent()?.parent().map(Path::to_path_buf)
}

/// What the sandbox binds for one launch, besides the system directories.
#[derive(Debug, Default)]
pub struct Binds {
    /// The host directory bound read-only at `/var/task`.
    pub task_dir: PathBuf,
    /// Further read-only binds `(host, inside)`.
    pub ro: Vec<(PathBuf, PathBuf)>,
    /// Writable binds `(host, inside)`: a prepare step's output and scratch folders only.
    pub rw: Vec<(PathBuf, PathBuf)>,
    /// Share the host's network.
    pub network_host: bool,
    /// Size of the private `/tmp`; the configured default when `None`.
    pub tmp_size_bytes: Option<u64>,
    /// Secrets delivered as files `(name, value)` under `/run/secrets`.
    pub secret_files: Vec<(String, String)>,
}

impl Confinement {
    /// Wraps `inner` (already written with inside paths) in the sandbox helper, for an executor
    /// of a script version.
    #[allow(clippy::too_many_arguments)]
    pub fn wrap(
        &self,
        id: &str,
        inner: &LaunchSpec,
        mut binds: Binds,
        executors_dir: &Path,
        exec_command: &Path,
        interpreter: Option<&Path>,
        limits: &CgroupLimits,
    ) -> Result<SandboxLaunch, String> {
        binds
            .ro
            .push((executors_dir.to_owned(), INSIDE_EXECUTORS.into()));
        if exec_command.exists() {
            binds
                .ro
                .push((exec_command.to_owned(), INSIDE_EXEC_COMMAND.into()));
        }
        if let Some(prefix) = interpreter.and_then(interpreter_prefix) {
            binds.ro.push((prefix.clone(), prefix));
        }
        self.wrap_with(id, inner, binds, limits)
    }

    /// Wraps `inner` with exactly the given binds (on top of the system directories).
    pub fn wrap_with(
        &self,
        id: &str,
        inner: &LaunchSpec,
        binds: Binds,
        limits: &CgroupLimits,
    ) -> Result<SandboxLaunch, String> {
        let cgroup = match self.cgroups() {
            Some(c) => Some(
                c.create(id, limits)
                    .map_err(|e| format!("creating the cgroup: {e}"))?,
            ),
            None => None,
        };
        let mut ro_binds = SandboxSpec::default_ro_binds();
        ro_binds.extend(binds.ro);
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
                inner.cwd.clone()
            } else {
                binds.task_dir.clone()
            },
            cgroups: cgroup
                .as_ref()
                .map(ExecutorCgroup::joins)
                .unwrap_or_default(),
            uid: s.uid,
            gid: s.gid,
            network_host: binds.network_host,
            ro_binds,
            rw_binds: binds.rw,
            task_dir: binds.task_dir,
            tmp_size_bytes: binds.tmp_size_bytes.unwrap_or(s.tmp_size_bytes),
            secret_files: binds.secret_files,
            layers: self.layers(),
            ..SandboxSpec::default()
        };
        spec.validate()
            .map_err(|e| format!("invalid sandbox spec: {e}"))?;
        let json =
            serde_json::to_vec(&spec).map_err(|e| format!("encoding the sandbox spec: {e}"))?;
        let launch = LaunchSpec {
            program: s.binary.clone(),
            args: vec!["--spec-fd".into(), runwarm_sandbox::SPEC_FD.to_string()],
            env: inner
                .env
                .iter()
                .filter(|(k, _)| k == "RUNWARM_INSTANCE")
                .cloned()
                .collect(),
            cwd: "/".into(),
            spec_fd: Some(std::sync::Arc::new(spec_memfd(&json)?)),
        };
        Ok(SandboxLaunch { launch, cgroup })
    }
}
