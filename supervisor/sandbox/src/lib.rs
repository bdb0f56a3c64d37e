//! The library half of `runwarm-sandbox`: the [`SandboxSpec`] the daemon serialises for the
//! helper binary, the typed [`StepFailure`] the helper reports back over its status pipe, and the
//! seccomp rule list. The binary half (`src/bin/runwarm-sandbox`) applies the spec and execs the
//! executor; the daemon depends only on this half, so no kernel-facing code links into it.
#![warn(missing_docs)]

mod seccomp_filter;
mod spec;
mod status;

pub use seccomp_filter::{
    DENIED_SYSCALLS, NAMESPACE_CLONE_FLAGS, SeccompBuildError, build_filters,
};
pub use spec::{CgroupJoin, CgroupVersion, Layers, Rlimits, SandboxSpec, SpecError};
pub use status::{Step, StepFailure};

/// The exit status of the helper when a step before exec failed (the status line says which).
pub const EXIT_STEP_FAILED: i32 = 125;

/// The fd on which the daemon hands the helper its spec (`--spec-fd 4`): a memfd, so the spec
/// (environment included) is in no argv any local user can read, and its size is not bounded
/// by `ARG_MAX`.
pub const SPEC_FD: i32 = 4;
