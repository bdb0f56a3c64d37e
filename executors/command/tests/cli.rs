//! The executor binary driven over its real pipes: protocol, user stdout on fd 3, exit codes,
//! signals, the request environment, and the cases that must not hang.

mod harness;

use std::time::{Duration, Instant};

use harness::{Exec, Scratch};
use serde_json::{Value, json};

#[test]
fn json_last_line_is_the_result_and_all_output_reaches_fd3() {
    let dir = Scratch::script("echo step one\necho step two\necho '{\"greeting\":\"hi\"}'\n");
    let (mut exec, ready) = Exec::bash(dir.root());
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["protocol"], 1);
    assert_eq!(ready["runtime"], "command:bash");
    assert_eq!(ready["pid"], exec.child.id());
    let response = exec.request("r1", json!({}));
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["result"], json!({"greeting": "hi"}));
    assert_eq!(response["exit_code"], 0);
    let done = exec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(
        done.user_stdout,
        "step one\nstep two\n{\"greeting\":\"hi\"}\n"
    );
}

#[test]
fn non_json_last_line_gives_a_null_result() {
    let dir = Scratch::script("echo '{\"early\":1}'\necho done\n");
    let (mut exec, _) = Exec::bash(dir.root());
    let response = exec.request("r", json!({}));
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response.get("result"), Some(&Value::Null), "{response}");
}

#[test]
fn nonzero_exit_is_a_failure_with_its_code() {
    let dir = Scratch::script("echo 'bad input' >&2\necho '{\"x\":1}'\nexit 3\n");
    let (mut exec, _) = Exec::bash(dir.root());
    let response = exec.request("r", json!({}));
    assert_eq!(response["success"], false, "{response}");
    assert_eq!(response["error"]["kind"], "ExitCode");
    assert_eq!(response["error"]["message"], "exited with code 3");
    assert_eq!(response["exit_code"], 3);
    assert!(response.get("result").is_none(), "{response}");
    let done = exec.finish();
    assert!(done.stderr.contains("bad input"), "{}", done.stderr);
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let dir = Scratch::script("kill -9 $$\n");
    let (mut exec, _) = Exec::bash(dir.root());
    let response = exec.request("r", json!({}));
    assert_eq!(response["success"], false, "{response}");
    assert_eq!(response["error"]["kind"], "Signal");
    assert_eq!(response["error"]["message"], "killed by signal 9 (SIGKILL)");
    assert_eq!(response["exit_code"], 137);
}

#[test]
fn payload_reaches_params_args_json_stdin_and_request_vars() {
    let dir = Scratch::script(
        r#"printf 'name=%s\n' "$PARAM_NAME"
printf 'dry=%s count=%s nil=[%s] nested=[%s]\n' "$PARAM_DRY_RUN" "$PARAM_COUNT" "$PARAM_NIL" "${PARAM_NESTED-unset}"
printf 'args=%s\n' "$(cat "$RUNWARM_ARGS_FILE")"
printf 'stdin=%s\n' "$(cat)"
printf 'cwd_is_args_dir=%s\n' "$([ "$PWD/args.json" = "$RUNWARM_ARGS_FILE" ] && echo yes)"
printf 'ctx=%s %s %s %s\n' "$RUNWARM_EXECUTION_ID" "$RUNWARM_DEADLINE_MS" "$RUNWARM_ATTEMPT" "$RUNWARM_SCRIPT_ROOT"
printf 'init=%s stdout_fd=[%s]\n' "$FROM_INIT" "${RUNWARM_STDOUT_FD-unset}"
printf '{"workdir":"%s"}\n' "$PWD"
"#,
    );
    let (mut exec, _) = Exec::bash(dir.root());
    let payload = json!({"name": "Ada", "dry-run": true, "count": 2, "nil": null,
                         "nested": {"a": 1}});
    let response = exec.request("r", payload.clone());
    assert_eq!(response["success"], true, "{response}");
    let workdir = response["result"]["workdir"].as_str().unwrap().to_owned();
    assert!(
        !std::path::Path::new(&workdir).exists(),
        "{workdir} left behind"
    );
    let done = exec.finish();
    let out = done.user_stdout;
    let compact = serde_json::to_string(&payload).unwrap();
    assert!(out.contains("name=Ada\n"), "{out}");
    assert!(
        out.contains("dry=true count=2 nil=[] nested=[unset]\n"),
        "{out}"
    );
    assert!(out.contains(&format!("args={compact}\n")), "{out}");
    assert!(out.contains(&format!("stdin={compact}\n")), "{out}");
    assert!(out.contains("cwd_is_args_dir=yes\n"), "{out}");
    let ctx = format!("ctx=exec-r 1700000000000 1 {}\n", dir.root());
    assert!(out.contains(&ctx), "{out}");
    assert!(out.contains("init=init-value stdout_fd=[unset]\n"), "{out}");
}

