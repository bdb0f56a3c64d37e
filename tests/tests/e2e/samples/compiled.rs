//! The samples a compiler builds first: Java with a JDBC driver from Maven Central, Go checking
//! a local TLS server, C# through Mono, C++ with CMake.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

use super::{first_call, message, script_error};

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
