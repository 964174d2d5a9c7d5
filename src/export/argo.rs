//! Argo Workflows: a `Workflow` whose entrypoint is a DAG with one task per deployment. Each
//! task's template clones the repo (a git input artifact) to `/opt/bitops_deployment`, unpacks
//! the `outputs` artifact of every task it depends on, runs `bitops deploy --only`, and declares
//! the state folder's `outputs/` as its own `outputs` artifact. Artifacts need an artifact
//! repository (the controller's default, or `spec.artifactRepositoryRef`).

use serde::Serialize;

use super::{ids, limits, sh_quote, to_yaml, with_header, Ctx, Export, Job, OrderedMap};
use crate::cli::DEFAULT_IMAGE;
use crate::diagnostic::{ConfigErrors, Problem};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Workflow {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    generate_name: String,
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    annotations: OrderedMap<&'static str, String>,
}

#[derive(Serialize)]
struct Spec {
    entrypoint: String,
    arguments: Arguments,
    templates: Vec<Template>,
}

#[derive(Serialize, Default)]
struct Arguments {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parameters: Vec<Parameter>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    artifacts: Vec<Artifact>,
}

#[derive(Serialize)]
struct Parameter {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    description: String,
}

#[derive(Serialize, Default)]
struct Template {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<TemplateMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<Io>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<Io>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dag: Option<Dag>,
}

#[derive(Serialize)]
struct TemplateMetadata {
    annotations: OrderedMap<&'static str, String>,
}

#[derive(Serialize)]
struct Io {
    artifacts: Vec<Artifact>,
}

#[derive(Serialize, Default)]
struct Artifact {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    git: Option<Git>,
    /// The outputs of an order-only upstream task: a failed task may have saved none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
}

#[derive(Serialize)]
struct Git {
    repo: String,
    revision: String,
}

#[derive(Serialize)]
struct Container {
    image: String,
    command: Vec<String>,
    args: Vec<String>,
}

#[derive(Serialize)]
struct Dag {
    tasks: Vec<Task>,
}

#[derive(Serialize)]
struct Task {
    name: String,
    template: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<String>,
    /// Instead of `dependencies` (Argo allows one of them) for a task with order-only
    /// upstream tasks: those only have to finish, the others to succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    depends: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Arguments>,
}

/// Where the git checkout goes: the bitops image's default ops repo folder.
pub(super) const CHECKOUT: &str = "/opt/bitops_deployment";
/// Where upstream outputs artifacts are unpacked, one folder per upstream task.
const INPUTS: &str = "/tmp/bitops-inputs";
/// Annotation holding a template's node id (task names are derived from it).
pub(super) const NODE_ANNOTATION: &str = "bitops.dev/node";
const ENTRYPOINT: &str = "bitops";

/// The `depends` expression of a task with order-only upstream tasks (`None` otherwise, and it
/// keeps `dependencies`, which means every one succeeded): an order-only one has finished
/// whatever its result, or was left out because its own upstream failed (`Omitted`), as
/// `bitops deploy` releases it then too.
fn depends(upstream: &[&String], order_only: &[&String]) -> Option<String> {
    if order_only.is_empty() {
        return None;
    }
    let parts: Vec<String> = upstream
        .iter()
        .map(|t| {
            if order_only.contains(t) {
                format!("({t}.Succeeded || {t}.Failed || {t}.Errored || {t}.Omitted)")
            } else {
                format!("{t}.Succeeded")
            }
        })
        .collect();
    Some(parts.join(" && "))
}

