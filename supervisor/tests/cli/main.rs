//! The built `runwarm` binary: help, usage errors, a missing daemon, and exit codes against a
//! fake daemon that answers with canned records and problems.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness helpers: a failed setup should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod fake_daemon;

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

#[test]
fn init_completions_and_man_need_no_daemon() {
    let nowhere = Path::new("/nonexistent/runwarm.sock");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("greet");
    let out = runwarm(
        &[
            "init",
            "--runtime",
            "go",
            "greet",
            "--dir",
            target.to_str().unwrap(),
        ],
        nowhere,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(runwarm.toml, main.go) for go"));
    let main = std::fs::read_to_string(target.join("main.go")).unwrap();
    assert!(main.contains("runwarm.Start(handler)"), "{main}");
    assert!(!target.join("go.mod").exists());
    let again = runwarm(
        &[
            "init",
            "-r",
            "go",
            "greet",
            "--dir",
            target.to_str().unwrap(),
        ],
        nowhere,
    );
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    let unknown = runwarm(&["init", "-r", "cobol", "x"], nowhere);
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("python3"));
    let bad_name = runwarm(&["init", "-r", "bash", "Not A Name"], nowhere);
    assert_eq!(bad_name.status.code(), Some(2), "{}", describe(&bad_name));

    for shell in ["bash", "zsh", "fish"] {
        let out = runwarm(&["completions", shell], nowhere);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("replay"),
            "{shell}"
        );
    }
    let man_dir = dir.path().join("man1");
    let out = runwarm(&["man", "--out", man_dir.to_str().unwrap()], nowhere);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(man_dir.join("runwarm.1").exists() && man_dir.join("runwarm-cancel.1").exists());
    let page = runwarm(&["man"], nowhere);
    assert!(String::from_utf8_lossy(&page.stdout).starts_with(".ie \\n(.g"));
}

#[test]
fn runwarmd_names_itself_in_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_runwarmd"))
        .arg("--version")
        .output()
        .expect("runs runwarmd");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        format!("runwarmd {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
}

/// The README's completion and manual page lines, run as printed but with `sudo` left out,
/// `/usr/local` moved into a temporary folder and `runwarm` being this build's binary.
#[test]
fn the_readmes_completion_and_man_steps_install_what_they_say() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let block = readme
        .split_once("Shell completions and manual pages come from the installed client")
        .and_then(|(_, rest)| rest.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("README's install section has the completions block");
    let prefix = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_runwarm"));
    let script = block
        .replace("sudo ", "")
        .replace("/usr/local", &prefix.path().display().to_string());
    let out = Command::new("sh")
        .args(["-euc", &script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}\n{script}", describe(&out));
    let share = prefix.path().join("share");
    for file in [
        "bash-completion/completions/runwarm",
        "zsh/site-functions/_runwarm",
        "fish/vendor_completions.d/runwarm.fish",
        "man/man1/runwarm.1",
        "man/man1/runwarm-invoke.1",
    ] {
        let text = std::fs::read_to_string(share.join(file)).unwrap_or_default();
        assert!(text.contains("invoke"), "{file} missing or empty");
    }
    // bash loads it and completes `runwarm` with it.
    let loaded = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source {} && complete -p runwarm",
                share.join("bash-completion/completions/runwarm").display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(loaded.status.code(), Some(0), "{}", describe(&loaded));
    assert!(String::from_utf8_lossy(&loaded.stdout).contains(" runwarm"));
}
