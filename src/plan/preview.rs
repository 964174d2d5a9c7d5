//! What each selected deployment's plugin would run, computed without running anything: shown
//! by `bitops plan`, and checked by `deploy` before the first process starts (every plugin
//! config problem and every missing tool is reported up front, all at once).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use petgraph::graph::NodeIndex;

use super::Invocation;
use crate::diagnostic::{Diagnostics, Problem};
use crate::exec::log_sink::{apply_masks, Mask};
use crate::graph::{Graph, Selection};
use crate::model::Repo;
use crate::plugins::step::{Action, Context, Prepared};
use crate::plugins::{merge_tool_configs, read_tool_config_noting, Registry};
use crate::yaml::Node;

/// How a plan writes the run folder, which does not exist yet.
pub const RUN_PLACEHOLDER: &str = "<run>";

/// `$BITOPS_KUBE_CONFIG_FILE` of a run: one file in the run folder, shared by its deployments
/// (BitOps: `.kube/config` in its temporary copy). Deploy and plan both take it from here.
pub fn kube_config_file(run_dir: &str) -> String {
    format!("{run_dir}/.kube/config")
}

/// Prepares every selected deployment as it would run (paths point into the repo itself).
/// Warnings about the tool configs read (legacy BitOps keys) are added to `warnings`.
pub fn prepare_all(
    repo: &Repo,
    graph: &Graph,
    selection: &Selection,
    registry: &Registry,
    action: Action,
    base_env: &BTreeMap<String, String>,
    warnings: &mut Vec<Problem>,
) -> HashMap<NodeIndex, Result<Prepared, Vec<Problem>>> {
    let nodes: Vec<NodeIndex> = selection.deployments(graph).collect();
    // `_default`'s tool folders, read once rather than once per deployment.
    type DefaultConfig =
        Result<Option<(Node, std::sync::Arc<crate::diagnostic::SourceFile>)>, Problem>;
    let mut defaults: HashMap<String, (DefaultConfig, bool)> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(repo.root.join(&repo.default_folder)) {
        for e in rd.flatten().filter(|e| e.path().is_dir()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let cfg = read_tool_config_noting(
                &e.path(),
                &format!("{}/{name}", repo.default_folder),
                warnings,
            );
            defaults.insert(name, (cfg, true));
        }
    }
    type Noted = (NodeIndex, Result<Prepared, Vec<Problem>>, Vec<Problem>);
    // One copy of the process environment per worker thread, not per deployment: cloning a
    // map of ~50 variables for each of 40,000 deployments was most of this function's
    // allocations. The per-deployment variables are overwritten before every use, so the map
    // a plugin sees is exactly `base_env` plus them, as if freshly cloned.
    let results: Vec<Noted> = crate::par::map_init(
        &nodes,
        || base_env.clone(),
        |vars, &i| {
            let n = graph.node(i);
            let env = &repo.environments[n.env];
            let d = &env.deployments[n.dep.expect("deployments only")];
            let mut noted = Vec::new();
            let result = (|| {
                let own = read_tool_config_noting(
                    &d.dir,
                    &format!("{}/{}", env.name, d.name),
                    &mut noted,
                )
                .map_err(|p| vec![p])?;
                let (default_config, has_default) = match defaults.get(&d.name) {
                    Some((Ok(c), _)) => (c.as_ref(), true),
                    Some((Err(p), _)) => return Err(vec![p.clone()]),
                    None => (None, false),
                };
                // Spans point into one file only when there was nothing to merge.
                let file = match (&own, default_config) {
                    (Some((_, f)), None) => Some(f.clone()),
                    (None, Some((_, f))) => Some(f.clone()),
                    _ => None,
                };
                let config =
                    merge_tool_configs(default_config.map(|(n, _)| n), own.map(|(n, _)| n));
                vars.insert("BITOPS_ENVIRONMENT".into(), env.name.clone());
                vars.insert("BITOPS_PLUGIN_NAME".into(), d.plugin.clone());
                vars.insert(
                    "BITOPS_OPSREPO_ENVIRONMENT_DIR".into(),
                    d.dir.display().to_string(),
                );
                // The run folder does not exist yet; show where things will go.
                vars.insert(
                    "BITOPS_OUTPUT_FILE".into(),
                    format!("<run>/outputs/{}__{}.env", env.name, d.name),
                );
                vars.insert(
                    "BITOPS_KUBE_CONFIG_FILE".into(),
                    kube_config_file(RUN_PLACEHOLDER),
                );
                let default_dir =
                    has_default.then(|| repo.root.join(&repo.default_folder).join(&d.name));
                let ctx = Context {
                    environment: &env.name,
                    deployment: &d.name,
                    plugin: &d.plugin,
                    tool_dir: d.dir.clone(),
                    default_dir,
                    tool_config: config.as_ref(),
                    tool_config_name: format!("{}/{}/bitops.config.yaml", env.name, d.name),
                    tool_config_file: file.as_ref(),
                    env: vars,
                    action,
                };
                registry.prepare(&ctx)
            })();
            (i, result, noted)
        },
    );
    results
        .into_iter()
        .map(|(i, mut r, w)| {
            warnings.extend(w);
            if let Ok(p) = &mut r {
                warnings.append(&mut p.warnings);
            }
            (i, r)
        })
        .collect()
}

