//! Loading a repo for a command: discover, configure, build the graph, select, check.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cli::{Common, ExecArgs};
use crate::config::settings::{run_settings, EnvVars, Flags, RunSettings};
use crate::diagnostic::ConfigErrors;
use crate::discover::{find_ops_repo, scan, Input};
use crate::graph::{self, Graph, SelectOptions, Selection};
use crate::model::Repo;
use crate::plugins::step::Action;
use crate::plugins::Registry;
use crate::{exit_code, plan, report};

/// A repo read, validated and selected from: what every command works on.
pub struct Loaded {
    pub env: EnvVars,
    pub repo: Repo,
    pub graph: Graph,
    pub selection: Selection,
    pub settings: RunSettings,
    pub state_dir: PathBuf,
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
    let root = find_ops_repo(common.ops_repo.as_deref(), &env).map_err(ConfigErrors::single)?;
    let flags = flags(exec);
    let (repo, mut diags) = scan(&Input {
        root: root.clone(),
        flags: &flags,
        env: &env,
    });
    let graph = graph::build(&repo, &mut diags);
    let Some(graph) = graph else {
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
    };
    let selection = graph::select(&repo, &graph, &opts, &env, &mut diags);
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
    let state_dir = common
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    let (state, state_origin) = crate::state::store::choose::resolve_for_repo(
        common.state.as_deref(),
        &env,
        &repo,
        state_dir.clone(),
        &mut diags,
    );
    diags.into_result()?;
    Ok(Loaded {
        env,
        repo,
        graph,
        selection,
        settings,
        state_dir,
        state,
        state_origin,
    })
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
/// resolved, tools looked up on PATH); every problem is printed and the command exits 2.
pub(super) fn preflight(
    loaded: &Loaded,
    registry: &Registry,
    problems: crate::diagnostic::Diagnostics,
    action: Action,
    color: bool,
) -> Result<(), u8> {
    let mut diags = problems;
    let prepared = plan::preview::prepare_all(
        &loaded.repo,
        &loaded.graph,
        &loaded.selection,
        registry,
        action,
        &loaded.env.0,
    );
    plan::preview::check(&loaded.graph, &prepared, loaded.env.get("PATH"), &mut diags);
    diags.into_result().map_err(|e| {
        report::diagnostics::print(&e, color);
        exit_code::CONFIG
    })
}

/// The state folder, created if needed; a read-only repo needs `--state-dir`.
pub(super) fn ensure_state_dir(loaded: &Loaded) -> Result<(), u8> {
    std::fs::create_dir_all(&loaded.state_dir).map_err(|e| {
        eprintln!(
            "error: cannot create the state folder {}: {e}\n  help: a read-only ops repo needs --state-dir DIR (or BITOPS_STATE_DIR)",
            loaded.state_dir.display()
        );
        exit_code::CONFIG
    })
}
