//! The dispatcher: one loop owns all run state (in-degrees, ready queue, slots, outcomes).
//!
//! ```text
//!   ready heap ──start──▶ JoinSet of node tasks ──result──▶ loop ──release──▶ ready heap
//!        ▲                        ▲ stop (watch)                │
//!        └── priority = longest remaining path                  └──▶ RunEvent (reporter)
//!   signals, deadline ──▶ loop: stop scheduling, forward to process groups, then kill
//! ```
//! A node starts the moment its last dependency succeeds, if a job slot (and its pool's slot)
//! is free; a slot is taken only when the node starts, never while waiting. Environment nodes
//! carry no work and complete as soon as they are ready.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::events::{CancelReason, NodeResult, RunEvent, Status};
use super::process::{Sig, StopRequest};

/// One node as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct SchedNode {
    pub id: String,
    /// Environment nodes are bookkeeping only.
    pub deployment: bool,
    pub pool: Option<String>,
    /// Expected seconds (from history), for the priority.
    pub weight: f64,
}

/// The graph to run: nodes and, per node, the indices of its dependencies.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    pub nodes: Vec<SchedNode>,
    pub deps: Vec<Vec<usize>>,
    /// Per node, the dependencies in `deps` it only waits for (an order, not a need): it
    /// starts once they have finished, whatever their result. Empty: every edge needs success.
    pub order_only: Vec<Vec<usize>>,
}

impl Schedule {
    /// Whether `node` only waits for `dep` to finish (not to succeed).
    fn order_only(&self, node: usize, dep: usize) -> bool {
        self.order_only.get(node).is_some_and(|o| o.contains(&dep))
    }

    fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, ds) in self.deps.iter().enumerate() {
            for &d in ds {
                out[d].push(i);
            }
        }
        out
    }

    /// Longest weighted path from each node to the end of the graph (itself included).
    pub fn remaining_path(&self) -> Vec<f64> {
        let dependents = self.dependents();
        let order = self.topo_order(&dependents);
        let mut rem = vec![0.0; self.nodes.len()];
        for &i in order.iter().rev() {
            let tail = dependents[i].iter().map(|&d| rem[d]).fold(0.0, f64::max);
            rem[i] = self.nodes[i].weight + tail;
        }
        rem
    }

    fn topo_order(&self, dependents: &[Vec<usize>]) -> Vec<usize> {
        let mut indeg: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut stack: Vec<usize> = (0..self.nodes.len()).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = stack.pop() {
            order.push(i);
            for &d in &dependents[i] {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    stack.push(d);
                }
            }
        }
        order
    }
}

/// Among ready nodes, which starts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// Longest remaining path first (critical path scheduling).
    #[default]
    CriticalPath,
    /// The order in which nodes became ready (for benchmarks).
    Fifo,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub jobs: usize,
    pub pools: BTreeMap<String, usize>,
    pub fail_fast: bool,
    pub deadline: Option<Duration>,
    /// After a deadline's SIGTERM, how long before SIGKILL.
    pub grace: Duration,
    pub order: Order,
}

/// Runs one node; implemented by the deployment runner and by test fakes.
pub trait Executor: Send + Sync + 'static {
    fn run(
        &self,
        node: usize,
        stop: watch::Receiver<StopRequest>,
    ) -> Pin<Box<dyn Future<Output = NodeResult> + Send>>;
}

#[derive(Clone, Copy, PartialEq)]
struct Ready {
    priority: f64,
    seq: u64,
    node: usize,
}

impl Eq for Ready {}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .total_cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What the loop reports back.
pub struct Outcome {
    pub results: Vec<NodeResult>,
    /// The most severe reason the run stopped early, if it did.
    pub cancel: Option<CancelReason>,
    /// The first signal received (decides the exit code even after a second one).
    pub signal: Option<Sig>,
}

