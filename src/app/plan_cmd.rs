//! `bitops plan` and `bitops plan --run`.

use std::io::Write;

use super::load::{ensure_state_dir, load, load_registry, preflight, Guards, Loaded};
use super::run_cmd::{closed_exit, live_display, scheduler_options, take_locks};
use super::stderr_color;
use crate::cli::{PlanArgs, PlanFormat};
use crate::config::settings::EnvVars;
use crate::exit_code;
use crate::plan::{self, Plan};
use crate::plugins::step::Action;
use crate::plugins::Registry;
use crate::report;

/// Shows configuration errors and gives the exit code; with `--format json` stdout gets them
/// as a JSON document too.
fn config_error(e: &crate::diagnostic::ConfigErrors, color: bool, format: PlanFormat) -> u8 {
    report::diagnostics::print(e, color);
    if format == PlanFormat::Json {
        let _ = std::io::stdout().write_all(report::diagnostics::json(e).as_bytes());
    }
    exit_code::CONFIG
}

/// `--format` values that only make sense with or without `--run`.
fn format_problem(args: &PlanArgs) -> Option<crate::diagnostic::Problem> {
    use crate::diagnostic::Problem;
    match (args.run, args.format) {
        (true, PlanFormat::Dot | PlanFormat::Mermaid) => Some(
            Problem::new(
                "bitops::usage::format",
                "--format dot and --format mermaid draw the graph; they show no dry-run results",
            )
            .help("with --run use --format text, json or markdown"),
        ),
        (false, PlanFormat::Markdown) => Some(
            Problem::new(
                "bitops::usage::format",
                "--format markdown shows dry-run results: it needs --run",
            )
            .help("`bitops plan --run --format markdown`, or --format mermaid for the graph"),
        ),
        _ => None,
    }
}

