//! The built-in terraform plugin: the official plugin's settings (reference §6.1) and command
//! sequence, with its bugs fixed (see `DEVIATIONS` in the parent module).
//!
//! Deploy with `stack-action: apply`:
//! `terraform init -input=false [-backend-config=…]… [-upgrade]`,
//! `terraform workspace select -or-create <ws>` (falling back to `new || select` for terraform
//! older than 1.4), `terraform plan -input=false -out=<plan file> [-var-file=…] [-target=…]…`,
//! `terraform apply -input=false -auto-approve <plan file>`, `terraform output -json` (captured
//! as the deployment's outputs). `plan` only plans; `destroy` plans with `-destroy` and applies
//! that plan. A dry run is `terraform plan -detailed-exitcode`, which exits 2 when there are
//! changes.

use std::sync::OnceLock;

use crate::diagnostic::Problem;
use crate::plugins::bitops_format::Schema;
use crate::plugins::step::{Action, Capture, Context, DryRunTool, Prepared, Step};

use super::common::{env_true, read_env_file, schema, setting_problem, Settings};

static SCHEMA: OnceLock<Schema> = OnceLock::new();
pub(super) const SCHEMA_TEXT: &str = include_str!("schemas/terraform.schema.yaml");

pub(super) fn terraform_schema() -> &'static Schema {
    schema(&SCHEMA, "built-in terraform.schema.yaml", SCHEMA_TEXT)
}

/// What a deploy of this deployment does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Plan,
    Apply,
    Destroy,
}

pub(super) fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    let s = Settings::for_context(terraform_schema(), ctx)?;
    let mut p = s.prepared("terraform");
    // `TERRAFORM_SKIP_DEPLOY` is what deploy.sh tested; a user could also set it directly.
    let skip = s
        .bool_opt("options.skip-deploy")
        .unwrap_or_else(|| env_true(ctx.env, "TERRAFORM_SKIP_DEPLOY"));
    if skip {
        p.skip = Some("terraform skip-deploy is set".into());
        return Ok(p);
    }

    let action = s.str("cli.stack-action").unwrap_or_else(|| "plan".into());
    let configured = match action.as_str() {
        "plan" => Mode::Plan,
        "apply" => Mode::Apply,
        "destroy" => Mode::Destroy,
        other => {
            return Err(setting_problem(
                "bitops::plugin::value",
                format!(
                "terraform `stack-action` is `{other}` in `{}`; it must be plan, apply or destroy",
                ctx.tool_config_name
            ),
                format!(
                    "set `terraform: {{cli: {{stack-action: apply}}}}` or the variable `{}`",
                    s.override_name("cli.stack-action")
                ),
            ))
        }
    };
    // deploy.sh's legacy switches, still honoured: TERRAFORM_DESTROY wins over TERRAFORM_APPLY.
    let deploy_mode = if configured == Mode::Destroy || env_true(ctx.env, "TERRAFORM_DESTROY") {
        Mode::Destroy
    } else if configured == Mode::Apply || env_true(ctx.env, "TERRAFORM_APPLY") {
        Mode::Apply
    } else {
        Mode::Plan
    };
    if ctx.action == Action::Destroy {
        // Hooks that look at the command (cleanup scripts) see what actually runs.
        for k in ["TERRAFORM_COMMAND", "BITOPS_TERRAFORM_COMMAND"] {
            p.exports.insert(k.into(), "destroy".into());
        }
    }
    p.settings
        .push(format!("mode = {}", mode_word(ctx.action, deploy_mode)));

    let step_env = read_env_file(
        &ctx.tool_dir,
        &format!("{}/{}", ctx.environment, ctx.deployment),
        ctx.env,
    )?;
    let dir = &ctx.tool_dir;
    let step = |argv: Vec<String>| {
        let mut st = Step::new(argv, dir);
        st.env = step_env.clone();
        st
    };

    // init
    let mut init = strs(&["terraform", "init", "-input=false"]);
    init.extend(
        s.list("cli.backend-config")
            .into_iter()
            .map(|b| format!("-backend-config={b}")),
    );
    if s.bool_opt("options.init-upgrade")
        .unwrap_or_else(|| env_true(ctx.env, "INIT_UPGRADE"))
    {
        init.push("-upgrade".into());
    }
    p.steps.push(step(init));

    if let Some(ws) = s.str("options.workspace") {
        let mut select = step(strs(&[
            "terraform",
            "workspace",
            "select",
            "-or-create",
            &ws,
        ]));
        let mut new = step(strs(&["terraform", "workspace", "new", &ws]));
        new.fallback = Some(Box::new(step(strs(&[
            "terraform",
            "workspace",
            "select",
            &ws,
        ]))));
        select.fallback = Some(Box::new(new));
        p.steps.push(select);
    }

    let mut args = Vec::new();
    if let Some(f) = s.str("cli.var-file") {
        args.push(format!("-var-file={f}"));
    }
    args.extend(
        s.list("cli.targets")
            .into_iter()
            .map(|t| format!("-target={t}")),
    );

    let destroying = ctx.action == Action::Destroy || deploy_mode == Mode::Destroy;
    if ctx.action == Action::DryRun {
        let mut argv = strs(&["terraform", "plan", "-input=false", "-detailed-exitcode"]);
        if destroying {
            argv.push("-destroy".into());
        }
        argv.extend(args);
        let mut plan = step(argv);
        plan.ok_codes = vec![2];
        plan.capture = Capture::DryRunSummary(DryRunTool::Terraform);
        p.steps.push(plan);
        return Ok(p);
    }
    if ctx.action == Action::Deploy && deploy_mode == Mode::Plan {
        let mut argv = strs(&["terraform", "plan", "-input=false"]);
        argv.extend(args);
        p.steps.push(step(argv));
        // BitOps' default: a deploy that reports success without applying anything.
        p.planned_only = Some(format!(
            "its stack action is `plan`, so nothing was applied; to apply, set \
             `stack-action: apply` under `terraform.cli` in {} (or `{}=apply`)",
            ctx.tool_config_name,
            s.override_name("cli.stack-action")
        ));
        return Ok(p);
    }

    // Apply exactly the plan that was shown (BitOps let apply re-plan).
    let plan_file = plan_file(ctx);
    let mut argv = strs(&["terraform", "plan", "-input=false"]);
    if destroying {
        argv.push("-destroy".into());
    }
    argv.push(format!("-out={plan_file}"));
    argv.extend(args);
    p.steps.push(step(argv));
    p.steps.push(step(strs(&[
        "terraform",
        "apply",
        "-input=false",
        "-auto-approve",
        &plan_file,
    ])));
    if !destroying {
        let mut out = step(strs(&["terraform", "output", "-json"]));
        out.capture = Capture::TerraformOutputs;
        p.steps.push(out);
    }
    Ok(p)
}

