//! The built-in kubectl plugin, and the kubeconfig handling it shares with helm.
//!
//! BitOps' kubectl plugin only installed kubectl and decoded `KUBECONFIG_BASE64` for helm; it
//! could not be a deployment. Here a kubectl deployment applies the manifests of its folder:
//! `kubectl apply -f <file>… [--namespace <ns>] [--server-side] [--kubeconfig <file>]`, or
//! `kubectl apply -k .` when the folder is a kustomization. Destroy (or `stack-action: delete`)
//! is `kubectl delete --ignore-not-found` of the same files in reverse order; a dry run is
//! `kubectl diff`, which exits 1 when there are differences.
//!
//! The kubeconfig comes, in this order, from `BITOPS_KUBECONFIG_BASE64` or `KUBECONFIG_BASE64`
//! (decoded into `$BITOPS_KUBE_CONFIG_FILE` by a step, so the secret never appears in a command
//! line), from `k8s.kubeconfigpath`, from `aws eks update-kubeconfig` when `k8s.fetch.kubeconfig`
//! is true, and otherwise from kubectl's own default (`$KUBECONFIG`, `~/.kube/config`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use crate::diagnostic::Problem;
use crate::plugins::bitops_format::Schema;
use crate::plugins::step::{Action, Capture, Context, DryRunTool, Prepared, Step};

use super::aws::eks_update_kubeconfig;
use super::common::{env_true, schema, setting_problem, Settings};

static SCHEMA: OnceLock<Schema> = OnceLock::new();
const SCHEMA_TEXT: &str = include_str!("schemas/kubectl.schema.yaml");

pub(super) fn kubectl_schema() -> &'static Schema {
    schema(&SCHEMA, "built-in kubectl.schema.yaml", SCHEMA_TEXT)
}

/// Files that are never manifests even though they are YAML.
const NOT_MANIFESTS: &[&str] = &["bitops.config.yaml"];

/// Where a deployment's kubeconfig comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum KubeSource {
    /// Decoded from this environment variable into the kubeconfig file.
    Base64(&'static str),
    /// A kubeconfig file the user named.
    Path(String),
    /// `aws eks update-kubeconfig` for this cluster into the kubeconfig file.
    Fetch(String),
    /// kubectl's and helm's own default.
    Ambient,
}

/// The kubeconfig arguments and the steps that produce the file.
#[derive(Clone, Debug, Default)]
pub(super) struct KubeSetup {
    pub steps: Vec<Step>,
    /// `--kubeconfig <file>`, or nothing for the ambient kubeconfig.
    pub args: Vec<String>,
    pub tools: Vec<String>,
}

/// `$BITOPS_KUBE_CONFIG_FILE` (set for every deployment, under the run's temporary folder);
/// without it, `.kube/config` under `$BITOPS_TEMPDIR` as BitOps placed it, or under the tool
/// folder as a last resort.
pub(super) fn kubeconfig_file(ctx: &Context<'_>) -> String {
    if let Some(f) = ctx
        .env
        .get("BITOPS_KUBE_CONFIG_FILE")
        .filter(|f| !f.is_empty())
    {
        return f.clone();
    }
    let base = ctx
        .env
        .get("BITOPS_TEMPDIR")
        .filter(|t| !t.is_empty())
        .map_or_else(|| ctx.tool_dir.clone(), Into::into);
    base.join(".kube")
        .join("config")
        .to_string_lossy()
        .into_owned()
}

/// Chooses the kubeconfig source. `fetch`/`cluster` come from the plugin's `k8s.fetch` settings.
pub(super) fn kube_source(
    env: &BTreeMap<String, String>,
    path: Option<String>,
    fetch: bool,
    cluster: Option<String>,
) -> Result<KubeSource, String> {
    for var in ["BITOPS_KUBECONFIG_BASE64", "KUBECONFIG_BASE64"] {
        if env.get(var).is_some_and(|v| !v.trim().is_empty()) {
            return Ok(KubeSource::Base64(var));
        }
    }
    if let Some(p) = path {
        return Ok(KubeSource::Path(p));
    }
    if fetch {
        return match cluster {
            Some(c) => Ok(KubeSource::Fetch(c)),
            None => {
                Err("`k8s.fetch.kubeconfig` is true but no `k8s.fetch.cluster-name` is set".into())
            }
        };
    }
    Ok(KubeSource::Ambient)
}

