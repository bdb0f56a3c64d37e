//! Warm pools: one per (script, version), sharing a global budget of executors and of their
//! memory limits.
//!
//! The decisions are made by the pure [`policy::Table`] under one short-held lock; this module
//! carries them out: starting executors through the [`Launcher`], waking waiters, killing
//! retired executors (here and in `lease`, where an executor comes back), and starting them
//! ahead of use with a maintenance task for idle TTL and `min_warm` (`warm`). `views` is what
//! the API and the metrics see of them.

mod lease;
pub mod policy;
mod replace;
mod views;
mod warm;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::oneshot;

use crate::registry::manifest::Manifest;
use crate::runtime::{Launcher, ScriptRef};
use crate::worker::{StartError, Worker};
use policy::{Acquire, Effects, Grant, Shape, Table};

pub use policy::Budget;

pub use lease::Lease;
pub use views::PoolView;

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
    /// One executor of this version needs more memory than the pools' whole budget.
    #[error(
        "an executor of this version has a memory limit of {memory_mb} MiB, more than all \
         executors together may have ({budget_mb} MiB, pools.max_memory_mb): it can never start"
    )]
    OverMemoryBudget {
        /// The version's memory limit.
        memory_mb: u64,
        /// The budget.
        budget_mb: u64,
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

struct Inner {
    table: Mutex<Table<PoolKey, Worker, Token>>,
    launcher: Arc<Launcher>,
    targets: DashMap<PoolKey, Target>,
    stats: DashMap<PoolKey, Stats>,
    /// Starts and failed starts of forgotten pools, per script: their counters go on.
    forgotten_starts: DashMap<String, (u64, u64)>,
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
    /// Pools with a global `budget` and at most `queue_max` waiters.
    pub fn new(launcher: Arc<Launcher>, budget: Budget, queue_max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                table: Mutex::new(Table::new(budget, queue_max)),
                launcher,
                targets: DashMap::new(),
                stats: DashMap::new(),
                forgotten_starts: DashMap::new(),
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
    pub fn set_limits(&self, budget: Budget, queue_max: usize) {
        self.inner.lock().set_limits(budget, queue_max);
    }

    /// What a pool of `target` is to the table: its settings and its executors' memory limit.
    fn shape(&self, target: &Target) -> Shape {
        Shape {
            policy: target.manifest.pool,
            memory_mb: self.inner.launcher.memory_mb(&target.manifest),
        }
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
        let shape = self.shape(target);
        let t0 = tokio::time::Instant::now();
        // Ends: each executor that fails the check is retired, and one released meanwhile was
        // alive a moment ago, so it passes without a ping.
        let (decision, id, mut rx) = loop {
            let id = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            let decision = self
                .inner
                .lock()
                .acquire(&key, shape, Token { id, tx }, Instant::now());
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
            Acquire::OverBudget {
                memory_mb,
                budget_mb,
            } => {
                return Err(AcquireError::OverMemoryBudget {
                    memory_mb,
                    budget_mb,
                });
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

    /// Stops handing out executors and shuts every idle one down politely, within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.closed.store(true, Ordering::Release);
        let idle = self.inner.lock().drain_idle();
        let jobs: Vec<_> = idle.into_iter().map(|w| w.shutdown(grace)).collect();
        futures_util::future::join_all(jobs).await;
    }
}

/// Pool keys → targets, for callers that need to list what is warm.
pub type TargetMap = HashMap<PoolKey, Target>;
