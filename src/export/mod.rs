//! `bitops export`: the graph as a CI pipeline (DESIGN §5) — GitHub Actions, GitLab CI or an
//! Argo Workflow with one job (DAG task) per selected deployment, each running
//! `bitops deploy --only <env/deployment>` in the bitops image.
//!
//! Environment nodes are not jobs. A job needs the deployment jobs it waits for through
//! environment nodes (an environment waits for all of its deployments), which is the plan's graph
//! with environment nodes contracted; unselected deployments are assumed deployed (their
//! outputs come from the state folder), as in `deploy`. Outputs travel as CI artifacts holding the state folder's `outputs/` (each deployment's
//! last successful outputs, which `deploy` reads for upstream deployments that are not part of
//! its own run): each job publishes the whole folder, its own file and everything it received,
//! so outputs reach every transitive dependent through direct `needs` alone.
//!
//! The YAML is built from serde structs and written through [`crate::yaml::to_string`]; only
//! the explanatory header is text.

mod argo;
mod github;
mod gitlab;
mod ids;
mod limits;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod validate_tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use petgraph::graph::NodeIndex;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::cli::{ExportArgs, ExportTarget};
use crate::diagnostic::{ConfigErrors, Problem};
use crate::graph::{EdgeKind, Graph, NodeKind, Selection};
use crate::model::Repo;

pub use crate::cli::{DEFAULT_IMAGE, NO_IMAGE};
pub use limits::{ARGO_MAX_BYTES, GITHUB_MAX_JOBS, GITLAB_MAX_NEEDS};

/// How the pipeline is written (everything except the graph).
#[derive(Clone, Debug)]
pub struct Options {
    pub target: ExportTarget,
    /// The bitops container image every job runs in; `None` (`--image none`) for shell runners,
    /// where jobs run on the runner host and find `bitops` on its PATH.
    pub image: Option<String>,
    /// The ops repo relative to the root of its git checkout (`.` when it is the root): where
    /// it is in a CI job's checkout.
    pub repo_path: String,
    /// Argo: the git URL jobs clone (`origin`), if known.
    pub git_url: Option<String>,
    /// The shared state store every job's `bitops deploy --state` uses (`--state URL`); outputs
    /// then travel through it, not as CI artifacts.
    pub state: Option<String>,
    /// Flags every `bitops deploy` in the pipeline gets (`--allow-protected`).
    pub deploy_flags: Vec<String>,
    /// The command that writes this file again, shown in its header.
    pub regenerate: String,
}

/// A generated pipeline.
#[derive(Debug)]
pub struct Export {
    pub text: String,
    /// Things the user should know (grouping applied, gates inserted, …), for stderr.
    pub notes: Vec<String>,
}

/// One selected deployment and the selected deployments it directly waits for.
#[derive(Clone, Debug)]
pub(crate) struct Unit {
    /// `env/deployment`.
    pub(crate) id: String,
    /// Index into `Repo::environments`.
    pub(crate) env: usize,
    /// Indices into [`DeploymentGraph::units`], sorted.
    pub(crate) needs: Vec<usize>,
    /// The subset of `needs` it only waits for, whatever their result (order-only edges that
    /// `bitops deploy` honours for this environment, see [`keeps_going`]), sorted.
    pub(crate) order_only: Vec<usize>,
}

/// The plan's graph at deployment level: selected deployments in topological order, each with
/// its direct deployment predecessors (walking through environment nodes).
#[derive(Debug)]
pub(crate) struct DeploymentGraph {
    pub(crate) units: Vec<Unit>,
}

impl DeploymentGraph {
    pub(crate) fn new(repo: &Repo, graph: &Graph, selection: &Selection) -> Self {
        let order: Vec<NodeIndex> = selection.deployments(graph).collect();
        let pos: HashMap<NodeIndex, usize> =
            order.iter().enumerate().map(|(k, i)| (*i, k)).collect();
        let mut units = Vec::with_capacity(order.len());
        let mut seen: HashSet<NodeIndex> = HashSet::new();
        let selected = |x: NodeIndex| selection.contains(x);
        for &i in &order {
            seen.clear();
            // Reached twice (in order, and through an environment): success wins.
            let mut found: HashMap<usize, EdgeKind> = HashMap::new();
            // `selected_dependency_kinds` looks through unselected environment nodes (as the
            // plan and the scheduler do); selected environment nodes are walked through here,
            // and what lies behind one must succeed (membership is a success edge).
            let mut stack = graph.selected_dependency_kinds(i, selected);
            while let Some((p, kind)) = stack.pop() {
                match graph.node(p).kind {
                    NodeKind::Deployment => {
                        let k = found.entry(pos[&p]).or_insert(kind);
                        *k = (*k).min(kind);
                    }
                    NodeKind::Environment if seen.insert(p) => stack.extend(
                        graph
                            .selected_dependencies(p, selected)
                            .into_iter()
                            .map(|q| (q, EdgeKind::Success)),
                    ),
                    NodeKind::Environment => {}
                }
            }
            let n = graph.node(i);
            let mut needs: Vec<usize> = found.keys().copied().collect();
            needs.sort_unstable();
            // With fail-fast on, nothing new starts after a failure: every edge is a success edge.
            let mut order_only: Vec<usize> = if keeps_going(repo, n.env) {
                found
                    .iter()
                    .filter(|(_, k)| **k == EdgeKind::Order)
                    .map(|(p, _)| *p)
                    .collect()
            } else {
                Vec::new()
            };
            order_only.sort_unstable();
            units.push(Unit {
                id: n.id.clone(),
                env: n.env,
                needs,
                order_only,
            });
        }
        DeploymentGraph { units }
    }
}

