//! `POST /v1/check` and `POST /v1/format` against a real, confined daemon with the real tools
//! (installed by `.ci/toolchains`): diagnostics at the right line and column for every
//! language, formatting, the problems a person reads, and hostile source that is stopped and
//! leaves nothing running.

use std::io::Write as _;
use std::time::Instant;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

const RUFF: &str = "/opt/runwarm-lint/bin/ruff";
const PRETTIER: &str = "/opt/runwarm-lsp/node_modules/.bin/prettier";

/// Checks `files` with `runtime`; the answer, after asserting 200, and how long it took.
async fn check(d: &Daemon, runtime: &str, files: Value) -> (Value, u128) {
    let started = Instant::now();
    let (status, body) = d
        .call(
            Method::POST,
            "/v1/check",
            Some(json!({"runtime": runtime, "files": files})),
        )
        .await;
    let ms = started.elapsed().as_millis();
    assert_eq!(status, 200, "{body:#}\n{}", d.report());
    // The figure the design note quotes; the raw handle, which libtest does not capture.
    let _ = writeln!(std::io::stderr(), "check latency {runtime}: {ms} ms");
    (body, ms)
}

/// The diagnostics of `source` at (`line`, `column`).
fn at<'a>(answer: &'a Value, source: &str, line: u64, column: u64) -> Option<&'a Value> {
    answer["diagnostics"]
        .as_array()?
        .iter()
        .find(|d| d["source"] == source && d["line"] == line && d["column"] == column)
}

/// The report of the checker `name`.
fn checker<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["checkers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no checker {name} in {answer:#}"))
}

#[tokio::test]
async fn python_check_finds_the_syntax_error_and_the_unused_import() {
    if !require(&[Need::Root, Need::Program("python3"), Need::Path(RUFF)]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let files = json!({
        "main.py": "import os\n\ndef handler(event:\n    return 1\n",
        "lib/util.py": "import sys\n\n\ndef f():\n    return undefined_name\n",
    });
    let (answer, _) = check(&d, "python3", files.clone()).await;
    let syntax = at(&answer, "python", 3, 12).unwrap_or_else(|| panic!("{answer:#}"));
    assert_eq!(syntax["path"], "main.py");
    assert_eq!(syntax["severity"], "error");
    assert!(
        syntax["message"]
            .as_str()
            .unwrap()
            .starts_with("SyntaxError"),
        "{syntax}"
    );
    let unused = at(&answer, "ruff", 1, 8).unwrap_or_else(|| panic!("{answer:#}"));
    assert_eq!(unused["path"], "lib/util.py");
    assert_eq!(unused["severity"], "warning");
    assert_eq!(
        (unused["end_line"].as_u64(), unused["end_column"].as_u64()),
        (Some(1), Some(11))
    );
    let undefined = at(&answer, "ruff", 5, 12).unwrap_or_else(|| panic!("{answer:#}"));
    assert_eq!(undefined["severity"], "error");
    assert_eq!(checker(&answer, "python")["ran"], true);
    assert_eq!(checker(&answer, "ruff")["ran"], true);
    let pyflakes = checker(&answer, "pyflakes");
    assert_eq!(pyflakes["ran"], false);
    assert!(
        pyflakes["reason"].as_str().unwrap().contains("ruff"),
        "{pyflakes}"
    );

    // One file asked for: only its diagnostics.
    let (status, one) = d
        .call(
            Method::POST,
            "/v1/check",
            Some(json!({"runtime": "python3", "files": files, "path": "lib/util.py"})),
        )
        .await;
    assert_eq!(status, 200, "{one:#}");
    let paths: Vec<&Value> = one["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["path"])
        .collect();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| *p == "lib/util.py"),
        "{one:#}"
    );
}

