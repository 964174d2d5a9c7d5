//! Loading a repo for a command: discover, configure, build the graph, select, check.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cli::{Common, ExecArgs};
use crate::config::settings::{run_settings, EnvVars, Flags, RunSettings};
use crate::diagnostic::ConfigErrors;
use crate::discover::{find_ops_repo, scan, Input};
use crate::graph::{self, Graph, SelectOptions, Selection};
use crate::model::Repo;
use crate::plan;
use crate::plugins::step::Action;
use crate::plugins::Registry;

/// A repo read, validated and selected from: what every command works on.
pub struct Loaded {
    pub env: EnvVars,
    pub repo: Repo,
    pub graph: Graph,
    pub selection: Selection,
    pub settings: RunSettings,
    pub state_dir: PathBuf,
    /// Problems that do not stop the command (printed by [`print_warnings`]); empty with
    /// `--strict`, which made them errors.
    pub warnings: Vec<crate::diagnostic::Problem>,
    pub strict: bool,
    /// Where locks, outputs, journals, reports and history live (the local folder by default).
    pub state: crate::state::store::State,
    /// What chose a shared store (`None`: the embedded local folder).
    pub state_origin: Option<crate::state::store::choose::Origin>,
}

/// Whether selection guards (`--max-nodes`, protected environments) apply: not for `plan`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Guards {
    Check,
    Skip,
}

pub fn flags(exec: &ExecArgs) -> Flags {
    Flags {
        jobs: exec.jobs,
        fail_fast: if exec.keep_going {
            Some(false)
        } else if exec.fail_fast {
            Some(true)
        } else {
            None
        },
        timeout: exec.timeout,
        retries: exec.retries,
    }
}

/// Discover → configure → graph → select, collecting every problem before giving up.
pub fn load(
    common: &Common,
    exec: &ExecArgs,
    guards: Guards,
    env: EnvVars,
) -> Result<Loaded, ConfigErrors> {
    load_for(common, exec, guards, env, None)
}

/// [`load`] for a command that must be told what to run (`destroy`): `need_explicit` says
/// which command, for the message.
pub(super) fn load_for(
    common: &Common,
    exec: &ExecArgs,
    guards: Guards,
    env: EnvVars,
    need_explicit: Option<&str>,
) -> Result<Loaded, ConfigErrors> {
    let root = find_ops_repo(common.ops_repo.as_deref(), &env).map_err(ConfigErrors::single)?;
    // Found the BitOps-image way: BitOps refused to run without an environment there, and a
    // mounted repo is usually a real one. Keep refusing rather than deploy all of it.
    let container = common.ops_repo.is_none()
        && env.get("BITOPS_OPS_REPO").is_none_or(str::is_empty)
        && std::fs::canonicalize(crate::discover::CONTAINER_REPO).is_ok_and(|c| c == root);
    let need_explicit = match need_explicit {
        Some(cmd) => Some(format!("`bitops {cmd}`")),
        None if container => Some(format!(
            "a run in the BitOps container ({})",
            crate::discover::CONTAINER_REPO
        )),
        None => None,
    };
    let flags = flags(exec);
    let (repo, mut diags) = scan(&Input {
        root: root.clone(),
        flags: &flags,
        env: &env,
    });
    // Names that would clash as `BITOPS_OUTPUT_…` variables are refused before anything runs.
    crate::exec::outputs::check_variable_prefixes(&repo, &mut diags);
    let state_dir = common
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    graph::lint::shape(&repo, &mut diags);
    let graph = graph::build(&repo, &mut diags);
    let Some(graph) = graph else {
        // Broken dependencies: nothing will run, but the tool configs can still be checked on
        // the graph without them, so their mistakes come in this run too.
        let mut repo = repo;
        for e in &mut repo.environments {
            e.depends_on.clear();
            for d in &mut e.deployments {
                d.depends_on = Some(Vec::new());
                d.inputs.clear();
            }
        }
        let mut scratch = crate::diagnostic::Diagnostics::default();
        if let Some(g) = graph::build(&repo, &mut scratch) {
            // The user's own selection (what would have run), without `--changed-since`.
            let opts = SelectOptions {
                envs: common.envs.clone(),
                only: common.only.clone(),
                ..SelectOptions::default()
            };
            let selected = graph::select(&repo, &g, &opts, &env, &mut scratch);
            tool_config_problems(&repo, &g, &selected, &state_dir, &env, &mut diags);
        }
        return Err(diags
            .into_result()
            .expect_err("no graph means problems were recorded"));
    };
    let changed: Option<BTreeSet<String>> = match &common.changed_since {
        Some(r) => match graph::changed::changed_environments(&repo, r) {
            Ok(c) => Some(c),
            Err(p) => {
                diags.push(p);
                None
            }
        },
        None => None,
    };
    let opts = SelectOptions {
        envs: common.envs.clone(),
        only: common.only.clone(),
        with_deps: common.with_deps,
        with_dependents: common.with_dependents,
        changed,
        all: common.all,
        need_explicit,
    };
    let selection = graph::select(&repo, &graph, &opts, &env, &mut diags);
    if !diags.has_errors() {
        graph::select::check_not_empty(&repo, &graph, &selection, &opts, &mut diags);
    }
    if guards == Guards::Check {
        graph::check_guards(
            &repo,
            &graph,
            &selection,
            common.max_nodes,
            common.allow_protected,
            &mut diags,
        );
    }
    let selected_envs: BTreeSet<usize> = selection
        .deployments(&graph)
        .map(|i| graph.node(i).env)
        .collect();
    let env_sections: Vec<&crate::config::BitopsSection> = selected_envs
        .iter()
        .map(|e| &repo.environments[*e].config)
        .collect();
    let settings = run_settings(&flags, &env, &repo.config, &env_sections, &mut diags);
    let (state, state_origin) = crate::state::store::choose::resolve_for_repo(
        common.state.as_deref(),
        &env,
        &repo,
        state_dir.clone(),
        &mut diags,
    );
    if diags.has_errors() {
        tool_config_problems(&repo, &graph, &selection, &state_dir, &env, &mut diags);
    }
    let warnings = diags.take_warnings(common.strict);
    diags.into_result()?;
    Ok(Loaded {
        env,
        repo,
        graph,
        selection,
        settings,
        state_dir,
        warnings,
        strict: common.strict,
        state,
        state_origin,
    })
}

