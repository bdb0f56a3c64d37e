//! Every language runtime end to end, prepare included: registration prepares the version
//! (dependencies from the real registries, the build with the real compiler), two invocations
//! give the right results on one warm executor, a script error names its source line, and a
//! compile error fails the prepare and every invocation with the compiler's message.

use std::fmt::Write as _;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, PREPARE_BOUND, require};
use serde_json::{Value, json};

/// The manifest of a script of `runtime` whose entry is `entry`.
fn manifest(runtime: &str, entry: &str) -> Value {
    json!({"runtime": runtime, "entry": entry})
}

/// The registration answer's `prepare` and the version.
async fn register(d: &Daemon, name: &str, manifest: Value, files: Value) -> (String, Value) {
    let body = d.register_answer(name, manifest, files).await;
    let version = body["version"].as_str().expect("version").to_owned();
    (version, body)
}

/// The version's prepare (`null` for a runtime without a prepare section).
async fn prepare_status(d: &Daemon, name: &str, version: &str) -> Value {
    d.prepare_status(name, version).await
}

/// Waits until the version's prepare is `ready` or `failed`.
async fn wait_settled(d: &Daemon, name: &str, version: &str) -> Value {
    d.wait_prepare(name, version, &["ready", "failed"], PREPARE_BOUND)
        .await
}

/// Polls the version until its prepare is ready and returns its status; fails if the prepare
/// failed or is not done within [`PREPARE_BOUND`], with the last status.
async fn wait_prepared(d: &Daemon, name: &str, version: &str) -> Value {
    let p = wait_settled(d, name, version).await;
    assert_eq!(
        p["state"],
        "ready",
        "{name} {version}: prepare failed: {p:#}\n{}",
        d.report()
    );
    p
}

/// Registers a version and waits until it is prepared; returns the version and its prepare
/// status (`null` for a runtime without prepare, which is checked to show none).
async fn deploy(d: &Daemon, name: &str, manifest: Value, files: Value) -> (String, Value) {
    let (version, answer) = register(d, name, manifest, files).await;
    match answer.get("prepare") {
        None => {
            let p = prepare_status(d, name, &version).await;
            assert_eq!(p, Value::Null, "no prepare section, yet {p:#}");
            (version, Value::Null)
        }
        Some(state) => {
            assert!(
                ["pending", "running", "ready"].contains(&state.as_str().unwrap_or("")),
                "registration answered {answer}"
            );
            let p = wait_prepared(d, name, &version).await;
            (version, p)
        }
    }
}

/// Registers a version whose prepare must fail; checks that the status and an invocation
/// (200, `failed`, E001 `PrepareFailed`) both carry every one of `needles`. Returns the status.
async fn expect_prepare_failure(
    d: &Daemon,
    name: &str,
    manifest: Value,
    files: Value,
    needles: &[&str],
) -> Value {
    let (version, answer) = register(d, name, manifest, files).await;
    assert!(
        ["pending", "running", "failed"].contains(&answer["prepare"].as_str().unwrap_or("")),
        "registration answered {answer}"
    );
    let p = wait_settled(d, name, &version).await;
    assert_eq!(
        p["state"], "failed",
        "{name}: the prepare should fail: {p:#}"
    );
    let error = p["error"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(
            error.contains(needle),
            "{name}: prepare error lacks {needle:?}: {p:#}"
        );
    }
    let (status, rec) = d.invoke(name, "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E001", "{rec:#}");
    assert_eq!(rec["error"]["kind"], "PrepareFailed", "{rec:#}");
    let message = rec["error"]["message"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(
            message.contains(needle),
            "{name}: the invocation's error lacks {needle:?}: {rec:#}"
        );
    }
    eprintln!(
        "timing {name}: failed prepare {} ms; error: {}",
        ms(&p["duration_ms"]),
        error.lines().take(6).collect::<Vec<_>>().join(" | ")
    );
    p
}

