//! The built-in cloudformation plugin: the official plugin's settings (reference §6.4) with its
//! flow made to fail when something fails.
//!
//! Deploy: optional `aws s3 sync` of the tool folder when `s3bucket` and `s3prefix` are set (as
//! BitOps did, so nested templates can be referenced from S3), `aws cloudformation
//! validate-template` unless `validate-cfn` is false, then `aws cloudformation deploy`, which
//! creates or updates the stack through a change set and waits for it. When it fails, the
//! failing resources' reasons are printed from `describe-stack-events`. A successful deploy ends
//! with `describe-stacks`, whose outputs become the deployment's outputs.
//! Delete (`stack-action: delete`, or `bitops destroy`): `delete-stack` then `wait
//! stack-delete-complete`. Dry run: a change set is created, described and deleted.
//!
//! Every `aws` command gets `--region` when `AWS_DEFAULT_REGION` or `AWS_REGION` is set; the AWS
//! CLI reads credentials and `AWS_ENDPOINT_URL` from the environment itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use crate::diagnostic::Problem;
use crate::plugins::bitops_format::Schema;
use crate::plugins::step::{Action, Capture, Context, DryRunTool, Prepared, Step};

use super::aws::region_args;
use super::common::{env_true, schema, setting_problem, Settings};

static SCHEMA: OnceLock<Schema> = OnceLock::new();
const SCHEMA_TEXT: &str = include_str!("../bitops_format/fixtures/cloudformation.schema.yaml");

pub(super) fn cfn_schema() -> &'static Schema {
    schema(&SCHEMA, "cloudformation.schema.yaml", SCHEMA_TEXT)
}

/// The change set a dry run creates and deletes.
pub const DRY_RUN_CHANGE_SET: &str = "bitops-dry-run";

/// Templates larger than this must go through S3 (a CloudFormation API limit).
const TEMPLATE_BODY_LIMIT: u64 = 51_200;

