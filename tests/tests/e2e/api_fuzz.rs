//! The API document against a real daemon: schemathesis generates requests from
//! `GET /v1/openapi.json` (valid ones and invalid ones, every phase) for a bounded time and runs
//! every check it has on the answers: no 5xx, every status, content type, header and body as
//! documented, invalid input refused, valid input accepted, undocumented methods answered 405
//! with `Allow`. schemathesis speaks TCP, so it reaches the daemon's Unix socket through a proxy
//! on 127.0.0.1 that this test runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};

/// schemathesis's time budget (`--max-time`): long enough for every phase to reach every
/// operation on a busy 2-core machine, short enough for CI.
const BUDGET_S: u64 = 90;

/// The longest one answer may take, for `--request-timeout` and for the `max_response_time`
/// check that `--checks all` turns on (10 s by default): a synchronous invocation answers when
/// the script ends, and one of a version still preparing waits for the prepare first. This
/// daemon's prepare steps are cut at 20 s and run one at a time, so a generated invocation of a
/// freshly cloned sample can take a few steps' worth.
const ANSWER_S: u64 = 150;

/// Where in the operations' answers schemathesis's "valid data must be accepted" check meets
/// rules a JSON Schema cannot state, each with the status the daemon rightly answers:
/// - `POST /v1/scripts`: the manifest's `entry` must be
///   one of `files`, its `runtime` one this daemon knows, its `params` a valid JSON Schema,
///   `pool.min_warm` at most `pool.max`; a bundle over the configured size is 413.
/// - `POST /v1/scripts/{name}/invoke`: the payload must match the script's own `params` schema,
///   which differs per script; `version` and `tag` exclude each other.
/// - `POST /v1/subscriptions` and `Runwarm-Callback`: an `http://` host must be loopback or in
///   the daemon's `[callbacks] allow_hosts`.
///
/// The checks stay on for these operations; only the statuses that are correct answers to such
/// requests are added to what that one check accepts.
///
/// - `POST /v1/check` and `POST /v1/format`: the `runtime` must be one this daemon knows (400
///   otherwise, or 422 when its toolchain is missing here), every path plain and relative, the
///   files within `[check]`'s limits (413), and a formatter may find a syntax error (422).
///
/// And one check meets a decision of the design: `DELETE /v1/scripts/{name}` disables
/// (DESIGN §8 lists the route, §3 and docs/design/0001 keep versions and history for audit), so
/// `GET` still shows the script, disabled. `use_after_free` assumes a DELETE removes what it
/// names; it is off for the reads under that path only.
///
/// Every check is on (`[checks] enabled = true` is `--checks all`, written here because a check
/// named on the command line would override the per-operation settings below), plus
/// `max_response_time` from the command line.
const SCHEMATHESIS_TOML: &str = r#"
[checks]
enabled = true

# An operation's name is "METHOD PATH"; filters of one kind are alternatives, so names select
# exactly these operations.
[[operations]]
include-name = ["GET /v1/scripts/{name}", "GET /v1/scripts/{name}/versions", "GET /v1/scripts/{name}/versions/{version}"]
checks.use_after_free.enabled = false

[[operations]]
include-name = "POST /v1/scripts"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "404", "409", "413", "429"]

[[operations]]
include-name = "POST /v1/scripts/{name}/invoke"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "404", "409", "429"]

[[operations]]
include-name = ["POST /v1/check", "POST /v1/format"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "413", "422"]

# A callback address may name a host only if the daemon's `[callbacks] allow_hosts` lists it,
# which the document cannot know.
[[operations]]
include-name = ["POST /v1/subscriptions", "POST /v1/executions/{id}/replay"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "403", "404", "409", "429"]
"#;

