//! Commands: each turns arguments into settings, runs the stages, and maps the outcome to an
//! exit code. Loading the repo is shared by every command that reads one.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::cli::{Cli, ColorChoice, Command, Common, ExecArgs, PlanArgs, PlanFormat, RunArgs};
use crate::config::settings::{run_settings, EnvVars, Flags, RunSettings};
use crate::diagnostic::ConfigErrors;
use crate::discover::{find_ops_repo, scan, Input};
use crate::exec::events::{RunEvent, Status};
use crate::exit_code;
use crate::graph::{self, Graph, SelectOptions, Selection};
use crate::model::Repo;
use crate::plan::{self, Plan};
use crate::plugins::step::Action;
use crate::plugins::Registry;
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
    let single = single_environment(&graph, &selection);
    let selected_envs: BTreeSet<usize> = selection
        .deployments(&graph)
        .map(|i| graph.node(i).env)
        .collect();
    let env_sections: Vec<&crate::config::BitopsSection> = selected_envs
        .iter()
        .map(|e| &repo.environments[*e].config)
        .collect();
    let settings = run_settings(
        &flags,
        &env,
        &repo.config,
        single.map(|e| &repo.environments[e].config),
        &env_sections,
        &mut diags,
    );
    diags.into_result()?;
    let state_dir = common
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    Ok(Loaded {
        env,
        repo,
        graph,
        selection,
        settings,
        state_dir,
    })
}

/// The one environment a run touches, if it touches exactly one.
fn single_environment(g: &Graph, sel: &Selection) -> Option<usize> {
    let envs: BTreeSet<usize> = sel.deployments(g).map(|i| g.node(i).env).collect();
    (envs.len() == 1).then(|| *envs.iter().next().expect("one element"))
}

