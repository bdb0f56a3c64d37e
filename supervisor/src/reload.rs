//! SIGHUP: re-read the configuration and apply what can change without a restart (runtime
//! definitions, pool limits, access control); everything in flight keeps running.
//!
//! A file that does not validate changes nothing: every violation is logged and the
//! configuration in force stays.

use std::sync::Arc;
use std::time::Duration;

use crate::api::access::AccessState;
use crate::config::Config;
use crate::pool::Pools;
use crate::runtime::Catalog;

/// Reads the configuration again (the file plus the command line's overrides).
pub type ConfigLoader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// What a reload touches.
#[derive(Clone)]
pub struct Reloadable {
    /// The pools (limits, and through the launcher the runtime catalog).
    pub pools: Pools,
    /// The access policy.
    pub access: Arc<AccessState>,
}

/// Applies `new` over `old`; returns the configuration now in force and whether it changed.
pub async fn apply(old: &Config, new: anyhow::Result<Config>, r: &Reloadable) -> Option<Config> {
    let new = match new {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "reload refused: the configuration is invalid; the old one stays in force"
            );
            return None;
        }
    };
    let catalog = match Catalog::load(&new.runtimes_dirs, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reload refused: runtime definitions do not load; the old ones stay in force");
            return None;
        }
    };
    let mut changed = Vec::new();
    if old.runtimes_dirs != new.runtimes_dirs {
        changed.push("runtimes_dirs");
    }
    if (old.max_workers, old.queue_max) != (new.max_workers, new.queue_max) {
        changed.push("pools.max_workers/queue_max");
    }
    if old.access != new.access {
        changed.push("access");
    }
    // Everything else is read once at start; say so instead of pretending it applied.
    let ignored: Vec<&str> = [
        ("socket", old.socket != new.socket),
        ("state_dir", old.state_dir != new.state_dir),
        ("exec_command", old.exec_command != new.exec_command),
        (
            "log",
            old.log_level != new.log_level || old.log_format != new.log_format,
        ),
        (
            "pools.init_timeout_ms/default_timeout_ms",
            (old.init_timeout, old.default_timeout) != (new.init_timeout, new.default_timeout),
        ),
        (
            "limits",
            (
                old.max_line_bytes,
                old.max_output_bytes,
                old.max_body_bytes,
                old.max_payload_bytes,
                old.max_files,
                old.max_file_bytes,
                old.max_bundle_bytes,
            ) != (
                new.max_line_bytes,
                new.max_output_bytes,
                new.max_body_bytes,
                new.max_payload_bytes,
                new.max_files,
                new.max_file_bytes,
                new.max_bundle_bytes,
            ),
        ),
        (
            "history",
            (
                old.history_batch_max,
                old.history_flush_interval,
                old.history_retention,
            ) != (
                new.history_batch_max,
                new.history_flush_interval,
                new.history_retention,
            ),
        ),
        (
            "server",
            (
                old.max_connections,
                old.header_read_timeout,
                old.shutdown_grace,
            ) != (
                new.max_connections,
                new.header_read_timeout,
                new.shutdown_grace,
            ),
        ),
    ]
    .into_iter()
    .filter_map(|(k, differs)| differs.then_some(k))
    .collect();
    r.pools.launcher().set_catalog(catalog);
    r.pools.set_limits(new.max_workers, new.queue_max);
    r.access.set(new.access.clone());
    tracing::info!(
        changed = ?changed,
        needs_restart = ?ignored,
        "configuration reloaded; runtime definitions re-read (new executors use them)"
    );
    Some(new)
}
