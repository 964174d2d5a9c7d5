//! GitHub Actions: one job per deployment in the bitops container. Each job downloads the
//! `outputs-<job>` artifact of every job it needs (each into its own folder under the state
//! folder's `inputs/`), merges them into `outputs/`, runs `bitops deploy --only`, and uploads
//! `outputs/` as its own `outputs-<job>` (and its run logs as `logs-<job>`, even on failure).

use serde::Serialize;

use super::{ids, limits, sh_quote, to_yaml, with_header, Ctx, Export, OrderedMap};
use crate::diagnostic::ConfigErrors;

#[derive(Serialize)]
struct Workflow {
    name: String,
    on: On,
    permissions: OrderedMap<&'static str, &'static str>,
    concurrency: Concurrency,
    jobs: OrderedMap<String, GhJob>,
}

#[derive(Serialize)]
struct On {
    workflow_dispatch: Empty,
    push: Push,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Push {
    branches: Vec<String>,
}

#[derive(Serialize)]
struct Concurrency {
    group: String,
    #[serde(rename = "cancel-in-progress")]
    cancel_in_progress: bool,
}

#[derive(Serialize)]
struct GhJob {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    needs: Vec<String>,
    /// Only for a job with order-only needs: GitHub's implicit `success()` would skip it after
    /// any failed need, so the whole condition is written out.
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(rename = "runs-on")]
    runs_on: String,
    /// Absent for shell runners (`--image none`): the job runs on the runner host.
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<Container>,
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct Container {
    image: String,
}

#[derive(Serialize, Default)]
struct Step {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(rename = "if", skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uses: Option<String>,
    /// Downloading the outputs of an order-only need: a failed job uploaded none.
    #[serde(
        rename = "continue-on-error",
        skip_serializing_if = "std::ops::Not::not"
    )]
    continue_on_error: bool,
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    with: OrderedMap<&'static str, With>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum With {
    Str(String),
    Bool(bool),
    Int(u32),
}

pub(super) const CHECKOUT: &str = "actions/checkout@v4";
pub(super) const UPLOAD: &str = "actions/upload-artifact@v4";
pub(super) const DOWNLOAD: &str = "actions/download-artifact@v4";
/// Days artifacts are kept: outputs are only needed while the run (or a re-run) goes on.
const RETENTION_DAYS: u32 = 7;

/// `!cancelled()` and every success need's `result == 'success'`, for a job with order-only
/// needs (waited for, whatever their result); `None` keeps GitHub's implicit `success()`.
fn condition(job: &super::Job, keys: &[String]) -> Option<String> {
    if job.order_only.is_empty() {
        return None;
    }
    let mut parts = vec!["!cancelled()".to_string()];
    parts.extend(
        job.needs
            .iter()
            .filter(|p| !job.order_only.contains(p))
            .map(|p| format!("needs.{}.result == 'success'", keys[*p])),
    );
    Some(format!("${{{{ {} }}}}", parts.join(" && ")))
}

