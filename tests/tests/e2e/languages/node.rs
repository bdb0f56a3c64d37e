//! Node and TypeScript: package.json dependencies, ESM and CommonJS, transpiling, source maps.

use super::*;

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
