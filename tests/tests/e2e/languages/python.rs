//! Python: prepare with requirements, warm calls, failing lines, prepare failures.

use super::*;

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
