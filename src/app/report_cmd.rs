//! `bitops report`: an earlier run.

use std::io::IsTerminal;

use super::stderr_color;
use crate::cli::ColorChoice;
use crate::config::settings::EnvVars;
use crate::diagnostic::ConfigErrors;
use crate::discover::find_ops_repo;
use crate::exit_code;
use crate::report;

/// `bitops report`: an earlier run's summary, its HTML timeline, or the slowest deployments.
pub(super) fn report_command(args: &crate::cli::ReportArgs) -> u8 {
    let env = EnvVars::from_process();
    let root = find_ops_repo(args.ops_repo.as_deref(), &env);
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => match &root {
            Ok(root) => root.join(".bitops"),
            Err(p) => {
                report::diagnostics::print(
                    &ConfigErrors::single(p.clone()),
                    stderr_color(ColorChoice::Auto, &env),
                );
                return exit_code::CONFIG;
            }
        },
    };
    // With a shared store, its runs are fetched into the local folder first.
    if let Err(p) =
        super::state_cmd::fetch_reports(args.state.as_deref(), &env, root.ok(), &state_dir)
    {
        report::diagnostics::print(
            &ConfigErrors::single(p),
            stderr_color(ColorChoice::Auto, &env),
        );
        return exit_code::CONFIG;
    }
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