/// The help for a deployment that has no way to get a kubeconfig.
pub(super) fn kube_help(root: &str) -> String {
    format!(
        "set `{root}: {{options: {{k8s: {{fetch: {{cluster-name: <EKS cluster>}}}}}}}}`, or pass the kubeconfig in \
         BITOPS_KUBECONFIG_BASE64, or name a file in `k8s.kubeconfigpath`, or set `k8s.fetch.kubeconfig: false` \
         to use $KUBECONFIG"
    )
}

/// The step that decodes the base64 kubeconfig into `file`. The value stays in the environment
/// (never in the command line, so plans and logs do not show it); `sh` and `base64` are on
/// every system that has kubectl.
pub(super) fn decode_to_file_step(var: &str, file: &str, cwd: &Path) -> Step {
    let script = format!("umask 077 && mkdir -p \"$(dirname \"$1\")\" && printf '%s' \"${var}\" | base64 -d > \"$1\"");
    Step::new(
        [
            "sh".to_string(),
            "-c".into(),
            script,
            "bitops-decode".into(),
            file.into(),
        ],
        cwd,
    )
}

/// Steps and arguments for a source, run in `cwd` (the deployment folder, or a helm chart's).
/// A relative `kubeconfigpath` is relative to `cwd`: BitOps resolved it against its own working
/// directory (`/opt/bitops`), which no repo can have meant.
pub(super) fn kube_setup(src: &KubeSource, ctx: &Context<'_>, cwd: &Path) -> KubeSetup {
    let file = kubeconfig_file(ctx);
    match src {
        KubeSource::Base64(var) => KubeSetup {
            steps: vec![decode_to_file_step(var, &file, cwd)],
            args: vec!["--kubeconfig".into(), file],
            tools: vec!["sh".into(), "base64".into()],
        },
        KubeSource::Path(p) => {
            let path = cwd.join(p).to_string_lossy().into_owned();
            KubeSetup {
                steps: Vec::new(),
                args: vec!["--kubeconfig".into(), path],
                tools: Vec::new(),
            }
        }
        KubeSource::Fetch(cluster) => KubeSetup {
            steps: vec![eks_update_kubeconfig(cluster, ctx.env, &file, cwd)],
            args: vec!["--kubeconfig".into(), file],
            tools: vec!["aws".into()],
        },
        KubeSource::Ambient => KubeSetup::default(),
    }
}

pub(super) fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    let s = Settings::for_context(kubectl_schema(), ctx)?;
    let mut p = s.prepared("kubectl");
    if s.bool_opt("options.skip-deploy")
        .unwrap_or_else(|| env_true(ctx.env, "KUBECTL_SKIP_DEPLOY"))
    {
        p.skip = Some("kubectl skip-deploy is set".into());
        return Ok(p);
    }
    let action = s.str("cli.stack-action").unwrap_or_else(|| "apply".into());
    let deleting = match action.as_str() {
        "apply" => false,
        "delete" => true,
        other => {
            return Err(setting_problem(
                "bitops::plugin::value",
                format!(
                    "kubectl `stack-action` is `{other}` in `{}`; it must be apply or delete",
                    ctx.tool_config_name
                ),
                format!(
                    "set `kubectl: {{cli: {{stack-action: apply}}}}` or the variable `{}`",
                    s.override_name("cli.stack-action")
                ),
            ))
        }
    } || ctx.action == Action::Destroy;

    let src = kube_source(
        ctx.env,
        s.str("options.k8s.kubeconfigpath"),
        s.bool("options.k8s.fetch.kubeconfig"),
        s.str("options.k8s.fetch.cluster-name"),
    )
    .map_err(|why| {
        setting_problem(
            "bitops::plugin::kubeconfig",
            format!("{why} in `{}`", ctx.tool_config_name),
            kube_help("kubectl"),
        )
    })?;
    let kube = kube_setup(&src, ctx, &ctx.tool_dir);
    p.tools.extend(kube.tools.iter().cloned());
    p.steps.extend(kube.steps.iter().cloned());

    let mut files = manifests(ctx, &s)?;
    let mut argv = vec!["kubectl".to_string()];
    match (deleting, ctx.action) {
        (false, Action::DryRun) => argv.push("diff".into()),
        (false, _) => argv.push("apply".into()),
        (true, _) => {
            argv.push("delete".into());
            // Dependents (a Deployment in a Namespace) go before what they live in: reverse the
            // `-f <file>` pairs.
            files = files.chunks(2).rev().flatten().cloned().collect();
        }
    }
    argv.extend(files);
    if let Some(ns) = s.str("cli.namespace") {
        argv.extend(["--namespace".into(), ns]);
    }
    if deleting {
        argv.push("--ignore-not-found".into());
        if ctx.action == Action::DryRun {
            argv.push("--dry-run=server".into());
        }
    } else if s.bool("cli.server-side") {
        argv.push("--server-side".into());
    }
    argv.extend(kube.args);
    let mut step = Step::new(argv, &ctx.tool_dir);
    if ctx.action == Action::DryRun && !deleting {
        // `kubectl diff` exits 1 when there are differences, >1 on errors.
        step.ok_codes = vec![1];
        step.capture = Capture::DryRunSummary(DryRunTool::Kubectl);
    }
    p.steps.push(step);
    Ok(p)
}

