//! The `aws` built-in: not a deployment plugin. In BitOps it installed the AWS CLI and provided
//! `eks.update-kubeconfig.sh` to helm; credentials were consumed by the AWS CLI straight from the
//! `AWS_*` variables. Here it is the helpers the other built-ins use for region, credentials and
//! EKS kubeconfig, and a clear error for a deployment that names it.
//!
//! Endpoint overrides need nothing from us: the AWS CLI (v2, and v1 from 1.29 on) reads
//! `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`) itself, which the tests use to talk to
//! a local moto server.

use std::collections::BTreeMap;
use std::path::Path;

use crate::diagnostic::Problem;
use crate::plugins::step::{Context, Prepared, Step};

/// A deployment whose plugin is `aws`: BitOps would have re-run the plugin's installer (its
/// `deployment_script` is `install.sh`) and then failed for lack of a schema (exit 2).
pub(super) fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    Err(vec![Problem::new(
        "bitops::plugin::not_deployable",
        format!(
            "`{}/{}` uses the plugin `aws`, which deploys nothing: it provides AWS credentials, region and EKS \
             kubeconfig to the cloudformation, helm and kubectl plugins",
            ctx.environment, ctx.deployment
        ),
    )
    .help(
        "remove this deployment from `bitops.deployments`, or give it a deploying plugin (cloudformation, terraform, \
         helm, kubectl, ansible); AWS credentials come from the AWS_* environment variables",
    )])
}

/// The region the AWS CLI should use: `AWS_DEFAULT_REGION` (what BitOps passed), else
/// `AWS_REGION` (what the SDKs read, and the AWS CLI v1 does not).
pub fn region(env: &BTreeMap<String, String>) -> Option<&str> {
    ["AWS_DEFAULT_REGION", "AWS_REGION"]
        .iter()
        .find_map(|k| env.get(*k).map(String::as_str).filter(|v| !v.is_empty()))
}

/// `--region <region>` when one is known, so the plan shows it and `AWS_REGION` alone works;
/// nothing otherwise, leaving the CLI to its profile.
pub fn region_args(env: &BTreeMap<String, String>) -> Vec<String> {
    region(env)
        .map(|r| vec!["--region".to_string(), r.to_string()])
        .unwrap_or_default()
}

/// Whether the environment names any AWS credentials source the CLI reads (keys, a profile, web
/// identity, container credentials). Instance metadata cannot be seen from here, so `false` is
/// only a hint for messages, never a reason to refuse a deployment.
pub fn has_credentials(env: &BTreeMap<String, String>) -> bool {
    let set = |k: &str| env.get(k).is_some_and(|v| !v.is_empty());
    (set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY"))
        || set("AWS_PROFILE")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
}

/// `aws eks update-kubeconfig --name <cluster> [--region <region>] --kubeconfig <file>`: what
/// the aws plugin's `eks.update-kubeconfig.sh` ran for helm.
pub fn eks_update_kubeconfig(
    cluster: &str,
    env: &BTreeMap<String, String>,
    kubeconfig: &str,
    cwd: &Path,
) -> Step {
    let mut argv = vec![
        "aws".to_string(),
        "eks".into(),
        "update-kubeconfig".into(),
        "--name".into(),
        cluster.into(),
    ];
    argv.extend(region_args(env));
    argv.extend(["--kubeconfig".to_string(), kubeconfig.to_string()]);
    Step::new(argv, cwd)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ctx_in, Fixture};
    use super::*;
    use crate::plugins::step::Action;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn region_prefers_the_default_region() {
        assert_eq!(
            region(&env(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_DEFAULT_REGION", "us-east-2")
            ])),
            Some("us-east-2")
        );
        assert_eq!(
            region(&env(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_DEFAULT_REGION", "")
            ])),
            Some("eu-west-1")
        );
        assert!(region_args(&env(&[])).is_empty());
    }

    #[test]
    fn credentials_hint() {
        assert!(has_credentials(&env(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b")
        ])));
        assert!(has_credentials(&env(&[("AWS_PROFILE", "dev")])));
        assert!(!has_credentials(&env(&[("AWS_ACCESS_KEY_ID", "a")])));
    }

    #[test]
    fn eks_kubeconfig_command() {
        let s = eks_update_kubeconfig(
            "prod",
            &env(&[("AWS_DEFAULT_REGION", "us-east-2")]),
            "/t/.kube/config",
            Path::new("/w"),
        );
        assert_eq!(
            s.display(),
            "aws eks update-kubeconfig --name prod --region us-east-2 --kubeconfig /t/.kube/config"
        );
    }

    #[test]
    fn not_a_deployment() {
        let fx = Fixture::new("", &[]);
        let e = prepare(&ctx_in(&fx, "aws", Action::Deploy)).unwrap_err();
        assert_eq!(e[0].code, "bitops::plugin::not_deployable");
    }
}
