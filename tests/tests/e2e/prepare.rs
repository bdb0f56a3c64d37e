//! The prepare step and its cache, with runtimes of the test's own whose steps are plain shell:
//! a kill -9 mid-prepare, single flight, eviction, a step that runs forever.

use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

/// A command-mode runtime over bash whose dependency step takes `deps.txt` and sleeps
/// `$(cat delay)` seconds before writing `size_kb` KiB and a marker written last; the build
/// step records which dependency folder it saw. The executor prints what it finds.
fn runtime(name: &str) -> String {
    format!(
        r#"name = "{name}"
modes = ["command"]
default_mode = "command"
probe = ["bash", "-c", "command -v bash; echo 1"]
command = ["{{exec_command}}", "--", "{{interpreter}}", "{{entry}}"]
[env]
DEPS = "{{deps}}"
BUILD = "{{build}}"
[prepare.dependencies]
inputs = ["deps.txt"]
run = '''
delay=$(sed -n 's/^delay=//p' deps.txt); kb=$(sed -n 's/^kb=//p' deps.txt)
echo "installing for ${{delay:-0}}s"
sleep "${{delay:-0}}"
head -c "$(( ${{kb:-1}} * 1024 ))" /dev/zero > "$RUNWARM_OUT/blob"
cp deps.txt "$RUNWARM_OUT/deps.txt"
echo complete > "$RUNWARM_OUT/marker"
'''
[prepare.build]
run = '''
cp "$RUNWARM_DEPS/marker" "$RUNWARM_OUT/saw-marker"
'''
"#
    )
}

const SCRIPT: &str = "printf '{\"marker\": \"%s\", \"built\": \"%s\", \"deps\": \"%s\"}\\n' \"$(cat \"$DEPS/marker\")\" \"$(cat \"$BUILD/saw-marker\")\" \"$(head -1 \"$DEPS/deps.txt\")\"\n";

fn files(deps: &str, tag: &str) -> Value {
    json!({"deps.txt": deps, "main.sh": format!("# {tag}\n{SCRIPT}")})
}

async fn daemon(extra: &str) -> Option<Daemon> {
    if !require(&[Need::Program("bash")]) {
        return None;
    }
    Some(
        Daemon::builder()
            .without_samples()
            .runtime("shprep", &runtime("shprep"))
            .config(extra)
            .start()
            .await,
    )
}

fn manifest() -> Value {
    json!({"runtime": "shprep", "entry": "main.sh"})
}

async fn register(d: &Daemon, name: &str, files: Value) -> Value {
    d.register_answer(name, manifest(), files).await
}

async fn prepare_of(d: &Daemon, name: &str, version: &str) -> Value {
    d.prepare_status(name, version).await
}

async fn wait_state(d: &Daemon, name: &str, version: &str, states: &[&str]) -> Value {
    d.wait_prepare(name, version, states, Duration::from_secs(60))
        .await
}

async fn cache_figures(d: &Daemon) -> Value {
    let (_, list) = d.call(Method::GET, "/v1/runtimes", None).await;
    list.as_array()
        .and_then(|l| l.iter().find(|r| r["name"] == "shprep"))
        .map(|r| r["cache"].clone())
        .unwrap_or_default()
}

