//! The targets, computed from this run's figures: figures, not assertions, so a miss is
//! reported beside the table rather than failing the run.

use std::time::Duration;

use super::Row;
use crate::verdict::Verdict;

/// Targets of the issue; figures, not assertions.
const TARGET_PY_CODE_ONLY: Duration = Duration::from_secs(1);
const TARGET_WARM_FACTOR: f64 = 2.0;
const TARGET_COLD_OVER_BARE_MS: f64 = 10.0;
const TARGET_JAVA_WARM_P50_US: f64 = 1000.0;

pub(super) fn targets(rows: &[Row]) -> Vec<Verdict> {
    let find = |name: &str| rows.iter().find(|r| r.spec.runtime == name);
    let mut out = Vec::new();

    let what = format!(
        "python code-only change ready ≤ {} s",
        TARGET_PY_CODE_ONLY.as_secs()
    );
    out.push(match find("python3").and_then(|r| r.code_only.as_ref()) {
        Some(ready) => {
            let cached = ready.dependencies.is_some_and(|d| d.cached);
            Verdict {
                target: what,
                observed: format!(
                    "{:.3} s{}",
                    ready.wall.as_secs_f64(),
                    if cached {
                        ""
                    } else {
                        " (dependencies not cached)"
                    }
                ),
                pass: Some(ready.wall <= TARGET_PY_CODE_ONLY && cached),
            }
        }
        None => not_measured(what, "python3"),
    });

    let what = format!(
        "every handler runtime's warm p50 within {TARGET_WARM_FACTOR}× of python3's warm p50"
    );
    out.push(match find("python3").and_then(Row::warm_p50) {
        Some(reference) => {
            let mut parts = vec![format!("python3 {reference:.0} µs")];
            let mut met = true;
            for row in rows
                .iter()
                .filter(|r| r.spec.mode == "handler" && r.spec.runtime != "python3")
            {
                match row.warm_p50() {
                    Some(p50) => {
                        let factor = p50 / reference.max(f64::EPSILON);
                        met &= factor <= TARGET_WARM_FACTOR;
                        parts.push(format!("{} {factor:.2}×", row.spec.runtime));
                    }
                    None => {
                        met = false;
                        parts.push(format!("{} not measured", row.spec.runtime));
                    }
                }
            }
            Verdict {
                target: what,
                observed: parts.join(", "),
                pass: Some(met),
            }
        }
        None => not_measured(what, "python3"),
    });

    for name in ["go", "c", "cpp"] {
        let what =
            format!("{name} cold start ≤ {TARGET_COLD_OVER_BARE_MS} ms over the bare process");
        out.push(match find(name).and_then(Row::cold_over_bare_ms) {
            Some((cold, bare)) => Verdict {
                target: what,
                observed: format!(
                    "cold_start {cold:.1} ms - fresh process {bare:.1} ms = {:+.1} ms",
                    cold - bare
                ),
                pass: Some(cold - bare <= TARGET_COLD_OVER_BARE_MS),
            },
            None => not_measured(what, name),
        });
    }

    let what = format!("java warm p50 ≤ {} ms", TARGET_JAVA_WARM_P50_US / 1000.0);
    out.push(match find("java").and_then(Row::warm_p50) {
        Some(p50) => Verdict {
            target: what,
            observed: format!("{:.3} ms", p50 / 1000.0),
            pass: Some(p50 <= TARGET_JAVA_WARM_P50_US),
        },
        None => not_measured(what, "java"),
    });
    out
}

fn not_measured(what: String, runtime: &str) -> Verdict {
    Verdict {
        target: what,
        observed: format!("{runtime} not measured in this run"),
        pass: None,
    }
}
