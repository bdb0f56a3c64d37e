//! The daemon's life: sd_notify (ready, watchdog, stopping), socket activation, the drain on
//! SIGTERM bounded by the shutdown grace, and reload on SIGHUP.

use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use hyper::Method;
use nix::sys::signal::Signal;
use runwarm_e2e::{Daemon, Need, require};
use runwarm_supervisor::client::{Client, ClientError, Response};
use serde_json::json;
use tokio::task::JoinHandle;

use super::{SLEEPY, bash_manifest, collect_notify, greeting_runtime};

#[tokio::test]
async fn notify_socket_gets_ready_watchdog_and_stopping() {
    let tmp = tempfile::Builder::new()
        .prefix("rwn")
        .tempdir_in("/tmp")
        .unwrap();
    let path = tmp.path().join("notify.sock");
    let rx = UnixDatagram::bind(&path).unwrap();
    let mut d = Daemon::builder()
        .without_samples()
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000")
        .start()
        .await;
    let mut seen = Vec::new();
    collect_notify(&rx, &mut seen, |s| {
        s.iter().filter(|l| *l == "WATCHDOG=1").count() >= 2
    });
    let ready = seen.iter().position(|l| l == "READY=1");
    assert!(ready.is_some(), "no READY=1 in {seen:?}");
    let first_ping = seen.iter().position(|l| l == "WATCHDOG=1");
    assert!(
        first_ping.is_some_and(|p| Some(p) > ready),
        "no WATCHDOG=1 after READY=1 in {seen:?}\n{}",
        d.report()
    );
    assert!(
        seen.iter().any(|l| l.starts_with("STATUS=workers live=")),
        "no live STATUS= in {seen:?}"
    );
    d.signal(Signal::SIGHUP);
    collect_notify(&rx, &mut seen, |s| s.iter().any(|l| l == "RELOADING=1"));
    assert!(seen.iter().any(|l| l == "RELOADING=1"), "{seen:?}");
    d.signal(Signal::SIGTERM);
    collect_notify(&rx, &mut seen, |s| s.iter().any(|l| l == "STOPPING=1"));
    assert!(seen.iter().any(|l| l == "STOPPING=1"), "{seen:?}");
    assert!(d.stop().is_some_and(|s| s.success()));
}

#[tokio::test]
async fn socket_activation_serves_the_inherited_listener() {
    let d = Daemon::builder()
        .without_samples()
        .socket_activation()
        .start()
        .await;
    let (status, info) = d.call(Method::GET, "/v1/info", None).await;
    assert_eq!(status, 200, "{info}");
    assert!(
        d.log().contains("serving the socket passed by systemd"),
        "{}",
        d.report()
    );
}

#[tokio::test]
async fn sigterm_lets_the_running_invocation_finish_then_exits_0() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let mut d = Daemon::builder().without_samples().start().await;
    d.register("sleepy", bash_manifest(), json!({"main.sh": SLEEPY}))
        .await;
    let call = invoke_in_background(&d, "sleepy", 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    d.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = UnixStream::connect(d.socket());
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    let r = call
        .await
        .unwrap()
        .expect("the in-flight call got an answer");
    assert_eq!(r.status, 200);
    let rec: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(rec["state"], "completed", "{rec}");
    assert_eq!(rec["result"]["slept"], true);
    let status = d.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // Dropping the daemon checks that no executor process is left.
}

#[tokio::test]
async fn sighup_reloads_runtimes_and_refuses_a_broken_config() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .runtime("greet", &greeting_runtime("one"))
        .start()
        .await;
    let m = json!({"runtime": "greet", "entry": "main.sh"});
    let files =
        |n: u32| json!({"main.sh": format!("# v{n}\necho \"{{\\\"g\\\": \\\"$GREETING\\\"}}\"\n")});
    d.register("greeter", m.clone(), files(1)).await;
    assert_eq!(
        d.invoke_ok("greeter", json!({})).await["result"]["g"],
        "one"
    );

    std::fs::write(d.dir().join("runtimes/greet.toml"), greeting_runtime("two")).unwrap();
    d.signal(Signal::SIGHUP);
    d.log_with("configuration reloaded", 1).await;
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .unwrap()
        .to_owned();
    assert!(line.contains("needs_restart"), "{line}");
    // A new version gets a new pool, hence a new executor with the new runtime env.
    d.register("greeter", m.clone(), files(2)).await;
    assert_eq!(
        d.invoke_ok("greeter", json!({})).await["result"]["g"],
        "two"
    );

    let config = d.dir().join("runwarmd.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}\n[pools]\nmax_workers = 0\n")).unwrap();
    d.signal(Signal::SIGHUP);
    d.log_with("reload refused", 1).await;
    assert!(
        d.log().contains("pools.max_workers: must be at least 1"),
        "{}",
        d.report()
    );
    assert_eq!(
        d.invoke_ok("greeter", json!({})).await["result"]["g"],
        "two"
    );
    std::fs::write(&config, good).unwrap();
}

#[tokio::test]
async fn sigterm_bounds_the_drain_by_shutdown_grace() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let mut d = Daemon::builder()
        .without_samples()
        .config("[server]\nshutdown_grace_ms = 500\n")
        .start()
        .await;
    d.register("long", bash_manifest(), json!({"main.sh": SLEEPY}))
        .await;
    let call = invoke_in_background(&d, "long", 20);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let started = Instant::now();
    let status = d.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        d.report()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the drain took {:?} with a 500 ms grace",
        started.elapsed()
    );
    // The caller hears that its request was cut, rather than hanging.
    let _ = call.await.unwrap();
    let log = d.log();
    let cut = log
        .lines()
        .find(|l| l.contains("execution cut off by the shutdown grace"))
        .unwrap_or_else(|| panic!("no cut-off line\n{}", d.report()));
    assert!(cut.contains("\"code\":\"E005\""), "{cut}");
    assert!(cut.contains("\"state\":\"failed\""), "{cut}");
    // Dropping the daemon checks that no executor process is left.
}

/// Starts a call of the sleeping script `name` for `secs` seconds, for a test that stops the
/// daemon under it.
fn invoke_in_background(
    d: &Daemon,
    name: &str,
    secs: u32,
) -> JoinHandle<Result<Response, ClientError>> {
    let client = Client::new(d.socket()).with_timeout(Duration::from_secs(30));
    let path = format!("/v1/scripts/{name}/invoke");
    let body = format!(r#"{{"secs": {secs}}}"#).into_bytes();
    tokio::spawn(async move { client.request(Method::POST, &path, &[], Some(body)).await })
}
