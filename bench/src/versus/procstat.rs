//! What a process costs, read from `/proc` and `strace`: context switches and CPU time of every
//! thread of a process tree, resident memory, and system calls counted by `strace -c -f`.
//!
//! Counters are summed over the threads alive at each reading (`/proc/<pid>/task/*`): a thread
//! that ends between two readings takes its counts with it. The daemon's threads live for the
//! whole run, so for the figures here that loss is nil.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The direct children of `pid` (of all its threads).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in tasks(pid) {
        let path = format!("/proc/{pid}/task/{task}/children");
        let text = fs_err::read_to_string(path).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

/// `pid` and all its descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        out.extend(children(p));
        i += 1;
    }
    out
}

fn tasks(pid: u32) -> Vec<u32> {
    fs_err::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Context switches and CPU time, summed over threads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub voluntary: u64,
    pub involuntary: u64,
    /// Time on a CPU (`schedstat`), in nanoseconds.
    pub cpu_ns: u64,
}

impl Counters {
    /// The counters of every thread of every process in `pids`.
    pub fn read(pids: &[u32]) -> Counters {
        let mut c = Counters::default();
        for &pid in pids {
            for task in tasks(pid) {
                let base = format!("/proc/{pid}/task/{task}");
                let status = fs_err::read_to_string(format!("{base}/status")).unwrap_or_default();
                c.voluntary += field(&status, "voluntary_ctxt_switches:");
                c.involuntary += field(&status, "nonvoluntary_ctxt_switches:");
                let sched = fs_err::read_to_string(format!("{base}/schedstat")).unwrap_or_default();
                c.cpu_ns += sched
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        c
    }

    /// Per call, from two readings `calls` calls apart.
    pub fn per_call(before: Counters, after: Counters, calls: usize) -> PerCall {
        let n = calls.max(1) as f64;
        PerCall {
            voluntary: after.voluntary.saturating_sub(before.voluntary) as f64 / n,
            involuntary: after.involuntary.saturating_sub(before.involuntary) as f64 / n,
            cpu_us: after.cpu_ns.saturating_sub(before.cpu_ns) as f64 / n / 1000.0,
        }
    }
}

/// Counters per call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PerCall {
    pub voluntary: f64,
    pub involuntary: f64,
    pub cpu_us: f64,
}

fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `VmRSS` of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs_err::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(field(&status, "VmRSS:")).filter(|&kib| kib > 0)
}

/// A running `strace -c -f` attached to some processes; [`Strace::finish`] stops it and reads
/// its summary.
pub struct Strace {
    child: Option<Child>,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

/// `strace` on PATH, if any.
pub fn strace_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("strace"))
        .find(|p| p.is_file())
}

impl Strace {
    /// Attaches to every thread of `pids` (and what they fork) and waits until it is attached.
    pub fn attach(strace: &Path, pids: &[u32]) -> Result<Strace> {
        let dir = tempfile::tempdir().context("creating a directory for strace's summary")?;
        let out = dir.path().join("strace.txt");
        let mut command = Command::new(strace);
        command.args(["-c", "-f", "-q", "-o"]).arg(&out);
        for pid in pids {
            command.arg("-p").arg(pid.to_string());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", strace.display()))?;
        let strace = Strace {
            child: Some(child),
            out,
            _dir: dir,
        };
        // Attached once every process names a tracer; threads follow within microseconds.
        let until = Instant::now() + Duration::from_secs(10);
        while !pids.iter().all(|&p| traced(p)) {
            if Instant::now() >= until {
                bail!("strace did not attach to {pids:?} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        Ok(strace)
    }

    /// Detaches (SIGINT, as ^C would) and returns the system calls counted, by name.
    pub fn finish(mut self) -> Result<Vec<(String, u64)>> {
        let Some(mut child) = self.child.take() else {
            bail!("strace already finished");
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let status = child.wait().context("waiting for strace")?;
        let text = fs_err::read_to_string(&self.out)
            .with_context(|| format!("strace ended with {status} and wrote no summary"))?;
        Ok(parse_summary(&text))
    }
}

impl Drop for Strace {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn traced(pid: u32) -> bool {
    let status = fs_err::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    field(&status, "TracerPid:") != 0
}

/// The rows of `strace -c`'s table: `% time  seconds  usecs/call  calls  [errors]  syscall`.
fn parse_summary(text: &str) -> Vec<(String, u64)> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 5 || cols[0].parse::<f64>().is_err() {
            continue;
        }
        let (Some(name), Ok(calls)) = (cols.last(), cols[3].parse::<u64>()) else {
            continue;
        };
        if *name != "total" {
            rows.push(((*name).to_owned(), calls));
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_summary_rows_are_read() {
        let text = "% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 70.10    0.012000           6      2000       120 futex
 20.00    0.003000           1      3000           pread64
------ ----------- ----------- --------- --------- ----------------
100.00    0.015000           3      5000       120 total
";
        assert_eq!(
            parse_summary(text),
            vec![("pread64".to_owned(), 3000), ("futex".to_owned(), 2000)]
        );
    }

    #[test]
    fn own_counters_and_rss_are_read() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(Counters::read(&[me]).cpu_ns > 0);
        assert_eq!(tree(me)[0], me);
    }
}