#[tokio::test]
async fn every_language_check_points_at_the_error() {
    if !require(&[
        Need::Root,
        Need::Program("shellcheck"),
        Need::Program("go"),
        Need::Program("javac"),
        Need::Program("g++"),
        Need::Program("gcc"),
        Need::Program("node"),
        Need::Program("esbuild"),
        Need::Program("mcs"),
    ]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;

    let (bash, _) = check(
        &d,
        "bash",
        json!({"run.sh": "#!/bin/bash\nif true; then\n  echo $1\n"}),
    )
    .await;
    let e = at(&bash, "bash", 4, 1).unwrap_or_else(|| panic!("{bash:#}"));
    assert!(
        e["message"].as_str().unwrap().contains("syntax error"),
        "{e}"
    );
    assert_eq!(checker(&bash, "shellcheck")["ran"], true, "{bash:#}");
    let (quoting, _) = check(&d, "bash", json!({"run.sh": "#!/bin/bash\nrm $1\n"})).await;
    let sc = at(&quoting, "shellcheck", 2, 4).unwrap_or_else(|| panic!("{quoting:#}"));
    assert!(sc["message"].as_str().unwrap().contains("SC2086"), "{sc}");

    let (go, _) = check(
        &d,
        "go",
        json!({"main.go": "package main\n\nfunc main() {\n\tx := 1 +\n}\n"}),
    )
    .await;
    assert!(at(&go, "gofmt", 5, 1).is_some(), "{go:#}");

    let java =
        "public class Main {\n  public static void main(String[] a) {\n    int x = 1\n  }\n}\n";
    let (java, _) = check(&d, "java", json!({"Main.java": java})).await;
    let e = at(&java, "javac", 3, 14).unwrap_or_else(|| panic!("{java:#}"));
    assert_eq!(e["message"], "';' expected");
    let handler = "import runwarm.Context;\npublic class Main {\n  public static Object handle(Object p, Context c) { return missing(); }\n}\n";
    let (java, _) = check(&d, "java", json!({"Main.java": handler})).await;
    let e = at(&java, "javac", 3, 61).unwrap_or_else(|| {
        panic!("the runtime's own package resolves, the unknown method does not: {java:#}")
    });
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("cannot find symbol"),
        "{e}"
    );

    let cpp = "#include <vector>\nint main() {\n  std::vector<int> v;\n  int x = 1\n  return v.size();\n}\n";
    let (cpp, _) = check(&d, "cpp", json!({"main.cpp": cpp})).await;
    assert!(
        at(&cpp, "g++", 5, 3).is_some_and(|e| e["severity"] == "error"),
        "{cpp:#}"
    );
    assert!(
        at(&cpp, "g++", 4, 7).is_some_and(|e| e["severity"] == "warning"),
        "{cpp:#}"
    );
    let (c, _) = check(&d, "c", json!({"main.c": "int main(void) { return y; }\n"})).await;
    assert!(at(&c, "gcc", 1, 25).is_some(), "{c:#}");

    let (node, _) = check(
        &d,
        "node",
        json!({"index.mjs": "export function handler() {\n  return 1 +;\n}\n"}),
    )
    .await;
    assert!(at(&node, "node", 2, 13).is_some(), "{node:#}");
    let (ts, _) = check(
        &d,
        "typescript",
        json!({"main.ts": "export function handler(n: number): number {\n  return n +;\n}\n"}),
    )
    .await;
    assert!(at(&ts, "esbuild", 2, 13).is_some(), "{ts:#}");

    let cs = "public class Script {\n  public static object Handle(object p) {\n    int x = 1\n    return p;\n  }\n}\n";
    let (cs, _) = check(&d, "csharp", json!({"Script.cs": cs})).await;
    assert!(at(&cs, "mcs", 4, 4).is_some(), "{cs:#}");

    // Clean files: every checker ran and found nothing.
    let (clean, _) = check(
        &d,
        "go",
        json!({"main.go": "package main\n\nfunc main() {}\n"}),
    )
    .await;
    assert_eq!(clean["diagnostics"], json!([]), "{clean:#}");
}

