//! The pool table's policy: handing out, starting, queueing, retiring and forgetting.

use std::time::Duration;

use super::*;

mod memory;
mod random_walk;

type T = Table<&'static str, u32, u32>;

fn policy(max: u32) -> PoolPolicy {
    PoolPolicy {
        min_warm: 0,
        max,
        idle_ttl_s: 10,
        max_requests: 100,
        max_concurrency: None,
    }
}

/// `key`'s pool is told to start an executor for `waiter`.
#[track_caller]
fn assert_starts(t: &mut T, key: &&'static str, policy: PoolPolicy, waiter: u32, now: Instant) {
    assert!(matches!(
        t.acquire(key, policy, waiter, now),
        Acquire::Start { .. }
    ));
}

fn start_and_return(t: &mut T, key: &'static str, worker: u32, now: Instant) {
    assert_eq!(
        t.acquire(&key, policy(4), 0, now),
        Acquire::Start { evict: vec![] }
    );
    t.started_busy(&key);
    let fx = t.release(&key, worker, true, now);
    assert!(fx.retire.is_empty() && fx.grants.is_empty());
}

#[test]
fn idle_executors_are_handed_out_most_recently_used_first() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    for _ in [1, 2] {
        assert_starts(&mut t, &"a", policy(4), 0, now);
        t.started_busy(&"a");
    }
    t.release(&"a", 1, true, now);
    t.release(&"a", 2, true, now + Duration::from_millis(1));
    assert_eq!(t.acquire(&"a", policy(4), 0, now), Acquire::Idle(2));
    assert_eq!(t.acquire(&"a", policy(4), 0, now), Acquire::Idle(1));
}

#[test]
fn a_new_executor_starts_only_under_the_pool_max() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    for _ in 0..2 {
        assert_starts(&mut t, &"a", policy(2), 0, now);
    }
    assert_eq!(t.acquire(&"a", policy(2), 7, now), Acquire::Wait);
    assert_eq!(t.live(), 2);
    assert_eq!(t.waiting(), 1);
}

#[test]
fn release_hands_the_executor_to_the_first_waiter() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    assert_starts(&mut t, &"a", policy(1), 0, now);
    t.started_busy(&"a");
    assert_eq!(t.acquire(&"a", policy(1), 10, now), Acquire::Wait);
    assert_eq!(t.acquire(&"a", policy(1), 11, now), Acquire::Wait);
    let fx = t.release(&"a", 5, true, now);
    assert_eq!(fx.grants, vec![("a", 10, Grant::Worker(5))]);
    let fx = t.release(&"a", 5, true, now);
    assert_eq!(fx.grants, vec![("a", 11, Grant::Worker(5))]);
}

#[test]
fn full_budget_evicts_the_least_recently_used_idle_executor_of_another_pool() {
    let now = Instant::now();
    let mut t = T::new(2, 8);
    start_and_return(&mut t, "old", 1, now);
    start_and_return(&mut t, "new", 2, now + Duration::from_secs(1));
    let got = t.acquire(&"c", policy(4), 0, now + Duration::from_secs(2));
    assert_eq!(got, Acquire::Start { evict: vec![1] });
    assert_eq!(t.live(), 2);
}

#[test]
fn queue_is_bounded() {
    let now = Instant::now();
    let mut t = T::new(1, 1);
    assert_starts(&mut t, &"a", policy(1), 0, now);
    assert_eq!(t.acquire(&"a", policy(1), 1, now), Acquire::Wait);
    assert_eq!(t.acquire(&"a", policy(1), 2, now), Acquire::Reject);
}

#[test]
fn faulted_executor_is_retired_and_its_slot_goes_to_a_waiter() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    assert_starts(&mut t, &"a", policy(1), 0, now);
    t.started_busy(&"a");
    assert_eq!(t.acquire(&"a", policy(1), 9, now), Acquire::Wait);
    let fx = t.release(&"a", 3, false, now);
    assert_eq!(fx.retire, vec![3]);
    assert_eq!(fx.grants, vec![("a", 9, Grant::Start)]);
    assert_eq!(t.live(), 1);
}

#[test]
fn failed_start_frees_the_budget_for_another_pool() {
    let now = Instant::now();
    let mut t = T::new(1, 8);
    assert_starts(&mut t, &"a", policy(1), 0, now);
    assert_eq!(t.acquire(&"b", policy(1), 4, now), Acquire::Wait);
    let fx = t.start_failed(&"a");
    assert_eq!(fx.grants, vec![("b", 4, Grant::Start)]);
    assert_eq!(t.live(), 1);
}

#[test]
fn released_executor_makes_room_for_a_starved_pool() {
    let now = Instant::now();
    let mut t = T::new(1, 8);
    assert_starts(&mut t, &"a", policy(1), 0, now);
    t.started_busy(&"a");
    assert_eq!(t.acquire(&"b", policy(1), 4, now), Acquire::Wait);
    let fx = t.release(&"a", 1, true, now);
    assert_eq!(fx.retire, vec![1]);
    assert_eq!(fx.grants, vec![("b", 4, Grant::Start)]);
}

