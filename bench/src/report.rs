//! The report: the host, every figure, the ratio against the fresh-process baseline and the
//! targets with PASS/MISS, as a text table or as one JSON document (`--json`).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::baseline::Baseline;
use crate::daemon::Stopped;
use crate::load::Load;
use crate::measure::{Summary, round1};
use crate::scenarios::{Cold, Errors, Warm};
use crate::verdict::Verdict;

/// Targets from the project's goals; figures, not assertions.
const TARGET_WARM_P50_US: f64 = 150.0;
const TARGET_WARM_P99_US: f64 = 1000.0;
const TARGET_RATE: f64 = 5000.0;
const TARGET_CLIENTS: usize = 32;
const TARGET_SPEEDUP: f64 = 300.0;

/// The machine the figures come from.
#[derive(Debug, Clone)]
pub struct Host {
    pub cpus: usize,
    pub kernel: String,
    pub cpu_model: String,
    /// `/proc/loadavg` when the run started: other work on a shared host skews everything.
    pub loadavg: String,
    /// How idle CPUs wait, when it moves the figures: on a VM whose idle vCPUs halt at once
    /// (guest halt polling off), every wake-up of a sleeping process on another CPU costs
    /// tens of microseconds, and a warm call has four of them.
    pub idle: Option<String>,
}

impl Host {
    pub fn probe() -> Host {
        let read = |path: &str| fs_err::read_to_string(path).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        Host {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu_model,
            loadavg: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            idle: idle_mode(),
        }
    }

    /// The header line: CPUs, kernel, load and, when known, how idle CPUs wait.
    pub fn line(&self) -> String {
        let idle = self
            .idle
            .as_deref()
            .map(|i| format!(", {i}"))
            .unwrap_or_default();
        format!(
            "host: {} CPUs ({}), Linux {}{idle}, load average {} at start",
            self.cpus, self.cpu_model, self.kernel, self.loadavg
        )
    }
}

