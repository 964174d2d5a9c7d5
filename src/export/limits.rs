//! The limits CI systems put on a pipeline, and what the export does about them.
//!
//! - GitHub Actions runs at most [`GITHUB_MAX_JOBS`] jobs per workflow. Over it, environments are
//!   grouped into one job each (largest first, only as many as needed; when the grouped jobs
//!   would wait for each other, one environment of the cycle at a time is left ungrouped); if that is not enough, the export is refused with the
//!   numbers and how to narrow the selection.
//! - GitLab CI allows at most [`GITLAB_MAX_NEEDS`] entries in a job's `needs`. A job that needs
//!   more depends on "gate" jobs instead: one per environment whose deployments it needs (`script:
//!   echo`, passing the outputs artifacts through), and gates of gates in chunks of 50 when even
//!   that is too many.
//! - Argo has no documented limit on DAG tasks, but a Workflow is one Kubernetes object and must
//!   fit in etcd (1.5 MiB by default, status included): a workflow over [`ARGO_MAX_BYTES`] is
//!   refused.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use petgraph::graph::DiGraph;

use super::{ids, DeploymentGraph, Job};
use crate::diagnostic::{ConfigErrors, Problem};
use crate::model::Repo;

/// Jobs per workflow run on GitHub Actions.
pub const GITHUB_MAX_JOBS: usize = 256;
/// Entries of one job's `needs` on GitLab CI (the default of `ci_max_needs`).
pub const GITLAB_MAX_NEEDS: usize = 50;
/// Largest Argo Workflow written, in bytes of YAML.
pub const ARGO_MAX_BYTES: usize = 1_000_000;

/// The jobs of a GitHub workflow: one per deployment, or grouped by environment to fit the limit.
/// Returns the jobs in topological order and a note when grouping was applied.
pub(crate) fn github_jobs(
    repo: &Repo,
    dg: &DeploymentGraph,
    limit: usize,
) -> Result<(Vec<Job>, Option<String>), ConfigErrors> {
    let n = dg.units.len();
    if n <= limit {
        return Ok(((0..n).map(|u| Job::single(dg, u)).collect(), None));
    }
    let mut by_env: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (k, u) in dg.units.iter().enumerate() {
        by_env.entry(u.env).or_default().push(k);
    }
    // Largest environments first: each grouping saves (size - 1) jobs.
    let mut candidates: Vec<usize> = by_env
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(e, _)| *e)
        .collect();
    candidates.sort_by(|a, b| {
        by_env[b]
            .len()
            .cmp(&by_env[a].len())
            .then(repo.environments[*a].name.cmp(&repo.environments[*b].name))
    });
    let mut banned: HashSet<usize> = HashSet::new();
    let mut grouped: BTreeSet<usize> = BTreeSet::new();
    loop {
        let mut count = n - grouped.iter().map(|e| by_env[e].len() - 1).sum::<usize>();
        for &e in &candidates {
            if count <= limit {
                break;
            }
            if !grouped.contains(&e) && !banned.contains(&e) {
                grouped.insert(e);
                count -= by_env[&e].len() - 1;
            }
        }
        let jobs = quotient(repo, dg, &by_env, &grouped);
        match topo_jobs(jobs) {
            Ok(jobs) => {
                if jobs.len() > limit {
                    return Err(ConfigErrors::single(too_many_jobs(
                        repo,
                        dg,
                        &by_env,
                        &banned,
                        jobs.len(),
                        limit,
                    )));
                }
                let note = format!(
                    "GitHub Actions runs at most {limit} jobs per workflow and the selection has {n} deployments: \
                     {} environment{} run as one job each ({} jobs in all)",
                    grouped.len(),
                    if grouped.len() == 1 { "" } else { "s" },
                    jobs.len()
                );
                return Ok((jobs, Some(note)));
            }
            Err(cyclic) => {
                // Grouping made jobs wait for each other. Keep the deployments of one of the
                // environments involved (the largest: it is the likeliest to be split by an
                // outside path) as separate jobs, and try again.
                let before = banned.len();
                let envs: HashSet<usize> = cyclic.iter().map(|u| dg.units[*u].env).collect();
                if let Some(e) = candidates
                    .iter()
                    .find(|e| envs.contains(e) && grouped.contains(e))
                {
                    grouped.remove(e);
                    banned.insert(*e);
                }
                assert!(
                    banned.len() > before,
                    "a cycle in the grouped jobs involves a grouped environment"
                );
            }
        }
    }
}

