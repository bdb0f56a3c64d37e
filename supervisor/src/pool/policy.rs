//! Warm-pool policy as a pure data structure: no tokio, no processes, no clock of its own.
//!
//! [`Table`] decides who gets an executor: an idle one of the pool (most recently used first),
//! a new one if the pool's `max` and the global [`Budget`] allow (evicting the least recently
//! used idle executors of other pools when the budget is full), or a place in a bounded FIFO
//! queue. `W` is the executor (a real worker in the daemon, a number in tests) and `T` the token
//! a waiter is woken through. The budget is two limits at once: executors alive, and the sum of
//! their memory limits (`budget.rs`). Starts ahead of use and retirements outside a request
//! (prewarm, `min_warm`, replacements, the idle TTL) are in `ahead.rs`.
//!
//! Invariants (checked by the randomised test): `live` equals the sum of idle, busy and starting
//! executors over all pools and never exceeds the budget's `workers`, and the memory in use is
//! the sum of their memory limits and never exceeds its `memory_mb`; no pool exceeds its `max`;
//! an idle executor is handed out once; a pool never has waiters while it has idle executors;
//! each pool's queue is served first come, first served.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use crate::registry::manifest::PoolPolicy;

mod ahead;
mod budget;

pub use budget::{Budget, Shape};

/// What a caller of [`Table::acquire`] should do.
#[derive(Debug, PartialEq)]
pub enum Acquire<W> {
    /// Use this idle executor.
    Idle(W),
    /// Start a new executor (a slot is reserved); retire `evict` first.
    Start {
        /// Idle executors of other pools, removed to make room.
        evict: Vec<W>,
    },
    /// Wait; the token will receive a [`Grant`].
    Wait,
    /// The queue is full.
    Reject,
    /// One executor of this pool needs more memory than the whole budget: it can never start.
    OverBudget {
        /// The memory limit of one of its executors.
        memory_mb: u64,
        /// The budget's memory.
        budget_mb: u64,
    },
}

/// What a waiter receives.
#[derive(Debug, PartialEq)]
pub enum Grant<W> {
    /// An executor handed over directly.
    Worker(W),
    /// Permission to start a new executor (a slot is reserved).
    Start,
}

/// Effects of a release, a failed start or a reap that the caller must carry out.
#[derive(Debug)]
pub struct Effects<K, W, T> {
    /// Executors to kill.
    pub retire: Vec<W>,
    /// Waiters to wake: (pool, token, grant).
    pub grants: Vec<(K, T, Grant<W>)>,
}

impl<K, W, T> Default for Effects<K, W, T> {
    fn default() -> Self {
        Self {
            retire: Vec::new(),
            grants: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct IdleEntry<W> {
    worker: W,
    since: Instant,
}

#[derive(Debug)]
struct Waiter<T> {
    seq: u64,
    token: T,
}

/// Counts of one pool, for `GET /v1/pools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotCounts {
    /// Idle executors.
    pub idle: usize,
    /// Executors serving a request.
    pub busy: usize,
    /// Executors being started.
    pub starting: usize,
    /// Invocations waiting.
    pub waiting: usize,
    /// The memory limit each of its executors counts against the budget.
    pub memory_mb: u64,
}

#[derive(Debug)]
struct Slot<W, T> {
    policy: PoolPolicy,
    memory_mb: u64,
    idle: Vec<IdleEntry<W>>,
    busy: usize,
    starting: usize,
    waiters: VecDeque<Waiter<T>>,
    last_used: Instant,
}

impl<W, T> Slot<W, T> {
    fn total(&self) -> usize {
        self.idle.len() + self.busy + self.starting
    }

    fn can_grow(&self) -> bool {
        self.total() < self.policy.max as usize
    }
}

/// The state of every pool.
#[derive(Debug)]
pub struct Table<K, W, T> {
    slots: HashMap<K, Slot<W, T>>,
    live: usize,
    memory_mb: u64,
    waiting: usize,
    budget: Budget,
    queue_max: usize,
    seq: u64,
}

impl<K: Eq + Hash + Clone, W, T> Table<K, W, T> {
    /// An empty table with a global budget and a global queue bound.
    pub fn new(budget: impl Into<Budget>, queue_max: usize) -> Self {
        Self {
            slots: HashMap::new(),
            live: 0,
            memory_mb: 0,
            waiting: 0,
            budget: budget.into(),
            queue_max,
            seq: 0,
        }
    }

    /// Changes the global limits (on reload); excess executors retire as they are released.
    pub fn set_limits(&mut self, budget: Budget, queue_max: usize) {
        self.budget = budget;
        self.queue_max = queue_max;
    }

    fn slot(&mut self, key: &K, shape: Shape, now: Instant) -> &mut Slot<W, T> {
        self.slots.entry(key.clone()).or_insert_with(|| Slot {
            policy: shape.policy,
            memory_mb: shape.memory_mb,
            idle: Vec::new(),
            busy: 0,
            starting: 0,
            waiters: VecDeque::new(),
            last_used: now,
        })
    }

    /// Asks for an executor of pool `key`; `token` is kept if the answer is [`Acquire::Wait`].
    pub fn acquire(
        &mut self,
        key: &K,
        shape: impl Into<Shape>,
        token: T,
        now: Instant,
    ) -> Acquire<W> {
        let shape = shape.into();
        let queue_full = self.waiting >= self.queue_max;
        let budget_mb = self.budget.memory_mb;
        let slot = self.slot(key, shape, now);
        slot.last_used = now;
        let weight = slot.memory_mb;
        if slot.waiters.is_empty() {
            if let Some(entry) = slot.idle.pop() {
                slot.busy += 1;
                return Acquire::Idle(entry.worker);
            }
            if weight > budget_mb {
                return Acquire::OverBudget {
                    memory_mb: weight,
                    budget_mb,
                };
            }
            if slot.can_grow()
                && let Some(evict) = self.make_room(key, weight)
            {
                self.charge(weight);
                self.slot(key, shape, now).starting += 1;
                return Acquire::Start { evict };
            }
        }
        if queue_full {
            return Acquire::Reject;
        }
        self.seq += 1;
        let seq = self.seq;
        self.slot(key, shape, now)
            .waiters
            .push_back(Waiter { seq, token });
        self.waiting += 1;
        Acquire::Wait
    }

    /// A start reserved by [`Acquire::Start`] or a [`Grant::Start`] succeeded and the starter
    /// uses the executor.
    pub fn started_busy(&mut self, key: &K) {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.starting = slot.starting.saturating_sub(1);
            slot.busy += 1;
        }
    }

    /// A reserved start failed: the slot is freed and waiters may take it.
    pub fn start_failed(&mut self, key: &K) -> Effects<K, W, T> {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.starting = slot.starting.saturating_sub(1);
            let weight = slot.memory_mb;
            self.discharge(weight);
        }
        let mut fx = Effects::default();
        self.grant_starts(&mut fx);
        fx
    }

