//! Throughput under load: many clients, each with its own connection, calling one warm script
//! as fast as answers come back for a fixed time.
//!
//! Every client first makes a few unmeasured calls (which also grows the pool to its maximum),
//! then all start together at a barrier, so the measured window holds no cold starts.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use runwarm_supervisor::client::Client;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::measure::Summary;
use crate::scenarios::{Errors, HANDLER_PY, call, expected_result, payload, register};

/// Unmeasured calls per client before the window opens.
const WARMUP_PER_CLIENT: usize = 10;

/// What the load test measured.
#[derive(Debug, Clone)]
pub struct Load {
    pub clients: usize,
    pub pool_max: usize,
    pub elapsed: Duration,
    /// Calls answered in the window, errors included.
    pub calls: usize,
    pub errors: Errors,
    pub latency: Option<Summary>,
    /// Distinct executor pids that served the measured calls.
    pub executors: usize,
    /// Calls in the window that started an executor (recycling after `pool.max_requests`).
    pub cold_calls: usize,
}

impl Load {
    /// Calls per second over the window.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// One client's share of the window.
struct ClientRun {
    latencies: Vec<Duration>,
    errors: Errors,
    pids: BTreeSet<i64>,
    cold_calls: usize,
}

pub async fn measure_load(
    socket: &Path,
    timeout: Duration,
    clients: usize,
    pool_max: usize,
    window: Duration,
) -> Result<Load> {
    let name = "bench-load";
    register(
        &Client::new(socket).with_timeout(timeout),
        name,
        HANDLER_PY,
        pool_max,
    )
    .await?;
    let clients = clients.max(1);
    // The clients and this task: the window opens when everyone is warmed up.
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        // Its own Client, so its own connection pool and keep-alive connection.
        let client = Client::new(socket).with_timeout(timeout);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move { run_client(client, name, barrier, window).await });
    }
    barrier.wait().await;
    let opened = Instant::now();
    let mut latencies = Vec::new();
    let mut errors = Errors::default();
    let mut pids = BTreeSet::new();
    let mut cold_calls = 0;
    while let Some(joined) = tasks.join_next().await {
        let run = joined.context("a load client task failed")?;
        latencies.extend(run.latencies);
        errors.count += run.errors.count;
        if errors.first.is_none() {
            errors.first = run.errors.first;
        }
        pids.extend(run.pids);
        cold_calls += run.cold_calls;
    }
    let elapsed = opened.elapsed();
    Ok(Load {
        clients,
        pool_max,
        elapsed,
        calls: latencies.len(),
        errors,
        latency: Summary::of_durations(&latencies),
        executors: pids.len(),
        cold_calls,
    })
}

async fn run_client(
    client: Client,
    name: &'static str,
    barrier: Arc<Barrier>,
    window: Duration,
) -> ClientRun {
    let (payload, expected) = (payload(), expected_result(&payload()));
    for _ in 0..WARMUP_PER_CLIENT {
        // Failures here show up again, counted, in the window.
        let _ = call(&client, name, None, &payload, &expected).await;
    }
    barrier.wait().await;
    let until = Instant::now() + window;
    let mut run = ClientRun {
        latencies: Vec::new(),
        errors: Errors::default(),
        pids: BTreeSet::new(),
        cold_calls: 0,
    };
    while Instant::now() < until {
        let done = call(&client, name, None, &payload, &expected).await;
        run.latencies.push(done.latency);
        match done.outcome {
            Ok(record) => {
                run.pids.extend(record["executor"]["pid"].as_i64());
                run.cold_calls += usize::from(record["cold"] == true);
            }
            Err(e) => {
                run.errors.add(e);
                // A daemon that refuses fast must not turn the window into a busy loop.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    run
}
