//! `bitops plan --format json`: a versioned document (see docs/plan-json.md).

use serde::Serialize;

use super::{Invocation, Plan};
use crate::graph::NodeKind;

pub const PLAN_FORMAT_VERSION: u32 = 1;

/// The document's shape; [`write`] produces it piecewise.
#[cfg(test)]
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
///
/// The bytes are exactly `serde_json::to_writer_pretty` of [`Doc`] (a test compares them), but
/// the nodes, nine tenths of the document, are serialized on every core in chunks: each node is
/// pretty-printed on its own by a formatter set to the depth it has in the document, then the
/// chunk is written in order.
pub fn write(plan: &Plan<'_>, w: &mut impl std::io::Write) -> std::io::Result<()> {
    use rayon::prelude::*;
    let head = Head {
        version: PLAN_FORMAT_VERSION,
        ops_repo: plan.repo.root.display().to_string(),
        selection: &plan.selection.description,
    };
    let head = serde_json::to_vec_pretty(&head)?;
    // `{ … "selection": "…"\n}` without its closing `\n}`: the document goes on.
    w.write_all(&head[..head.len() - 2])?;
    w.write_all(b",\n  \"nodes\": [")?;
    const CHUNK: usize = 4096;
    for (c, chunk) in plan.order.chunks(CHUNK).enumerate() {
        let rendered: Vec<std::io::Result<Vec<u8>>> = chunk
            .par_iter()
            .map(|&i| {
                let mut json = Vec::with_capacity(1024);
                let mut ser = serde_json::Serializer::with_formatter(&mut json, nested());
                node_out(plan, i).serialize(&mut ser)?;
                Ok(json)
            })
            .collect();
        for (k, r) in rendered.into_iter().enumerate() {
            if c > 0 || k > 0 {
                w.write_all(b",")?;
            }
            w.write_all(b"\n")?;
            w.write_all(NODE_INDENT)?;
            w.write_all(&r?)?;
        }
    }
    if !plan.order.is_empty() {
        w.write_all(b"\n  ")?;
    }
    w.write_all(b"]")?;
    let ids = |v: &[petgraph::graph::NodeIndex]| -> Vec<&str> {
        v.iter().map(|i| plan.graph.node(*i).id.as_str()).collect()
    };
    let tail = Tail {
        waves: plan.waves.iter().map(|w| ids(w)).collect(),
        critical_path: ids(&plan.critical_path),
    };
    let tail = serde_json::to_vec_pretty(&tail)?;
    // `{\n  "waves": …}` continues the document after its opening `{`.
    w.write_all(b",")?;
    w.write_all(&tail[1..])?;
    w.write_all(b"\n")
}

/// Where a node sits in the document: inside the top-level object's `nodes` array.
const NODE_INDENT: &[u8] = b"    ";

/// A pretty printer already inside the document's object and its `nodes` array, so a node
/// serialized on its own has the indentation it has in the whole document.
fn nested() -> serde_json::ser::PrettyFormatter<'static> {
    use serde_json::ser::Formatter;
    let mut f = serde_json::ser::PrettyFormatter::new();
    let mut nowhere = std::io::sink();
    // Writes to a sink cannot fail; only the depth they leave behind matters.
    let _ = f.begin_object(&mut nowhere);
    let _ = f.begin_array(&mut nowhere);
    f
}

/// The fields of [`Doc`] before `nodes`.
#[derive(Serialize)]
struct Head<'a> {
    version: u32,
    ops_repo: String,
    selection: &'a str,
}

/// The fields of [`Doc`] after `nodes`.
#[derive(Serialize)]
struct Tail<'a> {
    waves: Vec<Vec<&'a str>>,
    critical_path: Vec<&'a str>,
}

fn node_out<'a>(plan: &'a Plan<'_>, i: petgraph::graph::NodeIndex) -> NodeOut<'a> {
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
}

/// The document as one `serde_json::to_writer_pretty` call: what [`write`] must equal.
#[cfg(test)]
pub(crate) fn write_reference(plan: &Plan<'_>, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let ids = |v: &[petgraph::graph::NodeIndex]| -> Vec<&str> {
        v.iter().map(|i| plan.graph.node(*i).id.as_str()).collect()
    };
    let doc = Doc {
        version: PLAN_FORMAT_VERSION,
        ops_repo: plan.repo.root.display().to_string(),
        selection: &plan.selection.description,
        nodes: plan.order.iter().map(|&i| node_out(plan, i)).collect(),
        waves: plan.waves.iter().map(|w| ids(w)).collect(),
        critical_path: ids(&plan.critical_path),
    };
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
}