    /// An executor comes back after a request; `reusable` is false when it faulted or reached
    /// its `max_requests`.
    pub fn release(
        &mut self,
        key: &K,
        worker: W,
        reusable: bool,
        now: Instant,
    ) -> Effects<K, W, T> {
        let mut fx = Effects::default();
        let Some(slot) = self.slots.get_mut(key) else {
            fx.retire.push(worker);
            return fx;
        };
        slot.busy = slot.busy.saturating_sub(1);
        slot.last_used = now;
        let weight = slot.memory_mb;
        if !reusable || self.over_budget() {
            self.discharge(weight);
            fx.retire.push(worker);
            self.grant_starts(&mut fx);
            return fx;
        }
        if let Some(slot) = self.slots.get_mut(key)
            && let Some(w) = slot.waiters.pop_front()
        {
            slot.busy += 1;
            self.waiting -= 1;
            fx.grants
                .push((key.clone(), w.token, Grant::Worker(worker)));
            return fx;
        }
        // Another pool is starved by the global budget: this executor makes room for it rather
        // than sitting idle.
        if let Some(starved) = self.oldest_startable_waiter(Some(key))
            && !self.fits(self.slots.get(&starved).map_or(0, |s| s.memory_mb))
        {
            self.discharge(weight);
            fx.retire.push(worker);
            self.grant_starts(&mut fx);
            return fx;
        }
        if let Some(slot) = self.slots.get_mut(key) {
            slot.idle.push(IdleEntry { worker, since: now });
        }
        fx
    }

    /// A waiter gave up (deadline); returns its token if it was still queued.
    pub fn cancel_wait(&mut self, key: &K, matches: impl Fn(&T) -> bool) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        let pos = slot.waiters.iter().position(|w| matches(&w.token))?;
        self.waiting -= 1;
        slot.waiters.remove(pos).map(|w| w.token)
    }

    /// Counts per pool.
    pub fn counts(&self) -> Vec<(K, PoolPolicy, SlotCounts)> {
        self.slots
            .iter()
            .map(|(k, s)| {
                let c = SlotCounts {
                    idle: s.idle.len(),
                    busy: s.busy,
                    starting: s.starting,
                    waiting: s.waiters.len(),
                    memory_mb: s.memory_mb,
                };
                (k.clone(), s.policy, c)
            })
            .collect()
    }

    /// Executors alive or starting, across all pools.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Invocations waiting, across all pools.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    fn add_starting(&mut self, key: &K) {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.starting += 1;
        }
    }

    fn oldest_startable_waiter(&self, except: Option<&K>) -> Option<K> {
        self.slots
            .iter()
            .filter(|(k, s)| Some(*k) != except && s.can_grow())
            .filter_map(|(k, s)| s.waiters.front().map(|w| (w.seq, k)))
            .min_by_key(|(seq, _)| *seq)
            .map(|(_, k)| k.clone())
    }

    /// Hands free budget to the oldest waiters of pools that may grow, evicting idle executors
    /// of other pools when the budget is full.
    fn grant_starts(&mut self, fx: &mut Effects<K, W, T>) {
        while let Some(key) = self.oldest_startable_waiter(None) {
            let weight = self.slots.get(&key).map_or(0, |s| s.memory_mb);
            let Some(evicted) = self.make_room(&key, weight) else {
                return;
            };
            fx.retire.extend(evicted);
            let Some(slot) = self.slots.get_mut(&key) else {
                return;
            };
            let Some(w) = slot.waiters.pop_front() else {
                return;
            };
            slot.starting += 1;
            self.waiting -= 1;
            self.charge(weight);
            fx.grants.push((key, w.token, Grant::Start));
        }
    }
}

#[cfg(test)]
mod tests;
