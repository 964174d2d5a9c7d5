//! GitLab CI: one job per deployment, named by its node id, in one `deploy` stage ordered by
//! `needs`. A job's artifacts are the state folder's `outputs/` and its run logs; `needs` with
//! `artifacts: true` brings the upstream outputs into the job's checkout before it runs. A job
//! that would need more than 50 jobs needs gate jobs instead (see `limits`).

use std::collections::HashMap;

use serde::Serialize;

use super::limits::{self, FanIn, Need};
use super::{to_yaml, with_header, Ctx, Export, OrderedMap};
use crate::diagnostic::ConfigErrors;

#[derive(Serialize)]
struct Pipeline {
    stages: Vec<String>,
    workflow: Workflow,
    /// Absent for shell runners (`--image none`): jobs run on the runner host.
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Default>,
    #[serde(flatten)]
    jobs: OrderedMap<String, GlJob>,
}

#[derive(Serialize)]
struct Workflow {
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Rule {
    #[serde(rename = "if")]
    condition: String,
}

#[derive(Serialize)]
struct Default {
    image: Image,
}

#[derive(Serialize)]
struct Image {
    name: String,
    /// The bitops image's entrypoint runs bitops; GitLab needs a shell to run `script`.
    entrypoint: Vec<String>,
}

#[derive(Serialize)]
struct GlJob {
    stage: String,
    needs: Vec<NeedOut>,
    /// `always` when every need is order-only: GitLab cannot say "finished, any result" per
    /// need, only for the whole job.
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<String>,
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    variables: OrderedMap<&'static str, String>,
    script: Vec<String>,
    /// Absent on gates when outputs travel through the state store (they have nothing to pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts: Option<Artifacts>,
}

#[derive(Serialize)]
struct NeedOut {
    job: String,
    artifacts: bool,
}

#[derive(Serialize)]
struct Artifacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    when: Option<String>,
    paths: Vec<String>,
    expire_in: String,
}

const STAGE: &str = "deploy";
const EXPIRE: &str = "1 week";