/// Invokes twice; the first starts an executor, the second is served warm by the same one.
/// Returns both records.
async fn two_calls(d: &Daemon, name: &str, first: Value, second: Value) -> (Value, Value) {
    let a = d.invoke_ok(name, first).await;
    let b = d.invoke_ok(name, second).await;
    assert_eq!(a["cold"], true, "{a:#}");
    assert_eq!(b["cold"], false, "the second call was not warm: {b:#}");
    assert!(a["executor"]["pid"].is_u64(), "{a:#}");
    assert_eq!(
        a["executor"]["pid"], b["executor"]["pid"],
        "not served by the same executor: {a:#}\n{b:#}"
    );
    assert_eq!(b["executor"]["invocations"], 2, "{b:#}");
    (a, b)
}

/// Invokes expecting the script itself to fail: 200, `failed`, E002. Returns the record.
async fn script_error(d: &Daemon, name: &str, payload: Value) -> Value {
    let (status, rec) = d.invoke(name, "", payload).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E002", "{rec:#}");
    rec
}

/// Whether the error's trace (or message) has `needle`.
fn assert_trace_has(rec: &Value, needle: &str) {
    let trace = rec["error"]["trace"].as_str().unwrap_or_default();
    let message = rec["error"]["message"].as_str().unwrap_or_default();
    assert!(
        trace.contains(needle) || message.contains(needle),
        "the error does not name {needle:?}: {rec:#}"
    );
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.0}"))
}

/// Prints what the prepare and the two calls took (shown with `--nocapture`).
fn timings(runtime: &str, prepare: &Value, first: &Value, warm: &Value) {
    let mut line = format!(
        "timing {runtime}: prepare {} ms",
        ms(&prepare["duration_ms"])
    );
    for step in ["dependencies", "build"] {
        let s = &prepare[step];
        if s.is_object() {
            let _ = write!(
                line,
                ", {step} {} ms{}",
                ms(&s["duration_ms"]),
                if s["cached"] == true { " (cached)" } else { "" }
            );
        }
    }
    let _ = write!(
        line,
        "; first call {} ms (cold start {} ms), warm call {} ms",
        ms(&first["timings"]["total_ms"]),
        ms(&first["timings"]["cold_start_ms"]),
        ms(&warm["timings"]["total_ms"]),
    );
    eprintln!("{line}");
}

