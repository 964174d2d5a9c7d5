//! The built-in helm plugin: the official plugin's per-chart flow (reference §2.4, §6.3) with
//! its bugs fixed.
//!
//! Every sub-folder of `<env>/helm` is a chart, deployed in alphabetical order (reverse order on
//! destroy), except the default-root-dir (`_default`), hidden folders and hook folders.
//! `BITOPS_ENVIRONMENT_HELM_SUBDIRECTORY=<chart>` selects one. Each chart has its own
//! `bitops.config.yaml` (`helm:` keys; `<env>/helm/bitops.config.yaml` is not read, as in
//! BitOps), its own `ENV_FILE` and hook folders. Per chart:
//!
//! 1. its before hooks (`bitops-before-deploy.d/*.sh` then `bitops.before-deploy.d/*.sh`,
//!    executable files only, run with bash — the helm plugin's own hook rules);
//! 2. the kubeconfig (see [`super::kubectl`]: `BITOPS_KUBECONFIG_BASE64`, `k8s.kubeconfigpath`,
//!    or `aws eks update-kubeconfig` with `k8s.fetch.cluster-name`);
//! 3. `helm dependency update .`;
//! 4. `helm upgrade --install <chart folder> . --namespace <ns> --create-namespace --timeout …
//!    [--atomic] [--force] [--debug] [--dry-run] --cleanup-on-fail [--set k=v]… [-f values]…
//!    [--kubeconfig …]`, with `helm rollback <release> 0` if it fails (unless `--atomic`, which
//!    rolls back by itself); or `helm uninstall` when `uninstall` is set;
//! 5. its after hooks.
//!
//! Values files, each only if it exists and is not empty, in BitOps' order: the default chart's
//! `values.yaml`, the chart's `values.yaml`, `values-versions.yaml`, `values-secrets.yaml`
//! (decoded from `HELM_SECRETS_BASE64` when set), the default chart's `values-files/*`, then the
//! chart's `values-files/*`. A dry run renders the chart with `helm template` (or runs `helm
//! diff upgrade` when `BITOPS_HELM_DIFF` is true and the helm-diff plugin is installed).

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::{load_file, CONFIG_FILE};
use crate::diagnostic::{Diagnostics, Problem};
use crate::plugins::bitops_format::{is_false_word, Schema};
use crate::plugins::step::{Action, Capture, Context, DryRunTool, Prepared, Step};

use super::common::{env_true, non_empty_file, read_env_file, schema, Settings};
use super::kubectl::{decode_to_file_step, kube_help, kube_setup, kube_source, KubeSource};

static SCHEMA: OnceLock<Schema> = OnceLock::new();
const SCHEMA_TEXT: &str = include_str!("schemas/helm.schema.yaml");

pub(super) fn helm_schema() -> &'static Schema {
    schema(&SCHEMA, "built-in helm.schema.yaml", SCHEMA_TEXT)
}

/// Folders inside `<env>/helm` that are never charts.
const HOOK_DIRS: &[&str] = &[
    "bitops.before-deploy.d",
    "bitops.after-deploy.d",
    "bitops-before-deploy.d",
    "bitops-after-deploy.d",
];

/// The chart sub-folders BitOps copied from the default chart into the chart.
const DEFAULT_SUBDIRS: &str = "crds charts templates schema";

