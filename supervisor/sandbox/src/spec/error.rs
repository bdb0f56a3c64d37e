//! Why a spec is refused.

use std::path::PathBuf;

/// Why a [`super::SandboxSpec`] is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A path that must be absolute and plain is not.
    #[error("{field} must be an absolute path without `..`: {path}")]
    NotAbsolute {
        /// The field.
        field: &'static str,
        /// The offending path.
        path: PathBuf,
    },
    /// A bind would cover a path the sandbox builds itself.
    #[error("bind target {path} covers a reserved path (/, /proc, /dev, /tmp, /var/task)")]
    ReservedTarget {
        /// The offending inside path.
        path: PathBuf,
    },
    /// More than one v2 cgroup: a process can be in only one cgroup of the unified hierarchy.
    #[error("more than one v2 cgroup to join: {first} and {second}")]
    SecondV2Cgroup {
        /// The first v2 directory.
        first: PathBuf,
        /// The second one.
        second: PathBuf,
    },
    /// An environment variable name is empty or holds `=` or NUL, or a value holds NUL.
    #[error("environment variable {name:?} is not valid")]
    BadEnv {
        /// The name.
        name: String,
    },
    /// A secret file's name is not a plain `[A-Za-z0-9_]` name, or there is no mount namespace
    /// to hold the files.
    #[error("secret file {name:?} cannot be delivered: {why}")]
    BadSecretFile {
        /// The name.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// An argument holds a NUL byte.
    #[error("argument {index} contains a NUL byte")]
    BadArg {
        /// Its index in `args`.
        index: usize,
    },
    /// The hostname is empty, longer than 64 bytes or has characters outside `[A-Za-z0-9.-]`.
    #[error("hostname {0:?} is not valid")]
    BadHostname(String),
    /// A size or limit is zero or an id is the invalid id `u32::MAX`.
    #[error("{field} is out of range: {value}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}
