//! `invoke`, `logs`, `cancel` and `replay`: what each prints, how it exits, and the progress
//! shown on a terminal only.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::fake_daemon::fake_daemon;
use super::{describe, runwarm};

#[test]
fn invoke_prints_the_result_the_error_or_the_record() {
    let daemon = fake_daemon();
    let ok = runwarm(&["invoke", "ok", "-d", "{\"x\": 1}"], &daemon.socket);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "{\"answer\":42}\n",
        "{}",
        describe(&ok)
    );

    let shown = runwarm(&["invoke", "ok", "--show-output"], &daemon.socket);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "printed\n{\"answer\":42}\n"
    );

    let record = runwarm(&["invoke", "boom", "--json"], &daemon.socket);
    let record: Value = serde_json::from_slice(&record.stdout).unwrap();
    assert_eq!(record["error"]["code"], "E002");

    let boom = runwarm(&["invoke", "boom"], &daemon.socket);
    assert!(boom.stdout.is_empty());
    assert!(String::from_utf8_lossy(&boom.stderr).contains("error: E002 ValueError: went wrong"));

    let strict = runwarm(&["invoke", "strict"], &daemon.socket);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("  /name: must be a string"), "{stderr}");

    let busy = runwarm(&["invoke", "busy"], &daemon.socket);
    assert!(String::from_utf8_lossy(&busy.stderr).contains("\nhint: retry later"));

    let later = runwarm(&["invoke", "later", "--async"], &daemon.socket);
    assert_eq!(String::from_utf8_lossy(&later.stdout), "0193-async\n");
}

#[test]
fn logs_follow_the_event_stream_or_poll_and_exit_with_the_outcome() {
    let daemon = fake_daemon();
    let streamed = runwarm(&["logs", "-f", "e1"], &daemon.socket);
    assert_eq!(streamed.status.code(), Some(0), "{}", describe(&streamed));
    assert_eq!(String::from_utf8_lossy(&streamed.stdout), "hello\n");

    // No event stream for e2 (404): the client polls the record instead.
    let polled = runwarm(&["logs", "-f", "e2"], &daemon.socket);
    assert_eq!(polled.status.code(), Some(1), "{}", describe(&polled));
    assert_eq!(String::from_utf8_lossy(&polled.stdout), "printed\n");
    assert!(String::from_utf8_lossy(&polled.stderr).contains("E002 ValueError"));

    let plain = runwarm(&["logs", "e1"], &daemon.socket);
    assert_eq!(plain.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "hello\n");

    let unknown = runwarm(&["logs", "-f", "nope"], &daemon.socket);
    assert_eq!(unknown.status.code(), Some(4), "{}", describe(&unknown));
}

#[test]
fn cancel_and_replay_answer_like_invoke() {
    let daemon = fake_daemon();
    let out = runwarm(&["cancel", "e1"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "cancelled e1 (s)\n");
    let out = runwarm(&["cancel", "done"], &daemon.socket);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already ended (completed)"),
        "{}",
        describe(&out)
    );

    let out = runwarm(&["replay", "e1"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"again\"\n");
    let out = runwarm(&["replay", "e2"], &daemon.socket);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E002 ValueError"));
    let out = runwarm(&["replay", "nope"], &daemon.socket);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
}

#[test]
fn logs_tail_and_since_choose_lines_and_executions() {
    let daemon = fake_daemon();
    // One execution: the last line of each stream.
    let out = runwarm(&["logs", "e2", "--tail", "1"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "printed\n");

    // Recent executions of a script, oldest first, the one from yesterday left out.
    let out = runwarm(&["logs", "--script", "s", "--since", "1h"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(headers.len(), 2, "{stdout}");
    assert!(headers[0].starts_with("==> 0193-b s failed "), "{stdout}");
    assert!(
        headers[1].starts_with("==> 0193-c s completed "),
        "{stdout}"
    );
    assert!(stdout.ends_with("c1\nc2\n"), "{stdout}");
    assert!(!stdout.contains("old"), "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "b-err\n[warn] careful\n"
    );

    // The last two lines of everything: only the newest execution contributes.
    let out = runwarm(&["logs", "--tail", "2"], &daemon.socket);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.starts_with("==> 0193-c "), "{stdout}");

    // Nothing to choose by, or choices that do not fit together, are usage errors.
    for args in [
        &["logs"][..],
        &["logs", "e1", "--since", "1h"],
        &["logs", "-f", "--script", "s"],
        &["logs", "-f", "e1", "--tail", "3"],
        &["logs", "--since", "last tuesday"],
    ] {
        let out = runwarm(args, &daemon.socket);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", describe(&out));
    }
}

#[test]
fn a_slow_invocation_shows_nothing_on_a_pipe() {
    let daemon = fake_daemon();
    let out = runwarm(&["invoke", "slowok"], &daemon.socket);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"answer\":42}\n");
    assert!(out.stderr.is_empty(), "{}", describe(&out));
}

/// Runs `runwarm ARGS` on a pseudo-terminal with util-linux `script`, which is how a person
/// sees it; `None` when `script` is missing (a loud skip, a failure under CI).
fn on_a_terminal(args: &[&str], socket: &Path) -> Option<String> {
    let found = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let strict = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("RUNWARM_TEST_STRICT").is_ok_and(|v| v == "1");
        assert!(
            !strict,
            "util-linux `script` is needed for the terminal test"
        );
        eprintln!("*** SKIPPED: util-linux `script` is not installed ***");
        return None;
    }
    let command = std::iter::once(env!("CARGO_BIN_EXE_runwarm"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("RUNWARM_SOCKET", socket)
        .env("TERM", "xterm")
        .output()
        .expect("runs script");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_slow_invocation_spins_on_a_terminal_and_a_quick_one_does_not() {
    let daemon = fake_daemon();
    let Some(screen) = on_a_terminal(&["invoke", "slowok"], &daemon.socket) else {
        return;
    };
    assert!(screen.contains("running slowok…"), "{screen:?}");
    assert!(screen.contains(" s"), "the elapsed time shows: {screen:?}");
    assert!(screen.contains("\"answer\": 42"), "{screen:?}");
    let Some(screen) = on_a_terminal(&["invoke", "ok"], &daemon.socket) else {
        return;
    };
    assert!(!screen.contains("running ok"), "{screen:?}");
}
