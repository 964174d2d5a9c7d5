//! Which nodes a run covers: environment patterns, `--only`, dependency expansion, git changes,
//! and the guards (`--max-nodes`, protected environments).

use std::collections::BTreeSet;

use fixedbitset::FixedBitSet;
use globset::{Glob, GlobSetBuilder};
use petgraph::graph::NodeIndex;
use petgraph::visit::{Dfs, Reversed, Walker};

use crate::config::settings::EnvVars;
use crate::diagnostic::{did_you_mean, Diagnostics, Problem};
use crate::model::Repo;

use super::build::{Graph, NodeKind};

#[derive(Clone, Debug, Default)]
pub struct SelectOptions {
    /// `-e/--env` values (each may be a comma list of names or globs).
    pub envs: Vec<String>,
    /// `--only` node ids.
    pub only: Vec<String>,
    pub with_deps: bool,
    pub with_dependents: bool,
    /// Environments touched since a git ref (computed by `changed`); `None`: no filter.
    pub changed: Option<BTreeSet<String>>,
    /// `--all`: every environment, said explicitly.
    pub all: bool,
    /// Why this run needs an explicit selection (`destroy`, the BitOps container), if it does:
    /// without `-e`, `--only`, `--all` or `BITOPS_ENVIRONMENT` it is a usage error.
    pub need_explicit: Option<String>,
}

/// The selected nodes of a graph.
#[derive(Clone, Debug)]
pub struct Selection {
    pub nodes: FixedBitSet,
    /// Human description for reports (`-e backend-*`, `all environments`, …).
    pub description: String,
}

impl Selection {
    pub fn contains(&self, i: NodeIndex) -> bool {
        self.nodes.contains(i.index())
    }

    pub fn deployments<'g>(&'g self, g: &'g Graph) -> impl Iterator<Item = NodeIndex> + 'g {
        g.topo
            .iter()
            .copied()
            .filter(move |i| self.contains(*i) && g.node(*i).kind == NodeKind::Deployment)
    }
}

fn split_patterns(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies the selection options. Patterns that match nothing are problems.
pub fn select(
    repo: &Repo,
    g: &Graph,
    opts: &SelectOptions,
    env: &EnvVars,
    diags: &mut Diagnostics,
) -> Selection {
    let mut set = FixedBitSet::with_capacity(g.dag.node_count());
    let mut description = Vec::new();

    if !opts.only.is_empty() {
        for id in split_patterns(&opts.only) {
            match g.find(&id) {
                Some(i) => add_node(g, repo, i, &mut set),
                None => {
                    let mut p = Problem::new(
                        "bitops::select::unknown_node",
                        format!("--only `{id}` names no environment or deployment"),
                    );
                    p = match did_you_mean(&id, g.ids()) {
                        Some(s) => p.help(format!("did you mean `{s}`?")),
                        None => p.help("name a node as `environment` or `environment/deployment`; `bitops plan` lists them"),
                    };
                    diags.push(p);
                }
            }
        }
        description.push(format!("--only {}", opts.only.join(",")));
    } else {
        let (patterns, from) = if !opts.envs.is_empty() {
            (split_patterns(&opts.envs), "-e")
        } else if opts.all {
            (Vec::new(), "")
        } else if let Some(v) = env.get("BITOPS_ENVIRONMENT") {
            (split_patterns(&[v.to_string()]), "BITOPS_ENVIRONMENT")
        } else if let Some(v) = env.get("ENVIRONMENT") {
            (split_patterns(&[v.to_string()]), "ENVIRONMENT")
        } else {
            (Vec::new(), "")
        };
        // An empty variable is a mistake (an unset CI secret, `-e ENVIRONMENT=`), never
        // "everything": BitOps stopped there, and production is one of "everything".
        if !from.is_empty() && patterns.is_empty() {
            diags.push(
                Problem::new(
                    "bitops::select::empty",
                    format!("{from} is set but names no environment"),
                )
                .help(format!(
                    "set {from} to an environment name (or a glob), or unset it; to run every environment say so with --all"
                )),
            );
        } else if from.is_empty() && !opts.all {
            if let Some(why) = &opts.need_explicit {
                diags.push(
                    Problem::new(
                        "bitops::select::explicit",
                        format!("{why} needs an explicit selection"),
                    )
                    .help(format!(
                        "name what to run: -e ENV (or BITOPS_ENVIRONMENT), --only ENV/DEPLOYMENT, or --all; environments here: {}",
                        env_list(repo)
                    )),
                );
            }
        }
        let envs = if patterns.is_empty() && !from.is_empty() {
            BTreeSet::new()
        } else {
            match_envs(repo, &patterns, from, diags)
        };
        if patterns.is_empty() && !from.is_empty() {
            // Reported above; select nothing rather than everything.
        } else if patterns.is_empty() {
            description.push("all environments".to_string());
        } else {
            description.push(format!("{from} {}", patterns.join(",")));
        }
        for (ei, e) in repo.environments.iter().enumerate() {
            let changed_ok = opts.changed.as_ref().is_none_or(|c| c.contains(&e.name));
            if envs.contains(&ei) && changed_ok {
                add_node(
                    g,
                    repo,
                    g.find(&e.name).expect("every environment has a node"),
                    &mut set,
                );
            }
        }
    }
    if opts.changed.is_some() {
        description.push("changed".to_string());
    }
    if opts.with_deps {
        expand(g, &mut set, true);
        description.push("with dependencies".into());
    }
    if opts.with_dependents {
        expand(g, &mut set, false);
        description.push("with dependents".into());
    }
    complete_env_nodes(g, repo, &mut set);
    Selection {
        nodes: set,
        description: description.join(", "),
    }
}

fn env_list(repo: &Repo) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = repo.environments.iter().map(|e| e.name.as_str()).collect();
    match names.len() {
        0 => "none".into(),
        n if n > SHOWN => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
        _ => names.join(", "),
    }
}

