//! The typed failure report: one JSON line `{"step":"pivot_root","errno":1,"detail":"…"}` that the
//! helper writes to its status fd (and to stderr) when a step before exec fails. A successful exec
//! closes the CLOEXEC status pipe without writing, so "EOF with no line" means the executor runs.

use serde::{Deserialize, Serialize};

/// The steps of `run()`, in order; the names are the `step` member of the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Parsing the command line and the spec.
    Args,
    /// Checking the spec.
    Validate,
    /// Closing inherited fds above 3 in the helper.
    CloseInheritedFds,
    /// Joining the executor's cgroups (v1 `tasks`; v2 through the clone).
    AttachCgroups,
    /// Blocking the signals the helper forwards.
    Signals,
    /// Creating the child in new namespaces.
    CloneNamespaces,
    /// Writing `uid_map`, `gid_map` and `setgroups` for the child.
    IdMaps,
    /// The child waiting for its maps.
    SyncMaps,
    /// Making every mount private.
    PrivateMounts,
    /// Building the new root (tmpfs, binds, /var/task, /tmp, /proc, /dev).
    NewRoot,
    /// `pivot_root` and detaching the old root.
    PivotRoot,
    /// Remounting the new root read-only.
    ReadOnlyRoot,
    /// Setting the hostname.
    Hostname,
    /// Bringing up loopback in the new network namespace.
    Loopback,
    /// Forking the executor (pid 2).
    ForkExecutor,
    /// Setting resource limits.
    Rlimits,
    /// Dropping the capability bounding set.
    BoundingSet,
    /// Switching to the inside uid/gid.
    Ids,
    /// Clearing effective/permitted/inheritable and ambient capabilities.
    Capabilities,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// Marking fds above 3 close-on-exec.
    CloseFds,
    /// Installing the seccomp filter.
    Seccomp,
    /// `chdir` to the working directory.
    Chdir,
    /// `execve` of the executor.
    Exec,
}

impl Step {
    /// The name used in the status line.
    pub fn name(self) -> &'static str {
        // Kept in sync with the serde names by the unit test below.
        match self {
            Step::Args => "args",
            Step::Validate => "validate",
            Step::CloseInheritedFds => "close_inherited_fds",
            Step::AttachCgroups => "attach_cgroups",
            Step::Signals => "signals",
            Step::CloneNamespaces => "clone_namespaces",
            Step::IdMaps => "id_maps",
            Step::SyncMaps => "sync_maps",
            Step::PrivateMounts => "private_mounts",
            Step::NewRoot => "new_root",
            Step::PivotRoot => "pivot_root",
            Step::ReadOnlyRoot => "read_only_root",
            Step::Hostname => "hostname",
            Step::Loopback => "loopback",
            Step::ForkExecutor => "fork_executor",
            Step::Rlimits => "rlimits",
            Step::BoundingSet => "bounding_set",
            Step::Ids => "ids",
            Step::Capabilities => "capabilities",
            Step::NoNewPrivs => "no_new_privs",
            Step::CloseFds => "close_fds",
            Step::Seccomp => "seccomp",
            Step::Chdir => "chdir",
            Step::Exec => "exec",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A step that failed before exec, as reported on the status fd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("sandbox step {step} failed: {detail}")]
pub struct StepFailure {
    /// Which step.
    pub step: Step,
    /// The errno of the failing call (0 when the failure was not a system call).
    pub errno: i32,
    /// What was being done, for a person.
    pub detail: String,
}

/// What marks the helper's report on stderr.
const STDERR_PREFIX: &str = "runwarm-sandbox: ";

impl StepFailure {
    /// A failure of `step` with `errno` while doing `detail`.
    pub fn new(step: Step, errno: i32, detail: impl Into<String>) -> Self {
        Self {
            step,
            errno,
            detail: detail.into(),
        }
    }

    /// A failure from a system call: the errno and its description go into the report.
    pub fn sys(step: Step, errno: nix::errno::Errno, what: impl std::fmt::Display) -> Self {
        Self::new(
            step,
            errno as i32,
            format!("{what}: {}", errno.desc().to_lowercase()),
        )
    }

    /// A failure from an `io::Error`.
    pub fn io(step: Step, err: &std::io::Error, what: impl std::fmt::Display) -> Self {
        Self::new(
            step,
            err.raw_os_error().unwrap_or(0),
            format!("{what}: {err}"),
        )
    }

    /// Parses one status line; `None` when the line is not a report (a hostile or broken helper).
    pub fn parse_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.trim()).ok()
    }

    /// The same report as the helper writes it to stderr, where a person reads it too.
    pub fn to_stderr_line(&self) -> String {
        format!("{STDERR_PREFIX}{}", self.to_line())
    }

    /// The helper's report among whatever else a process wrote to stderr (the last one wins).
    pub fn find_in_stderr(stderr: &str) -> Option<Self> {
        stderr
            .lines()
            .rev()
            .filter_map(|line| line.strip_prefix(STDERR_PREFIX))
            .find_map(Self::parse_line)
    }

    /// The status line, newline-terminated.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"step":"{}","errno":{},"detail":"unserialisable"}}"#,
                self.step, self.errno
            )
        });
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_round_trips_with_the_documented_shape() {
        let f = StepFailure::new(Step::PivotRoot, 1, "pivot_root: operation not permitted");
        let line = f.to_line();
        assert_eq!(
            line,
            "{\"step\":\"pivot_root\",\"errno\":1,\"detail\":\"pivot_root: operation not permitted\"}\n"
        );
        assert_eq!(StepFailure::parse_line(&line), Some(f.clone()));
        assert_eq!(StepFailure::parse_line("garbage"), None);
        let stderr = format!("python: noise\n{}more noise\n", f.to_stderr_line());
        assert_eq!(StepFailure::find_in_stderr(&stderr), Some(f));
        assert_eq!(
            StepFailure::find_in_stderr(&line),
            None,
            "only marked lines count"
        );
        assert_eq!(StepFailure::find_in_stderr("killed by a signal\n"), None);
    }

    #[test]
    fn step_names_match_serde() {
        for step in [
            Step::Args,
            Step::IdMaps,
            Step::NewRoot,
            Step::CloseInheritedFds,
            Step::Exec,
        ] {
            assert_eq!(serde_json::to_value(step).unwrap(), step.name());
        }
    }
}