/// Jobs with the grouped environments' deployments merged, in unit order.
fn quotient(
    repo: &Repo,
    dg: &DeploymentGraph,
    by_env: &BTreeMap<usize, Vec<usize>>,
    grouped: &BTreeSet<usize>,
) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_of = vec![usize::MAX; dg.units.len()];
    for (k, u) in dg.units.iter().enumerate() {
        if job_of[k] != usize::MAX {
            continue;
        }
        if grouped.contains(&u.env) {
            let members = &by_env[&u.env];
            let env = &repo.environments[u.env];
            let only = if members.len() == env.deployments.len() {
                vec![env.name.clone()]
            } else {
                members.iter().map(|m| dg.units[*m].id.clone()).collect()
            };
            for m in members {
                job_of[*m] = jobs.len();
            }
            jobs.push(Job {
                title: env.name.clone(),
                only,
                units: members.clone(),
                needs: Vec::new(),
                order_only: Vec::new(),
            });
        } else {
            job_of[k] = jobs.len();
            jobs.push(Job::single(dg, k));
        }
    }
    for (j, job) in jobs.iter_mut().enumerate() {
        let mut needs: Vec<usize> = job
            .units
            .iter()
            .flat_map(|u| dg.units[*u].needs.iter().map(|p| job_of[*p]))
            .filter(|p| *p != j)
            .collect();
        needs.sort_unstable();
        needs.dedup();
        // A need is order-only when every unit edge behind it is (an order edge joins two
        // deployments of one environment, so a grouped job's own order stays inside it).
        let order_only = needs
            .iter()
            .copied()
            .filter(|&p| {
                job.units.iter().all(|u| {
                    let unit = &dg.units[*u];
                    unit.needs
                        .iter()
                        .filter(|q| job_of[**q] == p)
                        .all(|q| unit.order_only.contains(q))
                })
            })
            .collect();
        job.needs = needs;
        job.order_only = order_only;
    }
    jobs
}

/// The jobs in a topological order (needs renumbered), or a unit of each grouped job that lies
/// on a cycle.
fn topo_jobs(jobs: Vec<Job>) -> Result<Vec<Job>, Vec<usize>> {
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(jobs.len(), 0);
    let nodes: Vec<_> = (0..jobs.len()).map(|_| g.add_node(())).collect();
    for (j, job) in jobs.iter().enumerate() {
        for &p in &job.needs {
            g.add_edge(nodes[p], nodes[j], ());
        }
    }
    match petgraph::algo::toposort(&g, None) {
        Ok(order) => {
            let mut new_index = vec![0; jobs.len()];
            for (k, i) in order.iter().enumerate() {
                new_index[i.index()] = k;
            }
            let mut slots: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
            let mut out = Vec::with_capacity(slots.len());
            for i in order {
                let mut job = slots[i.index()].take().expect("each job once");
                job.needs = job.needs.iter().map(|p| new_index[*p]).collect();
                job.needs.sort_unstable();
                job.order_only = job.order_only.iter().map(|p| new_index[*p]).collect();
                job.order_only.sort_unstable();
                out.push(job);
            }
            Ok(out)
        }
        Err(_) => {
            let mut units = Vec::new();
            for scc in petgraph::algo::tarjan_scc(&g) {
                if scc.len() > 1 {
                    for i in scc {
                        // Grouped jobs are the ones with several units; all units share an env.
                        if jobs[i.index()].units.len() > 1 {
                            units.push(jobs[i.index()].units[0]);
                        }
                    }
                }
            }
            Err(units)
        }
    }
}