#[test]
fn idle_ttl_retires_oldest_but_keeps_min_warm() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    let warm = PoolPolicy {
        min_warm: 1,
        max: 4,
        idle_ttl_s: 10,
        max_requests: 100,
        max_concurrency: None,
    };
    for _ in 0..3 {
        assert_starts(&mut t, &"a", warm, 0, now);
        t.started_busy(&"a");
    }
    for w in [1, 2, 3] {
        t.release(&"a", w, true, now + Duration::from_secs(u64::from(w)));
    }
    assert!(t.reap_idle(now + Duration::from_secs(5)).is_empty());
    let retired = t.reap_idle(now + Duration::from_secs(60));
    assert_eq!(retired, vec![1, 2]);
    assert_eq!(t.live(), 1);
}

#[test]
fn min_warm_reserves_starts() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    let warm = PoolPolicy {
        min_warm: 2,
        max: 4,
        idle_ttl_s: 10,
        max_requests: 100,
        max_concurrency: None,
    };
    assert!(t.reserve_start(&"a", warm, now));
    t.started_idle(&"a", 1, now);
    assert_eq!(t.reserve_min_warm(), vec!["a"]);
    assert!(t.reserve_min_warm().is_empty());
}

#[test]
fn cancelled_waiter_leaves_the_queue() {
    let now = Instant::now();
    let mut t = T::new(1, 8);
    assert_starts(&mut t, &"a", policy(1), 0, now);
    assert_eq!(t.acquire(&"a", policy(1), 5, now), Acquire::Wait);
    assert_eq!(t.cancel_wait(&"a", |tok| *tok == 5), Some(5));
    assert_eq!(t.waiting(), 0);
    assert_eq!(t.cancel_wait(&"a", |tok| *tok == 5), None);
}

/// A table whose pool "a" (max 2) has one executor, busy.
fn one_busy_of_two(now: Instant) -> T {
    let mut t = T::new(8, 8);
    assert_starts(&mut t, &"a", policy(2), 0, now);
    t.started_busy(&"a");
    t
}

#[test]
fn a_replacement_is_reserved_only_with_room_and_retires_the_idle_one_it_replaces() {
    let now = Instant::now();
    // Worker 1 is busy in a pool of max 2: room for its replacement, not for a third.
    let mut t = one_busy_of_two(now);
    assert!(t.reserve_replacement(&"a"));
    assert!(
        !t.reserve_replacement(&"a"),
        "max 2 is one busy and one starting"
    );
    assert_eq!(t.live(), 2);
    // Worker 1 comes back idle before its replacement (worker 2) is ready; when 2 is, 1 goes.
    let fx = t.release(&"a", 1, true, now);
    assert!(fx.retire.is_empty());
    let fx = t.started_replacement(&"a", 2, now, |w| *w == 1);
    assert_eq!(fx.retire, vec![1]);
    assert_eq!(t.live(), 1);
    assert_eq!(t.acquire(&"a", policy(2), 0, now), Acquire::Idle(2));
    // No pool, no reservation.
    assert!(!t.reserve_replacement(&"b"));
}

#[test]
fn a_replacement_leaves_a_busy_executor_to_finish() {
    let now = Instant::now();
    let mut t = one_busy_of_two(now);
    assert!(t.reserve_replacement(&"a"));
    let fx = t.started_replacement(&"a", 2, now, |w| *w == 1);
    assert!(fx.retire.is_empty(), "worker 1 is still serving");
    assert_eq!(t.live(), 2);
    let counts: Vec<(usize, usize)> = t
        .counts()
        .iter()
        .map(|(_, _, c)| (c.idle, c.busy))
        .collect();
    assert_eq!(counts, vec![(1, 1)]);
}

#[test]
fn pools_that_hold_nothing_are_forgotten_after_their_idle_ttl() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    start_and_return(&mut t, "used", 1, now);
    // A min_warm pool and one with a waiter are never forgotten for being idle.
    let warm = PoolPolicy {
        min_warm: 1,
        ..policy(1)
    };
    assert!(t.reserve_start(&"warm", warm, now));
    t.start_failed(&"warm");
    assert_starts(&mut t, &"waited", policy(1), 0, now);
    t.started_busy(&"waited");
    assert_eq!(t.acquire(&"waited", policy(1), 9, now), Acquire::Wait);

    // The idle executor retires at its TTL (10 s); its empty pool goes at the next look.
    let later = now + Duration::from_secs(10);
    assert_eq!(t.reap_idle(later), vec![1]);
    let mut forgotten = t.forget_unused(later);
    forgotten.sort_unstable();
    assert_eq!(forgotten, vec!["used"]);
    let mut left: Vec<_> = t.counts().into_iter().map(|(k, _, _)| k).collect();
    left.sort_unstable();
    assert_eq!(left, vec!["waited", "warm"]);
    // Used again, it is made anew.
    start_and_return(&mut t, "used", 2, later);
    assert_eq!(t.live(), 2);
}
