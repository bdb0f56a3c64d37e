//! The sequential measurements against the daemon: warm latency over one connection and cold
//! starts of new versions, plus what they share with the load test (the benchmark script, its
//! registration and the check of each call's record).

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use runwarm_supervisor::client::{Client, InvokeOptions, Selector};
use serde_json::{Value, json};

use crate::measure::{Summary, ms_to_us};

/// The handler every measurement runs, the same as the `hello-python` sample.
pub const HANDLER_PY: &str = "def handler(event, context):
    return {\"greeting\": f\"hello {event.get('name', 'world')}\"}
";

/// The payload of every call.
pub fn payload() -> Value {
    json!({"name": "bench"})
}

/// What [`HANDLER_PY`] answers to `payload`.
pub fn expected_result(payload: &Value) -> Value {
    let name = payload
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("world");
    json!({"greeting": format!("hello {name}")})
}

/// Registers `source` as `main.py` of script `name` with a pool of at most `pool_max`
/// executors; returns the version id and whether the version is new.
pub async fn register(
    client: &Client,
    name: &str,
    source: &str,
    pool_max: usize,
) -> Result<(String, bool)> {
    let manifest = json!({"runtime": "python3", "entry": "main.py", "pool": {"max": pool_max}});
    let (version, created) =
        register_bundle(client, name, &manifest, json!({"main.py": source})).await?;
    Ok((version, created["created"].as_bool().unwrap_or(false)))
}

/// POSTs a bundle; returns the version id and the whole answer, or why it was refused.
pub async fn register_bundle(
    client: &Client,
    name: &str,
    manifest: &Value,
    files: Value,
) -> Result<(String, Value)> {
    let body = json!({"name": name, "manifest": manifest, "files": files});
    let answer = client
        .register(&body)
        .await
        .with_context(|| format!("registering {name}"))?;
    if !answer.is_success() {
        let problem = answer.problem();
        bail!(
            "registering {name} answered {}: {} {}",
            answer.status,
            problem.title,
            problem.detail
        );
    }
    let created = answer.json()?;
    let version = created["version"]
        .as_str()
        .with_context(|| format!("registering {name} answered without a version: {created}"))?
        .to_owned();
    Ok((version, created))
}

/// One invocation: its client-side wall time and either its record or why it counts as an error.
pub struct Call {
    pub latency: Duration,
    pub outcome: Result<Value, String>,
}

/// Invokes and checks the answer: 200, state `completed`, the expected result.
pub async fn call(
    client: &Client,
    name: &str,
    selector: Option<&Selector>,
    payload: &Value,
    expected: &Value,
) -> Call {
    let started = Instant::now();
    let answer = client
        .invoke(name, selector, payload, &InvokeOptions::default())
        .await;
    let latency = started.elapsed();
    let outcome = match answer {
        Err(e) => Err(format!("{:#}", anyhow::Error::new(e))),
        Ok(answer) if answer.status != 200 => {
            let problem = answer.problem();
            Err(format!(
                "status {}: {} {}",
                answer.status, problem.title, problem.detail
            ))
        }
        Ok(answer) => match answer.json() {
            Err(e) => Err(e.to_string()),
            Ok(record) if record["state"] != "completed" => {
                Err(format!("state {} ({})", record["state"], record["error"]))
            }
            Ok(record) if &record["result"] != expected => {
                Err(format!("result {} instead of {expected}", record["result"]))
            }
            Ok(record) => Ok(record),
        },
    };
    Call { latency, outcome }
}

/// A record's `timings.<key>` in microseconds.
pub fn timing_us(record: &Value, key: &str) -> Option<f64> {
    record["timings"][key].as_f64().map(ms_to_us)
}

/// Errors of a phase: how many and the first, for the report.
#[derive(Debug, Default, Clone)]
pub struct Errors {
    pub count: usize,
    pub first: Option<String>,
}

impl Errors {
    pub fn add(&mut self, error: String) {
        self.count += 1;
        self.first.get_or_insert(error);
    }
}

/// Warm latency: sequential calls over one connection.
#[derive(Debug, Clone)]
pub struct Warm {
    pub calls: usize,
    pub warmup: usize,
    pub client: Summary,
    pub errors: Errors,
    pub daemon_total: Option<Summary>,
    pub daemon_run: Option<Summary>,
    pub daemon_queue: Option<Summary>,
    /// `GET /healthz` over the same connection: the HTTP, socket and client floor.
    pub http_floor: Option<Summary>,
    /// Distinct executor pids that served the measured calls.
    pub executors: usize,
}

pub async fn measure_warm(client: &Client, calls: usize, warmup: usize) -> Result<Warm> {
    let mut samples = WarmSamples::default();
    samples.take(client, calls, warmup).await?;
    let http_floor = measure_http_floor(client, calls.min(1000)).await?;
    samples.finish(warmup, http_floor)
}

/// Warm calls' raw figures, gathered in one or more blocks.
#[derive(Default)]
pub struct WarmSamples {
    latencies: Vec<Duration>,
    total: Vec<f64>,
    run: Vec<f64>,
    queue: Vec<f64>,
    pids: BTreeSet<i64>,
    errors: Errors,
}

impl WarmSamples {
    /// `warmup` unmeasured calls, then `calls` measured ones, sequentially on one connection.
    pub async fn take(&mut self, client: &Client, calls: usize, warmup: usize) -> Result<()> {
        self.take_of(client, HANDLER_PY, calls, warmup).await
    }

    /// [`Self::take`] of the warm script with `source` (registered first: a new text is a new
    /// version, served by an executor of its own).
    pub async fn take_of(
        &mut self,
        client: &Client,
        source: &str,
        calls: usize,
        warmup: usize,
    ) -> Result<()> {
        let name = "bench-warm";
        register(client, name, source, 4).await?;
        let (payload, expected) = (payload(), expected_result(&payload()));
        for _ in 0..warmup {
            if let Err(e) = call(client, name, None, &payload, &expected).await.outcome {
                bail!("warm-up call of {name} failed: {e}");
            }
        }
        for _ in 0..calls {
            let done = call(client, name, None, &payload, &expected).await;
            self.latencies.push(done.latency);
            match done.outcome {
                Ok(record) => {
                    self.total.extend(timing_us(&record, "total_ms"));
                    self.run.extend(timing_us(&record, "run_ms"));
                    self.queue.extend(timing_us(&record, "queue_ms"));
                    self.pids.extend(record["executor"]["pid"].as_i64());
                }
                Err(e) => self.errors.add(e),
            }
        }
        Ok(())
    }

    /// The client-side median of the calls taken so far, in µs.
    pub fn client_p50(&self) -> Option<f64> {
        Summary::of_durations(&self.latencies).map(|s| s.p50)
    }

    /// Adds `other`'s samples to these.
    pub fn absorb(&mut self, other: WarmSamples) {
        self.latencies.extend(other.latencies);
        self.total.extend(other.total);
        self.run.extend(other.run);
        self.queue.extend(other.queue);
        self.pids.extend(other.pids);
        self.errors.count += other.errors.count;
        if self.errors.first.is_none() {
            self.errors.first = other.errors.first;
        }
    }

    pub fn finish(self, warmup: usize, http_floor: Option<Summary>) -> Result<Warm> {
        Ok(Warm {
            calls: self.latencies.len(),
            warmup,
            client: Summary::of_durations(&self.latencies).context("no warm calls were made")?,
            errors: self.errors,
            daemon_total: Summary::of_micros(self.total),
            daemon_run: Summary::of_micros(self.run),
            daemon_queue: Summary::of_micros(self.queue),
            http_floor,
            executors: self.pids.len(),
        })
    }
}

/// Sequential `GET /healthz`, the cheapest route: what any call pays before the daemon does work.
async fn measure_http_floor(client: &Client, calls: usize) -> Result<Option<Summary>> {
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let answer = client.get("/healthz").await.context("GET /healthz")?;
        latencies.push(started.elapsed());
        ensure!(
            answer.status == 200,
            "GET /healthz answered {}",
            answer.status
        );
    }
    Ok(Summary::of_durations(&latencies))
}

