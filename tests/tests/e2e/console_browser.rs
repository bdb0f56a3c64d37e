//! The console in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` (installed by `.ci/toolchains` into /opt/runwarm-browser) against a real
//! daemon and a real `runwarm console` child. The driver is `console/browser.js`, written into
//! the test's temporary directory and run with `node`; it walks every view as a person would
//! and prints a JSON summary this test reads. Screenshots of each page are kept in
//! `target/console-screenshots/` (look at them).

use std::io::Write;
use std::time::Duration;

use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

use crate::console::client::{ConsoleChild, run_driver};

/// Where `.ci/toolchains` installs playwright-core.
const PLAYWRIGHT: &str = "/opt/runwarm-browser/node_modules/playwright-core";
/// The browser the driver launches.
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = include_str!("console/browser.js");
/// Bound on the whole browser session (a cold Chromium on a loaded 2-core machine is slow).
const DRIVER_BOUND: Duration = Duration::from_secs(420);

/// Prints lines one second apart, so the page shows output before the record, then a JSON
/// result.
const SCRIPT: &str = "for i in 1 2 3; do echo \"tick $i for $PARAM_NAME\"; sleep 1; done\n\
                      echo \"{\\\"greeting\\\": \\\"hello $PARAM_NAME\\\", \\\"count\\\": $PARAM_COUNT}\"\n";

/// The test's temporary directory, kept (with the screenshot) when the test fails.
struct KeepOnFailure(Option<tempfile::TempDir>);

impl Drop for KeepOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.0.take()
        {
            let _ = dir.keep();
        }
    }
}

#[tokio::test]
async fn console_walks_every_view_in_chromium() {
    if !require(&[
        Need::Program("bash"),
        Need::Program("node"),
        Need::Program("python3"),
        Need::Program("chromium"),
        Need::Path(CHROMIUM),
        Need::Path(PLAYWRIGHT),
        // The editor's checker, formatter and language server, as .ci/toolchains installs them.
        Need::Path("/opt/runwarm-lint/bin/ruff"),
        Need::Path("/opt/runwarm-lsp/node_modules/.bin/pyright-langserver"),
    ]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "ticker",
        json!({"runtime": "bash", "entry": "main.sh", "mode": "command"}),
        json!({"main.sh": SCRIPT}),
    )
    .await;
    // Opened in the editor only: Monaco's own TypeScript worker checks it in the page.
    d.register(
        "typed",
        json!({"runtime": "typescript", "entry": "main.ts"}),
        json!({"main.ts": "export async function handler(event: { name?: string }) {\n  return { greeting: `hello ${event.name ?? \"world\"}` };\n}\n"}),
    )
    .await;

    let console = ConsoleChild::start(&d);
    let url = console.url();

    let kept = KeepOnFailure(Some(
        tempfile::Builder::new()
            .prefix("runwarm-console-browser-")
            .tempdir()
            .unwrap(),
    ));
    let dir = kept.0.as_ref().unwrap();
    let driver = dir.path().join("browser.js");
    std::fs::write(&driver, DRIVER).unwrap();
    let shots = screenshot_dir();
    let out = run_driver(
        &d,
        dir.path(),
        &driver,
        &[
            PLAYWRIGHT.as_ref(),
            url.as_ref(),
            shots.as_ref(),
            "ticker".as_ref(),
        ],
        DRIVER_BOUND,
    )
    .await;
    drop(console);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "driver: {}\n{stderr}\nscreenshots: {}\n{}",
        out.status,
        shots.display(),
        d.report()
    );
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let context = format!("{summary:#}\nscreenshots: {}", shots.display());
    check_page_health(&summary, &context);
    check_scripts_and_editor(&summary, &context);
    check_run_history_versions(&summary, &context);
    check_pools_and_gateway(&summary, &context);
    for page in [
        "scripts",
        "editor",
        "run",
        "executions",
        "execution-detail",
        "versions",
        "pools",
    ] {
        assert!(
            std::fs::metadata(shots.join(format!("{page}.png"))).is_ok_and(|m| m.len() > 0),
            "screenshot {page}: {context}"
        );
    }
    // The figures the design note reports.
    let _ = writeln!(
        std::io::stderr(),
        "console: load {} ms, first render {} ms; screenshots in {}",
        summary["loadMs"],
        summary["firstRenderMs"],
        shots.display()
    );
}