#[tokio::test]
async fn format_python_and_go_and_say_why_not() {
    if !require(&[
        Need::Root,
        Need::Program("go"),
        Need::Path(RUFF),
        Need::Path(PRETTIER),
    ]) {
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .runtime(
            "fmtless",
            "name='fmtless'\nextensions=['x']\nmodes=['command']\ndefault_mode='command'\nprobe=['sh','-c','command -v sh; echo 1']\ncommand=['{interpreter}']\n[[format]]\nname='xfmt'\nrun=['no-such-formatter-xyz']\ninstall='xfmt (apt install xfmt)'\n",
        )
        .start()
        .await;
    let format = |runtime: &str, path: &str, content: &str| {
        let body = json!({"runtime": runtime, "path": path, "content": content});
        async { d.call(Method::POST, "/v1/format", Some(body)).await }
    };
    let (status, py) = format("python3", "main.py", "x=( 1,\n2)\n").await;
    assert_eq!(status, 200, "{py:#}");
    assert_eq!(
        py,
        json!({"content": "x = (1, 2)\n", "changed": true, "formatter": "ruff format"})
    );
    let (_, same) = format("python3", "main.py", "x = (1, 2)\n").await;
    assert_eq!(same["changed"], false, "{same:#}");

    let (status, go) = format(
        "go",
        "main.go",
        "package main\nfunc main(){\nx:=1\n_ = x}\n",
    )
    .await;
    assert_eq!(status, 200, "{go:#}");
    assert_eq!(
        go["content"],
        "package main\n\nfunc main() {\n\tx := 1\n\t_ = x\n}\n"
    );
    assert_eq!(go["formatter"], "gofmt");

    let (status, js) = format("node", "index.js", "const a = {b:1}\n").await;
    assert_eq!(
        (status, js["content"].as_str()),
        (200, Some("const a = { b: 1 };\n")),
        "{js:#}"
    );

    let (status, bad) = format("python3", "main.py", "def f(:\n").await;
    assert_eq!(status, 422, "{bad:#}");
    assert_eq!(bad["type"], "https://runwarm.dev/problems/syntax-error");
    assert_eq!(bad["code"], "E001");
    assert!(
        bad["detail"].as_str().unwrap().contains("main.py:1:7"),
        "{bad:#}"
    );
    assert!(
        bad["hint"].as_str().unwrap().contains("/v1/check"),
        "{bad:#}"
    );

    let (status, none) = format("fmtless", "a.x", "x").await;
    assert_eq!(status, 422, "{none:#}");
    assert_eq!(
        none["type"],
        "https://runwarm.dev/problems/formatter-unavailable"
    );
    assert!(
        none["hint"].as_str().unwrap().contains("apt install xfmt"),
        "{none:#}"
    );
}

#[tokio::test]
async fn hostile_checks_are_refused_or_stopped_and_leave_nothing_running() {
    if !require(&[Need::Root, Need::Program("g++"), Need::Program("setpriv")]) {
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config(
            "[check]\ntimeout_s = 3\nmax_kb = 64\nmax_files = 4\n[access]\nsocket_mode = 0o666\n",
        )
        .start()
        .await;
    // constexpr evaluation is g++'s to do and takes as long as the source says: 8 × ~5 s.
    let spin: String = (0..8)
        .map(|i| {
            format!(
                "constexpr long spin{i}() {{ long s = 0; for (long i = 0; i < 200000; ++i) \
                 for (long j = 0; j < 200000; ++j) s += i ^ j; return s; }}\n\
                 constexpr long z{i} = spin{i}();\n"
            )
        })
        .collect();
    let started = Instant::now();
    let (answer, _) = check(&d, "cpp", json!({"main.cpp": spin.clone()})).await;
    let took = started.elapsed();
    let gxx = checker(&answer, "g++");
    assert_eq!(gxx["ran"], false, "{answer:#}");
    assert!(
        gxx["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within the check's 3 s"),
        "{gxx}"
    );
    assert!(took.as_secs_f64() < 6.0, "answered after {took:?}");
    assert!(
        d.instance_processes().is_empty(),
        "left running: {:?}",
        d.instance_processes()
    );

    // A client that hangs up mid-check leaves nothing behind either: the run ends at its limit.
    let body = json!({"runtime": "cpp", "files": {"main.cpp": spin}});
    let hung_up = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        d.call(Method::POST, "/v1/check", Some(body)),
    )
    .await;
    assert!(
        hung_up.is_err(),
        "the check answered within 0.5 s: {hung_up:?}"
    );
    assert!(
        !d.instance_processes().is_empty(),
        "g++ runs on after the hang-up"
    );
    let until = Instant::now() + std::time::Duration::from_secs(10);
    while !d.instance_processes().is_empty() && Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        d.instance_processes().is_empty(),
        "left running after the client went: {:?}",
        d.instance_processes()
    );

    let refused = [
        (
            json!({"runtime": "cpp", "files": {"../../etc/passwd": "x"}}),
            400,
            "invalid-path",
        ),
        (
            json!({"runtime": "cpp", "files": {"/etc/passwd": "x"}}),
            400,
            "invalid-path",
        ),
        (
            json!({"runtime": "cpp", "files": {"-o": "x"}}),
            400,
            "invalid-path",
        ),
        (
            json!({"runtime": "cpp", "files": {"a.cpp": "x"}, "path": "b.cpp"}),
            400,
            "path-not-sent",
        ),
        (
            json!({"runtime": "cpp", "files": {"a.cpp": "x".repeat(65 * 1024)}}),
            413,
            "source-too-large",
        ),
        (
            json!({"runtime": "cpp", "files": {"a": "", "b": "", "c": "", "d": "", "e": ""}}),
            413,
            "too-many-files",
        ),
        (
            json!({"runtime": "nope", "files": {"a": ""}}),
            400,
            "unknown-runtime",
        ),
        (
            json!({"runtime": "cpp", "files": {"a": ""}, "extra": 1}),
            400,
            "bad-request",
        ),
    ];
    for (body, status, slug) in refused {
        let (got, problem) = d.call(Method::POST, "/v1/check", Some(body.clone())).await;
        assert_eq!(got, status, "{body}: {problem:#}");
        assert_eq!(
            problem["type"],
            format!("https://runwarm.dev/problems/{slug}"),
            "{problem:#}"
        );
    }
    // Only those who may register may make the daemon run tools over their code.
    let body = r#"{"runtime": "cpp", "files": {"a.cpp": "int x;"}}"#;
    let (status, problem) = d.call_as(65534, &[], "POST", "/v1/check", Some(body), &[]);
    assert_eq!(status, 403, "{problem:#}");
    assert!(d.instance_processes().is_empty());
}

