//! The PHP-FPM anchor section of the report: the tables, the ratios runwarm / PHP-FPM and
//! PASS/MISS per target of issue 12, as text and as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{NO_RECYCLING, Section, Throughput};
use crate::confinement::WarmAdded;
use crate::measure::{Summary, round1};
use crate::verdict::Verdict;

/// warm p50 of runwarm's python3 over PHP-FPM's (the compass goal is 1.0).
const P50_RATIO: f64 = 1.5;
const P99_RATIO: f64 = 2.0;
/// Confinement's added warm p50, in percent.
const CONFINEMENT_PERCENT: f64 = 5.0;
const IDLE_RSS_MIB: f64 = 30.0;
const WARM_RSS_MIB: f64 = 40.0;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn fpm_seq(s: &Section) -> Option<Summary> {
    s.sequential
        .iter()
        .find(|(l, _)| l == "php-fpm")
        .and_then(|(_, q)| q.summary())
}

/// The targets; `confinement` is what confinement added to the warm p50 when the confinement
/// section ran.
pub fn verdicts(s: &Section, confinement: Option<WarmAdded>) -> Vec<Verdict> {
    let mut out = Vec::new();
    let py = s.sequential.first().and_then(|(_, q)| q.summary());
    let fpm = fpm_seq(s);
    match (py, fpm) {
        (Some(py), Some(fpm)) => {
            let r50 = py.p50 / fpm.p50;
            let r99 = py.p99 / fpm.p99;
            out.push(Verdict {
                target: format!("warm p50 python3 <= {P50_RATIO}x php-fpm (compass 1.0x)"),
                observed: format!("{r50:.2}x ({:.0} / {:.0} us)", py.p50, fpm.p50),
                pass: Some(r50 <= P50_RATIO),
            });
            out.push(Verdict {
                target: format!("warm p99 python3 <= {P99_RATIO}x php-fpm"),
                observed: format!("{r99:.2}x ({:.0} / {:.0} us)", py.p99, fpm.p99),
                pass: Some(r99 <= P99_RATIO),
            });
        }
        _ => out.push(Verdict {
            target: "warm p50/p99 python3 vs php-fpm".into(),
            observed: "not measured".into(),
            pass: None,
        }),
    }
    let rw = s.throughput.first().map(|(_, t)| t);
    let fpm_t = s.throughput.iter().find(|(l, _)| l.starts_with("php-fpm"));
    match (rw, fpm_t) {
        (Some(rw), Some((_, f))) => out.push(Verdict {
            target: format!("throughput at {} clients >= php-fpm, 0 errors", s.clients),
            observed: format!(
                "{:.0} vs {:.0} calls/s, {} errors",
                rw.rate(),
                f.rate(),
                rw.errors.count
            ),
            pass: Some(rw.rate() >= f.rate() && rw.errors.count == 0),
        }),
        _ => out.push(Verdict {
            target: "throughput vs php-fpm".into(),
            observed: "not measured".into(),
            pass: None,
        }),
    }
    out.push(match confinement {
        Some(a) => Verdict {
            target: format!("confinement adds <= {CONFINEMENT_PERCENT}% to the warm p50"),
            observed: format!(
                "{:+.1}% (median of {} rounds of new executors, {:+.1}% to {:+.1}%; all calls {:.0} vs {:.0} us)",
                a.median_percent,
                a.rounds,
                a.lowest_percent,
                a.highest_percent,
                a.confined_p50,
                a.unconfined_p50
            ),
            pass: Some(a.median_percent <= CONFINEMENT_PERCENT),
        },
        None => Verdict {
            target: format!("confinement adds <= {CONFINEMENT_PERCENT}% to the warm p50"),
            observed: "N/A: the confinement section did not run".into(),
            pass: None,
        },
    });
    out.push(match s.rss_idle_kib {
        Some(kib) => Verdict {
            target: format!("daemon idle RSS <= {IDLE_RSS_MIB} MiB"),
            observed: format!("{:.1} MiB", mib(kib)),
            pass: Some(mib(kib) <= IDLE_RSS_MIB),
        },
        None => Verdict {
            target: format!("daemon idle RSS <= {IDLE_RSS_MIB} MiB"),
            observed: "not measured".into(),
            pass: None,
        },
    });
    out.push(match &s.rss_warm {
        Ok((kib, n)) => Verdict {
            target: format!(
                "daemon RSS with {} warm executors <= {WARM_RSS_MIB} MiB",
                s.rss_warm_count
            ),
            observed: format!("{:.1} MiB ({n} executors seen)", mib(*kib)),
            pass: Some(mib(*kib) <= WARM_RSS_MIB && *n >= s.rss_warm_count),
        },
        Err(why) => Verdict {
            target: format!("daemon RSS with {} warm executors", s.rss_warm_count),
            observed: format!("not measured: {why}"),
            pass: None,
        },
    });
    out
}

