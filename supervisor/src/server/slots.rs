//! Who gets one of the server's connection slots when a local user opens many.
//!
//! Every caller who can open the socket can also open it a thousand times, send headers a
//! byte at a time, or hold keep-alive connections it never uses. A plain global cap lets that
//! one caller lock out everybody (the health checks included), so admission is per uid:
//!
//! - no uid holds more than `per_uid` slots, unless it is privileged (root, the daemon's uid,
//!   the `[access]` admins): the operator who comes to look at a flooded daemon gets in;
//! - when the slots run out, a connection with no request in flight (an idle keep-alive, or one
//!   still dribbling its headers) is closed to make room, preferring the uid that holds the
//!   most slots and, within it, the one idle longest; a request being served is never cut;
//! - privileged callers may go `reserve` slots above the cap when nothing idle is left, so the
//!   file descriptors stay bounded even then.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

/// The slot limits.
#[derive(Debug, Clone, Copy)]
pub struct SlotLimits {
    /// Slots everybody shares.
    pub max: usize,
    /// Most slots one unprivileged uid may hold.
    pub per_uid: usize,
    /// Extra slots only privileged callers may use once the shared ones are taken.
    pub reserve: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The uid already holds `per_uid` busy connections.
    PerUid,
    /// Every slot holds a request in flight.
    Full,
}

/// The table of open connections.
#[derive(Debug)]
pub struct Slots {
    limits: SlotLimits,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_uid: HashMap<u32, usize>,
}

/// One open connection, shared by the table and the task serving it.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    uid: u32,
    active: AtomicUsize,
    idle_since: Mutex<Instant>,
    evicting: AtomicBool,
    evict: Notify,
}

/// A connection's hold on its slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    conn: Arc<Conn>,
}

/// Held while one request (and its response body) is in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Conn>);

