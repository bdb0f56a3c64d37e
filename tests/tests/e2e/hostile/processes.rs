//! Processes a script leaves behind: daemonized grandchildren, command-mode children, fork
//! bombs, and an executor out of pids.

use std::time::{Duration, Instant};

use runwarm_e2e::Daemon;
use serde_json::{Value, json};

use super::hostile_daemon;

#[tokio::test]
async fn daemonized_grandchild_dies_with_its_executor() {
    let Some(d) = hostile_daemon(&[(
        "dz",
        json!({"runtime": "python3", "entry": "main.py", "pool": {"max_requests": 1}}),
    )])
    .await
    else {
        return;
    };
    let before = d.instance_processes().len();
    let cgroups_before = executor_cgroups(&d);
    d.invoke_ok("dz", json!({"do": "daemonize"})).await;
    let until = Instant::now() + Duration::from_secs(10);
    while (d.instance_processes().len() > before || executor_cgroups(&d) > cgroups_before)
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        d.instance_processes().len() <= before,
        "a setsid grandchild survived its executor"
    );
    assert_eq!(
        executor_cgroups(&d),
        cgroups_before,
        "the recycled executor's cgroup was left behind"
    );
}

/// Executor cgroup directories of this daemon in every hierarchy it uses: the daemon keeps them
/// in `<its own cgroup>/runwarm/<its pid>-<suffix>/<executor id>`.
fn executor_cgroups(d: &Daemon) -> usize {
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", d.pid())).unwrap_or_default();
    let prefix = format!("{}-", d.pid());
    let mut count = 0;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let hierarchy = match controllers {
            "" => "unified".to_owned(),
            c if c.starts_with("name=") => continue,
            c => c.split(',').next().unwrap_or(c).to_owned(),
        };
        let mut base = std::path::PathBuf::from("/sys/fs/cgroup");
        if hierarchy != "unified" || !base.join("cgroup.procs").exists() {
            base.push(&hierarchy);
        }
        let base = base.join(path.trim_start_matches('/')).join("runwarm");
        let Ok(daemons) = std::fs::read_dir(&base) else {
            continue;
        };
        for daemon in daemons.flatten() {
            if daemon.file_name().to_string_lossy().starts_with(&prefix) {
                count += std::fs::read_dir(daemon.path())
                    .map(|executors| {
                        // Prepare steps have cgroups of their own beside the executors'.
                        executors
                            .flatten()
                            .filter(|e| e.path().is_dir())
                            .filter(|e| !e.file_name().to_string_lossy().starts_with("prepare-"))
                            .count()
                    })
                    .unwrap_or(0);
            }
        }
    }
    count
}

#[tokio::test]
async fn command_mode_processes_do_not_outlive_their_request() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    d.register(
        "daemonize",
        json!({"runtime": "bash", "entry": "d.sh"}),
        json!({"d.sh": "( setsid sleep 987651 & ); exit 0\n"}),
    )
    .await;
    let first = d.invoke_ok("daemonize", json!({})).await;
    assert!(
        first["stderr"]
            .as_str()
            .is_some_and(|e| e.contains("the script left running")),
        "{first:#}"
    );
    // Killed and reaped before the response: nothing to wait for.
    let left = runwarm_e2e::processes_with_cmdline("sleep 987651");
    assert!(
        left.is_empty(),
        "the setsid sleep outlived its request: {left:?}"
    );
    // By the executor itself: it is still warm, not recycled.
    let second = d.invoke_ok("daemonize", json!({})).await;
    assert_eq!(
        second["executor"]["pid"], first["executor"]["pid"],
        "{second:#}"
    );
    assert_eq!(second["cold"], false, "{second:#}");
    assert!(runwarm_e2e::processes_with_cmdline("sleep 987651").is_empty());
}

#[tokio::test]
async fn a_command_mode_fork_bomb_leaves_nothing_and_later_calls_work() {
    let Some(d) = hostile_daemon(&[]).await else {
        return;
    };
    let marker = format!("RUNWARM_BOMB_{}", std::process::id());
    // The bomb is started with one fork while pids are free and the script forks nothing after
    // it (bash retries a failed fork for seconds), so the script ends at once and leaves the
    // bomb running, as in the review's reproduction.
    let script = format!(
        "if [ \"$PARAM_DO\" = bomb ]; then\n  export {marker}=1\n  \
         b() {{ b | b & }}\n  b &\nfi\necho '{{\"ok\":true}}'\n"
    );
    d.register(
        "cbomb",
        json!({"runtime": "bash", "entry": "bomb.sh",
               "limits": {"timeout_ms": 10000, "pids": 32}}),
        json!({"bomb.sh": script}),
    )
    .await;
    let needle = format!("{marker}=1");
    let (status, rec) = d.invoke("cbomb", "", json!({"do": "bomb"})).await;
    assert_eq!(status, 200, "{rec:#}");
    // The bomb did go off: it hit the pids limit, and the executor killed what it left (or the
    // bomb took the pids the executor needed for the request's own I/O thread first; then the
    // call fails, and the bomb is killed all the same).
    let said = |v: &Value, what: &str| v.as_str().is_some_and(|t| t.contains(what));
    assert!(
        said(&rec["stderr"], "the script left running")
            || said(&rec["stderr"], "temporarily unavailable")
            || said(&rec["error"]["message"], "temporarily unavailable"),
        "{rec:#}"
    );
    assert_ne!(rec["state"], "timeout", "{rec:#}");
    let left = runwarm_e2e::processes_with_env(&needle);
    assert!(
        left.is_empty(),
        "the fork bomb left {} processes",
        left.len()
    );
    // Every later call of the script works, on the same executor or a replacement.
    for _ in 0..3 {
        let ok = d.invoke_ok("cbomb", json!({})).await;
        assert_eq!(ok["result"]["ok"], true, "{ok:#}");
    }
    assert!(runwarm_e2e::processes_with_env(&needle).is_empty());
}

#[tokio::test]
async fn a_handler_executor_out_of_pids_is_replaced() {
    let Some(d) = hostile_daemon(&[(
        "leaky",
        json!({"runtime": "python3", "entry": "main.py",
               "limits": {"timeout_ms": 5000, "pids": 16}}),
    )])
    .await
    else {
        return;
    };
    // The handler leaves sleeping children that hold every pid of its cgroup.
    let rec = d.invoke_ok("leaky", json!({"do": "fork"})).await;
    assert_eq!(rec["result"]["errno"], 11, "{rec:#}");
    // The next fork fails: that call fails, and its executor is not handed out again.
    let (_, failed) = d.invoke("leaky", "", json!({"do": "spawn"})).await;
    assert_eq!(failed["state"], "failed", "{failed:#}");
    let ok = d.invoke_ok("leaky", json!({"do": "spawn"})).await;
    assert_eq!(ok["result"]["spawned"], true, "{ok:#}");
    assert_ne!(
        ok["executor"]["pid"], rec["executor"]["pid"],
        "the exhausted executor was reused: {ok:#}"
    );
}