/// Whether `bitops deploy` of this environment keeps going after a failure (`fail_fast: false`
/// in its `bitops.config.yaml`, else in the repo's): then a deployment behind an order-only
/// edge still runs after the previous one failed. The exporting shell's `--keep-going` and
/// `BITOPS_FAST_FAIL` do not count: the pipeline runs elsewhere.
pub(crate) fn keeps_going(repo: &Repo, env: usize) -> bool {
    let fail_fast = repo.environments[env]
        .config
        .fail_fast
        .as_ref()
        .or(repo.config.fail_fast.as_ref())
        .is_none_or(|v| v.value);
    !fail_fast
}

/// A job of the pipeline: one deployment, or (GitHub, over its job limit) the selected
/// deployments of one environment.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    /// Shown to people: the node id, or the environment for a grouped job.
    pub(crate) title: String,
    /// `--only` arguments of its `bitops deploy`.
    pub(crate) only: Vec<String>,
    /// Indices into [`DeploymentGraph::units`] it runs.
    pub(crate) units: Vec<usize>,
    /// Indices of the jobs it needs, sorted.
    pub(crate) needs: Vec<usize>,
    /// The subset of `needs` it only waits for, whatever their result, sorted.
    pub(crate) order_only: Vec<usize>,
}

impl Job {
    pub(crate) fn single(dg: &DeploymentGraph, u: usize) -> Job {
        Job {
            title: dg.units[u].id.clone(),
            only: vec![dg.units[u].id.clone()],
            units: vec![u],
            needs: dg.units[u].needs.clone(),
            order_only: dg.units[u].order_only.clone(),
        }
    }
}

/// Builds the pipeline for a loaded, selected repo.
pub fn export(
    repo: &Repo,
    graph: &Graph,
    selection: &Selection,
    opts: &Options,
) -> Result<Export, ConfigErrors> {
    let dg = DeploymentGraph::new(repo, graph, selection);
    if dg.units.is_empty() {
        return Err(ConfigErrors::single(
            Problem::new("bitops::export::empty", format!("the selection ({}) has no deployments to export", selection.description))
                .help("select environments with -e PATTERN or nodes with --only NODE; `bitops plan` lists them"),
        ));
    }
    check_strings(repo, &dg, opts)?;
    if let Some(url) = &opts.state {
        check_state_url(url)?;
    }
    let ctx = Ctx {
        repo,
        dg: &dg,
        opts,
        selection,
    };
    match opts.target {
        ExportTarget::GithubActions => github::render(&ctx),
        ExportTarget::GitlabCi => gitlab::render(&ctx),
        ExportTarget::Argo => argo::render(&ctx),
    }
}

/// What every renderer works from.
pub(crate) struct Ctx<'a> {
    pub(crate) repo: &'a Repo,
    pub(crate) dg: &'a DeploymentGraph,
    pub(crate) opts: &'a Options,
    pub(crate) selection: &'a Selection,
}

