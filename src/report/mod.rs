//! Everything the user sees: diagnostics, plan output, run progress, summaries and reports.
//! The engine emits events; only this module writes to the terminal.

pub mod diagnostics;
pub mod history;
pub mod html;
pub mod junit;
pub mod live;
pub mod run_report;
pub mod style;
pub mod summary;
