//! Builds the dependency graph from the repo (DESIGN §2.2) and validates it.
//!
//! Edges point from a dependency to its dependent (`u → v`: `u` finishes before `v` starts).
//! An environment node depends on all of its deployments, so "after environment X" is one edge
//! to X's node rather than one edge per deployment of X: the graph stays linear in size.

use std::collections::{HashMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::diagnostic::{did_you_mean, Diagnostics, Loc, Problem, Spanned};
use crate::model::Repo;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Environment,
    Deployment,
}

#[derive(Clone, Debug)]
pub struct Node {
    /// `backend-test` or `backend-test/terraform`.
    pub id: String,
    pub kind: NodeKind,
    /// Index into `Repo::environments`.
    pub env: usize,
    /// Index into the environment's deployments.
    pub dep: Option<usize>,
}

#[derive(Clone, Debug)]
pub enum Edge {
    /// A deployment belongs to its environment node.
    Member,
    /// Implicit order of `bitops.deployments` inside an environment: order only (BitOps ran
    /// them one after another; with fail-fast off, a later one still ran after a failure).
    Sequence,
    /// A `depends_on` entry, with where it was written.
    Declared(Loc),
    /// An `inputs` entry naming an output of the producer, with where it was written.
    Input(Loc),
}

/// What a dependent needs of a dependency before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// It must have succeeded (declared `depends_on`, environment membership, inputs).
    Success,
    /// It must have finished, whatever its result (the implicit order inside an environment).
    Order,
}

impl EdgeKind {
    /// The word plans use (`success`, `order`).
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Success => "success",
            EdgeKind::Order => "order",
        }
    }
}

impl Edge {
    pub fn kind(&self) -> EdgeKind {
        match self {
            Edge::Sequence => EdgeKind::Order,
            Edge::Member | Edge::Declared(_) | Edge::Input(_) => EdgeKind::Success,
        }
    }
}

/// The validated, acyclic dependency graph of a whole repo.
#[derive(Debug)]
pub struct Graph {
    pub dag: DiGraph<Node, Edge>,
    index: HashMap<String, NodeIndex>,
    /// A topological order of all nodes.
    pub topo: Vec<NodeIndex>,
    /// Declared inputs of deployment nodes that have any.
    pub inputs: HashMap<NodeIndex, Vec<super::inputs::Wire>>,
}

impl Graph {
    pub fn node(&self, i: NodeIndex) -> &Node {
        &self.dag[i]
    }

    pub fn find(&self, id: &str) -> Option<NodeIndex> {
        self.index.get(id).copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Direct dependencies of a node.
    pub fn dependencies(&self, i: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.dag.neighbors_directed(i, Direction::Incoming)
    }

    /// The dependencies a selected node waits for within a selection. An environment node
    /// that is not selected (only some of its deployments are) is looked through: waiting for
    /// it means waiting for whichever of its deployments are selected. Unselected deployments
    /// are assumed deployed already.
    pub fn selected_dependencies(
        &self,
        i: NodeIndex,
        selected: impl Fn(NodeIndex) -> bool,
    ) -> Vec<NodeIndex> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<NodeIndex> = self.dependencies(i).collect();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            if selected(p) {
                out.push(p);
            } else if self.dag[p].kind == NodeKind::Environment {
                stack.extend(self.dependencies(p));
            }
        }
        out.sort_unstable();
        out
    }

    /// [`Graph::selected_dependencies`] with what each one must do first. Looking through an
    /// unselected environment node waits for its deployments to succeed (membership is a
    /// success edge).
    pub fn selected_dependency_kinds(
        &self,
        i: NodeIndex,
        selected: impl Fn(NodeIndex) -> bool,
    ) -> Vec<(NodeIndex, EdgeKind)> {
        use petgraph::visit::EdgeRef;
        // Reached twice (directly in order, and through an environment): success wins.
        let mut found: HashMap<NodeIndex, EdgeKind> = HashMap::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<(NodeIndex, EdgeKind)> = self
            .dag
            .edges_directed(i, Direction::Incoming)
            .map(|e| (e.source(), e.weight().kind()))
            .collect();
        while let Some((p, kind)) = stack.pop() {
            if selected(p) {
                let k = found.entry(p).or_insert(kind);
                *k = (*k).min(kind);
            } else if self.dag[p].kind == NodeKind::Environment && seen.insert(p) {
                stack.extend(self.dependencies(p).map(|q| (q, EdgeKind::Success)));
            }
        }
        let mut out: Vec<(NodeIndex, EdgeKind)> = found.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// Direct dependents of a node.
    pub fn dependents(&self, i: NodeIndex) -> impl Iterator<Item = NodeIndex> + '_ {
        self.dag.neighbors_directed(i, Direction::Outgoing)
    }
}

