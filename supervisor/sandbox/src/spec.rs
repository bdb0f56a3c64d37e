//! [`SandboxSpec`]: everything the helper needs to confine one executor, serialised by the daemon
//! into `runwarm-sandbox --spec JSON`. [`SandboxSpec::validate`] is pure (no file system access), so
//! the daemon can check a spec before spawning and the helper re-checks it as its first step.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Step;

mod error;

pub use error::SpecError;

/// How to confine and start one executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSpec {
    /// The executor to exec, as a path inside the sandbox.
    pub program: PathBuf,
    /// Its arguments (argv\[1..\]; argv\[0\] is `program`).
    pub args: Vec<String>,
    /// The complete environment of the executor (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
    /// The executor's cgroup directories, joined before any process of the sandbox exists.
    pub cgroups: Vec<CgroupJoin>,
    /// Outside (host) uid the sandbox user maps to.
    pub uid: u32,
    /// Outside (host) gid the sandbox group maps to.
    pub gid: u32,
    /// uid the executor runs as inside the user namespace.
    pub inside_uid: u32,
    /// gid the executor runs as inside the user namespace.
    pub inside_gid: u32,
    /// Share the host's network namespace instead of an empty one with loopback only.
    pub network_host: bool,
    /// Hostname inside the UTS namespace.
    pub hostname: String,
    /// Read-only binds `(host path, inside path)`; a host symlink becomes the same symlink inside.
    pub ro_binds: Vec<(PathBuf, PathBuf)>,
    /// Writable binds `(host path, inside path)`, made after the read-only ones: only a prepare
    /// step gets them (its output folder and scratch space); executors never do.
    pub rw_binds: Vec<(PathBuf, PathBuf)>,
    /// The script version, bound read-only at `/var/task`.
    pub task_dir: PathBuf,
    /// Size of the private `/tmp` tmpfs.
    pub tmp_size_bytes: u64,
    /// Size of the `/dev/shm` tmpfs; 0 for none.
    pub dev_shm_size_bytes: u64,
    /// Secrets delivered as files `(name, value)`: `/run/secrets/NAME`, mode 0400, on a
    /// read-only tmpfs of their own (needs the mount namespace).
    pub secret_files: Vec<(String, String)>,
    /// Resource limits set on the executor.
    pub rlimits: Rlimits,
    /// Which layers to apply (best-effort mode turns off the ones the host lacks).
    pub layers: Layers,
}

/// One cgroup directory the sandbox joins.
///
/// Moving a process with `cgroup.procs` takes the kernel's global threadgroup lock for writing,
/// which waits out an RCU grace period (7–15 ms measured on this project's hosts). Neither way
/// below takes it: on v1 the single-threaded helper moves only itself by writing `0` to `tasks`;
/// on v2 the sandbox's first process is created inside the cgroup (`clone3(CLONE_INTO_CGROUP)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupJoin {
    /// The cgroup's directory.
    pub dir: PathBuf,
    /// Which hierarchy it belongs to.
    pub version: CgroupVersion,
}

/// A cgroup hierarchy's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// A v1 controller hierarchy (joined through its `tasks` file).
    V1,
    /// The unified v2 hierarchy (joined by creating the init inside it).
    V2,
}

/// Resource limits (soft = hard) applied to the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rlimits {
    /// `RLIMIT_CORE` in bytes (0: no core dumps).
    pub core: u64,
    /// `RLIMIT_FSIZE`: largest file the executor may write, in bytes.
    pub fsize: u64,
    /// `RLIMIT_NOFILE`: open files.
    pub nofile: u64,
}

/// The layers of confinement; each can be turned off when the host lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Layers {
    /// User namespace with the uid/gid maps (needed for every other namespace when not root).
    pub user_ns: bool,
    /// Mount namespace with the minimal root (`pivot_root`).
    pub mount_ns: bool,
    /// Pid namespace with the helper as its init.
    pub pid_ns: bool,
    /// Empty network namespace (ignored when `network_host`).
    pub net_ns: bool,
    /// IPC and UTS namespaces.
    pub ipc_uts_ns: bool,
    /// Drop every capability (bounding, permitted, effective, inheritable, ambient).
    pub capabilities: bool,
    /// `PR_SET_NO_NEW_PRIVS`.
    pub no_new_privs: bool,
    /// The seccomp filter.
    pub seccomp: bool,
}

impl Layers {
    /// Every layer off: the helper only execs.
    pub const NONE: Layers = Layers {
        user_ns: false,
        mount_ns: false,
        pid_ns: false,
        net_ns: false,
        ipc_uts_ns: false,
        capabilities: false,
        no_new_privs: false,
        seccomp: false,
    };

    /// These layers without the one `failed` points at, for best-effort confinement: `None` when
    /// no layer is to blame (the failure would happen without any) or that layer is already off.
    /// A failed clone cannot say which namespace the kernel refused, so the namespaces are given
    /// up one at a time, the ones other layers depend on last.
    pub fn without_cause_of(self, failed: Step) -> Option<Layers> {
        let mut next = self;
        let layer: &mut bool = match failed {
            Step::CloneNamespaces => [
                &mut next.net_ns,
                &mut next.ipc_uts_ns,
                &mut next.pid_ns,
                &mut next.mount_ns,
                &mut next.user_ns,
            ]
            .into_iter()
            .find(|on| **on)?,
            Step::IdMaps | Step::SyncMaps | Step::Ids => &mut next.user_ns,
            Step::PrivateMounts | Step::NewRoot | Step::PivotRoot | Step::ReadOnlyRoot => {
                &mut next.mount_ns
            }
            Step::Hostname => &mut next.ipc_uts_ns,
            Step::Loopback => &mut next.net_ns,
            Step::BoundingSet | Step::Capabilities => &mut next.capabilities,
            Step::NoNewPrivs => &mut next.no_new_privs,
            Step::Seccomp => &mut next.seccomp,
            Step::Args
            | Step::Validate
            | Step::CloseInheritedFds
            | Step::AttachCgroups
            | Step::Signals
            | Step::ForkExecutor
            | Step::Rlimits
            | Step::CloseFds
            | Step::Chdir
            | Step::Exec => return None,
        };
        if !*layer {
            return None;
        }
        *layer = false;
        Some(next)
    }
}