/// The plan's view of a prepared deployment, with the environment's `logging.masks` applied:
/// a plan is printed in CI logs as much as a deploy is.
pub fn invocation(p: &Prepared, masks: &[Mask]) -> Invocation {
    let mask = |s: &str| apply_masks(masks, s);
    let mut commands: Vec<String> = p.steps.iter().map(|s| mask(&s.display())).collect();
    if let Some(why) = &p.skip {
        commands = vec![format!("(skipped: {})", mask(why))];
    }
    Invocation {
        argv: p
            .steps
            .first()
            .map(|s| s.argv.iter().map(|a| mask(a)).collect())
            .unwrap_or_default(),
        env: p
            .exports
            .iter()
            .map(|(k, v)| (k.clone(), mask(v)))
            .collect(),
        commands,
        settings: p.settings.iter().map(|s| mask(s)).collect(),
        inputs: Vec::new(),
    }
}

/// Adds a deployment's declared inputs to what the plan shows, with the producers' last
/// successful outputs from the state (the local folder or the shared store; this run's are not
/// known yet); an unknown value is shown as
/// `<env/deployment.output>`. `builtin`: the built-in plugin's name, `None` for BitOps-format.
pub fn with_inputs(
    p: &mut Prepared,
    builtin: Option<&str>,
    wires: &[crate::graph::inputs::Wire],
    state: &crate::state::store::State,
    masks: &[Mask],
) -> Result<Vec<super::InputShown>, String> {
    let mut saved: HashMap<&str, Option<crate::exec::outputs::Outputs>> = HashMap::new();
    let mut values = Vec::with_capacity(wires.len());
    let mut shown = Vec::with_capacity(wires.len());
    for w in wires {
        let outs = saved
            .entry(w.producer.as_str())
            // Unreadable (a shared store not answering) shows as not known: a plan runs nothing.
            .or_insert_with(|| state.load_outputs(&w.producer).ok().flatten());
        let value = outs
            .as_ref()
            .and_then(|o| o.iter().find(|(k, _)| *k == w.output))
            .map(|(_, v)| v.clone());
        values.push((
            w.name.clone(),
            value
                .clone()
                .unwrap_or_else(|| format!("<{}>", w.reference())),
        ));
        shown.push(super::InputShown {
            name: w.name.clone(),
            from: w.reference(),
            value: value.map(|v| apply_masks(masks, &v)),
        });
    }
    crate::plugins::inputs::apply(p, builtin, &values)?;
    Ok(shown)
}

/// Problems of prepared deployments and tools missing from PATH, naming who needs them.
pub fn check(
    graph: &Graph,
    prepared: &HashMap<NodeIndex, Result<Prepared, Vec<Problem>>>,
    path_var: Option<&str>,
    diags: &mut Diagnostics,
) {
    for r in prepared.values() {
        if let Err(problems) = r {
            for p in problems {
                diags.push(p.clone());
            }
        }
    }
    missing_tools(graph, prepared, path_var, diags);
}

/// One problem per tool missing from PATH, naming the deployments that need it (errors: the
/// caller makes them warnings for a plan, which runs nothing).
pub fn missing_tools(
    graph: &Graph,
    prepared: &HashMap<NodeIndex, Result<Prepared, Vec<Problem>>>,
    path_var: Option<&str>,
    diags: &mut Diagnostics,
) {
    let mut need: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, r) in prepared {
        if let Ok(p) = r {
            if p.skip.is_some() {
                continue;
            }
            for t in &p.tools {
                need.entry(t.clone())
                    .or_default()
                    .push(graph.node(*i).id.clone());
            }
        }
    }
    for (tool, mut users) in need {
        if find_on_path(&tool, path_var).is_none() {
            users.sort();
            let n = users.len();
            let shown = if n > 6 {
                format!("{} and {} more", users[..6].join(", "), n - 6)
            } else {
                users.join(", ")
            };
            diags.push(
                Problem::new("bitops::tool::missing", format!("`{tool}` is not on PATH; {n} deployment{} need{} it: {shown}", if n == 1 { "" } else { "s" }, if n == 1 { "s" } else { "" }))
                    .help(format!("install `{tool}` (or add its folder to PATH), or leave these deployments out with -e/--only")),
            );
        }
    }
}

/// The first executable called `name` on `PATH` (or `name` itself when it has a slash).
pub fn find_on_path(name: &str, path_var: Option<&str>) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        crate::discover::record::metadata(p)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = Path::new(name);
        return is_exec(p).then(|| p.to_path_buf());
    }
    path_var?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_exec(p))
}
