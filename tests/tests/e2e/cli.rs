//! The `runwarm` client against a real daemon: documented exit codes and what a failure
//! shows, and `register` waiting for the prepare.

use runwarm_e2e::{Daemon, Need, require};
use serde_json::Value;

#[tokio::test]
async fn invoke_exit_codes_follow_the_outcome() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::start().await;
    let src = "import time\ndef handler(e, c):\n    if e.get('fail'):\n        raise RuntimeError('asked to fail')\n    if e.get('sleep'):\n        time.sleep(e['sleep'])\n    return {'ok': True}\n";
    // Through the CLI, which returns once the version is prepared: the 500 ms limit would
    // otherwise also have to cover the prepare of the first invocation.
    let dir = d.dir().join("codes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "runtime = \"python3\"\nentry = \"main.py\"\n\n[limits]\ntimeout_ms = 500\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), src).unwrap();
    let (code, out, err) = d.cli(&["register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.report());

    let (code, out, err) = d.cli(&["invoke", "codes", "-d", "{}"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"ok\""), "{out}");
    let (code, _, err) = d.cli(&["invoke", "codes", "-d", "{\"fail\": true}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("asked to fail"), "{err}");
    let (code, _, err) = d.cli(&["invoke", "codes", "-d", "{\"sleep\": 5}"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = d.cli(&["invoke", "no-such-script"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = d.cli(&["invoke", "transform-python", "-d", "{\"items\": 3}"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("/items"), "violations are printed: {err}");
    let (code, _, _) = d.cli(&["invoke", "codes", "-d", "{not json"]);
    assert_eq!(code, 2);
    // A command-mode script's only error is its exit code: the reason it wrote to stderr is
    // shown with it, once (with --show-output the whole stderr is printed instead).
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let payload = format!("{{\"port\": {free_port}}}");
    let (code, _, err) = d.cli(&["invoke", "port-check", "-d", &payload]);
    assert_eq!(code, 1, "{err}");
    let reason = format!("127.0.0.1:{free_port} is not healthy");
    assert!(
        err.contains("E002 ExitCode: exited with code 1\nstderr:\n") && err.contains(&reason),
        "{err}"
    );
    let (code, _, err) = d.cli(&["invoke", "port-check", "-d", &payload, "--show-output"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches(&reason).count(), 1, "{err}");
    assert!(!err.contains("stderr:"), "{err}");
    let (code, out, _) = d.cli(&[
        "--json",
        "invoke",
        "hello-python",
        "-d",
        "{\"name\":\"cli\"}",
    ]);
    assert_eq!(code, 0);
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rec["result"]["greeting"], "hello cli");
}

#[tokio::test]
async fn register_ls_tag_and_api_work_from_the_cli() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let dir = d.dir().join("cli-script");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "name = \"from-cli\"\nruntime = \"python3\"\nentry = \"main.py\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), "def handler(e, c):\n    return 'v1'\n").unwrap();
    let (code, out, err) = d.cli(&["register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("from-cli"), "{out}");
    let (code, out, _) = d.cli(&["ls"]);
    assert_eq!(code, 0);
    assert!(out.contains("from-cli"), "{out}");
    let (code, out, _) = d.cli(&["api", "GET", "/v1/scripts/from-cli"]);
    assert_eq!(code, 0);
    let detail: serde_json::Value = serde_json::from_str(&out).unwrap();
    let v1 = detail["latest"].as_str().unwrap().to_owned();
    let (code, _, err) = d.cli(&["tag", "from-cli", "prod", &v1]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = d.cli(&["invoke", "from-cli:prod"]);
    assert_eq!((code, out.trim()), (0, "\"v1\""));
    let (code, _, _) = d.cli(&["api", "GET", "/v1/scripts/none-such"]);
    assert_eq!(code, 4);
}

#[tokio::test]
async fn a_single_py_file_registers_as_python3_once_prepared() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let file = d.dir().join("single.py");
    std::fs::write(&file, "def handler(e, c):\n    return 'single'\n").unwrap();
    let (code, out, err) = d.cli(&["register", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.report());
    assert!(out.starts_with("registered single sha256:"), "{out}");
    assert!(out.contains("(new), prepared"), "{out}");

    let (code, out, _) = d.cli(&["--json", "show", "single"]);
    assert_eq!(code, 0, "{out}");
    let script: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(script["runtime"], "python3", "{script}");
    // `register` returned only once the prepare was over: the version says so.
    let version = script["latest"].as_str().unwrap();
    let path = format!(
        "/v1/scripts/single/versions/{}",
        runwarm_supervisor::client::escape(version)
    );
    let (code, out, _) = d.cli(&["api", "GET", &path]);
    assert_eq!(code, 0, "{out}");
    let detail: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detail["prepare"]["state"], "ready", "{detail}");

    let (code, out, err) = d.cli(&["invoke", "single"]);
    assert_eq!((code, out.trim()), (0, "\"single\""), "{err}");
}

#[tokio::test]
async fn a_requirement_that_does_not_exist_fails_the_registration() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let dir = d.dir().join("broken-deps");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "name = \"broken-deps\"\nruntime = \"python3\"\nentry = \"main.py\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), "def handler(e, c):\n    return 1\n").unwrap();
    std::fs::write(dir.join("requirements.txt"), "no-such-package-xyz==1\n").unwrap();
    let (code, out, err) = d.cli(&["register", dir.to_str().unwrap()]);
    // 1: the script failed (its invocations would answer E001).
    assert_eq!(code, 1, "{out}{err}\n{}", d.report());
    assert!(
        err.contains("preparing it failed") && err.contains("no-such-package-xyz"),
        "the resolver's message reaches stderr: {err}"
    );
}

/// `runwarm init --runtime R` for each runtime, then `register` and `invoke` what it made, the
/// way a person starting a script would; returns the invocation's stdout.
fn init_register_invoke(d: &Daemon, runtime: &str) -> String {
    let name = format!("init-{runtime}");
    let dir = d.dir().join(&name);
    let (code, out, err) = d.cli(&[
        "init",
        "--runtime",
        runtime,
        &name,
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "init {runtime}: {out}{err}");
    assert!(out.contains(&format!("for {runtime}")), "{out}");
    let (code, out, err) = d.cli(&["register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "register {runtime}: {out}{err}\n{}", d.report());
    let (code, out, err) = d.cli(&["invoke", &name, "-d", r#"{"name": "Ada \"the\" first"}"#]);
    assert_eq!(code, 0, "invoke {runtime}: {out}{err}\n{}", d.report());
    out
}

fn assert_greets(runtime: &str, out: &str) {
    let result: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{runtime}: {e}: {out:?}"));
    assert_eq!(
        result["greeting"], "hello Ada \"the\" first",
        "{runtime}: {out}"
    );
}

#[tokio::test]
async fn what_init_makes_registers_and_runs_for_python_node_bash_and_c() {
    if !require(&[
        Need::Program("python3"),
        Need::Program("node"),
        Need::Program("bash"),
        Need::Program("gcc"),
    ]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    for runtime in ["python3", "node", "bash", "c"] {
        let out = init_register_invoke(&d, runtime);
        assert_greets(runtime, &out);
    }
    // `show` names the registering caller (this test's uid and gid, from SO_PEERCRED).
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let (code, out, _) = d.cli(&["--json", "show", "init-c"]);
    assert_eq!(code, 0, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["registered_by"]["uid"], uid.as_raw(), "{shown}");
    assert_eq!(shown["registered_by"]["gid"], gid.as_raw(), "{shown}");
    assert_eq!(shown["manifest"]["limits"]["timeout_ms"], 10000, "{shown}");
    let (code, out, _) = d.cli(&["show", "init-c"]);
    assert_eq!(code, 0, "{out}");
    for expected in [
        "parameters (JSON Schema):",
        "memory 128 MiB (runtime default)",
        "max 2, min_warm 0, idle_ttl 600 s",
        "REGISTERED BY",
        &format!("{}:{})", uid.as_raw(), gid.as_raw()),
    ] {
        assert!(out.contains(expected), "{expected:?} missing from\n{out}");
    }
}

#[tokio::test]
async fn what_init_makes_runs_for_every_other_runtime() {
    let runtimes = [
        ("go", &[Need::Program("go")][..]),
        (
            "typescript",
            &[Need::Program("node"), Need::Program("esbuild")],
        ),
        ("java", &[Need::Program("javac"), Need::Program("java")]),
        ("csharp", &[Need::Program("mcs"), Need::Program("mono")]),
        ("cpp", &[Need::Program("g++")]),
        ("ruby", &[Need::Program("ruby")]),
        ("php", &[Need::Program("php")]),
    ];
    let runnable: Vec<&str> = runtimes
        .iter()
        .filter(|(_, needs)| require(needs))
        .map(|(runtime, _)| *runtime)
        .collect();
    if runnable.is_empty() {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    for runtime in runnable {
        let out = init_register_invoke(&d, runtime);
        assert_greets(runtime, &out);
    }
}

/// A Python script that prints `lines` numbered lines, or sleeps `sleep` seconds.
async fn chatty(d: &Daemon) {
    let dir = d.dir().join("chatty");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "runtime = \"python3\"\nentry = \"main.py\"\n\n[limits]\ntimeout_ms = 60000\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.py"),
        "import time\ndef handler(e, c):\n    for n in range(e.get('lines', 0)):\n        \
         print(f'line {n}')\n    time.sleep(e.get('sleep', 0))\n    return e.get('lines', 0)\n",
    )
    .unwrap();
    let (code, out, err) = d.cli(&["register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.report());
}

#[tokio::test]
async fn cancel_replay_and_logs_of_recent_executions() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    chatty(&d).await;

    // A long run, cancelled while it runs; a second cancel finds it over.
    let (code, id, err) = d.cli(&["invoke", "chatty", "--async", "-d", r#"{"sleep": 30}"#]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_owned();
    let (code, _, err) = d.cli(&["cancel", &id]);
    assert_eq!(code, 0, "{err}\n{}", d.report());
    assert_eq!(err, format!("cancelled {id} (chatty)\n"));
    let (code, _, err) = d.cli(&["cancel", &id]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("409") && err.contains("already ended"),
        "{err}"
    );

    // A run of five lines, replayed: the same payload gives the same result.
    let (code, out, err) = d.cli(&["--json", "invoke", "chatty", "-d", r#"{"lines": 5}"#]);
    assert_eq!(code, 0, "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let first_id = first["id"].as_str().unwrap().to_owned();
    let (code, out, err) = d.cli(&["replay", &first_id]);
    assert_eq!((code, out.trim()), (0, "5"), "{err}");
    let (code, out, _) = d.cli(&["--json", "replay", &first_id, "--async"]);
    assert_eq!(code, 0, "{out}");
    let replayed: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(replayed["id"], first["id"], "a replay is a new execution");

    // The last lines of one execution, then across the recent ones.
    let (code, out, _) = d.cli(&["logs", &first_id, "--tail", "2"]);
    assert_eq!((code, out.as_str()), (0, "line 3\nline 4\n"));
    let (code, out, _) = d.cli(&[
        "logs", "--script", "chatty", "--since", "10m", "--tail", "3",
    ]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("==> ") && lines[0].contains(" chatty "),
        "{out}"
    );
    assert_eq!(
        lines[lines.len() - 3..],
        ["line 2", "line 3", "line 4"],
        "{out}"
    );
    let (code, out, err) = d.cli(&[
        "logs",
        "--script",
        "chatty",
        "--since",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(code, 0, "{err}");
    // Three runs printed five lines each (the cancelled one printed none): the first, its
    // synchronous replay, and the async replay when it has finished.
    assert!(out.matches("==> ").count() >= 2, "{out}");
}

#[tokio::test]
async fn prewarm_waits_and_rm_only_disables() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    chatty(&d).await;
    let (code, out, err) = d.cli(&["prewarm", "chatty", "--count", "2", "--wait"]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.report());
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
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
        "{out}"
    );
    assert_eq!(
        (lines[1][0], lines[1][4], lines[1][5]),
        ("chatty", "2", "0"),
        "{out}"
    );
    // Waiting means they are there: the pools say so at once.
    let (_, pools, _) = d.cli(&["--json", "pools"]);
    let pools: Value = serde_json::from_str(&pools).unwrap();
    assert_eq!(pools[0]["idle"], 2, "{pools}");

    let (code, _, err) = d.cli(&["rm", "chatty"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("disabled chatty: new invocations are refused"),
        "{err}"
    );
    let (code, _, _) = d.cli(&["invoke", "chatty"]);
    assert_eq!(code, 4, "a disabled script refuses invocations");
    let (code, out, _) = d.cli(&["versions", "chatty"]);
    assert_eq!(code, 0);
    assert!(out.contains("sha256:"), "its versions stay: {out}");
    let (code, _, err) = d.cli(&["enable", "chatty"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = d.cli(&["invoke", "chatty"]);
    assert_eq!(code, 0);
}