impl Default for SandboxSpec {
    fn default() -> Self {
        Self {
            program: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: PathBuf::from("/var/task"),
            cgroups: Vec::new(),
            uid: 65534,
            gid: 65534,
            inside_uid: 1000,
            inside_gid: 1000,
            network_host: false,
            hostname: "runwarm".to_owned(),
            ro_binds: Vec::new(),
            rw_binds: Vec::new(),
            task_dir: PathBuf::new(),
            tmp_size_bytes: 64 << 20,
            dev_shm_size_bytes: 0,
            secret_files: Vec::new(),
            rlimits: Rlimits::default(),
            layers: Layers::default(),
        }
    }
}

impl Default for Rlimits {
    fn default() -> Self {
        Self {
            core: 0,
            fsize: 1 << 30,
            nofile: 1024,
        }
    }
}

impl Default for Layers {
    fn default() -> Self {
        Self {
            user_ns: true,
            mount_ns: true,
            pid_ns: true,
            net_ns: true,
            ipc_uts_ns: true,
            capabilities: true,
            no_new_privs: true,
            seccomp: true,
        }
    }
}

/// Host system directories a runtime needs, bound read-only where they exist.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
];

/// Files and directories of `/etc` a runtime needs. `/etc/shadow` and the like stay out.
const ETC_ENTRIES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/alternatives",
];

impl SandboxSpec {
    /// The system binds for this host: the directories of `SYSTEM_DIRS` as they are (a symlinked
    /// `/bin` stays a symlink inside) and the selected `/etc` entries, resolved, so a
    /// `/etc/resolv.conf` that links into `/run` still has its content inside.
    pub fn default_ro_binds() -> Vec<(PathBuf, PathBuf)> {
        let mut binds = Vec::new();
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            if path.symlink_metadata().is_ok() {
                binds.push((path.to_path_buf(), path.to_path_buf()));
            }
        }
        for entry in ETC_ENTRIES {
            if let Ok(real) = Path::new(entry).canonicalize() {
                binds.push((real, PathBuf::from(entry)));
            }
        }
        binds
    }

    /// Checks the spec without touching the file system.
    pub fn validate(&self) -> Result<(), SpecError> {
        plain_absolute("program", &self.program)?;
        plain_absolute("cwd", &self.cwd)?;
        if self.layers.mount_ns {
            plain_absolute("task_dir", &self.task_dir)?;
        }
        let binds = self.ro_binds.iter().map(|b| (b, "ro_binds"));
        for ((host, inside), field) in binds.chain(self.rw_binds.iter().map(|b| (b, "rw_binds"))) {
            plain_absolute(field, host)?;
            plain_absolute(field, inside)?;
            let reserved = ["/", "/proc", "/dev", "/tmp", "/var/task"];
            if reserved
                .iter()
                .any(|r| inside.starts_with(r) && (*r != "/" || inside == Path::new("/")))
            {
                return Err(SpecError::ReservedTarget {
                    path: inside.clone(),
                });
            }
        }
        let mut v2: Option<&Path> = None;
        for join in &self.cgroups {
            plain_absolute("cgroups dir", &join.dir)?;
            if join.version == CgroupVersion::V2 {
                if let Some(first) = v2 {
                    return Err(SpecError::SecondV2Cgroup {
                        first: first.to_path_buf(),
                        second: join.dir.clone(),
                    });
                }
                v2 = Some(&join.dir);
            }
        }
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                return Err(SpecError::BadEnv { name: name.clone() });
            }
        }
        for (name, _) in &self.secret_files {
            let bad = |why| SpecError::BadSecretFile {
                name: name.clone(),
                why,
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad("the name must be letters, digits and underscores"));
            }
            if !self.layers.mount_ns {
                return Err(bad("the mount namespace layer is off"));
            }
        }
        if let Some(index) = self.args.iter().position(|a| a.contains('\0')) {
            return Err(SpecError::BadArg { index });
        }
        let host_ok = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
        if self.hostname.is_empty()
            || self.hostname.len() > 64
            || !self.hostname.chars().all(host_ok)
        {
            return Err(SpecError::BadHostname(self.hostname.clone()));
        }
        for (field, value) in [
            ("uid", self.uid),
            ("gid", self.gid),
            ("inside_uid", self.inside_uid),
            ("inside_gid", self.inside_gid),
        ] {
            if value == u32::MAX {
                return Err(SpecError::OutOfRange {
                    field,
                    value: value.into(),
                });
            }
        }
        for (field, value) in [
            ("tmp_size_bytes", self.tmp_size_bytes),
            ("rlimits.fsize", self.rlimits.fsize),
            ("rlimits.nofile", self.rlimits.nofile),
        ] {
            if value == 0 {
                return Err(SpecError::OutOfRange { field, value });
            }
        }
        Ok(())
    }
}

fn plain_absolute(field: &'static str, path: &Path) -> Result<(), SpecError> {
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !path.as_os_str().as_encoded_bytes().contains(&0);
    if plain {
        Ok(())
    } else {
        Err(SpecError::NotAbsolute {
            field,
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests;
