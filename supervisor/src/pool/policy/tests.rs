use std::time::Duration;

use super::*;

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
        assert!(matches!(
            t.acquire(&"a", policy(4), 0, now),
            Acquire::Start { .. }
        ));
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
        assert!(matches!(
            t.acquire(&"a", policy(2), 0, now),
            Acquire::Start { .. }
        ));
    }
    assert_eq!(t.acquire(&"a", policy(2), 7, now), Acquire::Wait);
    assert_eq!(t.live(), 2);
    assert_eq!(t.waiting(), 1);
}

#[test]
fn release_hands_the_executor_to_the_first_waiter() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    assert!(matches!(
        t.acquire(&"a", policy(1), 0, now),
        Acquire::Start { .. }
    ));
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
    assert!(matches!(
        t.acquire(&"a", policy(1), 0, now),
        Acquire::Start { .. }
    ));
    assert_eq!(t.acquire(&"a", policy(1), 1, now), Acquire::Wait);
    assert_eq!(t.acquire(&"a", policy(1), 2, now), Acquire::Reject);
}

#[test]
fn faulted_executor_is_retired_and_its_slot_goes_to_a_waiter() {
    let now = Instant::now();
    let mut t = T::new(8, 8);
    assert!(matches!(
        t.acquire(&"a", policy(1), 0, now),
        Acquire::Start { .. }
    ));
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
    assert!(matches!(
        t.acquire(&"a", policy(1), 0, now),
        Acquire::Start { .. }
    ));
    assert_eq!(t.acquire(&"b", policy(1), 4, now), Acquire::Wait);
    let fx = t.start_failed(&"a");
    assert_eq!(fx.grants, vec![("b", 4, Grant::Start)]);
    assert_eq!(t.live(), 1);
}

#[test]
fn released_executor_makes_room_for_a_starved_pool() {
    let now = Instant::now();
    let mut t = T::new(1, 8);
    assert!(matches!(
        t.acquire(&"a", policy(1), 0, now),
        Acquire::Start { .. }
    ));
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
        assert!(matches!(
            t.acquire(&"a", warm, 0, now),
            Acquire::Start { .. }
        ));
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
    assert!(matches!(
        t.acquire(&"a", policy(1), 0, now),
        Acquire::Start { .. }
    ));
    assert_eq!(t.acquire(&"a", policy(1), 5, now), Acquire::Wait);
    assert_eq!(t.cancel_wait(&"a", |tok| *tok == 5), Some(5));
    assert_eq!(t.waiting(), 0);
    assert_eq!(t.cancel_wait(&"a", |tok| *tok == 5), None);
}

