//! `[check]` in the daemon's config: where the editor's tools are and the limits of one run.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::CheckSettings;

/// `[check]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    tool_dirs: Option<Vec<PathBuf>>,
    timeout_s: Option<i64>,
    memory_mb: Option<i64>,
    pids: Option<i64>,
    cpu: Option<f64>,
    tmp_size_mb: Option<i64>,
    concurrency: Option<i64>,
    max_files: Option<i64>,
    max_kb: Option<i64>,
}

impl CheckSettings {
    /// Validates `[check]`, pushing each violation (with its key) to `v`.
    pub fn validate(raw: RawCheck, v: &mut Vec<String>) -> CheckSettings {
        let d = CheckSettings::default();
        let mut int = |key: &str, value: Option<i64>, default: u64, min: i64| -> u64 {
            match value {
                None => default,
                Some(x) if x >= min => x.unsigned_abs(),
                Some(x) => {
                    v.push(format!("check.{key}: must be at least {min}, got {x}"));
                    default
                }
            }
        };
        let timeout = int("timeout_s", raw.timeout_s, d.timeout.as_secs(), 1);
        let memory_mb = int("memory_mb", raw.memory_mb, d.memory_bytes >> 20, 16);
        let pids = int("pids", raw.pids, d.pids, 8);
        let tmp_mb = int("tmp_size_mb", raw.tmp_size_mb, d.tmp_bytes >> 20, 1);
        let concurrency = int("concurrency", raw.concurrency, 2, 1);
        let max_files = int("max_files", raw.max_files, 64, 1);
        let max_kb = int("max_kb", raw.max_kb, 1024, 1);
        let cpu = raw.cpu.unwrap_or(d.cpu);
        if !(cpu > 0.0 && cpu <= 1024.0) {
            v.push(format!(
                "check.cpu: must be a number of cores above 0, got {cpu}"
            ));
        }
        let tool_dirs = raw.tool_dirs.unwrap_or(d.tool_dirs);
        for dir in &tool_dirs {
            if !dir.is_absolute() {
                v.push(format!(
                    "check.tool_dirs: {} must be an absolute path",
                    dir.display()
                ));
            }
        }
        CheckSettings {
            tool_dirs,
            timeout: Duration::from_secs(timeout),
            memory_bytes: memory_mb << 20,
            pids,
            cpu,
            tmp_bytes: tmp_mb << 20,
            concurrency: usize::try_from(concurrency).unwrap_or(2),
            max_files: usize::try_from(max_files).unwrap_or(64),
            max_bytes: usize::try_from(max_kb << 10).unwrap_or(1 << 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_violations() {
        let mut v = Vec::new();
        let s = CheckSettings::validate(RawCheck::default(), &mut v);
        assert!(v.is_empty());
        assert_eq!(s.timeout, Duration::from_secs(10));
        let raw: RawCheck =
            toml::from_str("timeout_s = 0\ncpu = -1.0\ntool_dirs = [\"rel\"]\n").unwrap();
        CheckSettings::validate(raw, &mut v);
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(v[0].starts_with("check.timeout_s"));
    }
}
