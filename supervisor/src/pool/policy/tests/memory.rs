//! The executors' memory budget: eviction of idle executors, refusals, starts ahead of use
//! and a smaller budget on reload.

use super::*;

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
