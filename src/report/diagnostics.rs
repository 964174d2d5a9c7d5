//! Prints configuration problems as miette reports (file, line, the YAML around it, a fix).

use std::io::Write;

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::diagnostic::ConfigErrors;

/// Renders every problem, then a one-line count.
pub fn render(errors: &ConfigErrors, color: bool) -> String {
    let mut out = render_problems(errors, color);
    out.push_str(&format!("error: {errors}; nothing was run\n"));
    out
}

/// Warnings: printed before the command goes on, with a count and how to make them errors.
pub fn render_warnings(warnings: &[crate::diagnostic::Problem], color: bool) -> String {
    if warnings.is_empty() {
        return String::new();
    }
    let list = ConfigErrors {
        problems: warnings.to_vec(),
    };
    let mut out = render_problems(&list, color);
    let n = warnings.len();
    out.push_str(&format!(
        "warning: {n} warning{}; going on (--strict makes warnings errors)\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}

pub fn print_warnings(warnings: &[crate::diagnostic::Problem], color: bool) {
    let _ = std::io::stderr().write_all(render_warnings(warnings, color).as_bytes());
}

fn render_problems(errors: &ConfigErrors, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_context_lines(2)
        .with_width(100);
    let mut out = String::new();
    for report in errors.reports() {
        if handler.render_report(&mut out, report.as_ref()).is_err() {
            out.push_str(&format!("{report}\n"));
        }
        out.push('\n');
    }
    out
}

pub fn print(errors: &ConfigErrors, color: bool) {
    let text = render(errors, color);
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The problems as a JSON document, for `--format json`: machines reading stdout get an
/// answer they can parse instead of nothing.
pub fn json(errors: &ConfigErrors) -> String {
    let problems: Vec<serde_json::Value> = errors
        .problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "code": p.code,
                "message": p.message,
                "location": p.location(),
                "file": p.loc.as_ref().map(|l| l.file.name.clone())
                    .or_else(|| p.path.as_ref().map(|x| x.display().to_string())),
                "line": p.loc.as_ref().map(|l| l.file.line_of(l.span.offset)),
                "label": (!p.label.is_empty()).then_some(p.label.as_str()),
                "help": p.help,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "version": 1,
        "error": {
            "message": format!("{errors}; nothing was run"),
            "exit_code": crate::exit_code::CONFIG,
            "problems": problems,
        }
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("plain data serializes");
    s.push('\n');
    s
}