/// Builds and validates the graph. Problems (unknown names, cycles) are collected; the graph is
/// only returned when there are none.
pub fn build(repo: &Repo, diags: &mut Diagnostics) -> Option<Graph> {
    let mut b = Builder {
        dag: DiGraph::new(),
        index: HashMap::new(),
        seen: HashSet::new(),
    };
    let mut env_nodes = Vec::with_capacity(repo.environments.len());
    let mut dep_nodes: Vec<Vec<NodeIndex>> = Vec::with_capacity(repo.environments.len());
    for (ei, env) in repo.environments.iter().enumerate() {
        let en = b.add(Node {
            id: env.name.clone(),
            kind: NodeKind::Environment,
            env: ei,
            dep: None,
        });
        env_nodes.push(en);
        let mut deps = Vec::with_capacity(env.deployments.len());
        for (di, d) in env.deployments.iter().enumerate() {
            let dn = b.add(Node {
                id: format!("{}/{}", env.name, d.name),
                kind: NodeKind::Deployment,
                env: ei,
                dep: Some(di),
            });
            b.edge(dn, en, Edge::Member);
            deps.push(dn);
        }
        dep_nodes.push(deps);
    }

    let before = diags.len();
    let mut inputs = HashMap::new();
    for (ei, env) in repo.environments.iter().enumerate() {
        for (di, d) in env.deployments.iter().enumerate() {
            let me = dep_nodes[ei][di];
            // First: an input on the previous deployment is a success edge, not the order one.
            if !d.inputs.is_empty() {
                let mut wires = Vec::with_capacity(d.inputs.len());
                for (producer, loc, wire) in super::inputs::resolve(repo, env, d, &b.index, diags) {
                    b.edge(producer, me, Edge::Input(loc));
                    wires.push(wire);
                }
                inputs.insert(me, wires);
            }
            match &d.depends_on {
                None if di > 0 => b.edge(dep_nodes[ei][di - 1], me, Edge::Sequence),
                None => {}
                Some(list) => {
                    for entry in list {
                        if let Some(target) = resolve(repo, &b, &env.name, entry, true, diags) {
                            b.edge(target, me, Edge::Declared(entry.loc.clone()));
                        }
                    }
                }
            }
        }
        for entry in &env.depends_on {
            let Some(target) = resolve(repo, &b, &env.name, entry, false, diags) else {
                continue;
            };
            if dep_nodes[ei].is_empty() {
                b.edge(target, env_nodes[ei], Edge::Declared(entry.loc.clone()));
            }
            for &dn in &dep_nodes[ei] {
                b.edge(target, dn, Edge::Declared(entry.loc.clone()));
            }
        }
    }
    // Cycles among the edges that did resolve are real whatever else is wrong: report them in
    // the same run as unknown names.
    match petgraph::algo::toposort(&b.dag, None) {
        Ok(topo) if diags.len() == before => Some(Graph {
            dag: b.dag,
            index: b.index,
            topo,
            inputs,
        }),
        Ok(_) => None,
        Err(_) => {
            report_cycles(&b.dag, diags);
            None
        }
    }
}

struct Builder {
    dag: DiGraph<Node, Edge>,
    index: HashMap<String, NodeIndex>,
    seen: HashSet<(NodeIndex, NodeIndex)>,
}

impl Builder {
    fn add(&mut self, node: Node) -> NodeIndex {
        let id = node.id.clone();
        let i = self.dag.add_node(node);
        self.index.insert(id, i);
        i
    }

    fn edge(&mut self, from: NodeIndex, to: NodeIndex, e: Edge) {
        if self.seen.insert((from, to)) {
            self.dag.add_edge(from, to, e);
        }
    }
}

