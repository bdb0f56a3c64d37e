//! The samples of the interpreted languages: Python with PyPI packages, TypeScript testing its
//! own server, Ruby and PHP.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;

use super::{first_call, message, script_error};

#[tokio::test]
async fn config_check_python_validates_yaml_with_pypi_packages() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::start().await;
    let good = "name: web\nport: 8080\nreplicas: 2\nlog_level: info\nenv:\n  TZ: UTC\nhealthcheck:\n  path: /healthz\n  interval_s: 5\n";
    let rec = first_call(&d, "config-check-python", json!({"config": good})).await;
    assert_eq!(
        rec["result"],
        json!({"valid": true, "errors": [], "schema": "service config (built-in)"}),
        "{rec:#}"
    );
    assert_eq!(rec["logs"][0]["message"], "config checked", "{rec:#}");

    let bad = "name: Web!\nport: 70000\ncolour: blue\nhealthcheck:\n  path: healthz\n";
    let rec = d
        .invoke_ok("config-check-python", json!({"config": bad}))
        .await;
    assert_eq!(rec["result"]["valid"], false, "{rec:#}");
    let paths: Vec<&str> = rec["result"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["$", "$.healthcheck.path", "$.name", "$.port"],
        "{rec:#}"
    );
    let text = rec["result"]["errors"].to_string();
    assert!(text.contains("'colour' was unexpected"), "{text}");
    assert!(
        text.contains("70000 is greater than the maximum of 65535"),
        "{text}"
    );

    // Not YAML at all: an invalid config with the line, not a failed invocation.
    let rec = d
        .invoke_ok(
            "config-check-python",
            json!({"config": "name: [web\nport: 1\n"}),
        )
        .await;
    assert_eq!(rec["result"]["valid"], false);
    let why = rec["result"]["errors"][0]["message"].as_str().unwrap();
    assert!(why.starts_with("not valid YAML at line"), "{why}");

    // JSON is YAML; the caller's own schema replaces the built-in one.
    let schema = json!({"title": "feature flags", "type": "object",
        "additionalProperties": {"type": "boolean"}});
    let rec = d
        .invoke_ok(
            "config-check-python",
            json!({"config": "{\"dark_mode\": true, \"beta\": \"yes\"}", "schema": schema}),
        )
        .await;
    assert_eq!(
        rec["result"],
        json!({"valid": false, "schema": "feature flags",
            "errors": [{"path": "$.beta", "message": "'yes' is not of type 'boolean'"}]}),
        "{rec:#}"
    );

    // A broken schema is the caller's mistake: the invocation fails.
    let rec = script_error(
        &d,
        "config-check-python",
        json!({"config": "a: 1", "schema": {"properties": {"a": {"type": "nope"}}}}),
        "InvalidSchema",
    )
    .await;
    assert!(message(&rec).contains("$.properties.a.type"), "{rec:#}");

    // A clone under a new name runs the same code (its venv comes from the prepare cache).
    let (status, body) = d
        .call(
            Method::POST,
            "/v1/samples/config-check-python/clone",
            Some(json!({"name": "my-config-check"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let rec = first_call(&d, "my-config-check", json!({"config": good})).await;
    assert_eq!(rec["result"]["valid"], true, "{rec:#}");
    assert_eq!(rec["script"], "my-config-check", "{rec:#}");
}

/// Answers one HTTP request on `listener` with a JSON body, then closes; detached.
fn serve_json_once(listener: TcpListener, body: &'static str) {
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(response.as_bytes());
    });
}

#[tokio::test]
async fn api_smoke_ts_tests_its_own_server_and_a_host_endpoint() {
    if !require(&[Need::Program("node"), Need::Program("esbuild")]) {
        return;
    }
    let d = Daemon::start().await;
    let rec = first_call(&d, "api-smoke-ts", json!({})).await;
    let r = &rec["result"];
    assert_eq!(r["ok"], true, "{rec:#}");
    assert_eq!(r["self_hosted"], true);
    assert_eq!(r["status"], 200);
    assert!(
        r["url"].as_str().unwrap().starts_with("http://127.0.0.1:"),
        "{r}"
    );
    assert!(r["url"].as_str().unwrap().ends_with("/health"), "{r}");
    assert_eq!(
        r["checks"][1],
        json!({"name": "field", "ok": true, "detail": "status = \"ok\" (expected \"ok\")"})
    );
    assert_eq!(rec["logs"][0]["message"], "smoke test", "{rec:#}");

    let rec = d
        .invoke_ok(
            "api-smoke-ts",
            json!({"path": "/version", "expect_field": "build.version", "expect_value": "1.4.2"}),
        )
        .await;
    assert_eq!(rec["result"]["ok"], true, "{rec:#}");
    assert_eq!(rec["cold"], false, "the second call is warm: {rec:#}");

    let rec = script_error(
        &d,
        "api-smoke-ts",
        json!({"path": "/nope"}),
        "SmokeTestFailed",
    )
    .await;
    assert!(
        message(&rec).contains("status: 404 (expected 200)"),
        "{rec:#}"
    );
    // The trace names the TypeScript source line (esbuild's source map).
    assert!(
        rec["error"]["trace"]
            .as_str()
            .unwrap()
            .contains("smoke.ts:"),
        "{rec:#}"
    );

    // A service on the host's loopback (the sample has network = "host").
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    serve_json_once(listener, r#"{"status":"ok","build":{"version":"9.9.9"}}"#);
    let rec = d
        .invoke_ok(
            "api-smoke-ts",
            json!({"url": format!("http://127.0.0.1:{port}/health"),
                "expect_field": "build.version", "expect_value": "9.9.9"}),
        )
        .await;
    assert_eq!(rec["result"]["ok"], true, "{rec:#}");
    assert_eq!(rec["result"]["self_hosted"], false);
    assert_eq!(rec["result"]["content_type"], "application/json");

    // Nothing listens any more: the smoke test fails with the connection error.
    let rec = script_error(
        &d,
        "api-smoke-ts",
        json!({"url": format!("http://127.0.0.1:{port}/health"), "timeout_ms": 2000}),
        "SmokeTestFailed",
    )
    .await;
    assert!(message(&rec).contains("request failed"), "{rec:#}");
}

#[tokio::test]
async fn hello_ruby_greets_in_the_callers_language() {
    if !require(&[Need::Program("ruby")]) {
        return;
    }
    let d = Daemon::start().await;
    let rec = first_call(&d, "hello-ruby", json!({"name": "Ada", "lang": "de"})).await;
    assert_eq!(rec["result"]["greeting"], "hallo Ada", "{rec:#}");
    assert!(
        rec["result"]["runtime"]
            .as_str()
            .unwrap()
            .starts_with("ruby "),
        "{rec:#}"
    );
    assert_eq!(
        rec["logs"][0],
        json!({"level": "info", "message": "greeted", "fields": {"lang": "de"}}),
        "{rec:#}"
    );
    let rec = d.invoke_ok("hello-ruby", json!({})).await;
    assert_eq!(rec["result"]["greeting"], "hello world");
    assert_eq!(rec["cold"], false);
    // The schema refuses a language the handler does not know, before it runs.
    let (status, body) = d
        .invoke("hello-ruby", "", json!({"name": "Ada", "lang": "xx"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("/lang"), "{body}");
}

#[tokio::test]
async fn hello_php_greets_in_the_callers_language() {
    if !require(&[Need::Program("php")]) {
        return;
    }
    let d = Daemon::start().await;
    let rec = first_call(&d, "hello-php", json!({"name": "Ada", "lang": "fr"})).await;
    assert_eq!(rec["result"]["greeting"], "bonjour Ada", "{rec:#}");
    assert!(
        rec["result"]["runtime"]
            .as_str()
            .unwrap()
            .starts_with("php 8"),
        "{rec:#}"
    );
    assert_eq!(
        rec["logs"][0],
        json!({"level": "info", "message": "greeted", "fields": {"lang": "fr"}}),
        "{rec:#}"
    );
    let rec = d.invoke_ok("hello-php", json!({"lang": "es"})).await;
    assert_eq!(rec["result"]["greeting"], "hola world");
    assert_eq!(rec["cold"], false);
}
