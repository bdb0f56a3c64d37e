//! Confinement of executor processes.
//!
//! `cgroup` is the daemon-side cgroup layer (limits, kill, OOM, stats); [`Confinement`] decides at
//! start which layers this host really has (measured by running the `runwarm-sandbox` helper
//! once, not assumed), and `plan` turns one executor launch into a `runwarm-sandbox --spec`
//! command. The helper binary (crate `runwarm-sandbox`) does the confining between its own fork
//! and exec, so nothing unsafe runs in this multi-threaded daemon.

pub mod cgroup;
pub mod oneshot;
mod plan;
mod probe;

use std::path::{Path, PathBuf};

use runwarm_sandbox::{Layers, Step};
use serde::Serialize;

pub(crate) use plan::interpreter_prefix;
pub use plan::{
    Binds, INSIDE_BUILD, INSIDE_DEPS, INSIDE_EXEC_COMMAND, INSIDE_EXECUTORS, INSIDE_SCRATCH,
    INSIDE_TASK, INSIDE_TOOLCHAIN, SandboxLaunch,
};
pub use probe::LayerReport;

use cgroup::{Cgroups, DEFAULT_ROOT};

/// `sandbox` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Every layer must work, or the daemon refuses to start.
    Required,
    /// Use what works; say loudly what does not.
    BestEffort,
    /// Run executors unconfined (development).
    Off,
}

impl SandboxMode {
    /// Parses the config spelling; `auto` is `required` as root and `best-effort` otherwise.
    pub fn parse(s: &str, is_root: bool) -> Option<SandboxMode> {
        Some(match s {
            "required" => SandboxMode::Required,
            "best-effort" => SandboxMode::BestEffort,
            "off" => SandboxMode::Off,
            "auto" if is_root => SandboxMode::Required,
            "auto" => SandboxMode::BestEffort,
            _ => return None,
        })
    }
}

/// Settings of the confinement, from the config.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Mode.
    pub mode: SandboxMode,
    /// The `runwarm-sandbox` binary.
    pub binary: PathBuf,
    /// Host uid and gid executors map to.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Size of each executor's private `/tmp`.
    pub tmp_size_bytes: u64,
}

/// What confinement this daemon applies, decided once at start.
#[derive(Debug)]
pub struct Confinement {
    settings: SandboxSettings,
    /// Whether executors are started through the sandbox helper.
    namespaces: bool,
    /// The layers the helper applies (all of them unless best-effort gave some up).
    layers: Layers,
    cgroups: Option<Cgroups>,
    report: LayerReport,
}

/// Why `required` confinement cannot be had.
#[derive(Debug, thiserror::Error)]
#[error("sandbox = \"required\" but {missing} on this host: {detail}\nhint: {hint}")]
pub struct ConfinementError {
    missing: String,
    detail: String,
    hint: String,
}

/// What to do when `required` confinement failed, from what actually failed. Telling a daemon
/// that already runs as root with `Delegate=yes` to run as root with `Delegate=yes` helps no
/// one: as root, the cause is what surrounds the daemon (its unit's sandboxing, a container).
fn start_failure_hint(
    settings: &SandboxSettings,
    failure: Option<&runwarm_sandbox::StepFailure>,
    cgroup_hint: Option<&str>,
) -> String {
    const LOWER: &str =
        "or set sandbox = \"best-effort\" (or \"off\" for development) in the config";
    if !nix::unistd::geteuid().is_root() {
        return format!(
            "run runwarmd as root (the helper needs CAP_SYS_ADMIN for namespaces and cgroups), {LOWER}"
        );
    }
    if !settings.binary.is_file() {
        return format!(
            "install the sandbox helper at {} (it ships as runwarm-sandbox next to runwarmd) or point sandbox.binary at it",
            settings.binary.display()
        );
    }
    let Some(f) = failure else {
        return match cgroup_hint {
            Some(h) => format!("cgroups: {h}"),
            None => format!(
                "runwarmd runs as root, so something around it takes a layer away: see the problems above, {LOWER}"
            ),
        };
    };
    let errno = nix::errno::Errno::from_raw(f.errno);
    let call = format!(
        "the sandbox helper's step `{}` failed with {errno:?}",
        f.step
    );
    let why = match (f.step, errno) {
        (_, nix::errno::Errno::EAFNOSUPPORT) => {
            "an address family is forbidden to runwarmd: under systemd, RestrictAddressFamilies= must allow AF_INET and AF_INET6 (the helper brings up loopback with them, and scripts inherit the restriction)".to_owned()
        }
        (Step::Hostname, nix::errno::Errno::EPERM) => {
            "sethostname is forbidden to runwarmd: under systemd, ProtectHostname=yes does that (each executor sets its own hostname in its own uts namespace); set ProtectHostname=no".to_owned()
        }
        (_, nix::errno::Errno::EPERM | nix::errno::Errno::EACCES) => {
            "runwarmd runs as root, so something around it forbids that call: its unit's sandboxing (RestrictNamespaces=, PrivateUsers=, SystemCallFilter= without @mount and @privileged, CapabilityBoundingSet= without CAP_SYS_ADMIN, ProtectControlGroups=; compare with the shipped systemd/runwarm.service), a container's seccomp profile or a Linux security module".to_owned()
        }
        (Step::CloneNamespaces, nix::errno::Errno::ENOSPC) => {
            "a namespace limit is reached or 0 (sysctl user.max_user_namespaces and its siblings)".to_owned()
        }
        _ => format!("{}; see docs/sandbox.md for what that step needs", f.detail),
    };
    format!("{call}: {why}; {LOWER}")
}