/// Cold starts: a new version per call.
#[derive(Debug, Clone)]
pub struct Cold {
    pub runs: usize,
    pub client: Summary,
    pub cold_start: Option<Summary>,
    /// Calls whose record said `cold: true`.
    pub cold_true: usize,
    pub errors: Errors,
}

pub async fn measure_cold(client: &Client, runs: usize) -> Result<Cold> {
    let mut cold = ColdRuns::new();
    for _ in 0..runs {
        cold.run_once(client).await?;
    }
    cold.finish()
}

/// Cold starts taken one at a time, so two daemons can be measured alternately.
pub struct ColdRuns {
    nonce: u128,
    latencies: Vec<Duration>,
    cold_starts: Vec<f64>,
    cold_true: usize,
    errors: Errors,
}

impl ColdRuns {
    pub fn new() -> Self {
        // Different content in every run of the benchmark too, so a daemon given with --socket
        // cannot answer from a version it already keeps warm.
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            nonce,
            latencies: Vec::new(),
            cold_starts: Vec::new(),
            cold_true: 0,
            errors: Errors::default(),
        }
    }

    /// Registers a new version and calls it once.
    pub async fn run_once(&mut self, client: &Client) -> Result<()> {
        let name = "bench-cold";
        let i = self.latencies.len();
        let (payload, expected) = (payload(), expected_result(&payload()));
        let source = format!("{HANDLER_PY}# cold start {i} of run {}\n", self.nonce);
        let (version, created) = register(client, name, &source, 1).await?;
        ensure!(created, "version {i} of {name} was not new ({version})");
        let selector = Selector::Version(version);
        let done = call(client, name, Some(&selector), &payload, &expected).await;
        self.latencies.push(done.latency);
        match done.outcome {
            Ok(record) => {
                if record["cold"] == true {
                    self.cold_true += 1;
                } else {
                    self.errors.add(format!(
                        "call {i} on a new version said cold: {}",
                        record["cold"]
                    ));
                }
                self.cold_starts.extend(timing_us(&record, "cold_start_ms"));
            }
            Err(e) => self.errors.add(e),
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Cold> {
        Ok(Cold {
            runs: self.latencies.len(),
            client: Summary::of_durations(&self.latencies).context("no cold calls were made")?,
            cold_start: Summary::of_micros(self.cold_starts),
            cold_true: self.cold_true,
            errors: self.errors,
        })
    }
}