fn too_many_jobs(
    repo: &Repo,
    dg: &DeploymentGraph,
    by_env: &BTreeMap<usize, Vec<usize>>,
    banned: &HashSet<usize>,
    jobs: usize,
    limit: usize,
) -> Problem {
    let n = dg.units.len();
    let mut biggest: Vec<(&str, usize)> = by_env
        .iter()
        .map(|(e, v)| (repo.environments[*e].name.as_str(), v.len()))
        .collect();
    biggest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let example: Vec<String> = biggest
        .iter()
        .take(3)
        .map(|(e, c)| format!("{e} ({c})"))
        .collect();
    let mut message = format!(
        "GitHub Actions runs at most {limit} jobs per workflow, and this selection needs {jobs} ({} over the limit) \
         even with every environment grouped into one job: {n} deployments in {} environments",
        jobs - limit,
        by_env.len()
    );
    if !banned.is_empty() {
        message.push_str(&format!(
            "; {} environment{} cannot be grouped because {} deployments wait for each other across environments",
            banned.len(),
            if banned.len() == 1 { "" } else { "s" },
            if banned.len() == 1 { "its" } else { "their" }
        ));
    }
    let largest = if biggest.first().is_some_and(|(_, c)| *c > 1) {
        format!(
            " Largest environments (deployments): {}.",
            example.join(", ")
        )
    } else {
        String::new()
    };
    Problem::new("bitops::export::github_job_limit", message).help(format!(
        "export several workflows, each with at most {limit} jobs, by narrowing the selection: \
         `bitops export --to github-actions -e 'PATTERN' -o FILE` (or --only NODE); jobs of one workflow \
         cannot wait for another's, so split along environments that do not depend on each other.\
         {largest} GitLab CI and Argo have no such limit (--to gitlab-ci, --to argo)"
    ))
}

/// What a GitLab job needs: another job or a gate.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Need {
    pub(crate) name: String,
    /// The environment of a deployment job (`None` for gates).
    pub(crate) env: Option<String>,
}

/// A fan-in job inserted for GitLab's needs limit.
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    pub(crate) name: String,
    /// What it stands for, for its script.
    pub(crate) covers: String,
    pub(crate) needs: Vec<String>,
}

/// Replaces need lists longer than the limit by gates; remembers gates so equal sets share one.
pub(crate) struct FanIn<'a> {
    pub(crate) max: usize,
    /// Per environment, the names of all its deployment jobs (sorted).
    pub(crate) env_jobs: &'a HashMap<String, Vec<String>>,
    /// Gates in the order they were made (dependencies first).
    pub(crate) gates: Vec<Gate>,
    by_members: HashMap<Vec<String>, String>,
    names: HashSet<String>,
}

impl<'a> FanIn<'a> {
    /// `taken`: names already used by jobs.
    pub(crate) fn new(
        max: usize,
        env_jobs: &'a HashMap<String, Vec<String>>,
        taken: impl IntoIterator<Item = String>,
    ) -> Self {
        assert!(max >= 2, "a gate must be able to need two jobs");
        FanIn {
            max,
            env_jobs,
            gates: Vec::new(),
            by_members: HashMap::new(),
            names: taken.into_iter().collect(),
        }
    }

    /// At most `max` names standing for all of `needs`.
    pub(crate) fn reduce(&mut self, needs: &[Need]) -> Vec<String> {
        if needs.len() <= self.max {
            return needs.iter().map(|n| n.name.clone()).collect();
        }
        let mut by_env: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut items: Vec<String> = Vec::new();
        for n in needs {
            match &n.env {
                Some(e) => by_env.entry(e.as_str()).or_default().push(n.name.clone()),
                None => items.push(n.name.clone()),
            }
        }
        for (env, members) in by_env {
            if members.len() == 1 {
                items.extend(members);
            } else {
                items.push(self.gate(members, Some(env)));
            }
        }
        items.sort();
        self.chunk(items)
    }

    /// Gates of at most `max` until at most `max` names remain.
    fn chunk(&mut self, mut items: Vec<String>) -> Vec<String> {
        while items.len() > self.max {
            items = items
                .chunks(self.max)
                .map(|c| {
                    if c.len() == 1 {
                        c[0].clone()
                    } else {
                        self.gate(c.to_vec(), None)
                    }
                })
                .collect();
        }
        items
    }