/// A long random walk over acquire/release/fail/reap, checking the invariants at every step.
#[test]
fn random_walk_keeps_invariants() {
    // Executors of "a", "b" and "c" count 100, 200 and 300 MiB against a 700 MiB budget; one of
    // "d" would need more than all of it.
    let keys = ["a", "b", "c", "d"];
    let weight = |k: &str| match k {
        "a" => 100,
        "b" => 200,
        "c" => 300,
        _ => 800,
    };
    let mut t = T::new(
        Budget {
            workers: 5,
            memory_mb: 700,
        },
        20,
    );
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let start = Instant::now();
    let mut busy: Vec<(&str, u32)> = Vec::new();
    let mut starting: Vec<&str> = Vec::new();
    let mut queued: Vec<(&str, u32)> = Vec::new();
    let mut handed: std::collections::HashSet<u32> = Default::default();
    let mut next_worker = 1000u32;
    let mut next_token = 0u32;
    let mut served_order: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut apply = |fx: Effects<&'static str, u32, u32>,
                     busy: &mut Vec<(&'static str, u32)>,
                     starting: &mut Vec<&'static str>,
                     queued: &mut Vec<(&'static str, u32)>,
                     handed: &mut std::collections::HashSet<u32>| {
        for w in fx.retire {
            assert!(!handed.contains(&w), "retired a worker that is busy");
        }
        for (k, tok, g) in fx.grants {
            let pos = queued
                .iter()
                .position(|(qk, qt)| *qk == k && *qt == tok)
                .expect("queued");
            let first_of_pool = queued.iter().position(|(qk, _)| *qk == k).unwrap();
            assert_eq!(pos, first_of_pool, "queue must be FIFO per pool");
            queued.remove(pos);
            served_order.entry(k).or_default().push(tok);
            match g {
                Grant::Worker(w) => {
                    assert!(handed.insert(w), "worker {w} handed out twice");
                    busy.push((k, w));
                }
                Grant::Start => starting.push(k),
            }
        }
    };
    for step in 0..20_000u64 {
        let now = start + Duration::from_millis(step * 10);
        let key = keys[(next() % 4) as usize];
        match next() % 5 {
            0 | 1 => {
                next_token += 1;
                let shape = Shape {
                    policy: policy(2),
                    memory_mb: weight(key),
                };
                match t.acquire(&key, shape, next_token, now) {
                    Acquire::Idle(w) => {
                        assert!(handed.insert(w), "worker {w} handed out twice");
                        busy.push((key, w));
                    }
                    Acquire::Start { evict } => {
                        for w in evict {
                            assert!(!handed.contains(&w));
                        }
                        starting.push(key);
                    }
                    Acquire::Wait => queued.push((key, next_token)),
                    Acquire::Reject => assert!(t.waiting() >= 20),
                    Acquire::OverBudget {
                        memory_mb,
                        budget_mb,
                    } => assert_eq!((key, memory_mb, budget_mb), ("d", 800, 700)),
                }
            }
            2 if !busy.is_empty() => {
                let (k, w) = busy.remove((next() as usize) % busy.len());
                handed.remove(&w);
                let fx = t.release(&k, w, next() % 4 != 0, now);
                apply(fx, &mut busy, &mut starting, &mut queued, &mut handed);
            }
            3 if !starting.is_empty() => {
                let k = starting.remove((next() as usize) % starting.len());
                if next() % 5 == 0 {
                    let fx = t.start_failed(&k);
                    apply(fx, &mut busy, &mut starting, &mut queued, &mut handed);
                } else {
                    t.started_busy(&k);
                    next_worker += 1;
                    handed.insert(next_worker);
                    busy.push((k, next_worker));
                }
            }
            _ => {
                for w in t.reap_idle(now) {
                    assert!(!handed.contains(&w));
                }
            }
        }
        let counts = t.counts();
        let sum: usize = counts
            .iter()
            .map(|(_, _, c)| c.idle + c.busy + c.starting)
            .sum();
        assert_eq!(sum, t.live(), "live count drifted at step {step}");
        assert!(t.live() <= 5, "budget exceeded at step {step}");
        let memory: u64 = counts
            .iter()
            .map(|(_, _, c)| (c.idle + c.busy + c.starting) as u64 * c.memory_mb)
            .sum();
        assert_eq!(memory, t.memory_mb(), "memory drifted at step {step}");
        assert!(memory <= 700, "memory budget exceeded at step {step}");
        for (k, p, c) in &counts {
            assert!(
                c.idle + c.busy + c.starting <= p.max as usize,
                "pool {k} over max"
            );
            assert!(
                c.idle == 0 || c.waiting == 0,
                "pool {k} has idle and waiters"
            );
        }
        assert_eq!(t.waiting(), queued.len());
        assert_eq!(
            busy.len(),
            counts.iter().map(|(_, _, c)| c.busy).sum::<usize>()
        );
    }
}

/// A table whose pool "a" (max 2) has one executor, busy.
fn one_busy_of_two(now: Instant) -> T {
    let mut t = T::new(8, 8);
    assert!(matches!(
        t.acquire(&"a", policy(2), 0, now),
        Acquire::Start { .. }
    ));
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

fn shape(max: u32, memory_mb: u64) -> Shape {
    Shape {
        policy: policy(max),
        memory_mb,
    }
}

fn memory_budget(memory_mb: u64) -> Budget {
    Budget {
        workers: 8,
        memory_mb,
    }
}

/// Starts one executor of `key` and returns it idle.
fn idle_one(t: &mut T, key: &'static str, mb: u64, worker: u32, now: Instant) {
    assert_eq!(
        t.acquire(&key, shape(4, mb), 0, now),
        Acquire::Start { evict: vec![] }
    );
    t.started_busy(&key);
    assert!(t.release(&key, worker, true, now).retire.is_empty());
}

#[test]
fn a_large_executor_evicts_as_many_idle_ones_as_it_needs_oldest_first() {
    let now = Instant::now();
    let mut t = T::new(memory_budget(1000), 8);
    idle_one(&mut t, "a", 300, 1, now);
    idle_one(&mut t, "b", 300, 2, now + Duration::from_secs(1));
    idle_one(&mut t, "c", 300, 3, now + Duration::from_secs(2));
    assert_eq!(t.memory_mb(), 900);
    // 600 MiB more: two of the three idle executors, the least recently used first.
    assert_eq!(
        t.acquire(&"big", shape(1, 600), 0, now + Duration::from_secs(3)),
        Acquire::Start { evict: vec![1, 2] }
    );
    assert_eq!((t.live(), t.memory_mb()), (2, 900));
}

#[test]
fn when_evicting_every_idle_executor_would_not_do_none_is_evicted_and_the_call_waits() {
    let now = Instant::now();
    let mut t = T::new(memory_budget(1000), 8);
    idle_one(&mut t, "a", 300, 1, now);
    // "b" busy with 500 MiB: even without "a", 800 MiB do not fit beside it.
    assert!(matches!(
        t.acquire(&"b", shape(1, 500), 0, now),
        Acquire::Start { .. }
    ));
    t.started_busy(&"b");
    assert_eq!(t.acquire(&"big", shape(1, 800), 7, now), Acquire::Wait);
    assert_eq!((t.live(), t.memory_mb()), (2, 800));
    // "b" comes back: it is retired to make room (the waiter is older than anything idle), then
    // "a" too, and the waiter may start.
    let fx = t.release(&"b", 2, true, now);
    assert_eq!(fx.retire, vec![2, 1]);
    assert!(matches!(fx.grants.as_slice(), [("big", 7, Grant::Start)]));
    assert_eq!((t.live(), t.memory_mb()), (1, 800));
}

#[test]
fn a_version_larger_than_the_whole_budget_is_refused_at_once() {
    let now = Instant::now();
    let mut t = T::new(memory_budget(1000), 8);
    assert_eq!(
        t.acquire(&"huge", shape(1, 2048), 0, now),
        Acquire::OverBudget {
            memory_mb: 2048,
            budget_mb: 1000
        }
    );
    assert_eq!((t.live(), t.waiting()), (0, 0));
}

#[test]
fn starts_ahead_of_use_stay_within_the_memory_budget_without_evicting() {
    let now = Instant::now();
    let mut t = T::new(memory_budget(1000), 8);
    let warm = Shape {
        policy: PoolPolicy {
            min_warm: 4,
            ..policy(4)
        },
        memory_mb: 300,
    };
    // Three of 300 MiB fit, the fourth does not.
    assert!(t.reserve_start(&"a", warm, now));
    let reserved = t.reserve_min_warm();
    assert_eq!(reserved, vec!["a", "a"]);
    assert!(!t.reserve_start(&"a", warm, now));
    assert!(!t.reserve_replacement(&"a"));
    assert_eq!((t.live(), t.memory_mb()), (3, 900));
}

#[test]
fn a_smaller_memory_budget_on_reload_retires_executors_as_they_come_back() {
    let now = Instant::now();
    let mut t = T::new(memory_budget(1000), 8);
    for _ in 0..2 {
        assert!(matches!(
            t.acquire(&"a", shape(4, 400), 0, now),
            Acquire::Start { .. }
        ));
        t.started_busy(&"a");
    }
    t.set_limits(memory_budget(500), 8);
    assert_eq!(t.release(&"a", 1, true, now).retire, vec![1]);
    assert!(t.release(&"a", 2, true, now).retire.is_empty());
    assert_eq!((t.live(), t.memory_mb()), (1, 400));
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
    assert!(matches!(
        t.acquire(&"waited", policy(1), 0, now),
        Acquire::Start { .. }
    ));
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