#[test]
fn missing_entry_is_an_init_error_and_exit_1() {
    let dir = Scratch::new();
    let mut exec = Exec::start(&["--", "bash"]);
    let reply = exec.init(dir.root(), "nope.sh");
    assert_eq!(reply["type"], "init_error", "{reply}");
    assert_eq!(reply["error"]["kind"], "EntryNotFound");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope.sh")
    );
    assert_eq!(exec.wait().status.code(), Some(1));
}

#[test]
fn background_grandchild_holding_stdout_does_not_hold_the_response() {
    let dir = Scratch::script("sleep 30 &\necho \"{\\\"bg\\\":$!}\"\n");
    let (mut exec, _) = Exec::bash(dir.root());
    let started = Instant::now();
    let response = exec.request("r", json!({}));
    let took = started.elapsed();
    kill_background(&response);
    assert_eq!(response["success"], true, "{response}");
    assert!(response["result"]["bg"].is_i64(), "{response}");
    assert!(took < Duration::from_secs(2), "response took {took:?}");
    // Next request still works: the stale pipe is not read into it.
    let second = exec.request("r2", json!({}));
    kill_background(&second);
    assert_eq!(second["success"], true, "{second}");
}

#[test]
fn processes_a_request_leaves_behind_die_with_it_even_after_setsid() {
    // A daemonized grandchild (new session, parent gone) prints its pid and sleeps.
    let dir = Scratch::script(
        "(setsid sh -c 'echo \"{\\\"bg\\\":$$}\"; exec sleep 987652' &)\nsleep 0.2\nexit 0\n",
    );
    let (mut exec, _) = Exec::bash(dir.root());
    let response = exec.request("r", json!({}));
    assert_eq!(response["success"], true, "{response}");
    let bg = response["result"]["bg"].as_i64().unwrap();
    // Killed and reaped before the response: not even a zombie is left.
    assert!(
        !std::path::Path::new(&format!("/proc/{bg}")).exists(),
        "pid {bg} outlived its request"
    );
    let second = exec.request("r2", json!({}));
    assert_eq!(second["success"], true, "{second}");
    let done = exec.finish();
    assert!(done.stderr.contains("left running"), "{}", done.stderr);
}