/// The cpuidle driver, and guest halt polling's window when the driver is `haltpoll`.
fn idle_mode() -> Option<String> {
    let read = |path: &str| fs_err::read_to_string(path).ok();
    let driver = read("/sys/devices/system/cpu/cpuidle/current_driver")?;
    let driver = driver.trim();
    if driver != "haltpoll" {
        return Some(format!("cpuidle {driver}"));
    }
    let window = read("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
        .and_then(|ns| ns.trim().parse::<u64>().ok());
    Some(match window {
        Some(0) => "guest halt polling off (haltpoll, guest_halt_poll_ns 0)".to_owned(),
        Some(ns) => format!("guest halt polling {} µs (haltpoll)", ns / 1000),
        None => "cpuidle haltpoll".to_owned(),
    })
}

/// Which daemon was measured.
#[derive(Debug, Clone)]
pub struct DaemonUnderTest {
    /// The binary started, or the socket given with `--socket`.
    pub label: String,
    pub version: Option<String>,
    /// How the benchmark's own daemon ended (none for `--socket`).
    pub stopped: Option<Stopped>,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub host: Host,
    pub daemon: DaemonUnderTest,
    pub warm: Warm,
    pub cold: Cold,
    pub load: Load,
    pub baseline: Baseline,
}

impl Run {
    /// Fresh-process median over warm p50.
    pub fn speedup(&self) -> f64 {
        self.baseline.real.p50 / self.warm.client.p50.max(f64::EPSILON)
    }

    fn targets(&self) -> Vec<Verdict> {
        let w = &self.warm.client;
        let l = &self.load;
        vec![
            Verdict {
                target: format!("warm p50 <= {TARGET_WARM_P50_US} µs"),
                observed: format!("{:.1} µs", w.p50),
                pass: Some(w.p50 <= TARGET_WARM_P50_US && self.warm.errors.count == 0),
            },
            Verdict {
                target: format!("warm p99 <= {} ms", TARGET_WARM_P99_US / 1000.0),
                observed: format!("{:.1} µs", w.p99),
                pass: Some(w.p99 <= TARGET_WARM_P99_US && self.warm.errors.count == 0),
            },
            Verdict {
                target: format!("≥ {TARGET_RATE} calls/s at {TARGET_CLIENTS} clients, 0 errors"),
                observed: format!(
                    "{:.0} calls/s at {} clients, {} errors",
                    l.rate(),
                    l.clients,
                    l.errors.count
                ),
                pass: Some(
                    l.rate() >= TARGET_RATE && l.clients >= TARGET_CLIENTS && l.errors.count == 0,
                ),
            },
            Verdict {
                target: format!("fresh process / warm p50 >= {TARGET_SPEEDUP}×"),
                observed: format!("{:.0}×", self.speedup()),
                pass: Some(self.speedup() >= TARGET_SPEEDUP),
            },
        ]
    }
}

fn row(out: &mut String, label: &str, s: &Summary, scale: f64) {
    let _ = writeln!(
        out,
        "  {label:<34}{:>10.1}{:>10.1}{:>10.1}{:>10.1}{:>10.1}",
        s.p50 / scale,
        s.p90 / scale,
        s.p99 / scale,
        s.max / scale,
        s.mean / scale
    );
}

fn header(out: &mut String, unit: &str) {
    let _ = writeln!(
        out,
        "  {:<34}{:>10}{:>10}{:>10}{:>10}{:>10}",
        format!("({unit})"),
        "p50",
        "p90",
        "p99",
        "max",
        "mean"
    );
}

fn errors_line(out: &mut String, errors: &Errors) {
    let _ = write!(out, "  errors: {}", errors.count);
    if let Some(first) = &errors.first {
        let _ = write!(out, " (first: {first})");
    }
    out.push('\n');
}

/// The report as text.
pub fn text(run: &Run) -> String {
    let mut out = String::new();
    let (h, d) = (&run.host, &run.daemon);
    let _ = writeln!(out, "runwarm-bench");
    let _ = writeln!(out, "{}", h.line());
    let version = d.version.as_deref().unwrap_or("version unknown");
    let _ = writeln!(out, "daemon: {} ({version})", d.label);

    let w = &run.warm;
    let _ = writeln!(
        out,
        "\nWarm latency: {} sequential calls over one connection, after {} warm-up calls",
        w.calls, w.warmup
    );
    header(&mut out, "µs");
    row(&mut out, "client wall time per call", &w.client, 1.0);
    if let Some(s) = &w.daemon_total {
        row(&mut out, "daemon timings.total_ms", s, 1.0);
    }
    if let Some(s) = &w.daemon_run {
        row(&mut out, "daemon timings.run_ms (executor)", s, 1.0);
    }
    if let Some(s) = &w.daemon_queue {
        row(&mut out, "daemon timings.queue_ms", s, 1.0);
    }
    if let Some(s) = &w.http_floor {
        row(&mut out, "GET /healthz (HTTP floor)", s, 1.0);
    }
    if let (Some(total), Some(run_ms), Some(floor)) =
        (&w.daemon_total, &w.daemon_run, &w.http_floor)
    {
        let _ = writeln!(
            out,
            "  where the median call goes (medians, so approximate): {:.0} µs executor round \
             trip (run_ms), {:.0} µs daemon around it (total_ms - run_ms), {:.0} µs invoke \
             handler outside total_ms (resolve, body, schema, record JSON), {:.0} µs HTTP, \
             socket and client (the /healthz floor)",
            run_ms.p50,
            total.p50 - run_ms.p50,
            w.client.p50 - total.p50 - floor.p50,
            floor.p50
        );
    }
    let _ = writeln!(out, "  served by {} executor process(es)", w.executors);
    errors_line(&mut out, &w.errors);

    let c = &run.cold;
    let _ = writeln!(
        out,
        "\nCold start: {} new versions, one call each (a new executor per call)",
        c.runs
    );
    header(&mut out, "ms");
    row(&mut out, "client wall time per call", &c.client, 1000.0);
    if let Some(s) = &c.cold_start {
        row(&mut out, "daemon timings.cold_start_ms", s, 1000.0);
    }
    let _ = writeln!(out, "  records with cold: true: {}/{}", c.cold_true, c.runs);
    errors_line(&mut out, &c.errors);

    let l = &run.load;
    let _ = writeln!(
        out,
        "\nThroughput: {} clients (a connection each), pool max {}, {:.1} s window",
        l.clients,
        l.pool_max,
        l.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  {:.0} calls/s ({} calls), served by {} executor process(es), {} cold call(s) \
         (executors are recycled after pool.max_requests)",
        l.rate(),
        l.calls,
        l.executors,
        l.cold_calls
    );
    if let Some(s) = &l.latency {
        header(&mut out, "µs");
        row(&mut out, "client wall time under load", s, 1.0);
    }
    errors_line(&mut out, &l.errors);

    let b = &run.baseline;
    let _ = writeln!(
        out,
        "\nBaseline: the same handler as a fresh python3 process per call"
    );
    let _ = writeln!(
        out,
        "  interpreter {} (resolved through sys.executable, skipping any pyenv shim)",
        b.interpreter.display()
    );
    header(&mut out, "ms");
    row(
        &mut out,
        &format!("fresh process ({} runs)", b.real.count),
        &b.real,
        1000.0,
    );
    row(
        &mut out,
        &format!("via python3 on PATH ({} runs)", b.via_path.count),
        &b.via_path,
        1000.0,
    );

    let _ = writeln!(
        out,
        "\nRatio: fresh process median {:.1} ms / warm p50 {:.1} µs = {:.0}× (via PATH: {:.0}×)",
        b.real.p50 / 1000.0,
        w.client.p50,
        run.speedup(),
        b.via_path.p50 / w.client.p50.max(f64::EPSILON)
    );
    let _ = writeln!(out, "\nTargets");
    for t in run.targets() {
        let _ = writeln!(out, "  {:<46}{:<44}{}", t.target, t.observed, t.mark());
    }
    if let Some(s) = &d.stopped {
        let _ = writeln!(out, "\ndaemon stopped with SIGTERM: {}", s.describe());
    }
    out
}

fn errors_json(errors: &Errors) -> Value {
    json!({"count": errors.count, "first": errors.first})
}

/// The report as JSON.
pub fn json(run: &Run) -> Value {
    let (w, c, l, b) = (&run.warm, &run.cold, &run.load, &run.baseline);
    let opt = |s: &Option<Summary>| s.map_or(Value::Null, Summary::to_json);
    json!({
        "host": {
            "cpus": run.host.cpus,
            "kernel": run.host.kernel,
            "cpu_model": run.host.cpu_model,
            "loadavg_at_start": run.host.loadavg,
            "idle": run.host.idle,
        },
        "daemon": {
            "label": run.daemon.label,
            "version": run.daemon.version,
            "stopped": run.daemon.stopped.map(|s| json!({
                "status": s.status.map(|st| st.to_string()),
                "killed": s.killed,
                "took_ms": s.took.as_millis(),
            })),
        },
        "warm": {
            "calls": w.calls,
            "warmup": w.warmup,
            "client": w.client.to_json(),
            "daemon_total": opt(&w.daemon_total),
            "daemon_run": opt(&w.daemon_run),
            "daemon_queue": opt(&w.daemon_queue),
            "http_floor": opt(&w.http_floor),
            "executors": w.executors,
            "errors": errors_json(&w.errors),
        },
        "cold": {
            "runs": c.runs,
            "client": c.client.to_json(),
            "cold_start": opt(&c.cold_start),
            "cold_true": c.cold_true,
            "errors": errors_json(&c.errors),
        },
        "throughput": {
            "clients": l.clients,
            "pool_max": l.pool_max,
            "seconds": l.elapsed.as_millis() as f64 / 1000.0,
            "calls": l.calls,
            "calls_per_s": round1(l.rate()),
            "latency": opt(&l.latency),
            "executors": l.executors,
            "cold_calls": l.cold_calls,
            "errors": errors_json(&l.errors),
        },
        "baseline": {
            "interpreter": b.interpreter.display().to_string(),
            "fresh_process": b.real.to_json(),
            "via_path": b.via_path.to_json(),
        },
        "speedup": round1(run.speedup()),
        "targets": run.targets().into_iter().map(|t| json!({
            "target": t.target,
            "measured": t.observed,
            "met": t.pass,
        })).collect::<Vec<_>>(),
    })
}
