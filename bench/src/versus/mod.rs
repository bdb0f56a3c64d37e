//! The PHP-FPM anchor: runwarm and PHP-FPM measured side by side in the same run, with the same
//! client runtime and connection model, in alternating blocks so drift in the machine's load
//! falls on all alike. Also the floors under a warm call, what a warm call costs each side in
//! context switches, CPU time and system calls, and the daemon's resident memory. The figures
//! and the targets are printed by [`report`].

pub mod fastcgi;
pub mod floors;
pub mod fpm;
pub mod procstat;
pub mod report;
pub mod run;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use runwarm_supervisor::client::Client;
use serde_json::{Value, json};
use tokio::sync::{Barrier, Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::measure::Summary;
use crate::scenarios::{Errors, HANDLER_PY, call, expected_result, payload, register_bundle};
use fastcgi::Connection;
use floors::Floors;
use fpm::OwnFpm;
use procstat::{Counters, PerCall, Strace};

const NODE_HANDLER: &str = "export function handler(event) {
  return { greeting: \"hello \" + (event.name ?? \"world\") };
}
";
/// Unmeasured calls before each block and before each client's window.
const WARMUP_PER_BLOCK: usize = 10;

/// What the section is asked to do.
pub struct Options {
    pub calls: usize,
    pub block: usize,
    pub clients: usize,
    pub window: Duration,
    pub pool_max: usize,
    pub fpm_children: usize,
    pub cost_calls: usize,
    pub strace: bool,
    /// Appended to the compared daemon's config.
    pub compare_config: String,
}

/// A runwarm daemon the section measures: its socket, pid and label.
pub struct Daemon<'a> {
    pub label: String,
    pub socket: &'a Path,
    pub pid: Option<u32>,
    /// Whether its Node row is measured too (only for the daemon under test).
    pub node: bool,
}

/// Who answers a call: a runwarm script, or PHP-FPM through a pool of kept connections.
#[derive(Clone)]
pub enum Caller {
    Runwarm { client: Client, name: String },
    Fpm(Arc<FpmPool>),
}

/// Kept FastCGI connections shared by the clients, at most one per PHP-FPM worker: a worker
/// serves one connection until it closes, so this is how a web server keeps connections to
/// PHP-FPM (nginx's `keepalive` with `fastcgi_keep_conn on`). One pool serves the whole
/// section: a second one would open connections that no free worker ever accepts. Sequential
/// calls take the connection the previous call put back, so they use one kept connection.
pub struct FpmPool {
    socket: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    params: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expected: Value,
}

impl FpmPool {
    pub fn new(fpm: &OwnFpm, connections: usize) -> Arc<FpmPool> {
        let body = payload().to_string().into_bytes();
        Arc::new(FpmPool {
            socket: fpm.socket().to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(connections.max(1)),
            params: fpm.params(&body.len().to_string()),
            expected: expected_result(&payload()),
            body,
        })
    }

    async fn call(&self) -> Result<(), String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let kept = self.idle.lock().await.pop();
        let mut conn = match kept {
            Some(conn) => conn,
            None => Connection::connect(&self.socket)
                .await
                .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?,
        };
        let params: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // A connection that failed is dropped; the next call opens a new one. A worker that
        // never answers (all of them bound to other kept connections) is an error, not a hang.
        let answer =
            tokio::time::timeout(crate::REQUEST_TIMEOUT, conn.request(&params, &self.body))
                .await
                .map_err(|_| format!("no answer within {} s", crate::REQUEST_TIMEOUT.as_secs()))?
                .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
        self.idle.lock().await.push(conn);
        if answer.status != 200 {
            return Err(format!(
                "status {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.stderr)
            ));
        }
        let got: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&answer.body)))?;
        if got != self.expected {
            return Err(format!("result {got} instead of {}", self.expected));
        }
        Ok(())
    }
}

impl Caller {
    /// One call: its wall time, and the executor's pid (runwarm) or why it failed.
    pub async fn call(&self) -> (Duration, Result<Option<i64>, String>) {
        let started = Instant::now();
        match self {
            Caller::Runwarm { client, name } => {
                let (payload, expected) = (payload(), expected_result(&payload()));
                let done = call(client, name, None, &payload, &expected).await;
                let pid = done.outcome.map(|r| r["executor"]["pid"].as_i64());
                (done.latency, pid)
            }
            Caller::Fpm(pool) => {
                let outcome = pool.call().await.map(|()| None);
                (started.elapsed(), outcome)
            }
        }
    }
}

