//! Running a BitOps-format plugin: the contract's variables, then
//! `<language> <plugin>/<deploy script> <stack_action>` in the tool folder.

use super::bitops_format::{deploy_argv, resolve, Plugin, Source, ToolConfig};
use super::step::{Action, Capture, Context, DryRunTool, Prepared, Step};
use crate::diagnostic::Problem;

pub fn prepare(p: &Plugin, ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    let mut prepared = Prepared {
        before_hooks: p.config.before_hook_scripts,
        after_hooks: p.config.after_hook_scripts,
        tools: vec![p.config.language.clone()],
        ..Prepared::default()
    };
    let mut stack_action = String::new();
    let mut has_action = false;
    if let Some(schema) = &p.schema {
        // BitOps stopped (exit 2) without a tool config; an absent file now means "all defaults".
        let tc = ToolConfig {
            root: ctx.tool_config,
            file: ctx.tool_config_file,
            display: &ctx.tool_config_name,
        };
        let r = resolve(schema, &tc, ctx.env, ctx.plugin);
        if !r.problems.is_empty() {
            return Err(r.problems);
        }
        prepared.exports.extend(r.env());
        prepared.settings = r
            .values
            .iter()
            .map(|(k, v, src)| {
                let origin = match src {
                    Source::Env => "env override",
                    Source::Config => "config",
                    Source::Default => "schema default",
                    Source::Unset => "unset",
                };
                format!("{k} = {} ({origin})", v.as_deref().unwrap_or("-"))
            })
            .collect();
        has_action = schema
            .properties
            .iter()
            .any(|x| x.is_cli() && x.name == "stack-action");
        stack_action = r.stack_action;
    }
    match ctx.action {
        Action::Deploy => {}
        // A plugin reads its action from its one argument; `destroy` is the word the official
        // plugins use for it.
        Action::Destroy => stack_action = "destroy".into(),
        Action::DryRun if has_action => stack_action = "plan".into(),
        Action::DryRun => {
            prepared.skip = Some(format!(
                "plugin `{}` has no `stack-action`, so no dry run",
                p.name
            ));
            return Ok(prepared);
        }
    }
    // The deploy script's existence was checked once, when the registry loaded the plugin.
    let mut step = Step::new(deploy_argv(p, &stack_action), &ctx.tool_dir);
    if ctx.action == Action::DryRun {
        step.capture = Capture::DryRunSummary(DryRunTool::Plugin);
    }
    prepared.steps.push(step);
    Ok(prepared)
}
