//! `bitops plugins list|install`.

use std::io::Write;

use super::stderr_color;
use crate::cli::ColorChoice;
use crate::config::settings::{EnvVars, Flags};
use crate::diagnostic::ConfigErrors;
use crate::discover::{find_ops_repo, scan, Input};
use crate::exit_code;
use crate::report;

/// `bitops plugins list|install`.
pub(super) fn plugins_command(args: &crate::cli::PluginsArgs) -> u8 {
    use crate::cli::PluginsAction;
    let env = EnvVars::from_process();
    let color = stderr_color(ColorChoice::Auto, &env);
    let common = match &args.action {
        PluginsAction::List(c) => c,
        PluginsAction::Install(i) => &i.common,
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
            let _ = std::io::stdout().write_all(
                crate::plugins::manage::list(&repo, &state_dir, env.get("PATH")).as_bytes(),
            );
            exit_code::SUCCESS
        }
        PluginsAction::Install(i) => {
            match crate::plugins::manage::install(&repo, &state_dir, i.run_install_scripts) {
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
            }
        }
    }
}
