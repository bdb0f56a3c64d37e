//! The section as the report shows it: the table's cells, the text with its failures and
//! targets, and the JSON. Kept apart from the measuring, which knows nothing of layout.

use std::fmt::Write as _;
use std::time::Duration;

use comfy_table::{Table, presets};
use serde_json::{Value, json};

use super::targets::targets;
use super::{ColdFigures, POLL, Ready, Section, StepFigures, WARM_BLOCK};
use crate::measure::{Summary, round1};
use crate::scenarios::Errors;

/// Milliseconds as people read a wait: `850 ms`, `12.40 s`.
fn wait(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn step_ms(ms: f64) -> String {
    wait(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

fn ready_cell(ready: Option<&Ready>, dependency: Option<&str>) -> String {
    let Some(r) = ready else {
        return "-".to_owned();
    };
    let mut lines = vec![wait(r.wall)];
    if r.answered.is_none() {
        lines.push("no prepare".to_owned());
    }
    if let Some(t) = r.toolchain {
        lines.push(if t.cached {
            "toolchain cached".to_owned()
        } else {
            format!("toolchain {}", step_ms(t.ms))
        });
    }
    if let Some(d) = r.dependencies {
        lines.push(if d.cached {
            "deps cached".to_owned()
        } else {
            format!(
                "deps {}{}",
                step_ms(d.ms),
                dependency.map(|d| format!(" ({d})")).unwrap_or_default()
            )
        });
    }
    if let Some(b) = r.build {
        lines.push(if b.cached {
            "build cached".to_owned()
        } else {
            format!("build {}", step_ms(b.ms))
        });
    }
    lines.join("\n")
}

fn cold_cell(cold: Option<&ColdFigures>) -> String {
    let Some(c) = cold else {
        return "-".to_owned();
    };
    let mut lines = Vec::new();
    if let Some(s) = c.cold_start {
        lines.push(format!("{:.1} ms", s.p50 / 1000.0));
    }
    if let Some(s) = c.client {
        lines.push(format!("client {:.1} ms", s.p50 / 1000.0));
    }
    lines.push(format!("(median of {})", c.runs));
    lines.join("\n")
}

/// A ratio with a decimal while it is small (command-mode runtimes come out near 1).
fn ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.0}×")
    }
}

fn pair_us(s: Option<Summary>) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| format!("{:.0} / {:.0}", s.p50, s.p99),
    )
}

/// The section as text: the table, what failed, and the targets.
pub fn text(section: &Section) -> String {
    let mut out = String::new();
    let o = &section.options;
    let _ = writeln!(
        out,
        "\nRuntimes: a hello handler per language, in a runwarmd of its own (sandbox.mode = {}, {})",
        section.sandbox_mode,
        section
            .daemon_version
            .as_deref()
            .unwrap_or("version unknown")
    );
    let _ = writeln!(out, "  daemon: {}", section.daemon);
    let _ = writeln!(
        out,
        "  ready = POST until the version endpoint (polled every {} ms) says ready; cold = \
         timings.cold_start_ms of {} calls on a version with pool.max_requests = 1; warm = {} \
         calls after {} warm-up, in blocks of {WARM_BLOCK} per runtime in turn; fresh = the same \
         handler as a new process per call outside runwarm, median of {}",
        POLL.as_millis(),
        o.cold.max(1),
        o.calls,
        o.warmup,
        o.fresh.max(1)
    );
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "runtime",
        "first registration\n(cold deps) → ready",
        "code-only change\n→ ready",
        "cold start\n(cold_start_ms)",
        "warm client\np50 / p99 µs",
        "warm run_ms\np50 / p99 µs",
        "fresh process\nmedian",
        "fresh /\nwarm p50",
    ]);
    for row in &section.rows {
        let runtime = format!(
            "{}{}\n{}{}",
            row.spec.runtime,
            if row.failures.is_empty() {
                ""
            } else {
                " FAILED"
            },
            row.version.as_deref().unwrap_or("?"),
            if row.spec.mode == "command" {
                "\ncommand mode"
            } else {
                ""
            }
        );
        let warm = row.warm.as_ref();
        let fresh = match &row.fresh {
            Some(Ok(s)) => format!("{:.1} ms", s.p50 / 1000.0),
            Some(Err(_)) => "failed".to_owned(),
            None => "-".to_owned(),
        };
        table.add_row(vec![
            runtime,
            ready_cell(row.first.as_ref(), row.spec.dependency),
            ready_cell(row.code_only.as_ref(), None),
            cold_cell(row.cold.as_ref()),
            pair_us(warm.and_then(|w| w.client)),
            pair_us(warm.and_then(|w| w.run)),
            fresh,
            row.ratio().map_or_else(|| "-".to_owned(), ratio),
        ]);
    }
    for line in table.to_string().lines() {
        let _ = writeln!(out, "  {}", line.trim_end());
    }
    let anchors: Vec<String> = section
        .rows
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{} = {}",
                r.spec.runtime,
                r.anchor_label.as_deref()?
            ))
        })
        .collect();
    if !anchors.is_empty() {
        let _ = writeln!(out, "  fresh process: {}", anchors.join("; "));
    }
    for row in &section.rows {
        for failure in &row.failures {
            let _ = writeln!(out, "  {} FAILED: {failure}", row.spec.runtime);
        }
        if let Some(Err(why)) = &row.fresh {
            let _ = writeln!(out, "  {} fresh process: {why}", row.spec.runtime);
        }
    }
    for (name, why) in &section.skipped {
        let _ = writeln!(out, "  {name} skipped: {why}");
    }
    let _ = writeln!(out, "\nTargets (runtimes)");
    for t in targets(&section.rows) {
        let _ = writeln!(out, "  {:<4}  {}: {}", t.mark(), t.target, t.observed);
    }
    if let Some(s) = &section.stopped {
        let _ = writeln!(
            out,
            "\nruntimes daemon stopped with SIGTERM: {}",
            s.describe()
        );
    }
    out
}