fn match_envs(
    repo: &Repo,
    patterns: &[String],
    from: &str,
    diags: &mut Diagnostics,
) -> BTreeSet<usize> {
    if patterns.is_empty() {
        return (0..repo.environments.len()).collect();
    }
    let mut out = BTreeSet::new();
    for pat in patterns {
        let glob = match Glob::new(pat) {
            Ok(g) => g,
            Err(e) => {
                diags.push(Problem::new(
                    "bitops::select::pattern",
                    format!("{from} `{pat}` is not a valid pattern: {e}"),
                ));
                continue;
            }
        };
        let set = GlobSetBuilder::new()
            .add(glob)
            .build()
            .expect("a single valid glob builds");
        let before = out.len();
        let mut any = false;
        for (i, e) in repo.environments.iter().enumerate() {
            if set.is_match(&e.name) {
                out.insert(i);
                any = true;
            }
        }
        if !any && out.len() == before {
            let mut p = Problem::new(
                "bitops::select::no_match",
                format!("{from} `{pat}` matches no environment"),
            );
            p =
                match did_you_mean(pat, repo.environments.iter().map(|e| e.name.as_str())) {
                    Some(s) => p.help(format!("did you mean `{s}`?")),
                    None => {
                        p.help(format!(
                    "environments are the top-level folders not starting with `_` or `.`: {}",
                    repo.environments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")
                ))
                    }
                };
            diags.push(p);
        }
    }
    out
}

/// Selecting an environment brings its deployments.
fn add_node(g: &Graph, repo: &Repo, i: NodeIndex, set: &mut FixedBitSet) {
    set.insert(i.index());
    let n = g.node(i);
    if n.kind == NodeKind::Environment {
        for d in &repo.environments[n.env].deployments {
            if let Some(di) = g.find(&format!("{}/{}", n.id, d.name)) {
                set.insert(di.index());
            }
        }
    }
}

fn expand(g: &Graph, set: &mut FixedBitSet, upstream: bool) {
    let starts: Vec<NodeIndex> = set.ones().map(NodeIndex::new).collect();
    let mut seen = set.clone();
    for s in starts {
        if upstream {
            for n in Dfs::new(Reversed(&g.dag), s).iter(Reversed(&g.dag)) {
                seen.insert(n.index());
            }
        } else {
            for n in Dfs::new(&g.dag, s).iter(&g.dag) {
                seen.insert(n.index());
            }
        }
    }
    *set = seen;
}

