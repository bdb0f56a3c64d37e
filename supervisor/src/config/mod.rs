//! Daemon configuration: a TOML file parsed in two phases.
//!
//! [`RawConfig`] mirrors the file (unknown keys refused, everything optional); [`Config::validate`]
//! turns it into typed values and reports every violation with its key path at once, so a
//! reload with a broken file can say everything that is wrong and keep the old config.

pub mod check;
mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::RawConfig;

/// The embedded default configuration (also the documentation of every key).
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    Auto,
    /// Always human.
    Human,
    /// Always JSON lines.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Socket path (absolute).
    pub socket: PathBuf,
    /// State directory (absolute).
    pub state_dir: PathBuf,
    /// Extra runtime directories (absolute).
    pub runtimes_dirs: Vec<PathBuf>,
    /// Register samples at start.
    pub load_samples: bool,
    /// Command-mode executor binary (absolute).
    pub exec_command: PathBuf,
    /// Global executor budget.
    pub max_workers: usize,
    /// Global budget of the executors' memory limits, in MiB.
    pub max_memory_mb: u64,
    /// Global wait-queue bound.
    pub queue_max: usize,
    /// `init` handshake timeout.
    pub init_timeout: Duration,
    /// Fallback invocation timeout.
    pub default_timeout: Duration,
    /// Longest protocol line.
    pub max_line_bytes: usize,
    /// Output kept per stream per invocation.
    pub max_output_bytes: usize,
    /// Largest HTTP body.
    pub max_body_bytes: usize,
    /// Largest invocation payload.
    pub max_payload_bytes: usize,
    /// Registry: files per bundle.
    pub max_files: usize,
    /// Registry: bytes per file.
    pub max_file_bytes: u64,
    /// Registry: bytes per bundle.
    pub max_bundle_bytes: u64,
    /// History batch size.
    pub history_batch_max: usize,
    /// History flush interval.
    pub history_flush_interval: Duration,
    /// History retention (`None` keeps forever).
    pub history_retention: Option<Duration>,
    /// Free bytes under the state directory below which asynchronous work is refused.
    pub history_min_free_bytes: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Executor confinement.
    pub sandbox: crate::sandbox::SandboxSettings,
    /// The prepare step and its cache.
    pub prepare: crate::prepare::PrepareSettings,
    /// Invocations per second per caller uid (`0`: no limit).
    pub rate_per_uid: u64,
    /// Invocations a caller may make at once after a quiet spell.
    pub rate_burst: u64,
    /// Connection slots: shared, per unprivileged uid, and the privileged reserve.
    pub slots: crate::server::SlotLimits,
    /// How long a request body may take (a grace, then a minimum rate).
    pub body_rate: crate::api::BodyRate,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long in-flight requests get to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Threads of the async runtime (`0` in the file: [`auto_worker_threads`]); with one, the
    /// current-thread scheduler on the daemon's main thread.
    pub worker_threads: usize,
    /// Longest a runtime thread polls for work before it sleeps (`crate::server::idle_spin`); zero: never.
    pub idle_spin: Duration,
    /// Who may do what, and the socket's owner group and mode.
    pub access: crate::api::access::AccessPolicy,
    /// How completion callbacks are delivered.
    pub callbacks: crate::callbacks::CallbackSettings,
    /// The editor's checkers and formatters (`POST /v1/check`, `/v1/format`).
    pub check: crate::check::CheckSettings,
}

/// The async runtime's threads when the configuration leaves it to the daemon: one per four
/// CPUs, at least one. The daemon only relays a call (HTTP in, a line to the executor, a line
/// back, a record); the CPUs are for the executors and the callers. A second thread on a small
/// host mostly wakes to find nothing to steal, and those wake-ups cost more CPU per call than
/// the daemon's own work (docs/design/0007-hot-path.md).
pub fn auto_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).max(1))
}