/// `pool.max_requests` of the load script compared with PHP-FPM: a limit no run reaches, as
/// PHP-FPM's pool runs with `pm.max_requests = 0` (its workers are never recycled). With the
/// default of 10,000 each of four executors is replaced every two to three seconds at 32
/// clients, each replacement a cold start; that row is measured too, beside it.
pub const NO_RECYCLING: u64 = 1_000_000_000;

/// Registers the Python (or Node) hello script as `name`, with a pool of at most `pool_max`
/// whose executors serve `max_requests` each (the manifest's default when `None`).
pub async fn register_hello(
    client: &Client,
    name: &str,
    runtime: &str,
    pool_max: usize,
    min_warm: usize,
    max_requests: Option<u64>,
) -> Result<Caller> {
    let (entry, source) = match runtime {
        "node" => ("main.mjs", NODE_HANDLER),
        _ => ("main.py", HANDLER_PY),
    };
    let mut manifest = json!({"runtime": runtime, "entry": entry,
        "pool": {"max": pool_max, "min_warm": min_warm}});
    if let Some(n) = max_requests {
        manifest["pool"]["max_requests"] = json!(n);
    }
    register_bundle(client, name, &manifest, json!({ entry: source })).await?;
    Ok(Caller::Runwarm {
        client: client.clone(),
        name: name.to_owned(),
    })
}

/// Sequential calls of one target, gathered over the blocks.
#[derive(Default)]
pub struct Sequential {
    pub latencies: Vec<Duration>,
    pub errors: Errors,
    pub pids: BTreeSet<i64>,
}

impl Sequential {
    pub fn summary(&self) -> Option<Summary> {
        Summary::of_durations(&self.latencies)
    }
}

/// Runs `calls` sequential calls on every target in turn, `block` at a time, each block after a
/// few unmeasured calls; the turns go forward, then backward.
pub async fn sequential(targets: &[Caller], calls: usize, block: usize) -> Vec<Sequential> {
    let mut out: Vec<Sequential> = targets.iter().map(|_| Sequential::default()).collect();
    let block = block.max(1);
    let mut done = 0;
    let mut round = 0;
    while done < calls {
        let n = block.min(calls - done);
        // Forward, then backward (ABBA): a target measured always first or always last would
        // carry whatever that place costs (design note 0007, "Whoever goes first").
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        round += 1;
        for i in order {
            let (target, seq) = (&targets[i], &mut out[i]);
            for _ in 0..WARMUP_PER_BLOCK {
                let _ = target.call().await;
            }
            for _ in 0..n {
                let (latency, outcome) = target.call().await;
                seq.latencies.push(latency);
                match outcome {
                    Ok(pid) => seq.pids.extend(pid),
                    Err(e) => seq.errors.add(e),
                }
            }
        }
        done += n;
    }
    out
}

/// One throughput window's figures, or the sum of several.
#[derive(Debug, Default, Clone)]
pub struct Throughput {
    pub calls: usize,
    pub elapsed: Duration,
    pub errors: Errors,
    pub latencies: Vec<Duration>,
}

impl Throughput {
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn absorb(&mut self, other: Throughput) {
        self.calls += other.calls;
        self.elapsed += other.elapsed;
        self.errors.count += other.errors.count;
        if self.errors.first.is_none() {
            self.errors.first = other.errors.first;
        }
        self.latencies.extend(other.latencies);
    }
}

/// `clients` concurrent clients made by `make` call as fast as answers come for `rounds`
/// windows per target, the targets taking turns (forward, then backward).
pub async fn throughput(
    makers: &[&(dyn Fn() -> Caller + Sync)],
    clients: usize,
    window: Duration,
    rounds: usize,
) -> Vec<Throughput> {
    let mut out: Vec<Throughput> = makers.iter().map(|_| Throughput::default()).collect();
    for round in 0..rounds.max(1) {
        // Forward, then backward, as the sequential blocks.
        let mut order: Vec<usize> = (0..makers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let callers: Vec<Caller> = (0..clients.max(1)).map(|_| makers[i]()).collect();
            out[i].absorb(one_window(callers, window).await);
        }
    }
    out
}