/// The saved plan: in `$TF_DATA_DIR` when the user set one, else beside the deployment's
/// output file in the run folder — a folder that always exists (`.terraform` does not when a
/// configuration needs no providers) and is never inside the ops repo, even with `--in-place`.
fn plan_file(ctx: &Context<'_>) -> String {
    if let Some(data) = ctx.env.get("TF_DATA_DIR").filter(|d| !d.is_empty()) {
        return format!("{}/bitops.tfplan", data.trim_end_matches('/'));
    }
    match ctx.env.get("BITOPS_OUTPUT_FILE").filter(|f| !f.is_empty()) {
        Some(out) => std::path::Path::new(out)
            .with_extension("tfplan")
            .display()
            .to_string(),
        None => ".terraform/bitops.tfplan".to_string(),
    }
}

fn mode_word(action: Action, mode: Mode) -> &'static str {
    match (action, mode) {
        (Action::Destroy, _) | (Action::Deploy, Mode::Destroy) => "destroy",
        (Action::DryRun, Mode::Destroy) => "dry run (plan -destroy)",
        (Action::DryRun, _) => "dry run (plan)",
        (Action::Deploy, Mode::Apply) => "apply",
        (Action::Deploy, Mode::Plan) => "plan only",
    }
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{argvs, ctx_in, Case, Fixture};
    use super::*;

    #[test]
    fn schema_is_the_official_one_plus_init_upgrade() {
        let official = Schema::from_text(
            "official",
            include_str!("../bitops_format/fixtures/terraform.schema.yaml"),
        )
        .unwrap();
        let ours = terraform_schema();
        for p in &official.properties {
            let q = ours
                .property(&p.config_key)
                .unwrap_or_else(|| panic!("{} missing", p.config_key));
            assert_eq!(
                (
                    &q.kind,
                    &q.parameter,
                    &q.export_env,
                    q.default.as_ref().map(|d| &d.value),
                    q.required,
                    &q.dash_type
                ),
                (
                    &p.kind,
                    &p.parameter,
                    &p.export_env,
                    p.default.as_ref().map(|d| &d.value),
                    p.required,
                    &p.dash_type
                ),
                "{}",
                p.config_key
            );
        }
        let extra: Vec<&str> = ours
            .properties
            .iter()
            .filter(|p| official.property(&p.config_key).is_none())
            .map(|p| p.config_key.as_str())
            .collect();
        assert_eq!(extra, ["terraform.options.init-upgrade"]);
    }

    /// (config, env, action, expected commands)
    const CASES: &[Case] = &[
        // The official default stack-action is `plan`.
        ("", &[], Action::Deploy, &["terraform init -input=false", "terraform plan -input=false"]),
        (
            "terraform: {cli: {stack-action: apply}}",
            &[],
            Action::Deploy,
            &[
                "terraform init -input=false",
                "terraform plan -input=false -out=.terraform/bitops.tfplan",
                "terraform apply -input=false -auto-approve .terraform/bitops.tfplan",
                "terraform output -json",
            ],
        ),
        (
            "terraform:\n  cli:\n    stack-action: apply\n    var-file: my.tfvars\n    targets: [aws_s3_bucket.a, 'module.b[\"x y\"]']\n    backend-config: [bucket=b, key=k]\n  options:\n    workspace: test\n    init-upgrade: true\n",
            &[],
            Action::Deploy,
            &[
                "terraform init -input=false -backend-config=bucket=b -backend-config=key=k -upgrade",
                "terraform workspace select -or-create test || terraform workspace new test || terraform workspace select test",
                "terraform plan -input=false -out=.terraform/bitops.tfplan -var-file=my.tfvars -target=aws_s3_bucket.a '-target=module.b[\"x y\"]'",
                "terraform apply -input=false -auto-approve .terraform/bitops.tfplan",
                "terraform output -json",
            ],
        ),
        // Env overrides beat the config.
        (
            "terraform: {cli: {stack-action: plan}, options: {workspace: test}}",
            &[("BITOPS_TERRAFORM_WORKSPACE", "prod"), ("BITOPS_TERRAFORM_STACK_ACTION", "apply"), ("BITOPS_TERRAFORM_TARGETS", "a.b c.d")],
            Action::Deploy,
            &[
                "terraform init -input=false",
                "terraform workspace select -or-create prod || terraform workspace new prod || terraform workspace select prod",
                "terraform plan -input=false -out=.terraform/bitops.tfplan -target=a.b -target=c.d",
                "terraform apply -input=false -auto-approve .terraform/bitops.tfplan",
                "terraform output -json",
            ],
        ),
        (
            "terraform: {cli: {stack-action: destroy}}",
            &[("INIT_UPGRADE", "true")],
            Action::Deploy,
            &[
                "terraform init -input=false -upgrade",
                "terraform plan -input=false -destroy -out=.terraform/bitops.tfplan",
                "terraform apply -input=false -auto-approve .terraform/bitops.tfplan",
            ],
        ),
        (
            "terraform: {cli: {stack-action: plan}}",
            &[("TERRAFORM_APPLY", "true"), ("TF_DATA_DIR", "/data/")],
            Action::Deploy,
            &[
                "terraform init -input=false",
                "terraform plan -input=false -out=/data/bitops.tfplan",
                "terraform apply -input=false -auto-approve /data/bitops.tfplan",
                "terraform output -json",
            ],
        ),
        (
            "terraform: {cli: {stack-action: apply, var-file: v.tfvars}}",
            &[],
            Action::Destroy,
            &[
                "terraform init -input=false",
                "terraform plan -input=false -destroy -out=.terraform/bitops.tfplan -var-file=v.tfvars",
                "terraform apply -input=false -auto-approve .terraform/bitops.tfplan",
            ],
        ),
        (
            "terraform: {cli: {stack-action: apply}}",
            &[],
            Action::DryRun,
            &["terraform init -input=false", "terraform plan -input=false -detailed-exitcode"],
        ),
        (
            "terraform: {cli: {stack-action: apply}}",
            &[("TERRAFORM_DESTROY", "true")],
            Action::DryRun,
            &["terraform init -input=false", "terraform plan -input=false -detailed-exitcode -destroy"],
        ),
    ];

    #[test]
    fn command_lines() {
        for (i, (config, env, action, want)) in CASES.iter().enumerate() {
            let fx = Fixture::new(config, env);
            let p = prepare(&ctx_in(&fx, "terraform", *action))
                .unwrap_or_else(|e| panic!("case {i}: {e:?}"));
            assert_eq!(argvs(&p), *want, "case {i}: {config}");
            assert_eq!(p.tools, ["terraform"]);
            assert!(p.before_hooks && p.after_hooks);
        }
    }

    #[test]
    fn exports_match_bitops() {
        let fx = Fixture::new(
            "terraform:\n  cli: {var-file: my-vars.tfvars, targets: [aws_s3_bucket.a, module.b], backend-config: [KEY1=foo], stack-action: apply}\n  options: {workspace: test, skip-deploy: false}\n",
            &[],
        );
        let p = prepare(&ctx_in(&fx, "terraform", Action::Deploy)).unwrap();
        for (k, v) in [
            ("TF_VAR_FILE", "my-vars.tfvars"),
            ("BITOPS_TF_VAR_FILE", "my-vars.tfvars"),
            ("TF_TARGETS", "aws_s3_bucket.a module.b"),
            ("BITOPS_TF_TARGETS", "aws_s3_bucket.a module.b"),
            ("TERRAFORM_COMMAND", "apply"),
            ("BITOPS_TERRAFORM_COMMAND", "apply"),
            ("TERRAFORM_WORKSPACE", "test"),
            ("BITOPS_TERRAFORM_WORKSPACE", "test"),
            ("TERRAFORM_SKIP_DEPLOY", "false"),
        ] {
            assert_eq!(p.exports.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(p.exports.contains_key("BITOPS_TERRAFORM_CLI"));
        assert!(
            p.settings
                .iter()
                .any(|l| l == "terraform.options.workspace = test (config)"),
            "{:?}",
            p.settings
        );
        let d = prepare(&ctx_in(&fx, "terraform", Action::Destroy)).unwrap();
        assert_eq!(d.exports["BITOPS_TERRAFORM_COMMAND"], "destroy");
    }

    #[test]
    fn skip_deploy_from_config_env_or_legacy_variable() {
        for (config, env) in [
            ("terraform: {options: {skip-deploy: true}}", &[][..]),
            ("", &[("BITOPS_TERRAFORM_SKIP_DEPLOY", "true")][..]),
            ("", &[("TERRAFORM_SKIP_DEPLOY", "true")][..]),
        ] {
            let fx = Fixture::new(config, env);
            let p = prepare(&ctx_in(&fx, "terraform", Action::Deploy)).unwrap();
            assert!(p.skip.is_some() && p.steps.is_empty(), "{config} {env:?}");
        }
        // An explicit `false` in the config wins over the legacy variable, as over a default.
        let fx = Fixture::new(
            "terraform: {options: {skip-deploy: false}}",
            &[("TERRAFORM_SKIP_DEPLOY", "true")],
        );
        assert!(prepare(&ctx_in(&fx, "terraform", Action::Deploy))
            .unwrap()
            .skip
            .is_none());
        let fx = Fixture::new("", &[("BITOPS_TERRAFORM_SKIP_DEPLOY", "false")]);
        assert!(prepare(&ctx_in(&fx, "terraform", Action::Deploy))
            .unwrap()
            .skip
            .is_none());
    }

    #[test]
    fn steps_capture_and_codes() {
        let fx = Fixture::new("terraform: {cli: {stack-action: apply}}", &[]);
        let p = prepare(&ctx_in(&fx, "terraform", Action::Deploy)).unwrap();
        assert_eq!(p.steps.last().unwrap().capture, Capture::TerraformOutputs);
        assert!(p.steps.iter().all(|s| s.cwd == fx.tool_dir()));
        let d = prepare(&ctx_in(&fx, "terraform", Action::DryRun)).unwrap();
        let plan = d.steps.last().unwrap();
        assert_eq!(plan.ok_codes, [2]);
        assert_eq!(plan.capture, Capture::DryRunSummary(DryRunTool::Terraform));
    }

    #[test]
    fn env_file_reaches_every_step() {
        let fx = Fixture::new("terraform: {cli: {stack-action: apply}}", &[]);
        fx.write("ENV_FILE", "export TF_VAR_greeting=hello\n");
        let p = prepare(&ctx_in(&fx, "terraform", Action::Deploy)).unwrap();
        assert!(p
            .steps
            .iter()
            .all(|s| s.env.get("TF_VAR_greeting").map(String::as_str) == Some("hello")));
        fx.write("ENV_FILE", "export X=$(whoami)\n");
        assert!(prepare(&ctx_in(&fx, "terraform", Action::Deploy)).is_err());
    }

    #[test]
    fn bad_stack_action_and_unknown_keys_are_problems() {
        let fx = Fixture::new("terraform: {cli: {stack-action: aply}}", &[]);
        let e = prepare(&ctx_in(&fx, "terraform", Action::Deploy)).unwrap_err();
        assert!(
            e[0].message.contains("must be plan, apply or destroy"),
            "{}",
            e[0].message
        );
        let fx = Fixture::new("terraform: {options: {worksapce: x}}", &[]);
        let e = prepare(&ctx_in(&fx, "terraform", Action::Deploy)).unwrap_err();
        assert!(
            e[0].help.as_deref().unwrap_or("").contains("workspace"),
            "{e:?}"
        );
    }
}
