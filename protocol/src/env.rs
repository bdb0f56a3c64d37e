//! Names of the environment variables the supervisor sets for every executor.
//!
//! Defined once here because both the supervisor and the shims depend on them; the Python and
//! Node shims spell the same names (a vector test would fail if they drifted).

/// File descriptor number on which user stdout must be written (always `3`).
pub const STDOUT_FD: &str = "RUNWARM_STDOUT_FD";
/// The protocol version the supervisor speaks.
pub const PROTOCOL: &str = "RUNWARM_PROTOCOL";
/// The fd number user stdout uses.
pub const USER_STDOUT_FD: i32 = 3;
