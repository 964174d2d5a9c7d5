//! Running a BitOps-format plugin: the contract's variables, then
//! `<language> <plugin>/<deploy script> <stack_action>` in the tool folder.
//!
//! `plan --run` and `destroy` never trust a plugin to honour its argument: official plugins read
//! the action from the `export_env` of their `stack-action` property. The property is resolved
//! as if `BITOPS_<ROOT>_STACK_ACTION=<the plugin's word>` were set (see [`super::actions`]), so
//! the exports, `BITOPS_<ROOT>_CLI` and argv[1] all carry that word; a plugin without a
//! `stack-action` property or without a word for the action is not run at all.

use super::actions::{self, Configured};
use super::bitops_format::{deploy_argv, resolve, Plugin, Source, ToolConfig};
use super::step::{Action, Capture, Context, DryRunTool, Prepared, Step};
use crate::diagnostic::Problem;

pub fn prepare(
    p: &Plugin,
    words: &Configured,
    ctx: &Context<'_>,
) -> Result<Prepared, Vec<Problem>> {
    let mut prepared = Prepared {
        before_hooks: p.config.before_hook_scripts,
        after_hooks: p.config.after_hook_scripts,
        tools: vec![p.config.language.clone()],
        ..Prepared::default()
    };
    let command = match ctx.action {
        Action::Deploy => "deploy",
        Action::DryRun => "plan --run",
        Action::Destroy => "destroy",
    };
    // Said outright, so nobody reads a destroy run as a teardown of this deployment.
    let nothing = if ctx.action == Action::Destroy {
        "; nothing was destroyed"
    } else {
        ""
    };
    let Some(schema) = &p.schema else {
        if ctx.action == Action::Deploy {
            // The plugin reads its own configuration; BitOps passed an empty action.
            prepared
                .steps
                .push(Step::new(deploy_argv(p, ""), &ctx.tool_dir));
            return Ok(prepared);
        }
        prepared.skip = Some(format!(
            "plugin `{}` reads its own configuration (core_schema_parsing is off), so bitops \
             cannot choose its action: not run by `{command}`{nothing}",
            p.name
        ));
        return Ok(prepared);
    };
    // BitOps took argv[1] from the `cli` property only, but older official schemas had the
    // property under `options`, where its export still told the plugin what to do.
    let named = |x: &&super::bitops_format::Property| x.name == "stack-action" && !x.is_container();
    let action_prop = schema
        .properties
        .iter()
        .filter(named)
        .find(|x| x.is_cli())
        .or_else(|| schema.properties.iter().find(named));
    let root = schema.root_key.as_str();
    let mut env = ctx.env.clone();
    if ctx.action != Action::Deploy {
        let Some(prop) = action_prop else {
            prepared.skip = Some(format!(
                "plugin `{}` has no `stack-action` property, so it has no {} action: not run by \
                 `{command}`{nothing}",
                p.name,
                if ctx.action == Action::Destroy {
                    "destroy"
                } else {
                    "dry-run"
                }
            ));
            return Ok(prepared);
        };
        let (word, key) = if ctx.action == Action::Destroy {
            (actions::destroy_word(words, root), "destroy_action")
        } else {
            (actions::plan_word(words, root), "plan_action")
        };
        let Some(word) = word else {
            prepared.skip = Some(format!(
                "plugin `{}` has no {} action: not run by `{command}`{nothing} (if it has \
                 one, set `bitops.plugins.{}.{key}` to its stack-action word)",
                p.name,
                if ctx.action == Action::Destroy {
                    "destroy"
                } else {
                    "dry-run"
                },
                p.name
            ));
            return Ok(prepared);
        };
        // Wins over a user's own override: a dry run must never become an apply.
        env.insert(prop.override_name(), word);
        // The official terraform plugin also applies on `TERRAFORM_APPLY=true` and destroys on
        // `TERRAFORM_DESTROY=true`, whatever its action says.
        if root == "terraform" {
            prepared.unset.push("TERRAFORM_APPLY".into());
            if ctx.action == Action::DryRun {
                prepared.unset.push("TERRAFORM_DESTROY".into());
            }
        }
    }
    // BitOps stopped (exit 2) without a tool config; an absent file now means "all defaults".
    let tc = ToolConfig {
        root: ctx.tool_config,
        file: ctx.tool_config_file,
        display: &ctx.tool_config_name,
    };
    let r = resolve(schema, &tc, &env, ctx.plugin);
    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    prepared.exports.extend(r.env());
    prepared.settings = r
        .values
        .iter()
        .map(|(k, v, src)| {
            let origin = match src {
                Source::Env if ctx.action != Action::Deploy && k.ends_with(".stack-action") => {
                    "chosen by bitops for this command"
                }
                Source::Env => "env override",
                Source::Config => "config",
                Source::Default => "schema default",
                Source::Unset => "unset",
            };
            format!("{k} = {} ({origin})", v.as_deref().unwrap_or("-"))
        })
        .collect();
    for k in &prepared.unset {
        prepared
            .settings
            .push(format!("{k} = - (not passed to the plugin by `{command}`)"));
    }
    if let (Action::Deploy, Some(prop)) = (ctx.action, action_prop) {
        let plans = actions::plan_word(words, root).filter(|w| *w == r.stack_action);
        if let Some(word) = plans {
            prepared.planned_only = Some(format!(
                "its stack action is `{word}`, so nothing was applied; to apply, set \
                 `{}: apply` under `{}` in {} (or `{}=apply`)",
                prop.name,
                prop.path[..prop.path.len() - 1].join("."),
                ctx.tool_config_name,
                prop.override_name()
            ));
        }
    }
    // The deploy script's existence was checked once, when the registry loaded the plugin.
    let mut step = Step::new(deploy_argv(p, &r.stack_action), &ctx.tool_dir);
    if ctx.action == Action::DryRun {
        step.capture = Capture::DryRunSummary(DryRunTool::Plugin);
    }
    prepared.steps.push(step);
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::diagnostic::Diagnostics;
    use crate::plugins::bitops_format::{load_plugin, OFFICIAL_SCHEMAS};

    /// A plugin folder with one of the official schemas and a deploy script.
    fn plugin(root: &str) -> (tempfile::TempDir, Plugin) {
        let t = tempfile::tempdir().unwrap();
        let (_, schema) = OFFICIAL_SCHEMAS.iter().find(|(n, _)| *n == root).unwrap();
        std::fs::write(t.path().join("bitops.schema.yaml"), schema).unwrap();
        std::fs::write(t.path().join("deploy.sh"), "").unwrap();
        let mut d = Diagnostics::default();
        let p = load_plugin(t.path(), root, &mut d).expect("loads");
        (t, p)
    }

    fn run(
        p: &Plugin,
        words: &Configured,
        config: &str,
        env: &[(&str, &str)],
        action: Action,
    ) -> Prepared {
        let node = crate::yaml::parse(config).unwrap();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ctx = Context {
            environment: "e",
            deployment: "d",
            plugin: &p.name,
            tool_dir: p.dir.clone(),
            default_dir: None,
            tool_config: node.as_ref(),
            tool_config_name: "e/d/bitops.config.yaml".into(),
            tool_config_file: None,
            env: &env,
            action,
        };
        prepare(p, words, &ctx).unwrap()
    }

    #[test]
    fn cloudformation_deletes_on_destroy_and_has_no_dry_run() {
        let (_t, p) = plugin("cloudformation");
        let config = "cloudformation:\n  cli:\n    stack-action: deploy\n  options:\n    cfn-stack-name: s\n    cfn-files:\n      template-file: t.yaml\n";
        let none = Configured::default();
        let d = run(&p, &none, config, &[], Action::Destroy);
        assert_eq!(d.exports["CFN_STACK_ACTION"], "delete");
        assert_eq!(d.exports["BITOPS_CFN_STACK_ACTION"], "delete");
        assert!(d.exports["BITOPS_CLOUDFORMATION_CLI"].ends_with("delete"));
        assert_eq!(d.steps[0].argv[2], "delete");
        let dry = run(&p, &none, config, &[], Action::DryRun);
        assert!(dry.steps.is_empty());
        assert!(dry.skip.unwrap().contains("no dry-run action"));
        // A word the user gives is used, and an empty one means "none".
        let words = Configured {
            plan: Some("preview".into()),
            destroy: Some(String::new()),
        };
        let dry = run(&p, &words, config, &[], Action::DryRun);
        assert_eq!(dry.exports["CFN_STACK_ACTION"], "preview");
        assert!(run(&p, &words, config, &[], Action::Destroy).skip.is_some());
    }

    #[test]
    fn terraform_dry_run_wins_over_a_user_override_and_a_plan_deploy_is_planned_only() {
        let (_t, p) = plugin("terraform");
        let none = Configured::default();
        let config = "terraform:\n  cli:\n    stack-action: apply\n";
        let over = [("BITOPS_TERRAFORM_STACK_ACTION", "apply")];
        let dry = run(&p, &none, config, &over, Action::DryRun);
        assert_eq!(dry.exports["TERRAFORM_COMMAND"], "plan");
        assert_eq!(dry.exports["BITOPS_TERRAFORM_COMMAND"], "plan");
        assert_eq!(dry.exports["BITOPS_TERRAFORM_CLI"], "plan");
        assert_eq!(dry.steps[0].argv[2], "plan");
        assert!(dry.planned_only.is_none());
        assert_eq!(dry.unset, ["TERRAFORM_APPLY", "TERRAFORM_DESTROY"]);
        let destroy = run(&p, &none, config, &[], Action::Destroy);
        assert_eq!(destroy.unset, ["TERRAFORM_APPLY"]);
        assert_eq!(destroy.exports["BITOPS_TERRAFORM_COMMAND"], "destroy");
        let deploy = run(&p, &none, config, &[], Action::Deploy);
        assert_eq!(deploy.steps[0].argv[2], "apply");
        assert!(deploy.planned_only.is_none());
        let planned = run(&p, &none, "", &[], Action::Deploy);
        let hint = planned.planned_only.expect("planned only");
        assert!(
            hint.contains("`stack-action: apply` under `terraform.cli` in e/d/bitops.config.yaml"),
            "{hint}"
        );
    }

    #[test]
    fn a_stack_action_under_options_is_chosen_too() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("bitops.schema.yaml"),
            "terraform:\n  type: object\n  properties:\n    options:\n      type: object\n      properties:\n        stack-action: {type: string, export_env: TERRAFORM_COMMAND, default: plan}\n",
        )
        .unwrap();
        std::fs::write(t.path().join("deploy.sh"), "").unwrap();
        let p = load_plugin(t.path(), "terraform", &mut Diagnostics::default()).unwrap();
        let cfg = "terraform:\n  options:\n    stack-action: apply\n";
        let d = run(&p, &Configured::default(), cfg, &[], Action::Destroy);
        assert_eq!(d.exports["BITOPS_TERRAFORM_COMMAND"], "destroy");
        // As in BitOps, only a `cli` property is the script's argument.
        assert_eq!(d.steps[0].argv[2], "");
    }

    #[test]
    fn a_plugin_without_stack_action_is_never_run_by_dry_run_or_destroy() {
        let (_t, p) = plugin("ansible");
        let words = Configured {
            plan: Some("plan".into()),
            destroy: Some("destroy".into()),
        };
        for action in [Action::DryRun, Action::Destroy] {
            let r = run(&p, &words, "", &[], action);
            assert!(r.steps.is_empty(), "{action:?}");
            assert!(r.skip.unwrap().contains("has no `stack-action` property"));
        }
        let d = run(&p, &words, "", &[], Action::Destroy);
        assert!(d.skip.unwrap().contains("nothing was destroyed"));
    }
}
