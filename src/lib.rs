//! bitops: deploy an operations repo as a dependency graph.
//!
//! Stages, in the order a run goes through them: `discover` finds environments and tool folders,
//! `config` reads and validates every `bitops.config.yaml`, `graph` turns them into a validated
//! dependency graph and selects from it, `plan` renders it, `plugins` say what each deployment
//! runs, `exec` runs it, `report` shows it.

pub mod ansi;
pub mod app;
pub mod cli;
pub mod compat;
pub mod config;
pub mod diagnostic;
pub mod discover;
pub mod exec;
pub mod exit_code;
pub mod export;
#[cfg(test)]
mod fuzz_tests;
pub mod graph;
pub mod mask;
pub mod model;
pub mod names;
pub mod par;
pub mod plan;
pub mod plugins;
pub mod report;
pub mod state;
#[cfg(test)]
mod test_tools;
pub mod yaml;