impl Confinement {
    /// Unconfined.
    pub fn off(settings: SandboxSettings) -> Self {
        let report = LayerReport::off();
        Self {
            settings,
            namespaces: false,
            layers: Layers::NONE,
            cgroups: None,
            report,
        }
    }

    /// Measures which layers work here and applies the mode's rule.
    pub async fn detect(
        settings: SandboxSettings,
        scratch: &Path,
    ) -> Result<Self, ConfinementError> {
        if settings.mode == SandboxMode::Off {
            tracing::warn!(
                "sandbox = \"off\": executors run unconfined, with the daemon's privileges"
            );
            return Ok(Self::off(settings));
        }
        let root = Path::new(DEFAULT_ROOT);
        let swept = Cgroups::sweep_stale(root, "runwarm");
        if swept > 0 {
            tracing::warn!(swept, "removed cgroups left behind by a previous daemon");
        }
        let subtree = format!("runwarm/{}", cgroup::instance_name());
        let (cgroups, cgroup_error, cgroup_hint) = match Cgroups::detect(root, &subtree) {
            Ok(c) => (Some(c), None, None),
            Err(e) => {
                let hint = e.hint().unwrap_or_default();
                (None, Some(format!("{e} ({hint})")), e.hint())
            }
        };
        let mut layers = Layers::default();
        let mut given_up = Vec::new();
        let (mut report, last_failure) = loop {
            let (report, failed) = probe::run(&settings, scratch, layers).await;
            // Best effort: a step that fails costs its own layer, not the whole sandbox.
            let fewer = failed.as_ref().and_then(|f| {
                let next = layers.without_cause_of(f.step)?;
                Some((next, f))
            });
            match fewer {
                Some((next, failure)) if settings.mode == SandboxMode::BestEffort => {
                    tracing::warn!(step = %failure.step, errno = failure.errno, detail = %failure.detail, "sandbox step fails on this host; retrying without its layer");
                    given_up.push(format!("{failure}"));
                    layers = next;
                }
                _ => break (report, failed),
            }
        };
        report.problems.extend(given_up);
        if !layers.mount_ns && report.namespaces_work() {
            // Nothing is bound for them then: they open host paths with the sandbox's ids.
            report.problems.push(format!(
                "without the minimal root executors see host paths as uid {}: the state directory, the executor shims and each runtime's interpreter must be readable (directories searchable) by that uid",
                settings.uid
            ));
        }
        report.set_cgroups(cgroups.as_ref(), cgroup_error);
        let missing = report.missing();
        if !missing.is_empty() {
            if settings.mode == SandboxMode::Required {
                return Err(ConfinementError {
                    missing: format!("these layers do not work: {}", missing.join(", ")),
                    detail: report.detail(),
                    hint: start_failure_hint(&settings, last_failure.as_ref(), cgroup_hint),
                });
            }
            tracing::warn!(missing = ?missing, detail = %report.detail(), "sandbox = \"best-effort\": some confinement layers are NOT active");
        }
        let namespaces = report.namespaces_work();
        // Fields, not one JSON string: a JSON log line (and the journal) keeps each as a value.
        let active_namespaces: Vec<&str> = report
            .namespaces
            .iter()
            .filter(|(_, on)| **on)
            .map(|(n, _)| n.as_str())
            .collect();
        tracing::info!(
            mode = ?settings.mode,
            namespaces = %active_namespaces.join(","),
            unprivileged_uid = report.unprivileged_uid,
            capabilities_dropped = report.capabilities_dropped,
            no_new_privs = report.no_new_privs,
            seccomp = report.seccomp,
            minimal_root = report.minimal_root,
            cgroup_layout = report.cgroup_layout.as_deref().unwrap_or("none"),
            cgroup_controllers = %report.cgroup_controllers.join(","),
            missing = %missing.join(","),
            problems = %report.detail(),
            "confinement measured"
        );
        Ok(Self {
            settings,
            namespaces,
            layers,
            cgroups,
            report,
        })
    }

    /// Whether executors start through the sandbox helper.
    pub fn namespaces(&self) -> bool {
        self.namespaces
    }

    /// Whether executors see the minimal root (and so the inside paths `/var/task`, …).
    pub fn minimal_root(&self) -> bool {
        self.namespaces && self.layers.mount_ns
    }

    /// The layers the helper applies.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The cgroup manager, when cgroups work.
    pub fn cgroups(&self) -> Option<&Cgroups> {
        self.cgroups.as_ref()
    }

    /// Settings.
    pub fn settings(&self) -> &SandboxSettings {
        &self.settings
    }

    /// What `/v1/info` reports.
    pub fn report(&self) -> SandboxReport {
        SandboxReport {
            mode: self.settings.mode,
            layers: self.report.clone(),
        }
    }
}

/// The confinement in `GET /v1/info`: the mode and the layers measured at start.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SandboxReport {
    /// The configured mode (`auto` resolved).
    pub mode: SandboxMode,
    /// Which layers are active.
    #[serde(flatten)]
    pub layers: LayerReport,
}
