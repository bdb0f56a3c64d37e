//! `register`: following the version's prepare to its end, and a single file's runtime.

use std::path::PathBuf;

use serde_json::Value;

use super::fake_daemon::fake_daemon;
use super::{describe, runwarm};

/// A single script file named `name` in a fresh folder.
fn script_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, "def handler(e, c):\n    return 1\n").unwrap();
    (dir, file)
}

#[test]
fn register_waits_for_the_prepare_and_reports_it() {
    let daemon = fake_daemon();
    let (_dir, file) = script_file("waits.py");
    let out = runwarm(&["register", file.to_str().unwrap()], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "registered waits sha256:waits (new), prepared in 2.5 s (dependencies cached)\n"
    );
    // Not a terminal: one line per step, then how it ended.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "preparing: dependencies…\npreparing: build…\nprepared in 2.5 s\n"
    );
}

#[test]
fn register_json_carries_the_final_prepare_and_no_wait_the_first() {
    let daemon = fake_daemon();
    let (_dir, file) = script_file("waits.py");
    let out = runwarm(
        &["register", "--json", file.to_str().unwrap()],
        &daemon.socket,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["name"], "waits");
    assert_eq!(answer["prepare"]["state"], "ready");
    assert_eq!(answer["prepare"]["dependencies"]["cached"], true);

    let out = runwarm(
        &["register", "--no-wait", file.to_str().unwrap()],
        &daemon.socket,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "registered waits sha256:waits (new), prepare pending\n"
    );
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let out = runwarm(
        &["register", "--no-wait", "--json", file.to_str().unwrap()],
        &daemon.socket,
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["prepare"], "pending");
}

#[test]
fn a_failed_prepare_exits_1_with_the_daemons_summary() {
    let daemon = fake_daemon();
    let (_dir, file) = script_file("breaks.py");
    let out = runwarm(&["register", file.to_str().unwrap()], &daemon.socket);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error: registered breaks sha256:breaks, but preparing it failed after 0.9 s\n  the \
             dependencies step exited with status 1\n  no-such-package-xyz: not found\n"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("\nhint: "), "{stderr}");
}

#[test]
fn a_prepare_past_the_timeout_exits_3() {
    let daemon = fake_daemon();
    let (_dir, file) = script_file("hangs.py");
    let out = runwarm(
        &["register", "--timeout", "500ms", file.to_str().unwrap()],
        &daemon.socket,
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "error: not prepared within 500ms (its dependencies step was running); runwarmd goes \
             on preparing it"
        ),
        "{stderr}"
    );
    let both = runwarm(
        &[
            "register",
            "--timeout",
            "1s",
            "--no-wait",
            file.to_str().unwrap(),
        ],
        &daemon.socket,
    );
    assert_eq!(both.status.code(), Some(2), "{}", describe(&both));
}

#[test]
fn a_single_file_gets_its_runtime_from_its_extension() {
    let daemon = fake_daemon();
    for (file_name, runtime) in [("plain.py", "python3"), ("check.sh", "bash")] {
        let (_dir, file) = script_file(file_name);
        let out = runwarm(
            &["register", "--json", file.to_str().unwrap()],
            &daemon.socket,
        );
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["runtime"], runtime, "{file_name}");
    }
    // --runtime still wins over the extension.
    let (_dir, file) = script_file("plain.py");
    let out = runwarm(
        &[
            "register",
            "--json",
            "--runtime",
            "bash",
            file.to_str().unwrap(),
        ],
        &daemon.socket,
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["runtime"], "bash", "{}", describe(&out));

    let (_dir, file) = script_file("notes.txt");
    let out = runwarm(&["register", file.to_str().unwrap()], &daemon.socket);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("known extensions: .sh .bash (bash), .py (python3)"),
        "{stderr}"
    );
}
