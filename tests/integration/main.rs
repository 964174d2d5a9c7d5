//! Integration tests: the real `bitops` binary on fixture operations repos.
//!
//! `harness` builds repos in temp folders and runs the binary with a controlled environment;
//! the other modules test one area each (see DESIGN.md §2–3 and the issues' "Tests" sections).

mod harness;
mod services;

mod deploy_order;
mod diagnostics;
mod display;
mod docs_commands;
mod edges;
mod examples;
mod export_ci;
mod failure;
mod faults;
mod hostile;
mod inputs;
mod legacy_keys;
mod masks;
mod missing_tools;
mod outputs;
mod plan;
mod plan_cache;
mod plan_results;
mod plugin_contract;
mod props;
mod repo_shape;
mod reports;
mod selection;
mod signals;
mod state_store;
mod terraform;
mod tooling;
mod troubleshooting;
mod working_copy;
mod workspace;