/// Runs the schedule to the end. `signals` delivers SIGINT/SIGTERM as they arrive.
pub async fn run<E: Executor>(
    schedule: &Schedule,
    opts: &Options,
    executor: Arc<E>,
    events: &mpsc::UnboundedSender<RunEvent>,
    mut signals: mpsc::UnboundedReceiver<Sig>,
) -> Outcome {
    let n = schedule.nodes.len();
    let dependents = schedule.dependents();
    let remaining = schedule.remaining_path();
    let mut indeg: Vec<usize> = schedule.deps.iter().map(Vec::len).collect();
    let mut results: Vec<Option<NodeResult>> = vec![None; n];
    let mut ready = BinaryHeap::new();
    let mut seq = 0u64;
    let push = |ready: &mut BinaryHeap<Ready>, seq: &mut u64, node: usize| {
        *seq += 1;
        let priority = match opts.order {
            Order::CriticalPath => remaining[node],
            Order::Fifo => 0.0,
        };
        ready.push(Ready {
            priority,
            seq: *seq,
            node,
        });
    };
    for i in (0..n).filter(|&i| indeg[i] == 0) {
        push(&mut ready, &mut seq, i);
    }

    let (stop_tx, stop_rx) = watch::channel(StopRequest::None);
    let mut running: JoinSet<(usize, NodeResult)> = JoinSet::new();
    let mut task_nodes: std::collections::HashMap<tokio::task::Id, usize> =
        std::collections::HashMap::new();
    let mut pool_use: BTreeMap<String, usize> = BTreeMap::new();
    let mut running_count = 0usize;
    let mut cancel: Option<CancelReason> = None;
    let started = Instant::now();
    // A deadline too far to represent is no deadline (config rejects such values; this only
    // keeps an overflow from panicking).
    let deadline = opts
        .deadline
        .and_then(|d| started.checked_add(d))
        .map(tokio::time::Instant::from_std);
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut first_signal: Option<Sig> = None;
    let jobs = opts.jobs.max(1);

    loop {
        // Start everything that may start now, best priority first.
        if cancel.is_none() {
            let mut held = Vec::new();
            while running_count < jobs {
                let Some(r) = ready.pop() else { break };
                let node = &schedule.nodes[r.node];
                if !node.deployment {
                    finish(
                        r.node,
                        NodeResult::new(Status::Succeeded),
                        schedule,
                        &mut results,
                        events,
                    );
                    for d in release(
                        r.node,
                        true,
                        schedule,
                        &dependents,
                        &mut indeg,
                        &mut results,
                        events,
                    ) {
                        push(&mut ready, &mut seq, d);
                    }
                    continue;
                }
                if let Some(pool) = &node.pool {
                    let limit = opts.pools.get(pool).copied().unwrap_or(usize::MAX);
                    if pool_use.get(pool).copied().unwrap_or(0) >= limit {
                        held.push(r);
                        continue;
                    }
                    *pool_use.entry(pool.clone()).or_default() += 1;
                }
                running_count += 1;
                let exec = Arc::clone(&executor);
                let rx = stop_rx.clone();
                let idx = r.node;
                let task = running.spawn(async move { (idx, exec.run(idx, rx).await) });
                task_nodes.insert(task.id(), idx);
            }
            ready.extend(held);
        }
        if running_count == 0 && (cancel.is_some() || ready.is_empty()) {
            break;
        }

        tokio::select! {
            joined = running.join_next_with_id(), if running_count > 0 => {
                // A panicking task is a bug. The binary's panic hook ends bitops (exit 3) before
                // this sees it; elsewhere (library use, tests) the node still fails and the
                // count stays true: a task lost from the count would make this loop spin.
                let (idx, result) = match joined {
                    Some(Ok((id, done))) => {
                        task_nodes.remove(&id);
                        done
                    }
                    Some(Err(e)) => match task_nodes.remove(&e.id()) {
                        Some(idx) => (idx, NodeResult::with_reason(Status::Failed, format!("internal error: {e}"))),
                        None => continue,
                    },
                    None => {
                        // Nothing left to join: whatever the count says, nothing runs.
                        running_count = 0;
                        continue;
                    }
                };
                running_count -= 1;
                if let Some(pool) = &schedule.nodes[idx].pool {
                    if let Some(c) = pool_use.get_mut(pool) {
                        *c = c.saturating_sub(1);
                    }
                }
                // Stopped because the run's deadline passed: that is a timeout, not a Ctrl-C.
                let mut result = result;
                if cancel == Some(CancelReason::Deadline) && result.status == Status::Interrupted {
                    result.status = Status::TimedOut;
                    result.reason = Some(format!(
                        "the run's deadline passed ({})",
                        result.reason.as_deref().unwrap_or("stopped")
                    ));
                }
                let status = result.status;
                finish(idx, result, schedule, &mut results, events);
                for d in release(idx, status.is_success(), schedule, &dependents, &mut indeg, &mut results, events) {
                    push(&mut ready, &mut seq, d);
                }
                if !status.is_success() && opts.fail_fast && cancel.is_none() {
                    cancel = Some(CancelReason::Failure);
                    let _ = events.send(RunEvent::Cancel { reason: CancelReason::Failure });
                }
            }
            sig = signals.recv() => {
                let Some(sig) = sig else { continue };
                first_signal.get_or_insert(sig);
                // SIGHUP and SIGQUIT act like SIGTERM; only the exit code tells them apart.
                let (reason, forward) = match sig {
                    Sig::Int => (CancelReason::Interrupt, Sig::Int),
                    Sig::Term | Sig::Hup | Sig::Quit => (CancelReason::Terminate, Sig::Term),
                };
                if cancel.is_some_and(|c| c >= CancelReason::Terminate) {
                    // The second signal: no more waiting.
                    cancel = Some(CancelReason::Kill);
                    let _ = stop_tx.send(StopRequest::Kill);
                    let _ = events.send(RunEvent::Cancel { reason: CancelReason::Kill });
                } else {
                    cancel = Some(reason);
                    let _ = stop_tx.send(StopRequest::Forward(forward));
                    let _ = events.send(RunEvent::Cancel { reason });
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() && cancel.is_none_or(|c| c < CancelReason::Deadline) => {
                cancel = Some(CancelReason::Deadline);
                let _ = stop_tx.send(StopRequest::Forward(Sig::Term));
                kill_at = tokio::time::Instant::now().checked_add(opts.grace);
                let _ = events.send(RunEvent::Cancel { reason: CancelReason::Deadline });
            }
            _ = sleep_until(kill_at), if kill_at.is_some() => {
                kill_at = None;
                let _ = stop_tx.send(StopRequest::Kill);
            }
        }
    }

    let why = match cancel {
        Some(CancelReason::Failure) => "the run stopped after a failure (fail-fast)",
        Some(CancelReason::Deadline) => "the run's deadline passed",
        Some(CancelReason::Interrupt | CancelReason::Terminate | CancelReason::Kill) => {
            "the run was interrupted"
        }
        None => "it was never ready",
    };
    for i in 0..n {
        if results[i].is_none() {
            finish(
                i,
                NodeResult::with_reason(Status::NotRun, why),
                schedule,
                &mut results,
                events,
            );
        }
    }
    let _ = events.send(RunEvent::Finished {
        elapsed: started.elapsed(),
    });
    Outcome {
        results: results
            .into_iter()
            .map(|r| r.expect("every node was finished"))
            .collect(),
        cancel,
        signal: first_signal,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn finish(
    i: usize,
    result: NodeResult,
    schedule: &Schedule,
    results: &mut [Option<NodeResult>],
    events: &mpsc::UnboundedSender<RunEvent>,
) {
    // Every result reaches the reporters and the run's result through here, masked.
    let result = result.masked();
    let node = &schedule.nodes[i];
    let _ = events.send(RunEvent::NodeFinished {
        id: node.id.clone(),
        deployment: node.deployment,
        result: result.clone(),
    });
    results[i] = Some(result);
}

/// After `done` finished: its dependents that may now start (returned), and, when it did not
/// succeed, everything downstream that needed its success skipped, naming it. A dependent
/// that only waits for the order is released whatever the result, and so is one behind a
/// skipped node by order only.
fn release(
    done: usize,
    succeeded: bool,
    schedule: &Schedule,
    dependents: &[Vec<usize>],
    indeg: &mut [usize],
    results: &mut [Option<NodeResult>],
    events: &mpsc::UnboundedSender<RunEvent>,
) -> Vec<usize> {
    let reason = format!("`{}` did not succeed", schedule.nodes[done].id);
    let mut now_ready = Vec::new();
    let mut stack = vec![(done, succeeded)];
    while let Some((n, ok)) = stack.pop() {
        for &d in &dependents[n] {
            if results[d].is_some() {
                continue;
            }
            if ok || schedule.order_only(d, n) {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    now_ready.push(d);
                }
            } else {
                finish(
                    d,
                    NodeResult::with_reason(Status::Skipped, reason.clone()),
                    schedule,
                    results,
                    events,
                );
                stack.push((d, false));
            }
        }
    }
    now_ready
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
