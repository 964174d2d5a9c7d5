//! `bitops plan --format dot|mermaid`: the selected graph for Graphviz or a Markdown page.

use std::fmt::Write;

use super::Plan;
use crate::graph::{EdgeKind, NodeKind};

pub fn render_dot(plan: &Plan<'_>) -> String {
    let critical: std::collections::HashSet<_> = plan.critical_path.iter().copied().collect();
    let mut out = String::from(
        "digraph bitops {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n",
    );
    for &i in &plan.order {
        let n = plan.graph.node(i);
        let style = match n.kind {
            NodeKind::Environment => ", shape=ellipse, style=dashed",
            NodeKind::Deployment if critical.contains(&i) => ", color=red, penwidth=2",
            NodeKind::Deployment => "",
        };
        let label = match plan.deployment(i) {
            Some(d) => format!("{}\\n({})", n.id, d.plugin),
            None => n.id.clone(),
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\"{style}];",
            escape(&n.id),
            escape_label(&label)
        );
    }
    for &i in &plan.order {
        for (dep, kind) in plan.dependencies(i) {
            // An order edge (finish, not succeed) is drawn dashed.
            let style = match kind {
                EdgeKind::Order => " [style=dashed]",
                EdgeKind::Success => "",
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\"{style};",
                escape(dep),
                escape(&plan.graph.node(i).id)
            );
        }
    }
    out.push_str("}\n");
    out
}

pub fn render_mermaid(plan: &Plan<'_>) -> String {
    let mut out = String::from("flowchart LR\n");
    let key = |i: petgraph::graph::NodeIndex| format!("n{}", i.index());
    for &i in &plan.order {
        let n = plan.graph.node(i);
        let text = n.id.replace('"', "'");
        let _ = match n.kind {
            NodeKind::Environment => writeln!(out, "  {}([\"{text}\"])", key(i)),
            NodeKind::Deployment => writeln!(out, "  {}[\"{text}\"]", key(i)),
        };
    }
    for &i in &plan.order {
        for (p, kind) in plan
            .graph
            .selected_dependency_kinds(i, |x| plan.selection.contains(x))
        {
            let arrow = match kind {
                EdgeKind::Order => "-.->",
                EdgeKind::Success => "-->",
            };
            let _ = writeln!(out, "  {} {arrow} {}", key(p), key(i));
        }
    }
    if !plan.critical_path.is_empty() {
        let list: Vec<String> = plan.critical_path.iter().map(|i| key(*i)).collect();
        let _ = writeln!(
            out,
            "  classDef critical stroke:#d00,stroke-width:3px\n  class {} critical",
            list.join(",")
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn escape_label(s: &str) -> String {
    s.replace('"', "\\\"")
}
