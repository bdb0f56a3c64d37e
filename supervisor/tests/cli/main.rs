//! The built `runwarm` binary against a fake daemon that answers with canned records and
//! problems: help, usage errors, a missing daemon and the exit codes here; each group of
//! commands in a module of its own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness helpers: a failed setup should fail the test loudly"
)]

use std::path::Path;
use std::process::{Command, Output};

mod fake_daemon;
mod invoke;
mod listing;
mod offline;
mod register;

use fake_daemon::fake_daemon;

fn runwarm(args: &[&str], socket: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runwarm"))
        .args(args)
        .env("RUNWARM_SOCKET", socket)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("runs the runwarm binary")
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_documents_the_exit_codes() {
    let out = runwarm(&["invoke", "--help"], Path::new("/nonexistent.sock"));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0  success",
        "1  the script failed",
        "2  usage",
        "3  timeout",
        "4  rejected",
        "5  system error",
    ] {
        assert!(help.contains(line), "{line:?} missing from\n{help}");
    }
    let out = runwarm(&["--help"], Path::new("/nonexistent.sock"));
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("invoke"));
}

#[test]
fn bad_usage_exits_2() {
    let missing_socket = Path::new("/nonexistent/runwarm.sock");
    for args in [
        &["invoke"][..],
        &["frobnicate"],
        &["invoke", "hello", "--timeout", "soon"],
        &["invoke", "hello", "-d", "{not json"],
        &["invoke", "hello", "-d", "@/nonexistent/payload.json"],
        &["invoke", "Not A Name"],
    ] {
        let out = runwarm(args, missing_socket);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", describe(&out));
    }
}

#[test]
fn a_missing_daemon_exits_5_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    for args in [&["ls"][..], &["invoke", "hello"]] {
        let out = runwarm(args, &socket);
        assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error: cannot connect to runwarmd"),
            "{stderr}"
        );
        assert!(stderr.contains("\nhint: is runwarmd running?"), "{stderr}");
        assert!(stderr.contains(&socket.display().to_string()), "{stderr}");
    }
}

#[test]
fn invocation_outcomes_become_the_documented_exit_codes() {
    let daemon = fake_daemon();
    for (script, code) in [
        ("ok", 0),
        ("boom", 1),
        ("slow", 3),
        ("strict", 4),
        ("busy", 4),
        ("nope", 4),
        ("crash", 5),
        ("later", 0),
    ] {
        let out = runwarm(&["invoke", script], &daemon.socket);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{script}\n{}",
            describe(&out)
        );
    }
    let out = runwarm(&["info"], &daemon.socket);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
}
