//! Turning [`CgroupLimits`] into control-file writes, per hierarchy version.
//!
//! The plan is data (file name, value, whether the file is optional) so the exact writes are
//! asserted in unit tests; applying it is a loop over the thin file layer.

use std::path::Path;

use super::layout::{Controller, Version};
use super::{CgroupError, CgroupLimits, cgroupfs};

/// The CFS period runwarm uses; the quota is `cores × period`.
const CPU_PERIOD_US: u64 = 100_000;
/// The kernel rejects quotas under 1 ms.
const CPU_MIN_QUOTA_US: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LimitWrite {
    pub file: &'static str,
    pub value: String,
    /// Absent on some kernels (swap accounting off): skipped instead of failing.
    pub optional: bool,
}

fn required(file: &'static str, value: impl ToString) -> LimitWrite {
    LimitWrite {
        file,
        value: value.to_string(),
        optional: false,
    }
}

fn cpu_quota_us(cores: f64) -> Result<u64, CgroupError> {
    if !cores.is_finite() || cores <= 0.0 {
        return Err(CgroupError::InvalidLimit {
            what: "cpu_cores",
            value: cores.to_string(),
        });
    }
    // Saturating float-to-int cast: an absurd core count becomes a huge quota, not a panic.
    let quota = (cores * CPU_PERIOD_US as f64).round() as u64;
    Ok(quota.max(CPU_MIN_QUOTA_US))
}

/// The writes for one hierarchy carrying `controllers`, in the order the kernel needs them.
pub(crate) fn plan_writes(
    version: Version,
    controllers: &[Controller],
    limits: &CgroupLimits,
    dir: &Path,
) -> Result<Vec<LimitWrite>, CgroupError> {
    let mut out = Vec::new();
    let has = |c: Controller| controllers.contains(&c);
    if let (Some(bytes), true) = (limits.memory_bytes, has(Controller::Memory)) {
        if bytes == 0 {
            return Err(CgroupError::InvalidLimit {
                what: "memory_bytes",
                value: "0".into(),
            });
        }
        match version {
            Version::V2 => {
                out.push(required("memory.max", bytes));
                out.push(LimitWrite {
                    optional: true,
                    ..required("memory.swap.max", 0)
                });
                // An OOM kill takes the whole executor, not just the biggest process in it, so
                // every OOM ends the same way: the executor dies and the invocation is E003.
                out.push(LimitWrite {
                    optional: true,
                    ..required("memory.oom.group", 1)
                });
            }
            Version::V1 => {
                // memsw (memory + swap) must be set after, and never below, the memory limit.
                out.push(required("memory.limit_in_bytes", bytes));
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    out.push(required("memory.memsw.limit_in_bytes", bytes));
                } else {
                    out.push(LimitWrite {
                        optional: true,
                        ..required("memory.swappiness", 0)
                    });
                }
            }
        }
    }
    if let (Some(pids), true) = (limits.pids, has(Controller::Pids)) {
        if pids == 0 {
            return Err(CgroupError::InvalidLimit {
                what: "pids",
                value: "0".into(),
            });
        }
        out.push(required("pids.max", pids));
    }
    if let (Some(cores), true) = (limits.cpu_cores, has(Controller::Cpu)) {
        let quota = cpu_quota_us(cores)?;
        match version {
            Version::V2 => out.push(required("cpu.max", format!("{quota} {CPU_PERIOD_US}"))),
            Version::V1 => {
                out.push(required("cpu.cfs_period_us", CPU_PERIOD_US));
                out.push(required("cpu.cfs_quota_us", quota));
            }
        }
    }
    Ok(out)
}

pub(crate) fn apply(dir: &Path, writes: &[LimitWrite]) -> Result<(), CgroupError> {
    for w in writes {
        let path = dir.join(w.file);
        if w.optional && !path.exists() {
            continue;
        }
        cgroupfs::write(&path, &w.value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_V2: [Controller; 3] = Controller::V2_WANTED;

    fn limits() -> CgroupLimits {
        CgroupLimits {
            memory_bytes: Some(32 << 20),
            pids: Some(5),
            cpu_cores: Some(0.5),
        }
    }

    fn files(writes: &[LimitWrite]) -> Vec<(&str, &str)> {
        writes.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    #[test]
    fn v2_writes_memory_without_swap_pids_and_cpu_max() {
        let dir = tempfile::tempdir().unwrap();
        let writes = plan_writes(Version::V2, &ALL_V2, &limits(), dir.path()).unwrap();
        assert_eq!(
            files(&writes),
            [
                ("memory.max", "33554432"),
                ("memory.swap.max", "0"),
                ("memory.oom.group", "1"),
                ("pids.max", "5"),
                ("cpu.max", "50000 100000"),
            ]
        );
    }

    #[test]
    fn v1_uses_memsw_when_present_else_swappiness() {
        let dir = tempfile::tempdir().unwrap();
        let memory = [Controller::Memory];
        let plan = plan_writes(Version::V1, &memory, &limits(), dir.path()).unwrap();
        assert_eq!(
            files(&plan),
            [
                ("memory.limit_in_bytes", "33554432"),
                ("memory.swappiness", "0")
            ]
        );
        std::fs::write(dir.path().join("memory.memsw.limit_in_bytes"), "").unwrap();
        let plan = plan_writes(Version::V1, &memory, &limits(), dir.path()).unwrap();
        assert_eq!(
            files(&plan),
            [
                ("memory.limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "33554432"),
            ]
        );
    }

    #[test]
    fn v1_cpu_sets_period_then_quota_and_other_hierarchies_get_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = plan_writes(Version::V1, &[Controller::Cpu], &limits(), dir.path()).unwrap();
        assert_eq!(
            files(&cpu),
            [
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000")
            ]
        );
        let freezer = plan_writes(Version::V1, &[Controller::Freezer], &limits(), dir.path());
        assert!(freezer.unwrap().is_empty());
    }

    #[test]
    fn rejects_nonsense_limits_and_clamps_tiny_cpu() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY] {
            let l = CgroupLimits {
                cpu_cores: Some(bad),
                ..Default::default()
            };
            assert!(
                plan_writes(Version::V2, &ALL_V2, &l, dir.path()).is_err(),
                "{bad}"
            );
        }
        let l = CgroupLimits {
            pids: Some(0),
            ..Default::default()
        };
        assert!(plan_writes(Version::V2, &ALL_V2, &l, dir.path()).is_err());
        let l = CgroupLimits {
            cpu_cores: Some(0.0001),
            ..Default::default()
        };
        let plan = plan_writes(Version::V2, &ALL_V2, &l, dir.path()).unwrap();
        assert_eq!(files(&plan), [("cpu.max", "1000 100000")]);
    }

    #[test]
    fn apply_writes_files_and_skips_absent_optional_ones() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["memory.max", "pids.max", "cpu.max"] {
            std::fs::write(dir.path().join(f), "max\n").unwrap();
        }
        let writes = plan_writes(Version::V2, &ALL_V2, &limits(), dir.path()).unwrap();
        apply(dir.path(), &writes).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(read("memory.max"), "33554432");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert!(!dir.path().join("memory.swap.max").exists());
        std::fs::remove_file(dir.path().join("pids.max")).unwrap();
        let err = apply(dir.path(), &writes).unwrap_err();
        assert!(err.to_string().contains("pids.max"), "{err}");
    }
}