async fn one_window(callers: Vec<Caller>, window: Duration) -> Throughput {
    let barrier = Arc::new(Barrier::new(callers.len() + 1));
    let mut tasks = JoinSet::new();
    for caller in callers {
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            for _ in 0..WARMUP_PER_BLOCK {
                let _ = caller.call().await;
            }
            barrier.wait().await;
            let until = Instant::now() + window;
            let mut run = Throughput::default();
            while Instant::now() < until {
                let (latency, outcome) = caller.call().await;
                run.latencies.push(latency);
                run.calls += 1;
                if let Err(e) = outcome {
                    run.errors.add(e);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            run
        });
    }
    barrier.wait().await;
    let opened = Instant::now();
    let mut total = Throughput::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(run) = joined {
            let elapsed = total.elapsed;
            total.absorb(run);
            total.elapsed = elapsed;
        }
    }
    total.elapsed = opened.elapsed();
    total
}

/// What warm calls cost one group of processes.
pub struct Cost {
    pub label: String,
    pub per_call: PerCall,
    /// System calls per call by name (most first), or why they were not counted.
    pub syscalls: Result<Vec<(String, f64)>, String>,
}

/// Reads the counters of each of `groups` around `calls` sequential calls of `target`, then
/// counts system calls with `strace -c -f` over a second run of calls when `strace` is set.
pub async fn costs(
    target: &Caller,
    groups: Vec<(String, Vec<u32>)>,
    calls: usize,
    strace: bool,
) -> Result<Vec<Cost>> {
    let pids: Vec<Vec<u32>> = groups.iter().map(|(_, p)| p.clone()).collect();
    let before: Vec<Counters> = pids.iter().map(|p| Counters::read(p)).collect();
    run_calls(target, calls).await?;
    let after: Vec<Counters> = pids.iter().map(|p| Counters::read(p)).collect();
    let strace_bin = procstat::strace_binary();
    let mut syscalls: Vec<Result<Vec<(String, f64)>, String>> = Vec::new();
    match (strace, strace_bin) {
        (false, _) => syscalls.extend(pids.iter().map(|_| Err("skipped (--no-strace)".into()))),
        (true, None) => syscalls.extend(
            pids.iter()
                .map(|_| Err("strace not installed: apt-get install strace".into())),
        ),
        (true, Some(bin)) => {
            let traces: Vec<Result<Strace>> =
                pids.iter().map(|p| Strace::attach(&bin, p)).collect();
            let strace_calls = (calls / 2).max(1);
            let ran = run_calls(target, strace_calls).await;
            for trace in traces {
                let counted = trace.and_then(Strace::finish).and_then(|rows| {
                    ran.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
                    Ok(rows
                        .into_iter()
                        .map(|(name, n)| (name, n as f64 / strace_calls as f64))
                        .collect())
                });
                syscalls.push(counted.map_err(|e| format!("{e:#}")));
            }
        }
    }
    Ok(groups
        .into_iter()
        .zip(before.into_iter().zip(after))
        .zip(syscalls)
        .map(|(((label, _), (b, a)), syscalls)| Cost {
            label,
            per_call: Counters::per_call(b, a, calls),
            syscalls,
        })
        .collect())
}

async fn run_calls(target: &Caller, calls: usize) -> Result<()> {
    for _ in 0..calls {
        if let (_, Err(e)) = target.call().await {
            anyhow::bail!("a call failed while counting its costs: {e}");
        }
    }
    Ok(())
}

/// The daemon's resident memory with `count` warm executors of one script.
pub async fn rss_with_warm(client: &Client, pid: u32, count: usize) -> Result<(u64, usize)> {
    let caller = register_hello(client, "bench-anchor-rss", "python3", count, count, None).await?;
    // The pool starts `min_warm` executors in the background; concurrent calls find them.
    let until = Instant::now() + Duration::from_secs(120);
    let mut pids = BTreeSet::new();
    while pids.len() < count && Instant::now() < until {
        let mut set = JoinSet::new();
        for _ in 0..count {
            let c = caller.clone();
            set.spawn(async move { c.call().await.1 });
        }
        while let Some(joined) = set.join_next().await {
            if let Ok(Ok(Some(p))) = joined {
                pids.insert(p);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rss = procstat::rss_kib(pid).context("reading the daemon's VmRSS")?;
    Ok((rss, pids.len()))
}

/// Everything the section measured.
pub struct Section {
    pub fpm_label: String,
    pub fpm_children: usize,
    pub pool_max: usize,
    pub clients: usize,
    pub sequential: Vec<(String, Sequential)>,
    pub throughput: Vec<(String, Throughput)>,
    pub floors: Floors,
    pub costs: Vec<Cost>,
    pub costs_error: Option<String>,
    pub rss_idle_kib: Option<u64>,
    pub rss_warm: Result<(u64, usize), String>,
    pub rss_warm_count: usize,
}
