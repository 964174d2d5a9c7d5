//! Integration tests: the real `bitops` binary on fixture operations repos.
//!
//! `harness` builds repos in temp folders and runs the binary with a controlled environment;
//! the other modules test one area each (see DESIGN.md §2–3 and the issues' "Tests" sections).

mod harness;

mod deploy_order;
mod diagnostics;
mod examples;
mod failure;
mod faults;
mod masks;
mod outputs;
mod plan;
mod props;
mod reports;
mod signals;
mod terraform;
mod tooling;
mod workspace;
