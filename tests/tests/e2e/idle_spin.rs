//! `server.idle_spin_us`: the daemon polls briefly for the next request or reply before its
//! thread sleeps, and stops doing so when nothing comes.

use std::time::Duration;

use runwarm_e2e::{Daemon, Need, require};
use serde_json::json;

/// The daemon's CPU time (user + system) so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test]
async fn a_spinning_daemon_serves_warm_calls_and_goes_quiet_when_idle() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let d = Daemon::builder().without_samples().start().await;
    let armed = d.log().contains("idle spin armed");
    if cpus >= 2 {
        assert!(
            armed,
            "the default arms the spin on {cpus} CPUs\n{}",
            d.report()
        );
    } else {
        assert!(d.log().contains("one CPU"), "{}", d.report());
    }
    d.register(
        "spin",
        json!({"runtime": "python3", "entry": "main.py"}),
        json!({"main.py": "def handler(event, context):\n    return {'n': event['n'] * 2}\n"}),
    )
    .await;
    // Back-to-back calls are what the spin is for: every answer must still be the right one,
    // with its own accounting.
    for n in 0..300 {
        let rec = d.invoke_ok("spin", json!({"n": n})).await;
        assert_eq!(rec["result"], json!({"n": n * 2}), "{rec}");
        assert!(rec["resources"]["cpu_user_ms"].is_number(), "{rec}");
    }
    // Each spin is bounded and the window shrinks while nothing comes: a second of quiet costs
    // the daemon a few milliseconds of CPU at most (a spin that did not stop would cost the
    // whole second).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_ticks(d.pid());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = cpu_ticks(d.pid()) - before;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    assert!(
        ticks * 1000 / hz <= 50,
        "an idle daemon used {ticks} ticks of CPU in one second\n{}",
        d.report()
    );
}

/// Both of tokio's schedulers serve: one runtime thread is the current-thread scheduler (the
/// default below eight CPUs), more the multi-thread one (the default on larger hosts). Each
/// arms the spin and answers concurrent warm calls, every caller its own result.
#[tokio::test]
async fn one_and_two_runtime_threads_serve_concurrent_calls() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    for (threads, scheduler) in [(1, "current-thread"), (2, "multi-thread")] {
        let d = Daemon::builder()
            .without_samples()
            .config(&format!("[server]\nworker_threads = {threads}\n"))
            .start()
            .await;
        let log = d.log();
        assert!(
            log.contains("async runtime started")
                && log.contains(&format!("\"threads\":{threads}"))
                && log.contains(scheduler),
            "{threads} thread(s) should run the {scheduler} scheduler\n{}",
            d.report()
        );
        assert_eq!(
            log.contains("idle spin armed"),
            cpus >= 2,
            "{threads} thread(s) on {cpus} CPUs\n{}",
            d.report()
        );
        d.register(
            "double",
            json!({"runtime": "python3", "entry": "main.py", "pool": {"max": 4}}),
            json!({"main.py": "def handler(event, context):\n    return {'n': event['n'] * 2}\n"}),
        )
        .await;
        let calls = (0..64).map(|n| {
            let d = &d;
            async move { (n, d.invoke("double", "", json!({"n": n})).await) }
        });
        for (n, (status, rec)) in futures_util::future::join_all(calls).await {
            assert_eq!(status, 200, "call {n} with {threads} thread(s): {rec}");
            assert_eq!(rec["result"], json!({"n": n * 2}), "{rec}");
        }
    }
}

#[tokio::test]
async fn idle_spin_zero_turns_it_off_and_says_so() {
    let d = Daemon::builder()
        .without_samples()
        .config("[server]\nidle_spin_us = 0\n")
        .start()
        .await;
    assert!(
        d.log().contains("idle spin off") && d.log().contains("server.idle_spin_us is 0"),
        "{}",
        d.report()
    );
    assert!(!d.log().contains("idle spin armed"), "{}", d.report());
}
