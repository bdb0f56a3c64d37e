//! The configuration file as written: every key optional, unknown keys refused.

use std::path::PathBuf;

use serde::Deserialize;

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub(super) socket: Option<PathBuf>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) runtimes_dirs: Option<Vec<PathBuf>>,
    pub(super) load_samples: Option<bool>,
    pub(super) exec_command: Option<PathBuf>,
    #[serde(default)]
    pub(super) pools: RawPools,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) history: RawHistory,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) admission: RawAdmission,
    #[serde(default)]
    pub(super) sandbox: RawSandbox,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) access: crate::api::access::RawAccess,
    #[serde(default)]
    pub(super) prepare: RawPrepare,
    #[serde(default)]
    pub(super) callbacks: crate::callbacks::RawCallbacks,
    #[serde(default)]
    pub(super) check: crate::check::RawCheck,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrepare {
    pub(super) max_cache_mb: Option<i64>,
    pub(super) retention_days: Option<i64>,
    pub(super) timeout_s: Option<i64>,
    pub(super) memory_mb: Option<i64>,
    pub(super) pids: Option<i64>,
    pub(super) cpu: Option<f64>,
    pub(super) tmp_size_mb: Option<i64>,
    pub(super) concurrency: Option<i64>,
    pub(super) at_start: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSandbox {
    pub(super) mode: Option<String>,
    pub(super) binary: Option<PathBuf>,
    pub(super) uid: Option<i64>,
    pub(super) gid: Option<i64>,
    pub(super) tmp_size_mb: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmission {
    pub(super) rate_per_uid: Option<i64>,
    pub(super) burst: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) max_connections: Option<i64>,
    pub(super) max_connections_per_uid: Option<i64>,
    pub(super) header_read_timeout_ms: Option<i64>,
    pub(super) body_read_timeout_ms: Option<i64>,
    pub(super) body_min_bytes_per_s: Option<i64>,
    pub(super) shutdown_grace_ms: Option<i64>,
    pub(super) worker_threads: Option<i64>,
    pub(super) idle_spin_us: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPools {
    pub(super) max_workers: Option<i64>,
    pub(super) max_memory_mb: Option<i64>,
    pub(super) queue_max: Option<i64>,
    pub(super) init_timeout_ms: Option<i64>,
    pub(super) default_timeout_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_line_bytes: Option<i64>,
    pub(super) max_output_bytes: Option<i64>,
    pub(super) max_body_bytes: Option<i64>,
    pub(super) max_payload_bytes: Option<i64>,
    pub(super) max_files: Option<i64>,
    pub(super) max_file_bytes: Option<i64>,
    pub(super) max_bundle_bytes: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    pub(super) batch_max: Option<i64>,
    pub(super) flush_interval_ms: Option<i64>,
    pub(super) retention_days: Option<i64>,
    pub(super) min_free_mb: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<String>,
    pub(super) level: Option<String>,
}
