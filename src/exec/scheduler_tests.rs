//! Scheduler tests with an in-process executor: order, limits, failure policies, signals.
//! Completion is driven by the executor itself (no sleeps), so the tests are deterministic.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::*;

#[derive(Default)]
struct Log {
    events: Vec<(usize, bool)>, // (node, started?) in order
    running: usize,
    max_running: usize,
    pool_running: BTreeMap<String, usize>,
    pool_max: BTreeMap<String, usize>,
}

struct Fake {
    log: Arc<Mutex<Log>>,
    fail: HashSet<usize>,
    pools: Vec<Option<String>>,
    /// Nodes that wait for a stop request instead of finishing.
    hang: HashSet<usize>,
}

impl Executor for Fake {
    fn run(
        &self,
        node: usize,
        mut stop: watch::Receiver<StopRequest>,
    ) -> Pin<Box<dyn Future<Output = NodeResult> + Send>> {
        let log = Arc::clone(&self.log);
        let fail = self.fail.contains(&node);
        let hang = self.hang.contains(&node);
        let pool = self.pools[node].clone();
        Box::pin(async move {
            {
                let mut l = log.lock().unwrap();
                l.events.push((node, true));
                l.running += 1;
                l.max_running = l.max_running.max(l.running);
                if let Some(p) = &pool {
                    let c = l.pool_running.entry(p.clone()).or_default();
                    *c += 1;
                    let c = *c;
                    let m = l.pool_max.entry(p.clone()).or_default();
                    *m = (*m).max(c);
                }
            }
            let status = if hang {
                while *stop.borrow() == StopRequest::None {
                    if stop.changed().await.is_err() {
                        break;
                    }
                }
                Status::Interrupted
            } else {
                // Let other ready tasks start so overlap is observable.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                if fail {
                    Status::Failed
                } else {
                    Status::Succeeded
                }
            };
            let mut l = log.lock().unwrap();
            l.events.push((node, false));
            l.running -= 1;
            if let Some(p) = &pool {
                *l.pool_running.get_mut(p).unwrap() -= 1;
            }
            NodeResult::new(status)
        })
    }
}

fn schedule(n: usize, edges: &[(usize, usize)], pools: &[Option<&str>]) -> Schedule {
    let mut deps = vec![Vec::new(); n];
    for &(a, b) in edges {
        deps[b].push(a);
    }
    Schedule {
        nodes: (0..n)
            .map(|i| SchedNode {
                id: format!("n{i}"),
                deployment: true,
                pool: pools.get(i).copied().flatten().map(str::to_string),
                weight: 1.0,
            })
            .collect(),
        deps,
        order_only: Vec::new(),
    }
}

fn opts(jobs: usize, fail_fast: bool) -> Options {
    Options {
        jobs,
        pools: BTreeMap::new(),
        fail_fast,
        deadline: None,
        grace: Duration::from_millis(10),
        order: Order::CriticalPath,
    }
}

struct Ran {
    outcome: Outcome,
    log: Log,
}