/// Kills the `sleep` the script left behind, whose pid is the result's `bg`.
fn kill_background(response: &Value) {
    let Some(bg) = response["result"]["bg"].as_i64() else {
        return;
    };
    let Ok(bg) = i32::try_from(bg) else { return };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bg),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn script_sees_no_inherited_fds_and_no_blocked_signals() {
    let dir = Scratch::script(
        "ls /proc/$$/fd > fds.txt\n\
         echo \"{\\\"fds\\\":\\\"$(tr '\\n' ' ' < fds.txt)\\\",\\\"sigblk\\\":\\\"$(grep SigBlk /proc/self/status | cut -f2)\\\"}\"\n",
    );
    let (mut exec, _) = Exec::bash(dir.root());
    let response = exec.request("r", json!({}));
    let fds: Vec<&str> = response["result"]["fds"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    // bash keeps the script it reads open on fd 255.
    assert!(
        fds.iter().all(|fd| ["0", "1", "2", "255"].contains(fd)),
        "{response}"
    );
    // Read by a process bash started, which gets the mask bash itself was given.
    assert_eq!(
        response["result"]["sigblk"], "0000000000000000",
        "{response}"
    );
}

#[test]
fn sigterm_is_forwarded_to_the_script_then_the_executor_exits_143() {
    let dir = Scratch::script(
        "trap 'kill $pid; echo \"{\\\"term\\\":true}\"; exit 7' TERM\n\
         sleep 30 & pid=$!\necho started >&2\nwait $pid\n",
    );
    let (mut exec, _) = Exec::bash(dir.root());
    exec.send_request("r", json!({}));
    exec.wait_stderr("started");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(exec.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let response = exec.recv();
    assert_eq!(response["exit_code"], 7, "{response}");
    assert_eq!(response["error"]["kind"], "ExitCode");
    let done = exec.wait();
    assert_eq!(done.status.code(), Some(143), "{}", done.stderr);
    assert!(
        done.user_stdout.contains("{\"term\":true}"),
        "{}",
        done.user_stdout
    );
}

#[test]
fn idle_sigterm_ends_the_executor_by_that_signal() {
    use std::os::unix::process::ExitStatusExt;
    let dir = Scratch::script("true\n");
    let (exec, _) = Exec::bash(dir.root());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(exec.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(exec.wait().status.signal(), Some(15));
}

#[test]
fn ping_unknown_types_and_shutdown() {
    let dir = Scratch::script("true\n");
    let (mut exec, _) = Exec::bash(dir.root());
    exec.send(json!({"type": "telemetry", "x": 1}));
    exec.send_raw(b"\n");
    exec.send(json!({"type": "ping", "id": "p1"}));
    assert_eq!(exec.recv(), json!({"type": "pong", "id": "p1"}));
    exec.send(json!({"type": "shutdown", "grace_ms": 100}));
    assert_eq!(exec.wait().status.code(), Some(0));
}

#[test]
fn eof_exits_0_and_garbage_exits_2() {
    let dir = Scratch::script("true\n");
    let (exec, _) = Exec::bash(dir.root());
    assert_eq!(exec.finish().status.code(), Some(0));
    let (mut exec, _) = Exec::bash(dir.root());
    exec.send_raw(b"this is not json\n");
    let done = exec.wait();
    assert_eq!(done.status.code(), Some(2));
    assert!(
        done.stderr.contains("invalid protocol line"),
        "{}",
        done.stderr
    );
}

#[test]
fn overlong_line_exits_2() {
    let dir = Scratch::script("true\n");
    let (mut exec, _) = Exec::bash(dir.root());
    let big = vec![b'x'; 8 * 1024 * 1024 + 1];
    // The executor may exit before reading it all; a broken pipe here is expected.
    let _ = std::io::Write::write_all(exec.child_stdin(), &big);
    let done = exec.wait();
    assert_eq!(done.status.code(), Some(2));
    assert!(done.stderr.contains("longer than"), "{}", done.stderr);
}

#[test]
fn missing_program_is_a_spawn_error() {
    let dir = Scratch::script("true\n");
    let mut exec = Exec::start(&["--", "/nonexistent/interpreter"]);
    exec.init(dir.root(), "main.sh");
    let response = exec.request("r", json!({}));
    assert_eq!(response["success"], false, "{response}");
    assert_eq!(response["error"]["kind"], "SpawnError");
    let message = response["error"]["message"].as_str().unwrap();
    assert!(message.contains("/nonexistent/interpreter"), "{message}");
    assert_eq!(response["exit_code"], 127);
}

#[test]
fn entry_placeholder_is_substituted_not_appended() {
    let dir = Scratch::script("true\n");
    let mut exec = Exec::start(&["bash", "-c", "echo \"[\\\"$0\\\",$#]\"", "{entry}"]);
    exec.init(dir.root(), "main.sh");
    let response = exec.request("r", json!({}));
    let entry = format!("{}/main.sh", dir.root());
    assert_eq!(response["result"], json!([entry, 0]), "{response}");
}

#[test]
fn large_payload_the_script_never_reads_does_not_block() {
    let dir = Scratch::script("echo '{\"ignored\":true}'\n");
    let (mut exec, _) = Exec::bash(dir.root());
    let payload = json!({"blob": "y".repeat(2 * 1024 * 1024)});
    let response = exec.request("r", payload);
    assert_eq!(response["result"], json!({"ignored": true}), "{response}");
    // Too big for the environment: left out, and the script's author is told why.
    let done = exec.finish();
    assert!(
        done.stderr.contains("PARAM_BLOB not set"),
        "{}",
        done.stderr
    );
}
