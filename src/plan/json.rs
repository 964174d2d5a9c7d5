//! `bitops plan --format json`: a versioned document (see docs/plan-json.md).

use serde::Serialize;

use super::{Invocation, Plan};
use crate::graph::NodeKind;

pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    ops_repo: String,
    selection: &'a str,
    nodes: Vec<NodeOut<'a>>,
    waves: Vec<Vec<&'a str>>,
    critical_path: Vec<&'a str>,
}

#[derive(Serialize)]
struct NodeOut<'a> {
    id: &'a str,
    kind: &'static str,
    environment: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<&'a str>,
    depends_on: Vec<&'a str>,
    /// `depends_on` with each edge's kind: `success` (must succeed) or `order` (must finish).
    dependencies: Vec<Dependency<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hooks: Option<Hooks<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invocation: Option<&'a Invocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct Dependency<'a> {
    id: &'a str,
    kind: &'static str,
}

#[derive(Serialize)]
struct Hooks<'a> {
    before: &'a [String],
    after: &'a [String],
}

pub fn render(plan: &Plan<'_>) -> String {
    let mut out = Vec::new();
    write(plan, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Streams the document to `w` (a plan of 50,000 nodes is ~100 MB of JSON: no copy in memory).
pub fn write(plan: &Plan<'_>, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let ids = |v: &[petgraph::graph::NodeIndex]| -> Vec<&str> {
        v.iter().map(|i| plan.graph.node(*i).id.as_str()).collect()
    };
    let nodes = plan
        .order
        .iter()
        .map(|&i| {
            let n = plan.graph.node(i);
            let env = plan.environment(i);
            let dep = plan.deployment(i);
            let inv = plan.invocations.get(&i);
            NodeOut {
                id: &n.id,
                kind: match n.kind {
                    NodeKind::Environment => "environment",
                    NodeKind::Deployment => "deployment",
                },
                environment: &env.name,
                deployment: dep.map(|d| d.name.as_str()),
                plugin: dep.map(|d| d.plugin.as_str()),
                depends_on: plan.depends_on(i),
                dependencies: plan
                    .dependencies(i)
                    .into_iter()
                    .map(|(id, k)| Dependency {
                        id,
                        kind: k.as_str(),
                    })
                    .collect(),
                folder: dep.map(|d| format!("{}/{}", env.name, d.name)),
                timeout_secs: dep.and_then(|d| d.timeout.value).map(|t| t.as_secs_f64()),
                retries: dep.map(|d| d.retries.value),
                pool: dep.and_then(|d| d.pool.as_ref()).map(|p| p.value.as_str()),
                hooks: dep.map(|d| Hooks {
                    before: &d.hooks.before,
                    after: &d.hooks.after,
                }),
                protected: (n.kind == NodeKind::Environment).then_some(env.settings.protected),
                invocation: inv.and_then(|r| r.as_ref().ok()),
                error: inv.and_then(|r| r.as_ref().err()).map(String::as_str),
            }
        })
        .collect();
    let doc = Doc {
        version: PLAN_FORMAT_VERSION,
        ops_repo: plan.repo.root.display().to_string(),
        selection: &plan.selection.description,
        nodes,
        waves: plan.waves.iter().map(|w| ids(w)).collect(),
        critical_path: ids(&plan.critical_path),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
}