fn prepare_dir(d: &Daemon) -> std::path::PathBuf {
    d.dir().join("state").join("prepare")
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn registration_answers_at_once_and_an_invocation_waits_for_the_prepare() {
    let Some(d) = daemon("").await else { return };
    let t0 = Instant::now();
    let answer = register(&d, "slow", files("delay=2\n", "a")).await;
    assert!(t0.elapsed() < Duration::from_secs(1), "registration waited");
    assert_eq!(answer["prepare"], "pending", "{answer:#}");
    let rec = d.invoke_ok("slow", json!({})).await;
    assert_eq!(rec["result"]["marker"], "complete", "{rec:#}");
    assert_eq!(rec["result"]["built"], "complete", "{rec:#}");
    let version = answer["version"].as_str().unwrap();
    let p = prepare_of(&d, "slow", version).await;
    assert_eq!(p["state"], "ready", "{p:#}");
    assert_eq!(p["dependencies"]["cached"], false);
    assert!(
        p["dependencies"]["log"]
            .as_str()
            .unwrap()
            .contains("installing for 2s")
    );
    assert!(p["duration_ms"].as_f64().unwrap() >= 2000.0, "{p:#}");
    // A code-only change reuses the environment and is ready at once.
    let again = register(&d, "slow", files("delay=2\n", "b")).await;
    let p2 = wait_state(&d, "slow", again["version"].as_str().unwrap(), &["ready"]).await;
    assert_eq!(p2["dependencies"]["cached"], true, "{p2:#}");
    assert_eq!(p2["build"]["cached"], false, "{p2:#}");
    assert!(p2["duration_ms"].as_f64().unwrap() < 2000.0, "{p2:#}");
}

#[tokio::test]
async fn two_registrations_with_one_dependency_key_prepare_it_once() {
    let Some(d) = daemon("").await else { return };
    let (a, b) = tokio::join!(
        register(&d, "one", files("delay=2\n", "one")),
        register(&d, "two", files("delay=2\n", "two")),
    );
    let pa = wait_state(&d, "one", a["version"].as_str().unwrap(), &["ready"]).await;
    let pb = wait_state(&d, "two", b["version"].as_str().unwrap(), &["ready"]).await;
    assert_eq!(pa["dependencies"]["key"], pb["dependencies"]["key"]);
    let ran = [&pa, &pb]
        .iter()
        .filter(|p| p["dependencies"]["cached"] == false)
        .count();
    assert_eq!(ran, 1, "the step ran once: {pa:#} {pb:#}");
    let figures = cache_figures(&d).await;
    // One dependency step and two builds ran; the second registration's dependencies were a hit.
    assert_eq!(figures["misses"], 3, "{figures:#}");
    assert_eq!(figures["hits"], 1, "{figures:#}");
    assert_eq!(entries(&prepare_dir(&d).join("deps/shprep")).len(), 1);
}

#[tokio::test]
async fn a_kill9_mid_prepare_leaves_nothing_half_built_and_the_version_prepares_again() {
    let Some(mut d) = daemon("").await else {
        return;
    };
    let answer = register(&d, "crash", files("delay=3\nkb=64\n", "c")).await;
    let version = answer["version"].as_str().unwrap().to_owned();
    wait_state(&d, "crash", &version, &["running"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tmp = prepare_dir(&d).join("tmp");
    assert!(!entries(&tmp).is_empty(), "the step works in tmp");
    d.kill9();
    // The confined step dies with the daemon's helper (pid namespace) or is killed with its
    // cgroup at the next start; nothing was renamed into the cache.
    assert!(entries(&prepare_dir(&d).join("deps/shprep")).is_empty());
    d.restart().await;
    assert!(
        entries(&tmp).is_empty(),
        "the interrupted step's folder is gone"
    );
    let rec = d.invoke_ok("crash", json!({})).await;
    assert_eq!(rec["result"]["marker"], "complete", "{rec:#}");
    let p = prepare_of(&d, "crash", &version).await;
    assert_eq!(p["dependencies"]["cached"], false, "prepared again: {p:#}");
}

#[tokio::test]
async fn a_step_that_runs_forever_is_killed_at_its_limit_and_reported() {
    let Some(d) = daemon("[prepare]\ntimeout_s = 2\nat_start = \"lazy\"\n").await else {
        return;
    };
    let before = d.instance_processes().len();
    let answer = register(&d, "forever", files("delay=100000\n", "f")).await;
    let version = answer["version"].as_str().unwrap();
    let p = wait_state(&d, "forever", version, &["failed"]).await;
    let error = p["error"].as_str().unwrap();
    assert!(
        error.contains("did not finish within 2s and was killed"),
        "{p:#}"
    );
    let (status, rec) = d.invoke("forever", "", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(rec["error"]["code"], "E001", "{rec:#}");
    assert_eq!(rec["error"]["kind"], "PrepareFailed", "{rec:#}");
    let until = Instant::now() + Duration::from_secs(5);
    while d.instance_processes().len() > before && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        d.instance_processes().len() <= before,
        "the killed step left processes"
    );
    assert!(entries(&prepare_dir(&d).join("tmp")).is_empty());
}

#[tokio::test]
async fn the_cache_limit_evicts_entries_no_live_version_uses_and_never_one_in_use() {
    let Some(d) = daemon("[prepare]\nmax_cache_mb = 1\nat_start = \"lazy\"\n").await else {
        return;
    };
    let deps_dir = prepare_dir(&d).join("deps/shprep");
    // Version 1 of `evict` uses X (700 KiB).
    let v1 = register(&d, "evict", files("kb=700\nx\n", "1")).await;
    let p1 = wait_state(&d, "evict", v1["version"].as_str().unwrap(), &["ready"]).await;
    let x = p1["dependencies"]["key"].as_str().unwrap().to_owned();
    // Version 2 moves `latest` and uses Y: X is no longer live, and the two exceed 1 MiB.
    let v2 = register(&d, "evict", files("kb=700\ny\n", "2")).await;
    let p2 = wait_state(&d, "evict", v2["version"].as_str().unwrap(), &["ready"]).await;
    let y = p2["dependencies"]["key"].as_str().unwrap().to_owned();
    let left = entries(&deps_dir);
    assert!(!left.contains(&x), "X was evicted: {left:?}");
    assert!(left.contains(&y), "Y is in use: {left:?}");
    let p1 = prepare_of(&d, "evict", v1["version"].as_str().unwrap()).await;
    assert_eq!(p1["state"], "evicted", "{p1:#}");
    // Another script's Z: the cache is over its limit with Y and Z, but both are in use.
    let z = register(&d, "other", files("kb=700\nz\n", "z")).await;
    let pz = wait_state(&d, "other", z["version"].as_str().unwrap(), &["ready"]).await;
    let left = entries(&deps_dir);
    let z_key = pz["dependencies"]["key"].as_str().unwrap().to_owned();
    assert!(left.contains(&y) && left.contains(&z_key), "{left:?}");
    let rec = d.invoke_ok("evict", json!({})).await;
    assert_eq!(rec["result"]["deps"], "kb=700", "{rec:#}");
    // The old version still runs: its environment is prepared again on demand.
    let (status, old) = d
        .invoke(
            "evict",
            &format!("?version={}", v1["version"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(old["state"], "completed", "{old:#}");
    assert_eq!(old["result"]["marker"], "complete", "{old:#}");
}

#[tokio::test]
async fn a_failed_prepare_is_retried_by_registering_again_not_by_invoking() {
    let Some(d) = daemon("").await else { return };
    // A division by zero fails the step's arithmetic: a deterministic failure.
    let answer = register(&d, "broken", files("kb=1/0\n", "b")).await;
    let version = answer["version"].as_str().unwrap();
    let p = wait_state(&d, "broken", version, &["failed"]).await;
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("the dependencies step exited with status"),
        "{p:#}"
    );
    let figures = cache_figures(&d).await;
    let (_, rec) = d.invoke("broken", "", json!({})).await;
    assert_eq!(rec["error"]["code"], "E001", "{rec:#}");
    assert_eq!(cache_figures(&d).await["misses"], figures["misses"]);
    let again = register(&d, "broken", files("kb=1/0\n", "b")).await;
    assert_eq!(again["created"], false);
    wait_state(&d, "broken", version, &["failed"]).await;
    let after = cache_figures(&d).await;
    assert_eq!(
        after["failures"].as_u64().unwrap(),
        figures["failures"].as_u64().unwrap() + 1,
        "{after:#}"
    );
}
