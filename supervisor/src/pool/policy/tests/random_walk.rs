//! A long random walk over the table's operations, its invariants checked at every step.

use super::*;

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