impl Slots {
    /// An empty table.
    pub fn new(limits: SlotLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            table: Mutex::new(Table::default()),
        })
    }

    /// Admits a new connection of `uid`, closing an idle one when that makes room.
    pub fn admit(self: &Arc<Self>, uid: u32, privileged: bool) -> Result<Slot, Refusal> {
        let mut t = self.lock();
        let mine = t.per_uid.get(&uid).copied().unwrap_or(0);
        if !privileged && mine >= self.limits.per_uid && !t.evict_idle(Some(uid)) {
            return Err(Refusal::PerUid);
        }
        let open = t.conns.len();
        if open >= self.limits.max && !t.evict_idle(None) && !privileged {
            return Err(Refusal::Full);
        }
        // Evicted connections hold their slot until their task notices: bound the overlap.
        if open >= self.limits.max + self.limits.reserve {
            return Err(Refusal::Full);
        }
        t.next_id += 1;
        let conn = Arc::new(Conn {
            id: t.next_id,
            uid,
            active: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        t.conns.insert(conn.id, Arc::clone(&conn));
        *t.per_uid.entry(uid).or_insert(0) += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            conn,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Table {
    /// Asks one idle connection (of `uid`, or of anyone) to close; whether one was found.
    fn evict_idle(&self, uid: Option<u32>) -> bool {
        let victim = self
            .conns
            .values()
            .filter(|c| uid.is_none_or(|u| c.uid == u))
            .filter(|c| {
                c.active.load(Ordering::Acquire) == 0 && !c.evicting.load(Ordering::Acquire)
            })
            .max_by_key(|c| {
                let held = self.per_uid.get(&c.uid).copied().unwrap_or(0);
                (held, std::cmp::Reverse(*lock_instant(&c.idle_since)))
            });
        let Some(victim) = victim else {
            return false;
        };
        victim.evicting.store(true, Ordering::Release);
        victim.evict.notify_one();
        true
    }
}

impl Slot {
    /// Marks a request in flight until the returned guard is dropped.
    #[cfg(test)]
    pub fn begin(&self) -> InFlight {
        self.conn.begin()
    }

    /// The connection, for request guards made inside the service.
    pub fn conn(&self) -> Arc<Conn> {
        Arc::clone(&self.conn)
    }

    /// Resolves when the table asks this connection to make room.
    pub async fn eviction_requested(&self) {
        self.conn.evict.notified().await;
    }

    /// Whether the connection may be closed now: nothing in flight. Called by the task that
    /// polls the connection, so no request can start between this check and the close. When a
    /// request did start meanwhile, the eviction is withdrawn.
    pub fn confirm_eviction(&self) -> bool {
        let idle = self.conn.active.load(Ordering::Acquire) == 0;
        if !idle {
            self.conn.evicting.store(false, Ordering::Release);
        }
        idle
    }
}

impl Conn {
    /// Marks a request in flight until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *lock_instant(&self.0.idle_since) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.slots.lock();
        t.conns.remove(&self.conn.id);
        if let Some(n) = t.per_uid.get_mut(&self.conn.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_uid.remove(&self.conn.uid);
            }
        }
    }
}

fn lock_instant(m: &Mutex<Instant>) -> MutexGuard<'_, Instant> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SlotLimits = SlotLimits {
        max: 4,
        per_uid: 2,
        reserve: 1,
    };

    fn evicted(s: &Slot) -> bool {
        s.conn.evicting.load(Ordering::Acquire)
    }

    #[test]
    fn one_uid_cannot_hold_more_than_its_share_while_busy() {
        let slots = Slots::new(LIMITS);
        let a = slots.admit(1000, false).unwrap();
        let b = slots.admit(1000, false).unwrap();
        let (_ga, _gb) = (a.begin(), b.begin());
        assert_eq!(slots.admit(1000, false).unwrap_err(), Refusal::PerUid);
        assert!(
            slots.admit(1001, false).is_ok(),
            "another uid still gets in"
        );
        assert!(
            slots.admit(0, true).is_ok(),
            "a privileged uid has no share"
        );
    }

    #[test]
    fn a_uid_over_its_share_closes_its_own_idle_connection() {
        let slots = Slots::new(LIMITS);
        let a = slots.admit(1000, false).unwrap();
        let b = slots.admit(1000, false).unwrap();
        let _busy = b.begin();
        let c = slots.admit(1000, false).unwrap();
        assert!(evicted(&a), "the idle one makes room");
        assert!(!evicted(&b) && !evicted(&c));
        assert!(a.confirm_eviction());
    }

    #[test]
    fn a_full_table_closes_the_biggest_holders_idle_connection_first() {
        let slots = Slots::new(SlotLimits {
            max: 3,
            per_uid: 3,
            reserve: 1,
        });
        let small = slots.admit(1, false).unwrap();
        let big1 = slots.admit(2, false).unwrap();
        let big2 = slots.admit(2, false).unwrap();
        let _busy = big2.begin();
        let _new = slots.admit(3, false).unwrap();
        assert!(evicted(&big1), "uid 2 holds the most slots");
        assert!(!evicted(&small) && !evicted(&big2));
    }

    #[test]
    fn busy_connections_are_never_evicted_and_privileged_callers_use_the_reserve() {
        let slots = Slots::new(SlotLimits {
            max: 2,
            per_uid: 2,
            reserve: 1,
        });
        let a = slots.admit(5, false).unwrap();
        let b = slots.admit(6, false).unwrap();
        let (_ga, _gb) = (a.begin(), b.begin());
        assert_eq!(slots.admit(7, false).unwrap_err(), Refusal::Full);
        let root = slots.admit(0, true).expect("root uses the reserve");
        assert_eq!(
            slots.admit(0, true).unwrap_err(),
            Refusal::Full,
            "the reserve is bounded too"
        );
        assert!(!evicted(&a) && !evicted(&b));
        drop(root);
        assert_eq!(slots.open(), 2);
    }

    #[test]
    fn a_request_that_starts_before_the_close_withdraws_the_eviction() {
        let slots = Slots::new(LIMITS);
        let a = slots.admit(1000, false).unwrap();
        let _b = slots.admit(1000, false).unwrap();
        let _c = slots.admit(1000, false);
        let victim = if evicted(&a) { &a } else { &_b };
        let _g = victim.begin();
        assert!(!victim.confirm_eviction());
        assert!(!evicted(victim));
    }

    #[test]
    fn dropping_slots_frees_them() {
        let slots = Slots::new(LIMITS);
        let a = slots.admit(1000, false).unwrap();
        let b = slots.admit(1000, false).unwrap();
        drop((a, b));
        assert_eq!(slots.open(), 0);
        let (c, d) = (slots.admit(1000, false), slots.admit(1000, false));
        assert!(c.is_ok() && d.is_ok(), "freed slots are the uid's again");
        assert_eq!(slots.open(), 2);
    }
}
