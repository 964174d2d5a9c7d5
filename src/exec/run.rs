//! A whole run: the schedule from the selected graph, the run folder, signal handling, the
//! scheduler, and the results in run order. The caller (app) shows and records them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use petgraph::graph::NodeIndex;
use tokio::sync::mpsc;

use super::deployment::{Job, Runner, RunnerHandle};
use super::events::{CancelReason, NodeResult, RunEvent};
use super::log_sink::Mask;
use super::process::Sig;
use super::scheduler::{self, Options, Order, SchedNode, Schedule};
use super::workspace::Workspace;
use crate::graph::{Graph, NodeKind, Selection};
use crate::model::Repo;
use crate::plugins::step::Action;
use crate::plugins::Registry;

pub struct RunRequest {
    pub repo: Arc<Repo>,
    pub registry: Arc<Registry>,
    pub state_dir: PathBuf,
    pub run_id: String,
    pub action: Action,
    pub base_env: BTreeMap<String, String>,
    pub options: Options,
    pub in_place: bool,
    /// `--fresh`: the selected environments' working folders start clean.
    pub fresh: bool,
    /// Recorded seconds per node id, for priority and ETA.
    pub durations: HashMap<String, f64>,
    /// Where output lines for the live display go (bounded; the logs get everything).
    pub live: Arc<super::live_feed::LiveFeed>,
    /// Where saved outputs are read and kept (the state folder unless a shared store is used).
    pub state: crate::state::store::State,
    /// The environment leases of a shared store, watched for loss.
    pub lease: Option<Arc<crate::state::store::lease::Watch>>,
}

pub struct RunResult {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// Every selected node in schedule order: (id, is deployment, result).
    pub nodes: Vec<(String, bool, NodeResult)>,
    pub cancel: Option<CancelReason>,
    /// The first SIGINT/SIGTERM, if any.
    pub signal: Option<Sig>,
    pub started: SystemTime,
    pub elapsed: Duration,
    /// The persistent working copy (`<state>/work`), unless the run was `--in-place`.
    pub work_kept: Option<PathBuf>,
}

/// The selected subgraph as a schedule; `reverse` flips every edge (destroy).
pub fn schedule(
    graph: &Graph,
    selection: &Selection,
    reverse: bool,
    durations: &HashMap<String, f64>,
) -> (Schedule, Vec<NodeIndex>) {
    let order: Vec<NodeIndex> = graph
        .topo
        .iter()
        .copied()
        .filter(|i| selection.contains(*i))
        .collect();
    let pos: HashMap<NodeIndex, usize> = order.iter().enumerate().map(|(k, i)| (*i, k)).collect();
    let known: Vec<f64> = durations.values().copied().collect();
    let typical = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let mut deps = vec![Vec::new(); order.len()];
    let mut order_only = vec![Vec::new(); order.len()];
    for (k, &i) in order.iter().enumerate() {
        for (p, kind) in graph.selected_dependency_kinds(i, |x| selection.contains(x)) {
            if let Some(&pk) = pos.get(&p) {
                let (node, dep) = if reverse { (pk, k) } else { (k, pk) };
                deps[node].push(dep);
                if kind == crate::graph::EdgeKind::Order {
                    order_only[node].push(dep);
                }
            }
        }
    }
    let nodes = order
        .iter()
        .map(|&i| {
            let n = graph.node(i);
            SchedNode {
                id: n.id.clone(),
                deployment: n.kind == NodeKind::Deployment,
                pool: None,
                weight: if n.kind == NodeKind::Deployment {
                    durations.get(&n.id).copied().unwrap_or(typical)
                } else {
                    0.0
                },
            }
        })
        .collect();
    (
        Schedule {
            nodes,
            deps,
            order_only,
        },
        order,
    )
}

