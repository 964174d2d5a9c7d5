//! What a run would do: the selected nodes in order, grouped into waves, and the critical path.
//! Renderers turn a [`Plan`] into text, JSON, DOT or mermaid; none of them starts a process.

pub mod cache;
pub mod dry_run;
pub mod dry_run_json;
pub mod dry_run_markdown;
pub mod graphviz;
pub mod json;
#[cfg(test)]
mod json_tests;
pub mod preview;
pub mod text;

use std::collections::HashMap;

use petgraph::graph::NodeIndex;

use crate::graph::{Graph, NodeKind, Selection};
use crate::model::{Deployment, Environment, Repo};

/// A deployment's plugin as the plan shows it; filled by the plugin layer.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Invocation {
    /// The deploy command (BitOps-format plugins) or the first tool command.
    pub argv: Vec<String>,
    /// Variables the plugin contract sets for this deployment.
    pub env: std::collections::BTreeMap<String, String>,
    /// Every command the deployment would run, in order, as shell text.
    pub commands: Vec<String>,
    /// Resolved plugin settings as `key = value (origin)`.
    pub settings: Vec<String>,
    /// Declared inputs: where each comes from and, when the producer's last outputs are known,
    /// its value (masked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputShown>,
}

/// One declared input as a plan shows it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct InputShown {
    pub name: String,
    /// `backend-test/terraform.api_url`.
    pub from: String,
    /// The producer's last successful value, with the masks applied; `None` when unknown
    /// (then the commands show `<backend-test/terraform.api_url>` in its place).
    pub value: Option<String>,
}

pub struct Plan<'a> {
    pub repo: &'a Repo,
    pub graph: &'a Graph,
    pub selection: &'a Selection,
    /// Selected nodes in a topological order.
    pub order: Vec<NodeIndex>,
    /// Selected deployments grouped by the earliest moment they could start.
    pub waves: Vec<Vec<NodeIndex>>,
    /// The longest chain of deployments, weighted by recorded durations (1 each without history).
    pub critical_path: Vec<NodeIndex>,
    pub critical_secs: f64,
    /// Per deployment node: what the plugin would run (`None` when not computed).
    pub invocations: HashMap<NodeIndex, Result<Invocation, String>>,
}

impl<'a> Plan<'a> {
    /// `durations`: seconds per deployment id from earlier runs.
    pub fn new(
        repo: &'a Repo,
        graph: &'a Graph,
        selection: &'a Selection,
        durations: &HashMap<String, f64>,
    ) -> Self {
        let order: Vec<NodeIndex> = graph
            .topo
            .iter()
            .copied()
            .filter(|i| selection.contains(*i))
            .collect();
        let n = graph.dag.node_count();
        let mut level = vec![0usize; n];
        let mut dist = vec![0f64; n];
        let mut best_pred: Vec<Option<NodeIndex>> = vec![None; n];
        let mut waves: Vec<Vec<NodeIndex>> = Vec::new();
        for &i in &order {
            let is_dep = graph.node(i).kind == NodeKind::Deployment;
            let mut lvl = 0;
            let mut d = 0f64;
            for p in graph.selected_dependencies(i, |x| selection.contains(x)) {
                let step = usize::from(graph.node(p).kind == NodeKind::Deployment);
                lvl = lvl.max(level[p.index()] + step);
                if best_pred[i.index()].is_none() || dist[p.index()] > d {
                    d = dist[p.index()];
                    best_pred[i.index()] = Some(p);
                }
            }
            level[i.index()] = lvl;
            let weight = if is_dep {
                durations.get(&graph.node(i).id).copied().unwrap_or(1.0)
            } else {
                0.0
            };
            dist[i.index()] = d + weight;
            if is_dep {
                if waves.len() <= lvl {
                    waves.resize_with(lvl + 1, Vec::new);
                }
                waves[lvl].push(i);
            }
        }
        for w in &mut waves {
            w.sort_by(|a, b| graph.node(*a).id.cmp(&graph.node(*b).id));
        }
        let end = order
            .iter()
            .copied()
            .filter(|i| graph.node(*i).kind == NodeKind::Deployment)
            .max_by(|a, b| {
                dist[a.index()]
                    .total_cmp(&dist[b.index()])
                    .then_with(|| graph.node(*b).id.cmp(&graph.node(*a).id))
            });
        let mut critical_path = Vec::new();
        let mut cur = end;
        while let Some(c) = cur {
            if graph.node(c).kind == NodeKind::Deployment {
                critical_path.push(c);
            }
            cur = best_pred[c.index()];
        }
        critical_path.reverse();
        let critical_secs = end.map(|e| dist[e.index()]).unwrap_or(0.0);
        Plan {
            repo,
            graph,
            selection,
            order,
            waves,
            critical_path,
            critical_secs,
            invocations: HashMap::new(),
        }
    }

    pub fn environment(&self, i: NodeIndex) -> &'a Environment {
        &self.repo.environments[self.graph.node(i).env]
    }

    pub fn deployment(&self, i: NodeIndex) -> Option<&'a Deployment> {
        let n = self.graph.node(i);
        n.dep.map(|d| &self.repo.environments[n.env].deployments[d])
    }

    /// Direct dependencies that are part of the run, sorted by id.
    pub fn depends_on(&self, i: NodeIndex) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .graph
            .selected_dependencies(i, |x| self.selection.contains(x))
            .into_iter()
            .map(|p| self.graph.node(p).id.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Direct dependencies that are part of the run with what each must do first (`success`:
    /// succeed; `order`: finish, whatever its result), sorted by id.
    pub fn dependencies(&self, i: NodeIndex) -> Vec<(&str, crate::graph::EdgeKind)> {
        let mut v: Vec<(&str, crate::graph::EdgeKind)> = self
            .graph
            .selected_dependency_kinds(i, |x| self.selection.contains(x))
            .into_iter()
            .map(|(p, k)| (self.graph.node(p).id.as_str(), k))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn deployment_count(&self) -> usize {
        self.waves.iter().map(Vec::len).sum()
    }
}
