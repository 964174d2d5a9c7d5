//! What a plugin tells the engine to run for one deployment: variables, then command steps.
//!
//! Both `bitops plan` (which shows the commands) and `exec` (which runs them) use this, so what
//! the plan shows is exactly what a deploy runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::yaml::Node;

/// What a run does with a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Destroy,
    /// The tool's own dry run (`terraform plan`, `ansible-playbook --check`, …).
    DryRun,
}

/// Everything a plugin may look at to decide its steps.
pub struct Context<'a> {
    pub environment: &'a str,
    pub deployment: &'a str,
    pub plugin: &'a str,
    /// The deployment's folder in the working copy (`$BITOPS_OPSREPO_ENVIRONMENT_DIR`).
    pub tool_dir: PathBuf,
    /// The `_default` folder's copy of this tool folder, if any (helm values, …).
    pub default_dir: Option<PathBuf>,
    /// The tool-level `bitops.config.yaml`, already deep-merged over `_default`'s.
    pub tool_config: Option<&'a Node>,
    /// Where the tool config came from, for diagnostics (`backend-test/terraform/bitops.config.yaml`).
    pub tool_config_name: String,
    /// The file `tool_config`'s spans point into, when they all point into one file (not after
    /// a merge with `_default`'s), so problems can show file:line.
    pub tool_config_file: Option<&'a std::sync::Arc<crate::diagnostic::SourceFile>>,
    /// The environment the deployment will run with: the user's variables plus BitOps' own.
    pub env: &'a BTreeMap<String, String>,
    pub action: Action,
}

/// How a step's standard output is used besides the log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capture {
    None,
    /// `terraform output -json`: each output becomes a deployment output.
    TerraformOutputs,
    /// `aws cloudformation describe-stacks`: the stack's outputs become deployment outputs.
    CloudFormationOutputs,
    /// A dry-run summary to parse (`terraform plan`, `ansible --check`, helm template, …).
    DryRunSummary(DryRunTool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DryRunTool {
    Terraform,
    Ansible,
    Helm,
    CloudFormation,
    Kubectl,
    Plugin,
}

/// One command.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Step {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// Variables added for this step only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Run instead when this step fails (`terraform workspace new` → `select`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Box<Step>>,
    /// Exit codes that count as success besides 0 (`plan -detailed-exitcode` returns 2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ok_codes: Vec<i32>,
    /// A failing step does not fail the deployment (logged only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub may_fail: bool,
    #[serde(skip_serializing_if = "is_no_capture")]
    pub capture: Capture,
    /// Run these when this step fails, before failing the deployment (helm rollback).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Step>,
}

fn is_no_capture(c: &Capture) -> bool {
    *c == Capture::None
}

impl Step {
    pub fn new<I, S>(argv: I, cwd: impl Into<PathBuf>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Step {
            argv: argv.into_iter().map(Into::into).collect(),
            cwd: cwd.into(),
            env: BTreeMap::new(),
            fallback: None,
            ok_codes: Vec::new(),
            may_fail: false,
            capture: Capture::None,
            on_failure: Vec::new(),
        }
    }

    /// The command as shell text, for plans and logs.
    pub fn display(&self) -> String {
        let mut s = self
            .argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(f) = &self.fallback {
            s.push_str(" || ");
            s.push_str(&f.display());
        }
        s
    }
}

/// What a plugin decided for one deployment.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Prepared {
    /// Variables the contract exports (visible to hooks and every step).
    pub exports: BTreeMap<String, String>,
    /// The commands, in order.
    pub steps: Vec<Step>,
    /// Set when the deployment is skipped by its own config (`skip-deploy`) or because its
    /// plugin has no action for this command, with the reason.
    pub skip: Option<String>,
    /// Variables of the user's environment the steps must not see (the official terraform
    /// plugin's `TERRAFORM_APPLY=true` would apply during a dry run).
    pub unset: Vec<String>,
    /// Set when a deploy only plans (terraform's default `stack-action: plan`): nothing is
    /// applied. Holds the one line of config that makes it apply.
    pub planned_only: Option<String>,
    pub before_hooks: bool,
    pub after_hooks: bool,
    /// Resolved plugin settings for the plan, as `key = value (origin)`.
    pub settings: Vec<String>,
    /// External programs the steps need on PATH (checked before anything runs).
    pub tools: Vec<String>,
    /// Warnings about configs the plugin read itself (legacy keys in helm chart configs).
    #[serde(skip)]
    pub warnings: Vec<crate::diagnostic::Problem>,
}

/// Quotes a word for display the way a shell would need it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_shows_fallbacks() {
        let mut s = Step::new(["terraform", "workspace", "new", "my ws"], "/tmp");
        s.fallback = Some(Box::new(Step::new(
            ["terraform", "workspace", "select", "my ws"],
            "/tmp",
        )));
        assert_eq!(
            s.display(),
            "terraform workspace new 'my ws' || terraform workspace select 'my ws'"
        );
    }
}