impl Ctx<'_> {
    /// The state folder in the job's checkout, relative to the checkout root.
    pub(crate) fn state_rel(&self) -> String {
        join_rel(&self.opts.repo_path, ".bitops")
    }

    pub(crate) fn outputs_rel(&self) -> String {
        join_rel(&self.opts.repo_path, ".bitops/outputs")
    }

    /// `bitops deploy -C <repo> --only <node>…` for a job, shell-quoted.
    pub(crate) fn deploy_command(&self, repo_dir: &str, job: &Job) -> String {
        let mut words = vec![
            "bitops".to_string(),
            "deploy".into(),
            "-C".into(),
            sh_quote(repo_dir),
        ];
        for o in &job.only {
            words.push("--only".into());
            words.push(sh_quote(o));
        }
        if let Some(url) = &self.opts.state {
            words.push("--state".into());
            words.push(sh_quote(url));
        }
        words.extend(self.opts.deploy_flags.iter().map(|f| sh_quote(f)));
        words.join(" ")
    }

    /// Whether outputs travel as CI artifacts (no shared state store).
    pub(crate) fn artifacts(&self) -> bool {
        self.opts.state.is_none()
    }

    /// Header lines for pipelines whose outputs travel through the state store.
    pub(crate) fn store_header(&self) -> Vec<String> {
        let url = self.opts.state.as_deref().unwrap_or_default();
        vec![
            String::new(),
            format!("Outputs travel through the shared state store {url}: every job runs"),
            "`bitops deploy --state` with it, which reads the last outputs of upstream deployments"
                .into(),
            "from the store and records its own there; jobs only wait for each other. The store's"
                .into(),
            "credentials (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS) come from the CI"
                .into(),
            "system's secrets.".into(),
        ]
    }

    /// The lines every header starts with.
    pub(crate) fn header(&self, system: &str, jobs: usize) -> Vec<String> {
        vec![
            format!(
                "{system} pipeline generated by `bitops export` from the operations repo `{}`",
                self.opts.repo_path
            ),
            format!(
                "(selection: {}; {} deployments, {jobs} jobs). Do not edit: regenerate with",
                self.selection.description,
                self.dg.units.len()
            ),
            format!("  {}", self.opts.regenerate),
            match &self.opts.image {
                Some(image) => {
                    format!("Every job runs `bitops deploy --only <env/deployment>` in {image}.")
                }
                None => "Every job runs `bitops deploy --only <env/deployment>` on a shell runner (no container image): `bitops` must be on the runner's PATH.".to_string(),
            },
        ]
    }
}