/// Runs the request; `events` receives everything as it happens.
pub async fn execute(
    req: RunRequest,
    graph: &Graph,
    selection: &Selection,
    events: mpsc::UnboundedSender<RunEvent>,
) -> RunResult {
    let reverse = req.action == Action::Destroy;
    let (mut sched, order) = schedule(graph, selection, reverse, &req.durations);
    let repo = &req.repo;
    // Pools and per-deployment jobs.
    let mut jobs: Vec<Option<Job>> = Vec::with_capacity(order.len());
    for (k, &i) in order.iter().enumerate() {
        let n = graph.node(i);
        let Some(di) = n.dep else {
            jobs.push(None);
            continue;
        };
        let d = &repo.environments[n.env].deployments[di];
        sched.nodes[k].pool = d.pool.as_ref().map(|p| p.value.clone());
        jobs.push(Some(Job {
            id: n.id.clone(),
            env: n.env,
            dep: di,
            timeout: d.timeout.value,
            retries: d.retries.value,
            inputs: graph.inputs.get(&i).cloned().unwrap_or_default(),
        }));
    }
    // Every string leaving the engine is masked with every environment's masks (see
    // `mask::scrub`); log lines keep their own environment's.
    crate::mask::set_global(
        repo.environments
            .iter()
            .flat_map(|e| e.settings.masks.iter().map(|m| m.mask.clone()))
            .collect(),
    );
    let masks: Vec<Arc<[Mask]>> = repo
        .environments
        .iter()
        .map(|e| {
            let v: Vec<Mask> = e.settings.masks.iter().map(|m| m.mask.clone()).collect();
            Arc::from(v)
        })
        .collect();
    let run_dir = req.state_dir.join("runs").join(&req.run_id);
    // Working copies in run order, ahead of the deployments that need them.
    let mut seen_envs = std::collections::HashSet::new();
    let envs_in_order: Vec<String> = order
        .iter()
        .filter(|i| {
            graph.node(**i).kind == NodeKind::Deployment && seen_envs.insert(graph.node(**i).env)
        })
        .map(|i| repo.environments[graph.node(*i).env].name.clone())
        .collect();
    let workspace = Arc::new(
        Workspace::new(
            &repo.root,
            &req.state_dir,
            &run_dir,
            &repo.default_folder,
            req.in_place,
        )
        .with_environments(
            repo.environments.iter().map(|e| e.name.clone()).collect(),
            &envs_in_order,
        )
        .with_fresh(req.fresh),
    );
    // Per environment in run order, its deployments in run order: their log files are made
    // ahead too.
    let mut ahead_list: Vec<(String, Vec<String>)> = Vec::new();
    let mut slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for &i in &order {
        let n = graph.node(i);
        let Some(di) = n.dep else { continue };
        let env = &repo.environments[n.env];
        let k = *slot.entry(n.env).or_insert_with(|| {
            ahead_list.push((env.name.clone(), Vec::new()));
            ahead_list.len() - 1
        });
        ahead_list[k].1.push(env.deployments[di].name.clone());
    }
    let stop_ahead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ahead = workspace.prepare_ahead(ahead_list, Arc::clone(&stop_ahead));
    let total = sched.nodes.iter().filter(|n| n.deployment).count();
    // An ETA only when every deployment has a recorded duration: the critical path's length.
    let eta = sched
        .nodes
        .iter()
        .filter(|n| n.deployment)
        .all(|n| req.durations.contains_key(&n.id))
        .then(|| Duration::from_secs_f64(sched.remaining_path().into_iter().fold(0.0, f64::max)));
    let _ = events.send(RunEvent::Started {
        run_id: req.run_id.clone(),
        total,
        jobs: req.options.jobs,
        eta,
    });

    let runner = Arc::new(Runner {
        repo: Arc::clone(repo),
        registry: Arc::clone(&req.registry),
        workspace: Arc::clone(&workspace),
        run_id: req.run_id.clone(),
        base_env: req.base_env.clone(),
        action: req.action,
        fail_fast: req.options.fail_fast,
        grace: req.options.grace,
        jobs,
        masks,
        events: events.clone(),
        live: Arc::clone(&req.live),
        upstream: super::upstream::Upstream::with_state(graph, req.state.clone()),
        backoff: Duration::from_secs(2),
        plugins_dir: crate::plugins::links::create(
            &run_dir.join("plugins"),
            &crate::plugins::links::plugin_dirs(repo, &req.state_dir),
        )
        .map_err(|e| e.to_string()),
        lease: req.lease.clone(),
    });

    let (sig_tx, sig_rx) = mpsc::unbounded_channel();
    let subscription = super::signals::subscribe(sig_tx);
    // Escaped descendants are re-parented to bitops (found and reaped), and a watchdog ends the
    // run's processes if bitops dies without doing it itself.
    super::lifetime::become_subreaper();
    super::lifetime::set_grace(req.options.grace);
    super::lifetime::start_watchdog(&req.run_id, req.options.grace);
    let started = SystemTime::now();
    let clock = Instant::now();
    // The dispatcher runs as a task on a worker, not on the thread blocked on this future: a
    // finished deployment then wakes it on the same worker, and the deployment it starts is
    // queued there too. From the blocked thread every hand-over was two cross-thread wake-ups
    // (worker -> main -> worker) while a job slot stood empty.
    let dispatcher = {
        let (options, events) = (req.options.clone(), events.clone());
        let executor = Arc::new(RunnerHandle(runner));
        tokio::spawn(async move {
            let outcome = scheduler::run(&sched, &options, executor, &events, sig_rx).await;
            (outcome, sched)
        })
    };
    let (outcome, sched) = match dispatcher.await {
        Ok(done) => done,
        // A panic in it is bitops' bug; the binary's panic hook has already ended the run.
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the dispatcher was cancelled: {e}"),
        },
    };
    // From here a signal ends bitops at once (locks released): nothing is running any more.
    drop(subscription);
    stop_ahead.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ahead.join();
    // Whatever a deployment left behind that the per-step sweep could not attribute (an orphan
    // with a cleared environment) goes now, before the run is reported as finished.
    let grace = req.options.grace;
    let _ = tokio::task::spawn_blocking(move || super::lifetime::sweep_all(grace)).await;
    super::lifetime::stop_watchdog();

    // Log files made ahead for deployments that never started are not logs.
    workspace.remove_unused_logs(
        jobs_started(&order, graph, &outcome.results)
            .filter(|(_, started)| !started)
            .map(|(n, _)| {
                let env = &repo.environments[n.env];
                (
                    env.name.as_str(),
                    env.deployments[n.dep.unwrap_or(0)].name.as_str(),
                )
            }),
    );

    // The working copy is kept (local state, tool caches): say where.
    let work_kept =
        (!req.in_place && workspace.tempdir.exists()).then(|| workspace.tempdir.clone());
    let nodes = sched
        .nodes
        .iter()
        .zip(outcome.results)
        .map(|(n, r)| (n.id.clone(), n.deployment, r))
        .collect();
    RunResult {
        run_id: req.run_id,
        run_dir,
        nodes,
        cancel: outcome.cancel,
        signal: outcome.signal,
        started,
        elapsed: clock.elapsed(),
        work_kept,
    }
}

/// Each deployment node of the run with whether it started.
fn jobs_started<'a>(
    order: &'a [petgraph::graph::NodeIndex],
    graph: &'a Graph,
    results: &'a [super::events::NodeResult],
) -> impl Iterator<Item = (&'a crate::graph::build::Node, bool)> + 'a {
    order
        .iter()
        .zip(results)
        .map(|(&i, r)| (graph.node(i), r.started.is_some()))
        .filter(|(n, _)| n.dep.is_some())
}

/// The order option from the environment (benchmarks compare against FIFO).
pub fn order_from_env(env: &crate::config::settings::EnvVars) -> Order {
    match env.get("BITOPS_SCHEDULER_ORDER") {
        Some("fifo") => Order::Fifo,
        _ => Order::CriticalPath,
    }
}
