//! Prints configuration problems as miette reports (file, line, the YAML around it, a fix).

use std::io::Write;

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::diagnostic::ConfigErrors;

/// Renders every problem, then a one-line count.
pub fn render(errors: &ConfigErrors, color: bool) -> String {
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
    out.push_str(&format!("error: {errors}; nothing was run\n"));
    out
}

pub fn print(errors: &ConfigErrors, color: bool) {
    let text = render(errors, color);
    let _ = std::io::stderr().write_all(text.as_bytes());
}
