//! Plugins: what each deployment runs. BitOps-format plugins follow the BitOps v2 contract
//! exactly (`bitops_format`, run by `bitops_run`); built-in plugins are native Rust (`builtin`).
//! Both produce a [`step::Prepared`]: exported variables and command steps, which `plan` shows
//! and `exec` runs.

pub mod actions;
pub mod bitops_format;
pub mod bitops_run;
pub mod builtin;
pub mod inputs;
pub mod links;
pub mod manage;
pub mod registry;
pub mod step;

pub use registry::{merge_tool_configs, read_tool_config, read_tool_config_noting, Registry};
