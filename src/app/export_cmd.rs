//! `bitops export`: the graph as a CI pipeline.

use std::io::Write;

use super::load::{load, print_warnings, Guards};
use super::stderr_color;
use crate::cli::ExecArgs;
use crate::config::settings::EnvVars;
use crate::exit_code;
use crate::report;

/// `export`: the graph as a CI pipeline (GitHub Actions, GitLab CI, Argo), to stdout or `-o FILE`.
pub(super) fn export_command(args: &crate::cli::ExportArgs) -> u8 {
    let env = EnvVars::from_process();
    let color = stderr_color(args.common.color, &env);
    let mut loaded = match load(&args.common, &ExecArgs::default(), Guards::Skip, env) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    print_warnings(&mut loaded, color);
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