pub(super) fn plan_command(args: &PlanArgs) -> u8 {
    let env = EnvVars::from_process();
    let color = stderr_color(args.common.color, &env);
    // `--fresh` deletes local state; a plan, dry run included, never changes anything.
    if args.exec.fresh {
        let p = crate::diagnostic::Problem::new(
            "bitops::usage::fresh",
            "`--fresh` empties the environments' working folders (their local state): a plan never changes anything",
        )
        .help("start clean with `bitops deploy --fresh`; `plan --run` then shows what that deploy would do");
        return config_error(
            &crate::diagnostic::ConfigErrors::single(p),
            color,
            args.format,
        );
    }
    if let Some(p) = format_problem(args) {
        return config_error(
            &crate::diagnostic::ConfigErrors::single(p),
            color,
            args.format,
        );
    }
    // The plan cache: only for the plan itself (`--run` runs tools), never when git decides
    // what is selected. A hit has printed the output already.
    let mut cache = match args.run || args.common.changed_since.is_some() {
        true => None,
        false => match plan::cache::open(
            args.common.ops_repo.as_deref(),
            args.common.state_dir.as_deref(),
            &env,
            args.no_cache,
        ) {
            plan::cache::Lookup::Hit(code) => return code,
            plan::cache::Lookup::Miss(session) => Some(session),
            plan::cache::Lookup::Off => None,
        },
    };
    let mut loaded = match load(&args.common, &args.exec, Guards::Skip, env) {
        Ok(l) => l,
        Err(e) => return config_error(&e, color, args.format),
    };
    let load_warnings = std::mem::take(&mut loaded.warnings);
    plan::cache::Session::stderr(
        cache.as_deref_mut(),
        &report::diagnostics::render_warnings(&load_warnings, color),
    );
    let durations = loaded.state.load_durations();
    let mut plan = Plan::new(&loaded.repo, &loaded.graph, &loaded.selection, &durations);
    let (registry, problems) = load_registry(&loaded);
    if let Err(e) = problems.into_result() {
        return config_error(&e, color, args.format);
    }
    // Graph pictures show no commands: don't read every tool config for them.
    let shows_commands = matches!(args.format, PlanFormat::Text | PlanFormat::Json);
    if args.run {
        return dry_run(loaded, registry, args, color);
    }
    let base_env = loaded.env.0.clone();
    let mut warnings = Vec::new();
    let prepared = if shows_commands {
        plan::preview::prepare_all(
            &loaded.repo,
            &loaded.graph,
            &loaded.selection,
            &registry,
            Action::Deploy,
            &base_env,
            &mut warnings,
        )
    } else {
        Default::default()
    };
    // A plan is a validation too: a deployment that could not run is an error, not a note.
    let mut problems = crate::diagnostic::Diagnostics::default();
    warnings.into_iter().for_each(|w| problems.push(w));
    let masks: Vec<Vec<crate::exec::log_sink::Mask>> = loaded
        .repo
        .environments
        .iter()
        .map(|e| e.settings.masks.iter().map(|m| m.mask.clone()).collect())
        .collect();
    // A plan runs nothing, so a missing tool is worth knowing, not a reason to refuse.
    let mut tools = crate::diagnostic::Diagnostics::default();
    plan::preview::missing_tools(&loaded.graph, &prepared, loaded.env.get("PATH"), &mut tools);
    for p in tools.problems() {
        let mut p = p.clone().warning();
        p.help = Some(format!(
            "{}; `bitops deploy` refuses to start without it",
            p.help.unwrap_or_default()
        ));
        problems.push(p);
    }
    for (i, r) in prepared {
        match r {
            Ok(mut p) => {
                let masks = &masks[loaded.graph.node(i).env];
                let wires = loaded.graph.inputs.get(&i).map(Vec::as_slice);
                let mut shown = Vec::new();
                if let Some(wires) = wires {
                    let n = loaded.graph.node(i);
                    let plugin = &loaded.repo.environments[n.env].deployments
                        [n.dep.expect("deployment")]
                    .plugin;
                    let builtin = registry
                        .plugin_dir(plugin)
                        .is_none()
                        .then_some(plugin.as_str());
                    match plan::preview::with_inputs(&mut p, builtin, wires, &loaded.state, masks) {
                        Ok(s) => shown = s,
                        Err(e) => {
                            plan.invocations.insert(i, Err(format!("inputs: {e}")));
                            continue;
                        }
                    }
                }
                let mut inv = plan::preview::invocation(&p, masks);
                inv.inputs = shown;
                plan.invocations.insert(i, Ok(inv));
            }
            Err(list) => list.into_iter().for_each(|p| problems.push(p)),
        }
    }
    let warnings = problems.take_warnings(loaded.strict);
    if let Err(e) = problems.into_result() {
        return config_error(&e, color, args.format);
    }
    plan::cache::Session::stderr(
        cache.as_deref_mut(),
        &report::diagnostics::render_warnings(&warnings, color),
    );
    // A plan of 40,000 deployments is tens of MB: write it in large chunks (copied into the
    // cache file as it goes).
    let tee = plan::cache::Tee {
        out: std::io::stdout().lock(),
        copy: cache.as_mut().and_then(|c| c.stdout_copy()),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tee);
    let written = match args.format {
        PlanFormat::Text => out.write_all(plan::text::render(&plan, &loaded.settings).as_bytes()),
        PlanFormat::Json => plan::json::write(&plan, &mut out),
        PlanFormat::Dot => out.write_all(plan::graphviz::render_dot(&plan).as_bytes()),
        PlanFormat::Mermaid => out.write_all(plan::graphviz::render_mermaid(&plan).as_bytes()),
        PlanFormat::Markdown => unreachable!("refused without --run above"),
    };
    // Which shared state store a run would use (text only: the JSON format is versioned; with
    // the embedded local folder the plan reads as it always did).
    let written = written.and_then(|()| match (&args.format, &loaded.state_origin) {
        (PlanFormat::Text, Some(origin)) => writeln!(
            out,
            "\nState store: {} (from {origin})",
            loaded.state.describe()
        ),
        _ => Ok(()),
    });
    // A closed pipe (`bitops plan | head`) is not an error worth a message; the cache keeps
    // only a plan printed whole.
    let printed = written.and_then(|()| out.flush()).is_ok();
    drop(out);
    if let Some(cache) = cache {
        if printed {
            (*cache).commit(exit_code::SUCCESS);
        }
    }
    // The process ends here: freeing hundreds of thousands of small allocations one by one
    // (repo, graph, plan) took a tenth of a large plan's time and frees nothing the exit does not.
    // Only plain data is left undropped; the state store (which may hold leases) drops as usual.
    std::mem::forget(plan);
    let Loaded {
        repo,
        graph,
        selection,
        ..
    } = loaded;
    std::mem::forget(repo);
    std::mem::forget(graph);
    std::mem::forget(selection);
    exit_code::SUCCESS
}