fn run_fake(s: &Schedule, o: &Options, fail: &[usize], hang: &[usize], signals: &[Sig]) -> Ran {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let fake = Arc::new(Fake {
        log: Arc::clone(&log),
        fail: fail.iter().copied().collect(),
        hang: hang.iter().copied().collect(),
        pools: s.nodes.iter().map(|n| n.pool.clone()).collect(),
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (sig_tx, sig_rx) = mpsc::unbounded_channel();
    for s in signals {
        sig_tx.send(*s).unwrap();
    }
    let outcome = rt.block_on(async {
        // Keep the sender alive so the loop does not see a closed channel as a signal.
        let _keep = sig_tx;
        let out = run(s, o, fake, &tx, sig_rx).await;
        while rx.try_recv().is_ok() {}
        out
    });
    let log = std::mem::take(&mut *log.lock().unwrap());
    Ran { outcome, log }
}

fn statuses(r: &Ran) -> Vec<Status> {
    r.outcome.results.iter().map(|r| r.status).collect()
}

#[test]
fn dependents_start_after_dependencies_end() {
    // 0 → 1 → 3, 0 → 2 → 3
    let s = schedule(4, &[(0, 1), (0, 2), (1, 3), (2, 3)], &[]);
    let r = run_fake(&s, &opts(8, true), &[], &[], &[]);
    assert!(statuses(&r).iter().all(|s| *s == Status::Succeeded));
    let pos = |node, start| {
        r.log
            .events
            .iter()
            .position(|e| *e == (node, start))
            .unwrap()
    };
    assert!(pos(0, false) < pos(1, true));
    assert!(pos(1, false) < pos(3, true) && pos(2, false) < pos(3, true));
    // 1 and 2 are independent: both start before either ends.
    assert!(pos(1, true) < pos(2, false) && pos(2, true) < pos(1, false));
}

#[test]
fn one_job_never_overlaps() {
    let s = schedule(6, &[], &[]);
    let r = run_fake(&s, &opts(1, true), &[], &[], &[]);
    assert_eq!(r.log.max_running, 1);
    let s = schedule(6, &[], &[]);
    let r = run_fake(&s, &opts(3, true), &[], &[], &[]);
    assert_eq!(r.log.max_running, 3);
}

#[test]
fn pools_limit_their_members_only() {
    let pools = [Some("api"), Some("api"), Some("api"), None, None];
    let s = schedule(5, &[], &pools);
    let mut o = opts(8, true);
    o.pools.insert("api".into(), 1);
    let r = run_fake(&s, &o, &[], &[], &[]);
    assert_eq!(r.log.pool_max["api"], 1);
    assert!(r.log.max_running >= 2, "non-pool nodes still run alongside");
}

#[test]
fn keep_going_skips_only_dependents_of_a_failure() {
    // 0 fails; 1 depends on 0; 2 depends on 1; 3 is independent.
    let s = schedule(4, &[(0, 1), (1, 2)], &[]);
    let r = run_fake(&s, &opts(1, false), &[0], &[], &[]);
    assert_eq!(
        statuses(&r),
        vec![
            Status::Failed,
            Status::Skipped,
            Status::Skipped,
            Status::Succeeded
        ]
    );
    assert_eq!(
        r.outcome.results[2].reason.as_deref(),
        Some("`n0` did not succeed")
    );
}

#[test]
fn fail_fast_starts_nothing_new() {
    // With one job and 0 first in line (longest path), 3 never starts.
    let s = schedule(4, &[(0, 1), (1, 2)], &[]);
    let r = run_fake(&s, &opts(1, true), &[0], &[], &[]);
    assert_eq!(
        statuses(&r),
        vec![
            Status::Failed,
            Status::Skipped,
            Status::Skipped,
            Status::NotRun
        ]
    );
    assert_eq!(r.outcome.cancel, Some(CancelReason::Failure));
}

#[test]
fn longest_remaining_path_starts_first() {
    // Ready at once: 0 (a chain of 3 behind it) and 4, 5 (alone). One job: 0 goes first.
    let s = schedule(6, &[(0, 1), (1, 2), (2, 3)], &[]);
    let r = run_fake(&s, &opts(1, true), &[], &[], &[]);
    assert_eq!(r.log.events[0], (0, true));
    let mut o = opts(1, true);
    o.order = Order::Fifo;
    let r = run_fake(&s, &o, &[], &[], &[]);
    assert_eq!(
        r.log.events[0],
        (0, true),
        "FIFO keeps readiness order (0 was first)"
    );
}

#[test]
fn a_signal_stops_scheduling_and_reaches_running_nodes() {
    // Node 0 hangs until stopped; 1 depends on it; 2 is queued behind the single job.
    let s = schedule(3, &[(0, 1)], &[]);
    let r = run_fake(&s, &opts(1, true), &[], &[0], &[Sig::Int]);
    assert_eq!(
        statuses(&r),
        vec![Status::Interrupted, Status::Skipped, Status::NotRun]
    );
    assert_eq!(r.outcome.cancel, Some(CancelReason::Interrupt));
}

#[test]
fn environment_nodes_complete_without_work() {
    let mut s = schedule(3, &[(0, 1), (1, 2)], &[]);
    s.nodes[1].deployment = false;
    let r = run_fake(&s, &opts(2, true), &[], &[], &[]);
    assert!(statuses(&r).iter().all(|s| *s == Status::Succeeded));
    assert!(
        !r.log.events.iter().any(|(n, _)| *n == 1),
        "no task for an environment node"
    );
}

fn dag_strategy() -> impl Strategy<Value = (usize, Vec<(usize, usize)>, Vec<usize>, usize)> {
    (2usize..24).prop_flat_map(|n| {
        let edges = proptest::collection::vec((0..n, 0..n), 0..n * 2)
            .prop_map(|es| es.into_iter().filter(|(a, b)| a < b).collect::<Vec<_>>());
        let fails = proptest::collection::vec(0..n, 0..3);
        (Just(n), edges, fails, 1usize..5)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn invariants_hold_on_random_dags((n, edges, fails, jobs) in dag_strategy()) {
        let s = schedule(n, &edges, &[]);
        let r = run_fake(&s, &opts(jobs, false), &fails, &[], &[]);
        prop_assert!(r.log.max_running <= jobs);
        // No node starts before all of its dependencies ended.
        for (i, deps) in s.deps.iter().enumerate() {
            if let Some(start) = r.log.events.iter().position(|e| *e == (i, true)) {
                for d in deps {
                    let end = r.log.events.iter().position(|e| *e == (*d, false));
                    prop_assert!(end.is_some_and(|e| e < start));
                }
            }
        }
        // Exactly the transitive dependents of failures are skipped.
        let failed: HashSet<usize> = fails.iter().copied().collect();
        let mut downstream = HashSet::new();
        let dependents = s.dependents();
        let mut stack: Vec<usize> = failed.iter().flat_map(|f| dependents[*f].clone()).collect();
        while let Some(i) = stack.pop() {
            if downstream.insert(i) {
                stack.extend(dependents[i].iter().copied());
            }
        }
        for (i, res) in r.outcome.results.iter().enumerate() {
            let want = if downstream.contains(&i) {
                Status::Skipped
            } else if failed.contains(&i) {
                Status::Failed
            } else {
                Status::Succeeded
            };
            prop_assert_eq!(res.status, want, "node {}", i);
        }
    }
}

/// Panics when it runs node 0; every other node succeeds at once.
struct Panicky;

impl Executor for Panicky {
    fn run(
        &self,
        node: usize,
        _stop: watch::Receiver<StopRequest>,
    ) -> Pin<Box<dyn Future<Output = NodeResult> + Send>> {
        Box::pin(async move {
            assert_ne!(node, 0, "test panic in a node task");
            NodeResult::new(Status::Succeeded)
        })
    }
}

#[test]
fn a_panicking_node_fails_and_the_run_ends_instead_of_spinning() {
    // 0 → 1, and 2 alone: the panic fails 0, skips 1, and 2 still runs (keep-going).
    let s = schedule(3, &[(0, 1)], &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, _rx) = mpsc::unbounded_channel();
    let (_sig_tx, sig_rx) = mpsc::unbounded_channel();
    let out = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            run(&s, &opts(2, false), Arc::new(Panicky), &tx, sig_rx),
        )
        .await
        .expect("the scheduler must end after a panic")
    });
    let st: Vec<Status> = out.results.iter().map(|r| r.status).collect();
    assert_eq!(st, [Status::Failed, Status::Skipped, Status::Succeeded]);
    assert!(out.results[0]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("internal error")));
}