fn stderr_color(choice: ColorChoice, env: &EnvVars) -> bool {
    report::style::use_color(
        choice,
        std::io::stderr().is_terminal(),
        env.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Plan(args) => plan_command(&args),
        Command::Deploy(args) => run_command(&args, Action::Deploy),
        Command::Destroy(args) => run_command(&args, Action::Destroy),
        Command::Plugins(args) => plugins_command(&args),
        Command::Report(args) => report_command(&args),
        Command::Export(args) => export_command(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "bitops", &mut std::io::stdout());
            exit_code::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => exit_code::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    exit_code::INTERNAL
                }
            }
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
    if args.run {
        return dry_run(loaded, registry, args, color);
    }
    let base_env = loaded.env.0.clone();
    let prepared = if shows_commands {
        plan::preview::prepare_all(
            &loaded.repo,
            &loaded.graph,
            &loaded.selection,
            &registry,
            Action::Deploy,
            &base_env,
        )
    } else {
        Default::default()
    };
    // A plan is a validation too: a deployment that could not run is an error, not a note.
    let mut problems = crate::diagnostic::Diagnostics::default();
    let masks: Vec<Vec<crate::exec::log_sink::Mask>> = loaded
        .repo
        .environments
        .iter()
        .map(|e| {
            e.settings
                .masks
                .iter()
                .filter_map(|m| crate::exec::log_sink::Mask::new(&m.search.value, &m.replace).ok())
                .collect()
        })
        .collect();
    for (i, r) in prepared {
        match r {
            Ok(p) => {
                let masks = &masks[loaded.graph.node(i).env];
                plan.invocations
                    .insert(i, Ok(plan::preview::invocation(&p, masks)));
            }
            Err(list) => list.into_iter().for_each(|p| problems.push(p)),
        }
    }
    if let Err(e) = problems.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match args.format {
        PlanFormat::Text => out.write_all(plan::text::render(&plan, &loaded.settings).as_bytes()),
        PlanFormat::Json => plan::json::write(&plan, &mut out),
        PlanFormat::Dot => out.write_all(plan::graphviz::render_dot(&plan).as_bytes()),
        PlanFormat::Mermaid => out.write_all(plan::graphviz::render_mermaid(&plan).as_bytes()),
    };
    // A closed pipe (`bitops plan | head`) is not an error worth a message.
    let _ = written.and_then(|()| out.flush());
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
    let command = if action == Action::Destroy {
        "destroy"
    } else {
        "deploy"
    };
    // `--resume`: the selection is what the earlier run did not finish.
    let mut common = args.common.clone();
    let mut resumed: Option<crate::state::journal::Replay> = None;
    if let Some(which) = &args.resume {
        match resume_selection(&common, &env, which) {
            Ok(replay) => {
                let remaining = replay.remaining();
                if remaining.is_empty() {
                    eprintln!(
                        "bitops: run {} has nothing left to resume: every deployment succeeded",
                        replay.run_id
                    );
                    return exit_code::SUCCESS;
                }
                eprintln!(
                    "bitops: resuming run {}: {} of {} deployments left",
                    replay.run_id,
                    remaining.len(),
                    replay.deployments.len()
                );
                common.envs.clear();
                common.only = remaining;
                resumed = Some(replay);
            }
            Err(p) => {
                report::diagnostics::print(&ConfigErrors::single(p), color);
                return exit_code::CONFIG;
            }
        }
    }
    let loaded = match load(&common, &args.exec, Guards::Check, env) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    let (registry, mut diags) = load_registry(&loaded);
    let base_env = loaded.env.0.clone();
    let prepared = plan::preview::prepare_all(
        &loaded.repo,
        &loaded.graph,
        &loaded.selection,
        &registry,
        action,
        &base_env,
    );
    plan::preview::check(&loaded.graph, &prepared, loaded.env.get("PATH"), &mut diags);
    if let Err(e) = diags.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    // BitOps' validation modes: everything is checked above; show the plan, run nothing.
    if matches!(
        loaded.settings.run_mode.value.as_str(),
        "validate_config" | "settings_test"
    ) {
        let durations = crate::state::load_durations(&loaded.state_dir);
        let plan = Plan::new(&loaded.repo, &loaded.graph, &loaded.selection, &durations);
        let _ = std::io::stdout().write_all(plan::text::render(&plan, &loaded.settings).as_bytes());
        eprintln!(
            "bitops: run_mode {} ({}): configuration is valid; nothing was run",
            loaded.settings.run_mode.value, loaded.settings.run_mode.origin
        );
        return exit_code::SUCCESS;
    }
    if let Err(e) = std::fs::create_dir_all(&loaded.state_dir) {
        eprintln!(
            "error: cannot create the state folder {}: {e}\n  help: a read-only ops repo needs --state-dir DIR (or BITOPS_STATE_DIR)",
            loaded.state_dir.display()
        );
        return exit_code::CONFIG;
    }
    let config_hash = crate::state::journal::config_hash(
        loaded
            .repo
            .config_file
            .iter()
            .chain(
                loaded
                    .repo
                    .environments
                    .iter()
                    .filter_map(|e| e.config_file.as_ref()),
            )
            .map(|f| f.text.as_str()),
    );
    if let Some(r) = &resumed {
        if r.config_hash != config_hash {
            eprintln!("bitops: warning: the repo's configuration changed since run {}; resuming with the current configuration", r.run_id);
        }
    }
    let run_id = crate::state::new_run_id();
    let selected: Vec<String> = loaded
        .selection
        .deployments(&loaded.graph)
        .map(|i| loaded.graph.node(i).id.clone())
        .collect();
    let mut lock_envs: Vec<String> = loaded
        .selection
        .deployments(&loaded.graph)
        .map(|i| {
            loaded.repo.environments[loaded.graph.node(i).env]
                .name
                .clone()
        })
        .collect();
    lock_envs.sort_unstable();
    lock_envs.dedup();
    let holder = crate::state::lock::Holder {
        pid: std::process::id(),
        host: crate::state::lock::hostname(),
        started: crate::state::rfc3339(std::time::SystemTime::now()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        run_id: run_id.clone(),
    };
    let _locks = match crate::state::lock::acquire(
        &loaded.state_dir,
        &lock_envs,
        &holder,
        args.lock_timeout,
        args.break_stale_locks,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, crate::state::lock::LockError::Held { .. }) {
                eprintln!(
                    "  help: wait for that run, or pass --lock-timeout DURATION to wait for it"
                );
            }
            return exit_code::LOCKED;
        }
    };
    let durations = crate::state::load_durations(&loaded.state_dir);
    let header = crate::state::journal::Entry::Run {
        run_id: run_id.clone(),
        command: command.to_string(),
        config_hash,
        deployments: selected,
        started: crate::state::rfc3339(std::time::SystemTime::now()),
    };
    let run_dir = loaded.state_dir.join("runs").join(&run_id);
    let journal = match crate::state::journal::Journal::create(&run_dir, &header) {
        Ok(j) => j,
        Err(e) => {
            eprintln!(
                "error: cannot write the run journal in {}: {e}",
                run_dir.display()
            );
            return exit_code::INTERNAL;
        }
    };
    let options = scheduler_options(&loaded, &args.exec, loaded.settings.fail_fast.value);
    let live = live_display(&args.exec, &loaded.env, color);
    let Loaded {
        repo,
        graph,
        selection,
        state_dir,
        ..
    } = loaded;
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
    let Some(result) = execute_reported(req, &graph, &selection, live, Some(journal)) else {
        return exit_code::INTERNAL;
    };

    let deployments: Vec<(String, crate::exec::events::NodeResult)> = result
        .nodes
        .iter()
        .filter(|(_, dep, _)| *dep)
        .map(|(id, _, r)| (id.clone(), r.clone()))
        .collect();
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
    let code = exit_status(&result);
    let info = report::run_report::RunInfo::from_graph(action, &repo.root, &graph, &selection);
    report::run_report::finish_run(
        &info,
        &result,
        code,
        args.report.as_deref(),
        args.junit.as_deref(),
    );
    code
}