/// Resolves a `depends_on` entry. A bare name means a deployment of the same environment if one
/// has that name (only for deployment-level entries), otherwise an environment.
fn resolve(
    repo: &Repo,
    b: &Builder,
    env: &str,
    entry: &Spanned<String>,
    deployment_level: bool,
    diags: &mut Diagnostics,
) -> Option<NodeIndex> {
    let name = entry.value.trim().trim_end_matches('/');
    if deployment_level && !name.contains('/') {
        if let Some(i) = b.index.get(&format!("{env}/{name}")) {
            return Some(*i);
        }
    }
    if let Some(i) = b.index.get(name) {
        return Some(*i);
    }
    let (message, candidates): (String, Vec<String>) = match name.split_once('/') {
        Some((e, d)) => match repo.environment(e) {
            Some(target) => (
                format!("`{name}`: environment `{e}` has no deployment `{d}`"),
                target
                    .deployments
                    .iter()
                    .map(|x| format!("{e}/{}", x.name))
                    .collect(),
            ),
            None => (
                format!("`{name}`: there is no environment `{e}`"),
                repo.environments
                    .iter()
                    .flat_map(|x| {
                        x.deployments
                            .iter()
                            .map(move |d| format!("{}/{}", x.name, d.name))
                    })
                    .collect(),
            ),
        },
        None => {
            let mut c: Vec<String> = repo.environments.iter().map(|x| x.name.clone()).collect();
            if deployment_level {
                if let Some(own) = repo.environment(env) {
                    c.extend(own.deployments.iter().map(|d| d.name.clone()));
                }
            }
            let message = if deployment_level {
                format!("`{name}` in `depends_on` is neither a deployment of this environment nor an environment")
            } else {
                format!("`{name}` in `depends_on` is not an environment")
            };
            (message, c)
        }
    };
    let mut p =
        Problem::new("bitops::graph::unknown_dependency", message).at(&entry.loc, "unknown name");
    p = match did_you_mean(name, candidates.iter().map(String::as_str)) {
        Some(s) => p.help(format!("did you mean `{s}`?")),
        None => p.help("name an environment (`backend-test`), a deployment of this environment (`terraform`), or another environment's deployment (`backend-test/terraform`)"),
    };
    diags.push(p);
    None
}

/// One diagnostic per strongly connected component, showing the whole cycle.
fn report_cycles(dag: &DiGraph<Node, Edge>, diags: &mut Diagnostics) {
    for scc in petgraph::algo::tarjan_scc(dag) {
        let self_loop = scc.len() == 1 && dag.find_edge(scc[0], scc[0]).is_some();
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc
            .iter()
            .min_by_key(|i| &dag[**i].id)
            .expect("non-empty component");
        let path = cycle_path(dag, start, &members);
        // Walk in "depends on" order: each step goes to a dependency.
        let text: Vec<&str> = path.iter().map(|i| dag[*i].id.as_str()).collect();
        let declared = path
            .windows(2)
            .find_map(|w| match &dag[dag.find_edge(w[1], w[0])?] {
                Edge::Declared(loc) | Edge::Input(loc) => Some(loc.clone()),
                _ => None,
            });
        // Every declared edge of the cycle, so the user sees all the entries to choose from.
        let edges: Vec<String> = path
            .windows(2)
            .filter_map(|w| match &dag[dag.find_edge(w[1], w[0])?] {
                Edge::Declared(loc) | Edge::Input(loc) => {
                    Some(format!("{} → {} at {loc}", dag[w[0]].id, dag[w[1]].id))
                }
                _ => None,
            })
            .collect();
        let has_input = path.windows(2).any(|w| {
            dag.find_edge(w[1], w[0])
                .is_some_and(|e| matches!(dag[e], Edge::Input(_)))
        });
        let p = Problem::new(
            "bitops::graph::cycle",
            format!("dependency cycle: {}", text.join(" → ")),
        )
        .at_opt(declared.as_ref(), "this dependency closes the cycle")
        .help(format!(
            "remove one `depends_on` entry{} of the cycle (an environment also waits for all of its own deployments); its entries: {}",
            if has_input { " or input" } else { "" },
            edges.join("; ")
        ));
        diags.push(p);
    }
}

/// A cycle through `start`, following dependencies (incoming edges) inside the component.
fn cycle_path(
    dag: &DiGraph<Node, Edge>,
    start: NodeIndex,
    members: &HashSet<NodeIndex>,
) -> Vec<NodeIndex> {
    let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for m in dag.neighbors_directed(n, Direction::Incoming) {
            if !members.contains(&m) {
                continue;
            }
            if m == start {
                let mut back = Vec::new();
                let mut cur = n;
                while cur != start {
                    back.push(cur);
                    cur = prev[&cur];
                }
                back.reverse();
                let mut path = vec![start];
                path.extend(back);
                path.push(start);
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    vec![start, start]
}
