//! Every language runtime end to end, prepare included: registration prepares the version
//! (dependencies from the real registries, the build with the real compiler), two invocations
//! give the right results on one warm executor, a script error names its source line, and a
//! compile error fails the prepare and every invocation with the compiler's message.

mod csharp;
mod go;
mod java;
mod native;
mod node;
mod python;
mod ruby_php;

use std::fmt::Write as _;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, PREPARE_BOUND, require};
use serde_json::{Value, json};

/// The manifest of a script of `runtime` whose entry is `entry`.
fn manifest(runtime: &str, entry: &str) -> Value {
    json!({"runtime": runtime, "entry": entry})
}

/// The registration answer's `prepare` and the version.
async fn register(d: &Daemon, name: &str, manifest: Value, files: Value) -> (String, Value) {
    let body = d.register_answer(name, manifest, files).await;
    let version = body["version"].as_str().expect("version").to_owned();
    (version, body)
}

/// The version's prepare (`null` for a runtime without a prepare section).
async fn prepare_status(d: &Daemon, name: &str, version: &str) -> Value {
    d.prepare_status(name, version).await
}

/// Waits until the version's prepare is `ready` or `failed`.
async fn wait_settled(d: &Daemon, name: &str, version: &str) -> Value {
    d.wait_prepare(name, version, &["ready", "failed"], PREPARE_BOUND)
        .await
}

/// Polls the version until its prepare is ready and returns its status; fails if the prepare
/// failed or is not done within [`PREPARE_BOUND`], with the last status.
async fn wait_prepared(d: &Daemon, name: &str, version: &str) -> Value {
    let p = wait_settled(d, name, version).await;
    assert_eq!(
        p["state"],
        "ready",
        "{name} {version}: prepare failed: {p:#}\n{}",
        d.report()
    );
    p
}

/// Registers a version and waits until it is prepared; returns the version and its prepare
/// status (`null` for a runtime without prepare, which is checked to show none).
async fn deploy(d: &Daemon, name: &str, manifest: Value, files: Value) -> (String, Value) {
    let (version, answer) = register(d, name, manifest, files).await;
    match answer.get("prepare") {
        None => {
            let p = prepare_status(d, name, &version).await;
            assert_eq!(p, Value::Null, "no prepare section, yet {p:#}");
            (version, Value::Null)
        }
        Some(state) => {
            assert!(
                ["pending", "running", "ready"].contains(&state.as_str().unwrap_or("")),
                "registration answered {answer}"
            );
            let p = wait_prepared(d, name, &version).await;
            (version, p)
        }
    }
}

/// Registers a version whose prepare must fail; checks that the status and an invocation
/// (200, `failed`, E001 `PrepareFailed`) both carry every one of `needles`. Returns the status.
async fn expect_prepare_failure(
    d: &Daemon,
    name: &str,
    manifest: Value,
    files: Value,
    needles: &[&str],
) -> Value {
    let (version, answer) = register(d, name, manifest, files).await;
    assert!(
        ["pending", "running", "failed"].contains(&answer["prepare"].as_str().unwrap_or("")),
        "registration answered {answer}"
    );
    let p = wait_settled(d, name, &version).await;
    assert_eq!(
        p["state"], "failed",
        "{name}: the prepare should fail: {p:#}"
    );
    let error = p["error"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(
            error.contains(needle),
            "{name}: prepare error lacks {needle:?}: {p:#}"
        );
    }
    let (status, rec) = d.invoke(name, "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E001", "{rec:#}");
    assert_eq!(rec["error"]["kind"], "PrepareFailed", "{rec:#}");
    let message = rec["error"]["message"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(
            message.contains(needle),
            "{name}: the invocation's error lacks {needle:?}: {rec:#}"
        );
    }
    eprintln!(
        "timing {name}: failed prepare {} ms; error: {}",
        ms(&p["duration_ms"]),
        error.lines().take(6).collect::<Vec<_>>().join(" | ")
    );
    p
}

/// Invokes twice; the first starts an executor, the second is served warm by the same one.
/// Returns both records.
async fn two_calls(d: &Daemon, name: &str, first: Value, second: Value) -> (Value, Value) {
    let a = d.invoke_ok(name, first).await;
    let b = d.invoke_ok(name, second).await;
    assert_eq!(a["cold"], true, "{a:#}");
    assert_eq!(b["cold"], false, "the second call was not warm: {b:#}");
    assert!(a["executor"]["pid"].is_u64(), "{a:#}");
    assert_eq!(
        a["executor"]["pid"], b["executor"]["pid"],
        "not served by the same executor: {a:#}\n{b:#}"
    );
    assert_eq!(b["executor"]["invocations"], 2, "{b:#}");
    (a, b)
}

/// Invokes expecting the script itself to fail: 200, `failed`, E002. Returns the record.
async fn script_error(d: &Daemon, name: &str, payload: Value) -> Value {
    let (status, rec) = d.invoke(name, "", payload).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E002", "{rec:#}");
    rec
}

/// Whether the error's trace (or message) has `needle`.
fn assert_trace_has(rec: &Value, needle: &str) {
    let trace = rec["error"]["trace"].as_str().unwrap_or_default();
    let message = rec["error"]["message"].as_str().unwrap_or_default();
    assert!(
        trace.contains(needle) || message.contains(needle),
        "the error does not name {needle:?}: {rec:#}"
    );
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.0}"))
}

/// Prints what the prepare and the two calls took (shown with `--nocapture`).
fn timings(runtime: &str, prepare: &Value, first: &Value, warm: &Value) {
    let mut line = format!(
        "timing {runtime}: prepare {} ms",
        ms(&prepare["duration_ms"])
    );
    for step in ["dependencies", "build"] {
        let s = &prepare[step];
        if s.is_object() {
            let _ = write!(
                line,
                ", {step} {} ms{}",
                ms(&s["duration_ms"]),
                if s["cached"] == true { " (cached)" } else { "" }
            );
        }
    }
    let _ = write!(
        line,
        "; first call {} ms (cold start {} ms), warm call {} ms",
        ms(&first["timings"]["total_ms"]),
        ms(&first["timings"]["cold_start_ms"]),
        ms(&warm["timings"]["total_ms"]),
    );
    eprintln!("{line}");
}

/// The runtime's prepare cache figures from `GET /v1/runtimes`.
async fn cache_figures(d: &Daemon, runtime: &str) -> Value {
    let (status, body) = d.call(Method::GET, "/v1/runtimes", None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("a list of runtimes")
        .iter()
        .find(|r| r["name"] == runtime)
        .unwrap_or_else(|| panic!("no runtime {runtime} in {body:#}"))["cache"]
        .clone()
}

async fn daemon() -> Daemon {
    Daemon::builder().without_samples().start().await
}