pub(super) fn render(ctx: &Ctx<'_>) -> Result<Export, ConfigErrors> {
    let (jobs, note) = limits::github_jobs(ctx.repo, ctx.dg, limits::GITHUB_MAX_JOBS)?;
    let keys = ids::unique(jobs.iter().map(|j| ids::GITHUB.id(&j.title)).collect(), "_");
    let outputs = ctx.outputs_rel();
    let runs = format!("{}/runs/", ctx.state_rel());
    let inputs = format!("{}/inputs", ctx.state_rel());
    // Without a container, jobs need a runner that has bitops installed: a self-hosted one
    // (GitHub's hosted runners do not).
    let runs_on = if ctx.opts.image.is_some() {
        "ubuntu-latest"
    } else {
        "self-hosted"
    };
    let mut out = OrderedMap::default();
    for (j, job) in jobs.iter().enumerate() {
        let mut steps = vec![Step {
            uses: Some(CHECKOUT.into()),
            ..Step::default()
        }];
        // Each upstream artifact goes to its own folder (download-artifact does not promise to
        // overwrite files), then all are merged into outputs/ before bitops runs.
        // With a state store, bitops fetches upstream outputs itself: no artifacts to move.
        let needs_in = if ctx.artifacts() { &job.needs[..] } else { &[] };
        for &p in needs_in {
            steps.push(Step {
                name: Some(format!("Outputs of {}", jobs[p].title)),
                uses: Some(DOWNLOAD.into()),
                with: OrderedMap(vec![
                    ("name", With::Str(format!("outputs-{}", keys[p]))),
                    ("path", With::Str(format!("{inputs}/{}", keys[p]))),
                ]),
                continue_on_error: job.order_only.contains(&p),
                ..Step::default()
            });
        }
        let mut script = Vec::new();
        if !needs_in.is_empty() {
            script.push(format!("mkdir -p {}", sh_quote(&outputs)));
            // A failed order-only need left no folder: the glob may match nothing.
            let guard = if job.order_only.is_empty() {
                ""
            } else {
                "[ -d \"$d\" ] || continue; "
            };
            script.push(format!(
                "for d in {}/*/; do {guard}cp -R \"$d\". {}/; done",
                sh_quote(&inputs),
                sh_quote(&outputs)
            ));
        }
        script.push(ctx.deploy_command(&ctx.opts.repo_path, job));
        steps.push(Step {
            name: Some(format!("bitops deploy {}", job.title)),
            run: Some(script.join("\n")),
            ..Step::default()
        });
        steps.extend(ctx.artifacts().then(|| Step {
            name: Some("Upload outputs".into()),
            uses: Some(UPLOAD.into()),
            with: OrderedMap(vec![
                ("name", With::Str(format!("outputs-{}", keys[j]))),
                ("path", With::Str(format!("{outputs}/"))),
                ("include-hidden-files", With::Bool(true)),
                ("if-no-files-found", With::Str("error".into())),
                ("retention-days", With::Int(RETENTION_DAYS)),
                ("overwrite", With::Bool(true)),
            ]),
            ..Step::default()
        }));
        steps.push(Step {
            name: Some("Upload logs".into()),
            condition: Some("always()".into()),
            uses: Some(UPLOAD.into()),
            with: OrderedMap(vec![
                ("name", With::Str(format!("logs-{}", keys[j]))),
                ("path", With::Str(runs.clone())),
                ("include-hidden-files", With::Bool(true)),
                ("if-no-files-found", With::Str("ignore".into())),
                ("retention-days", With::Int(RETENTION_DAYS)),
                ("overwrite", With::Bool(true)),
            ]),
            ..Step::default()
        });
        out.0.push((
            keys[j].clone(),
            GhJob {
                name: job.title.clone(),
                needs: job.needs.iter().map(|p| keys[*p].clone()).collect(),
                condition: condition(job, &keys),
                runs_on: runs_on.into(),
                container: ctx.opts.image.as_ref().map(|image| Container {
                    image: image.clone(),
                }),
                steps,
            },
        ));
    }
    let wf = Workflow {
        name: "bitops deploy".into(),
        on: On {
            workflow_dispatch: Empty {},
            push: Push {
                branches: vec!["main".into()],
            },
        },
        permissions: OrderedMap(vec![("contents", "read")]),
        concurrency: Concurrency {
            group: "bitops-deploy".into(),
            cancel_in_progress: false,
        },
        jobs: out,
    };
    let mut header = ctx.header("GitHub Actions", jobs.len());
    if !ctx.artifacts() {
        header.extend(ctx.store_header());
        header.push(
            "Credentials (cloud, kubeconfig) are not set here: add them as `env:` from secrets."
                .into(),
        );
    } else {
        header.extend([
        String::new(),
        "Outputs travel as artifacts. Each job downloads the `outputs-<job>` artifact of every job"
            .into(),
        "it needs and merges them into the state folder's outputs/,".into(),
        format!("  {outputs}/"),
        "where `bitops deploy` reads the outputs of upstream deployments that are not part of its"
            .into(),
        "own run; then it uploads that folder (its own outputs and all it received) as its own"
            .into(),
        "`outputs-<job>`, so outputs reach every transitive dependent. Logs: `logs-<job>`.".into(),
        "Credentials (cloud, kubeconfig) are not set here: add them as `env:` from secrets.".into(),
    ]);
    }
    let mut notes = Vec::new();
    if let Some(n) = note {
        header.push(n.clone());
        notes.push(n);
    }
    header.push(String::new());
    Ok(Export {
        text: with_header(&header, &to_yaml(&wf)?),
        notes,
    })
}
