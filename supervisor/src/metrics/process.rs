//! The daemon's own process metrics, read from `/proc/self` at scrape time.
//!
//! prometheus-client has no process collector; these are the names the Go and Python clients use
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), without the `runwarm_`
//! prefix, so dashboards written for any exporter work. Only the daemon is measured: executors
//! live in their own cgroups and show up in the per-script figures.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Ticks per second of the times in `/proc/*/stat` (`USER_HZ`, what `sysconf(_SC_CLK_TCK)`
/// returns): fixed at 100 in the user-space ABI of every architecture runwarm builds for.
const USER_HZ: f64 = 100.0;

/// Reads `/proc/self` on every scrape (a few file reads, well under a millisecond).
#[derive(Debug)]
pub struct ProcessCollector {
    /// Seconds since the epoch the process started; fixed, so read once.
    start_time: Option<f64>,
}

impl ProcessCollector {
    pub fn new() -> Self {
        // Where /proc/stat is hidden (systemd's ProcSubset=pid), the metrics are set up early
        // in start-up, which is close enough to mark restarts.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
        ProcessCollector {
            start_time: start_time().or(now),
        }
    }
}

/// What one scrape reads; a figure the host does not offer is left out, not reported as 0.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl Sample {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().and_then(stat_fields);
        // CPU time from getrusage: microsecond resolution, where /proc ticks are 10 ms.
        let cpu_seconds = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
            .ok()
            .map(|u| timeval_seconds(u.user_time()) + timeval_seconds(u.system_time()));
        Sample {
            cpu_seconds,
            // `/proc/self/status` gives resident memory in kB, which needs no page size.
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| status_kb(&s, "VmRSS:"))
                .map(|kb| kb * 1024),
            virtual_bytes: fields.as_ref().and_then(|f| field(f, 23)),
            threads: fields.as_ref().and_then(|f| field(f, 20)),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft),
        }
    }
}

fn timeval_seconds(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

/// The fields of `/proc/self/stat` after the command name, which is in parentheses and may hold
/// spaces; index 0 is field 3 (`state`) of proc(5).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

/// Field `n` of proc(5)'s numbering.
fn field(fields: &[&str], n: usize) -> Option<u64> {
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Start time in seconds since the epoch: boot time (`btime` of `/proc/stat`) plus the
/// `starttime` ticks of `/proc/self/stat`.
fn start_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let ticks = field(&stat_fields(&stat)?, 22)?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot as f64 + ticks as f64 / USER_HZ)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Sample::read();
        if let Some(v) = s.cpu_seconds {
            let c = ConstCounter::new(v);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time of the daemon process, in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let gauges: [(&str, &str, Option<f64>); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory of the daemon process, in bytes",
                s.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory of the daemon process, in bytes",
                s.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "File descriptors the daemon process has open",
                s.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "The daemon process's limit on open file descriptors (RLIMIT_NOFILE)",
                s.max_fds.map(|v| v as f64),
            ),
            (
                "process_threads",
                "Threads of the daemon process",
                s.threads.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "When the daemon process started, in seconds since the Unix epoch",
                self.start_time,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let g = ConstGauge::new(v);
                g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = Sample::read();
        assert!(s.cpu_seconds.is_some_and(|v| v >= 0.0), "{s:?}");
        assert!(s.resident_bytes.is_some_and(|v| v > 0), "{s:?}");
        assert!(s.virtual_bytes.is_some_and(|v| v > 0), "{s:?}");
        assert!(s.threads.is_some_and(|v| v >= 1), "{s:?}");
        assert!(s.open_fds.is_some_and(|v| v >= 3), "{s:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = start_time().unwrap();
        // Started before now, and not before the test run began (with slack for clock steps).
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} vs {now}"
        );
    }

    #[test]
    fn command_names_with_spaces_and_parentheses_parse() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 5 0 12345 999424 300";
        let f = stat_fields(stat).unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(field(&f, 14), Some(7));
        assert_eq!(field(&f, 20), Some(5));
        assert_eq!(field(&f, 22), Some(12345));
        assert_eq!(field(&f, 23), Some(999_424));
    }
}
