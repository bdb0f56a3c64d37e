//! An executor on loan for one request, and what happens when it comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::warm::Started;
use super::{Inner, PoolKey, Pools, replace};
use crate::worker::Worker;

/// An executor on loan for one request. Dropping it returns the executor (or retires it if it
/// is unhealthy or spent).
pub struct Lease {
    pub(super) key: PoolKey,
    pub(super) max_requests: u64,
    pub(super) worker: Option<Worker>,
    pub(super) pools: Arc<Inner>,
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