/// `-f <file>` arguments (or `-k .` for a kustomization), relative to the tool folder: the
/// configured `files`, or every `.yaml`, `.yml` and `.json` file in the folder and its
/// sub-folders (hook folders and hidden ones excluded), sorted.
fn manifests(ctx: &Context<'_>, s: &Settings<'_>) -> Result<Vec<String>, Vec<Problem>> {
    let configured = s.list("options.files");
    let files = if !configured.is_empty() {
        configured
    } else if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|k| crate::discover::record::is_file(ctx.tool_dir.join(k)))
    {
        return Ok(vec!["-k".into(), ".".into()]);
    } else {
        let mut found = Vec::new();
        collect(&ctx.tool_dir, "", &mut found);
        found.sort();
        found
    };
    if files.is_empty() {
        return Err(setting_problem(
            "bitops::plugin::no_manifests",
            format!(
                "`{}/{}` has no Kubernetes manifests (.yaml, .yml or .json files) to apply",
                ctx.environment, ctx.deployment
            ),
            "add manifests to the folder, or list them in `kubectl: {options: {files: [...]}}`"
                .into(),
        ));
    }
    Ok(files
        .into_iter()
        .flat_map(|f| ["-f".to_string(), f])
        .collect())
}

fn collect(dir: &Path, rel: &str, out: &mut Vec<String>) {
    let Ok(rd) = crate::discover::record::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let path = e.path();
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if name.starts_with('.') || name.starts_with("bitops.") || name.starts_with("bitops-") {
            continue;
        }
        if crate::discover::record::is_dir(&path) {
            collect(&path, &rel_name, out);
        } else if (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
            && !(rel.is_empty() && NOT_MANIFESTS.contains(&name.as_str()))
        {
            out.push(rel_name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{argvs, ctx_in, Case, Fixture};
    use super::*;

    fn fixture(config: &str, env: &[(&str, &str)]) -> Fixture {
        let fx = Fixture::new(config, env);
        fx.write("a-namespace.yaml", "kind: Namespace\n");
        fx.write("b/deploy.yml", "kind: Deployment\n");
        fx.write("bitops.config.yaml", "kubectl: {}\n");
        fx.write("bitops.before-deploy.d/x.yaml", "not a manifest\n");
        fx.write("README.md", "docs\n");
        fx
    }

    const ENV: &[(&str, &str)] = &[("BITOPS_KUBE_CONFIG_FILE", "/run/.kube/config")];

    #[test]
    fn command_lines() {
        let cases: &[Case] = &[
            ("", ENV, Action::Deploy, &["kubectl apply -f a-namespace.yaml -f b/deploy.yml"]),
            (
                "kubectl: {cli: {namespace: web, server-side: true}}",
                ENV,
                Action::Deploy,
                &["kubectl apply -f a-namespace.yaml -f b/deploy.yml --namespace web --server-side"],
            ),
            ("", ENV, Action::Destroy, &["kubectl delete -f b/deploy.yml -f a-namespace.yaml --ignore-not-found"]),
            ("kubectl: {cli: {stack-action: delete}}", ENV, Action::Deploy, &["kubectl delete -f b/deploy.yml -f a-namespace.yaml --ignore-not-found"]),
            ("", ENV, Action::DryRun, &["kubectl diff -f a-namespace.yaml -f b/deploy.yml"]),
            ("kubectl: {options: {files: [b/deploy.yml]}}", ENV, Action::Deploy, &["kubectl apply -f b/deploy.yml"]),
            (
                "kubectl: {options: {k8s: {fetch: {kubeconfig: true, cluster-name: prod}}}}",
                &[("BITOPS_KUBE_CONFIG_FILE", "/run/.kube/config"), ("AWS_DEFAULT_REGION", "us-east-2")],
                Action::Deploy,
                &[
                    "aws eks update-kubeconfig --name prod --region us-east-2 --kubeconfig /run/.kube/config",
                    "kubectl apply -f a-namespace.yaml -f b/deploy.yml --kubeconfig /run/.kube/config",
                ],
            ),
            (
                "",
                &[("BITOPS_KUBE_CONFIG_FILE", "/run/.kube/config"), ("KUBECONFIG_BASE64", "YQ==")],
                Action::Deploy,
                &[
                    "sh -c 'umask 077 && mkdir -p \"$(dirname \"$1\")\" && printf '\\''%s'\\'' \"$KUBECONFIG_BASE64\" | base64 -d > \"$1\"' bitops-decode /run/.kube/config",
                    "kubectl apply -f a-namespace.yaml -f b/deploy.yml --kubeconfig /run/.kube/config",
                ],
            ),
        ];
        for (i, (config, env, action, want)) in cases.iter().enumerate() {
            let fx = fixture(config, env);
            let p = prepare(&ctx_in(&fx, "kubectl", *action))
                .unwrap_or_else(|e| panic!("case {i}: {e:?}"));
            assert_eq!(argvs(&p), *want, "case {i}");
        }
    }

    #[test]
    fn kubeconfig_path_is_relative_to_the_folder_and_dry_run_codes() {
        let fx = fixture(
            "kubectl: {options: {k8s: {kubeconfigpath: kube.conf}}}",
            ENV,
        );
        let p = prepare(&ctx_in(&fx, "kubectl", Action::DryRun)).unwrap();
        let last = p.steps.last().unwrap();
        assert_eq!(
            last.argv.last().unwrap(),
            &fx.tool_dir().join("kube.conf").to_string_lossy()
        );
        assert_eq!(last.ok_codes, [1]);
        assert_eq!(last.capture, Capture::DryRunSummary(DryRunTool::Kubectl));
    }

    #[test]
    fn kustomization_skip_and_problems() {
        let fx = fixture("", ENV);
        fx.write("kustomization.yaml", "resources: []\n");
        assert_eq!(
            argvs(&prepare(&ctx_in(&fx, "kubectl", Action::Deploy)).unwrap()),
            ["kubectl apply -k ."]
        );
        let fx = fixture("", &[("KUBECTL_SKIP_DEPLOY", "true")]);
        assert!(prepare(&ctx_in(&fx, "kubectl", Action::Deploy))
            .unwrap()
            .skip
            .is_some());
        let fx = fixture(
            "kubectl: {options: {k8s: {fetch: {kubeconfig: true}}}}",
            ENV,
        );
        let e = prepare(&ctx_in(&fx, "kubectl", Action::Deploy)).unwrap_err();
        assert!(e[0].message.contains("cluster-name"));
        let empty = Fixture::new("", ENV);
        let e = prepare(&ctx_in(&empty, "kubectl", Action::Deploy)).unwrap_err();
        assert_eq!(e[0].code, "bitops::plugin::no_manifests");
    }

    #[test]
    fn kubeconfig_sources() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let both = env(&[
            ("BITOPS_KUBECONFIG_BASE64", "eA=="),
            ("KUBECONFIG_BASE64", "eQ=="),
        ]);
        assert_eq!(
            kube_source(&both, Some("p".into()), true, None),
            Ok(KubeSource::Base64("BITOPS_KUBECONFIG_BASE64"))
        );
        assert_eq!(
            kube_source(&env(&[]), Some("p".into()), true, None),
            Ok(KubeSource::Path("p".into()))
        );
        assert_eq!(
            kube_source(&env(&[]), None, true, Some("c".into())),
            Ok(KubeSource::Fetch("c".into()))
        );
        assert!(kube_source(&env(&[]), None, true, None).is_err());
        assert_eq!(
            kube_source(&env(&[]), None, false, None),
            Ok(KubeSource::Ambient)
        );
    }
}