/// `base/rest`, with `.` as the base meaning the checkout root.
pub(crate) fn join_rel(base: &str, rest: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.is_empty() || base == "." {
        rest.to_string()
    } else {
        format!("{base}/{rest}")
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub(crate) fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Text a CI system would evaluate instead of passing through (`${{` on GitHub, `{{` in Argo)
/// cannot be written safely; refuse rather than emit a pipeline that runs something else.
fn check_strings(repo: &Repo, dg: &DeploymentGraph, opts: &Options) -> Result<(), ConfigErrors> {
    let bad = match opts.target {
        ExportTarget::GithubActions => "${{",
        ExportTarget::Argo => "{{",
        ExportTarget::GitlabCi => return Ok(()),
    };
    let mut problems = Vec::new();
    let texts = dg.units.iter().map(|u| u.id.as_str()).chain([
        opts.repo_path.as_str(),
        opts.image.as_deref().unwrap_or(""),
        opts.state.as_deref().unwrap_or(""),
    ]);
    for t in texts {
        if t.contains(bad) {
            problems.push(
                Problem::new("bitops::export::unsafe_name", format!("`{t}` contains `{bad}`, which the CI system would evaluate as an expression"))
                    .help("rename the folder (or choose another image/path), or leave it out of the selection")
                    .path(&repo.root),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors { problems })
    }
}

/// A store URL names its kind (`s3://bucket/prefix`, `az://…`, `gs://…`, `file:///path`); the
/// store itself checks the rest when a job opens it, so only what export can tell is checked.
fn check_state_url(url: &str) -> Result<(), ConfigErrors> {
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
    });
    if scheme_ok && !url.chars().any(char::is_whitespace) {
        return Ok(());
    }
    Err(ConfigErrors::single(
        Problem::new("bitops::export::state_url", format!("`--state {url}` is not a state store URL"))
            .help("name the store with its scheme: s3://bucket/prefix, az://container/prefix or file:///path (a folder every runner sees)"),
    ))
}

/// The generated text: a comment header, then the YAML document.
pub(crate) fn with_header(header: &[String], yaml: &str) -> String {
    let mut out = String::new();
    for line in header {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(yaml);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

pub(crate) fn to_yaml<T: Serialize>(value: &T) -> Result<String, ConfigErrors> {
    crate::yaml::to_string(value).map_err(|e| {
        ConfigErrors::single(Problem::new(
            "bitops::export::yaml",
            format!("cannot write the pipeline as YAML: {e}"),
        ))
    })
}

/// A map that keeps insertion order when serialized (jobs in topological order).
#[derive(Clone, Debug)]
pub(crate) struct OrderedMap<K, V>(pub(crate) Vec<(K, V)>);

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<K: Serialize, V: Serialize> Serialize for OrderedMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<K, V> OrderedMap<K, V> {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Options for a command line's `export`: where the ops repo sits in its git checkout, its
/// remote, and the command that regenerates the file.
pub fn options(args: &ExportArgs, repo_root: &Path) -> (Options, Vec<String>) {
    let mut notes = Vec::new();
    let repo_path = match git(repo_root, &["rev-parse", "--show-prefix"]) {
        Some(p) => {
            let p = p.trim().trim_end_matches('/').to_string();
            if p.is_empty() {
                ".".to_string()
            } else {
                p
            }
        }
        None => {
            notes.push(format!(
                "{} is not in a git checkout: the pipeline assumes the operations repo is the root of the checkout",
                repo_root.display()
            ));
            ".".to_string()
        }
    };
    let git_url = git(repo_root, &["remote", "get-url", "origin"])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let mut deploy_flags = Vec::new();
    if args.common.allow_protected {
        deploy_flags.push("--allow-protected".to_string());
    }
    let regenerate = regenerate_command(args, &repo_path);
    (
        Options {
            target: args.target,
            image: image_option(&args.image),
            repo_path,
            git_url,
            state: state_url(args).map(str::to_string),
            deploy_flags,
            regenerate,
        },
        notes,
    )
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The export command line, relative to the checkout root, without machine-specific paths.
fn regenerate_command(args: &ExportArgs, repo_path: &str) -> String {
    let target = match args.target {
        ExportTarget::GithubActions => "github-actions",
        ExportTarget::GitlabCi => "gitlab-ci",
        ExportTarget::Argo => "argo",
    };
    let c = &args.common;
    let mut w = vec![
        "bitops".to_string(),
        "export".into(),
        "--to".into(),
        target.into(),
        "-C".into(),
        sh_quote(repo_path),
    ];
    for e in &c.envs {
        w.extend(["-e".to_string(), sh_quote(e)]);
    }
    for o in &c.only {
        w.extend(["--only".to_string(), sh_quote(o)]);
    }
    if c.with_deps {
        w.push("--with-deps".into());
    }
    if c.with_dependents {
        w.push("--with-dependents".into());
    }
    if let Some(r) = &c.changed_since {
        w.extend(["--changed-since".to_string(), sh_quote(r)]);
    }
    if c.allow_protected {
        w.push("--allow-protected".into());
    }
    if args.image != DEFAULT_IMAGE {
        w.extend(["--image".to_string(), sh_quote(&args.image)]);
    }
    if let Some(url) = state_url(args) {
        w.extend(["--state".to_string(), sh_quote(url)]);
    }
    if let Some(o) = &args.output {
        w.extend(["-o".to_string(), sh_quote(&o.display().to_string())]);
    }
    w.join(" ")
}

/// `export --state URL`. Only the flag counts, never `BITOPS_STATE` from the exporting shell:
/// where outputs travel is a property of the written file, chosen explicitly.
fn state_url(args: &ExportArgs) -> Option<&str> {
    // The flag only: the exporting machine's own `BITOPS_STATE` says nothing about the runners.
    args.common.state.as_deref()
}

/// `--image` as given: `none` means shell runners (no container image).
pub fn image_option(image: &str) -> Option<String> {
    (image != NO_IMAGE).then(|| image.to_string())
}

/// Environments in the selection marked `protected` while `--allow-protected` was not given: their
/// jobs would refuse to run.
pub fn protected_note(
    repo: &Repo,
    graph: &Graph,
    selection: &Selection,
    allow_protected: bool,
) -> Option<String> {
    if allow_protected {
        return None;
    }
    let mut names: Vec<&str> = selection
        .deployments(graph)
        .map(|i| &repo.environments[graph.node(i).env])
        .filter(|e| e.settings.protected)
        .map(|e| e.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    (!names.is_empty()).then(|| {
        format!(
            "protected environments are selected ({}): their jobs will refuse to run; export with --allow-protected to let them",
            names.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("backend-test/terraform"), "backend-test/terraform");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(join_rel(".", ".bitops"), ".bitops");
        assert_eq!(join_rel("ops/", ".bitops"), "ops/.bitops");
    }

    #[test]
    fn ordered_map_keeps_order() {
        let m = OrderedMap(vec![("b", 1), ("a", 2)]);
        assert_eq!(crate::yaml::to_string(&m).unwrap(), "b: 1\na: 2\n");
    }

    #[test]
    fn environment_nodes_are_walked_through() {
        let f = fixtures::Fixture::new(&[]);
        f.env("net", "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n    helm: {plugin: helm}\n", &["terraform", "helm"]);
        f.env(
            "app",
            "bitops:\n  depends_on: [net]\n  deployments:\n    terraform: {plugin: terraform}\n",
            &["terraform"],
        );
        let l = f.load(&[]);
        let dg = DeploymentGraph::new(&l.repo, &l.graph, &l.selection);
        let ids: Vec<&str> = dg.units.iter().map(|u| u.id.as_str()).collect();
        let app = ids.iter().position(|i| *i == "app/terraform").unwrap();
        let mut needs: Vec<&str> = dg.units[app].needs.iter().map(|k| ids[*k]).collect();
        needs.sort_unstable();
        assert_eq!(needs, ["net/helm", "net/terraform"]);
    }
}