/// An environment node is part of the run exactly when all of its deployments are.
fn complete_env_nodes(g: &Graph, repo: &Repo, set: &mut FixedBitSet) {
    for e in &repo.environments {
        let en = g.find(&e.name).expect("every environment has a node");
        let all = e.deployments.iter().all(|d| {
            g.find(&format!("{}/{}", e.name, d.name))
                .is_some_and(|i| set.contains(i.index()))
        });
        let any = set.contains(en.index())
            || e.deployments.iter().any(|d| {
                g.find(&format!("{}/{}", e.name, d.name))
                    .is_some_and(|i| set.contains(i.index()))
            });
        if all && any {
            set.insert(en.index());
        } else {
            set.set(en.index(), false);
        }
    }
}

/// Guards that refuse a run: too many deployments, protected environments.
pub fn check_guards(
    repo: &Repo,
    g: &Graph,
    sel: &Selection,
    max_nodes: Option<usize>,
    allow_protected: bool,
    diags: &mut Diagnostics,
) {
    let count = sel.deployments(g).count();
    if let Some(max) = max_nodes {
        if count > max {
            diags.push(
                Problem::new(
                    "bitops::select::too_many",
                    format!("this run selects {count} deployments, more than --max-nodes {max}"),
                )
                .help(
                    "narrow the selection with -e/--only, or raise --max-nodes if this is intended",
                ),
            );
        }
    }
    if !allow_protected {
        let protected: Vec<&str> = repo
            .environments
            .iter()
            .filter(|e| e.settings.protected)
            .filter(|e| {
                e.deployments.iter().any(|d| {
                    g.find(&format!("{}/{}", e.name, d.name))
                        .is_some_and(|i| sel.contains(i))
                })
            })
            .map(|e| e.name.as_str())
            .collect();
        if !protected.is_empty() {
            diags.push(
                Problem::new(
                    "bitops::select::protected",
                    format!(
                        "the run includes protected environments: {}",
                        protected.join(", ")
                    ),
                )
                .help("pass --allow-protected to run them, or leave them out of the selection"),
            );
        }
    }
}

/// A run that would do nothing is a mistake to report, not `OK: 0 succeeded`: bitops was run
/// in the wrong folder (or inside an environment), or the selection names only environments
/// without deployments. Nothing changed since `--changed-since` is the one quiet exception.
pub fn check_not_empty(
    repo: &Repo,
    g: &Graph,
    sel: &Selection,
    opts: &SelectOptions,
    diags: &mut Diagnostics,
) {
    if sel.deployments(g).next().is_some() || opts.changed.is_some() {
        return;
    }
    let root = repo.root.display();
    let total: usize = repo.environments.iter().map(|e| e.deployments.len()).sum();
    if total > 0 {
        diags.push(
            Problem::new(
                "bitops::select::nothing",
                format!("the selection ({}) holds no deployment", sel.description),
            )
            .help(format!(
                "environments with deployments here: {}",
                env_list_with_deployments(repo)
            )),
        );
        return;
    }
    // Tool folders at the top: this is an environment folder, not the repo.
    // (A tool folder with no environment inside is a support folder to discovery.)
    let tools: Vec<&str> = repo
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .chain(repo.support_dirs.iter().map(String::as_str))
        .filter(|n| crate::model::BUILTIN_PLUGINS.contains(n))
        .collect();
    let searched = if repo.environments.is_empty() {
        format!("no environment folders in `{root}` (an environment is a top-level folder, not starting with `_` or `.`, that holds a bitops.config.yaml or a tool folder)")
    } else {
        format!(
            "no deployments in `{root}`: its environment folders ({}) hold no tool folder (terraform/, helm/, …) and list no `bitops.deployments`",
            env_list(repo)
        )
    };
    let help = match (tools.first(), repo.root.parent()) {
        (Some(t), Some(parent)) => format!(
            "`{root}` looks like an environment folder (it holds `{t}/`): did you mean `-C {}`?",
            parent.display()
        ),
        _ => "run bitops in the ops repo's top folder, or pass it with -C DIR (BITOPS_OPS_REPO)"
            .to_string(),
    };
    diags.push(Problem::new("bitops::repo::empty", searched).help(help));
}

fn env_list_with_deployments(repo: &Repo) -> String {
    let names: Vec<&str> = repo
        .environments
        .iter()
        .filter(|e| !e.deployments.is_empty())
        .map(|e| e.name.as_str())
        .take(9)
        .collect();
    if names.len() > 8 {
        format!("{}, …", names[..8].join(", "))
    } else {
        names.join(", ")
    }
}
