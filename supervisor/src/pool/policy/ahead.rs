//! Starts ahead of use and retirements outside a request: prewarm and `min_warm`, an
//! executor's replacement before its `max_requests`, the idle TTL, and the pools emptied on a
//! recycle or at shutdown.

use std::hash::Hash;
use std::time::{Duration, Instant};

use super::{Effects, Shape, Table};

impl<K: Eq + Hash + Clone, W, T> Table<K, W, T> {
    /// Reserves a slot to start an executor without a request (prewarm, `min_warm`), if the pool
    /// and the budget allow without evicting anything.
    pub fn reserve_start(&mut self, key: &K, shape: impl Into<Shape>, now: Instant) -> bool {
        let slot = self.slot(key, shape.into(), now);
        let (can_grow, weight) = (slot.can_grow(), slot.memory_mb);
        if can_grow && self.fits(weight) {
            self.charge(weight);
            self.add_starting(key);
            return true;
        }
        false
    }

    /// A replacement reserved by [`Table::reserve_replacement`] is ready: an idle executor it
    /// replaces (`replaced`) is retired now, freeing its place, and the new one is available.
    pub fn started_replacement(
        &mut self,
        key: &K,
        worker: W,
        now: Instant,
        replaced: impl Fn(&W) -> bool,
    ) -> Effects<K, W, T> {
        let mut old = None;
        if let Some(slot) = self.slots.get_mut(key)
            && let Some(pos) = slot.idle.iter().position(|e| replaced(&e.worker))
        {
            old = Some(slot.idle.remove(pos).worker);
            let weight = slot.memory_mb;
            self.discharge(weight);
        }
        let mut fx = self.started_idle(key, worker, now);
        fx.retire.extend(old);
        fx
    }

    /// A start reserved by [`Table::reserve_start`] succeeded: the executor becomes available.
    pub fn started_idle(&mut self, key: &K, worker: W, now: Instant) -> Effects<K, W, T> {
        self.started_busy(key);
        self.release(key, worker, true, now)
    }

    /// Retires idle executors older than their pool's `idle_ttl`, keeping `min_warm` alive.
    pub fn reap_idle(&mut self, now: Instant) -> Vec<W> {
        let mut retired = Vec::new();
        let mut freed_mb = 0;
        for slot in self.slots.values_mut() {
            let ttl = Duration::from_secs(slot.policy.idle_ttl_s);
            let min = slot.policy.min_warm as usize;
            // `idle` is ordered oldest first (MRU at the end).
            while slot.total() > min
                && slot
                    .idle
                    .first()
                    .is_some_and(|e| now.saturating_duration_since(e.since) >= ttl)
            {
                retired.push(slot.idle.remove(0).worker);
                self.live -= 1;
                freed_mb += slot.memory_mb;
            }
        }
        self.memory_mb = self.memory_mb.saturating_sub(freed_mb);
        retired
    }

    /// Forgets the pools that hold nothing (no executor, no waiter, no `min_warm`) and that
    /// nobody has used for their `idle_ttl`, so the table — and `GET /v1/pools` and the pool
    /// metrics read from it — holds the versions in use, not every version ever invoked.
    /// Returns their keys. A pool used again is made anew, with its version's memory limit as
    /// it is then.
    pub fn forget_unused(&mut self, now: Instant) -> Vec<K> {
        let mut forgotten = Vec::new();
        self.slots.retain(|key, slot| {
            let unused = slot.total() == 0
                && slot.waiters.is_empty()
                && slot.policy.min_warm == 0
                && now.saturating_duration_since(slot.last_used)
                    >= Duration::from_secs(slot.policy.idle_ttl_s);
            if unused {
                forgotten.push(key.clone());
            }
            !unused
        });
        forgotten
    }

    /// Reserves starts for pools below their `min_warm`; returns the pools to start one for.
    pub fn reserve_min_warm(&mut self) -> Vec<K> {
        let mut out = Vec::new();
        let keys: Vec<K> = self.slots.keys().cloned().collect();
        for key in keys {
            while let Some(slot) = self.slots.get(&key)
                && slot.total() < slot.policy.min_warm as usize
                && self.fits(slot.memory_mb)
            {
                let weight = slot.memory_mb;
                self.charge(weight);
                self.add_starting(&key);
                out.push(key.clone());
            }
        }
        out
    }

    /// Reserves a start for an executor's replacement before the executor is retired, when
    /// its pool and the daemon's budget have room for one more; the caller starts it idle.
    pub fn reserve_replacement(&mut self, key: &K) -> bool {
        let Some(slot) = self.slots.get(key) else {
            return false;
        };
        let weight = slot.memory_mb;
        if !slot.can_grow() || !self.fits(weight) {
            return false;
        }
        self.charge(weight);
        self.add_starting(key);
        true
    }

    /// Removes and returns the idle executors of one pool (their configuration changed, e.g.
    /// a secret they were started with); busy ones are the caller's to retire on release.
    pub fn take_idle(&mut self, key: &K) -> Vec<W> {
        let Some(slot) = self.slots.get_mut(key) else {
            return Vec::new();
        };
        let taken: Vec<W> = slot.idle.drain(..).map(|e| e.worker).collect();
        let weight = slot.memory_mb;
        for _ in &taken {
            self.discharge(weight);
        }
        taken
    }

    /// Removes and returns every idle executor (shutdown), and forgets empty pools.
    pub fn drain_idle(&mut self) -> Vec<W> {
        let mut out = Vec::new();
        for slot in self.slots.values_mut() {
            self.live -= slot.idle.len();
            self.memory_mb = self
                .memory_mb
                .saturating_sub(slot.memory_mb * slot.idle.len() as u64);
            out.extend(slot.idle.drain(..).map(|e| e.worker));
        }
        out
    }
}
