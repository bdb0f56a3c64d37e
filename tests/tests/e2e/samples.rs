//! The bundled samples of every language, end to end: each is invoked as the daemon embeds it
//! (dependencies from the real registries, the build with the real compiler) with a realistic
//! payload, and its result is checked. One test per sample, so they run in parallel.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

/// The time limit of a sample's first invocation, which also bounds the wait for its prepare
/// (the daemon prepares samples lazily in tests): a Maven or PyPI download and a Go build on a
/// busy 2-core machine.
const FIRST_CALL_TIMEOUT_MS: u64 = 300_000;

/// The first invocation of `name`: waits for its prepare, insists on a completed record.
async fn first_call(d: &Daemon, name: &str, payload: Value) -> Value {
    // Asynchronously, then polled: the prepare (a Go build, a Maven download) can take longer
    // on a busy machine than the harness's client waits for one answer.
    let body = serde_json::to_vec(&payload).unwrap();
    let (status, accepted) = d
        .raw(
            Method::POST,
            &format!("/v1/scripts/{name}/invoke?timeout_ms={FIRST_CALL_TIMEOUT_MS}"),
            &[
                ("content-type", "application/json"),
                ("prefer", "respond-async"),
            ],
            Some(body),
        )
        .await;
    assert_eq!(status, 202, "{accepted}\n{}", d.report());
    let id = accepted["id"].as_str().unwrap();
    let rec = d
        .wait_terminal_within(id, Duration::from_millis(FIRST_CALL_TIMEOUT_MS + 30_000))
        .await;
    assert_eq!(rec["state"], "completed", "{rec:#}\n{}", d.report());
    rec
}

