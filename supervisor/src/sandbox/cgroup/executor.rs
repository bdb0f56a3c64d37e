//! One executor's cgroup: where the sandbox helper attaches itself, what is read back after an
//! invocation (peak memory, CPU time, OOM kills), and how it is killed and removed.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use runwarm_sandbox::{CgroupJoin, CgroupVersion};

use super::control_files::{keyed_value, limit_value, single_value};
use super::kill::{Member, kill_cgroup};
use super::layout::{Controller, Version};
use super::usage::{CgroupStats, UsageFiles};
use super::{CgroupError, cgroupfs};

/// How long `kill_all` waits for the cgroup to empty.
const KILL_WAIT: Duration = Duration::from_secs(1);
/// How long `remove` retries an rmdir the kernel still reports busy.
const REMOVE_WAIT: Duration = Duration::from_secs(1);

/// The cgroup of one executor. Dropping it kills whatever is left inside and removes it; that
/// blocks for up to about two seconds, so drop it (or call [`ExecutorCgroup::remove`]) on a
/// blocking thread, not on an async worker.
#[derive(Debug)]
pub struct ExecutorCgroup {
    pub(crate) members: Vec<Member>,
    pub(crate) configured_memory: Option<u64>,
    pub(crate) removed: AtomicBool,
    /// The counter files, opened on the first [`ExecutorCgroup::stats`].
    pub(crate) usage: OnceLock<UsageFiles>,
}