/// The runtime's prepare cache figures from `GET /v1/runtimes`.
async fn cache_figures(d: &Daemon, runtime: &str) -> Value {
    let (status, body) = d.call(Method::GET, "/v1/runtimes", None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("a list of runtimes")
        .iter()
        .find(|r| r["name"] == runtime)
        .unwrap_or_else(|| panic!("no runtime {runtime} in {body:#}"))["cache"]
        .clone()
}

async fn daemon() -> Daemon {
    Daemon::builder().without_samples().start().await
}

// ---------------------------------------------------------------------------------------------
// Python

const PY_HANDLER: &str = "\
def handler(event, context):
    if event.get(\"fail\"):
        raise ValueError(\"asked to fail\")
    return {\"double\": event[\"n\"] * 2}
";

#[tokio::test]
async fn python_prepares_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = daemon().await;
    let (_, p) = deploy(
        &d,
        "py",
        manifest("python3", "main.py"),
        json!({"main.py": PY_HANDLER}),
    )
    .await;
    assert!(p["build"].is_object(), "byte-compiled: {p:#}");
    let (a, b) = two_calls(&d, "py", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("python3", &p, &a, &b);
    let rec = script_error(&d, "py", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "ValueError", "{rec:#}");
    assert_trace_has(&rec, "line 3");
    assert_trace_has(&rec, "asked to fail");
}

#[tokio::test]
async fn python_syntax_error_fails_the_prepare() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = daemon().await;
    expect_prepare_failure(
        &d,
        "pysyntax",
        manifest("python3", "main.py"),
        json!({"main.py": "def handler(event, context)\n    return 1\n"}),
        &["SyntaxError", "main.py"],
    )
    .await;
}

#[tokio::test]
async fn python_requirements_are_installed_once_and_shared() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = daemon().await;
    let reqs = "six==1.16.0\n";
    let code =
        "import six\n\ndef handler(event, context):\n    return {\"six\": six.__version__}\n";
    let (_, p) = deploy(
        &d,
        "six",
        manifest("python3", "main.py"),
        json!({"main.py": code, "requirements.txt": reqs}),
    )
    .await;
    assert_eq!(p["dependencies"]["cached"], false, "{p:#}");
    assert!(
        p["dependencies"]["log"]
            .as_str()
            .unwrap_or_default()
            .contains("six"),
        "{p:#}"
    );
    let (a, b) = two_calls(&d, "six", json!({}), json!({})).await;
    assert_eq!(a["result"], json!({"six": "1.16.0"}), "not the pinned six");
    timings("python3 (six)", &p, &a, &b);

    // Another version (different code) with the same requirements: the same environment.
    let before = cache_figures(&d, "python3").await;
    let code2 =
        "import six\n\ndef handler(event, context):\n    return {\"again\": six.__version__}\n";
    let (_, p2) = deploy(
        &d,
        "six",
        manifest("python3", "main.py"),
        json!({"main.py": code2, "requirements.txt": reqs}),
    )
    .await;
    let after = cache_figures(&d, "python3").await;
    assert_eq!(p2["dependencies"]["cached"], true, "{p2:#}");
    assert_eq!(
        p2["dependencies"]["key"], p["dependencies"]["key"],
        "{p2:#}"
    );
    assert_eq!(p2["build"]["cached"], false, "{p2:#}");
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v:#}"));
    assert_eq!(
        count(&after, "misses"),
        count(&before, "misses") + 1,
        "only the new version's build may miss: before {before:#}, after {after:#}"
    );
    assert!(
        count(&after, "hits") > count(&before, "hits"),
        "before {before:#}, after {after:#}"
    );
    let c = d.invoke_ok("six", json!({})).await;
    assert_eq!(c["result"], json!({"again": "1.16.0"}));
}

#[tokio::test]
async fn python_unknown_requirement_fails_the_prepare() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = daemon().await;
    let p = expect_prepare_failure(
        &d,
        "pybadreq",
        manifest("python3", "main.py"),
        json!({"main.py": PY_HANDLER, "requirements.txt": "no-such-package-xyz==1\n"}),
        &["no-such-package-xyz"],
    )
    .await;
    assert!(
        p["build"].is_null(),
        "no build after a failed install: {p:#}"
    );
    let failures = cache_figures(&d, "python3").await["failures"].as_u64();
    assert!(failures.is_some_and(|f| f >= 1), "{failures:?}");
}

#[tokio::test]
async fn an_invocation_waits_for_a_version_still_preparing() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = daemon().await;
    let code =
        "import six\n\ndef handler(event, context):\n    return {\"six\": six.__version__}\n";
    let (version, answer) = register(
        &d,
        "eager",
        manifest("python3", "main.py"),
        json!({"main.py": code, "requirements.txt": "six==1.16.0\n"}),
    )
    .await;
    assert!(
        ["pending", "running"].contains(&answer["prepare"].as_str().unwrap_or("")),
        "{answer}"
    );
    let rec = d.invoke_ok("eager", json!({})).await;
    assert_eq!(rec["result"], json!({"six": "1.16.0"}));
    assert_eq!(
        prepare_status(&d, "eager", &version).await["state"],
        "ready"
    );
}

// ---------------------------------------------------------------------------------------------
// Node and TypeScript