fn exit_status(result: &crate::exec::run::RunResult) -> u8 {
    use crate::exec::process::Sig;
    match result.signal {
        Some(Sig::Int) => return exit_code::INTERRUPTED,
        Some(Sig::Term) => return exit_code::TERMINATED,
        None => {}
    }
    if result
        .nodes
        .iter()
        .any(|(_, _, r)| r.status != Status::Succeeded)
    {
        exit_code::FAILED
    } else {
        exit_code::SUCCESS
    }
}

/// The earlier run `--resume` continues, from its journal.
fn resume_selection(
    common: &Common,
    env: &EnvVars,
    which: &str,
) -> Result<crate::state::journal::Replay, crate::diagnostic::Problem> {
    use crate::diagnostic::Problem;
    let root = find_ops_repo(common.ops_repo.as_deref(), env)?;
    let state_dir = common
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    let run_dir = crate::state::journal::find_run(&state_dir, Some(which)).map_err(|e| {
        Problem::new("bitops::resume::run", format!("--resume: {e}"))
            .help("`bitops report` lists earlier runs")
    })?;
    crate::state::journal::read(&run_dir).map_err(|e| {
        Problem::new(
            "bitops::resume::journal",
            format!(
                "--resume: cannot read the journal of {}: {e}",
                run_dir.display()
            ),
        )
    })
}

/// `export`: the graph as a CI pipeline (GitHub Actions, GitLab CI, Argo), to stdout or `-o FILE`.
fn export_command(args: &crate::cli::ExportArgs) -> u8 {
    let env = EnvVars::from_process();
    let color = stderr_color(args.common.color, &env);
    let loaded = match load(&args.common, &ExecArgs::default(), Guards::Skip, env) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    let (opts, mut notes) = crate::export::options(args, &loaded.repo.root);
    let (repo, graph, selection) = (&loaded.repo, &loaded.graph, &loaded.selection);
    let allow = args.common.allow_protected;
    notes.extend(crate::export::protected_note(repo, graph, selection, allow));
    let out = match crate::export::export(repo, graph, selection, &opts) {
        Ok(o) => o,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    notes.extend(out.notes);
    for n in &notes {
        eprintln!("note: {n}");
    }
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &out.text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return exit_code::CONFIG;
            }
        }
        None => {
            let _ = std::io::stdout().write_all(out.text.as_bytes());
        }
    }
    exit_code::SUCCESS
}

/// `bitops report`: an earlier run's summary, its HTML timeline, or the slowest deployments.
fn report_command(args: &crate::cli::ReportArgs) -> u8 {
    let env = EnvVars::from_process();
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => match find_ops_repo(args.ops_repo.as_deref(), &env) {
            Ok(root) => root.join(".bitops"),
            Err(p) => {
                report::diagnostics::print(
                    &ConfigErrors::single(p),
                    stderr_color(ColorChoice::Auto, &env),
                );
                return exit_code::CONFIG;
            }
        },
    };
    let no_color = env.get("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color =
        report::style::use_color(ColorChoice::Auto, std::io::stdout().is_terminal(), no_color);
    report::history::command(&report::history::ReportRequest {
        state_dir: &state_dir,
        run: args.run.as_deref(),
        html: args.html.as_deref(),
        slowest: args.slowest,
        color,
    })
}

/// Runs a request with the live display (and journal) consuming its events on their own
/// thread. `None` when the async runtime cannot start.
fn execute_reported(
    req: crate::exec::run::RunRequest,
    graph: &Graph,
    selection: &Selection,
    mut live: report::live::Live,
    mut journal: Option<crate::state::journal::Journal>,
) -> Option<crate::exec::run::RunResult> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let reporter = std::thread::spawn(move || {
        while let Some(ev) = rx.blocking_recv() {
            if let Some(j) = &mut journal {
                j.record(&ev);
            }
            live.event(&ev);
        }
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return None;
        }
    };
    let result = runtime.block_on(crate::exec::run::execute(req, graph, selection, tx));
    let _ = reporter.join();
    Some(result)
}