pub(super) fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    // The official plugin turned core hooks off and ran each chart's hooks itself.
    let mut p = Prepared {
        before_hooks: false,
        after_hooks: false,
        tools: vec!["helm".into()],
        ..Prepared::default()
    };
    if ctx.tool_config.is_some_and(|n| n.is_truthy()) {
        p.settings.push(format!(
            "{} is not read: each chart has its own bitops.config.yaml",
            ctx.tool_config_name
        ));
    }
    if env_true(ctx.env, "HELM_SKIP_DEPLOY") {
        p.skip = Some("HELM_SKIP_DEPLOY is set".into());
        return Ok(p);
    }
    let mut charts = chart_names(ctx);
    if let Some(only) = ctx
        .env
        .get("BITOPS_ENVIRONMENT_HELM_SUBDIRECTORY")
        .filter(|s| !s.is_empty())
    {
        if !charts.contains(only) {
            return Err(vec![Problem::new(
                "bitops::plugin::helm_chart",
                format!("BITOPS_ENVIRONMENT_HELM_SUBDIRECTORY names `{only}`, which is not a chart of `{}/{}`", ctx.environment, ctx.deployment),
            )
            .help(format!("the charts are: {}", charts.join(", ")))]);
        }
        charts = vec![only.clone()];
    }
    if charts.is_empty() {
        return Err(vec![Problem::new(
            "bitops::plugin::helm_chart",
            format!("`{}/{}` has no chart folders", ctx.environment, ctx.deployment),
        )
        .path(&ctx.tool_dir)
        .help("put each chart in its own folder: `helm/<chart>/Chart.yaml` with `helm/<chart>/bitops.config.yaml`")]);
    }
    if ctx.action == Action::Destroy {
        charts.reverse();
    }

    let mut problems = Vec::new();
    let mut seen_setup = BTreeSet::new();
    let mut deployed = 0;
    for chart in &charts {
        match chart_steps(ctx, chart, &mut seen_setup) {
            Ok(c) => {
                p.settings.extend(c.settings);
                p.warnings.extend(c.warnings);
                if c.steps.is_empty() {
                    continue;
                }
                deployed += 1;
                p.steps.extend(c.steps);
                for t in c.tools {
                    if !p.tools.contains(&t) {
                        p.tools.push(t);
                    }
                }
            }
            Err(e) => problems.extend(e),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if deployed == 0 {
        p.skip = Some("every chart has skip-deploy set".into());
    }
    Ok(p)
}

/// Sub-folders of the tool folder and of its `_default` copy (which the working copy merges in),
/// minus the default-root-dir, hidden folders and hook folders, sorted.
fn chart_names(ctx: &Context<'_>) -> Vec<String> {
    let default_root: BTreeSet<&str> = ["BITOPS_DEFAULT_ROOT_DIR", "DEFAULT_ROOT_DIR"]
        .iter()
        .filter_map(|k| ctx.env.get(*k).map(String::as_str))
        .chain(["_default"])
        .collect();
    let mut names = BTreeSet::new();
    for dir in std::iter::once(&ctx.tool_dir).chain(ctx.default_dir.as_ref()) {
        let Ok(rd) = crate::discover::record::read_dir(dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if crate::discover::record::is_dir(e.path())
                && !name.starts_with('.')
                && !default_root.contains(name.as_str())
                && !HOOK_DIRS.contains(&name.as_str())
            {
                names.insert(name);
            }
        }
    }
    names.into_iter().collect()
}

struct ChartPlan {
    steps: Vec<Step>,
    settings: Vec<String>,
    tools: Vec<String>,
    warnings: Vec<Problem>,
}

fn chart_steps(
    ctx: &Context<'_>,
    chart: &str,
    seen_setup: &mut BTreeSet<String>,
) -> Result<ChartPlan, Vec<Problem>> {
    let chart_dir = ctx.tool_dir.join(chart);
    let repo_default = ctx.default_dir.as_ref().map(|d| d.join(chart));
    let display = format!(
        "{}/{}/{chart}/{CONFIG_FILE}",
        ctx.environment, ctx.deployment
    );

    // The chart's config, deep-merged over the default chart's as the working copy does.
    let mut diags = Diagnostics::default();
    let own = load_file(&chart_dir.join(CONFIG_FILE), display.clone(), &mut diags);
    let default = repo_default.as_ref().and_then(|d| {
        load_file(
            &d.join(CONFIG_FILE),
            format!("default {display}"),
            &mut diags,
        )
    });
    if !diags.is_empty() {
        return Err(diags.problems().to_vec());
    }
    let mut merged = match (&own, &default) {
        (Some(o), Some(d)) => match (&o.root, &d.root) {
            (Some(or), Some(dr)) if or.as_map().is_some() && dr.as_map().is_some() => {
                Some(crate::yaml::merge(dr, or))
            }
            (Some(or), _) => Some(or.clone()),
            (None, dr) => dr.clone(),
        },
        (Some(o), None) => o.root.clone(),
        (None, Some(d)) => d.root.clone(),
        (None, None) => None,
    };
    // Locations are exact only when the chart's own file is the whole config.
    let file = match (&own, &default) {
        (Some(o), None) => Some(&o.file),
        _ => None,
    };
    // BitOps v1 chart keys (`options.kubeconfig.fetch.*`): warnings, moved to their v2 place.
    let warnings = match merged.as_mut() {
        Some(m) => crate::config::legacy::rewrite(m, file, &display),
        None => Vec::new(),
    };
    let s = Settings::resolve(
        helm_schema(),
        merged.as_ref(),
        file,
        &display,
        ctx.env,
        ctx.plugin,
    )?;
    let mut plan = ChartPlan {
        steps: Vec::new(),
        settings: s.lines(&format!("{chart}: ")),
        tools: Vec::new(),
        warnings,
    };
    if s.bool("options.skip-deploy") {
        plan.settings
            .push(format!("{chart}: skipped (skip-deploy)"));
        return Ok(plan);
    }

    let release = chart.to_string();
    let ns = s.str("cli.namespace").unwrap_or_default();
    let uninstall = s
        .str("options.uninstall")
        .is_some_and(|u| !is_false_word(&u))
        || ctx
            .env
            .get("HELM_UNINSTALL_CHARTS")
            .is_some_and(|l| l.split(',').any(|c| c.trim() == release));
    let removing = uninstall || ctx.action == Action::Destroy;
    let diff = ctx.action == Action::DryRun && env_true(ctx.env, "BITOPS_HELM_DIFF");
    // `helm template` needs no cluster; everything else does.
    let needs_cluster = ctx.action != Action::DryRun || diff || removing;

    // What every command of the chart sees: the chart's ENV_FILE, then the exports the official
    // plugin appended to it.
    let mut env: BTreeMap<String, String> = read_env_file(
        &chart_dir,
        &format!("{}/{}/{chart}", ctx.environment, ctx.deployment),
        ctx.env,
    )?;
    env.extend(s.exports());
    let step = |argv: Vec<String>| {
        let mut st = Step::new(argv, &chart_dir);
        st.env = env.clone();
        st
    };
    let run_hooks = ctx.action != Action::DryRun;
    if run_hooks {
        plan.steps.extend(
            hooks(&chart_dir, repo_default.as_deref(), "before")
                .into_iter()
                .map(|h| step(vec!["bash".into(), h])),
        );
    }

    let mut kube_args = Vec::new();
    if needs_cluster {
        let src = kube_source(
            ctx.env,
            s.str("options.k8s.kubeconfigpath"),
            s.bool("options.k8s.fetch.kubeconfig"),
            s.str("options.k8s.fetch.cluster-name"),
        )
        .map_err(|why| {
            vec![Problem::new(
                "bitops::plugin::kubeconfig",
                format!("{why} in `{display}`"),
            )
            .help(kube_help("helm"))]
        })?;
        let setup = kube_setup(&src, ctx, &chart_dir);
        // The same kubeconfig is fetched or decoded once for all charts.
        for st in setup.steps {
            if seen_setup.insert(st.display()) {
                plan.steps.push(st);
            }
        }
        plan.tools.extend(setup.tools);
        kube_args = setup.args;
        if let KubeSource::Fetch(c) = &src {
            plan.settings
                .push(format!("{chart}: kubeconfig from EKS cluster {c}"));
        }
    }

    let ns_args = vec!["--namespace".to_string(), ns.clone()];
    if removing {
        let argv = if ctx.action == Action::DryRun {
            let mut a = strs(&["helm", "get", "manifest", &release]);
            a.extend(ns_args);
            a
        } else {
            let mut a = strs(&["helm", "uninstall", &release]);
            a.extend(ns_args);
            a.push("--ignore-not-found".into());
            a
        };
        let mut st = step([argv, kube_args].concat());
        st.may_fail = ctx.action == Action::DryRun;
        plan.steps.push(st);
    } else {
        let secrets = ctx
            .env
            .get("HELM_SECRETS_BASE64")
            .is_some_and(|v| !v.trim().is_empty());
        if secrets {
            plan.steps.push(step(
                decode_to_file_step("HELM_SECRETS_BASE64", "values-secrets.yaml", &chart_dir).argv,
            ));
            plan.tools.extend(["sh".to_string(), "base64".into()]);
        }
        let default_chart = if s.bool_opt("options.default-dir-flag").unwrap_or(true) {
            repo_default.clone()
        } else {
            let root = s
                .str("options.default-root-dir")
                .unwrap_or_else(|| "_default".into());
            let d = ctx.tool_dir.join(root).join(chart);
            if crate::discover::record::is_dir(&d) && ctx.action != Action::DryRun {
                // The working copy only merges the repo's default folder; an in-environment
                // default chart is copied as the official plugin did.
                let script = format!(
                    "for d in {DEFAULT_SUBDIRS}; do if [ -d \"$1/$d\" ]; then mkdir -p \"$d\" && cp -R \"$1/$d/.\" \"$d/\"; fi; done"
                );
                plan.steps.push(step(vec![
                    "sh".into(),
                    "-c".into(),
                    script,
                    "bitops-copy-defaults".into(),
                    d.to_string_lossy().into_owned(),
                ]));
                plan.tools.push("sh".into());
            }
            Some(d)
        };
        let values = values_files(
            &chart_dir,
            repo_default.as_deref(),
            default_chart.as_deref(),
            secrets,
        );
        let mut chart_args = ns_args.clone();
        for v in s.list("cli.set") {
            chart_args.extend(["--set".to_string(), v]);
        }
        for v in values {
            chart_args.extend(["-f".to_string(), v]);
        }
        plan.steps
            .push(step(strs(&["helm", "dependency", "update", "."])));
        if ctx.action == Action::DryRun {
            let mut argv = if diff {
                strs(&[
                    "helm",
                    "diff",
                    "upgrade",
                    &release,
                    ".",
                    "--allow-unreleased",
                ])
            } else {
                strs(&["helm", "template", &release, "."])
            };
            argv.extend(chart_args);
            if diff {
                argv.extend(kube_args);
            }
            let mut st = step(argv);
            st.capture = Capture::DryRunSummary(DryRunTool::Helm);
            plan.steps.push(st);
        } else {
            let mut argv = strs(&["helm", "upgrade", "--install", &release, "."]);
            argv.extend(chart_args[..2].iter().cloned());
            argv.push("--create-namespace".into());
            if let Some(t) = s.str("cli.timeout") {
                argv.extend(["--timeout".to_string(), t]);
            }
            for flag in ["atomic", "force", "debug", "dry-run"] {
                if s.bool(&format!("cli.{flag}")) {
                    argv.push(format!("--{flag}"));
                }
            }
            argv.push("--cleanup-on-fail".into());
            argv.extend(chart_args[2..].iter().cloned());
            argv.extend(kube_args.iter().cloned());
            let mut st = step(argv);
            if !s.bool("cli.atomic") && !s.bool("cli.dry-run") {
                let mut rb = strs(&[
                    "helm",
                    "rollback",
                    &release,
                    "0",
                    "--namespace",
                    &ns,
                    "--cleanup-on-fail",
                ]);
                rb.extend(kube_args.iter().cloned());
                let mut rollback = step(rb);
                // The first install of a release has nothing to roll back to.
                rollback.may_fail = true;
                st.on_failure.push(rollback);
            }
            plan.steps.push(st);
        }
    }
    if run_hooks {
        plan.steps.extend(
            hooks(&chart_dir, repo_default.as_deref(), "after")
                .into_iter()
                .map(|h| step(vec!["bash".into(), h])),
        );
    }
    if plan.steps.iter().any(|s| s.argv[0] == "bash") {
        plan.tools.push("bash".into());
    }
    Ok(plan)
}

/// Values files in BitOps' order, each only if it exists and is not empty: chart files by their
/// path relative to the chart (the working copy holds the chart merged with its `_default`
/// copy, so a file of either counts), default-chart files by absolute path.
fn values_files(
    chart: &Path,
    repo_default: Option<&Path>,
    default_chart: Option<&Path>,
    secrets: bool,
) -> Vec<String> {
    let in_chart = |rel: &str| {
        non_empty_file(&chart.join(rel))
            || repo_default.is_some_and(|d| non_empty_file(&d.join(rel)))
    };
    let mut out = Vec::new();
    if let Some(d) = default_chart {
        let v = d.join("values.yaml");
        if non_empty_file(&v) {
            out.push(v.to_string_lossy().into_owned());
        }
    }
    for rel in ["values.yaml", "values-versions.yaml"] {
        if in_chart(rel) {
            out.push(rel.to_string());
        }
    }
    if secrets || in_chart("values-secrets.yaml") {
        out.push("values-secrets.yaml".into());
    }
    if let Some(d) = default_chart {
        for name in names(&[d.join("values-files")]) {
            let f = d.join("values-files").join(&name);
            if non_empty_file(&f) {
                out.push(f.to_string_lossy().into_owned());
            }
        }
    }
    let dirs: Vec<PathBuf> = std::iter::once(chart.join("values-files"))
        .chain(repo_default.map(|d| d.join("values-files")))
        .collect();
    for name in names(&dirs) {
        let rel = format!("values-files/{name}");
        if in_chart(&rel) {
            out.push(rel);
        }
    }
    out
}

/// The union of the file names in `dirs`, sorted (the `ls` order the plugin used).
fn names(dirs: &[PathBuf]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for d in dirs {
        let Ok(rd) = crate::discover::record::read_dir(d) else {
            continue;
        };
        set.extend(
            rd.filter_map(Result::ok)
                .filter(|e| crate::discover::record::is_file(e.path()))
                .filter_map(|e| e.file_name().into_string().ok()),
        );
    }
    set.into_iter().collect()
}

/// A chart's hook scripts for `when` (`before`/`after`): the deprecated `bitops-<when>-deploy.d`
/// then `bitops.<when>-deploy.d`, `*.sh` files that are executable, sorted; as paths in the
/// chart folder of the working copy.
fn hooks(chart: &Path, repo_default: Option<&Path>, when: &str) -> Vec<String> {
    let mut out = Vec::new();
    for folder in [
        format!("bitops-{when}-deploy.d"),
        format!("bitops.{when}-deploy.d"),
    ] {
        let dirs: Vec<PathBuf> = std::iter::once(chart.join(&folder))
            .chain(repo_default.map(|d| d.join(&folder)))
            .collect();
        for name in names(&dirs).into_iter().filter(|n| n.ends_with(".sh")) {
            let found = dirs
                .iter()
                .map(|d| d.join(&name))
                .find(|p| crate::discover::record::is_file(p));
            let executable = found
                .and_then(|p| crate::discover::record::metadata(p).ok())
                .is_some_and(|m| m.permissions().mode() & 0o111 != 0);
            if executable {
                out.push(
                    chart
                        .join(&folder)
                        .join(&name)
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out
}

fn strs(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// helm is not installed on the machines these tests run on, so they check the exact command
/// lines only; the commands follow helm 3's documented CLI.
#[cfg(test)]
mod tests {
    use super::super::test_support::{argvs, ctx_in, write_at, Fixture};
    use super::*;

    const KUBE: (&str, &str) = ("BITOPS_KUBE_CONFIG_FILE", "/run/.kube/config");

    fn fixture(env: &[(&str, &str)]) -> Fixture {
        let fx = Fixture::named("helm", "", env);
        fx.write("web/Chart.yaml", "name: web\n");
        fx.write("web/bitops.config.yaml", "helm:\n  cli:\n    namespace: web-ns\n    set: [image.tag=1.2, 'msg=a b']\n  options:\n    release-name: ignored\n    k8s:\n      fetch:\n        cluster-name: prod\n");
        fx.write("web/values.yaml", "a: 1\n");
        fx.write("web/values-versions.yaml", "");
        fx.write("web/values-files/b.yaml", "b: 1\n");
        fx.write("api/Chart.yaml", "name: api\n");
        fx.write("api/bitops.config.yaml", "helm:\n  cli:\n    namespace: api\n    atomic: true\n    timeout: 60s\n  options:\n    k8s:\n      kubeconfigpath: ../kube.conf\n");
        fx.write("_default/ignored/Chart.yaml", "x");
        fx.write("bitops.before-deploy.d/x.sh", "echo");
        fx.write_default("web/values.yaml", "d: 1\n");
        fx.write_default("web/values-files/a.yaml", "a: 2\n");
        fx
    }

    #[test]
    fn deploy_command_lines() {
        let fx = fixture(&[KUBE, ("AWS_DEFAULT_REGION", "us-east-1")]);
        let p = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap();
        let d = fx.default_dir();
        let kube_conf = fx.tool_dir().join("api/../kube.conf");
        assert_eq!(
            argvs(&p),
            [
                "helm dependency update .".to_string(),
                format!("helm upgrade --install api . --namespace api --create-namespace --timeout 60s --atomic --cleanup-on-fail --kubeconfig {}", kube_conf.display()),
                "aws eks update-kubeconfig --name prod --region us-east-1 --kubeconfig /run/.kube/config".into(),
                "helm dependency update .".into(),
                format!(
                    "helm upgrade --install web . --namespace web-ns --create-namespace --timeout 500s --cleanup-on-fail --set image.tag=1.2 --set 'msg=a b' -f {} -f values.yaml -f {} -f values-files/a.yaml -f values-files/b.yaml --kubeconfig /run/.kube/config",
                    d.join("web/values.yaml").display(),
                    d.join("web/values-files/a.yaml").display(),
                ),
            ]
        );
        assert!(!p.before_hooks && !p.after_hooks);
        assert_eq!(p.tools, ["helm", "aws"]);
        // --atomic rolls back by itself; otherwise a failed upgrade is rolled back.
        assert!(p.steps[1].on_failure.is_empty());
        assert_eq!(p.steps[4].on_failure[0].display(), "helm rollback web 0 --namespace web-ns --cleanup-on-fail --kubeconfig /run/.kube/config");
        assert!(p.steps[4].on_failure[0].may_fail);
        assert!(p.steps.iter().all(|s| s.cwd.starts_with(fx.tool_dir())));
        assert_eq!(p.steps[4].cwd, fx.tool_dir().join("web"));
        // The chart's exports reach its commands, as the sourced ENV_FILE did.
        assert_eq!(p.steps[4].env["NAMESPACE"], "web-ns");
        assert_eq!(p.steps[4].env["HELM_RELEASE_NAME"], "ignored");
        assert_eq!(p.steps[4].env["CLUSTER_NAME"], "prod");
        assert_eq!(p.steps[1].env["TIMEOUT"], "60s");
        assert!(
            p.settings
                .iter()
                .any(|l| l == "web: helm.cli.namespace = web-ns (config)"),
            "{:?}",
            p.settings
        );
    }

    #[test]
    fn destroy_uninstalls_in_reverse_order() {
        let fx = fixture(&[KUBE]);
        let p = prepare(&ctx_in(&fx, "helm", Action::Destroy)).unwrap();
        let kube_conf = fx.tool_dir().join("api/../kube.conf");
        assert_eq!(
            argvs(&p),
            [
                "aws eks update-kubeconfig --name prod --kubeconfig /run/.kube/config".to_string(),
                "helm uninstall web --namespace web-ns --ignore-not-found --kubeconfig /run/.kube/config".into(),
                format!("helm uninstall api --namespace api --ignore-not-found --kubeconfig {}", kube_conf.display()),
            ]
        );
        // HELM_UNINSTALL_CHARTS uninstalls on deploy.
        let fx = fixture(&[KUBE, ("HELM_UNINSTALL_CHARTS", "x, web")]);
        let p = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap();
        assert!(argvs(&p).contains(&"helm uninstall web --namespace web-ns --ignore-not-found --kubeconfig /run/.kube/config".to_string()));
    }

    #[test]
    fn dry_run_templates_without_a_cluster() {
        let fx = fixture(&[KUBE]);
        let p = prepare(&ctx_in(&fx, "helm", Action::DryRun)).unwrap();
        let v = argvs(&p);
        assert_eq!(v.len(), 4);
        assert_eq!(v[1], "helm template api . --namespace api");
        assert!(
            v[3].starts_with("helm template web . --namespace web-ns --set image.tag=1.2"),
            "{}",
            v[3]
        );
        assert_eq!(p.steps[3].capture, Capture::DryRunSummary(DryRunTool::Helm));
        let fx = fixture(&[KUBE, ("BITOPS_HELM_DIFF", "true")]);
        let p = prepare(&ctx_in(&fx, "helm", Action::DryRun)).unwrap();
        assert!(argvs(&p).iter().any(
            |l| l.starts_with("helm diff upgrade web . --allow-unreleased --namespace web-ns")
        ));
    }

    #[test]
    fn kubeconfig_from_base64_is_decoded_once() {
        let fx = fixture(&[KUBE, ("BITOPS_KUBECONFIG_BASE64", "YQ==")]);
        let p = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap();
        let v = argvs(&p);
        assert_eq!(v.iter().filter(|l| l.starts_with("sh -c")).count(), 1);
        assert!(v[0].contains("$BITOPS_KUBECONFIG_BASE64") && !v[0].contains("YQ=="));
        assert!(v
            .iter()
            .filter(|l| l.starts_with("helm upgrade"))
            .all(|l| l.ends_with("--kubeconfig /run/.kube/config")));
        assert!(p.tools.contains(&"base64".to_string()));
    }

    #[test]
    fn hooks_secrets_skip_and_selection() {
        let fx = fixture(&[
            KUBE,
            ("HELM_SECRETS_BASE64", "czogMQo="),
            ("BITOPS_ENVIRONMENT_HELM_SUBDIRECTORY", "web"),
        ]);
        let hook = fx.write("web/bitops.before-deploy.d/10-run.sh", "echo hi\n");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        fx.write(
            "web/bitops.before-deploy.d/20-not-executable.sh",
            "echo no\n",
        );
        let after = fx.write("web/bitops.after-deploy.d/done.sh", "echo done\n");
        std::fs::set_permissions(&after, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap();
        let v = argvs(&p);
        assert_eq!(v[0], format!("bash {}", hook.display()));
        assert!(
            v[2].contains("$HELM_SECRETS_BASE64") && v[2].ends_with("values-secrets.yaml"),
            "{}",
            v[2]
        );
        assert!(
            v[4].contains("-f values.yaml -f values-secrets.yaml -f"),
            "{}",
            v[4]
        );
        assert_eq!(v.last().unwrap(), &format!("bash {}", after.display()));
        assert!(!v.iter().any(|l| l.contains("api")));

        let fx = fixture(&[KUBE, ("BITOPS_ENVIRONMENT_HELM_SUBDIRECTORY", "nope")]);
        assert!(prepare(&ctx_in(&fx, "helm", Action::Deploy)).is_err());
        let fx = fixture(&[KUBE, ("HELM_SKIP_DEPLOY", "true")]);
        assert!(prepare(&ctx_in(&fx, "helm", Action::Deploy))
            .unwrap()
            .skip
            .is_some());
        let fx = fixture(&[KUBE, ("BITOPS_HELM_SKIP_DEPLOY", "true")]);
        let p = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap();
        assert!(p.skip.is_some() && p.steps.is_empty());
    }

    #[test]
    fn in_environment_default_chart_is_copied() {
        let fx = fixture(&[KUBE]);
        fx.write("web/bitops.config.yaml", "helm:\n  cli: {namespace: web-ns}\n  options:\n    default-dir-flag: false\n    k8s: {fetch: {kubeconfig: false}}\n");
        write_at(&fx.tool_dir(), "_default/web/values.yaml", "x: 1\n");
        write_at(&fx.tool_dir(), "_default/web/templates/t.yaml", "kind: x\n");
        let p = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap();
        let v = argvs(&p);
        let copy = v
            .iter()
            .find(|l| l.contains("bitops-copy-defaults"))
            .expect("copy step");
        assert!(copy.ends_with(&fx.tool_dir().join("_default/web").display().to_string()));
        let up = v
            .iter()
            .find(|l| l.starts_with("helm upgrade --install web"))
            .unwrap();
        assert!(
            up.contains(&format!(
                "-f {} -f values.yaml",
                fx.tool_dir().join("_default/web/values.yaml").display()
            )),
            "{up}"
        );
        assert!(
            !up.contains("--kubeconfig"),
            "fetch off means the ambient kubeconfig: {up}"
        );
    }

    #[test]
    fn chart_problems_are_all_reported() {
        let fx = fixture(&[KUBE]);
        fx.write("web/bitops.config.yaml", "helm:\n  cli: {namspace: x}\n");
        fx.write("api/bitops.config.yaml", "helm:\n  cli: {namespace: api}\n");
        let e = prepare(&ctx_in(&fx, "helm", Action::Deploy)).unwrap_err();
        let text = format!("{e:?}");
        assert!(
            text.contains("namspace") && text.contains("cluster-name"),
            "{text}"
        );
        assert!(
            e.iter().any(|p| p
                .location()
                .is_some_and(|l| l.starts_with("env/helm/web/bitops.config.yaml:"))),
            "{e:?}"
        );
    }

    #[test]
    fn schema_parses_with_the_official_keys() {
        let s = helm_schema();
        for key in [
            "helm.cli.namespace",
            "helm.cli.timeout",
            "helm.cli.set",
            "helm.cli.debug",
            "helm.cli.atomic",
            "helm.cli.force",
            "helm.cli.dry-run",
            "helm.options.skip-deploy",
            "helm.options.release-name",
            "helm.options.default-root-dir",
            "helm.options.default-dir-flag",
            "helm.options.default-sub-dir",
            "helm.options.uninstall",
            "helm.options.k8s.kubeconfigpath",
            "helm.options.k8s.fetch.kubeconfig",
            "helm.options.k8s.fetch.cluster-name",
            "helm.plugins.s3.region",
            "helm.plugins.s3.bucket",
        ] {
            assert!(s.property(key).is_some(), "{key}");
        }
    }
}