/// Relays TCP connections on 127.0.0.1 (loopback only: nothing else can reach it) to `socket`;
/// returns the port. The task ends with the test's runtime.
async fn loopback_proxy(socket: &Path) -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let socket = socket.to_owned();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = UnixStream::connect(&socket).await {
                    // Each direction to its own end: `copy_bidirectional` returns on the first
                    // error of either, so a daemon that answered and closed before reading the
                    // body (the upload then fails with EPIPE) could have its answer cut off
                    // before it was relayed.
                    let (mut tcp_in, mut tcp_out) = tcp.split();
                    let (mut unix_in, mut unix_out) = unix.split();
                    let up = async {
                        let _ = tokio::io::copy(&mut tcp_in, &mut unix_out).await;
                        let _ = unix_out.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut unix_in, &mut tcp_out).await;
                        let _ = tcp_out.shutdown().await;
                    };
                    tokio::join!(up, down);
                }
                // A lingering close. The daemon may answer before reading a body it does not
                // need (an unknown tag) and close; the relay then ends with the client's body
                // bytes unread, and closing a TCP socket with unread input sends a reset that
                // can destroy the answer the client has not read yet ("connection closed
                // without response"). Half-close and read out the rest first, as web servers do.
                let _ = tcp.shutdown().await;
                let mut sink = [0u8; 16 * 1024];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
            });
        }
    });
    port
}

/// Things for the generated requests to find: a script with a params schema, a version, a tag
/// and executions in every end state the API shows.
async fn seed(d: &Daemon) {
    let manifest = json!({
        "runtime": "bash",
        "mode": "command",
        "entry": "run.sh",
        "description": "echoes its payload",
        "params": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "limits": {"timeout_ms": 5000},
    });
    let files =
        json!({"run.sh": "#!/bin/sh\necho \"line on stdout\"\ncat \"$RUNWARM_ARGS_FILE\"\n"});
    let version = d.register("echo", manifest, files).await;
    d.invoke_ok("echo", json!({"n": 1})).await;
    let (status, body) = d
        .call(
            hyper::Method::PUT,
            "/v1/scripts/echo/tags/stable",
            Some(json!({"version": version})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let failing = json!({"runtime": "bash", "mode": "command", "entry": "fail.sh"});
    d.register("fail", failing, json!({"fail.sh": "#!/bin/sh\nexit 3\n"}))
        .await;
    let (status, rec) = d.invoke("fail", "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
}

/// `schemathesis` on PATH, else where `.ci/toolchains` installs it.
fn schemathesis() -> PathBuf {
    let installed = PathBuf::from("/opt/runwarm-apitools/bin/schemathesis");
    if installed.is_file() {
        installed
    } else {
        PathBuf::from("schemathesis")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_mismatch_with_the_document() {
    if !require(&[Need::Program("schemathesis")]) {
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        // Samples cloned by the generated requests prepare one at a time, in the background, and
        // a Maven download or a Go build is cut short: this test is about the API, not them.
        .config("[prepare]\nat_start = \"lazy\"\nconcurrency = 1\ntimeout_s = 20\n")
        .start()
        .await;
    seed(&d).await;
    let port = loopback_proxy(d.socket()).await;
    let config = d.dir().join("schemathesis.toml");
    std::fs::write(&config, SCHEMATHESIS_TOML).unwrap();
    let started = Instant::now();
    let child = tokio::process::Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .args(["--no-color", "run"])
        .arg(format!("http://127.0.0.1:{port}/v1/openapi.json"))
        .args(["--workers", "1"])
        .args(["--request-timeout", &ANSWER_S.to_string()])
        .args(["--max-response-time", &ANSWER_S.to_string()])
        .args(["--max-time", &BUDGET_S.to_string()])
        .args(["--generation-database", "none"])
        // schemathesis writes its own cache and hypothesis files in the working directory.
        .current_dir(d.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start schemathesis");
    // The budget bounds generation; the last answer, shrinking a failure and the report add
    // some.
    let out = tokio::time::timeout(
        Duration::from_secs(BUDGET_S + ANSWER_S + 120),
        child.wait_with_output(),
    )
    .await
    .expect("schemathesis ran past its budget")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("test cases") || l.contains("passed") || l.contains("Seed"))
        .collect();
    eprintln!(
        "schemathesis: {:.0} s, {}",
        started.elapsed().as_secs_f64(),
        summary.join(" | ")
    );
    assert!(
        out.status.success(),
        "schemathesis found problems ({}):\n{text}\n{}",
        out.status,
        d.report()
    );
    assert!(
        !d.log().contains("panicked"),
        "the daemon panicked during the run\n{}",
        d.report()
    );
}
