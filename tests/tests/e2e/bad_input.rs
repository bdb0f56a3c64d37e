//! Bad input gets a clear problem+json answer and changes nothing.

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

async fn problem(d: &Daemon, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let r = d.client().request(method, path, &[], body).await.unwrap();
    let ct = r.header("content-type").unwrap_or_default().to_owned();
    assert!(
        r.status >= 400,
        "{path}: expected an error, got {}",
        r.status
    );
    assert_eq!(ct, "application/problem+json", "{path}: content type");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], r.status);
    assert!(!v["detail"].as_str().unwrap().is_empty());
    (r.status, v)
}

fn bundle(name: &str, manifest: Value, files: Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(&json!({"name": name, "manifest": manifest, "files": files})).unwrap())
}

#[tokio::test]
async fn bad_requests_are_problems() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder()
        .config("[limits]\nmax_body_bytes = 100000\nmax_payload_bytes = 50000\n")
        .start()
        .await;
    let py = json!({"runtime": "python3", "entry": "main.py"});
    let main = json!({"main.py": "def handler(e, c):\n    return 1\n"});

    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts/nope/invoke",
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(s, 404);
    assert!(p["detail"].as_str().unwrap().contains("nope"));

    let (s, _) = problem(
        &d,
        Method::POST,
        "/v1/scripts/hello-python/invoke",
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = problem(&d, Method::POST, "/v1/scripts", Some(b"[1,".to_vec())).await;
    assert_eq!(s, 400);

    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(60_000));
    let (s, _) = problem(
        &d,
        Method::POST,
        "/v1/scripts/hello-python/invoke",
        Some(big.into_bytes()),
    )
    .await;
    assert_eq!(s, 413);
    let huge = vec![b' '; 200_000];
    let (s, _) = problem(&d, Method::POST, "/v1/scripts", Some(huge)).await;
    assert_eq!(s, 413);

    for bad in ["Upper", "-dash", "a/b", "", "x".repeat(65).as_str()] {
        let (s, p) = problem(
            &d,
            Method::POST,
            "/v1/scripts",
            bundle(bad, py.clone(), main.clone()),
        )
        .await;
        assert_eq!(s, 400, "name {bad:?}: {p}");
    }
    for path in [
        "../evil.py",
        "/etc/passwd",
        "a/../../b.py",
        "a\\b.py",
        "a//b.py",
    ] {
        let files = json!({"main.py": "x", path: "y"});
        let (s, p) = problem(
            &d,
            Method::POST,
            "/v1/scripts",
            bundle("trav", py.clone(), files),
        )
        .await;
        assert_eq!(s, 400, "path {path:?}: {p}");
    }
    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts",
        bundle(
            "rt",
            json!({"runtime": "cobol", "entry": "main.py"}),
            main.clone(),
        ),
    )
    .await;
    assert_eq!(s, 400);
    assert!(p["detail"].as_str().unwrap().contains("cobol"), "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("python3"),
        "known runtimes are listed: {p}"
    );
    let (s, _) = problem(
        &d,
        Method::POST,
        "/v1/scripts",
        bundle(
            "typo",
            json!({"runtime": "python3", "entry": "main.py", "memroy_mb": 3}),
            main.clone(),
        ),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = problem(
        &d,
        Method::POST,
        "/v1/scripts",
        bundle(
            "noentry",
            json!({"runtime": "python3", "entry": "other.py"}),
            main.clone(),
        ),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = problem(&d, Method::GET, "/v1/no/such/route", None).await;
    assert_eq!(s, 404);
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let (s, _) = problem(
        &d,
        Method::POST,
        "/v1/scripts/hello-python/invoke",
        Some(deep.into_bytes()),
    )
    .await;
    assert_eq!(s, 400);

    // None of it registered anything.
    let (_, scripts) = d.call(Method::GET, "/v1/scripts", None).await;
    let names: Vec<&str> = scripts
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| ["trav", "rt", "typo", "noentry"].contains(n)),
        "{names:?}"
    );
    d.invoke_ok("hello-python", json!({})).await;
}