#[tokio::test]
async fn missing_tools_are_reported_not_failed() {
    if !require(&[Need::Root, Need::Program("python3")]) {
        return;
    }
    // No tool folders: ruff, pyflakes and the formatters are not found; the interpreter is.
    let d = Daemon::builder()
        .without_samples()
        .config("[check]\ntool_dirs = []\n")
        .start()
        .await;
    let (answer, _) = check(&d, "python3", json!({"main.py": "import os\nx = (\n"})).await;
    assert!(at(&answer, "python", 2, 5).is_some(), "{answer:#}");
    for name in ["ruff", "pyflakes"] {
        let c = checker(&answer, name);
        assert_eq!(c["ran"], false, "{answer:#}");
        assert!(
            c["reason"].as_str().unwrap().starts_with("not installed"),
            "{c}"
        );
    }
    let body = json!({"runtime": "python3", "path": "main.py", "content": "x=1\n"});
    let (status, problem) = d.call(Method::POST, "/v1/format", Some(body)).await;
    assert_eq!(status, 422, "{problem:#}");
    assert_eq!(
        problem["type"],
        "https://runwarm.dev/problems/formatter-unavailable"
    );
    let hint = problem["hint"].as_str().unwrap();
    assert!(hint.contains("ruff") && hint.contains("black"), "{hint}");
}
