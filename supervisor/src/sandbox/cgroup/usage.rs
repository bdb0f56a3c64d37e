//! Reading an executor's resource use back after every invocation, cheaply enough for the warm
//! path: the counter files are opened once per executor and re-read with `pread` at offset 0
//! (cgroup files regenerate their content on a read from the start), so an invocation costs two
//! `pread`s (v2 `cpu.stat` and `memory.peak`; v1 `cpuacct.usage` and
//! `memory.max_usage_in_bytes`) instead of open/stat/read/read/close sequences.
//!
//! CPU time is reported per invocation: the difference between two readings. The precise total
//! (v2 `usage_usec`, v1 `cpuacct.usage` in ns) is split into user and system time in the ratio of
//! the kernel's user/system counters, which it only samples at the scheduler tick; that is what
//! v2 itself does for `user_usec`/`system_usec`, and it keeps a sub-millisecond invocation from
//! reading as 0 or as a whole 4 ms tick.
//!
//! On v1 the split comes from a file of its own, `cpuacct.stat`, the dearest of the three to read
//! (the kernel sums and adjusts every CPU's counters for it). Its tick counters cannot move
//! before the cgroup has used a tick's worth of CPU, so it is read again only once the precise
//! total has grown by a tick since the last reading; until then the last reading stands, which
//! is what [`CpuCounters::since`] falls back to when no tick landed anyway.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use super::control_files::{keyed_value, single_value};
use super::kill::Member;
use super::layout::{Controller, Version};

/// v1 `cpuacct.stat` counts in USER_HZ ticks, which is 100 on every Linux ABI.
const US_PER_USER_HZ_TICK: u64 = 10_000;
/// Large enough for any counter file read here (v2 `cpu.stat` is the longest, ~300 bytes).
const READ_BUF: usize = 1024;

/// Cumulative CPU counters of a cgroup at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuCounters {
    /// Total CPU time in microseconds (precise).
    pub usage_us: u64,
    /// User share, in whatever unit the kernel samples it (only its ratio to `system` is used).
    pub user: u64,
    /// System share, in the same unit as `user`.
    pub system: u64,
}

/// CPU time between two readings, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user_ms: f64,
    pub system_ms: f64,
}

impl CpuCounters {
    /// The CPU time used since `earlier` (all of it when there is no earlier reading).
    pub fn since(&self, earlier: Option<&CpuCounters>) -> CpuTime {
        let base = earlier.copied().unwrap_or_default();
        let total = self.usage_us.saturating_sub(base.usage_us) as f64 / 1000.0;
        let (user, system) = (
            self.user.saturating_sub(base.user),
            self.system.saturating_sub(base.system),
        );
        // No tick landed in between: the best estimate is the share over the executor's life.
        let (user, system) = if user + system == 0 {
            (self.user, self.system)
        } else {
            (user, system)
        };
        if user + system == 0 {
            return CpuTime {
                user_ms: total,
                system_ms: 0.0,
            };
        }
        let user_ms = total * user as f64 / (user + system) as f64;
        CpuTime {
            user_ms,
            system_ms: total - user_ms,
        }
    }
}

/// Peak memory and CPU counters of a cgroup at one moment; `None` where the host does not
/// account it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupStats {
    pub peak_memory_bytes: Option<u64>,
    pub cpu: Option<CpuCounters>,
}

/// The counter files of one executor's cgroup, open for re-reading.
#[derive(Debug)]
pub(crate) enum UsageFiles {
    V2 {
        cpu_stat: Option<File>,
        memory_peak: Option<File>,
    },
    V1 {
        cpuacct_usage: Option<File>,
        cpuacct_stat: Option<File>,
        max_usage: Option<File>,
        /// The last `cpuacct.stat` reading and the precise total at that moment.
        last_ticks: Mutex<Option<TickReading>>,
    },
}

/// v1's sampled user/system ticks, with the precise total (µs) when they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TickReading {
    usage_us: u64,
    user: u64,
    system: u64,
}

impl TickReading {
    /// Whether ticks read when the total was `self.usage_us` still hold at `usage_us`: less than
    /// one tick of CPU has been used since, so no counter can have moved.
    fn still_holds_at(&self, usage_us: u64) -> bool {
        usage_us >= self.usage_us && usage_us - self.usage_us < US_PER_USER_HZ_TICK
    }
}

impl UsageFiles {
    /// Opens whichever counter files the members have (a missing file reads as `None` later).
    pub(crate) fn open(members: &[Member]) -> Self {
        let open = |controller: Controller, file: &str| {
            let m = members
                .iter()
                .find(|m| m.controllers.contains(&controller))?;
            File::open(m.dir.join(file)).ok()
        };
        if let Some(v2) = members.iter().find(|m| m.version == Version::V2) {
            return UsageFiles::V2 {
                cpu_stat: File::open(v2.dir.join("cpu.stat")).ok(),
                memory_peak: File::open(v2.dir.join("memory.peak")).ok(),
            };
        }
        UsageFiles::V1 {
            cpuacct_usage: open(Controller::Cpuacct, "cpuacct.usage"),
            cpuacct_stat: open(Controller::Cpuacct, "cpuacct.stat"),
            max_usage: open(Controller::Memory, "memory.max_usage_in_bytes"),
            last_ticks: Mutex::new(None),
        }
    }

