//! What a version's prepare looks like from outside: `GET /v1/scripts/{name}/versions/{v}`,
//! the registration answer, and the per-runtime cache figures of `GET /v1/runtimes`.

use std::path::PathBuf;

use serde::Serialize;

/// Where a version's prepare stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrepareState {
    /// Waiting for a slot, or for another registration preparing the same dependencies.
    Pending,
    /// A step is running.
    Running,
    /// Everything the executors need is in the cache.
    Ready,
    /// A step failed; invocations answer `E001` with its output.
    Failed,
    /// Was ready, but the cache evicted its folders; the next invocation prepares it again.
    Evicted,
}

/// One step of a version's prepare.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepReport {
    /// The cache key of its output.
    pub key: String,
    /// Whether the output was already in the cache (nothing ran).
    pub cached: bool,
    /// How long it ran (0 when cached).
    pub duration_ms: f64,
    /// What the tools printed (bounded; empty when cached).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log: String,
}

/// A version's prepare.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PrepareStatus {
    /// The state.
    pub state: PrepareState,
    /// The step running now (`dependencies` or `build`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'static str>,
    /// When the prepare started (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// How long it took, when finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// The runtime's toolchain seed, when it has one and a step had to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<StepReport>,
    /// The dependency step, when the runtime has one and it applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<StepReport>,
    /// The build step, when the runtime has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<StepReport>,
    /// Why it failed: the status and the end of the tool's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The folders executors use (host paths).
    #[serde(skip)]
    pub prepared: Prepared,
}

impl PrepareStatus {
    pub(super) fn pending() -> Self {
        Self {
            state: PrepareState::Pending,
            step: None,
            started_at: None,
            duration_ms: None,
            toolchain: None,
            dependencies: None,
            build: None,
            error: None,
            prepared: Prepared::default(),
        }
    }

    /// Whether it will not change any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self.state,
            PrepareState::Ready | PrepareState::Failed | PrepareState::Evicted
        )
    }

    /// Whether every folder it made is still in the cache (eviction removes unused ones).
    pub fn is_intact(&self) -> bool {
        [&self.prepared.deps, &self.prepared.build]
            .into_iter()
            .flatten()
            .all(|p| p.is_dir())
    }
}

/// The prepared folders of a version, as host paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The dependency environment.
    pub deps: Option<PathBuf>,
    /// The build output.
    pub build: Option<PathBuf>,
}

/// The prepare cache of one runtime, for `GET /v1/runtimes`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CacheFigures {
    /// Entries on disk (dependency environments and builds).
    pub entries: usize,
    /// Their size in bytes.
    pub size_bytes: u64,
    /// Steps answered from the cache since the daemon started.
    pub hits: u64,
    /// Steps that had to run.
    pub misses: u64,
    /// Steps that failed.
    pub failures: u64,
    /// When a step of this runtime last ran (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_prepare_at: Option<String>,
    /// How long it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_prepare_ms: Option<f64>,
}
