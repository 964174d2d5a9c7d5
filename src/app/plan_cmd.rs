//! `bitops plan` and `bitops plan --run`.

use std::io::Write;

use rayon::prelude::*;

use super::load::{ensure_state_dir, load, load_registry, preflight, Guards, Loaded};
use super::run_cmd::{execute_reported, live_display, scheduler_options};
use super::stderr_color;
use crate::cli::{PlanArgs, PlanFormat};
use crate::config::settings::EnvVars;
use crate::exit_code;
use crate::plan::{self, Plan};
use crate::plugins::step::Action;
use crate::plugins::Registry;
use crate::report;

pub(super) fn plan_command(args: &PlanArgs) -> u8 {
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
        .map(|e| e.settings.masks.iter().map(|m| m.mask.clone()).collect())
        .collect();
    // Rendering an invocation (masks, shell quoting) is per deployment work: on both cores.
    let graph = &loaded.graph;
    let rendered: Vec<_> = prepared
        .into_par_iter()
        .map(|(i, r)| {
            let r = r.map(|p| plan::preview::invocation(&p, &masks[graph.node(i).env]));
            (i, r)
        })
        .collect();
    plan.invocations.reserve(rendered.len());
    for (i, r) in rendered {
        match r {
            Ok(inv) => {
                plan.invocations.insert(i, Ok(inv));
            }
            Err(list) => list.into_iter().for_each(|p| problems.push(p)),
        }
    }
    if let Err(e) = problems.into_result() {
        report::diagnostics::print(&e, color);
        return exit_code::CONFIG;
    }
    // A plan of 40,000 deployments is tens of MB: write it in large chunks.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let written = match args.format {
        PlanFormat::Text => out.write_all(plan::text::render(&plan, &loaded.settings).as_bytes()),
        PlanFormat::Json => plan::json::write(&plan, &mut out),
        PlanFormat::Dot => out.write_all(plan::graphviz::render_dot(&plan).as_bytes()),
        PlanFormat::Mermaid => out.write_all(plan::graphviz::render_mermaid(&plan).as_bytes()),
    };
    // A closed pipe (`bitops plan | head`) is not an error worth a message.
    let _ = written.and_then(|()| out.flush());
    // The process ends here: freeing hundreds of thousands of small allocations one by one
    // (repo, graph, plan) took a tenth of a large plan's time and frees nothing the exit does not.
    std::mem::forget(plan);
    std::mem::forget(registry);
    std::mem::forget(loaded);
    exit_code::SUCCESS
}

/// `bitops plan --run`: every selected deployment's own dry run, in graph order and in
/// parallel, then one table. Dry runs do not stop at the first error.
pub(super) fn dry_run(loaded: Loaded, registry: Registry, args: &PlanArgs, color: bool) -> u8 {
    let base_env = loaded.env.0.clone();
    if let Err(code) = preflight(
        &loaded,
        &registry,
        Default::default(),
        Action::DryRun,
        color,
    ) {
        return code;
    }
    if let Err(code) = ensure_state_dir(&loaded) {
        return code;
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