pub(super) fn render(ctx: &Ctx<'_>) -> Result<Export, ConfigErrors> {
    let dg = ctx.dg;
    let names: Vec<String> = dg
        .units
        .iter()
        .map(|u| limits::gitlab_name(&u.id))
        .collect();
    let names = super::ids::unique(names, "~");
    let env_name = |u: usize| ctx.repo.environments[dg.units[u].env].name.clone();
    let mut env_jobs: HashMap<String, Vec<String>> = HashMap::new();
    for (k, n) in names.iter().enumerate() {
        env_jobs.entry(env_name(k)).or_default().push(n.clone());
    }
    for v in env_jobs.values_mut() {
        v.sort();
    }
    let mut fan = FanIn::new(limits::GITLAB_MAX_NEEDS, &env_jobs, names.iter().cloned());
    let outputs = format!("{}/", ctx.outputs_rel());
    let runs = format!("{}/runs/", ctx.state_rel());
    let with_artifacts = ctx.artifacts();
    let need_out = |needs: Vec<String>| -> Vec<NeedOut> {
        needs
            .into_iter()
            .map(|job| NeedOut {
                job,
                artifacts: with_artifacts,
            })
            .collect()
    };
    let mut jobs: Vec<(String, GlJob)> = Vec::with_capacity(dg.units.len());
    for (k, u) in dg.units.iter().enumerate() {
        let needs: Vec<Need> = u
            .needs
            .iter()
            .map(|p| Need {
                name: names[*p].clone(),
                env: Some(env_name(*p)),
            })
            .collect();
        let needs = fan.reduce(&needs);
        // Exact only when every need is order-only (and no gate stands in for them); a job
        // mixing kinds keeps GitLab's default: every need must succeed.
        let order_only = !u.needs.is_empty()
            && u.order_only.len() == u.needs.len()
            && needs
                .iter()
                .all(|n| u.order_only.iter().any(|p| names[*p] == *n));
        let job = super::Job::single(dg, k);
        let deploy = ctx.deploy_command(&ctx.opts.repo_path, &job);
        // With a state store, upstream jobs' artifacts hold only their logs: nothing to fetch.
        let script = if with_artifacts {
            // Upstream jobs' logs came with their artifacts: publish only this job's.
            vec![format!("rm -rf {}", super::sh_quote(&runs)), deploy]
        } else {
            vec![deploy]
        };
        let mut paths = vec![runs.clone()];
        if with_artifacts {
            paths.insert(0, outputs.clone());
        }
        jobs.push((
            names[k].clone(),
            GlJob {
                stage: STAGE.into(),
                needs: need_out(needs),
                when: order_only.then(|| "always".to_string()),
                variables: OrderedMap::default(),
                script,
                artifacts: Some(Artifacts {
                    when: Some("always".into()),
                    paths,
                    expire_in: EXPIRE.into(),
                }),
            },
        ));
    }
    let gates = std::mem::take(&mut fan.gates);
    let gate_count = gates.len();
    let mut all: Vec<(String, GlJob)> = Vec::with_capacity(jobs.len() + gates.len());
    for g in gates {
        all.push((
            g.name.clone(),
            GlJob {
                stage: STAGE.into(),
                needs: need_out(g.needs),
                when: None,
                variables: OrderedMap(vec![("GIT_STRATEGY", "none".to_string())]),
                script: vec![format!(
                    "echo {}",
                    super::sh_quote(&format!("bitops: {} finished", g.covers))
                )],
                artifacts: with_artifacts.then(|| Artifacts {
                    when: None,
                    paths: vec![outputs.clone()],
                    expire_in: EXPIRE.into(),
                }),
            },
        ));
    }
    // Gates first (each only needs deployment jobs or earlier gates), then deployments in
    // topological order: the file reads in the order things can happen.
    all.extend(jobs);
    let pipeline = Pipeline {
        stages: vec![STAGE.into()],
        workflow: Workflow {
            rules: vec![
                Rule {
                    condition: "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH".into(),
                },
                Rule {
                    condition: "$CI_PIPELINE_SOURCE == \"web\"".into(),
                },
                Rule {
                    condition: "$CI_PIPELINE_SOURCE == \"parent_pipeline\"".into(),
                },
            ],
        },
        default: ctx.opts.image.as_ref().map(|name| Default {
            image: Image {
                name: name.clone(),
                entrypoint: vec![String::new()],
            },
        }),
        jobs: OrderedMap(all),
    };
    let mut header = ctx.header("GitLab CI", dg.units.len() + gate_count);
    if with_artifacts {
        header.extend([
            String::new(),
            "Outputs travel as artifacts: each job publishes the state folder's outputs/ (its own outputs".into(),
            "and everything it received), and `needs: [{job, artifacts: true}]` unpacks the upstream".into(),
            "jobs' into the checkout, where `bitops deploy` reads the outputs of upstream deployments".into(),
            "that are not part of its own run. Runs on the default branch, from the web UI, or as a".into(),
            "child pipeline. Credentials (cloud, kubeconfig) come from CI/CD variables.".into(),
        ]);
    } else {
        header.extend(ctx.store_header());
        header.extend([
            "Runs on the default branch, from the web UI, or as a child pipeline. Credentials (cloud,".into(),
            "kubeconfig) come from CI/CD variables.".into(),
        ]);
    }
    let mut notes = Vec::new();
    if gate_count > 0 {
        let n = format!(
            "GitLab allows at most {} entries in a job's `needs`: {gate_count} gate job{} (`gate:…`, `script: echo`) fan in for jobs that wait for more",
            limits::GITLAB_MAX_NEEDS,
            if gate_count == 1 { "" } else { "s" }
        );
        header.push(n.clone());
        notes.push(n);
    }
    header.push(String::new());
    Ok(Export {
        text: with_header(&header, &to_yaml(&pipeline)?),
        notes,
    })
}
