//! The editor's back end as the console's own page reaches it, in headless Chromium: a page
//! of the console fetches `/api/v1/check` and `/api/v1/format` and opens `/lsp/python` as a
//! WebSocket (under the console's CSP, with the Origin Chromium sends). Driver:
//! `console/editor_backend.js`. (The whole app is walked by `console_browser.rs`.)

use std::time::Duration;

use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

use crate::console::client::{ConsoleChild, run_driver};

/// Where `.ci/toolchains` installs playwright-core.
const PLAYWRIGHT: &str = "/opt/runwarm-browser/node_modules/playwright-core";
/// The browser the driver launches.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound on the whole browser session (a cold Chromium on a loaded 2-core machine is slow).
const DRIVER_BOUND: Duration = Duration::from_secs(240);

/// The editor's back end as the console's own page reaches it: `/api/v1/check` and
/// `/api/v1/format` through the console, and `/lsp/python` as a WebSocket opened by the page
/// (under the console's CSP, with the Origin Chromium sends). Driver: `console/editor_backend.js`.
#[tokio::test]
async fn the_console_page_reaches_check_format_and_the_language_server() {
    const PYRIGHT: &str = "/opt/runwarm-lsp/node_modules/.bin/pyright-langserver";
    if !require(&[
        Need::Program("node"),
        Need::Path(CHROMIUM),
        Need::Path(PLAYWRIGHT),
        Need::Path(PYRIGHT),
        Need::Path("/opt/runwarm-lint/bin/ruff"),
    ]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let console = ConsoleChild::start(&d);
    let url = console.url();
    let dir = tempfile::Builder::new()
        .prefix("runwarm-editor-backend-")
        .tempdir()
        .unwrap();
    let driver = dir.path().join("editor_backend.js");
    std::fs::write(&driver, include_str!("console/editor_backend.js")).unwrap();
    let out = run_driver(
        &d,
        dir.path(),
        &driver,
        &[PLAYWRIGHT.as_ref(), url.as_ref()],
        DRIVER_BOUND,
    )
    .await;
    drop(console);
    assert!(
        out.status.success(),
        "driver: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let context = format!("{s:#}\n{}", d.report());
    assert_eq!(s["pageErrors"], json!([]), "{context}");
    assert!(
        s["console"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| !m.as_str().unwrap_or("").starts_with("error")),
        "the page logged errors (a CSP violation shows here): {context}"
    );
    assert_eq!(s["check"]["status"], 200, "{context}");
    let syntax = &s["check"]["body"]["diagnostics"][0];
    assert_eq!(
        (&syntax["line"], &syntax["column"]),
        (&json!(3), &json!(7)),
        "{context}"
    );
    assert_eq!(s["format"]["status"], 200, "{context}");
    assert_eq!(s["format"]["body"]["content"], "x = (1, 2)\n", "{context}");
    assert_eq!(s["lsp"]["opened"], true, "{context}");
    assert_eq!(s["lsp"]["initialized"], true, "{context}");
    assert_eq!(s["lsp"]["end"], "diagnostics", "{context}");
    assert!(
        s["lsp"]["diagnostic"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("undefined_name")),
        "{context}"
    );
}
