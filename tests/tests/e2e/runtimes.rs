//! Register and invoke a script of every runtime; warm reuse.

use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;

#[tokio::test]
async fn python_handler_runs_warm_on_the_second_call() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::start().await;
    let first = d.invoke_ok("hello-python", json!({"name": "a"})).await;
    let second = d.invoke_ok("hello-python", json!({"name": "b"})).await;
    assert_eq!(first["result"], json!({"greeting": "hello a"}));
    assert_eq!(second["result"], json!({"greeting": "hello b"}));
    assert_eq!(first["cold"], true, "{first:#}");
    assert_eq!(second["cold"], false, "{second:#}");
    assert_eq!(
        first["executor"]["pid"], second["executor"]["pid"],
        "not served by the same executor"
    );
    assert_eq!(second["executor"]["invocations"], 2);
    assert!(second["version"].as_str().unwrap().starts_with("sha256:"));
    assert!(second["caller"]["uid"].is_u64());
}

#[tokio::test]
async fn python_async_handler_and_exception() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let src = "import asyncio\nasync def handler(event, context):\n    await asyncio.sleep(0)\n    if event.get('fail'):\n        raise ValueError('bad value ' + str(event['fail']))\n    return {'id': context.execution_id, 'n': event['n'] * 2}\n";
    d.register(
        "apy",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": src}),
    )
    .await;
    let ok = d.invoke_ok("apy", json!({"n": 21})).await;
    assert_eq!(ok["result"]["n"], 42);
    assert_eq!(
        ok["result"]["id"], ok["id"],
        "context.execution_id is the execution id"
    );
    let (status, failed) = d.invoke("apy", "", json!({"fail": 7})).await;
    assert_eq!(status, 200);
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["error"]["code"], "E002");
    assert_eq!(failed["error"]["kind"], "ValueError");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad value 7")
    );
    assert!(
        failed["error"]["trace"]
            .as_str()
            .unwrap()
            .contains("Traceback")
    );
}

#[tokio::test]
async fn node_handlers_commonjs_and_esm() {
    if !require(&[Need::Program("node")]) {
        return;
    }
    let d = Daemon::start().await;
    let esm = d.invoke_ok("hello-node", json!({"name": "esm"})).await;
    assert_eq!(esm["result"]["greeting"], "hello esm");
    d.register(
        "cjs",
        json!({"runtime": "node", "entry": "index.js"}),
        json!({"index.js": "exports.handler = (event) => ({ sum: event.a + event.b });"}),
    )
    .await;
    let cjs = d.invoke_ok("cjs", json!({"a": 2, "b": 3})).await;
    assert_eq!(cjs["result"], json!({"sum": 5}));
    let again = d.invoke_ok("cjs", json!({"a": 1, "b": 1})).await;
    assert_eq!(again["cold"], false);
    assert_eq!(again["executor"]["pid"], cjs["executor"]["pid"]);
    d.register(
        "nthrow",
        json!({"runtime": "node", "entry": "t.mjs"}),
        json!({"t.mjs": "export async function handler() { throw new TypeError('nope'); }"}),
    )
    .await;
    let (_, rec) = d.invoke("nthrow", "", json!({})).await;
    assert_eq!(rec["error"]["code"], "E002");
    assert_eq!(rec["error"]["kind"], "TypeError");
}

#[tokio::test]
async fn bash_command_mode_disk_space_sample() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::start().await;
    let ok = d.invoke_ok("disk-space", json!({"max_percent": 100})).await;
    assert_eq!(ok["result"]["ok"], true, "{ok:#}");
    assert_eq!(ok["exit_code"], 0);
    assert!(ok["stdout"].as_str().unwrap().contains("full"));
    let (_, failed) = d.invoke("disk-space", "", json!({"max_percent": 1})).await;
    // A host disk is never below 1% used, so the check must fail with exit code 1.
    assert_eq!(failed["state"], "failed", "{failed:#}");
    assert_eq!(failed["exit_code"], 1);
    assert_eq!(failed["error"]["code"], "E002");
    assert!(failed["stderr"].as_str().unwrap().contains("above"));
}

#[tokio::test]
async fn python_command_mode_port_check_sample() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let d = Daemon::start().await;
    let up = d.invoke_ok("port-check", json!({"port": port})).await;
    assert_eq!(up["result"]["ok"], true, "{up:#}");
    drop(listener);
    let (_, down) = d
        .invoke("port-check", "", json!({"port": port, "timeout_s": 1}))
        .await;
    assert_eq!(down["state"], "failed", "{down:#}");
    assert_eq!(down["result"], serde_json::Value::Null);
    assert!(
        down["stdout"].as_str().unwrap().contains("\"ok\": false"),
        "{down:#}"
    );
}

#[tokio::test]
async fn structured_logs_and_transform_sample() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::start().await;
    let rec = d
        .invoke_ok(
            "transform-python",
            json!({"items": [{"sku": "a", "qty": 2, "price": 1.5}, {"sku": "b", "qty": 1, "price": 10}]}),
        )
        .await;
    assert_eq!(rec["result"]["total"], 13.0);
    assert_eq!(rec["result"]["lines"][0]["sku"], "b");
    assert_eq!(rec["logs"][0]["message"], "order totalled", "{rec:#}");
    assert_eq!(rec["logs"][0]["fields"]["lines"], 2);
}
