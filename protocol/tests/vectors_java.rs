//! Replays every handler-mode conformance vector against the Java executor shim
//! (`executors/java`), then checks what is particular to Java: finding the class from the entry,
//! the handler signatures, load failures, and the JSON codec the shim carries.
//!
//! Each test compiles the shim and the fixtures with `javac` into its own temporary directory,
//! as the production build step compiles the shim together with a script's sources.

use std::path::{Path, PathBuf};
use std::process::Command;

use runwarm_protocol::Mode;
use runwarm_protocol::conformance::{Shim, run_all, run_vector, skip};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The entry of the conformance fixture: a Maven-style tree with a package declaration.
const FIXTURE_ENTRY: &str = "src/main/java/com/example/Fixture.java";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn java_dir() -> PathBuf {
    repo().join("executors/java")
}

fn fixture_root() -> PathBuf {
    java_dir().join("tests/fixture")
}

fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn java_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            java_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "java") {
            out.push(path);
        }
    }
}

/// The shim, the fixtures and `JsonTest` compiled into a fresh directory, or `None` (after
/// [`skip`]) without a JDK. Lint warnings fail the build: users compile the shim with their own
/// code and should not see warnings from it. The build step passes no `-encoding`, so the C
/// locale here makes a non-ASCII byte in the sources an error, as it is for a JDK 17 build
/// without a UTF-8 locale.
fn compile() -> Option<TempDir> {
    if !installed("javac") || !installed("java") {
        skip("javac and java (a JDK, 17 or newer) are not installed");
        return None;
    }
    let classes = TempDir::new().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
    let mut sources = Vec::new();
    java_sources(&java_dir().join("runwarm"), &mut sources);
    java_sources(&java_dir().join("tests"), &mut sources);
    let out = Command::new("javac")
        // javac is a short-lived JVM: the optimising compiler and parallel GC only cost time.
        .args(["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"])
        .args(["-Xlint:all", "-Werror", "-d"])
        .env("LC_ALL", "C")
        .arg(classes.path())
        .args(&sources)
        .output()
        .unwrap_or_else(|e| panic!("cannot run javac: {e}"));
    assert!(
        out.status.success(),
        "javac failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(classes)
}

/// The executor as production starts it (see executors/java/README.md).
fn shim(classes: &Path, name: &str, root: &Path, entry: &str) -> Shim {
    Shim {
        name: name.into(),
        command: vec![
            "java".into(),
            "-XX:+UseSerialGC".into(),
            "-XX:TieredStopAtLevel=1".into(),
            "-Xshare:auto".into(),
            "-cp".into(),
            classes.to_string_lossy().into_owned(),
            "runwarm.Executor".into(),
        ],
        fixture_root: root.to_path_buf(),
        entry: entry.into(),
        mode: Mode::Handler,
        env: vec![],
    }
}

/// Replays an ad-hoc vector, written to `dir`, made of `steps`.
fn converse(shim: &Shim, dir: &Path, steps: &[Value]) -> Result<(), String> {
    let path = dir.join(format!("{}.jsonl", shim.name));
    let header = json!({"vector": shim.name, "modes": ["handler"], "description": "vectors_java"});
    let mut text = header.to_string();
    for step in steps {
        text.push('\n');
        text.push_str(&step.to_string());
    }
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    run_vector(shim, &path)
}

fn init(handler: &str) -> Value {
    json!({"send": {"type": "init", "protocol": 1, "script": {"name": "t", "version": "v",
        "root": "$ROOT", "entry": "$ENTRY", "handler": handler, "mode": "handler"}, "env": {}}})
}

fn ready() -> Value {
    json!({"expect": {"type": "ready", "protocol": 1, "runtime": "$contains:java", "pid": "$any"}})
}

fn request(id: &str, payload: Value) -> Value {
    json!({"send": {"type": "request", "id": id, "payload": payload, "context": {
        "execution_id": "e-1", "deadline_ms": 4_102_444_800_000_u64, "attempt": 3,
        "caller": {"uid": 1000, "gid": 1000, "pid": 1}}}})
}

fn result(id: &str, result: Value) -> Value {
    json!({"expect": {"type": "response", "id": id, "success": true, "result": result}})
}

fn error(id: &str, kind: &str, message: &str) -> Value {
    json!({"expect": {"type": "response", "id": id, "success": false,
        "error": {"kind": kind, "message": format!("$contains:{message}")}}})
}

fn shutdown() -> [Value; 2] {
    [
        json!({"send": {"type": "shutdown", "grace_ms": 2000}}),
        json!({"expect_exit": 0}),
    ]
}

/// A conversation with a handler of `Shapes.java` (the unnamed package) or another entry.
fn serve(classes: &Path, dir: &Path, entry: &str, handler: &str, steps: Vec<Value>) {
    let name = format!("java-{}", handler.replace([':', '.'], "-"));
    let shim = shim(classes, &name, &fixture_root(), entry);
    let mut all = vec![init(handler), ready()];
    all.extend(steps);
    all.extend(shutdown());
    if let Err(e) = converse(&shim, dir, &all) {
        panic!("{e}");
    }
}

/// Init must fail with `kind` and a message containing `message`, then the executor exits.
fn refuse(shim: &Shim, dir: &Path, init: Value, kind: &str, message: &str) {
    let steps = [
        init,
        json!({"expect": {"type": "init_error",
            "error": {"kind": kind, "message": format!("$contains:{message}")}}}),
        json!({"expect_exit": "nonzero"}),
    ];
    if let Err(e) = converse(shim, dir, &steps) {
        panic!("{e}");
    }
}

#[test]
fn java_shim_passes_every_handler_vector() {
    let Some(classes) = compile() else { return };
    let shim = shim(classes.path(), "java", &fixture_root(), FIXTURE_ENTRY);
    match run_all(&shim) {
        Ok(n) => assert!(n >= 10, "only {n} vectors ran for {}", shim.name),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn java_shim_serves_every_supported_handler_shape() {
    let Some(classes) = compile() else { return };
    let (classes, dir) = (classes.path(), TempDir::new().unwrap());
    let dir = dir.path();

    // The default name, a one-parameter handler taking Object: payloads of every JSON type come
    // back exactly (arrays compare exactly in patterns, hence the wrapping).
    let nested = (0..60).fold(
        json!({"leaf": "🌍"}),
        |inner, i| json!({"level": i, "in": [inner]}),
    );
    let payloads = [
        json!({"s": "héllo 😀 \"q\" \\ \n\t\u{1} \u{2028} 中文", "e": {}, "a": [], "z": null}),
        json!({"n": [0, -1, 9_007_199_254_740_993_u64, 12_345_678_901_234_567_890_u64,
            i64::MIN, 1.5, -2.5e-8, 1e300, true, false]}),
        nested,
        json!([1, "two", [3]]),
        json!("just a string"),
        json!(42),
        json!(null),
        json!(false),
    ];
    let mut steps = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let id = format!("r{i}");
        steps.push(request(&id, payload.clone()));
        steps.push(result(&id, json!({"echo": [payload]})));
    }
    serve(classes, dir, "Shapes.java", "handler", steps);

    // Class::method, a package-private method with the context; void gives null.
    serve(
        classes,
        dir,
        "Shapes.java",
        "Shapes::quiet",
        vec![
            request("r1", json!({"a": 1, "b": 2})),
            result("r1", json!({"attempt": 3, "keys": ["a", "b"]})),
        ],
    );
    serve(
        classes,
        dir,
        "Shapes.java",
        "nothing",
        vec![request("r1", json!({})), result("r1", Value::Null)],
    );
    // Records, enums, Optional, arrays, chars, floats, BigDecimal and other objects.
    serve(
        classes,
        dir,
        "Shapes.java",
        "values",
        vec![
            request("r1", json!({})),
            result(
                "r1",
                json!([{"x": 1, "y": -2, "tags": ["a"]}, "RED", null, "x", [1, 2], "hi", "c",
                    2.5, 1.50, "sb", [true, false]]),
            ),
        ],
    );
    // Results with no JSON encoding fail the request; the executor keeps serving.
    for handler in ["cycle", "lonesurrogate"] {
        serve(
            classes,
            dir,
            "Shapes.java",
            handler,
            vec![
                request("r1", json!({})),
                error("r1", "SerializationError", "result is not JSON"),
                request("r2", json!({})),
                error("r2", "SerializationError", "result is not JSON"),
            ],
        );
    }
    // A checked exception: its simple class name, message, and a trace that names the handler.
    serve(
        classes,
        dir,
        "Shapes.java",
        "checked",
        vec![
            request("r1", json!({})),
            json!({"expect": {"type": "response", "id": "r1", "success": false, "error": {
                "kind": "IOException", "message": "disk on fire",
                "trace": "$contains:at Shapes.checked(Shapes.java"}}}),
        ],
    );
    // The event parameter's type is checked against the payload.
    serve(
        classes,
        dir,
        "Shapes.java",
        "strings",
        vec![
            request("r1", json!({"not": "a list"})),
            error("r1", "IllegalArgumentException", "takes a List event"),
            request("r2", json!(["a", "b"])),
            result("r2", json!({"count": 2})),
        ],
    );
    // Context.log takes the level first; the other order is an error, not a strange level.
    serve(
        classes,
        dir,
        "Shapes.java",
        "badlevel",
        vec![
            request("r1", json!({})),
            error("r1", "IllegalArgumentException", "log level must be"),
        ],
    );
    // Class::method resolves a simple class name in the entry's package, and takes a full one.
    for handler in ["Fixture::handler", "com.example.Fixture::handler"] {
        serve(
            classes,
            dir,
            FIXTURE_ENTRY,
            handler,
            vec![
                request("r1", json!({"name": "pkg"})),
                result("r1", json!({"greeting": "hello pkg"})),
            ],
        );
    }

    let out = Command::new("java")
        .arg("-cp")
        .arg(classes)
        .arg("JsonTest")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "JsonTest failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn java_shim_reports_load_failures_as_init_errors() {
    let Some(classes) = compile() else { return };
    let (classes, dir) = (classes.path(), TempDir::new().unwrap());
    let dir = dir.path();
    let root = fixture_root();
    let shapes = shim(classes, "java-init", &root, "Shapes.java");

    for (handler, kind, message) in [
        (
            "missing",
            "HandlerNotFound",
            "has no method named 'missing'",
        ),
        (
            "notAMethod",
            "HandlerNotCallable",
            "is a field, not a method",
        ),
        (
            "instance",
            "HandlerNotCallable",
            "instance method; make it static",
        ),
        (
            "primitive",
            "HandlerNotCallable",
            "not a supported handler signature",
        ),
        ("twice", "HandlerNotCallable", "overloaded"),
        (
            "Nowhere::handler",
            "ClassNotFoundException",
            "tried Nowhere",
        ),
    ] {
        refuse(&shapes, dir, init(handler), kind, message);
    }

    let mut command = init("handler");
    command["send"]["script"]["mode"] = json!("command");
    refuse(
        &shapes,
        dir,
        command,
        "UnsupportedMode",
        "handler mode only",
    );
    let mut future = init("handler");
    future["send"]["protocol"] = json!(2);
    refuse(&shapes, dir, future, "UnsupportedProtocol", "not 2");

    // A static initializer that throws: its exception, with the trace.
    let broken = shim(classes, "java-broken", &root, "Broken.java");
    let steps = [
        init("handler"),
        json!({"expect": {"type": "init_error", "error": {"kind": "IllegalStateException",
            "message": "$contains:config missing", "trace": "$contains:Broken.load"}}}),
        json!({"expect_exit": "nonzero"}),
    ];
    if let Err(e) = converse(&broken, dir, &steps) {
        panic!("{e}");
    }

    // The entry exists but was never compiled.
    let ghost_root = TempDir::new().unwrap();
    std::fs::write(
        ghost_root.path().join("Ghost.java"),
        "/* no package */ public class Ghost {}\n",
    )
    .unwrap();
    let ghost = shim(classes, "java-ghost", ghost_root.path(), "Ghost.java");
    refuse(
        &ghost,
        dir,
        init("handler"),
        "ClassNotFoundException",
        "no class for entry Ghost.java",
    );

    let missing = shim(classes, "java-missing", &root, "Missing.java");
    refuse(
        &missing,
        dir,
        init("handler"),
        "EntryNotFound",
        "Missing.java",
    );
}
