//! Warm pools: one per (script, version), sharing a global executor budget.
//!
//! The decisions are made by the pure [`policy::Table`] under one short-held lock; this module
//! carries them out: starting executors through the [`Launcher`], waking waiters, killing
//! retired executors, and a maintenance task for idle TTL and `min_warm`.

pub mod policy;
mod replace;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::manifest::Manifest;
use crate::runtime::{Launcher, ScriptRef};
use crate::worker::{StartError, Worker};
use policy::{Acquire, Effects, Grant, Table};

/// A pool's identity: script name and version id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    /// Script name.
    pub script: String,
    /// Version id.
    pub version: String,
}

/// What a pool starts executors for.
#[derive(Debug, Clone)]
pub struct Target {
    /// Script name.
    pub name: String,
    /// Version id.
    pub version: String,
    /// Materialised bundle.
    pub root: PathBuf,
    /// Manifest.
    pub manifest: Arc<Manifest>,
}

impl Target {
    fn key(&self) -> PoolKey {
        PoolKey {
            script: self.name.clone(),
            version: self.version.clone(),
        }
    }

    /// How the launcher names this target.
    pub fn script_ref(&self) -> ScriptRef<'_> {
        ScriptRef {
            name: &self.name,
            version: &self.version,
            root: &self.root,
            manifest: &self.manifest,
        }
    }
}

/// An idle executor unused for this long is pinged before it is handed out (see
/// [`Worker::answers_after_idle`]); one used more recently is handed out at once.
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);
/// How long the `pong` may take. A live executor answers in well under a millisecond; a miss
/// costs only a cold start, never the request.
const PONG_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a prewarm waits for its version's prepare (a Maven download can take minutes).
const PREWARM_PREPARE_WAIT: Duration = Duration::from_secs(900);

/// Why no executor could be had.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// The global wait queue is full.
    #[error("too many invocations waiting ({waiting}); try again shortly")]
    QueueFull {
        /// How many wait.
        waiting: usize,
    },
    /// No executor became free before the deadline.
    #[error("no executor became free within {waited_ms} ms")]
    WaitTimeout {
        /// How long it waited.
        waited_ms: u64,
    },
    /// Starting an executor failed.
    #[error("executor failed to start: {0}")]
    Start(#[source] StartError),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

struct Token {
    id: u64,
    tx: oneshot::Sender<Grant<Worker>>,
}

/// Cold-start and spawn figures of one pool.
#[derive(Debug, Default)]
struct Stats {
    spawned: u64,
    start_failures: u64,
    recent_cold_ms: Vec<f64>,
}

/// One pool's state, for `GET /v1/pools`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    /// Script name.
    pub script: String,
    /// Version id.
    pub version: String,
    /// Idle executors.
    pub idle: usize,
    /// Busy executors.
    pub busy: usize,
    /// Starting executors.
    pub starting: usize,
    /// Waiting invocations.
    pub waiting: usize,
    /// Pool `max`.
    pub max: u32,
    /// Pool `min_warm`.
    pub min_warm: u32,
    /// Executors started so far.
    pub spawned: u64,
    /// Starts that failed.
    pub start_failures: u64,
    /// Median of the last cold starts, in ms.
    pub cold_start_ms_p50: Option<f64>,
}

/// An executor on loan for one request. Dropping it returns the executor (or retires it if it
/// is unhealthy or spent).
pub struct Lease {
    key: PoolKey,
    max_requests: u64,
    worker: Option<Worker>,
    pools: Arc<Inner>,
    /// Whether this lease started the executor.
    pub cold: bool,
    /// The cold start time, when cold.
    pub cold_start: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("cold", &self.cold)
            .finish()
    }
}

impl Lease {
    /// The executor.
    pub fn worker(&mut self) -> Option<&mut Worker> {
        self.worker.as_mut()
    }
}

impl Lease {
    /// Gives the executor back now; true when it went straight to a caller waiting for one,
    /// who then runs as soon as this task yields.
    pub fn release(mut self) -> bool {
        self.give_back()
    }

    fn give_back(&mut self) -> bool {
        let Some(mut w) = self.worker.take() else {
            return false;
        };
        let stale = self
            .pools
            .recycled
            .get(&self.key)
            .is_some_and(|at| w.started() <= *at);
        let reusable = w.is_healthy() && w.invocations() < self.max_requests && !stale;
        // Reserved while this executor still counts as busy, which is what it counts as
        // once idle; marked only when reserved, so a pool with no room tries again later.
        let replacement = (reusable
            && !w.is_replaced()
            && replace::due(
                w.invocations(),
                self.max_requests,
                w.started(),
                w.cold_start(),
            ))
        .then(|| self.pools.reserve_replacement(&self.key))
        .flatten();
        if replacement.is_some() {
            w.mark_replaced();
        }
        let fx = self
            .pools
            .lock()
            .release(&self.key, w, reusable, Instant::now());
        let handed_over = self.pools.apply(fx);
        if let Some(target) = replacement {
            Pools {
                inner: Arc::clone(&self.pools),
            }
            .spawn_idle(self.key.clone(), target, Started::Replacement);
        }
        handed_over
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.give_back();
    }
}