/// Longest `server.idle_spin_us`: beyond a millisecond a spin only burns CPU a sleeping thread
/// would have left to others.
const MAX_IDLE_SPIN_US: u64 = 1000;

/// Every problem found in a configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration{}:\n  {}", source_name.as_deref().map(|s| format!(" in {s}")).unwrap_or_default(), violations.join("\n  "))]
pub struct ConfigError {
    /// The file, if there was one.
    pub source_name: Option<String>,
    /// One line per problem, each starting with its key path.
    pub violations: Vec<String>,
}

impl Config {
    /// Parses TOML text and validates it; relative paths resolve against `base`.
    pub fn from_toml(
        text: &str,
        source_name: Option<&str>,
        base: &Path,
        exe_dir: &Path,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            source_name: source_name.map(str::to_owned),
            violations: vec![e.to_string().trim().replace('\n', "\n  ")],
        })?;
        Config::validate(raw, base, exe_dir).map_err(|violations| ConfigError {
            source_name: source_name.map(str::to_owned),
            violations,
        })
    }

    /// The embedded default, rooted at `base`.
    pub fn embedded_default(base: &Path, exe_dir: &Path) -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_TOML, Some("<embedded default>"), base, exe_dir)
    }

    /// Turns the raw file into typed values, collecting every violation.
    pub fn validate(raw: RawConfig, base: &Path, exe_dir: &Path) -> Result<Config, Vec<String>> {
        let mut v = Vec::new();
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut int = |key: &str, val: Option<i64>, default: i64, min: i64| -> u64 {
            let x = val.unwrap_or(default);
            if x < min {
                v.push(format!("{key}: must be at least {min}, got {x}"));
                return default.max(min) as u64;
            }
            x as u64
        };
        let max_workers = int("pools.max_workers", raw.pools.max_workers, 32, 1);
        let max_memory_mb = match raw.pools.max_memory_mb {
            None | Some(0) => default_memory_budget_mb(),
            Some(_) => int("pools.max_memory_mb", raw.pools.max_memory_mb, 0, 16),
        };
        let queue_max = int("pools.queue_max", raw.pools.queue_max, 1024, 0);
        let init_timeout_ms = int(
            "pools.init_timeout_ms",
            raw.pools.init_timeout_ms,
            10_000,
            1,
        );
        let default_timeout_ms = int(
            "pools.default_timeout_ms",
            raw.pools.default_timeout_ms,
            30_000,
            1,
        );
        let max_line_bytes = int(
            "limits.max_line_bytes",
            raw.limits.max_line_bytes,
            8 << 20,
            1024,
        );
        let max_output_bytes = int(
            "limits.max_output_bytes",
            raw.limits.max_output_bytes,
            1 << 20,
            256,
        );
        let max_body_bytes = int(
            "limits.max_body_bytes",
            raw.limits.max_body_bytes,
            64 << 20,
            1024,
        );
        let max_payload_bytes = int(
            "limits.max_payload_bytes",
            raw.limits.max_payload_bytes,
            6 << 20,
            2,
        );
        let max_files = int("limits.max_files", raw.limits.max_files, 1000, 1);
        let max_file_bytes = int(
            "limits.max_file_bytes",
            raw.limits.max_file_bytes,
            10 << 20,
            1,
        );
        let max_bundle_bytes = int(
            "limits.max_bundle_bytes",
            raw.limits.max_bundle_bytes,
            50 << 20,
            1,
        );
        let batch_max = int("history.batch_max", raw.history.batch_max, 256, 1);
        let flush_ms = int(
            "history.flush_interval_ms",
            raw.history.flush_interval_ms,
            50,
            1,
        );
        let retention_days = int("history.retention_days", raw.history.retention_days, 30, 0);
        let rate_per_uid = int("admission.rate_per_uid", raw.admission.rate_per_uid, 0, 0);
        let rate_burst = int("admission.burst", raw.admission.burst, 20, 1);
        let max_connections = int("server.max_connections", raw.server.max_connections, 256, 1);
        let per_uid = int(
            "server.max_connections_per_uid",
            raw.server.max_connections_per_uid,
            max_connections.min(64) as i64,
            1,
        );
        let body_read_timeout_ms = int(
            "server.body_read_timeout_ms",
            raw.server.body_read_timeout_ms,
            10_000,
            1,
        );
        let body_min_rate = int(
            "server.body_min_bytes_per_s",
            raw.server.body_min_bytes_per_s,
            1024,
            1,
        );
        let min_free_mb = int("history.min_free_mb", raw.history.min_free_mb, 16, 0);
        let header_read_timeout_ms = int(
            "server.header_read_timeout_ms",
            raw.server.header_read_timeout_ms,
            10_000,
            1,
        );
        let shutdown_grace_ms = int(
            "server.shutdown_grace_ms",
            raw.server.shutdown_grace_ms,
            30_000,
            0,
        );
        let worker_threads = int("server.worker_threads", raw.server.worker_threads, 0, 0);
        let idle_spin_us = int("server.idle_spin_us", raw.server.idle_spin_us, 150, 0);
        let idle_spin_error = (idle_spin_us > MAX_IDLE_SPIN_US).then(|| {
            format!("server.idle_spin_us: must be at most {MAX_IDLE_SPIN_US}, got {idle_spin_us}")
        });
        let sandbox_uid = int("sandbox.uid", raw.sandbox.uid, 65534, 1);
        let sandbox_gid = int("sandbox.gid", raw.sandbox.gid, 65534, 1);
        let tmp_size_mb = int("sandbox.tmp_size_mb", raw.sandbox.tmp_size_mb, 64, 1);
        let p = &raw.prepare;
        let cpu = p.cpu.unwrap_or(2.0);
        let cpu_error = (!(cpu > 0.0 && cpu <= 1024.0))
            .then(|| format!("prepare.cpu: must be a number of cores above 0, got {cpu}"));
        let at_start = p.at_start.as_deref().unwrap_or("all");
        let at_start_error = (!matches!(at_start, "all" | "lazy"))
            .then(|| format!("prepare.at_start: must be \"all\" or \"lazy\", got {at_start:?}"));
        let prepare = crate::prepare::PrepareSettings {
            max_bytes: int("prepare.max_cache_mb", p.max_cache_mb, 10_240, 1) << 20,
            retention: Duration::from_secs(
                int("prepare.retention_days", p.retention_days, 30, 1) * 86_400,
            ),
            timeout: Duration::from_secs(int("prepare.timeout_s", p.timeout_s, 600, 1)),
            memory_bytes: int("prepare.memory_mb", p.memory_mb, 2048, 16) << 20,
            pids: int("prepare.pids", p.pids, 512, 8),
            cpu,
            tmp_bytes: int("prepare.tmp_size_mb", p.tmp_size_mb, 512, 1) << 20,
            concurrency: int("prepare.concurrency", p.concurrency, 2, 1) as usize,
            at_start_all: at_start == "all",
        };
        let log_format = match raw.log.format.as_deref().unwrap_or("auto") {
            "auto" => LogFormat::Auto,
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                v.push(format!(
                    "log.format: must be auto, human or json, got {other:?}"
                ));
                LogFormat::Auto
            }
        };
        let log_level = raw.log.level.unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            v.push(format!("log.level: {e}"));
        }
        let access = crate::api::access::AccessPolicy::validate(raw.access, &mut v);
        let callbacks = crate::callbacks::CallbackSettings::validate(raw.callbacks, &mut v);
        let check = crate::check::CheckSettings::validate(raw.check, &mut v);
        let exec_command = match raw.exec_command {
            Some(p) if !p.as_os_str().is_empty() => abs(p),
            _ => exe_dir.join("runwarm-exec-command"),
        };
        let socket = abs(raw.socket.unwrap_or_else(|| ".runwarm/runwarm.sock".into()));
        if socket.as_os_str().len() > 107 {
            v.push(format!(
                "socket: path {} is {} bytes, longer than the 107 a Unix socket allows",
                socket.display(),
                socket.as_os_str().len()
            ));
        }
        let is_root = nix::unistd::geteuid().is_root();
        let mode_text = raw
            .sandbox
            .mode
            .clone()
            .unwrap_or_else(|| "auto".to_owned());
        let sandbox_mode =
            crate::sandbox::SandboxMode::parse(&mode_text, is_root).unwrap_or_else(|| {
                v.push(format!(
                    "sandbox.mode: must be auto, required, best-effort or off, got {mode_text:?}"
                ));
                crate::sandbox::SandboxMode::Off
            });
        let sandbox = crate::sandbox::SandboxSettings {
            mode: sandbox_mode,
            binary: match raw.sandbox.binary {
                Some(p) if !p.as_os_str().is_empty() => abs(p),
                _ => exe_dir.join("runwarm-sandbox"),
            },
            uid: u32::try_from(sandbox_uid).unwrap_or(65534),
            gid: u32::try_from(sandbox_gid).unwrap_or(65534),
            tmp_size_bytes: tmp_size_mb << 20,
        };
        v.extend(cpu_error);
        v.extend(idle_spin_error);
        v.extend(at_start_error);
        if !v.is_empty() {
            return Err(v);
        }
        Ok(Config {
            socket,
            state_dir: abs(raw.state_dir.unwrap_or_else(|| ".runwarm".into())),
            runtimes_dirs: raw
                .runtimes_dirs
                .unwrap_or_default()
                .into_iter()
                .map(abs)
                .collect(),
            load_samples: raw.load_samples.unwrap_or(true),
            exec_command,
            max_workers: max_workers as usize,
            max_memory_mb,
            queue_max: queue_max as usize,
            init_timeout: Duration::from_millis(init_timeout_ms),
            default_timeout: Duration::from_millis(default_timeout_ms),
            max_line_bytes: max_line_bytes as usize,
            max_output_bytes: max_output_bytes as usize,
            max_body_bytes: max_body_bytes as usize,
            max_payload_bytes: max_payload_bytes as usize,
            max_files: max_files as usize,
            max_file_bytes,
            max_bundle_bytes,
            history_batch_max: batch_max as usize,
            history_flush_interval: Duration::from_millis(flush_ms),
            history_retention: (retention_days > 0)
                .then(|| Duration::from_secs(retention_days * 86_400)),
            log_format,
            log_level,
            sandbox,
            prepare,
            rate_per_uid,
            rate_burst,
            slots: crate::server::SlotLimits {
                max: max_connections as usize,
                per_uid: per_uid as usize,
                // Room above the cap for the operator and the watchdog when nothing is idle.
                reserve: (max_connections as usize / 8).max(16),
            },
            body_rate: crate::api::BodyRate {
                grace: Duration::from_millis(body_read_timeout_ms),
                min_bytes_per_s: body_min_rate,
            },
            history_min_free_bytes: min_free_mb << 20,
            header_read_timeout: Duration::from_millis(header_read_timeout_ms),
            shutdown_grace: Duration::from_millis(shutdown_grace_ms),
            worker_threads: match worker_threads {
                0 => auto_worker_threads(),
                n => n as usize,
            },
            idle_spin: Duration::from_micros(idle_spin_us.min(MAX_IDLE_SPIN_US)),
            access,
            callbacks,
            check,
        })
    }
}

/// Three quarters of the host's memory (`MemTotal`), the executors' memory budget when the
/// configuration sets none: the rest is the daemon's, the page cache's and everything else's.
/// Without a readable `/proc/meminfo`, no budget (only `max_workers` bounds the executors).
fn default_memory_budget_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(mem_total_kib)
        .map_or(u64::MAX, |kib| kib / 1024 * 3 / 4)
}

/// `MemTotal` of a `/proc/meminfo` text, in KiB.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests;
