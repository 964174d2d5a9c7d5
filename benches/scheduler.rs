//! Scheduling overhead per node: the scheduler loop on generated DAGs with an executor that
//! does no work, so what is measured is the ready queue, priorities, slots and bookkeeping.
//! Compare with ninja's per-edge overhead via `bench/compare_ninja.sh` (real processes).
//!
//! Sizes: 1,000 nodes at `-j2`, 10,000 at `-j8`, and 100,000 at `-j8` (fewer samples; in
//! memory only, so it always runs — the plan bench gates its 100,000, which are files).
//!
//! Run: `cargo bench --bench scheduler`.

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bitops::exec::events::{NodeResult, Status};
use bitops::exec::process::StopRequest;
use bitops::exec::scheduler::{self, Executor, Options, Order, SchedNode, Schedule};
use criterion::{criterion_group, criterion_main, Criterion};
use tokio::sync::{mpsc, watch};

struct Noop;

impl Executor for Noop {
    fn run(
        &self,
        _node: usize,
        _stop: watch::Receiver<StopRequest>,
    ) -> Pin<Box<dyn Future<Output = NodeResult> + Send>> {
        Box::pin(async { NodeResult::new(Status::Succeeded) })
    }
}

/// A layered DAG like shared/bench/gen_dag.py: `layers` layers, each node depending on one node
/// of the previous layer and up to two more from the three before it (deterministic).
fn dag(n: usize, layers: usize) -> Schedule {
    let per = n.div_ceil(layers);
    let mut deps = vec![Vec::new(); n];
    for (v, d) in deps.iter_mut().enumerate() {
        let layer = v / per;
        if layer == 0 {
            continue;
        }
        let prev = |back: usize, k: usize| (layer - back) * per + (v * 7 + k * 13) % per;
        d.push(prev(1, 0));
        if layer >= 2 {
            d.push(prev(2, 1));
        }
        if layer >= 3 {
            d.push(prev(3, 2));
        }
        d.sort_unstable();
        d.dedup();
    }
    let nodes = (0..n)
        .map(|i| SchedNode {
            id: format!("n{i}"),
            deployment: true,
            pool: None,
            weight: 1.0 + (i % 5) as f64,
        })
        .collect();
    Schedule {
        nodes,
        deps,
        order_only: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("scheduler");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    for (n, jobs) in [(1_000usize, 2usize), (10_000, 8), (100_000, 8)] {
        if n >= 100_000 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(20));
        }
        let s = dag(n, 20);
        let opts = Options {
            jobs,
            pools: BTreeMap::new(),
            fail_fast: true,
            deadline: None,
            grace: Duration::from_secs(1),
            order: Order::CriticalPath,
        };
        group.bench_function(format!("noop/{n}nodes/j{jobs}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (tx, mut rx) = mpsc::unbounded_channel();
                    let (_sig_tx, sig_rx) = mpsc::unbounded_channel();
                    let out = scheduler::run(&s, &opts, Arc::new(Noop), &tx, sig_rx).await;
                    while rx.try_recv().is_ok() {}
                    black_box(out.results.len())
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
