//! The console page in a real browser: headless Chromium (Debian's `chromium`) driven by
//! `playwright-core` (installed by `.ci/toolchains` into /opt/runwarm-browser) against a real
//! daemon and a real `runwarm console` child. The driver is `console/browser.js`, written into
//! the test's temporary directory and run with `node`; it prints a JSON summary this test reads.
//! The screenshot stays in that temporary directory (its path is printed when the test fails).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use runwarm_e2e::{Daemon, Need, bin_dir, require};
use serde_json::{Value, json};

/// Where `.ci/toolchains` installs playwright-core.
const PLAYWRIGHT: &str = "/opt/runwarm-browser/node_modules/playwright-core";
/// The browser the driver launches.
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = include_str!("console/browser.js");
/// Bound on the whole browser session (a cold Chromium on a loaded 2-core machine is slow).
const DRIVER_BOUND: Duration = Duration::from_secs(240);

/// Prints lines one second apart, so the page shows output before the record, then a JSON
/// result.
const SCRIPT: &str = "for i in 1 2 3; do echo \"tick $i for $PARAM_NAME\"; sleep 1; done\n\
                      echo \"{\\\"greeting\\\": \\\"hello $PARAM_NAME\\\", \\\"count\\\": $PARAM_COUNT}\"\n";

/// A `runwarm console` child, killed by its pid when dropped.
struct ConsoleChild(Child);

impl Drop for ConsoleChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
async fn console_page_lists_invokes_and_streams_in_chromium() {
    if !require(&[
        Need::Program("bash"),
        Need::Program("node"),
        Need::Program("chromium"),
        Need::Path(CHROMIUM),
        Need::Path(PLAYWRIGHT),
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

    let mut child = Command::new(bin_dir().join("runwarm"))
        .arg("--socket")
        .arg(d.socket())
        .args(["console", "--port", "0", "--no-open"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start runwarm console");
    let stdout = child.stdout.take().unwrap();
    let console = ConsoleChild(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let url = url.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");

    let kept = KeepOnFailure(Some(
        tempfile::Builder::new()
            .prefix("runwarm-console-browser-")
            .tempdir()
            .unwrap(),
    ));
    let dir = kept.0.as_ref().unwrap();
    let driver = dir.path().join("browser.js");
    std::fs::write(&driver, DRIVER).unwrap();
    let screenshot = dir.path().join("console.png");
    let mut node = tokio::process::Command::new("node");
    node.arg(&driver)
        .arg(PLAYWRIGHT)
        .arg(&url)
        .arg(&screenshot)
        .arg("ticker")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a driver that hangs goes with its browser.
        .process_group(0)
        .kill_on_drop(true);
    let node = node.spawn().unwrap();
    let pgid = nix::unistd::Pid::from_raw(node.id().unwrap() as i32);
    let out = match tokio::time::timeout(DRIVER_BOUND, node.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            panic!(
                "the browser driver took over {DRIVER_BOUND:?}\n{}",
                d.report()
            );
        }
    };
    drop(console);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "driver: {}\n{stderr}\n{}",
        out.status,
        d.report()
    );
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let context = format!("{summary:#}\nscreenshot: {}", screenshot.display());

    assert_eq!(summary["pageErrors"], json!([]), "{context}");
    // The page closes the event stream itself on `end`; Chromium reports that as aborted.
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
    assert_eq!(summary["badResponses"], json!([]), "{context}");
    assert!(
        summary["console"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| !m.as_str().unwrap_or("").starts_with("error")),
        "the page logged errors (a CSP violation shows here): {context}"
    );
    assert_eq!(summary["landing"]["status"], 200, "{context}");
    assert!(
        summary["landing"]["url"]
            .as_str()
            .is_some_and(|u| !u.contains("token")),
        "the token leaves the address bar: {context}"
    );
    assert_eq!(summary["title"], "runwarm console", "{context}");
    assert_eq!(summary["listed"], json!(["ticker"]), "{context}");
    assert_eq!(summary["tagsCell"], "latest", "{context}");
    assert_eq!(summary["statusFilteredOut"], "0 script(s)", "{context}");
    assert_eq!(summary["picked"], "ticker", "{context}");
    assert_eq!(summary["focusAfterPick"], "payload", "{context}");
    assert_eq!(
        summary["recordWhenFirstLine"], "",
        "output shows live, before the record: {context}"
    );
    assert!(
        summary["statusWhenFirstLine"]
            .as_str()
            .is_some_and(|s| s.ends_with(": running")),
        "{context}"
    );
    let output = summary["output"].as_str().unwrap();
    for i in 1..=3 {
        assert!(output.contains(&format!("tick {i} for Grace")), "{context}");
    }
    let record: Value = serde_json::from_str(summary["recordText"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("the record is not JSON ({e}): {context}"));
    assert_eq!(record["state"], "completed", "{context}");
    assert_eq!(
        record["result"],
        json!({"greeting": "hello Grace", "count": 3}),
        "{context}"
    );
    assert!(
        summary["statusAtEnd"]
            .as_str()
            .is_some_and(|s| s.ends_with("completed")),
        "{context}"
    );
    assert_eq!(summary["statusIsError"], false, "{context}");
    assert!(
        summary["badPayloadStatus"]
            .as_str()
            .is_some_and(|s| s.contains("not JSON")),
        "{context}"
    );
    assert_eq!(summary["secondTab"]["status"], 401, "{context}");
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 0),
        "{context}"
    );
}

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
    let mut child = Command::new(bin_dir().join("runwarm"))
        .arg("--socket")
        .arg(d.socket())
        .args(["console", "--port", "0", "--no-open"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start runwarm console");
    let stdout = child.stdout.take().unwrap();
    let console = ConsoleChild(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("runwarm-editor-backend-")
        .tempdir()
        .unwrap();
    let driver = dir.path().join("editor_backend.js");
    std::fs::write(&driver, include_str!("console/editor_backend.js")).unwrap();
    let node = tokio::process::Command::new("node")
        .arg(&driver)
        .arg(PLAYWRIGHT)
        .arg(url.trim())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pgid = nix::unistd::Pid::from_raw(node.id().unwrap() as i32);
    let out = match tokio::time::timeout(DRIVER_BOUND, node.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            panic!(
                "the browser driver took over {DRIVER_BOUND:?}\n{}",
                d.report()
            );
        }
    };
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
