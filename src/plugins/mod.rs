//! Plugins: what each deployment runs. BitOps-format plugins follow the BitOps v2 contract
//! exactly (`bitops_format`); built-in plugins are native Rust (`builtin`). Both produce a
//! [`step::Prepared`]: exported variables and command steps, which `plan` shows and `exec` runs.

pub mod step;
