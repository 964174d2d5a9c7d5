//! Commands: each turns arguments into settings, runs the stages, and maps the outcome to an
//! exit code. Loading the repo is shared by every command that reads one.

use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::cli::{Cli, ColorChoice, Command, Common, ExecArgs, PlanArgs, PlanFormat};
use crate::config::settings::{run_settings, EnvVars, Flags, RunSettings};
use crate::diagnostic::ConfigErrors;
use crate::discover::{find_ops_repo, scan, Input};
use crate::exit_code;
use crate::graph::{self, Graph, SelectOptions, Selection};
use crate::model::Repo;
use crate::plan::{self, Plan};
use crate::report;

/// A repo read, validated and selected from: what every command works on.
pub struct Loaded {
    pub env: EnvVars,
    pub repo: Repo,
    pub graph: Graph,
    pub selection: Selection,
    pub settings: RunSettings,
    pub state_dir: PathBuf,
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
pub fn load(common: &Common, exec: &ExecArgs, guards: Guards, env: EnvVars) -> Result<Loaded, ConfigErrors> {
    let root = find_ops_repo(common.ops_repo.as_deref(), &env).map_err(ConfigErrors::single)?;
    let flags = flags(exec);
    let (repo, mut diags) = scan(&Input { root: root.clone(), flags: &flags, env: &env });
    let graph = graph::build(&repo, &mut diags);
    let Some(graph) = graph else {
        return Err(diags.into_result().expect_err("no graph means problems were recorded"));
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
        graph::check_guards(&repo, &graph, &selection, common.max_nodes, common.allow_protected, &mut diags);
    }
    let single = single_environment(&graph, &selection);
    let settings = run_settings(&flags, &env, &repo.config, single.map(|e| &repo.environments[e].config), &mut diags);
    diags.into_result()?;
    let state_dir = common.state_dir.clone().unwrap_or_else(|| root.join(".bitops"));
    Ok(Loaded { env, repo, graph, selection, settings, state_dir })
}

/// The one environment a run touches, if it touches exactly one.
fn single_environment(g: &Graph, sel: &Selection) -> Option<usize> {
    let envs: BTreeSet<usize> = sel.deployments(g).map(|i| g.node(i).env).collect();
    (envs.len() == 1).then(|| *envs.iter().next().expect("one element"))
}

fn stderr_color(choice: ColorChoice, env: &EnvVars) -> bool {
    report::style::use_color(choice, std::io::stderr().is_terminal(), env.get("NO_COLOR").is_some_and(|v| !v.is_empty()))
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Plan(args) => plan_command(&args),
        _ => {
            eprintln!("error: this command is not available yet");
            exit_code::INTERNAL
        }
    }
}

fn plan_command(args: &PlanArgs) -> u8 {
    let env = EnvVars::from_process();
    let color = stderr_color(args.common.color, &env);
    let loaded = match load(&args.common, &args.exec, Guards::Skip, env) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    let durations: HashMap<String, f64> = HashMap::new();
    let plan = Plan::new(&loaded.repo, &loaded.graph, &loaded.selection, &durations);
    let text = match args.format {
        PlanFormat::Text => plan::text::render(&plan, &loaded.settings),
        PlanFormat::Json => plan::json::render(&plan),
        PlanFormat::Dot => plan::graphviz::render_dot(&plan),
        PlanFormat::Mermaid => plan::graphviz::render_mermaid(&plan),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit_code::SUCCESS
}
