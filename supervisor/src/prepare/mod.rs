//! Prepare: turning a registered version into something its executors can run — installing
//! its dependencies, compiling or transpiling it — once, at registration, cached by content.
//!
//! A runtime's `[prepare]` section has up to two steps. `dependencies` is keyed by the runtime,
//! its version, the step's script and the contents of the input files it names
//! (`requirements.txt`, `package.json`, …), so every version (of any script) with the same
//! inputs shares one environment. `build` is keyed by the version (and the dependency key it
//! built against). Both run confined (see `step`), outputs land in the cache only by rename
//! (see `cache`), and two registrations that need the same output run its step once.
//!
//! Executors see the outputs read-only at `/opt/runwarm/deps` and `/opt/runwarm/build`; an
//! invocation of a version still preparing waits for it within its own deadline.

mod cache;
mod job;
mod setup;
mod status;
mod step;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use self::cache::{Cache, Level};
pub use self::status::{CacheFigures, PrepareState, PrepareStatus, Prepared, StepReport};
pub use self::step::summary;
use crate::registry::manifest::Manifest;
use crate::runtime::Runtime;
use crate::sandbox::Confinement;

/// The `[prepare]` section of the daemon's config.
#[derive(Debug, Clone)]
pub struct PrepareSettings {
    /// Most bytes the cache may hold; unused entries are removed oldest first above it.
    pub max_bytes: u64,
    /// Entries no live version has used for this long are removed.
    pub retention: Duration,
    /// Wall-clock limit of one step.
    pub timeout: Duration,
    /// Memory limit of one step.
    pub memory_bytes: u64,
    /// Process limit of one step.
    pub pids: u64,
    /// CPU cores of one step.
    pub cpu: f64,
    /// Size of a step's private `/tmp`.
    pub tmp_bytes: u64,
    /// Steps running at once.
    pub concurrency: usize,
    /// Whether the daemon prepares every registered version at start (`all`), or only takes
    /// what is cached and prepares the rest at first invocation (`lazy`).
    pub at_start_all: bool,
}

impl Default for PrepareSettings {
    fn default() -> Self {
        Self {
            max_bytes: 10 << 30,
            retention: Duration::from_secs(30 * 86_400),
            timeout: Duration::from_secs(600),
            memory_bytes: 2 << 30,
            pids: 512,
            cpu: 2.0,
            tmp_bytes: 512 << 20,
            concurrency: 2,
            at_start_all: true,
        }
    }
}

/// A version to prepare.
#[derive(Debug, Clone)]
pub struct Job {
    /// Script name.
    pub name: String,
    /// Version id.
    pub version: String,
    /// The version's read-only tree.
    pub root: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Why a version's prepared folders cannot be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PrepareError {
    /// A step failed.
    #[error("{summary}")]
    Failed {
        /// The status and the end of the tool's output.
        summary: String,
        /// The step's whole (bounded) log.
        log: String,
    },
    /// Still preparing when the caller's deadline came.
    #[error(
        "the version is still being prepared ({step} step running); try again when `runwarm versions` shows it ready"
    )]
    Pending {
        /// The step running.
        step: &'static str,
    },
}

/// Lines of a failed step's log its summary keeps.
pub const SUMMARY_LINES: usize = 25;

/// Versions whose prepared folders must not be evicted (tagged, pooled, running).
pub type LiveVersions = Box<dyn Fn() -> HashSet<String> + Send + Sync>;

/// Told of every step that ran (runtime, `toolchain`/`dependencies`/`build`, how long), for the
/// metrics; steps answered from the cache are not reported.
pub type StepObserver = Box<dyn Fn(&str, &'static str, Duration) + Send + Sync>;

/// The prepare service: see the module documentation.
#[derive(Clone)]
pub struct Preparer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer").finish_non_exhaustive()
    }
}

type Flight = watch::Receiver<Option<Result<PathBuf, PrepareError>>>;

