//! The `bitops` binary: parse arguments, run, exit. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = bitops::cli::Cli::parse();
    ExitCode::from(bitops::app::run(cli))
}