impl ExecutorCgroup {
    fn member_with(&self, controller: Controller) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.controllers.contains(&controller))
    }

    fn read(&self, controller: Controller, file: &str) -> Option<String> {
        cgroupfs::read_optional(&self.member_with(controller)?.dir.join(file))
    }

    fn v2(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.version == Version::V2)
    }

    /// What the sandbox helper joins before it creates the executor: one directory on v2, one
    /// per controller hierarchy on v1.
    pub fn joins(&self) -> Vec<CgroupJoin> {
        self.members
            .iter()
            .map(|m| CgroupJoin {
                dir: m.dir.clone(),
                version: match m.version {
                    Version::V1 => CgroupVersion::V1,
                    Version::V2 => CgroupVersion::V2,
                },
            })
            .collect()
    }

    /// The `cgroup.procs` files listing the cgroup's processes: one on v2, one per controller
    /// hierarchy on v1.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.members
            .iter()
            .map(|m| m.dir.join("cgroup.procs"))
            .collect()
    }

    /// The cgroup directories, for logs and leak checks.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.members.iter().map(|m| m.dir.clone()).collect()
    }

    /// Whether any process is still in the cgroup.
    pub fn is_populated(&self) -> bool {
        self.members
            .iter()
            .any(|m| cgroupfs::read_pids(&m.dir.join("cgroup.procs")).is_ok_and(|p| !p.is_empty()))
    }

    /// Kills every process in the cgroup and waits up to about a second until it is empty.
    /// Blocking: call it from a blocking thread.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        kill_cgroup(&self.members, KILL_WAIT)
    }

    /// Peak memory and the CPU counters now; `None` where this host's kernel does not account
    /// them. Cheap enough for every invocation: the files stay open between calls.
    pub fn stats(&self) -> CgroupStats {
        self.usage
            .get_or_init(|| UsageFiles::open(&self.members))
            .read()
    }

    /// How many processes the kernel's OOM killer killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        if let Some(v2) = self.v2() {
            return cgroupfs::read_optional(&v2.dir.join("memory.events"))
                .and_then(|t| keyed_value(&t, "oom_kill"))
                .unwrap_or(0);
        }
        if let Some(n) = self
            .read(Controller::Memory, "memory.oom_control")
            .and_then(|t| keyed_value(&t, "oom_kill"))
        {
            return n;
        }
        // Kernels before 4.13 have no oom_kill counter: hitting the limit is the best evidence.
        let failed = self
            .read(Controller::Memory, "memory.failcnt")
            .and_then(|t| single_value(&t));
        u64::from(failed.is_some_and(|n| n > 0))
    }

    /// Whether the cgroup holds as many processes as its pids limit allows, so nothing in it can
    /// fork or start a thread (`pids.max` reads `max` when there is no limit: never exhausted).
    pub fn pids_exhausted(&self) -> bool {
        let read = |file| {
            self.read(Controller::Pids, file)
                .and_then(|t| limit_value(&t))
        };
        match (read("pids.current"), read("pids.max")) {
            (Some(current), Some(max)) => current >= max,
            _ => false,
        }
    }

    /// The memory limit in force (as the kernel rounded it), or the configured one.
    pub fn memory_limit(&self) -> Option<u64> {
        let file = match self.member_with(Controller::Memory)?.version {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        };
        self.read(Controller::Memory, file)
            .and_then(|t| limit_value(&t))
            .or(self.configured_memory)
    }

    /// Kills what is left and removes the cgroup directories. Blocking.
    pub fn remove(&self) -> Result<(), CgroupError> {
        if self.is_populated() {
            self.kill_all()?;
        }
        for m in &self.members {
            cgroupfs::remove_dir_with_retry(&m.dir, REMOVE_WAIT)?;
        }
        self.removed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for ExecutorCgroup {
    fn drop(&mut self) {
        if !self.removed.load(Ordering::Relaxed)
            && let Err(e) = self.remove()
        {
            tracing::warn!(error = %e, "cgroup left behind");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn fixture(version: Version, dirs: &[(&[Controller], &Path)]) -> ExecutorCgroup {
        let members = dirs
            .iter()
            .map(|(c, d)| {
                fs::create_dir_all(d).unwrap();
                fs::write(d.join("cgroup.procs"), "").unwrap();
                Member {
                    version,
                    controllers: c.to_vec(),
                    dir: d.to_path_buf(),
                }
            })
            .collect();
        ExecutorCgroup {
            members,
            configured_memory: Some(32 << 20),
            removed: AtomicBool::new(false),
            usage: OnceLock::new(),
        }
    }

    #[test]
    fn v2_reads_peak_cpu_and_oom_kills() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("x");
        let cg = fixture(Version::V2, &[(&Controller::V2_WANTED, &d)]);
        fs::write(d.join("memory.peak"), "40960000\n").unwrap();
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 3500\nuser_usec 2500\nsystem_usec 1000\n",
        )
        .unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
        )
        .unwrap();
        fs::write(d.join("memory.max"), "33554432\n").unwrap();
        let stats = cg.stats();
        assert_eq!(stats.peak_memory_bytes, Some(40_960_000));
        let first = stats.cpu.unwrap();
        assert_eq!(
            (first.usage_us, first.user, first.system),
            (3500, 2500, 1000)
        );
        // The files stay open and are re-read: a later reading sees the new content.
        fs::write(
            d.join("cpu.stat"),
            "usage_usec 5500\nuser_usec 4000\nsystem_usec 1500\n",
        )
        .unwrap();
        let later = cg.stats().cpu.unwrap().since(Some(&first));
        assert_eq!((later.user_ms, later.system_ms), (1.5, 0.5));
        assert_eq!(cg.oom_kills(), 1);
        assert_eq!(cg.memory_limit(), Some(33_554_432));
        assert_eq!(cg.procs_files(), [d.join("cgroup.procs")]);
        assert_eq!(
            cg.joins(),
            [CgroupJoin {
                dir: d.clone(),
                version: CgroupVersion::V2
            }]
        );
        drop(cg);
        assert!(!d.exists(), "drop removes the cgroup");
    }

    #[test]
    fn v1_reads_per_hierarchy_files_and_falls_back_to_failcnt() {
        let root = tempfile::tempdir().unwrap();
        let (mem, acct) = (root.path().join("memory/x"), root.path().join("cpuacct/x"));
        let cg = fixture(
            Version::V1,
            &[
                (&[Controller::Memory], &mem),
                (&[Controller::Cpuacct], &acct),
            ],
        );
        fs::write(mem.join("memory.max_usage_in_bytes"), "33550336\n").unwrap();
        fs::write(mem.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        fs::write(acct.join("cpuacct.usage"), "12000000\n").unwrap();
        fs::write(acct.join("cpuacct.stat"), "user 7\nsystem 3\n").unwrap();
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\n",
        )
        .unwrap();
        fs::write(mem.join("memory.failcnt"), "17\n").unwrap();
        let stats = cg.stats();
        assert_eq!(stats.peak_memory_bytes, Some(33_550_336));
        let cpu = stats.cpu.unwrap().since(None);
        assert!(
            (cpu.user_ms - 8.4).abs() < 1e-9 && (cpu.system_ms - 3.6).abs() < 1e-9,
            "12 ms of cpuacct.usage split 7:3 by the ticks: {cpu:?}"
        );
        assert_eq!(cg.oom_kills(), 1);
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 3);
        // "unlimited" on v1 reads as a huge number: fall back to the configured limit.
        assert_eq!(cg.memory_limit(), Some(32 << 20));
        assert_eq!(cg.procs_files().len(), 2);
        assert!(cg.joins().iter().all(|j| j.version == CgroupVersion::V1));
        cg.remove().unwrap();
        assert!(!mem.exists() && !acct.exists());
    }

    #[test]
    fn missing_files_read_as_unknown_not_zero() {
        let root = tempfile::tempdir().unwrap();
        let cg = fixture(
            Version::V2,
            &[(&Controller::V2_WANTED, &root.path().join("x"))],
        );
        assert_eq!(cg.stats(), CgroupStats::default());
        assert_eq!(cg.oom_kills(), 0);
    }
}