/// `bitops plan --run`: every selected deployment's own dry run, in graph order and in
/// parallel, then one table. Dry runs do not stop at the first error.
fn dry_run(loaded: Loaded, registry: Registry, args: &PlanArgs, color: bool) -> u8 {
    let base_env = loaded.env.0.clone();
    let prepared = plan::preview::prepare_all(
        &loaded.repo,
        &loaded.graph,
        &loaded.selection,
        &registry,
        Action::DryRun,
        &base_env,
    );
    let mut diags = crate::diagnostic::Diagnostics::default();
    plan::preview::check(&loaded.graph, &prepared, loaded.env.get("PATH"), &mut diags);
    if let Err(e) = diags.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    if let Err(e) = std::fs::create_dir_all(&loaded.state_dir) {
        eprintln!(
            "error: cannot create the state folder {}: {e}\n  help: pass --state-dir DIR",
            loaded.state_dir.display()
        );
        return exit_code::CONFIG;
    }
    let live = live_display(&args.exec, &loaded.env, color);
    // Dry runs report everything they can: no fail-fast.
    let options = scheduler_options(&loaded, &args.exec, false);
    let durations = crate::state::load_durations(&loaded.state_dir);
    let Loaded {
        repo,
        graph,
        selection,
        state_dir,
        ..
    } = loaded;
    let req = crate::exec::run::RunRequest {
        repo: std::sync::Arc::new(repo),
        registry: std::sync::Arc::new(registry),
        state_dir,
        run_id: crate::state::new_run_id(),
        action: Action::DryRun,
        base_env,
        options,
        in_place: args.exec.in_place,
        durations,
    };
    let Some(result) = execute_reported(req, &graph, &selection, live, None) else {
        return exit_code::INTERNAL;
    };
    let deployments: Vec<(String, crate::exec::events::NodeResult)> = result
        .nodes
        .into_iter()
        .filter(|(_, dep, _)| *dep)
        .map(|(id, _, r)| (id, r))
        .collect();
    let (table, code) = plan::dry_run::table(&deployments);
    let _ = std::io::stdout().write_all(table.as_bytes());
    match result.signal {
        Some(crate::exec::process::Sig::Int) => exit_code::INTERRUPTED,
        Some(crate::exec::process::Sig::Term) => exit_code::TERMINATED,
        None if args.detailed_exitcode => code,
        None if code == 1 => exit_code::FAILED,
        None => exit_code::SUCCESS,
    }
}

/// `bitops plugins list|install`.
fn plugins_command(args: &crate::cli::PluginsArgs) -> u8 {
    use crate::cli::PluginsAction;
    let env = EnvVars::from_process();
    let color = stderr_color(ColorChoice::Auto, &env);
    let common = match &args.action {
        PluginsAction::List(c) | PluginsAction::Install(c) => c,
    };
    let root = match find_ops_repo(common.ops_repo.as_deref(), &env) {
        Ok(r) => r,
        Err(p) => {
            report::diagnostics::print(&ConfigErrors::single(p), color);
            return exit_code::CONFIG;
        }
    };
    let (repo, diags) = scan(&Input {
        root: root.clone(),
        flags: &Flags::default(),
        env: &env,
    });
    if let Err(e) = diags.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    let state_dir = common
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    match &args.action {
        PluginsAction::List(_) => {
            let _ = std::io::stdout()
                .write_all(crate::plugins::manage::list(&repo, &state_dir).as_bytes());
            exit_code::SUCCESS
        }
        PluginsAction::Install(_) => match crate::plugins::manage::install(&repo, &state_dir) {
            Ok(done) => {
                for line in done {
                    println!("{line}");
                }
                exit_code::SUCCESS
            }
            Err(d) => {
                if let Err(e) = d.into_result() {
                    report::diagnostics::print(&e, color);
                }
                exit_code::FAILED
            }
        },
    }
}

/// The scheduler's options from settings and flags.
fn scheduler_options(
    loaded: &Loaded,
    exec: &ExecArgs,
    fail_fast: bool,
) -> crate::exec::scheduler::Options {
    crate::exec::scheduler::Options {
        jobs: loaded.settings.jobs.value,
        pools: loaded.settings.pools.clone(),
        fail_fast,
        deadline: exec.deadline,
        grace: exec.grace,
        order: crate::exec::run::order_from_env(&loaded.env),
    }
}

/// How the run is shown, decided once: flags, terminal, CI, GitHub Actions folds.
fn live_display(exec: &ExecArgs, env: &EnvVars, color: bool) -> report::live::Live {
    let is_ci = env.get("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let mode = report::live::resolve_mode(
        exec.progress,
        exec.output,
        std::io::stderr().is_terminal(),
        is_ci,
    );
    report::live::Live::new(mode, color, env.get("GITHUB_ACTIONS") == Some("true"))
}