/// `bitops plan --run`: every selected deployment's own dry run, in graph order and in
/// parallel, then one table (or JSON, or Markdown). Dry runs do not stop at the first error.
/// The run keeps a report like a deploy does, so `bitops report` shows it.
pub(super) fn dry_run(loaded: Loaded, registry: Registry, args: &PlanArgs, color: bool) -> u8 {
    let mut base_env = loaded.env.0.clone();
    if !color {
        crate::exec::plain_output::ask_for_plain_output(&mut base_env);
    }
    match preflight(&loaded, &registry, Default::default(), Action::DryRun) {
        Ok(warnings) => report::diagnostics::print_warnings(&warnings, color),
        Err(e) => return config_error(&e, color, args.format),
    }
    if let Err(e) = ensure_state_dir(&loaded) {
        return config_error(&e, color, args.format);
    }
    // A dry run uses the environments' persistent working folders (their local state): it
    // holds their locks, so it never runs beside a deploy or destroy of the same environment.
    let run_id = crate::state::new_run_id();
    let _locks = match take_locks(&loaded, &run_id, None, false) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let live = live_display(&args.exec, &loaded.env, color);
    let feed = super::reporter::feed_for(&live);
    // Dry runs report everything they can: no fail-fast.
    let options = scheduler_options(&loaded, &args.exec, false);
    let durations = loaded.state.load_durations();
    let step_summary = (loaded.env.get("GITHUB_ACTIONS") == Some("true"))
        .then(|| {
            loaded
                .env
                .get("GITHUB_STEP_SUMMARY")
                .map(std::path::PathBuf::from)
        })
        .flatten()
        .filter(|p| !p.as_os_str().is_empty());
    let Loaded {
        repo,
        graph,
        selection,
        state_dir,
        state,
        ..
    } = loaded;
    let root = repo.root.clone();
    let req = crate::exec::run::RunRequest {
        repo: std::sync::Arc::new(repo),
        registry: std::sync::Arc::new(registry),
        state_dir,
        run_id,
        action: Action::DryRun,
        base_env,
        options,
        in_place: args.exec.in_place,
        fresh: args.exec.fresh,
        durations,
        live: feed,
        // Dry runs read saved outputs (from a shared store too) and keep none.
        state,
        lease: None,
    };
    let Some((result, shown)) =
        super::reporter::execute_reported(req, &graph, &selection, live, None)
    else {
        return exit_code::INTERNAL;
    };
    let deployments: Vec<(String, crate::exec::events::NodeResult)> = result
        .nodes
        .iter()
        .filter(|(_, dep, _)| *dep)
        .map(|(id, _, r)| (id.clone(), r.clone()))
        .collect();
    let detailed = plan::dry_run_json::detailed_code(&deployments);
    let code = match result.signal {
        Some(sig) => sig.exit_code(),
        None if args.detailed_exitcode => detailed,
        None if detailed == 1 => exit_code::FAILED,
        None => exit_code::SUCCESS,
    };
    let info = report::run_report::RunInfo::from_graph(Action::DryRun, &root, &graph, &selection);
    for warning in report::run_report::finish_run(&info, &result, code, None, None) {
        shown.print(format!("{warning}\n"));
    }
    let markdown = plan::dry_run_markdown::render(&deployments);
    if let Some(path) = step_summary {
        if let Err(e) = append(&path, &markdown) {
            shown.print(format!(
                "warning: cannot append to $GITHUB_STEP_SUMMARY ({}): {e}\n",
                path.display()
            ));
        }
    }
    // The display first: on a terminal the table must not land in the middle of it.
    let code = closed_exit(shown.close(result.signal.is_some()), code);
    let text = match args.format {
        PlanFormat::Json => plan::dry_run_json::render(&result.run_id, &deployments, code),
        PlanFormat::Markdown => markdown,
        _ => plan::dry_run::table(&deployments).0,
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    code
}

/// Appends to a file (`$GITHUB_STEP_SUMMARY` is shared by every step of the job).
fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}