/// An invocation that must fail with a script error (E002) of `kind`; returns the record.
async fn script_error(d: &Daemon, name: &str, payload: Value, kind: &str) -> Value {
    let (status, rec) = d.invoke(name, "", payload).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E002", "{rec:#}");
    assert_eq!(rec["error"]["kind"], kind, "{rec:#}");
    rec
}

fn message(rec: &Value) -> &str {
    rec["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_samples_of_every_language_are_listed() {
    let d = Daemon::start().await;
    let (status, list) = d.call(Method::GET, "/v1/samples", None).await;
    assert_eq!(status, 200, "{list}");
    for (id, runtime) in [
        ("config-check-python", "python3"),
        ("api-smoke-ts", "typescript"),
        ("db-health-java", "java"),
        ("tls-expiry-go", "go"),
        ("transform-csharp", "csharp"),
        ("checksum-cpp", "cpp"),
        ("hello-ruby", "ruby"),
        ("hello-php", "php"),
    ] {
        let sample = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {list:#}"));
        assert_eq!(sample["runtime"], runtime, "{sample}");
        assert!(!sample["description"].as_str().unwrap().is_empty());
        let (status, script) = d
            .call(Method::GET, &format!("/v1/scripts/{id}"), None)
            .await;
        assert_eq!(status, 200, "{id} is not registered at start: {script}");
    }
}

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
async fn db_health_java_round_trips_through_sqlite_jdbc() {
    if !require(&[
        Need::Program("java"),
        Need::Program("javac"),
        Need::Program("mvn"),
    ]) {
        return;
    }
    let d = Daemon::start().await;
    let rec = first_call(&d, "db-health-java", json!({})).await;
    let r = &rec["result"];
    assert_eq!(r["ok"], true, "{rec:#}");
    assert_eq!(r["path"], "/tmp/runwarm-db-health.sqlite");
    assert_eq!(r["created"], true, "{r}");
    assert_eq!(r["probe_id"], 1);
    assert_eq!(r["quick_check"], "ok");
    assert!(
        r["sqlite_version"].as_str().unwrap().starts_with("3."),
        "{r}"
    );
    assert!(
        r["driver"].as_str().unwrap().starts_with("SQLite JDBC"),
        "{r}"
    );
    for t in [
        "connect_ms",
        "version_ms",
        "write_ms",
        "read_ms",
        "integrity_ms",
        "total_ms",
    ] {
        assert!(r["timings"][t].is_number(), "{t} missing: {r}");
    }

    // The same executor, the same private /tmp: the file is there, the probe id goes on.
    let rec = d.invoke_ok("db-health-java", json!({"keep_rows": 1})).await;
    assert_eq!(rec["cold"], false, "{rec:#}");
    assert_eq!(rec["result"]["created"], false, "{rec:#}");
    assert_eq!(rec["result"]["probe_id"], 2);
    assert_eq!(rec["result"]["rows"], 1, "keep_rows prunes: {rec:#}");

    let rec = d
        .invoke_ok("db-health-java", json!({"path": ":memory:"}))
        .await;
    assert_eq!(rec["result"]["ok"], true, "{rec:#}");
    assert_eq!(rec["result"]["probe_id"], 1);

    let rec = script_error(
        &d,
        "db-health-java",
        json!({"path": "/no/such/dir/x.db"}),
        "IllegalArgumentException",
    )
    .await;
    assert!(message(&rec).contains("/no/such/dir/x.db"), "{rec:#}");
}

/// `openssl s_server` on 127.0.0.1 with a fresh self-signed certificate valid for 30 days;
/// killed when dropped.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &std::path::Path) -> TlsServer {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            ])
            .args(["-subj", "/CN=localhost", "-addext"])
            .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl req");
        assert!(status.success(), "openssl req failed");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let server = TlsServer { child, port };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "openssl s_server is not listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn tls_expiry_go_reads_a_local_certificate_and_checks_ports() {
    if !require(&[Need::Program("go"), Need::Program("openssl")]) {
        return;
    }
    let d = Daemon::start().await;
    let server = TlsServer::start(d.dir());
    let rec = first_call(
        &d,
        "tls-expiry-go",
        json!({"host": "127.0.0.1", "port": server.port}),
    )
    .await;
    let r = &rec["result"];
    assert_eq!(r["ok"], true, "{rec:#}");
    assert_eq!(r["reachable"], true);
    assert!(r["connect_ms"].is_number(), "{r}");
    assert_eq!(r["tls"]["version"], "TLS 1.3", "{r}");
    let cert = &r["tls"]["certificate"];
    assert_eq!(cert["subject"], "CN=localhost", "{cert}");
    assert_eq!(cert["dns_names"], json!(["localhost"]));
    let days = cert["days_left"].as_f64().unwrap();
    assert!((29.0..=30.0).contains(&days), "{cert}");
    // Self-signed: reported, not refused.
    assert_eq!(cert["verified"], false);
    assert!(
        cert["verify_error"]
            .as_str()
            .unwrap()
            .contains("unknown authority"),
        "{cert}"
    );
    assert_eq!(rec["logs"][0]["message"], "certificate read", "{rec:#}");

    let rec = script_error(
        &d,
        "tls-expiry-go",
        json!({"host": "127.0.0.1", "port": server.port, "min_days": 60}),
        "CertificateExpiring",
    )
    .await;
    assert!(message(&rec).contains("fewer than 60"), "{rec:#}");

    // TCP only, against a plain listener; then against a port nobody listens on.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = plain.local_addr().unwrap().port();
    let rec = d
        .invoke_ok(
            "tls-expiry-go",
            json!({"host": "127.0.0.1", "port": port, "tls": false}),
        )
        .await;
    assert_eq!(
        (
            &rec["result"]["ok"],
            &rec["result"]["reachable"],
            &rec["result"]["tls"]
        ),
        (&json!(true), &json!(true), &Value::Null),
        "{rec:#}"
    );
    // A listener that never speaks TLS: the handshake runs into the time limit.
    let rec = script_error(
        &d,
        "tls-expiry-go",
        json!({"host": "127.0.0.1", "port": port, "timeout_ms": 500}),
        "HandshakeFailed",
    )
    .await;
    assert!(message(&rec).contains("handshake"), "{rec:#}");
    drop(plain);
    let rec = script_error(
        &d,
        "tls-expiry-go",
        json!({"host": "127.0.0.1", "port": port, "timeout_ms": 1000}),
        "Unreachable",
    )
    .await;
    assert!(message(&rec).contains("connection refused"), "{rec:#}");
}

#[tokio::test]
async fn transform_csharp_normalises_records() {
    if !require(&[Need::Program("mcs"), Need::Program("mono")]) {
        return;
    }
    let d = Daemon::start().await;
    let records = json!([
        {" Customer Name ": "  Ada Lovelace ", "Amount": 12.5, "E-Mail": " ada@example.org "},
        {"customer name": "Bob", "AMOUNT": " 7.25 "},
        {"Note": "   ", "other": null},
        {"customer_name": "Cy", "amount": "n/a"},
        {"customer_name": "Di", "amount": 3}
    ]);
    let rec = first_call(&d, "transform-csharp", json!({"records": records})).await;
    let r = &rec["result"];
    assert_eq!(r["count"], 4, "{rec:#}");
    assert_eq!(r["dropped"], 1);
    assert_eq!(r["keys"], json!(["amount", "customer_name", "e_mail"]));
    assert_eq!(
        r["records"][0],
        json!({"customer_name": "Ada Lovelace", "amount": 12.5, "e_mail": "ada@example.org"})
    );
    assert_eq!(
        r["records"][1],
        json!({"customer_name": "Bob", "amount": 7.25})
    );
    assert_eq!(
        r["sum"],
        json!({"field": "amount", "total": 22.75, "values": 3})
    );
    assert_eq!(
        r["warnings"],
        json!(["records[3].amount is not a number: n/a"])
    );
    assert_eq!(rec["logs"][0]["message"], "records normalised", "{rec:#}");

    let rec = d
        .invoke_ok(
            "transform-csharp",
            json!({"records": [{"Qty": 2}, {"qty ": 3}], "sum_field": " QTY "}),
        )
        .await;
    assert_eq!(
        rec["result"]["sum"],
        json!({"field": "qty", "total": 5.0, "values": 2})
    );
    assert_eq!(rec["cold"], false, "{rec:#}");
}

#[tokio::test]
async fn checksum_cpp_matches_known_vectors() {
    if !require(&[Need::Program("g++")]) {
        return;
    }
    let d = Daemon::start().await;
    let rec = first_call(&d, "checksum-cpp", json!({"text": "hello world"})).await;
    assert_eq!(
        rec["result"],
        json!({"bytes": 11, "crc32": "0d4a1185", "fnv1a_32": "d58b3fa7",
            "fnv1a_64": "779a65e7023cd2e7",
            "sha256": "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
            "source": "PARAM_TEXT"}),
        "{rec:#}"
    );
    assert_eq!(rec["exit_code"], 0);
    assert!(
        rec["stdout"]
            .as_str()
            .unwrap()
            .starts_with("checksums of 11 bytes"),
        "{rec:#}"
    );

    // UTF-8 beyond ASCII, and the empty text.
    let rec = d
        .invoke_ok("checksum-cpp", json!({"text": "h\u{e9}llo \u{1F600}"}))
        .await;
    assert_eq!(rec["result"]["bytes"], 11);
    assert_eq!(rec["result"]["crc32"], "8d272c32");
    assert_eq!(
        rec["result"]["sha256"],
        "a53c56966616f0ec3ed9db7ea07a6034430149528bbaba8966c284f9373669c2"
    );
    let rec = d.invoke_ok("checksum-cpp", json!({"text": ""})).await;
    assert_eq!(
        rec["result"]["sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(rec["result"]["fnv1a_64"], "cbf29ce484222325");

    // Over 32 KiB the text is not in the environment: it is read from args.json.
    let rec = d
        .invoke_ok("checksum-cpp", json!({"text": "x".repeat(40_000)}))
        .await;
    assert_eq!(rec["result"]["source"], "args.json", "{}", rec["result"]);
    assert_eq!(rec["result"]["bytes"], 40_000);
    assert_eq!(
        rec["result"]["sha256"],
        "6285332e3072b27e5b095c5c7d6e37eadd201220eb14694f9d2d0177c25a64ae"
    );
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
