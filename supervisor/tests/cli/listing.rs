//! The reading commands: `ls`, `runtimes`, `samples`, `show`, and `prewarm` and `rm`.

use std::path::Path;

use serde_json::Value;

use super::fake_daemon::fake_daemon;
use super::{describe, runwarm};

#[test]
fn ls_prints_a_table_and_api_passes_answers_through() {
    let daemon = fake_daemon();
    let ls = runwarm(&["ls"], &daemon.socket);
    assert_eq!(ls.status.code(), Some(0), "{}", describe(&ls));
    let table = String::from_utf8_lossy(&ls.stdout);
    assert!(
        table.lines().next().unwrap_or_default().starts_with("NAME"),
        "{table}"
    );
    assert!(
        table.contains("sha256:0123456789ab ") && table.contains("says ok"),
        "{table}"
    );

    let api = runwarm(&["api", "GET", "/v1/nothing"], &daemon.socket);
    assert_eq!(api.status.code(), Some(4));
    let body: Value = serde_json::from_slice(&api.stdout).unwrap();
    assert_eq!(body["status"], 404);
}

#[test]
fn runtimes_show_their_cache_and_samples_filter_by_runtime() {
    let daemon = fake_daemon();
    let out = runwarm(&["runtimes"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    for header in ["EXTENSIONS", "CACHE", "HITS/MISSES", "LAST PREPARE"] {
        assert!(lines[0].contains(header), "{header} missing from\n{table}");
    }
    assert!(
        lines[2].contains("3 entries, 412.3 MiB") && lines[2].contains("12/3, 1 failed"),
        "{table}"
    );
    assert!(lines[2].contains("14.2 s"), "{table}");
    let raw = runwarm(&["runtimes", "--json"], &daemon.socket);
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(raw[1]["cache"]["hits"], 12);

    let out = runwarm(&["samples", "--runtime", "python3"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("hello-python") && table.contains("port-check"),
        "{table}"
    );
    assert!(!table.contains("hello-node"), "{table}");
    let out = runwarm(&["samples", "--runtime", "ruby", "--json"], &daemon.socket);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n");
    let out = runwarm(&["samples", "--runtime", "ruby"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no samples of runtime ruby; there are samples of node, python3"),
        "{}",
        describe(&out)
    );
}

/// A printed table's rows, each split into its columns.
fn columns(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[test]
fn prewarm_prints_a_table_and_waits_for_the_executors() {
    let daemon = fake_daemon();
    let out = runwarm(&["prewarm", "ok", "broken", "--count", "2"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines = columns(&table);
    assert_eq!(
        lines[0],
        ["SCRIPT", "VERSION", "REQUESTED", "STARTED"],
        "{table}"
    );
    assert_eq!(lines[1], ["ok", "sha256:0123456789ab", "2", "2"], "{table}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fewer executors started than requested"),
        "{}",
        describe(&out)
    );

    // `broken` had a start fail while waiting: exit 1, with the columns that say so.
    let out = runwarm(&["prewarm", "ok", "broken", "--wait"], &daemon.socket);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines = columns(&table);
    assert_eq!(
        lines[0],
        [
            "SCRIPT",
            "VERSION",
            "REQUESTED",
            "STARTED",
            "WARM",
            "FAILED"
        ],
        "{table}"
    );
    assert_eq!(lines[1][4..], ["2", "0"], "{table}");
    assert_eq!(lines[2][4..], ["0", "1"], "{table}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("some executors failed to start"),
        "{}",
        describe(&out)
    );
    let out = runwarm(&["prewarm", "--json", "ok", "--wait"], &daemon.socket);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["scripts"][0]["warm"], 2, "{}", describe(&out));
    let out = runwarm(&["prewarm", "ok", "--timeout", "1s"], &daemon.socket);
    assert_eq!(out.status.code(), Some(2), "--timeout needs --wait");
}

#[test]
fn show_gathers_schema_limits_pool_tags_and_registrants() {
    let daemon = fake_daemon();
    let out = runwarm(&["show", "ok"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "parameters (JSON Schema):",
        "\"name\": {",
        "timeout 5.0 s, memory 256 MiB (runtime default)",
        "max 4, min_warm 0",
        "latest -> sha256:0123456789ab",
        "registered by  4321:4321",
        "REGISTERED BY",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from\n{text}");
    }
    let out = runwarm(&["show", "ok", "--json"], &daemon.socket);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["runtime"], "python3");
    assert_eq!(shown["manifest"]["limits"]["timeout_ms"], 5000);
    assert_eq!(shown["versions"][0]["registered_by"]["uid"], 4321);
    let out = runwarm(&["versions", "ok"], &daemon.socket);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("REGISTERED BY") && table.contains("4321:4321"),
        "{table}"
    );
}

#[test]
fn rm_is_disable_and_says_so() {
    let daemon = fake_daemon();
    for verb in ["rm", "disable"] {
        let out = runwarm(&[verb, "ok"], &daemon.socket);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.starts_with("disabled ok: new invocations are refused"),
            "{verb}: {said}"
        );
        assert!(!said.contains("removed"), "{said}");
    }
    let help = runwarm(&["--help"], Path::new("/nonexistent.sock"));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(!help.contains("Delete"), "{help}");
}