struct Inner {
    table: Mutex<Table<PoolKey, Worker, Token>>,
    launcher: Arc<Launcher>,
    targets: DashMap<PoolKey, Target>,
    stats: DashMap<PoolKey, Stats>,
    next_token: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
    /// When each pool was last recycled: an executor started before that is retired when it
    /// comes back instead of serving again.
    recycled: DashMap<PoolKey, Instant>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Table<PoolKey, Worker, Token>> {
        // The table's methods do not panic part-way; a poisoned lock still holds a
        // consistent table.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Carries out what the policy decided, outside the lock; true when an executor went to a
    /// waiting caller.
    fn apply(self: &Arc<Self>, fx: Effects<PoolKey, Worker, Token>) -> bool {
        let mut handed_over = false;
        let mut pending = vec![fx];
        while let Some(fx) = pending.pop() {
            drop(fx.retire); // Worker::drop kills the process group.
            for (key, token, grant) in fx.grants {
                let to_worker = matches!(grant, Grant::Worker(_));
                match token.tx.send(grant) {
                    Ok(()) => handed_over |= to_worker,
                    Err(grant) => {
                        // The waiter gave up between being chosen and being woken: undo.
                        let undo = match grant {
                            Grant::Worker(w) => self.lock().release(&key, w, true, Instant::now()),
                            Grant::Start => self.lock().start_failed(&key),
                        };
                        pending.push(undo);
                    }
                }
            }
        }
        handed_over
    }

    /// Reserves the start of an executor of `key` ahead of one nearing its `max_requests`
    /// (`replace`), when the pool has room; the target to start. Not while shutting down, nor
    /// outside the runtime (a lease dropped during its shutdown).
    fn reserve_replacement(&self, key: &PoolKey) -> Option<Target> {
        if self.closed.load(Ordering::Acquire) || tokio::runtime::Handle::try_current().is_err() {
            return None;
        }
        let target = self.targets.get(key).map(|t| t.clone())?;
        if !self.lock().reserve_replacement(key) {
            return None;
        }
        tracing::debug!(script = %key.script, version = %key.version,
            "starting an executor's replacement ahead of its max_requests");
        Some(target)
    }

    fn record_start(&self, key: &PoolKey, result: &Result<Worker, StartError>) {
        let mut s = self.stats.entry(key.clone()).or_default();
        match result {
            Ok(w) => {
                s.spawned += 1;
                if s.recent_cold_ms.len() >= 64 {
                    s.recent_cold_ms.remove(0);
                }
                s.recent_cold_ms.push(w.cold_start().as_secs_f64() * 1000.0);
            }
            Err(_) => s.start_failures += 1,
        }
    }
}

/// Why an executor is started idle, ahead of the calls that will use it.
#[derive(Debug, Clone, Copy)]
enum Started {
    /// `min_warm` or a prewarm.
    Ahead,
    /// It replaces one nearing its `max_requests`, which it retires if that one is idle.
    Replacement,
}

/// Releases a reserved start slot if the start is abandoned (its future dropped).
struct StartGuard<'a> {
    inner: &'a Arc<Inner>,
    key: &'a PoolKey,
    armed: bool,
}

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let fx = self.inner.lock().start_failed(self.key);
            self.inner.apply(fx);
        }
    }
}

/// All warm pools.
#[derive(Clone)]
pub struct Pools {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools").finish_non_exhaustive()
    }
}

