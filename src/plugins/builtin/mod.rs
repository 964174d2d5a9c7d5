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
pub mod reference;
pub mod terraform;

#[cfg(test)]
mod real_tools;
#[cfg(test)]
mod test_support;

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
pub const DEVIATIONS: &[(&str, &str)] = &[
    // --- all built-ins
    (
        "Built-ins resolve their tool-level config with the same resolver as BitOps-format plugins, \
         so its fixes apply to them too (a config `false` beats a default, `\"false\"` is false, \
         unknown keys are errors with a did-you-mean, every missing required key is reported at \
         once).",
        "See the BitOps-format contract deviations: BitOps' parser had these bugs for the \
         official plugins as well.",
    ),
    (
        "Files a built-in looks for (ENV_FILE, helm charts, values files and chart hooks, kubectl \
         manifests, the cloudformation parameters file) are read when the deployment is prepared, \
         before its before-deploy hooks run; `bitops plan` shows the same commands a deploy runs.",
        "BitOps' shell scripts looked at the files after the hooks had run, so a hook could \
         generate them. A hook that generates such files must now write them where the tool \
         reads them at run time (for example a values file listed in the chart's values-files/ \
         that already exists in the repo).",
    ),
    (
        "A deployment skipped by its config (`skip-deploy`, `*_SKIP_DEPLOY`) is reported as \
         skipped, with the reason.",
        "BitOps' scripts exited 0 silently, indistinguishable from a deployment that ran.",
    ),
    // --- terraform
    (
        "terraform: `backend-config` items are passed to `terraform init` as `-backend-config=…`, \
         `var-file` and `targets` to plan (`-var-file=…`, `-target=…`).",
        "BitOps' deploy.sh appended `$BITOPS_CONFIG_COMMAND`, which nothing set since core took \
         over the CLI string, so these settings had no effect (reference §6.1).",
    ),
    (
        "terraform: apply runs `terraform plan -out=<file>` then `terraform apply <file>` (the \
         file is `<env>__<deployment>.tfplan` in the run folder's `outputs/`, beside \
         `$BITOPS_OUTPUT_FILE`, or `bitops.tfplan` in `$TF_DATA_DIR` when that is set; never in \
         the repo); destroy does the same with `plan -destroy`.",
        "BitOps ran `terraform plan` and then `terraform apply -auto-approve`, which plans again \
         and can apply something other than what was shown.",
    ),
    (
        "terraform: all `targets` go into one plan and only they are applied (and destroyed).",
        "BitOps planned and applied each target separately and then ran the untargeted plan and \
         apply anyway (independent `if`s), so targets only changed the order; on destroy they \
         were ignored.",
    ),
    (
        "terraform: a `stack-action` other than plan, apply or destroy is a configuration error.",
        "BitOps only ran `terraform init` for it and reported success.",
    ),
    (
        "terraform: `TERRAFORM_DESTROY=true` together with `TERRAFORM_APPLY=true` (or \
         `stack-action: apply`) destroys only.",
        "BitOps' independent `if`s applied and then destroyed.",
    ),
    (
        "terraform: `options.init-upgrade: true` (or `INIT_UPGRADE=true`, or \
         `BITOPS_TERRAFORM_INIT_UPGRADE`) adds `-upgrade` to `terraform init`.",
        "The official README documents INIT_UPGRADE and the schema carries the key commented \
         out, but neither was implemented.",
    ),
    (
        "terraform: the workspace is chosen with `terraform workspace select -or-create <ws>` \
         (terraform 1.4+), falling back to `workspace new <ws> || workspace select <ws>`.",
        "Same result as BitOps' `new || select`, without an error in the log for every existing \
         workspace.",
    ),
    (
        "terraform: `ENV_FILE` in the tool folder is read without a shell: `export NAME=value` \
         and `NAME=value` lines with quotes and `$NAME`/`${NAME}` expansion become the terraform \
         commands' environment; any other shell syntax (command substitution, other commands) \
         is a configuration error naming the line.",
        "BitOps `source`d it in bash. Built-ins run without a shell, and a silently different \
         result is worse than a clear error.",
    ),
    (
        "terraform: every command runs with `-input=false`; `terraform` is the one on PATH.",
        "BitOps' plan/apply could wait for input on an unset variable; its \
         `terraform-$TERRAFORM_VERSION` fallback binary and the `*_ALTERNATE_COMMAND` switches \
         (which called scripts that no longer exist) are not reproduced.",
    ),
    (
        "terraform: `bitops destroy` exports TERRAFORM_COMMAND/BITOPS_TERRAFORM_COMMAND=destroy \
         to the hooks, whatever `stack-action` says.",
        "BitOps had no destroy run; hooks that clean up can tell what is happening.",
    ),
    // --- ansible
    (
        "ansible: each option is one argument of `ansible-playbook` (so `extra-vars: \"a=1 b=2\"` \
         stays one value); `BITOPS_ANSIBLE_CLI` is still exported exactly as composed.",
        "BitOps ran `ansible-playbook ${BITOPS_ANSIBLE_CLI}` unquoted, so a value with a space \
         split into several arguments.",
    ),
    (
        "ansible: `bitops destroy` skips an ansible deployment with the reason \"ansible has no \
         destroy action\".",
        "The ansible plugin has no destroy; running the playbook again would deploy.",
    ),
    // --- helm
    (
        "helm: the release is named after the chart folder, as in BitOps; `release-name` is only \
         exported (HELM_RELEASE_NAME) and no longer required.",
        "BitOps required `release-name` and then replaced it with the folder name; renaming \
         releases now would orphan every existing one.",
    ),
    (
        "helm: `k8s.fetch.cluster-name` is required only when the kubeconfig is fetched; with \
         `k8s.fetch.kubeconfig: false` and no other source, kubectl's default kubeconfig \
         ($KUBECONFIG, ~/.kube/config) is used.",
        "BitOps required a cluster name even with a base64 kubeconfig or a kubeconfig path, and \
         exited 1 when fetching was off.",
    ),
    (
        "helm: a missing `namespace` (or any other problem in a chart's config) is an error \
         reported for every chart before anything runs.",
        "BitOps' converter printed nothing on a missing required key and the chart was deployed \
         with an empty CLI (no namespace).",
    ),
    (
        "helm: every chart is installed with `--namespace <helm.cli.namespace>`. Migration \
         hazard: check `helm list --all-namespaces` before the first deploy, and set \
         `namespace:` to where an existing release really is to keep it (docs/configuration.md, \
         \"Moving from BitOps: helm namespaces\").",
        "BitOps' converter printed no command line at all when any required key was missing \
         (typically `k8s.fetch.cluster-name` with a base64 kubeconfig), so helm ran without \
         `--namespace` and the release went into the kubeconfig context's namespace; bitops \
         would install a second copy in the configured one.",
    ),
    (
        "helm: each `set` item is passed as its own `--set key=value`.",
        "BitOps' converter rendered `--set k1=v1 set k2=v2`, which broke the command for more \
         than one item.",
    ),
    (
        "helm: `skip-deploy: true` in a chart's config skips the chart; it is not passed to \
         helm.",
        "BitOps compared the converter's `True` with `true`, so only the HELM_SKIP_DEPLOY \
         variable worked, and it rendered `--skip-deploy`, which helm rejects.",
    ),
    (
        "helm: `helm upgrade --install --create-namespace … --cleanup-on-fail`, and `helm rollback \
         <release> 0` when it fails (not with `--atomic`, which rolls back by itself).",
        "BitOps grepped `helm list` and `kubectl get namespaces` by substring (release `web` \
         matched `web-api`), and for a release in a failed state rolled back without deploying.",
    ),
    (
        "helm: `uninstall: true` or HELM_UNINSTALL_CHARTS uninstalls the release; `bitops \
         destroy` uninstalls every chart in reverse order with `helm uninstall \
         --ignore-not-found` (helm 3.13+).",
        "BitOps called an uninstall script that does not exist, and had no destroy.",
    ),
    (
        "helm: `k8s.kubeconfigpath` is used as the kubeconfig (a relative path is relative to \
         the chart folder); `KUBECONFIG_BASE64` works like `BITOPS_KUBECONFIG_BASE64`, which wins.",
        "BitOps then validated `$BITOPS_KUBE_CONFIG_FILE` instead, so a kubeconfig path failed \
         unless that file also existed; its helm script overwrote KUBECONFIG_BASE64.",
    ),
    (
        "helm: a base64 kubeconfig or HELM_SECRETS_BASE64 is decoded by a `sh -c … base64 -d` \
         step that reads the variable, so the secret never appears in a command line or plan.",
        "BitOps decoded them in its bash scripts.",
    ),
    (
        "helm: with `default-dir-flag: true` the default chart (`<default>/helm/<chart>`) reaches \
         the chart through the working copy's `_default` merge, where the environment's files \
         win; a chart that exists only in `<default>/helm` is deployed in every environment. With \
         `default-dir-flag: false`, `<env>/helm/<default-root-dir>/<chart>`'s crds, charts, \
         templates and schema folders are copied into the chart as BitOps did.",
        "BitOps copied the default chart's folders over the chart (the default won) and only \
         iterated the environment's own chart folders; bitops merges `_default` the same way for \
         every tool.",
    ),
    (
        "helm: a chart's settings are exported to its commands with their `BITOPS_` copies and \
         can be overridden with `BITOPS_HELM_<KEY>` like any plugin's; they are passed as the \
         commands' environment instead of being appended to the chart's ENV_FILE (which is read \
         like terraform's).",
        "BitOps' helm converter had its own rules (no copies, no overrides) and modified the \
         ENV_FILE of the working copy.",
    ),
    (
        "helm: chart hooks (`bitops.before-deploy.d/*.sh`, `bitops.after-deploy.d/*.sh`, \
         executable files only) run with `bash` in the chart folder, not around a dry run; \
         hook folders in `<env>/helm` are never taken for charts.",
        "BitOps ran them with `bash -x` from its own working directory, and would have treated \
         a hook folder in `<env>/helm` as a chart.",
    ),
    // --- cloudformation
    (
        "cloudformation: a failing validate-template, upload or deploy fails the deployment, \
         after printing the stack's failed events (`describe-stack-events`).",
        "BitOps' deploy.sh had no `set -e` and ended with an `if`, so it exited 0 after any \
         failure, and a failing validation did not stop the deploy.",
    ),
    (
        "cloudformation: deploy uses `aws cloudformation deploy --no-fail-on-empty-changeset` \
         (creates or updates through a change set and waits); the parameters file \
         (`[{\"ParameterKey\", \"ParameterValue\"}]`, or `{\"Parameters\": {…}}`) becomes \
         `--parameter-overrides Key=Value` (entries with UsePreviousValue keep the stack's \
         value); `capabilities` may be separated by spaces or commas.",
        "BitOps ran describe-stacks, then create-stack or update-stack and a waiter, and always \
         passed `--capabilities $CFN_CAPABILITY`, even empty.",
    ),
    (
        "cloudformation: with `s3bucket` and `s3prefix`, the tool folder is synced to \
         `s3://<bucket>/<prefix>/` as in BitOps, and deploy gets `--s3-bucket/--s3-prefix`.",
        "BitOps built `https://<bucket>.s3.amazonaws.com/<prefix>/<template>` by hand, which \
         fails where a regional S3 endpoint or an endpoint override is needed.",
    ),
    (
        "cloudformation: `--region` is added from AWS_DEFAULT_REGION or AWS_REGION when set; there \
         is no `aws sts get-caller-identity` pre-check and no check for installed aws/kubectl \
         plugin folders.",
        "The AWS CLI v1 ignores AWS_REGION; the CLI's own error on missing credentials is \
         clearer than the pre-check, and built-ins need no plugin folders.",
    ),
    (
        "cloudformation: a `stack-action` other than deploy/delete, or `template-param-flag: \
         true` without `template-param-file`, is a configuration error; `bitops destroy` deletes \
         the stack (and exports CFN_STACK_ACTION=delete).",
        "BitOps did nothing and exited 0 for an unknown action, and passed \
         `--parameters=file://` with an empty name.",
    ),
    (
        "cloudformation: the dry run creates a change set `bitops-dry-run` (UPDATE, or CREATE when \
         the stack does not exist), describes and deletes it. A CREATE change set leaves the new \
         stack in REVIEW_IN_PROGRESS, which the next deploy reuses (AWS behaviour).",
        "BitOps had no dry run.",
    ),
    // --- kubectl and aws
    (
        "kubectl: a deployment plugin: `kubectl apply -f <manifests>` (or `-k .`), `kubectl \
         delete --ignore-not-found` on destroy or `stack-action: delete`, `kubectl diff` as the \
         dry run; its keys (namespace, server-side, stack-action, skip-deploy, files, k8s.*) are \
         bitops' own.",
        "BitOps' kubectl plugin was only a library for helm (no schema, not deployable).",
    ),
    (
        "aws: naming `aws` as a deployment's plugin is a configuration error that says what the \
         plugin is for.",
        "BitOps re-ran the plugin's installer as the deploy script and then exited 2 for the \
         missing schema.",
    ),
];

#[cfg(test)]
mod tests {
    use super::test_support::{ctx_in, Fixture};
    use super::*;
    use crate::plugins::step::Action;

    #[test]
    fn names_and_dispatch() {
        for name in BUILTINS {
            assert!(is_builtin(name));
        }
        assert!(!is_builtin("example-plugin"));
        let fx = Fixture::new("", &[]);
        let e = prepare(&ctx_in(&fx, "example-plugin", Action::Deploy)).unwrap_err();
        assert_eq!(e[0].code, "bitops::plugin::unknown");
        // Every built-in answers for an empty folder (a problem or a plan, never a panic).
        for name in BUILTINS {
            let _ = prepare(&ctx_in(&fx, name, Action::Deploy));
        }
    }

    #[test]
    fn deviations_are_written_out() {
        let mut seen = std::collections::BTreeSet::new();
        for (what, why) in DEVIATIONS {
            assert!(what.len() > 20 && why.len() > 20, "{what}");
            assert!(!what.contains("  ") && !why.contains("  "), "{what}");
            assert!(seen.insert(*what), "duplicate: {what}");
        }
    }
}
