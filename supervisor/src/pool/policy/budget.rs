//! The global budget of the pools: how many executors may be alive at once, and how much memory
//! their limits may add up to. An executor counts against the memory budget with its version's
//! memory limit (the manifest's `limits.memory_mb`, else its runtime's default), which its
//! cgroup enforces: the sum of the limits is what the executors can hold at worst, so a host
//! whose budget fits its memory cannot be driven out of memory by executors within their limits.

use std::hash::Hash;
use std::time::Instant;

use super::Table;
use crate::registry::manifest::PoolPolicy;

/// The global limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Executors alive or starting at once (`pools.max_workers`).
    pub workers: usize,
    /// The sum of their memory limits, in MiB (`pools.max_memory_mb`).
    pub memory_mb: u64,
}

/// A budget of executors only (memory unbounded), as tests and older callers count.
impl From<usize> for Budget {
    fn from(workers: usize) -> Self {
        Budget {
            workers,
            memory_mb: u64::MAX,
        }
    }
}

/// What the table needs to know of a pool: its settings, and the memory limit each of its
/// executors counts against the budget (0 for an executor without one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// The manifest's `[pool]`.
    pub policy: PoolPolicy,
    /// One executor's memory limit, in MiB.
    pub memory_mb: u64,
}

/// A pool whose executors count nothing against the memory budget.
impl From<PoolPolicy> for Shape {
    fn from(policy: PoolPolicy) -> Self {
        Shape {
            policy,
            memory_mb: 0,
        }
    }
}

impl<K: Eq + Hash + Clone, W, T> Table<K, W, T> {
    /// The budget in force.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The memory limits of the executors alive or starting, summed, in MiB.
    pub fn memory_mb(&self) -> u64 {
        self.memory_mb
    }

    /// Whether one more executor of `weight` MiB fits the budget as it is.
    pub(super) fn fits(&self, weight: u64) -> bool {
        self.live < self.budget.workers
            && self.memory_mb.saturating_add(weight) <= self.budget.memory_mb
    }

    /// Whether the executors alive exceed the budget (it shrank on a reload).
    pub(super) fn over_budget(&self) -> bool {
        self.live > self.budget.workers || self.memory_mb > self.budget.memory_mb
    }

    pub(super) fn charge(&mut self, weight: u64) {
        self.live += 1;
        self.memory_mb = self.memory_mb.saturating_add(weight);
    }

    pub(super) fn discharge(&mut self, weight: u64) {
        self.live = self.live.saturating_sub(1);
        self.memory_mb = self.memory_mb.saturating_sub(weight);
    }

    /// Makes room for one executor of `weight` MiB of pool `except`: `Some` with the idle
    /// executors of other pools removed for it (least recently used first, none when it fits
    /// already), or `None`, removing nothing, when even all of them would not make room.
    pub(super) fn make_room(&mut self, except: &K, weight: u64) -> Option<Vec<W>> {
        if self.fits(weight) {
            return Some(Vec::new());
        }
        let mut idle: Vec<(Instant, &K, u64)> = self
            .slots
            .iter()
            .filter(|(k, _)| *k != except)
            .flat_map(|(k, s)| s.idle.iter().map(move |e| (e.since, k, s.memory_mb)))
            .collect();
        idle.sort_by_key(|(since, _, _)| *since);
        let (mut live, mut memory) = (self.live, self.memory_mb);
        let fits = |live: usize, memory: u64| {
            live < self.budget.workers && memory.saturating_add(weight) <= self.budget.memory_mb
        };
        let mut victims: Vec<K> = Vec::new();
        for (_, key, mb) in idle {
            if fits(live, memory) {
                break;
            }
            live -= 1;
            memory = memory.saturating_sub(mb);
            victims.push(key.clone());
        }
        if !fits(live, memory) {
            return None;
        }
        // Each pool's idle list is oldest first, and the victims were taken oldest first.
        let mut evicted = Vec::with_capacity(victims.len());
        for key in victims {
            if let Some(slot) = self.slots.get_mut(&key) {
                let weight = slot.memory_mb;
                evicted.push(slot.idle.remove(0).worker);
                self.discharge(weight);
            }
        }
        Some(evicted)
    }
}
