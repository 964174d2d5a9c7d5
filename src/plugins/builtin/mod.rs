//! Built-in plugins: terraform, ansible, helm, cloudformation and kubectl as native Rust, plus
//! `aws`, which is not a deployment plugin but provides credentials, region and EKS kubeconfig to
//! the others.
//!
//! Each built-in reads exactly the tool-level `bitops.config.yaml` keys and `BITOPS_<PLUGIN>_*`
//! overrides of the official BitOps plugin (reference §6), resolved by the same resolver as
//! BitOps-format plugins ([`crate::plugins::bitops_format::resolve`]), exports the same
//! variables so hooks see what they saw under BitOps, and runs the official command sequence
//! with its bugs fixed. Every such fix is in [`DEVIATIONS`] (docs/compatibility.md is written
//! from it). `prepare` starts no process and writes nothing: `bitops plan` shows its steps.

pub mod ansible;
pub mod aws;
pub mod cloudformation;
mod common;
pub mod helm;
pub mod kubectl;
pub mod terraform;

#[cfg(test)]
mod real_tools;
#[cfg(test)]
pub(crate) mod test_support;

use crate::diagnostic::Problem;
use crate::plugins::step::{Context, Prepared};

/// The built-in plugins' names.
pub const BUILTINS: &[&str] = &[
    "terraform",
    "ansible",
    "helm",
    "cloudformation",
    "kubectl",
    "aws",
];

/// Whether `name` is a built-in plugin (a BitOps-format plugin of the same name replaces it).
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// What one deployment of a built-in plugin runs: exported variables and command steps, or
/// every problem with its configuration.
pub fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    match ctx.plugin {
        "terraform" => terraform::prepare(ctx),
        "ansible" => ansible::prepare(ctx),
        "helm" => helm::prepare(ctx),
        "cloudformation" => cloudformation::prepare(ctx),
        "kubectl" => kubectl::prepare(ctx),
        "aws" => aws::prepare(ctx),
        other => Err(vec![Problem::new(
            "bitops::plugin::unknown",
            format!(
                "`{other}` is not a built-in plugin (built-ins: {})",
                BUILTINS.join(", ")
            ),
        )]),
    }
}

/// Every place where a built-in plugin deliberately differs from the official BitOps plugin:
/// (what bitops does, what BitOps did and why we differ).
pub const DEVIATIONS: &[(&str, &str)] = &[];
