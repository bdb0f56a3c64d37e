//! The bundled samples of every language, end to end: each is invoked as the daemon embeds it
//! (dependencies from the real registries, the build with the real compiler) with a realistic
//! payload, and its result is checked. One test per sample, so they run in parallel: the
//! interpreted languages' in `interpreted`, those built by a compiler first in `compiled`.

mod compiled;
mod interpreted;

use std::time::Duration;

use hyper::Method;
use runwarm_e2e::Daemon;
use serde_json::Value;

/// The time limit of a sample's first invocation, which also bounds the wait for its prepare
/// (the daemon prepares samples lazily in tests): a Maven or PyPI download and a Go build on a
/// busy 2-core machine.
const FIRST_CALL_TIMEOUT_MS: u64 = 300_000;

/// The first invocation of `name`: waits for its prepare, insists on a completed record.
pub(super) async fn first_call(d: &Daemon, name: &str, payload: Value) -> Value {
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
pub(super) async fn script_error(d: &Daemon, name: &str, payload: Value, kind: &str) -> Value {
    let (status, rec) = d.invoke(name, "", payload).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    assert_eq!(rec["error"]["code"], "E002", "{rec:#}");
    assert_eq!(rec["error"]["kind"], kind, "{rec:#}");
    rec
}

pub(super) fn message(rec: &Value) -> &str {
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