/// `target/console-screenshots/`, emptied first.
fn screenshot_dir() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("console-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// No page error, no console error (a CSP violation shows there), no failed request but the
/// event streams the page closes itself, no answer of 400 or more.
fn check_page_health(summary: &Value, context: &str) {
    assert_eq!(summary["pageErrors"], json!([]), "{context}");
    let failed: Vec<&Value> = summary["failedRequests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !r.as_str()
                .is_some_and(|r| r.ends_with("/events: net::ERR_ABORTED"))
        })
        .collect();
    assert!(failed.is_empty(), "{context}");
    // The one refusal the driver provokes: a payload the script's schema rejects.
    let bad: Vec<&Value> = summary["badResponses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            !r.as_str().is_some_and(|r| {
                r.starts_with("POST ") && r.ends_with("/api/v1/scripts/greeter/invoke: 400")
            })
        })
        .collect();
    assert!(bad.is_empty(), "{context}");
    assert!(
        summary["console"].as_array().unwrap().iter().all(|m| {
            let m = m.as_str().unwrap_or("");
            // Chromium reports the provoked 400 itself as a failed resource.
            !m.starts_with("error")
                || m.starts_with(
                    "error: Failed to load resource: the server responded with a status of 400",
                ) && m.ends_with("/api/v1/scripts/greeter/invoke)")
        }),
        "the page logged errors: {context}"
    );
    assert_eq!(summary["landing"]["status"], 200, "{context}");
    assert!(
        summary["landing"]["url"]
            .as_str()
            .is_some_and(|u| !u.contains("token")),
        "the token leaves the address bar: {context}"
    );
    assert_eq!(summary["title"], "runwarm console", "{context}");
    assert!(
        summary["firstRenderMs"]
            .as_f64()
            .is_some_and(|ms| ms < 1000.0),
        "first render under 1 s: {context}"
    );
    // Monaco is not part of the first load.
    let first: Vec<&str> = summary["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        first.contains(&"/app.js") && !first.iter().any(|n| n.starts_with("/monaco")),
        "{context}"
    );
}

