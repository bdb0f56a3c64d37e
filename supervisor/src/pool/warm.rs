//! Executors started ahead of the calls that will use them: `min_warm`, prewarming,
//! replacements, and the maintenance that retires idle ones.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{PREWARM_PREPARE_WAIT, PoolKey, Pools, Target};
use crate::worker::Worker;

/// Why an executor is started idle, ahead of the calls that will use it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Started {
    /// `min_warm` or a prewarm.
    Ahead,
    /// It replaces one nearing its `max_requests`, which it retires if that one is idle.
    Replacement,
}

impl Pools {
    /// Starts up to `count` executors for `target` in the background, as far as its `max` and
    /// the budget allow without evicting anything; returns how many were started.
    pub fn prewarm(&self, target: &Target, count: u32) -> u32 {
        let key = target.key();
        self.inner
            .targets
            .entry(key.clone())
            .or_insert_with(|| target.clone());
        let shape = self.shape(target);
        let mut started = 0;
        for _ in 0..count {
            if !self.inner.lock().reserve_start(&key, shape, Instant::now()) {
                break;
            }
            started += 1;
            self.spawn_idle(key.clone(), target.clone(), Started::Ahead);
        }
        started
    }

    pub(super) fn spawn_idle(&self, key: PoolKey, target: Target, why: Started) {
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
            let now = Instant::now();
            let retired = t.reap_idle(now);
            // Under the table's lock, so an acquire cannot find the pool between the two.
            for key in t.forget_unused(now) {
                self.inner.targets.remove(&key);
                self.inner.recycled.remove(&key);
                if let Some((key, stats)) = self.inner.stats.remove(&key) {
                    let mut total = self.inner.forgotten_starts.entry(key.script).or_default();
                    total.0 += stats.spawned;
                    total.1 += stats.start_failures;
                }
            }
            (retired, t.reserve_min_warm())
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
}