    /// Reads every counter once.
    pub(crate) fn read(&self) -> CgroupStats {
        let mut buf = [0u8; READ_BUF];
        match self {
            UsageFiles::V2 {
                cpu_stat,
                memory_peak,
            } => {
                let cpu = reread(cpu_stat.as_ref(), &mut buf).and_then(|text| {
                    Some(CpuCounters {
                        usage_us: keyed_value(text, "usage_usec")?,
                        user: keyed_value(text, "user_usec")?,
                        system: keyed_value(text, "system_usec")?,
                    })
                });
                let peak = reread(memory_peak.as_ref(), &mut buf).and_then(single_value);
                CgroupStats {
                    peak_memory_bytes: peak,
                    cpu,
                }
            }
            UsageFiles::V1 {
                cpuacct_usage,
                cpuacct_stat,
                max_usage,
                last_ticks,
            } => {
                let usage_ns = reread(cpuacct_usage.as_ref(), &mut buf).and_then(single_value);
                let ticks = v1_ticks(cpuacct_stat.as_ref(), usage_ns, last_ticks, &mut buf);
                let cpu = match (usage_ns, ticks) {
                    (Some(ns), Some((user, system))) => Some(CpuCounters {
                        usage_us: ns / 1000,
                        user,
                        system,
                    }),
                    (Some(ns), None) => Some(CpuCounters {
                        usage_us: ns / 1000,
                        user: 0,
                        system: 0,
                    }),
                    // Ticks only: as precise as the kernel's sampling.
                    (None, Some((user, system))) => Some(CpuCounters {
                        usage_us: (user + system) * US_PER_USER_HZ_TICK,
                        user,
                        system,
                    }),
                    (None, None) => None,
                };
                let peak = reread(max_usage.as_ref(), &mut buf).and_then(single_value);
                CgroupStats {
                    peak_memory_bytes: peak,
                    cpu,
                }
            }
        }
    }
}

/// v1's user/system ticks: the last reading while it still holds at `usage_ns`, else a fresh
/// one from `cpuacct.stat`.
fn v1_ticks(
    stat: Option<&File>,
    usage_ns: Option<u64>,
    last: &Mutex<Option<TickReading>>,
    buf: &mut [u8],
) -> Option<(u64, u64)> {
    let usage_us = usage_ns.map(|ns| ns / 1000);
    // A poisoned lock only means another reader panicked mid-update; the reading is still a
    // plain copy, so carry on with it.
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let (Some(reading), Some(now)) = (*last, usage_us)
        && reading.still_holds_at(now)
    {
        return Some((reading.user, reading.system));
    }
    let ticks = reread(stat, buf)
        .and_then(|text| Some((keyed_value(text, "user")?, keyed_value(text, "system")?)));
    *last = match (ticks, usage_us) {
        (Some((user, system)), Some(usage_us)) => Some(TickReading {
            usage_us,
            user,
            system,
        }),
        _ => None,
    };
    ticks
}

/// The file's whole content, read from offset 0; `None` when absent, unreadable or not UTF-8.
fn reread<'b>(file: Option<&File>, buf: &'b mut [u8]) -> Option<&'b str> {
    let n = file?.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(usage_us: u64, user: u64, system: u64) -> CpuCounters {
        CpuCounters {
            usage_us,
            user,
            system,
        }
    }

    #[test]
    fn cpu_time_is_the_precise_difference_split_by_the_tick_ratio() {
        let t = counters(10_000, 30, 10).since(Some(&counters(6_000, 27, 9)));
        assert_eq!(t.user_ms, 3.0);
        assert_eq!(t.system_ms, 1.0);
    }

    #[test]
    fn without_a_tick_in_between_the_lifetime_ratio_splits_it() {
        let t = counters(1_200, 3, 1).since(Some(&counters(1_000, 3, 1)));
        assert!((t.user_ms - 0.15).abs() < 1e-9, "{t:?}");
        assert!((t.system_ms - 0.05).abs() < 1e-9, "{t:?}");
    }

    #[test]
    fn without_any_tick_it_is_all_user_time_and_the_first_reading_counts_from_zero() {
        let t = counters(250, 0, 0).since(None);
        assert_eq!(t.user_ms, 0.25);
        assert_eq!(t.system_ms, 0.0);
    }

    #[test]
    fn v1_ticks_are_read_again_only_after_a_tick_of_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpuacct.stat");
        std::fs::write(&path, "user 7\nsystem 3\n").unwrap();
        let stat = File::open(&path).unwrap();
        let last = Mutex::new(None);
        let mut buf = [0u8; READ_BUF];
        let ticks = |usage_us: u64, buf: &mut [u8]| {
            v1_ticks(Some(&stat), Some(usage_us * 1000), &last, buf)
        };
        assert_eq!(ticks(1_000, &mut buf), Some((7, 3)));
        // Moved on disk, but less than a tick of CPU since: the last reading stands.
        std::fs::write(&path, "user 8\nsystem 3\n").unwrap();
        assert_eq!(
            ticks(1_000 + US_PER_USER_HZ_TICK - 1, &mut buf),
            Some((7, 3))
        );
        // A tick's worth of CPU later it is read again.
        assert_eq!(ticks(1_000 + US_PER_USER_HZ_TICK, &mut buf), Some((8, 3)));
        // A total that went backwards (another cgroup behind the same fd) reads it again too.
        std::fs::write(&path, "user 9\nsystem 4\n").unwrap();
        assert_eq!(ticks(500, &mut buf), Some((9, 4)));
        // Without the precise total every call reads the ticks.
        std::fs::write(&path, "user 10\nsystem 4\n").unwrap();
        assert_eq!(v1_ticks(Some(&stat), None, &last, &mut buf), Some((10, 4)));
        assert_eq!(*last.lock().unwrap(), None);
    }

    #[test]
    fn a_counter_going_backwards_reads_as_zero_not_negative() {
        let t = counters(100, 1, 1).since(Some(&counters(500, 2, 2)));
        assert_eq!(t.user_ms + t.system_ms, 0.0);
    }
}