impl Pools {
    /// Pools with a global budget of `max_workers` executors and `queue_max` waiters.
    pub fn new(launcher: Arc<Launcher>, max_workers: usize, queue_max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                table: Mutex::new(Table::new(max_workers, queue_max)),
                launcher,
                targets: DashMap::new(),
                stats: DashMap::new(),
                next_token: AtomicU64::new(1),
                closed: std::sync::atomic::AtomicBool::new(false),
                recycled: DashMap::new(),
            }),
        }
    }

    /// The launcher (for the runtime catalog).
    pub fn launcher(&self) -> &Arc<Launcher> {
        &self.inner.launcher
    }

    /// Changes the global limits (reload).
    pub fn set_limits(&self, max_workers: usize, queue_max: usize) {
        self.inner.lock().set_limits(max_workers, queue_max);
    }

    /// Gets an executor for `target`, waiting at most until `deadline`.
    pub async fn acquire(
        &self,
        target: &Target,
        deadline: tokio::time::Instant,
    ) -> Result<Lease, AcquireError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(AcquireError::ShuttingDown);
        }
        let key = target.key();
        self.inner
            .targets
            .entry(key.clone())
            .or_insert_with(|| target.clone());
        let policy = target.manifest.pool;
        let t0 = tokio::time::Instant::now();
        // Ends: each executor that fails the check is retired, and one released meanwhile was
        // alive a moment ago, so it passes without a ping.
        let (decision, id, mut rx) = loop {
            let id = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            let decision =
                self.inner
                    .lock()
                    .acquire(&key, policy, Token { id, tx }, Instant::now());
            let Acquire::Idle(w) = decision else {
                break (decision, id, rx);
            };
            // Leased before the check, so a caller that gives up mid-check returns (or
            // retires) the executor through the lease instead of leaking its busy slot.
            let mut lease = self.lease(key.clone(), policy.max_requests, w, false);
            let alive = match lease.worker() {
                Some(w) => w.answers_after_idle(IDLE_CHECK_AFTER, PONG_TIMEOUT).await,
                None => false,
            };
            if alive {
                return Ok(lease);
            }
            if let Some(w) = lease.worker() {
                tracing::warn!(script = %key.script, version = %key.version, pid = w.pid(),
                    "an idle executor did not answer a ping; replacing it");
            }
            // The dead executor is retired by the lease's drop; ask again.
            drop(lease);
        };
        let grant = match decision {
            Acquire::Idle(w) => return Ok(self.lease(key, policy.max_requests, w, false)),
            Acquire::Start { evict } => {
                drop(evict);
                Grant::Start
            }
            Acquire::Reject => {
                let waiting = self.inner.lock().waiting();
                return Err(AcquireError::QueueFull { waiting });
            }
            Acquire::Wait => match tokio::time::timeout_at(deadline, &mut rx).await {
                Ok(Ok(grant)) => grant,
                Ok(Err(_)) => return Err(AcquireError::ShuttingDown),
                Err(_) => {
                    let removed = self.inner.lock().cancel_wait(&key, |t| t.id == id);
                    if removed.is_some() {
                        let waited_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
                        return Err(AcquireError::WaitTimeout { waited_ms });
                    }
                    // Granted just as the deadline passed: the grant is in the channel.
                    match rx.try_recv() {
                        Ok(grant) => grant,
                        Err(_) => return Err(AcquireError::ShuttingDown),
                    }
                }
            },
        };
        match grant {
            Grant::Worker(w) => Ok(self.lease(key, policy.max_requests, w, false)),
            Grant::Start => {
                let mut guard = StartGuard {
                    inner: &self.inner,
                    key: &key,
                    armed: true,
                };
                let started = self.inner.launcher.start(target.script_ref()).await;
                self.inner.record_start(&key, &started);
                match started {
                    Ok(w) => {
                        guard.armed = false;
                        self.inner.lock().started_busy(&key);
                        let cold_start = w.cold_start();
                        let mut lease = self.lease(key.clone(), policy.max_requests, w, true);
                        lease.cold_start = cold_start;
                        Ok(lease)
                    }
                    // An executor killed mid-start because the daemon is stopping is not the
                    // script's failure: the caller keeps its work queued for the next start.
                    Err(_) if self.inner.closed.load(Ordering::Acquire) => {
                        Err(AcquireError::ShuttingDown)
                    }
                    Err(e) => Err(AcquireError::Start(e)),
                }
            }
        }
    }

    fn lease(&self, key: PoolKey, max_requests: u64, w: Worker, cold: bool) -> Lease {
        Lease {
            key,
            max_requests,
            worker: Some(w),
            pools: Arc::clone(&self.inner),
            cold,
            cold_start: Duration::ZERO,
        }
    }

    /// Starts up to `count` executors for `target` in the background, as far as its `max` and
    /// the budget allow without evicting anything; returns how many were started.
    pub fn prewarm(&self, target: &Target, count: u32) -> u32 {
        let key = target.key();
        self.inner
            .targets
            .entry(key.clone())
            .or_insert_with(|| target.clone());
        let mut started = 0;
        for _ in 0..count {
            if !self
                .inner
                .lock()
                .reserve_start(&key, target.manifest.pool, Instant::now())
            {
                break;
            }
            started += 1;
            self.spawn_idle(key.clone(), target.clone(), Started::Ahead);
        }
        started
    }

    fn spawn_idle(&self, key: PoolKey, target: Target, why: Started) {
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move {
            // A version still preparing is started when its prepare is done.
            let prepared = tokio::time::Instant::now() + PREWARM_PREPARE_WAIT;
            let started = match inner.launcher.prepare(target.script_ref(), prepared).await {
                Ok(()) => inner.launcher.start(target.script_ref()).await,
                Err(e) => Err(e),
            };
            inner.record_start(&key, &started);
            let fx = match started {
                Ok(w) => match why {
                    Started::Ahead => inner.lock().started_idle(&key, w, Instant::now()),
                    Started::Replacement => inner.lock().started_replacement(
                        &key,
                        w,
                        Instant::now(),
                        Worker::is_replaced,
                    ),
                },
                Err(e) => {
                    // The executor's own message (an exception at load) may quote a secret.
                    let error = inner
                        .launcher
                        .redactor(&target.manifest)
                        .text(&e.to_string());
                    tracing::warn!(script = %key.script, version = %key.version, error = %error, "prewarm start failed");
                    inner.lock().start_failed(&key)
                }
            };
            inner.apply(fx);
        });
    }

    /// Retires idle executors past their TTL and tops pools up to `min_warm`; call periodically.
    pub fn maintain(&self) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        let (retired, to_start) = {
            let mut t = self.inner.lock();
            (t.reap_idle(Instant::now()), t.reserve_min_warm())
        };
        drop(retired);
        for key in to_start {
            match self.inner.targets.get(&key).map(|t| t.clone()) {
                Some(target) => self.spawn_idle(key, target, Started::Ahead),
                None => {
                    let fx = self.inner.lock().start_failed(&key);
                    self.inner.apply(fx);
                }
            }
        }
    }

    /// Recycles the pools of every version whose manifest names `secret`: idle executors are
    /// retired now, busy ones when their request ends, and `min_warm` is refilled with
    /// executors that read the new value. Returns how many pools were recycled.
    pub fn recycle_using_secret(&self, secret: &str) -> usize {
        let keys: Vec<PoolKey> = self
            .inner
            .targets
            .iter()
            .filter(|t| {
                t.value()
                    .manifest
                    .secrets
                    .iter()
                    .any(|s| s.name() == secret)
            })
            .map(|t| t.key().clone())
            .collect();
        let now = Instant::now();
        for key in &keys {
            self.inner.recycled.insert(key.clone(), now);
            let idle = self.inner.lock().take_idle(key);
            // Worker::drop kills the process group; outside the lock.
            drop(idle);
        }
        if !keys.is_empty() {
            self.maintain();
        }
        keys.len()
    }

    /// State of every pool, sorted by script and version.
    /// Whether the daemon is shutting down (no executor starts any more).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Versions that have a pool (executors, or callers waiting for one).
    pub fn versions(&self) -> Vec<String> {
        self.inner
            .targets
            .iter()
            .map(|t| t.key().version.clone())
            .collect()
    }

    pub fn views(&self) -> Vec<PoolView> {
        let counts = self.inner.lock().counts();
        let mut out: Vec<PoolView> = counts
            .into_iter()
            .map(|(k, p, c)| {
                let (spawned, start_failures, p50) = match self.inner.stats.get(&k) {
                    Some(s) => (s.spawned, s.start_failures, median(&s.recent_cold_ms)),
                    None => (0, 0, None),
                };
                PoolView {
                    script: k.script,
                    version: k.version,
                    idle: c.idle,
                    busy: c.busy,
                    starting: c.starting,
                    waiting: c.waiting,
                    max: p.max,
                    min_warm: p.min_warm,
                    spawned,
                    start_failures,
                    cold_start_ms_p50: p50,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.script, &a.version).cmp(&(&b.script, &b.version)));
        out
    }

    /// Executors started and starts that failed, per script, since the daemon started. Kept
    /// for every pool that ever started one (never reset), so they can back counters.
    pub fn start_counts(&self) -> HashMap<String, (u64, u64)> {
        let mut out: HashMap<String, (u64, u64)> = HashMap::new();
        for s in self.inner.stats.iter() {
            let e = out.entry(s.key().script.clone()).or_default();
            e.0 += s.spawned;
            e.1 += s.start_failures;
        }
        out
    }

    /// Totals: (live executors, waiting invocations).
    pub fn totals(&self) -> (usize, usize) {
        let t = self.inner.lock();
        (t.live(), t.waiting())
    }

    /// Stops handing out executors and shuts every idle one down politely, within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.closed.store(true, Ordering::Release);
        let idle = self.inner.lock().drain_idle();
        let jobs: Vec<_> = idle.into_iter().map(|w| w.shutdown(grace)).collect();
        futures_util::future::join_all(jobs).await;
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[s.len() / 2])
}

/// Pool keys → targets, for callers that need to list what is warm.
pub type TargetMap = HashMap<PoolKey, Target>;
