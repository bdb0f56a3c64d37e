//! C, C++ and prebuilt binaries: command mode, a fresh process per request inside the warm
//! sandbox.

use super::*;

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
