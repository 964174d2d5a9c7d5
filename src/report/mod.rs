//! Everything the user sees: diagnostics, plan output, run progress, summaries and reports.
//! The engine emits events; only this module writes to the terminal.

pub mod diagnostics;
pub mod live;
pub mod style;
pub mod summary;
pub mod history;
pub mod html;
pub mod junit;
pub mod run_report;