struct Inner {
    settings: PrepareSettings,
    confinement: Arc<Confinement>,
    executors_dir: PathBuf,
    cache: Mutex<Cache>,
    versions: Mutex<HashMap<String, watch::Sender<PrepareStatus>>>,
    flights: Mutex<HashMap<(Level, String), Flight>>,
    slots: Semaphore,
    figures: Mutex<BTreeMap<String, CacheFigures>>,
    live: RwLock<Option<LiveVersions>>,
    instance: std::sync::OnceLock<String>,
    /// When an invocation last needed each version: its folders are in use for a while after.
    used: Mutex<HashMap<String, std::time::Instant>>,
    /// Set once at start-up, after the metrics exist.
    on_step: std::sync::OnceLock<StepObserver>,
}

/// How long after an invocation needed a version its folders count as in use.
const RECENT_USE: Duration = Duration::from_secs(600);

impl Preparer {
    /// Opens the cache under `<state_dir>/prepare` (removing what an interrupted step left).
    pub fn new(
        state_dir: &Path,
        settings: PrepareSettings,
        confinement: Arc<Confinement>,
        executors_dir: PathBuf,
    ) -> std::io::Result<Self> {
        let cache = Cache::open(state_dir)?;
        let slots = Semaphore::new(settings.concurrency.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                confinement,
                executors_dir,
                cache: Mutex::new(cache),
                versions: Mutex::default(),
                flights: Mutex::default(),
                slots,
                figures: Mutex::default(),
                live: RwLock::new(None),
                instance: std::sync::OnceLock::new(),
                used: Mutex::default(),
                on_step: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Marks every step's processes with the daemon instance (`RUNWARM_INSTANCE`), as
    /// executors are, so a leak can be found in `/proc/*/environ`.
    pub fn set_instance(&self, instance: &str) {
        let _ = self.inner.instance.set(instance.to_owned());
    }

    /// Reports every step that runs to `observer` (the first call wins).
    pub fn observe_steps(&self, observer: StepObserver) {
        let _ = self.inner.on_step.set(observer);
    }

    /// Its settings.
    pub fn settings(&self) -> &PrepareSettings {
        &self.inner.settings
    }

    /// Tells the preparer which versions are live (their folders are never evicted).
    pub fn set_live(&self, live: LiveVersions) {
        *self
            .inner
            .live
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(live);
    }

    /// Starts preparing `job` unless it is prepared or preparing; a failed prepare is retried
    /// only with `retry_failed` (a re-registration), not on every invocation. Returns the
    /// status as it is now.
    pub fn submit(&self, rt: &Runtime, job: Job, retry_failed: bool) -> PrepareStatus {
        let mut versions = lock(&self.inner.versions);
        if let Some(tx) = versions.get(&job.version) {
            let current = tx.borrow().clone();
            let redo = match current.state {
                PrepareState::Failed => retry_failed,
                PrepareState::Ready => !current.is_intact(),
                PrepareState::Evicted => true,
                PrepareState::Pending | PrepareState::Running => false,
            };
            if !redo {
                return current;
            }
        }
        let plan = job::plan(rt, &job);
        if let Some(ready) = job::from_cache(&self.inner, rt, &plan) {
            let (tx, _) = watch::channel(ready.clone());
            versions.insert(job.version.clone(), tx);
            return ready;
        }
        let (tx, _) = watch::channel(PrepareStatus::pending());
        versions.insert(job.version.clone(), tx.clone());
        drop(versions);
        let inner = Arc::clone(&self.inner);
        let rt = rt.clone();
        tokio::spawn(async move { job::run(inner, rt, job, plan, tx).await });
        PrepareStatus::pending()
    }

    /// Records a version whose prepared folders are all in the cache already, running nothing;
    /// returns whether it was.
    pub fn restore(&self, rt: &Runtime, job: &Job) -> bool {
        let plan = job::plan(rt, job);
        let Some(ready) = job::from_cache(&self.inner, rt, &plan) else {
            return false;
        };
        let (tx, _) = watch::channel(ready);
        lock(&self.inner.versions).insert(job.version.clone(), tx);
        true
    }

    /// A version's prepare, if it was submitted.
    pub fn status(&self, version: &str) -> Option<PrepareStatus> {
        lock(&self.inner.versions)
            .get(version)
            .map(|tx| tx.borrow().clone())
    }

    /// Where a version's prepare stands, without copying its logs.
    pub fn state(&self, version: &str) -> Option<PrepareState> {
        lock(&self.inner.versions)
            .get(version)
            .map(|tx| tx.borrow().state)
    }

    /// The prepared folders of a version that is ready (on every invocation: no file system
    /// access, no copy of the logs; eviction marks what it removes).
    pub fn prepared(&self, version: &str) -> Option<Prepared> {
        let versions = lock(&self.inner.versions);
        let status = versions.get(version)?.borrow();
        (status.state == PrepareState::Ready).then(|| status.prepared.clone())
    }

    /// Prepares `job` if needed and waits for it until `deadline`.
    pub async fn ensure(
        &self,
        rt: &Runtime,
        job: Job,
        deadline: tokio::time::Instant,
    ) -> Result<Prepared, PrepareError> {
        let version = job.version.clone();
        lock(&self.inner.used).insert(version.clone(), std::time::Instant::now());
        self.submit(rt, job, false);
        let Some(mut rx) = lock(&self.inner.versions)
            .get(&version)
            .map(watch::Sender::subscribe)
        else {
            return Err(PrepareError::Pending { step: "queued" });
        };
        let waited = tokio::time::timeout_at(deadline, rx.wait_for(PrepareStatus::is_final))
            .await
            .map(|r| r.map(drop));
        let current = rx.borrow().clone();
        match (waited, current.state) {
            (Ok(Ok(_)), PrepareState::Ready) => Ok(current.prepared),
            (Ok(Ok(_)), _) => Err(PrepareError::Failed {
                summary: current.error.unwrap_or_default(),
                log: [current.dependencies, current.build]
                    .into_iter()
                    .flatten()
                    .map(|s| s.log)
                    .collect::<Vec<_>>()
                    .join("\n"),
            }),
            _ => Err(PrepareError::Pending {
                step: current.step.unwrap_or("queued"),
            }),
        }
    }

    /// The cache figures per runtime.
    pub fn figures(&self) -> BTreeMap<String, CacheFigures> {
        let mut out = lock(&self.inner.figures).clone();
        for e in lock(&self.inner.cache).entries() {
            let f = out.entry(e.runtime.clone()).or_default();
            f.entries += 1;
            f.size_bytes += e.size_bytes;
        }
        out
    }

    /// Removes cache entries no live version uses, per the configured size and retention.
    pub fn evict(&self) {
        self.inner.evict();
    }
}

impl Inner {
    fn evict(&self) {
        let live = match &*self.live.read().unwrap_or_else(PoisonError::into_inner) {
            Some(f) => f(),
            None => return,
        };
        let recent: HashSet<String> = {
            let mut used = lock(&self.used);
            used.retain(|_, at| at.elapsed() < RECENT_USE);
            used.keys().cloned().collect()
        };
        let mut in_use: HashSet<(Level, String)> = HashSet::new();
        for (version, tx) in lock(&self.versions).iter() {
            let s = tx.borrow();
            if !live.contains(version) && !recent.contains(version) && s.is_final() {
                continue;
            }
            if let Some(d) = &s.dependencies {
                in_use.insert((Level::Deps, d.key.clone()));
            }
            if let Some(b) = &s.build {
                in_use.insert((Level::Build, b.key.clone()));
            }
        }
        let removed = lock(&self.cache).evict(
            &|level, key| in_use.contains(&(level, key.to_owned())),
            self.settings.max_bytes,
            self.settings.retention,
        );
        if removed.is_empty() {
            return;
        }
        let gone: HashSet<&str> = removed.iter().map(|m| m.key.as_str()).collect();
        for tx in lock(&self.versions).values() {
            tx.send_if_modified(|s| {
                let keys = [&s.dependencies, &s.build];
                let hit = keys
                    .into_iter()
                    .flatten()
                    .any(|r| gone.contains(r.key.as_str()));
                if hit && s.state == PrepareState::Ready {
                    s.state = PrepareState::Evicted;
                    s.prepared = Prepared::default();
                }
                hit
            });
        }
        for m in removed {
            tracing::info!(runtime = %m.runtime, level = ?m.level, key = %m.key, bytes = m.size_bytes, "prepare cache entry evicted");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
