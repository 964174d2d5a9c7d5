//! `bitops deploy` and `bitops destroy`: locks, journal, resume, the run, its reports.

use std::io::{IsTerminal, Write};

use super::load::{
    ensure_state_dir, load_for, load_registry, preflight, print_warnings, Guards, Loaded,
};
use super::stderr_color;
use crate::cli::{Common, ExecArgs, RunArgs};
use crate::config::settings::EnvVars;
use crate::diagnostic::ConfigErrors;
use crate::discover::find_ops_repo;
use crate::exit_code;
use crate::plan::{self, Plan};
use crate::plugins::step::Action;
use crate::report;

/// `deploy` and `destroy`.
pub(super) fn run_command(args: &RunArgs, action: Action) -> u8 {
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
        match resume_selection(&common, &env, which, command) {
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
    // `destroy` tears down only what it was told to: never "everything" by default.
    let need_explicit = (action == Action::Destroy).then_some(command);
    let mut loaded = match load_for(&common, &args.exec, Guards::Check, env, need_explicit) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    print_warnings(&mut loaded, color);
    let (registry, diags) = load_registry(&loaded);
    match preflight(&loaded, &registry, diags, action) {
        Ok(warnings) => report::diagnostics::print_warnings(&warnings, color),
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    }
    let mut base_env = loaded.env.0.clone();
    if !color {
        crate::exec::plain_output::ask_for_plain_output(&mut base_env);
    }
    // BitOps' validation modes: everything is checked above; show the plan, run nothing.
    if matches!(
        loaded.settings.run_mode.value.as_str(),
        "validate_config" | "settings_test"
    ) {
        let durations = loaded.state.load_durations();
        let plan = Plan::new(&loaded.repo, &loaded.graph, &loaded.selection, &durations);
        let _ = std::io::stdout().write_all(plan::text::render(&plan, &loaded.settings).as_bytes());
        eprintln!(
            "bitops: run_mode {} ({}): configuration is valid; nothing was run",
            loaded.settings.run_mode.value, loaded.settings.run_mode.origin
        );
        return exit_code::SUCCESS;
    }
    if let Err(e) = ensure_state_dir(&loaded) {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    if let Err(code) = super::state_run::check(&loaded) {
        return code;
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
    let (leases, locks) =
        match take_locks(&loaded, &run_id, args.lock_timeout, args.break_stale_locks) {
            Ok(l) => l,
            Err(code) => return code,
        };
    let lease_watch = leases.as_ref().map(|l| std::sync::Arc::clone(&l.watch));
    let durations = loaded.state.load_durations();
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
    let mirror = loaded.state.shared.as_ref().map(|s| {
        crate::state::store::runs::JournalMirror::start(
            std::sync::Arc::clone(s),
            journal.path().to_path_buf(),
            &run_id,
        )
    });
    let options = scheduler_options(&loaded, &args.exec, loaded.settings.fail_fast.value);
    let live = live_display(&args.exec, &loaded.env, color);
    let feed = super::reporter::feed_for(&live);
    let Loaded {
        repo,
        graph,
        selection,
        state_dir,
        state,
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
        fresh: args.exec.fresh,
        durations,
        live: feed,
        state: state.clone(),
        lease: lease_watch,
    };
    let Some((result, shown)) =
        super::reporter::execute_reported(req, &graph, &selection, live, Some(journal))
    else {
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
        .filter(|(_, r)| r.status.is_success() && r.attempts > 0)
        .map(|(id, r)| (id.clone(), r.duration.as_secs_f64()))
        .collect();
    let _ = state.record_durations(&finished);
    // The run's processes are gone, its outputs, journal and history written: the locks go
    // now, beside the summary and reports (a thousand unlinks are milliseconds).
    // (Where no thread can start, the locks go with the refused closure, at once.)
    let unlocking = std::thread::Builder::new().spawn(move || drop(locks));
    let summary = report::summary::render(&report::summary::SummaryInput {
        results: &deployments,
        elapsed: result.elapsed,
        cancel: result.cancel,
        run_dir: &result.run_dir,
        work_kept: result.work_kept.as_deref(),
        color,
    });
    shown.print(summary);
    let code = exit_status(&result);
    let info = report::run_report::RunInfo::from_graph(action, &repo.root, &graph, &selection);
    for warning in report::run_report::finish_run(
        &info,
        &result,
        code,
        args.report.as_deref(),
        args.junit.as_deref(),
    ) {
        shown.print(format!("{warning}\n"));
    }
    super::state_run::finish(&state, &result, mirror, leases);
    if let Ok(unlocking) = unlocking {
        let _ = unlocking.join();
    }
    closed_exit(shown.close(result.signal.is_some()), code)
}

/// The exit code once the display is closed: a signal that came while waiting for it wins.
pub(super) fn closed_exit(closed: super::reporter::Closed, code: u8) -> u8 {
    match closed {
        super::reporter::Closed::Signal(sig) => sig.exit_code(),
        _ => code,
    }
}

/// The lock of every selected environment, for a run that uses their working folders
/// (deploy, destroy and `plan --run`); a held lock is reported and gives exit 4.
pub(super) fn take_locks(
    loaded: &Loaded,
    run_id: &str,
    wait: Option<std::time::Duration>,
    break_stale: bool,
) -> Result<
    (
        Option<crate::state::store::lease::Leases>,
        crate::state::lock::Locks,
    ),
    u8,
> {
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
    let holder =
        crate::state::lock::Holder::me(run_id, std::env::args().collect::<Vec<_>>().join(" "));
    // A shared store's leases stand for the local locks (which then cover nothing).
    let leases = super::state_run::lease(loaded, &lock_envs, &holder, wait)?;
    let locks = crate::state::lock::acquire(
        &loaded.state_dir,
        &super::state_run::local_lock_envs(loaded, &lock_envs),
        &holder,
        wait,
        break_stale,
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        if matches!(e, crate::state::lock::LockError::Held { .. }) {
            eprintln!("  help: wait for that run, or pass --lock-timeout DURATION to wait for it");
        }
        exit_code::LOCKED
    })?;
    Ok((leases, locks))
}

pub(super) fn exit_status(result: &crate::exec::run::RunResult) -> u8 {
    if let Some(sig) = result.signal {
        return sig.exit_code();
    }
    if result.nodes.iter().any(|(_, _, r)| !r.status.is_success()) {
        exit_code::FAILED
    } else {
        exit_code::SUCCESS
    }
}

/// The earlier run `--resume` continues, from its journal.
pub(super) fn resume_selection(
    common: &Common,
    env: &EnvVars,
    which: &str,
    command: &str,
) -> Result<crate::state::journal::Replay, crate::diagnostic::Problem> {
    use crate::diagnostic::Problem;
    let root = find_ops_repo(common.ops_repo.as_deref(), env)?;
    let state_dir = common
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    super::state_run::fetch_for_resume(common, env, &root, &state_dir, which)?;
    let latest = which.is_empty() || which == "last";
    let found = if latest {
        crate::state::journal::find_resumable(&state_dir, command)
    } else {
        crate::state::journal::find_run(&state_dir, Some(which))
    };
    let run_dir = found.map_err(|e| {
        Problem::new("bitops::resume::run", format!("--resume: {e}"))
            .help("`bitops report` lists earlier runs")
    })?;
    let replay = crate::state::journal::read(&run_dir).map_err(|e| {
        Problem::new(
            "bitops::resume::journal",
            format!(
                "--resume: cannot read the journal of {}: {e}",
                run_dir.display()
            ),
        )
    })?;
    // Resuming a destroy as a deploy (or the reverse) would run the other action on what is
    // left: refuse, naming the command that continues it.
    if replay.command != command {
        return Err(Problem::new(
            "bitops::resume::command",
            format!(
                "--resume: run {} was a `bitops {}` run, not `bitops {command}`",
                replay.run_id, replay.command
            ),
        )
        .help(format!(
            "continue it with `bitops {} --resume {}`",
            replay.command, replay.run_id
        )));
    }
    Ok(replay)
}

/// The scheduler's options from settings and flags.
pub(super) fn scheduler_options(
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
pub(super) fn live_display(exec: &ExecArgs, env: &EnvVars, color: bool) -> report::live::Live {
    let is_ci = env.get("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let mode = report::live::resolve_mode(
        exec.progress,
        exec.output,
        std::io::stderr().is_terminal(),
        is_ci,
    );
    report::live::Live::new(mode, color, env.get("GITHUB_ACTIONS") == Some("true"))
}
