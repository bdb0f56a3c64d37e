//! SIGHUP: re-read the configuration and apply what can change without a restart (runtime
//! definitions, pool limits, admission limits, access control); everything in flight keeps
//! running. Every other key is reported as needing a restart: [`apply`] names each field of
//! [`Config`] without `..`, so a key added later cannot be silently ignored by a reload.
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
    /// Admission (rate per uid, async backlog bound).
    pub dispatcher: crate::invocation::dispatch::Dispatcher,
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
    let (changed, ignored) = differences(old, &new);
    r.pools.launcher().set_catalog(catalog);
    r.pools.set_limits(super::budget(&new), new.queue_max);
    r.access.set(new.access.clone());
    r.dispatcher.admission().set_limits(
        new.max_workers + new.queue_max,
        crate::invocation::admission::rate_limit(new.rate_per_uid as f64, new.rate_burst as f64),
    );
    tracing::info!(
        changed = ?changed,
        needs_restart = ?ignored,
        "configuration reloaded; runtime definitions re-read (new executors use them)"
    );
    Some(new)
}

/// The sections that differ: those a reload applies, and those that need a restart.
fn differences(old: &Config, new: &Config) -> (Vec<&'static str>, Vec<&'static str>) {
    // No `..`: a new field of Config does not compile until it is sorted into one list.
    let Config {
        socket,
        state_dir,
        runtimes_dirs,
        load_samples,
        exec_command,
        max_workers,
        max_memory_mb,
        queue_max,
        init_timeout,
        default_timeout,
        max_line_bytes,
        max_output_bytes,
        max_body_bytes,
        max_payload_bytes,
        max_files,
        max_file_bytes,
        max_bundle_bytes,
        history_batch_max,
        history_flush_interval,
        history_retention,
        history_min_free_bytes,
        log_format,
        log_level,
        sandbox,
        prepare,
        rate_per_uid,
        rate_burst,
        slots,
        body_rate,
        header_read_timeout,
        shutdown_grace,
        worker_threads,
        idle_spin,
        access,
        callbacks,
        check,
    } = new;
    let applied = [
        ("runtimes_dirs", old.runtimes_dirs != *runtimes_dirs),
        (
            "pools.max_workers/max_memory_mb/queue_max",
            (old.max_workers, old.max_memory_mb, old.queue_max)
                != (*max_workers, *max_memory_mb, *queue_max),
        ),
        (
            "admission",
            (old.rate_per_uid, old.rate_burst) != (*rate_per_uid, *rate_burst),
        ),
        ("access", old.access != *access),
    ];
    // The settings types have no PartialEq; their Debug text holds every field.
    let debug_differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let restart = [
        ("socket", old.socket != *socket),
        ("state_dir", old.state_dir != *state_dir),
        ("exec_command", old.exec_command != *exec_command),
        // Samples are registered once, at start.
        ("load_samples", old.load_samples != *load_samples),
        // The delivery worker and the header check read them once, at start.
        ("callbacks", old.callbacks != *callbacks),
        // The check service is made once, at start, with its limits and tool folders.
        ("check", debug_differs(&old.check, check)),
        (
            "log",
            old.log_level != *log_level || old.log_format != *log_format,
        ),
        (
            "pools.init_timeout_ms/default_timeout_ms",
            (old.init_timeout, old.default_timeout) != (*init_timeout, *default_timeout),
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
                *max_line_bytes,
                *max_output_bytes,
                *max_body_bytes,
                *max_payload_bytes,
                *max_files,
                *max_file_bytes,
                *max_bundle_bytes,
            ),
        ),
        (
            "history",
            (
                old.history_batch_max,
                old.history_flush_interval,
                old.history_retention,
                old.history_min_free_bytes,
            ) != (
                *history_batch_max,
                *history_flush_interval,
                *history_retention,
                *history_min_free_bytes,
            ),
        ),
        (
            "server",
            debug_differs(
                &(
                    old.slots,
                    old.body_rate,
                    old.header_read_timeout,
                    old.shutdown_grace,
                    old.worker_threads,
                    old.idle_spin,
                ),
                &(
                    slots,
                    body_rate,
                    header_read_timeout,
                    shutdown_grace,
                    worker_threads,
                    idle_spin,
                ),
            ),
        ),
        // The executors' confinement is measured and fixed at start.
        ("sandbox", debug_differs(&old.sandbox, sandbox)),
        ("prepare", debug_differs(&old.prepare, prepare)),
        // The lists apply at once, but the socket file's mode and group are set when it is
        // bound.
        (
            "access.socket_mode/socket_group",
            (old.access.socket_mode, old.access.socket_group)
                != (access.socket_mode, access.socket_group),
        ),
    ];
    let pick = |list: &[(&'static str, bool)]| {
        list.iter()
            .filter_map(|(k, differs)| differs.then_some(*k))
            .collect::<Vec<_>>()
    };
    (pick(&applied), pick(&restart))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        Config::from_toml(text, None, Path::new("/base"), Path::new("/bin")).unwrap()
    }

    #[test]
    fn every_section_is_applied_or_reported() {
        let old = parse("");
        let new = parse(
            "load_samples = false\n[admission]\nrate_per_uid = 5\n[sandbox]\nmode = \"off\"\n\
             [prepare]\nconcurrency = 1\n[access]\nsocket_mode = 0o600\nreader_uids = [7]\n",
        );
        let (applied, restart) = differences(&old, &new);
        assert_eq!(applied, ["admission", "access"]);
        assert_eq!(
            restart,
            [
                "load_samples",
                "sandbox",
                "prepare",
                "access.socket_mode/socket_group"
            ]
        );
        assert_eq!(differences(&old, &parse("")), (vec![], vec![]));
    }
}
