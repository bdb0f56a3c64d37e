//! Replays every handler-mode conformance vector against the Go executor package
//! (`executors/go`), through the fixture program in `executors/go/tests/fixture`. Go links the
//! executor into the script's own binary, so the test builds the fixture first, as the
//! supervisor's build step does for a script.

use std::path::{Path, PathBuf};
use std::process::Command;

use runwarm_protocol::Mode;
use runwarm_protocol::conformance::{Shim, run_all, run_vector, skip};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `go` from PATH, else the official tarball's install location, which is often not on PATH.
fn go() -> Option<String> {
    ["go", "/usr/local/go/bin/go"].into_iter().find_map(|go| {
        let ok = Command::new(go)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| go.to_owned())
    })
}

fn package_dir() -> PathBuf {
    repo().join("executors/go")
}

fn fixture_dir() -> PathBuf {
    package_dir().join("tests/fixture")
}

/// Runs a go subcommand in `dir` and fails the test with its output if it fails.
/// `-mod=mod` lets the build resolve the fixture's `replace` without a go.sum; `-buildvcs=false`
/// keeps git out of the build, as the supervisor's build of a script copy has no repository.
fn go_run(go: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(go)
        .args(args)
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod -buildvcs=false")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {go} {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{go} {} in {} failed ({}):\n{text}",
        args.join(" "),
        dir.display(),
        out.status
    );
    text
}

fn go_shim(go: &str, out_dir: &Path) -> Shim {
    let binary = out_dir.join("fixture").to_string_lossy().into_owned();
    go_run(go, &fixture_dir(), &["build", "-o", &binary, "."]);
    Shim {
        name: "go".into(),
        command: vec![binary],
        fixture_root: fixture_dir(),
        entry: "main.go".into(),
        mode: Mode::Handler,
        env: vec![],
    }
}

const INIT: &str = r#"{"send":{"type":"init","protocol":1,"script":{"name":"fixture","version":"sha256:0000","root":"$ROOT","entry":"$ENTRY","handler":"handler","mode":"$MODE"},"env":{}}}"#;

fn request(id: &str, payload: &str) -> String {
    format!(
        r#"{{"send":{{"type":"request","id":"{id}","payload":{payload},"context":{{"execution_id":"e-1","deadline_ms":4102444800000,"attempt":1,"caller":{{"uid":1000,"gid":1000,"pid":1}}}}}}}}"#
    )
}

fn expect_failure(id: &str, error: &str) -> String {
    format!(r#"{{"expect":{{"type":"response","id":"{id}","success":false,"error":{error}}}}}"#)
}

/// What Go adds to the shared contract: a panic and runtime.Goexit fail only their request, a
/// payload that does not fit the handler's type is a failed request, and output written before
/// Start (the package's init moves stdout) is user output.
fn go_only_vector() -> String {
    [
        r#"{"vector":"go-only","modes":["handler"],"description":"Go: panic, Goexit, payload type, output before Start"}"#.to_owned(),
        INIT.to_owned(),
        r#"{"expect":{"type":"ready","protocol":1,"runtime":"$contains:go1.","pid":"$any"}}"#.to_owned(),
        request("r1", r#"{"panic":"boom"}"#),
        expect_failure(
            "r1",
            r#"{"kind":"panic","message":"boom","trace":"$contains:main.handler"}"#,
        ),
        request("r2", r#"{"goexit":true}"#),
        expect_failure("r2", r#"{"kind":"Goexit","message":"$any"}"#),
        request("r3", "[1]"),
        expect_failure(
            "r3",
            r#"{"kind":"UnmarshalTypeError","message":"$contains:map[string]interface {}"}"#,
        ),
        request("r4", r#"{"fail":"plain"}"#),
        expect_failure("r4", r#"{"kind":"errorString","message":"plain"}"#),
        request("r5", r#"{"name":"after"}"#),
        r#"{"expect":{"type":"response","id":"r5","success":true,"result":{"greeting":"hello after"}}}"#.to_owned(),
        r#"{"send":{"type":"shutdown","grace_ms":2000}}"#.to_owned(),
        r#"{"expect_exit":0}"#.to_owned(),
        r#"{"expect_user_stdout_contains":"fixture main before Start"}"#.to_owned(),
    ]
    .join("\n")
}

#[test]
fn go_executor_passes_every_handler_vector() {
    let Some(go) = go() else {
        return skip("go is not installed");
    };
    let out = tempfile::TempDir::new().expect("temp dir");
    let shim = go_shim(&go, out.path());
    match run_all(&shim) {
        Ok(n) => assert!(n >= 10, "only {n} vectors ran for {}", shim.name),
        Err(e) => panic!("{e}"),
    }
    let vector = out.path().join("go-only.jsonl");
    std::fs::write(&vector, go_only_vector()).expect("write vector");
    if let Err(e) = run_vector(&shim, &vector) {
        panic!("{e}");
    }
}

#[test]
fn go_package_is_formatted_vet_clean_and_its_unit_tests_pass() {
    let Some(go) = go() else {
        return skip("go is not installed");
    };
    let goroot = go_run(&go, &package_dir(), &["env", "GOROOT"]);
    let gofmt = Path::new(goroot.trim()).join("bin/gofmt");
    for dir in [package_dir(), fixture_dir()] {
        let out = Command::new(&gofmt)
            .args(["-l", "."])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", gofmt.display()));
        let unformatted = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && unformatted.trim().is_empty(),
            "gofmt -l in {}: {unformatted}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        go_run(&go, &dir, &["vet", "./..."]);
    }
    go_run(&go, &package_dir(), &["test", "-count=1", "./..."]);
}