/// The repo already has problems, so nothing will run: still read every selected deployment's
/// tool config as `deploy` would (preflight does that only for a valid repo), so one run shows
/// the tool-level mistakes beside the others instead of one stage per run. Deployments whose
/// plugin is unknown were reported already and are not repeated.
fn tool_config_problems(
    repo: &Repo,
    graph: &Graph,
    selection: &Selection,
    state_dir: &std::path::Path,
    env: &EnvVars,
    diags: &mut crate::diagnostic::Diagnostics,
) {
    let used: Vec<(&str, &str)> = selection
        .deployments(graph)
        .map(|i| {
            let n = graph.node(i);
            let d = &repo.environments[n.env].deployments[n.dep.expect("deployment")];
            (d.plugin.as_str(), n.id.as_str())
        })
        .collect();
    let registry = Registry::load(repo, state_dir, used, diags);
    let mut warnings = Vec::new();
    let prepared = plan::preview::prepare_all(
        repo,
        graph,
        selection,
        &registry,
        Action::Deploy,
        &env.0,
        &mut warnings,
    );
    for w in warnings {
        diags.push(w);
    }
    let mut found: Vec<_> = prepared
        .into_iter()
        .filter_map(|(i, r)| r.err().map(|list| (i, list)))
        .collect();
    found.sort_by_key(|(i, _)| *i);
    for (_, list) in found {
        for p in list {
            if p.code != "bitops::plugin::unknown" {
                diags.push(p);
            }
        }
    }
}

/// Prints the warnings gathered so far (once, before the command's own output on stderr).
pub(super) fn print_warnings(loaded: &mut Loaded, color: bool) {
    let w = std::mem::take(&mut loaded.warnings);
    crate::report::diagnostics::print_warnings(&w, color);
}

/// Loads the plugins the selected deployments use.
pub(super) fn load_registry(loaded: &Loaded) -> (Registry, crate::diagnostic::Diagnostics) {
    let mut diags = crate::diagnostic::Diagnostics::default();
    let used: Vec<(&str, &str)> = loaded
        .selection
        .deployments(&loaded.graph)
        .map(|i| {
            let n = loaded.graph.node(i);
            let d = &loaded.repo.environments[n.env].deployments[n.dep.expect("deployment")];
            (d.plugin.as_str(), n.id.as_str())
        })
        .collect();
    let reg = Registry::load(&loaded.repo, &loaded.state_dir, used, &mut diags);
    (reg, diags)
}

/// Before anything runs: every selected deployment is prepared as it will run (plugin configs
/// resolved, tools looked up on PATH). Returns the warnings found here (the caller prints them);
/// with `--strict` they are errors.
pub(super) fn preflight(
    loaded: &Loaded,
    registry: &Registry,
    problems: crate::diagnostic::Diagnostics,
    action: Action,
) -> Result<Vec<crate::diagnostic::Problem>, crate::diagnostic::ConfigErrors> {
    let mut diags = problems;
    let mut warnings = Vec::new();
    let prepared = plan::preview::prepare_all(
        &loaded.repo,
        &loaded.graph,
        &loaded.selection,
        registry,
        action,
        &loaded.env.0,
        &mut warnings,
    );
    warnings.into_iter().for_each(|w| diags.push(w));
    plan::preview::check(&loaded.graph, &prepared, loaded.env.get("PATH"), &mut diags);
    let warnings = diags.take_warnings(loaded.strict);
    diags.into_result().map(|()| warnings)
}

/// The state folder, created if needed (mode 0700); a read-only repo needs `--state-dir`.
pub(super) fn ensure_state_dir(loaded: &Loaded) -> Result<(), crate::diagnostic::ConfigErrors> {
    crate::state::fsutil::state_dir(&loaded.state_dir).map_err(|e| {
        crate::diagnostic::ConfigErrors::single(
            crate::diagnostic::Problem::new(
                "bitops::state_dir",
                format!(
                    "cannot create the state folder {}: {e}",
                    loaded.state_dir.display()
                ),
            )
            .help("a read-only ops repo needs --state-dir DIR (or BITOPS_STATE_DIR)"),
        )
    })
}
