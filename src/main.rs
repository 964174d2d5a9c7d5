//! The `bitops` binary: parse arguments, run, exit. Everything else lives in the library.
//!
//! Before anything else: signals are taken by one thread (`exec::signals`), and a panic anywhere
//! ends bitops the same way every time — its process groups stopped, its locks released, exit 3
//! (`exec::lifetime::emergency_exit`) — instead of a hung or spinning process and exit 101.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The watchdog of a run (see `exec::lifetime`): not a command users call.
    if args.get(1).map(String::as_str) == Some("__watchdog") {
        return ExitCode::from(bitops::exec::lifetime::watchdog_main(&args[2..]));
    }
    bitops::exec::signals::install();
    std::panic::set_hook(Box::new(|info| {
        // Stop first, tell after: the message must not wait on a blocked stderr.
        let message = format!(
            "bitops: internal error (a bug in bitops, please report it): {info}\n\
             bitops: stopped every deployment and released the locks; exit 3\n"
        );
        bitops::exec::lifetime::emergency_exit_with(bitops::exit_code::INTERNAL, Some(message));
    }));
    let cli = bitops::cli::Cli::parse();
    ExitCode::from(bitops::app::run(cli))
}