pub(super) fn render(ctx: &Ctx<'_>) -> Result<Export, ConfigErrors> {
    // An Argo task is a pod: there is no host to run on without a container image.
    let Some(image) = &ctx.opts.image else {
        return Err(ConfigErrors::single(
            Problem::new("bitops::export::argo_needs_image", "Argo runs every task in a container, so `--image none` (jobs on shell runners) cannot be exported to Argo")
                .help(format!("pass the bitops image with --image IMAGE (the default is {DEFAULT_IMAGE}), or export a shell-runner pipeline with --to gitlab-ci or --to github-actions")),
        ));
    };
    let dg = ctx.dg;
    // Entry template `bitops` has no `--`, every task name has: they cannot collide.
    let names = ids::unique(dg.units.iter().map(|u| ids::ARGO.id(&u.id)).collect(), "-");
    let repo_dir = if ctx.opts.repo_path == "." {
        CHECKOUT.to_string()
    } else {
        format!("{CHECKOUT}/{}", ctx.opts.repo_path)
    };
    let outputs_dir = format!("{repo_dir}/.bitops/outputs");
    let mut tasks = Vec::with_capacity(dg.units.len());
    let mut templates = Vec::with_capacity(dg.units.len() + 1);
    for (k, u) in dg.units.iter().enumerate() {
        let name = &names[k];
        let upstream: Vec<&String> = u.needs.iter().map(|p| &names[*p]).collect();
        let order_only: Vec<&String> = u.order_only.iter().map(|p| &names[*p]).collect();
        // With a state store, bitops fetches upstream outputs itself: tasks only wait.
        let fetched: &[&String] = if ctx.artifacts() { &upstream } else { &[] };
        let optional = |t: &&String| order_only.contains(t);
        let input_name = |t: &str| format!("in-{t}");
        let mut inputs = vec![Artifact {
            name: "source".into(),
            path: Some(CHECKOUT.into()),
            git: Some(Git {
                repo: "{{workflow.parameters.repo}}".into(),
                revision: "{{workflow.parameters.revision}}".into(),
            }),
            ..Artifact::default()
        }];
        inputs.extend(fetched.iter().map(|t| Artifact {
            name: input_name(t),
            path: Some(format!("{INPUTS}/{t}")),
            optional: optional(t),
            ..Artifact::default()
        }));
        let mut script = vec![
            "set -e".to_string(),
            format!("mkdir -p {}", sh_quote(&outputs_dir)),
        ];
        if !fetched.is_empty() {
            // A failed order-only upstream task may have left no folder.
            let guard = if order_only.is_empty() {
                ""
            } else {
                "[ -d \"$d\" ] || continue; "
            };
            script.push(format!(
                "for d in {INPUTS}/*/; do {guard}cp -R \"$d\". {}/; done",
                sh_quote(&outputs_dir)
            ));
        }
        script.push(format!(
            "exec {}",
            ctx.deploy_command(&repo_dir, &Job::single(dg, k))
        ));
        templates.push(Template {
            name: name.clone(),
            metadata: Some(TemplateMetadata {
                annotations: OrderedMap(vec![(NODE_ANNOTATION, u.id.clone())]),
            }),
            inputs: Some(Io { artifacts: inputs }),
            outputs: ctx.artifacts().then(|| Io {
                artifacts: vec![Artifact {
                    name: "outputs".into(),
                    path: Some(outputs_dir.clone()),
                    ..Artifact::default()
                }],
            }),
            container: Some(Container {
                image: image.clone(),
                command: vec!["sh".into(), "-c".into()],
                args: vec![script.join("\n")],
            }),
            dag: None,
        });
        let arguments = (!fetched.is_empty()).then(|| Arguments {
            parameters: Vec::new(),
            artifacts: fetched
                .iter()
                .map(|t| Artifact {
                    name: input_name(t),
                    from: Some(format!("{{{{tasks.{t}.outputs.artifacts.outputs}}}}")),
                    optional: optional(t),
                    ..Artifact::default()
                })
                .collect(),
        });
        tasks.push(Task {
            name: name.clone(),
            template: name.clone(),
            depends: depends(&upstream, &order_only),
            dependencies: if order_only.is_empty() {
                upstream.into_iter().cloned().collect()
            } else {
                Vec::new()
            },
            arguments,
        });
    }
    templates.insert(
        0,
        Template {
            name: ENTRYPOINT.into(),
            dag: Some(Dag { tasks }),
            ..Template::default()
        },
    );
    let wf = Workflow {
        api_version: "argoproj.io/v1alpha1",
        kind: "Workflow",
        metadata: Metadata {
            generate_name: "bitops-deploy-".into(),
            annotations: OrderedMap(vec![("bitops.dev/selection", ctx.selection.description.clone())]),
        },
        spec: Spec {
            entrypoint: ENTRYPOINT.into(),
            arguments: Arguments {
                parameters: vec![
                    Parameter {
                        name: "repo".into(),
                        value: ctx.opts.git_url.clone(),
                        description: "git URL of the repository holding the operations repo (argo submit -p repo=URL)".into(),
                    },
                    Parameter { name: "revision".into(), value: Some("main".into()), description: "branch, tag or commit to deploy".into() },
                ],
                artifacts: Vec::new(),
            },
            templates,
        },
    };
    let yaml = to_yaml(&wf)?;
    let mut header = ctx.header("Argo Workflows", dg.units.len());
    if ctx.artifacts() {
        header.extend([
        String::new(),
        "Needs an artifact repository: outputs travel as Argo artifacts (each task's `outputs` is the".into(),
        "state folder's outputs/, unpacked into its dependents' before they run), so configure the".into(),
        "controller's default artifact repository or add `spec.artifactRepositoryRef`.".into(),
        ]);
    } else {
        header.extend(ctx.store_header());
    }
    header.extend([
        format!(
            "Each task clones {{{{workflow.parameters.repo}}}} to {CHECKOUT} (set `repo`, and a"
        ),
        "git credentials secret on the `source` artifact for a private repo). Credentials for the"
            .into(),
        "deployments (cloud, kubeconfig) come from the pod: a service account or env from secrets."
            .into(),
        String::new(),
    ]);
    let text = with_header(&header, &yaml);
    limits::argo_size(text.len(), dg.units.len())?;
    Ok(Export {
        text,
        notes: Vec::new(),
    })
}