pub(super) fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    let s = Settings::for_context(cfn_schema(), ctx)?;
    let mut p = s.prepared("aws");
    if s.bool_opt("options.skip-deploy")
        .unwrap_or_else(|| env_true(ctx.env, "CFN_SKIP_DEPLOY"))
    {
        p.skip = Some("cloudformation skip-deploy is set".into());
        return Ok(p);
    }
    // `required` makes the resolver report both as missing; these are only for the compiler.
    let stack = s.str("options.cfn-stack-name").unwrap_or_default();
    let template = s.str("options.cfn-files.template-file").unwrap_or_default();
    let action = s.str("cli.stack-action").unwrap_or_else(|| "deploy".into());
    // deploy.sh accepted `deploy`/`Deploy` and `delete`/`Delete`.
    let deleting = match action.as_str() {
        "deploy" | "Deploy" => false,
        "delete" | "Delete" => true,
        other => {
            return Err(setting_problem(
                "bitops::plugin::value",
                format!(
                "cloudformation `stack-action` is `{other}` in `{}`; it must be deploy or delete",
                ctx.tool_config_name
            ),
                format!(
                    "set `cloudformation: {{cli: {{stack-action: deploy}}}}` or the variable `{}`",
                    s.override_name("cli.stack-action")
                ),
            ))
        }
    } || ctx.action == Action::Destroy;
    if ctx.action == Action::Destroy {
        for k in ["CFN_STACK_ACTION", "BITOPS_CFN_STACK_ACTION"] {
            p.exports.insert(k.into(), "delete".into());
        }
    }

    let dir = &ctx.tool_dir;
    let region = region_args(ctx.env);
    let cfn = |args: &[&str]| {
        let mut argv = vec!["aws".to_string(), "cloudformation".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv.extend(region.iter().cloned());
        Step::new(argv, dir)
    };
    let events = {
        let mut e = cfn(&[
            "describe-stack-events",
            "--stack-name",
            &stack,
            "--query",
            "StackEvents[?contains(ResourceStatus,'FAILED')].[LogicalResourceId,ResourceStatus,ResourceStatusReason]",
            "--output",
            "text",
        ]);
        e.may_fail = true;
        e
    };

    if deleting {
        if ctx.action == Action::DryRun {
            // Nothing to preview for a deletion but what would go.
            let mut d = cfn(&["describe-stack-resources", "--stack-name", &stack]);
            d.may_fail = true;
            p.steps.push(d);
            return Ok(p);
        }
        let mut del = cfn(&["delete-stack", "--stack-name", &stack]);
        del.on_failure.push(events.clone());
        let mut wait = cfn(&["wait", "stack-delete-complete", "--stack-name", &stack]);
        wait.on_failure.push(events);
        p.steps.extend([del, wait]);
        return Ok(p);
    }

    let bucket = s.str("options.s3bucket");
    let prefix = s.str("options.s3prefix");
    let s3 = bucket
        .zip(prefix)
        .map(|(b, pf)| (b, pf.trim_matches('/').to_string()));
    let params = if s.bool("options.cfn-files.parameters.template-param-flag") {
        match s.str("options.cfn-files.parameters.template-param-file") {
            Some(f) => Some(f),
            None => {
                return Err(setting_problem(
                    "bitops::plugin::required",
                    format!(
                        "`template-param-flag` is true in `{}` but no `template-param-file` is set",
                        ctx.tool_config_name
                    ),
                    "add `cloudformation: {options: {cfn-files: {parameters: {template-param-file: params.json}}}}`".into(),
                ))
            }
        }
    } else {
        None
    };
    let capabilities: Vec<String> = s
        .str("options.capabilities")
        .map(|c| {
            c.split([' ', ','])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let big = crate::discover::record::metadata(dir.join(&template))
        .is_ok_and(|m| m.len() > TEMPLATE_BODY_LIMIT);

    if ctx.action != Action::DryRun {
        if let Some((b, pf)) = &s3 {
            let mut argv = vec![
                "aws".to_string(),
                "s3".into(),
                "sync".into(),
                ".".into(),
                format!("s3://{b}/{pf}/"),
            ];
            argv.extend(region.iter().cloned());
            p.steps.push(Step::new(argv, dir));
        }
    }
    if s.bool_opt("cli.validate-cfn").unwrap_or(true) {
        let mut v = match &s3 {
            Some((b, pf)) if big && ctx.action != Action::DryRun => cfn(&[
                "validate-template",
                "--template-url",
                &format!("https://{b}.s3.amazonaws.com/{pf}/{template}"),
            ]),
            _ => cfn(&[
                "validate-template",
                "--template-body",
                &format!("file://{template}"),
            ]),
        };
        v.argv.extend(["--output".into(), "text".into()]);
        p.steps.push(v);
    }

    if ctx.action == Action::DryRun {
        dry_run(
            &mut p,
            &cfn,
            &stack,
            &template,
            params.as_deref(),
            &capabilities,
        );
        return Ok(p);
    }

    let mut argv = vec![
        "deploy",
        "--stack-name",
        &stack,
        "--template-file",
        &template,
        "--no-fail-on-empty-changeset",
    ];
    let overrides = match &params {
        Some(f) => parameter_overrides(dir, f, &ctx.tool_config_name)?,
        None => Vec::new(),
    };
    if !overrides.is_empty() {
        argv.push("--parameter-overrides");
        argv.extend(overrides.iter().map(String::as_str));
    }
    if !capabilities.is_empty() {
        argv.push("--capabilities");
        argv.extend(capabilities.iter().map(String::as_str));
    }
    if let Some((b, pf)) = &s3 {
        argv.extend(["--s3-bucket", b, "--s3-prefix", pf]);
    }
    let mut deploy = cfn(&argv);
    deploy.on_failure.push(events);
    p.steps.push(deploy);
    let mut outputs = cfn(&["describe-stacks", "--stack-name", &stack]);
    outputs.capture = Capture::CloudFormationOutputs;
    p.steps.push(outputs);
    Ok(p)
}

/// A change set of the template against the stack: created as an UPDATE (or a CREATE when the
/// stack does not exist yet), awaited, described (the summary) and deleted.
fn dry_run(
    p: &mut Prepared,
    cfn: &dyn Fn(&[&str]) -> Step,
    stack: &str,
    template: &str,
    params: Option<&str>,
    caps: &[String],
) {
    let body = format!("file://{template}");
    let params_url = params.map(|f| format!("file://{f}"));
    let create = |kind: &str| {
        let mut argv = vec![
            "create-change-set",
            "--stack-name",
            stack,
            "--change-set-name",
            DRY_RUN_CHANGE_SET,
            "--change-set-type",
            kind,
        ];
        argv.extend(["--template-body", &body]);
        if let Some(u) = &params_url {
            argv.extend(["--parameters", u]);
        }
        if !caps.is_empty() {
            argv.push("--capabilities");
            argv.extend(caps.iter().map(String::as_str));
        }
        cfn(&argv)
    };
    let mut update = create("UPDATE");
    update.fallback = Some(Box::new(create("CREATE")));
    p.steps.push(update);
    let ids = [
        "--stack-name",
        stack,
        "--change-set-name",
        DRY_RUN_CHANGE_SET,
    ];
    let with = |head: &[&str]| {
        let mut a = head.to_vec();
        a.extend(ids);
        cfn(&a)
    };
    let mut cleanup = with(&["delete-change-set"]);
    cleanup.may_fail = true;
    // A change set without changes ends FAILED ("didn't contain changes"): not an error here;
    // describe-change-set shows the reason either way.
    let mut wait = with(&["wait", "change-set-create-complete"]);
    wait.may_fail = true;
    p.steps.push(wait);
    let mut describe = with(&["describe-change-set"]);
    describe.capture = Capture::DryRunSummary(DryRunTool::CloudFormation);
    describe.on_failure.push(cleanup.clone());
    p.steps.push(describe);
    p.steps.push(cleanup);
}

/// The parameters file as `Key=Value` arguments for `aws cloudformation deploy`, which (AWS CLI
/// v1) does not read BitOps' create-stack JSON (`[{"ParameterKey": …, "ParameterValue": …}]`).
/// Also accepted: `{"Parameters": {"Key": "Value"}}` and `{"Key": "Value"}`. An entry with
/// `UsePreviousValue: true` is left out, which makes deploy keep the stack's current value.
fn parameter_overrides(dir: &Path, file: &str, config: &str) -> Result<Vec<String>, Vec<Problem>> {
    let path = dir.join(file);
    let bad = |why: String| {
        vec![Problem::new("bitops::plugin::value", format!("cannot use the cloudformation parameters file `{file}`: {why}"))
            .path(&path)
            .help(format!(
                "write it as `[{{\"ParameterKey\": \"Name\", \"ParameterValue\": \"value\"}}]` (the file named by \
                 `template-param-file` in `{config}`, relative to the deployment folder)"
            ))]
    };
    let text =
        crate::discover::files::read_regular_string(&path).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let mut out = Vec::new();
    match &json {
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let key = item.get("ParameterKey").and_then(|k| k.as_str());
                let Some(key) = key else {
                    return Err(bad(format!("entry {i} has no `ParameterKey`")));
                };
                if item
                    .get("UsePreviousValue")
                    .and_then(serde_json::Value::as_bool)
                    == Some(true)
                {
                    continue;
                }
                let Some(val) = item.get("ParameterValue").and_then(scalar) else {
                    return Err(bad(format!("`{key}` has no `ParameterValue`")));
                };
                out.push(format!("{key}={val}"));
            }
        }
        serde_json::Value::Object(map) => {
            let map = match map.get("Parameters") {
                Some(serde_json::Value::Object(inner)) => inner,
                _ => map,
            };
            let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
            for (k, v) in sorted {
                let Some(val) = scalar(v) else {
                    return Err(bad(format!("`{k}` is not a string")));
                };
                out.push(format!("{k}={val}"));
            }
        }
        _ => return Err(bad("expected a list of parameters".into())),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{argvs, ctx_in, Fixture};
    use super::*;

    const BASE: &str = "cloudformation:\n  cli:\n    stack-action: deploy\n  options:\n    cfn-stack-name: my-stack\n    cfn-files:\n      template-file: template.yaml\n";
    const FULL: &str = "cloudformation:\n  cli:\n    validate-cfn: false\n  options:\n    cfn-stack-name: my-stack\n    capabilities: CAPABILITY_IAM CAPABILITY_NAMED_IAM\n    s3bucket: my-bucket\n    s3prefix: cfn/\n    cfn-files:\n      template-file: template.yaml\n      parameters:\n        template-param-flag: true\n        template-param-file: params.json\n";
    const REGION: &[(&str, &str)] = &[("AWS_DEFAULT_REGION", "us-east-1")];

    fn fixture(config: &str, env: &[(&str, &str)]) -> Fixture {
        let fx = Fixture::new(config, env);
        fx.write("template.yaml", "Resources: {}\n");
        fx.write("params.json", r#"[{"ParameterKey": "Env", "ParameterValue": "test"}, {"ParameterKey": "Old", "UsePreviousValue": true}, {"ParameterKey": "N", "ParameterValue": "a b"}]"#);
        fx
    }

    const EVENTS: &str = "aws cloudformation describe-stack-events --stack-name my-stack --query 'StackEvents[?contains(ResourceStatus,'\\''FAILED'\\'')].[LogicalResourceId,ResourceStatus,ResourceStatusReason]' --output text";

    #[test]
    fn deploy_command_lines() {
        let fx = fixture(BASE, REGION);
        let p = prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).unwrap();
        assert_eq!(
            argvs(&p),
            [
                "aws cloudformation validate-template --template-body file://template.yaml --region us-east-1 --output text",
                "aws cloudformation deploy --stack-name my-stack --template-file template.yaml --no-fail-on-empty-changeset --region us-east-1",
                "aws cloudformation describe-stacks --stack-name my-stack --region us-east-1",
            ]
        );
        assert_eq!(
            p.steps[1].on_failure[0].display(),
            format!("{EVENTS} --region us-east-1")
        );
        assert_eq!(p.steps[2].capture, Capture::CloudFormationOutputs);
        assert_eq!(p.tools, ["aws"]);

        let fx = fixture(FULL, &[("AWS_REGION", "eu-west-1")]);
        let p = prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).unwrap();
        assert_eq!(
            argvs(&p),
            [
                "aws s3 sync . s3://my-bucket/cfn/ --region eu-west-1",
                "aws cloudformation deploy --stack-name my-stack --template-file template.yaml --no-fail-on-empty-changeset --parameter-overrides Env=test 'N=a b' --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --s3-bucket my-bucket --s3-prefix cfn --region eu-west-1",
                "aws cloudformation describe-stacks --stack-name my-stack --region eu-west-1",
            ]
        );
    }

    #[test]
    fn validate_cfn_overrides() {
        // BitOps crashed without this variable and could not switch validation off from the config.
        let fx = fixture(BASE, &[("BITOPS_CLOUDFORMATION_VALIDATE_CFN", "false")]);
        let p = prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).unwrap();
        assert!(!argvs(&p)[0].contains("validate-template"));
        assert_eq!(p.exports["CFN_TEMPLATE_VALIDATION"], "false");
        let fx = fixture(FULL, &[("BITOPS_CLOUDFORMATION_VALIDATE_CFN", "true")]);
        let p = prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).unwrap();
        assert!(argvs(&p)[1].contains("validate-template"));
    }

    #[test]
    fn delete_and_destroy() {
        for (config, env, action) in [
            (BASE, &[][..], Action::Destroy),
            (
                BASE,
                &[("BITOPS_CLOUDFORMATION_STACK_ACTION", "delete")][..],
                Action::Deploy,
            ),
        ] {
            let fx = fixture(config, env);
            let p = prepare(&ctx_in(&fx, "cloudformation", action)).unwrap();
            assert_eq!(
                argvs(&p),
                [
                    "aws cloudformation delete-stack --stack-name my-stack",
                    "aws cloudformation wait stack-delete-complete --stack-name my-stack"
                ]
            );
            assert_eq!(p.exports["CFN_STACK_ACTION"], "delete");
            assert_eq!(p.steps[1].on_failure[0].display(), EVENTS);
        }
    }

    #[test]
    fn dry_run_change_set() {
        let fx = fixture(FULL, &[]);
        let p = prepare(&ctx_in(&fx, "cloudformation", Action::DryRun)).unwrap();
        let create = "aws cloudformation create-change-set --stack-name my-stack --change-set-name bitops-dry-run --change-set-type";
        let rest = "--template-body file://template.yaml --parameters file://params.json --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM";
        assert_eq!(
            argvs(&p),
            [
                format!("{create} UPDATE {rest} || {create} CREATE {rest}"),
                "aws cloudformation wait change-set-create-complete --stack-name my-stack --change-set-name bitops-dry-run".into(),
                "aws cloudformation describe-change-set --stack-name my-stack --change-set-name bitops-dry-run".into(),
                "aws cloudformation delete-change-set --stack-name my-stack --change-set-name bitops-dry-run".into(),
            ]
        );
        assert!(p.steps[1].may_fail && p.steps[3].may_fail);
        assert_eq!(
            p.steps[2].capture,
            Capture::DryRunSummary(DryRunTool::CloudFormation)
        );
    }

    #[test]
    fn required_settings_skip_and_bad_values() {
        let fx = fixture("cloudformation: {}", &[]);
        let e = prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).unwrap_err();
        let text = format!("{e:?}");
        assert!(
            text.contains("cfn-stack-name") && text.contains("template-file"),
            "{text}"
        );
        for env in [
            &[("CFN_SKIP_DEPLOY", "true")][..],
            &[("BITOPS_CLOUDFORMATION_SKIP_DEPLOY", "true")][..],
        ] {
            let fx = fixture(BASE, env);
            assert!(prepare(&ctx_in(&fx, "cloudformation", Action::Deploy))
                .unwrap()
                .skip
                .is_some());
        }
        let fx = fixture(BASE, &[("BITOPS_CLOUDFORMATION_STACK_ACTION", "update")]);
        assert!(prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).is_err());
        let fx = fixture(FULL, &[]);
        fx.write("params.json", "{not json");
        let e = prepare(&ctx_in(&fx, "cloudformation", Action::Deploy)).unwrap_err();
        assert!(e[0].message.contains("not JSON"));
    }

    #[test]
    fn parameter_file_formats() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"Parameters": {"B": "2", "A": 1}}"#,
        )
        .unwrap();
        assert_eq!(
            parameter_overrides(dir.path(), "a.json", "c").unwrap(),
            ["A=1", "B=2"]
        );
        std::fs::write(dir.path().join("b.json"), r#"{"X": "y"}"#).unwrap();
        assert_eq!(
            parameter_overrides(dir.path(), "b.json", "c").unwrap(),
            ["X=y"]
        );
        assert!(parameter_overrides(dir.path(), "missing.json", "c").is_err());
    }
}