fn check_scripts_and_editor(summary: &Value, context: &str) {
    assert_eq!(summary["disabledState"], "disabled", "{context}");
    assert_eq!(
        summary["editorFiles"],
        json!(["runwarm.json (manifest)", "main.py"]),
        "{context}"
    );
    // The daemon's checkers: the syntax error typed on line 11 (the file's last) is marked
    // there, and goes when the line does.
    assert_eq!(summary["checkAvailable"]["check"], true, "{context}");
    assert_eq!(summary["diagnostic"]["line"], "11", "{context}");
    assert!(
        summary["diagnostic"]["markers"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{context}"
    );
    assert_eq!(summary["diagnosticCleared"], true, "{context}");
    // Completions from pyright through the console's WebSocket.
    assert!(
        summary["lspNote"]
            .as_str()
            .is_some_and(|n| n.contains("connected")),
        "{context}"
    );
    assert_eq!(summary["completion"], "argv", "{context}");
    // Format through ruff.
    assert_eq!(summary["checkAvailable"]["format"], true, "{context}");
    assert!(
        summary["formatStatus"]
            .as_str()
            .is_some_and(|s| s.contains("formatted")),
        "{context}"
    );
    assert!(
        summary["manifestMarkers"].as_u64().is_some_and(|n| n > 0),
        "{context}"
    );
    // The schema's complaint about the unknown field is in the Diagnostics list too.
    assert!(
        summary["manifestProblem"]
            .as_str()
            .is_some_and(|t| t.contains("bogus") && t.contains("(schema)")),
        "{context}"
    );
    assert!(
        summary["typescriptMarkers"].as_u64().is_some_and(|n| n > 0),
        "Monaco's TypeScript worker runs under the policy: {context}"
    );
    assert_eq!(summary["register"]["prepare"], "done", "{context}");
    assert_eq!(summary["register"]["problem"], json!([]), "{context}");
}

fn check_run_history_versions(summary: &Value, context: &str) {
    assert_eq!(
        summary["formFields"],
        json!(["name *", "times"]),
        "{context}"
    );
    assert_eq!(summary["defaultName"], "world", "{context}");
    assert_eq!(
        summary["firstLine"]["result"], "",
        "output shows live, before the result: {context}"
    );
    assert_eq!(summary["run"]["state"], "completed", "{context}");
    let result: Value = serde_json::from_str(summary["run"]["result"].as_str().unwrap_or("null"))
        .unwrap_or(Value::Null);
    assert_eq!(result, json!({"greeting": "hello Grace"}), "{context}");
    let output = summary["run"]["output"].as_str().unwrap_or_default();
    for i in 1..=3 {
        assert!(output.contains(&format!("hello Grace ({i})")), "{context}");
    }
    // stderr keeps its colour (the escape codes become a class), the log record shows too.
    assert_eq!(
        summary["run"]["coloured"],
        json!(["greeted Grace"]),
        "{context}"
    );
    assert!(
        summary["run"]["log"][0]
            .as_str()
            .is_some_and(|l| l.contains("greeted") && l.contains("Grace")),
        "{context}"
    );
    let streams = summary["run"]["streams"].as_array().unwrap();
    for kind in ["stdout", "stderr", "log"] {
        assert!(streams.iter().any(|s| s == kind), "{kind}: {context}");
    }
    assert!(
        summary["badParamStatus"]
            .as_str()
            .is_some_and(|s| s.starts_with("times")),
        "{context}"
    );
    let history = summary["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|row| row[1] == "greeter" && row[2] == "completed"),
        "{context}"
    );
    let refusal = summary["refusal"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("400 E006") && refusal.contains("/name") && refusal.contains("string"),
        "the refusal with its code and violation: {context}"
    );
    assert!(
        summary["syncResult"]
            .as_str()
            .is_some_and(|r| r.contains("hello Sync")),
        "{context}"
    );
    assert_eq!(summary["replayState"], "completed", "{context}");
    assert_eq!(summary["cancelled"], "cancelled", "{context}");
    assert!(
        !summary["cancelledOutput"]
            .as_str()
            .unwrap_or_default()
            .contains("tick 3"),
        "cancelled before its last line: {context}"
    );
    assert_eq!(summary["detailState"], "completed", "{context}");
    assert_eq!(summary["detailCancelDisabled"], true, "{context}");
    assert_eq!(summary["versionRows"], 2, "{context}");
    assert_eq!(summary["diffFile"], "main.py", "{context}");
    let confirm = summary["confirm"].as_str().unwrap_or_default();
    assert!(
        confirm.contains("Move latest") && confirm.contains("main.py (changed)"),
        "{context}"
    );
    assert_eq!(
        summary["latestAfter"], summary["register"]["version"],
        "latest rolled back to the first version: {context}"
    );
}

fn check_pools_and_gateway(summary: &Value, context: &str) {
    assert_eq!(
        summary["paging"]["back"], summary["paging"]["top"],
        "{context}"
    );
    assert_ne!(
        summary["paging"]["second"], summary["paging"]["top"],
        "{context}"
    );
    assert!(
        summary["paging"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("page 2:")),
        "{context}"
    );
    assert_eq!(summary["plots"], 3, "{context}");
    assert_eq!(
        summary["legends"].as_array().map(Vec::len),
        Some(2),
        "{context}"
    );
    assert!(
        summary["layers"].as_u64().is_some_and(|n| n > 3),
        "{context}"
    );
    assert_eq!(summary["focusOnLoad"], "h2: Scripts", "{context}");
    assert_eq!(summary["firstTab"], "input: Search", "{context}");
    assert_eq!(summary["backTab"], "a: Pools & health", "{context}");
    assert_eq!(summary["secondTab"]["status"], 401, "{context}");
    assert_eq!(summary["noCookie"], 401, "{context}");
    assert_eq!(summary["foreignHost"], 403, "{context}");
    assert_eq!(summary["crossOrigin"], 403, "{context}");
    assert_eq!(summary["sameOriginWithCookie"], 200, "{context}");
}