#[tokio::test]
async fn node_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("node")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
export async function handler(event) {
  if (event.fail) {
    throw new RangeError(\"asked to fail\");
  }
  return { double: event.n * 2 };
}
";
    let (_, p) = deploy(
        &d,
        "js",
        manifest("node", "main.mjs"),
        json!({"main.mjs": src}),
    )
    .await;
    let (a, b) = two_calls(&d, "js", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("node", &p, &a, &b);
    let rec = script_error(&d, "js", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "RangeError", "{rec:#}");
    assert_trace_has(&rec, "main.mjs:3");
}

#[tokio::test]
async fn node_package_json_dependency_resolves_from_esm_and_commonjs() {
    if !require(&[Need::Program("node"), Need::Program("npm")]) {
        return;
    }
    let d = daemon().await;
    let package =
        r#"{"name": "deps-check", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}"#;
    let esm = "\
import isNumber from \"is-number\";
export function handler(event) {
  return { number: isNumber(event.v), text: isNumber(\"x\") };
}
";
    let (_, p) = deploy(
        &d,
        "isnum-esm",
        manifest("node", "index.mjs"),
        json!({"index.mjs": esm, "package.json": package}),
    )
    .await;
    assert_eq!(p["dependencies"]["cached"], false, "{p:#}");
    let (a, b) = two_calls(&d, "isnum-esm", json!({"v": "5"}), json!({"v": 7})).await;
    assert_eq!(a["result"], json!({"number": true, "text": false}));
    assert_eq!(b["result"], json!({"number": true, "text": false}));
    timings("node (is-number, ESM)", &p, &a, &b);

    let cjs = "\
const isNumber = require(\"is-number\");
const { version } = require(\"is-number/package.json\");
exports.handler = (event) => ({ number: isNumber(event.v), version });
";
    let (_, p2) = deploy(
        &d,
        "isnum-cjs",
        manifest("node", "index.js"),
        json!({"index.js": cjs, "package.json": package}),
    )
    .await;
    assert_eq!(
        p2["dependencies"]["cached"], true,
        "the same package.json shares the install: {p2:#}"
    );
    let (a, b) = two_calls(&d, "isnum-cjs", json!({"v": "1e3"}), json!({"v": "no"})).await;
    assert_eq!(a["result"], json!({"number": true, "version": "7.0.0"}));
    assert_eq!(b["result"], json!({"number": false, "version": "7.0.0"}));
    timings("node (is-number, CommonJS)", &p2, &a, &b);
}

#[tokio::test]
async fn typescript_transpiles_runs_warm_and_maps_the_failing_line() {
    if !require(&[Need::Program("node"), Need::Program("esbuild")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
interface Event { n: number; fail?: boolean }
export function handler(event: Event): { double: number } {
  if (event.fail) {
    throw new Error(\"asked to fail\");
  }
  return { double: event.n * 2 };
}
";
    let (_, p) = deploy(
        &d,
        "ts",
        manifest("typescript", "main.ts"),
        json!({"main.ts": src}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "ts", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("typescript", &p, &a, &b);
    let rec = script_error(&d, "ts", json!({"n": 1, "fail": true})).await;
    assert_eq!(rec["error"]["kind"], "Error", "{rec:#}");
    // The source map turns the transpiled line into the .ts one.
    assert_trace_has(&rec, "main.ts:4");
}

#[tokio::test]
async fn typescript_syntax_error_fails_the_prepare() {
    if !require(&[Need::Program("node"), Need::Program("esbuild")]) {
        return;
    }
    let d = daemon().await;
    expect_prepare_failure(
        &d,
        "tsbad",
        manifest("typescript", "main.ts"),
        json!({"main.ts": "export function handler(event: any {\n  return 1;\n}\n"}),
        &["main.ts:1:", "ERROR", "Expected"],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Java

const JAVA_HANDLER: &str = "\
import java.util.Map;

public class Check {
    public static Object handler(Map<String, Object> event, runwarm.Context ctx) {
        if (Boolean.TRUE.equals(event.get(\"fail\"))) {
            throw new IllegalStateException(\"asked to fail\");
        }
        long n = ((Number) event.get(\"n\")).longValue();
        return Map.of(\"double\", n * 2);
    }
}
";

#[tokio::test]
async fn java_compiles_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("javac"), Need::Program("java")]) {
        return;
    }
    let d = daemon().await;
    let (_, p) = deploy(
        &d,
        "java",
        manifest("java", "Check.java"),
        json!({"Check.java": JAVA_HANDLER}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "java", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("java", &p, &a, &b);
    let rec = script_error(&d, "java", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "IllegalStateException", "{rec:#}");
    assert_trace_has(&rec, "Check.java:6");
}

#[tokio::test]
async fn java_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("javac"), Need::Program("java")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
import java.util.Map;
public class Check {
    public static Object handler(Map<String, Object> event) { return undefinedThing; }
}
";
    expect_prepare_failure(
        &d,
        "javabad",
        manifest("java", "Check.java"),
        json!({"Check.java": src}),
        &["Check.java:3: error", "undefinedThing"],
    )
    .await;
}

#[tokio::test]
async fn java_maven_dependency_is_on_the_classpath() {
    if !require(&[
        Need::Program("javac"),
        Need::Program("java"),
        Need::Program("mvn"),
    ]) {
        return;
    }
    let d = daemon().await;
    let pom = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runwarm.test</groupId>
  <artifactId>gson-check</artifactId>
  <version>1.0.0</version>
  <dependencies>
    <dependency>
      <groupId>com.google.code.gson</groupId>
      <artifactId>gson</artifactId>
      <version>2.11.0</version>
    </dependency>
  </dependencies>
</project>
"#;
    let src = "\
import com.google.gson.Gson;
import java.util.Map;
import java.util.TreeMap;

public class Pretty {
    public static Object handler(Map<String, Object> event) {
        String jar = Gson.class.getProtectionDomain().getCodeSource().getLocation().getPath();
        return Map.of(\"json\", new Gson().toJson(new TreeMap<>(event)),
                \"jar\", jar.substring(jar.lastIndexOf('/') + 1));
    }
}
";
    let (_, p) = deploy(
        &d,
        "gson",
        manifest("java", "Pretty.java"),
        json!({"Pretty.java": src, "pom.xml": pom}),
    )
    .await;
    assert_eq!(p["dependencies"]["cached"], false, "{p:#}");
    let (a, b) = two_calls(&d, "gson", json!({"b": 2, "a": "x"}), json!({"k": true})).await;
    assert_eq!(
        a["result"],
        json!({"json": "{\"a\":\"x\",\"b\":2}", "jar": "gson-2.11.0.jar"})
    );
    assert_eq!(b["result"]["json"], "{\"k\":true}");
    timings("java (gson)", &p, &a, &b);
}

// ---------------------------------------------------------------------------------------------
// Go

const GO_HANDLER: &str = "\
package main

import (
	\"context\"

	\"runwarm.dev/runwarm\"
)

type Event struct {
	N    int  `json:\"n\"`
	Fail bool `json:\"fail\"`
}

func handler(ctx context.Context, e Event) (map[string]int, error) {
	if e.Fail {
		panic(\"asked to fail\")
	}
	return map[string]int{\"double\": e.N * 2}, nil
}

func main() { runwarm.Start(handler) }
";

#[tokio::test]
async fn go_builds_runs_warm_and_names_the_panicking_line() {
    if !require(&[Need::Program("go")]) {
        return;
    }
    let d = daemon().await;
    let (_, p) = deploy(
        &d,
        "go",
        manifest("go", "main.go"),
        json!({"main.go": GO_HANDLER}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "go", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("go", &p, &a, &b);
    let rec = script_error(&d, "go", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "panic", "{rec:#}");
    assert_trace_has(&rec, "main.go:16");
}

#[tokio::test]
async fn go_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("go")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
package main

import \"runwarm.dev/runwarm\"

func handler() int {
	unused := 1
	return 2
}

func main() { runwarm.Start(handler) }
";
    expect_prepare_failure(
        &d,
        "gobad",
        manifest("go", "main.go"),
        json!({"main.go": src}),
        &["main.go:6:2:", "declared and not used"],
    )
    .await;
}

#[tokio::test]
async fn go_module_dependency_comes_from_the_proxy() {
    if !require(&[Need::Program("go")]) {
        return;
    }
    let d = daemon().await;
    let go_mod =
        "module example.com/uuidcheck\n\ngo 1.21\n\nrequire github.com/google/uuid v1.6.0\n";
    // `go mod download github.com/google/uuid` in a module like this one writes these lines.
    let go_sum = "\
github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=
";
    let src = "\
package main

import (
	\"github.com/google/uuid\"
	\"runwarm.dev/runwarm\"
)

func handler(e map[string]string) (map[string]string, error) {
	id := uuid.NewSHA1(uuid.NameSpaceDNS, []byte(e[\"name\"]))
	return map[string]string{\"id\": id.String()}, nil
}

func main() { runwarm.Start(handler) }
";
    let (_, p) = deploy(
        &d,
        "gouuid",
        manifest("go", "main.go"),
        json!({"main.go": src, "go.mod": go_mod, "go.sum": go_sum}),
    )
    .await;
    assert_eq!(p["dependencies"]["cached"], false, "{p:#}");
    let (a, b) = two_calls(
        &d,
        "gouuid",
        json!({"name": "runwarm.dev"}),
        json!({"name": "runwarm.dev"}),
    )
    .await;
    // Python's uuid.uuid5(uuid.NAMESPACE_DNS, "runwarm.dev").
    assert_eq!(
        a["result"],
        json!({"id": "adb1520f-7e2c-5e2a-8b63-89627e6859a5"})
    );
    assert_eq!(b["result"], a["result"]);
    timings("go (uuid)", &p, &a, &b);
}

// ---------------------------------------------------------------------------------------------
// C#

#[tokio::test]
async fn csharp_compiles_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
using System;
using System.Collections.Generic;

public static class Functions
{
    public static object handler(Dictionary<string, object> ev, Runwarm.Context ctx)
    {
        if (ev.ContainsKey(\"fail\"))
        {
            throw new InvalidOperationException(\"asked to fail\");
        }
        return new Dictionary<string, object> { { \"double\", (long)ev[\"n\"] * 2 } };
    }
}
";
    let (_, p) = deploy(
        &d,
        "cs",
        manifest("csharp", "Main.cs"),
        json!({"Main.cs": src}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "cs", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("csharp", &p, &a, &b);
    let rec = script_error(&d, "cs", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "InvalidOperationException", "{rec:#}");
    // Mono writes `in /var/task/Main.cs:10` (not .NET's `:line 10`).
    assert_trace_has(&rec, "Main.cs:10");
}

#[tokio::test]
async fn csharp_command_mode_program_runs_in_the_warm_sandbox() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
using System;

public static class Program
{
    public static int Main()
    {
        string input = Console.In.ReadToEnd().Trim();
        if (input.Contains(\"fail\"))
        {
            throw new InvalidOperationException(\"asked to fail\");
        }
        Console.WriteLine(\"{\\\"echo\\\": \" + input + \"}\");
        return 0;
    }
}
";
    let mut m = manifest("csharp", "Program.cs");
    m["mode"] = json!("command");
    let (_, p) = deploy(&d, "cscmd", m, json!({"Program.cs": src})).await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "cscmd", json!({"n": 1}), json!({"n": 2})).await;
    assert_eq!(a["result"], json!({"echo": {"n": 1}}), "{a:#}");
    assert_eq!(b["result"], json!({"echo": {"n": 2}}), "{b:#}");
    timings("csharp (command)", &p, &a, &b);
    let rec = script_error(&d, "cscmd", json!({"fail": true})).await;
    assert_ne!(rec["exit_code"], 0, "{rec:#}");
    let stderr = rec["stderr"].as_str().unwrap_or_default();
    assert!(
        stderr.contains("asked to fail") && stderr.contains("Program.cs:10"),
        "{rec:#}"
    );
}

#[tokio::test]
async fn csharp_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
public static class Functions
{
    public static object handler() { return undefinedThing; }
}
";
    expect_prepare_failure(
        &d,
        "csbad",
        manifest("csharp", "Main.cs"),
        json!({"Main.cs": src}),
        &["Main.cs(3,45): error CS0103", "undefinedThing"],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// C and C++ (command mode: a fresh process per request inside the warm sandbox)

const C_PROGRAM: &str = "\
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char buf[4096];
    size_t len = fread(buf, 1, sizeof buf - 1, stdin);
    buf[len] = 0;
    if (strstr(buf, \"fail\")) {
        fprintf(stderr, \"asked to fail at main.c:%d\\n\", __LINE__);
        return 3;
    }
    const char *n = strstr(buf, \"\\\"n\\\":\");
    double v = n ? atof(n + 4) : 0;
    printf(\"{\\\"double\\\": %g, \\\"root\\\": %g}\\n\", v * 2, sqrt(v));
    return 0;
}
";

#[tokio::test]
async fn c_compiles_with_manifest_flags_and_runs_in_the_warm_sandbox() {
    if !require(&[Need::Program("gcc")]) {
        return;
    }
    let d = daemon().await;
    let mut m = manifest("c", "main.c");
    m["build"] = json!({"flags": ["-lm"]});
    let (_, p) = deploy(&d, "c", m, json!({"main.c": C_PROGRAM})).await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "c", json!({"n": 16}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 32, "root": 4}), "{a:#}");
    assert_eq!(b["result"], json!({"double": 8, "root": 2}), "{b:#}");
    assert_eq!(a["exit_code"], 0);
    timings("c", &p, &a, &b);
    let rec = script_error(&d, "c", json!({"fail": true})).await;
    assert_eq!(rec["exit_code"], 3, "{rec:#}");
    assert!(
        rec["stderr"]
            .as_str()
            .unwrap_or_default()
            .contains("asked to fail at main.c:11"),
        "{rec:#}"
    );
}

#[tokio::test]
async fn c_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("gcc")]) {
        return;
    }
    let d = daemon().await;
    let src = "#include <stdio.h>\n\nint main(void) { return undefined_thing; }\n";
    expect_prepare_failure(
        &d,
        "cbad",
        manifest("c", "main.c"),
        json!({"main.c": src}),
        &["main.c:3:25: error", "undefined_thing"],
    )
    .await;
}

#[tokio::test]
async fn cpp_compiles_and_runs_in_the_warm_sandbox() {
    if !require(&[Need::Program("g++")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>

int main() {
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (in.find(\"fail\") != std::string::npos) {
        throw std::runtime_error(\"asked to fail\");
    }
    auto at = in.find(\"\\\"n\\\":\");
    long n = at == std::string::npos ? 0 : std::stol(in.substr(at + 4));
    std::cout << \"{\\\"double\\\": \" << n * 2 << \"}\" << std::endl;
    return 0;
}
";
    let (_, p) = deploy(
        &d,
        "cpp",
        manifest("cpp", "main.cpp"),
        json!({"main.cpp": src}),
    )
    .await;
    assert!(p["build"].is_object(), "{p:#}");
    let (a, b) = two_calls(&d, "cpp", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}), "{a:#}");
    assert_eq!(b["result"], json!({"double": 8}), "{b:#}");
    timings("cpp", &p, &a, &b);
    // An uncaught exception: std::terminate prints it and aborts (SIGABRT).
    let rec = script_error(&d, "cpp", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "Signal", "{rec:#}");
    assert_eq!(rec["exit_code"], 134, "128 + SIGABRT: {rec:#}");
    assert!(
        rec["stderr"]
            .as_str()
            .unwrap_or_default()
            .contains("asked to fail"),
        "{rec:#}"
    );
}

#[tokio::test]
async fn cpp_compile_error_fails_the_prepare() {
    if !require(&[Need::Program("g++")]) {
        return;
    }
    let d = daemon().await;
    let src = "#include <string>\n\nint main() { std::string s = 1.5; return s.size(); }\n";
    expect_prepare_failure(
        &d,
        "cppbad",
        manifest("cpp", "main.cpp"),
        json!({"main.cpp": src}),
        &["main.cpp:3:", ": error:"],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// A prebuilt binary (command mode)

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Echoes its payload back as `{"echo": PAYLOAD}`; fails with exit code 2 when it has "fail".
const BINARY_C: &str = r#"#include <stdio.h>
#include <string.h>

int main(void) {
    char b[1024];
    size_t n = fread(b, 1, sizeof b - 1, stdin);
    b[n] = 0;
    if (strstr(b, "fail")) {
        fputs("prebuilt says no\n", stderr);
        return 2;
    }
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == ' ')) {
        b[--n] = 0;
    }
    printf("{\"echo\": %s}\n", b);
    return 0;
}
"#;

#[tokio::test]
async fn binary_prebuilt_executable_runs_in_the_warm_sandbox() {
    if !require(&[Need::Program("cc")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prog.c");
    let exe = dir.path().join("prog");
    std::fs::write(&src, BINARY_C).unwrap();
    let out = std::process::Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "cc: {out:?}");
    let bytes = std::fs::read(&exe).unwrap();
    let d = daemon().await;
    let (_, p) = deploy(
        &d,
        "bin",
        manifest("binary", "prog"),
        json!({"prog": {"base64": base64(&bytes), "executable": true}}),
    )
    .await;
    assert_eq!(p, Value::Null, "the binary runtime prepares nothing");
    let (a, b) = two_calls(&d, "bin", json!({"a": 1}), json!({"ab": [1, 2]})).await;
    assert_eq!(a["result"], json!({"echo": {"a": 1}}), "{a:#}");
    assert_eq!(b["result"], json!({"echo": {"ab": [1, 2]}}), "{b:#}");
    timings("binary", &p, &a, &b);
    let rec = script_error(&d, "bin", json!({"fail": 1})).await;
    assert_eq!(rec["exit_code"], 2, "{rec:#}");
    assert!(
        rec["stderr"]
            .as_str()
            .unwrap_or_default()
            .contains("prebuilt says no"),
        "{rec:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// Ruby and PHP (no prepare)

#[tokio::test]
async fn ruby_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("ruby")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
def handler(event, context)
  raise ArgumentError, \"asked to fail\" if event[\"fail\"]
  { \"double\" => event[\"n\"] * 2 }
end
";
    let (_, p) = deploy(
        &d,
        "rb",
        manifest("ruby", "main.rb"),
        json!({"main.rb": src}),
    )
    .await;
    assert_eq!(p, Value::Null, "ruby prepares nothing");
    let (a, b) = two_calls(&d, "rb", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("ruby", &p, &a, &b);
    let rec = script_error(&d, "rb", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "ArgumentError", "{rec:#}");
    assert_trace_has(&rec, "main.rb:2");
}

#[tokio::test]
async fn php_runs_warm_and_names_the_failing_line() {
    if !require(&[Need::Program("php")]) {
        return;
    }
    let d = daemon().await;
    let src = "\
<?php
function handler(array $event, $context): array
{
    if (!empty($event['fail'])) {
        throw new RuntimeException('asked to fail');
    }
    return ['double' => $event['n'] * 2];
}
";
    let (_, p) = deploy(
        &d,
        "php",
        manifest("php", "main.php"),
        json!({"main.php": src}),
    )
    .await;
    assert_eq!(p, Value::Null, "php prepares nothing");
    let (a, b) = two_calls(&d, "php", json!({"n": 21}), json!({"n": 4})).await;
    assert_eq!(a["result"], json!({"double": 42}));
    assert_eq!(b["result"], json!({"double": 8}));
    timings("php", &p, &a, &b);
    let rec = script_error(&d, "php", json!({"fail": true})).await;
    assert_eq!(rec["error"]["kind"], "RuntimeException", "{rec:#}");
    assert_trace_has(&rec, "main.php:5");
}
