//! What reaches a deployment from upstream: the outputs of every deployment it depends on,
//! directly or not.
//!
//! Walking each deployment's whole ancestry would cost deployments × ancestors (quadratic on a
//! deep repo of tens of thousands of deployments). Instead each deployment gets a *closure* —
//! its own outputs plus everything its dependencies' closures hold — computed once, when it
//! finishes (or, for deployments outside this run, from their last successful outputs), and
//! shared by reference. The cost follows the outputs that exist, not the depth of the graph.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use petgraph::graph::NodeIndex;

use super::outputs::Outputs;
use crate::graph::{Graph, NodeKind};

/// Outputs by deployment id.
pub type Visible = BTreeMap<String, BTreeMap<String, String>>;

pub struct Upstream {
    /// Direct deployment dependencies of every deployment, environment nodes looked through.
    deps: HashMap<String, Vec<String>>,
    closures: Mutex<HashMap<String, Arc<Visible>>>,
    /// Where the last successful outputs are kept (the state folder, or a shared store).
    state: crate::state::store::State,
}

impl Upstream {
    pub fn new(graph: &Graph, state_dir: PathBuf) -> Self {
        Self::with_state(graph, crate::state::store::State::embedded(state_dir))
    }

    pub fn with_state(graph: &Graph, state: crate::state::store::State) -> Self {
        let mut deps = HashMap::new();
        for i in graph.dag.node_indices() {
            if graph.node(i).kind == NodeKind::Deployment {
                deps.insert(graph.node(i).id.clone(), deployment_dependencies(graph, i));
            }
        }
        Upstream {
            deps,
            closures: Mutex::new(HashMap::new()),
            state,
        }
    }

    /// Everything upstream of `id`, by deployment.
    pub fn inputs(&self, id: &str) -> Visible {
        let mut all = Visible::new();
        for d in self.deps.get(id).map(Vec::as_slice).unwrap_or_default() {
            let c = self.closure(d);
            all.extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all
    }

    /// Keeps a successful deployment's outputs for later runs (see `State::record_outputs`).
    pub fn keep(&self, id: &str, own: &Outputs) -> Result<(), String> {
        self.state.record_outputs(id, own)
    }

    /// A deployment of this run finished with `own` outputs: its dependents see them (and what
    /// it saw) rather than the outputs of an earlier run.
    pub fn record(&self, id: &str, own: &Outputs) {
        let closure = self.build(id, Some(own));
        self.closures
            .lock()
            .expect("closures lock")
            .insert(id.to_string(), closure);
    }

    /// A deployment's closure, computed from saved outputs if this run has not recorded it.
    fn closure(&self, id: &str) -> Arc<Visible> {
        if let Some(c) = self.closures.lock().expect("closures lock").get(id) {
            return Arc::clone(c);
        }
        // Fill in everything below `id` first (iteratively: deep chains must not overflow
        // the stack), then `id` itself.
        let mut stack = vec![(id.to_string(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if self
                .closures
                .lock()
                .expect("closures lock")
                .contains_key(&node)
            {
                continue;
            }
            if expanded {
                let c = self.build(&node, None);
                self.closures.lock().expect("closures lock").insert(node, c);
            } else {
                stack.push((node.clone(), true));
                for d in self.deps.get(&node).map(Vec::as_slice).unwrap_or_default() {
                    stack.push((d.clone(), false));
                }
            }
        }
        Arc::clone(
            self.closures
                .lock()
                .expect("closures lock")
                .get(id)
                .expect("just computed"),
        )
    }

    /// Own outputs (given, or the saved ones) plus the dependencies' closures, which are all
    /// computed already. A closure that adds nothing to its only contributing dependency's is
    /// that same `Arc`.
    fn build(&self, id: &str, own: Option<&Outputs>) -> Arc<Visible> {
        let saved;
        let own = match own {
            Some(o) => o,
            None => {
                // A shared store's outputs were read before the run started (prefetch).
                saved = self
                    .state
                    .load_outputs(id)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                &saved
            }
        };
        let parts: Vec<Arc<Visible>> = self
            .deps
            .get(id)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|d| self.closure(d))
            .filter(|c| !c.is_empty())
            .collect();
        if own.is_empty() && parts.len() == 1 {
            return Arc::clone(&parts[0]);
        }
        let mut all = Visible::new();
        for p in &parts {
            all.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if !own.is_empty() {
            all.insert(id.to_string(), own.iter().cloned().collect());
        }
        Arc::new(all)
    }
}

/// The deployments a deployment waits for directly, looking through environment nodes.
fn deployment_dependencies(graph: &Graph, i: NodeIndex) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<NodeIndex> = graph.dependencies(i).collect();
    while let Some(p) = stack.pop() {
        if !seen.insert(p) {
            continue;
        }
        match graph.node(p).kind {
            NodeKind::Deployment => out.push(graph.node(p).id.clone()),
            NodeKind::Environment => stack.extend(graph.dependencies(p)),
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::{EnvVars, Flags};
    use crate::diagnostic::Diagnostics;
    use crate::discover::{scan, Input};
    use crate::exec::outputs;

    /// a/x → a/y (sequence); env b depends on env a; b/z.
    fn graph(dir: &std::path::Path) -> Graph {
        let w = |p: &str, s: &str| {
            let p = dir.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w(
            "a/bitops.config.yaml",
            "bitops:\n  deployments:\n    x: {plugin: terraform}\n    y: {plugin: terraform}\n",
        );
        w("a/x/main.tf", "");
        w("a/y/main.tf", "");
        w(
            "b/bitops.config.yaml",
            "bitops:\n  depends_on: [a]\n  deployments:\n    z: {plugin: terraform}\n",
        );
        w("b/z/main.tf", "");
        let (repo, mut d) = scan(&Input {
            root: dir.to_path_buf(),
            flags: &Flags::default(),
            env: &EnvVars::default(),
        });
        let mut d2 = Diagnostics::default();
        let g = crate::graph::build(&repo, &mut d2).unwrap();
        d.extend(d2);
        assert!(d.is_empty());
        g
    }

    fn kv(k: &str, v: &str) -> Outputs {
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn outputs_reach_every_downstream_deployment_from_this_run_or_saved() {
        let t = tempfile::tempdir().unwrap();
        let g = graph(t.path());
        let state = t.path().join(".bitops");
        // a/x ran in an earlier run only.
        outputs::save(&state, "a/x", &kv("VPC", "vpc-1")).unwrap();
        let up = Upstream::new(&g, state);
        assert_eq!(up.inputs("a/y")["a/x"]["VPC"], "vpc-1");
        up.record("a/y", &kv("DB", "db-1"));
        let z = up.inputs("b/z");
        assert_eq!(
            z["a/x"]["VPC"], "vpc-1",
            "transitive, through the environment node"
        );
        assert_eq!(z["a/y"]["DB"], "db-1");
        assert!(up.inputs("a/x").is_empty());
    }

    #[test]
    fn this_runs_outputs_replace_saved_ones() {
        let t = tempfile::tempdir().unwrap();
        let g = graph(t.path());
        let state = t.path().join(".bitops");
        outputs::save(&state, "a/y", &kv("DB", "old")).unwrap();
        let up = Upstream::new(&g, state);
        up.record("a/y", &kv("DB", "new"));
        assert_eq!(up.inputs("b/z")["a/y"]["DB"], "new");
    }
}