    /// One job that needs all of `members` (through more gates if they are too many).
    fn gate(&mut self, mut members: Vec<String>, env: Option<&str>) -> String {
        members.sort();
        if let Some(name) = self.by_members.get(&members) {
            return name.clone();
        }
        let whole_env =
            env.is_some_and(|e| self.env_jobs.get(e).is_some_and(|all| *all == members));
        let hash = ids::short_hash(&members.join("\n"));
        let (base, covers) = match env {
            Some(e) if whole_env => (format!("gate:{e}"), format!("all deployments of {e}")),
            Some(e) => (
                format!("gate:{e}:{hash}"),
                format!("{} deployments of {e}", members.len()),
            ),
            None => (format!("gate:{hash}"), format!("{} jobs", members.len())),
        };
        let mut name = gitlab_name(&base);
        let mut k = 2;
        while self.names.contains(&name) {
            name = gitlab_name(&format!("{base}:{k}"));
            k += 1;
        }
        let needs = if members.len() > self.max {
            self.chunk(members.clone())
        } else {
            members.clone()
        };
        self.names.insert(name.clone());
        self.by_members.insert(members, name.clone());
        self.gates.push(Gate {
            name: name.clone(),
            covers,
            needs,
        });
        name
    }
}

/// GitLab job names may be up to 255 characters.
pub(crate) fn gitlab_name(s: &str) -> String {
    const MAX: usize = 255;
    if s.len() <= MAX {
        return s.to_string();
    }
    let hash = ids::short_hash(s);
    let mut cut = MAX - hash.len() - 1;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}", &s[..cut])
}

/// Refuses an Argo Workflow too large to be stored as one Kubernetes object.
pub(crate) fn argo_size(bytes: usize, tasks: usize) -> Result<(), ConfigErrors> {
    if bytes <= ARGO_MAX_BYTES {
        return Ok(());
    }
    Err(ConfigErrors::single(Problem::new(
        "bitops::export::argo_too_large",
        format!(
            "the Argo Workflow would be {bytes} bytes ({tasks} tasks), over the {ARGO_MAX_BYTES} bytes bitops allows \
             ({} over): a Workflow is one Kubernetes object, and etcd refuses objects over 1.5 MiB (status included)",
            bytes - ARGO_MAX_BYTES
        ),
    )
    .help("export several workflows by narrowing the selection (`-e PATTERN`, `--only NODE`), splitting along environments that do not depend on each other")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(name: &str, env: &str) -> Need {
        Need {
            name: name.into(),
            env: Some(env.into()),
        }
    }

    #[test]
    fn short_need_lists_stay() {
        let envs = HashMap::new();
        let mut f = FanIn::new(3, &envs, []);
        assert_eq!(
            f.reduce(&[need("a/x", "a"), need("b/x", "b")]),
            ["a/x", "b/x"]
        );
        assert!(f.gates.is_empty());
    }

    #[test]
    fn gates_per_environment_then_chunks() {
        let mut envs = HashMap::new();
        envs.insert(
            "a".to_string(),
            vec!["a/1".to_string(), "a/2".into(), "a/3".into()],
        );
        let mut f = FanIn::new(3, &envs, []);
        let needs = [
            need("a/1", "a"),
            need("a/2", "a"),
            need("a/3", "a"),
            need("b/1", "b"),
        ];
        let r = f.reduce(&needs);
        assert_eq!(r, ["b/1", "gate:a"]);
        assert_eq!(f.gates[0].needs, ["a/1", "a/2", "a/3"]);
        // Many environments with one deployment each: chunked into gates.
        let many: Vec<Need> = (0..10)
            .map(|i| need(&format!("e{i}/x"), &format!("e{i}")))
            .collect();
        let r = f.reduce(&many);
        assert!(r.len() <= 3, "{r:?}");
        assert!(f.gates.iter().all(|g| g.needs.len() <= 3));
        // The same set again reuses the same gates.
        let before = f.gates.len();
        assert_eq!(f.reduce(&many), r);
        assert_eq!(f.gates.len(), before);
    }

    #[test]
    fn long_gitlab_names_are_cut() {
        let n = gitlab_name(&"x".repeat(400));
        assert_eq!(n.len(), 255);
        assert_ne!(n, gitlab_name(&"x".repeat(401)));
    }
}