fn ready_json(r: Option<&Ready>) -> Value {
    let Some(r) = r else { return Value::Null };
    let step = |s: Option<StepFigures>| {
        s.map_or(
            Value::Null,
            |s| json!({"cached": s.cached, "duration_ms": round1(s.ms)}),
        )
    };
    json!({
        "version": r.version,
        "ready_ms": round1(r.wall.as_secs_f64() * 1000.0),
        "answered": r.answered,
        "prepare_ms": r.prepare_ms.map(round1),
        "toolchain": step(r.toolchain),
        "dependencies": step(r.dependencies),
        "build": step(r.build),
    })
}

/// The section as JSON, latencies in microseconds.
pub fn json(section: &Section) -> Value {
    let opt = |s: Option<Summary>| s.map_or(Value::Null, Summary::to_json);
    let errors = |e: &Errors| json!({"count": e.count, "first": e.first});
    let rows: Vec<Value> = section
        .rows
        .iter()
        .map(|r| {
            json!({
                "runtime": r.spec.runtime,
                "mode": r.spec.mode,
                "version": r.version,
                "dependency": r.spec.dependency,
                "first_registration": ready_json(r.first.as_ref()),
                "code_only_change": ready_json(r.code_only.as_ref()),
                "cold": r.cold.as_ref().map(|c| json!({
                    "version": c.version,
                    "runs": c.runs,
                    "cold_start": opt(c.cold_start),
                    "client": opt(c.client),
                    "errors": errors(&c.errors),
                })),
                "warm": r.warm.as_ref().map(|w| json!({
                    "calls": w.calls,
                    "client": opt(w.client),
                    "run": opt(w.run),
                    "executors": w.executors,
                    "errors": errors(&w.errors),
                })),
                "fresh_process": match &r.fresh {
                    Some(Ok(s)) => json!({"anchor": r.anchor_label, "summary": s.to_json()}),
                    Some(Err(why)) => json!({"anchor": r.anchor_label, "failed": why}),
                    None => Value::Null,
                },
                "ratio": r.ratio().map(round1),
                "failures": r.failures,
            })
        })
        .collect();
    let o = &section.options;
    json!({
        "daemon": section.daemon,
        "daemon_version": section.daemon_version,
        "sandbox_mode": section.sandbox_mode,
        "settings": {
            "warm_calls": o.calls,
            "warmup": o.warmup,
            "cold_runs": o.cold.max(1),
            "fresh_runs": o.fresh.max(1),
            "poll_ms": POLL.as_millis(),
        },
        "rows": rows,
        "skipped": section.skipped.iter().map(|(name, why)| json!({"runtime": name, "why": why})).collect::<Vec<_>>(),
        "targets": targets(&section.rows).into_iter().map(|t| json!({
            "target": t.target,
            "measured": t.observed,
            "met": t.pass,
        })).collect::<Vec<_>>(),
    })
}