fn throughput_summary(t: &Throughput) -> Option<Summary> {
    Summary::of_durations(&t.latencies)
}

pub fn text(s: &Section, confinement: Option<WarmAdded>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nrunwarm vs PHP-FPM (same run, targets in turn; {} static pool of {})",
        s.fpm_label, s.fpm_children
    );
    let _ = writeln!(
        out,
        "  sequential warm calls, one kept connection  {:>8} {:>8} {:>8} {:>7}",
        "p50 us", "p90 us", "p99 us", "errors"
    );
    for (label, q) in &s.sequential {
        match q.summary() {
            Some(x) => {
                let _ = writeln!(
                    out,
                    "    {label:<40} {:>8.0} {:>8.0} {:>8.0} {:>7}",
                    x.p50, x.p90, x.p99, q.errors.count
                );
            }
            None => {
                let _ = writeln!(out, "    {label:<40} no calls");
            }
        }
        if let Some(first) = &q.errors.first {
            let _ = writeln!(out, "      first error: {first}");
        }
    }
    if let Some(fpm) = fpm_seq(s) {
        for (label, q) in s.sequential.iter().filter(|(l, _)| l != "php-fpm") {
            if let Some(x) = q.summary() {
                let _ = writeln!(
                    out,
                    "    ratio {label} / php-fpm: p50 {:.2}x, p90 {:.2}x, p99 {:.2}x",
                    x.p50 / fpm.p50,
                    x.p90 / fpm.p90,
                    x.p99 / fpm.p99
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "  throughput, {} clients (runwarm pool max {})  {:>9} {:>7} {:>8} {:>8}",
        s.clients, s.pool_max, "calls/s", "errors", "p50 us", "p99 us"
    );
    for (label, t) in &s.throughput {
        let lat = throughput_summary(t);
        let _ = writeln!(
            out,
            "    {label:<40} {:>9.0} {:>7} {:>8.0} {:>8.0}",
            t.rate(),
            t.errors.count,
            lat.map_or(f64::NAN, |l| l.p50),
            lat.map_or(f64::NAN, |l| l.p99)
        );
        if let Some(first) = &t.errors.first {
            let _ = writeln!(out, "      first error: {first}");
        }
    }
    let _ = writeln!(
        out,
        "    (workers recycled on neither side of the target: php-fpm pm.max_requests = 0, \
         runwarm pool.max_requests = {NO_RECYCLING}; \"default recycling\" is runwarm's 10,000)"
    );
    let _ = writeln!(
        out,
        "  floors                                      {:>8} {:>8} {:>8}",
        "p50 us", "p90 us", "p99 us"
    );
    for (label, floor) in [
        ("pipe ping-pong, 1 byte, 2 processes", &s.floors.pipe),
        ("JSON-lines echo, trivial python3", &s.floors.json_lines),
        (
            "JSON-lines echo, polling reader",
            &s.floors.json_lines_polling,
        ),
    ] {
        match floor {
            Ok(x) => {
                let _ = writeln!(
                    out,
                    "    {label:<40} {:>8.1} {:>8.1} {:>8.1}",
                    x.p50, x.p90, x.p99
                );
            }
            Err(why) => {
                let _ = writeln!(out, "    {label:<40} failed: {why}");
            }
        }
    }
    let _ = writeln!(
        out,
        "  per warm call                               {:>8} {:>8} {:>8} {:>8}  most frequent",
        "vol cs", "invol cs", "cpu us", "syscalls"
    );
    for c in &s.costs {
        let (total, top) = match &c.syscalls {
            Ok(rows) => (
                format!("{:.1}", rows.iter().map(|(_, n)| n).sum::<f64>()),
                rows.iter()
                    .take(6)
                    .map(|(name, n)| format!("{name} {n:.1}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            Err(why) => ("-".to_owned(), why.clone()),
        };
        let _ = writeln!(
            out,
            "    {:<40} {:>8.2} {:>8.2} {:>8.1} {:>8}  {top}",
            c.label, c.per_call.voluntary, c.per_call.involuntary, c.per_call.cpu_us, total
        );
    }
    if let Some(why) = &s.costs_error {
        let _ = writeln!(out, "    not measured: {why}");
    }
    let _ = writeln!(out, "  targets (issue 12)");
    for v in verdicts(s, confinement) {
        let _ = writeln!(out, "    {:<4} {}: {}", v.mark(), v.target, v.observed);
    }
    out
}

pub fn json(s: &Section, confinement: Option<WarmAdded>) -> Value {
    let opt = |x: Option<Summary>| x.map_or(Value::Null, Summary::to_json);
    let floor = |r: &Result<Summary, String>| match r {
        Ok(x) => x.to_json(),
        Err(why) => json!({"failed": why}),
    };
    let fpm = fpm_seq(s);
    json!({
        "php_fpm": s.fpm_label,
        "php_fpm_children": s.fpm_children,
        "sequential": s.sequential.iter().map(|(label, q)| json!({
            "target": label,
            "latency": opt(q.summary()),
            "errors": q.errors.count,
            "first_error": q.errors.first,
            "ratio_p50_to_php_fpm": q.summary().zip(fpm).map(|(x, f)| round2(x.p50 / f.p50)),
            "ratio_p99_to_php_fpm": q.summary().zip(fpm).map(|(x, f)| round2(x.p99 / f.p99)),
        })).collect::<Vec<_>>(),
        "throughput": s.throughput.iter().map(|(label, t)| json!({
            "target": label,
            "clients": s.clients,
            "calls_per_s": round1(t.rate()),
            "calls": t.calls,
            "errors": t.errors.count,
            "first_error": t.errors.first,
            "latency": opt(throughput_summary(t)),
        })).collect::<Vec<_>>(),
        "floors": {
            "pipe_ping_pong": floor(&s.floors.pipe),
            "json_lines_echo_python": floor(&s.floors.json_lines),
            "json_lines_echo_python_polling": floor(&s.floors.json_lines_polling),
        },
        "per_call": s.costs.iter().map(|c| json!({
            "processes": c.label,
            "voluntary_ctxt_switches": round2(c.per_call.voluntary),
            "involuntary_ctxt_switches": round2(c.per_call.involuntary),
            "cpu_us": round1(c.per_call.cpu_us),
            "syscalls": match &c.syscalls {
                Ok(rows) => json!(rows.iter().map(|(n, k)| (n.clone(), json!(round2(*k))))
                    .collect::<serde_json::Map<String, Value>>()),
                Err(why) => json!({"skipped": why}),
            },
        })).collect::<Vec<_>>(),
        "per_call_error": s.costs_error,
        "rss": {
            "idle_kib": s.rss_idle_kib,
            "warm_kib": s.rss_warm.as_ref().ok().map(|(k, _)| k),
            "warm_executors": s.rss_warm.as_ref().ok().map(|(_, n)| n),
            "warm_error": s.rss_warm.as_ref().err(),
        },
        "targets": verdicts(s, confinement).into_iter().map(|v| json!({
            "target": v.target,
            "observed": v.observed,
            "verdict": v.mark(),
        })).collect::<Vec<_>>(),
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
