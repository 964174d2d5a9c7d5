//! Commands: each turns arguments into settings, runs the stages, and maps the outcome to an
//! exit code. Loading the repo is shared by every command that reads one (`load`).

mod export_cmd;
mod load;
mod plan_cmd;
mod plugins_cmd;
mod report_cmd;
mod reporter;
mod run_cmd;
pub mod state_cmd;
mod state_run;

pub use load::{flags, load, Guards, Loaded};

use std::io::IsTerminal;

use crate::cli::{Cli, ColorChoice, Command};
use crate::config::settings::EnvVars;
use crate::exit_code;
use crate::plugins::step::Action;
use crate::report;

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Plan(args) => plan_cmd::plan_command(&args),
        Command::Deploy(args) => run_cmd::run_command(&args, Action::Deploy),
        Command::Destroy(args) => run_cmd::run_command(&args, Action::Destroy),
        Command::Plugins(args) => plugins_cmd::plugins_command(&args),
        Command::Report(args) => report_cmd::report_command(&args),
        Command::Export(args) => export_cmd::export_command(&args),
        Command::State(args) => state_cmd::state_command(&args),
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

pub(crate) fn stderr_color(choice: ColorChoice, env: &EnvVars) -> bool {
    report::style::use_color(
        choice,
        std::io::stderr().is_terminal(),
        env.get("NO_COLOR").is_some_and(|v| !v.is_empty()),
    )
}