#[test]
fn order_only_edges_wait_for_the_end_whatever_the_result() {
    // 0 ⇢ 1 ⇢ 2 (order only), 0 → 3 (needs success), 1 ⇢ 4 → 5: with fail-fast off, a failed
    // 0 still lets 1, 2 run; 3 is skipped; 5 needs 4, which runs after 1.
    let mut s = schedule(6, &[(0, 1), (1, 2), (0, 3), (1, 4), (4, 5)], &[]);
    s.order_only = vec![vec![], vec![0], vec![1], vec![], vec![1], vec![]];
    let r = run_fake(&s, &opts(8, false), &[0], &[], &[]);
    assert_eq!(
        statuses(&r),
        vec![
            Status::Failed,
            Status::Succeeded,
            Status::Succeeded,
            Status::Skipped,
            Status::Succeeded,
            Status::Succeeded
        ]
    );
    let end0 = r.log.events.iter().position(|e| *e == (0, false)).unwrap();
    let start1 = r.log.events.iter().position(|e| *e == (1, true)).unwrap();
    assert!(
        end0 < start1,
        "an order edge still waits: {:?}",
        r.log.events
    );
}

#[test]
fn a_node_skipped_for_a_failure_releases_its_order_only_dependents() {
    // 0 → 1 ⇢ 2: 0 fails, 1 (needs 0) is skipped, 2 only waited for 1 to be over.
    let mut s = schedule(3, &[(0, 1), (1, 2)], &[]);
    s.order_only = vec![vec![], vec![], vec![1]];
    let r = run_fake(&s, &opts(8, false), &[0], &[], &[]);
    assert_eq!(
        statuses(&r),
        vec![Status::Failed, Status::Skipped, Status::Succeeded]
    );
}