#[tokio::test]
async fn invalid_parameters_list_every_violation() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::start().await;
    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts/transform-python/invoke",
        Some(serde_json::to_vec(&json!({"items": [{"sku": 1, "qty": -1, "price": 2}], "currency": "euro", "extra": true})).unwrap()),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(p["code"], "E006");
    let pointers: Vec<&str> = p["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    for expected in ["/items/0/sku", "/items/0/qty", "/currency"] {
        assert!(
            pointers.contains(&expected),
            "{expected} missing in {pointers:?}"
        );
    }
    assert!(
        pointers.len() >= 4,
        "additionalProperties violation missing: {p:#}"
    );
    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts/transform-python/invoke",
        Some(b"{}".to_vec()),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(p["violations"][0]["pointer"], "", "{p}");
    // Nothing ran.
    let (_, execs) = d
        .call(Method::GET, "/v1/executions?script=transform-python", None)
        .await;
    assert!(execs.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let d = Daemon::builder().without_samples().start().await;
    let (s, doc) = d.call(Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/scripts",
        "/v1/scripts/{name}/invoke",
        "/v1/executions/{id}",
        "/v1/pools",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

/// Reproductions of the hostile review (issue 11): a manifest with the same key twice registered
/// whichever came last, a payload with the same key twice passed the schema with one value and
/// reached the script with another, and a manifest of megabytes was stored.
#[tokio::test]
async fn duplicate_keys_and_huge_manifests_are_refused() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let twice = br#"{"name": "dup", "manifest": {"runtime": "bash", "entry": "main.sh", "runtime": "python3"},
        "files": {"main.sh": "echo '{}'"}}"#;
    let (s, p) = problem(&d, Method::POST, "/v1/scripts", Some(twice.to_vec())).await;
    assert_eq!(s, 400, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"runtime\""),
        "{p}"
    );
    let (s, _) = d.call(Method::GET, "/v1/scripts/dup", None).await;
    assert_eq!(s, 404, "nothing was registered");

    let schema =
        json!({"type": "object", "properties": {"amount": {"type": "integer", "maximum": 10}}});
    let manifest = json!({"runtime": "bash", "entry": "main.sh", "params": schema});
    d.register(
        "pay",
        manifest,
        json!({"main.sh": "echo \"{\\\"amount\\\": $PARAM_AMOUNT}\"\n"}),
    )
    .await;
    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts/pay/invoke",
        Some(br#"{"amount": 1, "amount": 1000}"#.to_vec()),
    )
    .await;
    assert_eq!(s, 400, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key \"amount\""),
        "{p}"
    );

    let huge = json!({"runtime": "bash", "entry": "main.sh", "description": "x".repeat(1_100_000)});
    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts",
        bundle("huge", huge, json!({"main.sh": "echo '{}'"})),
    )
    .await;
    assert_eq!(s, 400, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("at most 1048576"),
        "{p}"
    );
}

#[tokio::test]
async fn a_payload_is_at_most_as_deep_as_its_record_can_be_read_back() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "anything",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": "def handler(event, context):\n    return {\"ok\": True}\n"}),
    )
    .await;
    let nested = |depth: usize| ("[".repeat(depth) + &"]".repeat(depth)).into_bytes();
    let (s, p) = problem(
        &d,
        Method::POST,
        "/v1/scripts/anything/invoke",
        Some(nested(126)),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("deeper than 125 levels"),
        "{p:#}"
    );
    // As deep as allowed: it runs, and its record reads back alone and in a list (a deeper
    // payload was once accepted and then skipped as unreadable by every history read).
    let r = d
        .client()
        .request(
            Method::POST,
            "/v1/scripts/anything/invoke",
            &[],
            Some(nested(125)),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let rec: Value = serde_json::from_slice(&r.body).unwrap();
    let id = rec["id"].as_str().unwrap();
    let (s, stored) = d
        .call(Method::GET, &format!("/v1/executions/{id}"), None)
        .await;
    assert_eq!(s, 200, "{stored}");
    assert_eq!(stored["payload"], rec["payload"]);
    let (s, list) = d
        .call(Method::GET, "/v1/executions?script=anything", None)
        .await;
    assert_eq!(s, 200);
    assert!(
        list.as_array().unwrap().iter().any(|r| r["id"] == id),
        "{list}"
    );
}

/// The payload reaches the script as the caller wrote it: a pretty-printed body (line breaks
/// between tokens, which must not break the executor's one-line protocol), its keys in the
/// caller's order, and an integer beyond 64 bits, which a tree of doubles would have rounded.
/// What the API refuses in a body stays refused: a repeated key, a number beyond a double.
#[tokio::test]
async fn a_payload_reaches_the_script_as_written() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    d.register(
        "echo",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": "def handler(event, context):\n    return {\"keys\": list(event), \"big\": str(event[\"big\"]), \"s\": event[\"s\"]}\n"}),
    )
    .await;
    let body = "{\n  \"zeta\": 1,\r\n\t\"big\": 123456789012345678901234567890,\n  \"s\": \"two\\nlines \\\" and  spaces\",\n  \"alpha\": [ ]\n}\n";
    let r = d
        .client()
        .request(
            Method::POST,
            "/v1/scripts/echo/invoke",
            &[],
            Some(body.as_bytes().to_vec()),
        )
        .await
        .unwrap();
    let rec: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, 200, "{rec:#}");
    assert_eq!(
        rec["result"],
        json!({"keys": ["zeta", "big", "s", "alpha"], "big": "123456789012345678901234567890",
               "s": "two\nlines \" and  spaces"}),
        "{rec:#}"
    );
    // The record keeps the number's digits too (serde_json reads it back as a double, so the
    // text is what shows it).
    let id = rec["id"].as_str().unwrap();
    let stored = d
        .client()
        .request(Method::GET, &format!("/v1/executions/{id}"), &[], None)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&stored.body);
    assert!(
        text.contains("\"big\":123456789012345678901234567890"),
        "{text}"
    );

    for (bad, why) in [
        (&br#"{"a": 1, "a": 2}"#[..], "duplicate key \"a\""),
        (br#"{"n": 1e400}"#, "not valid JSON"),
        (b"{\"a\": 1}\n{}", "not valid JSON"),
    ] {
        let (s, p) = problem(
            &d,
            Method::POST,
            "/v1/scripts/echo/invoke",
            Some(bad.to_vec()),
        )
        .await;
        assert_eq!(s, 400, "{p:#}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{why}: {p:#}");
    }
}
