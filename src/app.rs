//! Commands: each turns arguments into settings, runs the stages, and maps the outcome to an
//! exit code. Loading the repo is shared by every command that reads one.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::cli::{Cli, ColorChoice, Command, Common, ExecArgs, PlanArgs, PlanFormat, RunArgs};
use crate::exec::events::{RunEvent, Status};
use crate::plugins::step::Action;
use crate::plugins::Registry;
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
        Command::Deploy(args) => run_command(&args, Action::Deploy),
        Command::Destroy(args) => run_command(&args, Action::Destroy),
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
    let durations = crate::state::load_durations(&loaded.state_dir);
    let mut plan = Plan::new(&loaded.repo, &loaded.graph, &loaded.selection, &durations);
    let (registry, problems) = load_registry(&loaded);
    if let Err(e) = problems.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    // Graph pictures show no commands: don't read every tool config for them.
    let shows_commands = matches!(args.format, PlanFormat::Text | PlanFormat::Json);
    let base_env = loaded.env.0.clone();
    let prepared = if shows_commands {
        plan::preview::prepare_all(&loaded.repo, &loaded.graph, &loaded.selection, &registry, Action::Deploy, &base_env)
    } else {
        Default::default()
    };
    for (i, r) in prepared {
        let v = match r {
            Ok(p) => Ok(plan::preview::invocation(&p)),
            Err(problems) => Err(problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")),
        };
        plan.invocations.insert(i, v);
    }
    let text = match args.format {
        PlanFormat::Text => plan::text::render(&plan, &loaded.settings),
        PlanFormat::Json => plan::json::render(&plan),
        PlanFormat::Dot => plan::graphviz::render_dot(&plan),
        PlanFormat::Mermaid => plan::graphviz::render_mermaid(&plan),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit_code::SUCCESS
}

/// Loads the plugins the selected deployments use.
fn load_registry(loaded: &Loaded) -> (Registry, crate::diagnostic::Diagnostics) {
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

/// `deploy` and `destroy`.
fn run_command(args: &RunArgs, action: Action) -> u8 {
    let env = EnvVars::from_process();
    let color = stderr_color(args.common.color, &env);
    let loaded = match load(&args.common, &args.exec, Guards::Check, env) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    let (registry, mut diags) = load_registry(&loaded);
    let base_env = loaded.env.0.clone();
    let prepared = plan::preview::prepare_all(&loaded.repo, &loaded.graph, &loaded.selection, &registry, action, &base_env);
    plan::preview::check(&loaded.graph, &prepared, loaded.env.get("PATH"), &mut diags);
    if let Err(e) = diags.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    if let Err(e) = std::fs::create_dir_all(&loaded.state_dir) {
        eprintln!(
            "error: cannot create the state folder {}: {e}\n  help: a read-only ops repo needs --state-dir DIR (or BITOPS_STATE_DIR)",
            loaded.state_dir.display()
        );
        return exit_code::CONFIG;
    }
    let durations = crate::state::load_durations(&loaded.state_dir);
    let run_id = crate::state::new_run_id();
    let options = crate::exec::scheduler::Options {
        jobs: loaded.settings.jobs.value,
        pools: loaded.settings.pools.clone(),
        fail_fast: loaded.settings.fail_fast.value,
        deadline: args.exec.deadline,
        grace: args.exec.grace,
        order: crate::exec::run::order_from_env(&loaded.env),
    };
    let is_ci = loaded.env.get("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let mode = report::live::resolve_mode(args.exec.progress, args.exec.output, std::io::stderr().is_terminal(), is_ci);
    let github = loaded.env.get("GITHUB_ACTIONS") == Some("true");
    let Loaded { repo, graph, selection, state_dir, .. } = loaded;
    let repo = std::sync::Arc::new(repo);
    let req = crate::exec::run::RunRequest {
        repo: std::sync::Arc::clone(&repo),
        registry: std::sync::Arc::new(registry),
        state_dir: state_dir.clone(),
        run_id,
        action,
        base_env,
        options,
        in_place: args.exec.in_place,
        durations,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let reporter = std::thread::spawn(move || {
        let mut live = report::live::Live::new(mode, color, github);
        while let Some(ev) = rx.blocking_recv() {
            live.event(&ev);
        }
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code::INTERNAL;
        }
    };
    let result = runtime.block_on(crate::exec::run::execute(req, &graph, &selection, tx));
    let _ = reporter.join();

    let deployments: Vec<(String, crate::exec::events::NodeResult)> =
        result.nodes.iter().filter(|(_, dep, _)| *dep).map(|(id, _, r)| (id.clone(), r.clone())).collect();
    let finished: Vec<(String, f64)> = deployments
        .iter()
        .filter(|(_, r)| r.status == Status::Succeeded && r.attempts > 0)
        .map(|(id, r)| (id.clone(), r.duration.as_secs_f64()))
        .collect();
    let _ = crate::state::record_durations(&state_dir, &finished);
    let summary = report::summary::render(&report::summary::SummaryInput {
        results: &deployments,
        elapsed: result.elapsed,
        cancel: result.cancel,
        run_dir: &result.run_dir,
        work_kept: result.work_kept.as_deref(),
        color,
    });
    let _ = std::io::stderr().write_all(summary.as_bytes());
    exit_status(&result)
}

fn exit_status(result: &crate::exec::run::RunResult) -> u8 {
    use crate::exec::process::Sig;
    match result.signal {
        Some(Sig::Int) => return exit_code::INTERRUPTED,
        Some(Sig::Term) => return exit_code::TERMINATED,
        None => {}
    }
    if result.nodes.iter().any(|(_, _, r)| r.status != Status::Succeeded) {
        exit_code::FAILED
    } else {
        exit_code::SUCCESS
    }
}
