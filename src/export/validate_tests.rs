//! Every export is checked by real validators and against the plan:
//!
//! - `check-jsonschema` (PyPI) with its bundled GitHub workflow and GitLab CI schemas, and with the
//!   Argo Workflows JSON schema in `shared/schemas/` (definition
//!   `io.argoproj.workflow.v1alpha1.Workflow`), once as published and once made strict (unknown
//!   keys refused, which the published schema allows). Without `check-jsonschema` these tests
//!   print why they skip, except under `CI`, where they fail.
//! - The job graph read back from the YAML (through `crate::yaml::parse`) equals the plan's graph
//!   at deployment level: the plan's JSON (`depends_on` per node) with environment nodes
//!   contracted, and grouped jobs / gate jobs accounted for. Which deployments a job runs is read
//!   from its `bitops deploy --only …` command.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::fixtures::{load_dir, Fixture, Loaded};
use super::{export, Export, Options};
use crate::cli::ExportTarget;
use crate::graph::SelectOptions;
use crate::plan::Plan;
use crate::yaml::{self, Node, Value};

const TARGETS: [ExportTarget; 3] = [
    ExportTarget::GithubActions,
    ExportTarget::GitlabCi,
    ExportTarget::Argo,
];

fn options(target: ExportTarget, repo_path: &str) -> Options {
    Options {
        target,
        image: Some(crate::cli::DEFAULT_IMAGE.into()),
        repo_path: repo_path.into(),
        git_url: None,
        state: None,
        deploy_flags: Vec::new(),
        regenerate: "bitops export (test)".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Validators

/// `check-jsonschema`, or `None` when it is not installed (a skip; a failure under CI).
fn check_jsonschema() -> Option<PathBuf> {
    crate::test_tools::require("check-jsonschema", &["--version"])
        .then(|| PathBuf::from("check-jsonschema"))
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("BITOPS_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}

/// Runs check-jsonschema with the given schema arguments on files; panics with its output.
fn run_validator(bin: &Path, schema_args: &[&str], files: &[PathBuf]) {
    let out = Command::new(bin)
        .args(schema_args)
        .args(files)
        .output()
        .expect("run check-jsonschema");
    assert!(
        out.status.success(),
        "check-jsonschema {schema_args:?} rejected {files:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Argo schema rooted at the Workflow definition; `strict` adds `additionalProperties: false`
/// to every object definition that lists its properties and says nothing about others.
fn argo_schema(dir: &Path, strict: bool) -> PathBuf {
    let path = shared_dir().join("schemas/argo-workflows.schema.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set BITOPS_SHARED)", path.display()));
    let mut schema: serde_json::Value = serde_json::from_str(&text).expect("Argo schema is JSON");
    let obj = schema.as_object_mut().expect("schema object");
    obj.remove("oneOf");
    obj.remove("type");
    obj.remove("$id");
    obj.insert(
        "$ref".into(),
        "#/definitions/io.argoproj.workflow.v1alpha1.Workflow".into(),
    );
    if strict {
        for def in obj
            .get_mut("definitions")
            .and_then(|d| d.as_object_mut())
            .expect("definitions")
            .values_mut()
        {
            let d = def.as_object_mut().expect("definition object");
            let open = d.keys().any(|k| {
                k == "additionalProperties" || k.starts_with("x-kubernetes-preserve-unknown-fields")
            });
            if d.contains_key("properties") && !open {
                d.insert("additionalProperties".into(), false.into());
            }
        }
    }
    let out = dir.join(if strict {
        "argo-workflow-strict.schema.json"
    } else {
        "argo-workflow.schema.json"
    });
    std::fs::write(&out, serde_json::to_vec(&schema).expect("serialize")).expect("write schema");
    out
}

/// Validates generated files of one target with the published schema (and, for Argo, strictly).
fn validate(target: ExportTarget, files: &[PathBuf]) {
    let Some(bin) = check_jsonschema() else {
        return;
    };
    match target {
        ExportTarget::GithubActions => run_validator(
            &bin,
            &["--builtin-schema", "vendor.github-workflows"],
            files,
        ),
        ExportTarget::GitlabCi => {
            run_validator(&bin, &["--builtin-schema", "vendor.gitlab-ci"], files)
        }
        ExportTarget::Argo => {
            let dir = tempfile::tempdir().expect("temp dir");
            for strict in [false, true] {
                let schema = argo_schema(dir.path(), strict);
                run_validator(
                    &bin,
                    &["--schemafile", schema.to_str().expect("utf-8 path")],
                    files,
                );
            }
        }
    }
}

fn write_files(dir: &Path, exports: &[(String, &Export)]) -> Vec<PathBuf> {
    exports
        .iter()
        .map(|(name, e)| {
            let p = dir.join(name);
            std::fs::write(&p, &e.text).expect("write export");
            p
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading the YAML back

fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    n.get(key)
}

fn str_of(n: &Node) -> String {
    n.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {}", n.kind()))
        .to_string()
}

fn seq(n: &Node) -> &[Node] {
    match &n.value {
        Value::Seq(s) => s,
        _ => panic!("expected a list, got {}", n.kind()),
    }
}

fn entries(n: &Node) -> Vec<(String, &Node)> {
    n.as_map()
        .expect("mapping")
        .iter()
        .map(|(k, v)| {
            (
                k.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{:?}", k.value)),
                v,
            )
        })
        .collect()
}

/// Splits shell words as `sh_quote` writes them (bare words and single-quoted strings).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The `--only` arguments and the `-C` folder of the `bitops deploy` command in a script.
fn deploy_args(script: &str) -> Option<(String, Vec<String>)> {
    let line = script.lines().find(|l| l.contains("bitops deploy"))?;
    let words = shell_words(line);
    let start = words.iter().position(|w| w == "bitops")?;
    let words = &words[start..];
    assert_eq!(words[1], "deploy", "{line}");
    let mut repo = None;
    let mut only = Vec::new();
    let mut k = 2;
    while k < words.len() {
        match words[k].as_str() {
            "-C" => {
                repo = Some(words[k + 1].clone());
                k += 2;
            }
            "--only" => {
                only.push(words[k + 1].clone());
                k += 2;
            }
            _ => k += 1,
        }
    }
    Some((repo.expect("-C given"), only))
}

/// A pipeline read back: per job, the deployments it runs (empty for gates) and what it needs.
#[derive(Debug, Default)]
struct Read {
    /// job → `--only` values (empty: a gate).
    only: BTreeMap<String, Vec<String>>,
    needs: BTreeMap<String, Vec<String>>,
    /// job → the needs it only waits for, whatever their result, read from the system's own
    /// construct (GitHub `if`, GitLab `when: always`, Argo `depends`).
    order_only: BTreeMap<String, BTreeSet<String>>,
    repo_dir: BTreeSet<String>,
}

/// The needs a GitHub job's `if` does not require to succeed (`None`: no `if`).
fn github_order_only(job: &str, cond: Option<String>, needs: &[String]) -> BTreeSet<String> {
    let Some(cond) = cond else {
        return BTreeSet::new();
    };
    let body = cond
        .strip_prefix("${{ !cancelled()")
        .and_then(|c| c.strip_suffix(" }}"))
        .unwrap_or_else(|| panic!("{job}: unexpected if {cond}"));
    let success: BTreeSet<String> = body
        .split(" && ")
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.strip_prefix("needs.")
                .and_then(|p| p.strip_suffix(".result == 'success'"))
                .unwrap_or_else(|| panic!("{job}: unexpected term {p}"))
                .to_string()
        })
        .collect();
    for n in &success {
        assert!(needs.contains(n), "{job}: `if` names {n}, not a need");
    }
    needs
        .iter()
        .filter(|n| !success.contains(*n))
        .cloned()
        .collect()
}

/// An Argo `depends` expression as (every task named, the order-only ones).
fn argo_depends(task: &str, expr: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut all = Vec::new();
    let mut order = BTreeSet::new();
    for part in expr.split(" && ") {
        if let Some(inner) = part.strip_prefix('(').and_then(|p| p.strip_suffix(')')) {
            let t = inner.split('.').next().expect("a task").to_string();
            assert_eq!(
                inner,
                format!("{t}.Succeeded || {t}.Failed || {t}.Errored || {t}.Omitted"),
                "{task}: depends term"
            );
            order.insert(t.clone());
            all.push(t);
        } else {
            let t = part
                .strip_suffix(".Succeeded")
                .unwrap_or_else(|| panic!("{task}: depends term {part}"));
            all.push(t.to_string());
        }
    }
    (all, order)
}

fn read_back(target: ExportTarget, text: &str) -> Read {
    let doc = yaml::parse(text)
        .expect("generated YAML parses")
        .expect("a document");
    let mut r = Read::default();
    let add = |r: &mut Read,
               job: String,
               script: Option<String>,
               needs: Vec<String>,
               order_only: BTreeSet<String>| {
        let (dir, only) = script
            .as_deref()
            .and_then(deploy_args)
            .map(|(d, o)| (Some(d), o))
            .unwrap_or((None, Vec::new()));
        if let Some(d) = dir {
            r.repo_dir.insert(d);
        }
        assert!(
            r.only.insert(job.clone(), only).is_none(),
            "job {job} twice"
        );
        r.order_only.insert(job.clone(), order_only);
        r.needs.insert(job, needs);
    };
    match target {
        ExportTarget::GithubActions => {
            for (id, job) in entries(get(&doc, "jobs").expect("jobs")) {
                let needs: Vec<String> = get(job, "needs")
                    .map(|n| seq(n).iter().map(str_of).collect())
                    .unwrap_or_default();
                let run = seq(get(job, "steps").expect("steps"))
                    .iter()
                    .filter_map(|s| get(s, "run").map(str_of))
                    .collect::<Vec<_>>();
                assert_eq!(run.len(), 1, "one run step in {id}");
                let order = github_order_only(&id, get(job, "if").map(str_of), &needs);
                add(&mut r, id, Some(run[0].clone()), needs, order);
            }
        }
        ExportTarget::GitlabCi => {
            let through_store = text.contains(" --state ");
            for (name, job) in entries(&doc) {
                if ["stages", "workflow", "default", "variables", "include"]
                    .contains(&name.as_str())
                {
                    continue;
                }
                let needs: Vec<String> = seq(get(job, "needs").expect("needs"))
                    .iter()
                    .map(|n| {
                        // Outputs come with the needs' artifacts, unless a store carries them.
                        assert_eq!(
                            get(n, "artifacts").map(|a| a.value.clone()),
                            Some(Value::Bool(!through_store)),
                            "{name}: needs artifacts"
                        );
                        str_of(get(n, "job").expect("job"))
                    })
                    .collect();
                let script: Vec<String> = seq(get(job, "script").expect("script"))
                    .iter()
                    .map(str_of)
                    .collect();
                // `when: always` waits for every need, whatever its result.
                let order = match get(job, "when").map(str_of).as_deref() {
                    Some("always") => needs.iter().cloned().collect(),
                    None => BTreeSet::new(),
                    Some(w) => panic!("{name}: when {w}"),
                };
                add(&mut r, name, Some(script.join("\n")), needs, order);
            }
        }
        ExportTarget::Argo => {
            let through_store = text.contains(" --state ");
            let spec = get(&doc, "spec").expect("spec");
            let entry = str_of(get(spec, "entrypoint").expect("entrypoint"));
            let templates: HashMap<String, &Node> = seq(get(spec, "templates").expect("templates"))
                .iter()
                .map(|t| (str_of(get(t, "name").expect("name")), t))
                .collect();
            let dag = get(templates[&entry], "dag").expect("entry is a DAG");
            for task in seq(get(dag, "tasks").expect("tasks")) {
                let name = str_of(get(task, "name").expect("task name"));
                let (deps, order) = match get(task, "depends") {
                    Some(d) => {
                        assert!(
                            get(task, "dependencies").is_none(),
                            "{name}: Argo allows `depends` or `dependencies`"
                        );
                        argo_depends(&name, &str_of(d))
                    }
                    None => (
                        get(task, "dependencies")
                            .map(|d| seq(d).iter().map(str_of).collect())
                            .unwrap_or_default(),
                        BTreeSet::new(),
                    ),
                };
                let t = templates[&str_of(get(task, "template").expect("template"))];
                // Argo's own rules: the artifacts passed are exactly the dependencies' outputs,
                // each declared by the template.
                let passed: BTreeSet<String> = get(task, "arguments")
                    .and_then(|a| get(a, "artifacts"))
                    .map(|a| {
                        seq(a)
                            .iter()
                            .map(|x| str_of(get(x, "from").expect("from")))
                            .collect()
                    })
                    .unwrap_or_default();
                // A store carries the outputs instead: then nothing is passed.
                let want: BTreeSet<String> = deps
                    .iter()
                    .filter(|_| !through_store)
                    .map(|d| format!("{{{{tasks.{d}.outputs.artifacts.outputs}}}}"))
                    .collect();
                assert_eq!(passed, want, "{name}: artifacts from its dependencies");
                let declared: BTreeSet<String> =
                    seq(get(get(t, "inputs").expect("inputs"), "artifacts").expect("artifacts"))
                        .iter()
                        .map(|a| str_of(get(a, "name").expect("name")))
                        .collect();
                for a in get(task, "arguments")
                    .and_then(|a| get(a, "artifacts"))
                    .map(seq)
                    .unwrap_or_default()
                {
                    assert!(
                        declared.contains(&str_of(get(a, "name").expect("name"))),
                        "{name}: argument artifact declared by the template"
                    );
                }
                let args = seq(get(get(t, "container").expect("container"), "args").expect("args"))
                    .iter()
                    .map(str_of)
                    .collect::<Vec<_>>()
                    .join("\n");
                add(&mut r, name, Some(args), deps, order);
            }
        }
    }
    r
}

// ---------------------------------------------------------------------------------------------
// The plan's graph

/// Per selected deployment, the deployments it waits for: the plan's JSON with environment
/// nodes contracted (written independently of the export's own walk); the order-only ones
/// among them (a direct `"kind": "order"` edge, in an environment with `fail_fast: false`);
/// the deployments of each environment.
type PlanEdges = (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
);

fn plan_edges(l: &Loaded) -> PlanEdges {
    let plan = Plan::new(&l.repo, &l.graph, &l.selection, &HashMap::new());
    let doc: serde_json::Value =
        serde_json::from_str(&crate::plan::json::render(&plan)).expect("plan JSON");
    let mut kind = HashMap::new();
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    let mut order_edges: HashMap<String, BTreeSet<String>> = HashMap::new();
    let keep_going: BTreeSet<&str> = l
        .repo
        .environments
        .iter()
        .filter(|e| {
            let own = e.config.fail_fast.as_ref();
            own.or(l.repo.config.fail_fast.as_ref())
                .is_some_and(|v| !v.value)
        })
        .map(|e| e.name.as_str())
        .collect();
    let mut by_env: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in doc["nodes"].as_array().expect("nodes") {
        let id = n["id"].as_str().expect("id").to_string();
        let k = n["kind"].as_str().expect("kind").to_string();
        if k == "deployment" {
            by_env
                .entry(n["environment"].as_str().expect("environment").to_string())
                .or_default()
                .insert(id.clone());
        }
        if keep_going.contains(n["environment"].as_str().unwrap_or_default()) {
            order_edges.insert(
                id.clone(),
                n["dependencies"]
                    .as_array()
                    .expect("dependencies")
                    .iter()
                    .filter(|d| d["kind"] == "order")
                    .map(|d| d["id"].as_str().expect("id").to_string())
                    .collect(),
            );
        }
        kind.insert(id.clone(), k);
        deps.insert(
            id,
            n["depends_on"]
                .as_array()
                .expect("depends_on")
                .iter()
                .map(|d| d.as_str().expect("id").to_string())
                .collect(),
        );
    }
    let mut out = BTreeMap::new();
    let mut order_only = BTreeMap::new();
    for (id, k) in &kind {
        if k != "deployment" {
            continue;
        }
        let mut found = BTreeSet::new();
        // Reached through an environment node too: then it must succeed.
        let mut through_env = BTreeSet::new();
        let mut stack = deps[id].clone();
        let mut seen = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            if kind[&d] == "deployment" {
                found.insert(d);
            } else {
                stack.extend(deps[&d].iter().cloned());
                through_env.extend(deps[&d].iter().cloned());
            }
        }
        let order: BTreeSet<String> = order_edges
            .get(id)
            .map(|o| o.difference(&through_env).cloned().collect())
            .unwrap_or_default();
        order_only.insert(id.clone(), order);
        out.insert(id.clone(), found);
    }
    (out, order_only, by_env)
}

/// Asserts the pipeline's job graph is the plan's graph (grouped jobs and gates accounted for).
fn assert_same_graph(target: ExportTarget, l: &Loaded, text: &str) -> Read {
    let (expected, expected_order, by_env) = plan_edges(l);
    let r = read_back(target, text);
    // Which job runs each deployment.
    let mut job_of: BTreeMap<String, String> = BTreeMap::new();
    for (job, only) in &r.only {
        for o in only {
            let members: Vec<String> = if o.contains('/') {
                vec![o.clone()]
            } else {
                by_env
                    .get(o)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            };
            assert!(!members.is_empty(), "{job}: --only {o} runs nothing");
            for m in members {
                assert!(
                    job_of.insert(m.clone(), job.clone()).is_none(),
                    "{m} runs in two jobs"
                );
            }
        }
    }
    let selected: BTreeSet<&String> = expected.keys().collect();
    let run: BTreeSet<&String> = job_of.keys().collect();
    assert_eq!(
        run, selected,
        "the jobs run exactly the selected deployments"
    );
    // Needs through gates, contracted to jobs that deploy.
    fn real_needs(r: &Read, job: &str, out: &mut BTreeSet<String>) {
        for n in &r.needs[job] {
            assert!(r.needs.contains_key(n), "{job} needs unknown job {n}");
            if r.only[n].is_empty() {
                real_needs(r, n, out);
            } else {
                out.insert(n.clone());
            }
        }
    }
    for (job, only) in &r.only {
        if only.is_empty() {
            continue;
        }
        let mut actual = BTreeSet::new();
        real_needs(&r, job, &mut actual);
        let want: BTreeSet<String> = job_of
            .iter()
            .filter(|(_, j)| *j == job)
            .flat_map(|(d, _)| expected[d].iter().map(|p| job_of[p].clone()))
            .filter(|j| j != job)
            .collect();
        assert_eq!(
            actual,
            want,
            "{target:?}: needs of {job}\n{text}\n{}",
            crate::plan::json::render(&Plan::new(&l.repo, &l.graph, &l.selection, &HashMap::new()))
        );
        // A need is order-only when every plan edge behind it is; GitLab can only say it for
        // the whole job, so there it is all needs or none.
        let mut want_order: BTreeSet<String> = want
            .iter()
            .filter(|p| {
                job_of.iter().filter(|(_, j)| *j == job).all(|(d, _)| {
                    expected[d]
                        .iter()
                        .filter(|q| job_of[*q] == **p)
                        .all(|q| expected_order[d].contains(q))
                })
            })
            .cloned()
            .collect();
        if target == ExportTarget::GitlabCi
            && (want_order != want || r.needs[job].len() != want.len())
        {
            want_order.clear();
        }
        assert_eq!(
            r.order_only[job], want_order,
            "{target:?}: order-only needs of {job}\n{text}"
        );
    }
    r
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Environment-level and cross-environment `depends_on`, a bare name meaning an environment,
/// `depends_on: []`, an environment without deployments in a chain, and names that are not
/// valid job ids as they are.
fn rich_repo() -> Fixture {
    let f = Fixture::new(&[]);
    f.env(
        "net",
        "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n    helm: {plugin: helm}\n",
        &["terraform", "helm"],
    );
    f.env(
        "db",
        "bitops:\n  depends_on: [net]\n  deployments:\n    terraform: {plugin: terraform}\n    ansible:\n      plugin: ansible\n      depends_on: [terraform, net/helm]\n",
        &["terraform", "ansible"],
    );
    f.env(
        "app",
        "bitops:\n  deployments:\n    terraform:\n      plugin: terraform\n      depends_on: []\n    helm:\n      plugin: helm\n      depends_on: [terraform, db/ansible]\n    kubectl:\n      plugin: kubectl\n      depends_on: [db]\n",
        &["terraform", "helm", "kubectl"],
    );
    f.env("mon", "bitops:\n  depends_on: [app]\n  deployments:\n    cloudformation: {plugin: cloudformation}\n", &["cloudformation"]);
    f.env(
        "solo",
        "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n",
        &["terraform"],
    );
    f.env("empty", "bitops:\n  depends_on: [net]\n", &[]);
    f.env(
        "late",
        "bitops:\n  depends_on: [empty]\n  deployments:\n    terraform: {plugin: terraform}\n",
        &["terraform"],
    );
    f.env(
        "Web.App",
        "bitops:\n  depends_on: [solo]\n  deployments:\n    terraform: {plugin: terraform}\n",
        &["terraform"],
    );
    f
}

fn selections() -> Vec<(&'static str, SelectOptions)> {
    let envs = |v: &[&str]| SelectOptions {
        envs: v.iter().map(|s| s.to_string()).collect(),
        ..SelectOptions::default()
    };
    vec![
        ("all", SelectOptions::default()),
        ("e-app", envs(&["app"])),
        ("e-app-db", envs(&["app,db"])),
        ("e-glob", envs(&["*a*"])),
        ("e-late", envs(&["late", "empty", "net"])),
        (
            "only-with-deps",
            SelectOptions {
                only: vec!["app/helm".into()],
                with_deps: true,
                ..SelectOptions::default()
            },
        ),
        (
            "only-with-dependents",
            SelectOptions {
                only: vec!["db/terraform".into()],
                with_dependents: true,
                ..SelectOptions::default()
            },
        ),
    ]
}

fn target_name(t: ExportTarget) -> &'static str {
    match t {
        ExportTarget::GithubActions => "github",
        ExportTarget::GitlabCi => "gitlab",
        ExportTarget::Argo => "argo",
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_export_matches_the_plan_and_validates() {
    let f = rich_repo();
    let out = tempfile::tempdir().expect("temp dir");
    for target in TARGETS {
        let mut files = Vec::new();
        for (name, opts) in selections() {
            let l = f.load_with(opts);
            let e = export(&l.repo, &l.graph, &l.selection, &options(target, "ops"))
                .unwrap_or_else(|e| panic!("{name}: {:?}", e.problems));
            let r = assert_same_graph(target, &l, &e.text);
            let want_dir = if target == ExportTarget::Argo {
                "/opt/bitops_deployment/ops"
            } else {
                "ops"
            };
            assert_eq!(
                r.repo_dir,
                BTreeSet::from([want_dir.to_string()]),
                "{name}: -C"
            );
            files.extend(write_files(
                out.path(),
                &[(format!("{}-{name}.yml", target_name(target)), &e)],
            ));
        }
        validate(target, &files);
    }
}

/// `--image none`: GitLab jobs without `image`, GitHub jobs without `container` (on
/// self-hosted runners), still the plan's graph and valid; Argo refuses.
#[test]
fn shell_runner_exports_have_no_image_and_validate() {
    let f = rich_repo();
    let out = tempfile::tempdir().expect("temp dir");
    for target in [ExportTarget::GithubActions, ExportTarget::GitlabCi] {
        let mut files = Vec::new();
        for (name, sel) in selections() {
            let l = f.load_with(sel);
            let mut o = options(target, "ops");
            o.image = None;
            let e = export(&l.repo, &l.graph, &l.selection, &o)
                .unwrap_or_else(|e| panic!("{name}: {:?}", e.problems));
            assert_same_graph(target, &l, &e.text);
            let doc = yaml::parse(&e.text).unwrap().unwrap();
            match target {
                ExportTarget::GitlabCi => assert!(get(&doc, "default").is_none(), "{name}"),
                _ => {
                    for (job, j) in entries(get(&doc, "jobs").expect("jobs")) {
                        assert!(get(j, "container").is_none(), "{name}: {job}");
                        assert_eq!(str_of(get(j, "runs-on").expect("runs-on")), "self-hosted");
                    }
                }
            }
            assert!(!e.text.contains("image:"), "{name}:\n{}", e.text);
            assert!(e.text.contains("`bitops` must be on the runner's PATH"));
            files.extend(write_files(
                out.path(),
                &[(format!("{}-none-{name}.yml", target_name(target)), &e)],
            ));
        }
        validate(target, &files);
    }
    let l = f.load(&[]);
    let mut o = options(ExportTarget::Argo, "ops");
    o.image = None;
    let err = export(&l.repo, &l.graph, &l.selection, &o).unwrap_err();
    assert_eq!(err.problems[0].code, "bitops::export::argo_needs_image");
}

/// `--state URL`: every job's `bitops deploy` gets `--state URL`, jobs still wait for each other
/// (the plan's graph), and no outputs artifacts are published or fetched; files stay valid.
/// Only the YAML is checked here: the store itself is `bitops deploy --state`'s.
#[test]
fn store_exports_pass_state_instead_of_outputs_artifacts() {
    const URL: &str = "s3://ops-state/team-a";
    let f = rich_repo();
    let out = tempfile::tempdir().expect("temp dir");
    for target in TARGETS {
        let mut files = Vec::new();
        for (name, sel) in selections() {
            let l = f.load_with(sel);
            let mut o = options(target, "ops");
            o.state = Some(URL.into());
            let e = export(&l.repo, &l.graph, &l.selection, &o)
                .unwrap_or_else(|e| panic!("{name}: {:?}", e.problems));
            assert_same_graph(target, &l, &e.text);
            let deploys: Vec<&str> = e
                .text
                .lines()
                .filter(|l| l.contains("bitops deploy -C"))
                .collect();
            assert!(!deploys.is_empty(), "{name}");
            for line in deploys {
                let words = shell_words(line);
                assert!(
                    words.windows(2).any(|w| w[0] == "--state" && w[1] == URL),
                    "{name}: {line}"
                );
            }
            for artifact_text in [
                "artifacts: true",
                ".bitops/outputs/",
                "outputs-",
                super::github::DOWNLOAD,
                "outputs.artifacts",
                "artifactRepositoryRef",
            ] {
                assert!(
                    !e.text.contains(artifact_text),
                    "{name}: `{artifact_text}` in a store pipeline:\n{}",
                    e.text
                );
            }
            assert!(e
                .text
                .contains(&format!("through the shared state store {URL}")));
            files.extend(write_files(
                out.path(),
                &[(format!("{}-state-{name}.yml", target_name(target)), &e)],
            ));
        }
        validate(target, &files);
    }

    // Gates pass nothing on either: no artifacts of their own.
    let f = Fixture::new(&[]);
    hub_of_spokes(&f, 60);
    let l = f.load(&[]);
    let mut o = options(ExportTarget::GitlabCi, ".");
    o.state = Some(URL.into());
    let e = export(&l.repo, &l.graph, &l.selection, &o).unwrap();
    assert_same_graph(ExportTarget::GitlabCi, &l, &e.text);
    let doc = yaml::parse(&e.text).unwrap().unwrap();
    let gates: Vec<(String, &Node)> = entries(&doc)
        .into_iter()
        .filter(|(k, _)| k.starts_with("gate:"))
        .collect();
    assert!(!gates.is_empty());
    for (k, g) in gates {
        assert!(get(g, "artifacts").is_none(), "{k}");
    }
    let file = write_files(out.path(), &[("gitlab-state-gates.yml".into(), &e)]);
    validate(ExportTarget::GitlabCi, &file);

    for bad in ["ops-state/team-a", "s3://", "://x", "s3://a b"] {
        let mut o = options(ExportTarget::GitlabCi, ".");
        o.state = Some(bad.into());
        let err = export(&l.repo, &l.graph, &l.selection, &o).unwrap_err();
        assert_eq!(err.problems[0].code, "bitops::export::state_url", "{bad}");
    }
}

#[test]
fn selection_drops_edges_to_unselected_nodes() {
    let f = rich_repo();
    let l = f.load(&["app"]);
    let e = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GitlabCi, "."),
    )
    .unwrap();
    let r = read_back(ExportTarget::GitlabCi, &e.text);
    assert_eq!(
        r.only.keys().collect::<Vec<_>>(),
        ["app/helm", "app/kubectl", "app/terraform"]
    );
    assert_eq!(r.needs["app/helm"], ["app/terraform"]);
    assert!(r.needs["app/kubectl"].is_empty());
    assert_eq!(r.repo_dir, BTreeSet::from([".".to_string()]));
}

#[test]
fn job_ids_are_valid_and_keep_the_node_id() {
    let f = rich_repo();
    let l = f.load(&[]);
    let gh = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, "."),
    )
    .unwrap();
    let doc = yaml::parse(&gh.text).unwrap().unwrap();
    let re = regex::Regex::new("^[_a-zA-Z][a-zA-Z0-9_-]*$").unwrap();
    let mut names = BTreeSet::new();
    for (id, job) in entries(get(&doc, "jobs").unwrap()) {
        assert!(re.is_match(&id) && id.len() <= 100, "GitHub job id {id}");
        names.insert(str_of(get(job, "name").unwrap()));
    }
    assert!(
        names.contains("Web.App/terraform") && names.contains("db/ansible"),
        "{names:?}"
    );
    let argo = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::Argo, "."),
    )
    .unwrap();
    let doc = yaml::parse(&argo.text).unwrap().unwrap();
    let re = regex::Regex::new("^[a-z0-9][-a-z0-9]*$").unwrap();
    let mut nodes = BTreeSet::new();
    for t in seq(get(get(&doc, "spec").unwrap(), "templates").unwrap()) {
        let name = str_of(get(t, "name").unwrap());
        assert!(re.is_match(&name) && name.len() <= 63, "Argo name {name}");
        if let Some(m) = get(t, "metadata") {
            nodes.insert(str_of(
                get(get(m, "annotations").unwrap(), super::argo::NODE_ANNOTATION).unwrap(),
            ));
        }
    }
    assert!(nodes.contains("Web.App/terraform"), "{nodes:?}");
    assert!(
        argo.text.contains("artifact repository"),
        "the Argo header says an artifact repository is needed"
    );
}

#[test]
fn outputs_travel_between_jobs() {
    let f = rich_repo();
    let l = f.load(&["net", "db"]);
    let gh = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, "ops"),
    )
    .unwrap();
    let doc = yaml::parse(&gh.text).unwrap().unwrap();
    let job = get(get(&doc, "jobs").unwrap(), "db__ansible").expect("db__ansible");
    let steps = seq(get(job, "steps").unwrap());
    let uses: Vec<String> = steps
        .iter()
        .filter_map(|s| get(s, "uses").map(str_of))
        .collect();
    assert_eq!(uses[0], super::github::CHECKOUT);
    let downloads: BTreeSet<String> = steps
        .iter()
        .filter(|s| get(s, "uses").map(str_of).as_deref() == Some(super::github::DOWNLOAD))
        .map(|s| {
            let w = get(s, "with").unwrap();
            let name = str_of(get(w, "name").unwrap());
            let key = name.strip_prefix("outputs-").unwrap();
            assert_eq!(
                str_of(get(w, "path").unwrap()),
                format!("ops/.bitops/inputs/{key}")
            );
            name
        })
        .collect();
    // db has `depends_on: [net]`: every deployment of db waits for all of net.
    let want = [
        "outputs-db__terraform",
        "outputs-net__helm",
        "outputs-net__terraform",
    ];
    assert_eq!(
        downloads,
        want.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>()
    );
    let run = steps
        .iter()
        .find_map(|s| get(s, "run").map(str_of))
        .unwrap();
    assert!(
        run.contains("for d in ops/.bitops/inputs/*/; do cp -R \"$d\". ops/.bitops/outputs/; done"),
        "{run}"
    );
    let upload = steps
        .iter()
        .find(|s| {
            get(s, "with")
                .and_then(|w| get(w, "name"))
                .map(str_of)
                .as_deref()
                == Some("outputs-db__ansible")
        })
        .expect("upload");
    assert_eq!(
        str_of(get(get(upload, "with").unwrap(), "path").unwrap()),
        "ops/.bitops/outputs/"
    );
    // The folder is where `deploy` keeps and reads saved outputs.
    let saved = crate::exec::outputs::saved_path(Path::new("ops/.bitops"), "db/ansible");
    assert_eq!(saved, Path::new("ops/.bitops/outputs/db__ansible.json"));

    let gl = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GitlabCi, "ops"),
    )
    .unwrap();
    let doc = yaml::parse(&gl.text).unwrap().unwrap();
    let paths: Vec<String> = seq(get(
        get(get(&doc, "db/ansible").unwrap(), "artifacts").unwrap(),
        "paths",
    )
    .unwrap())
    .iter()
    .map(str_of)
    .collect();
    assert_eq!(paths, ["ops/.bitops/outputs/", "ops/.bitops/runs/"]);

    let argo = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::Argo, "ops"),
    )
    .unwrap();
    assert!(
        argo.text
            .contains("path: /opt/bitops_deployment/ops/.bitops/outputs\n"),
        "{}",
        argo.text
    );
}

#[test]
fn github_groups_environments_over_256_jobs() {
    // 100 environments × 3 deployments = 300 jobs; every environment waits for the previous.
    let f = Fixture::new(&[]);
    for i in 0..100 {
        let deps = if i == 0 {
            String::new()
        } else {
            format!("  depends_on: [e{:03}]\n", i - 1)
        };
        f.env(
            &format!("e{i:03}"),
            &format!("bitops:\n{deps}  deployments:\n    terraform: {{plugin: terraform}}\n    helm: {{plugin: helm}}\n    ansible: {{plugin: ansible}}\n"),
            &["terraform", "helm", "ansible"],
        );
    }
    let l = f.load(&[]);
    let e = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, "."),
    )
    .unwrap();
    let r = assert_same_graph(ExportTarget::GithubActions, &l, &e.text);
    assert!(
        r.only.len() <= super::GITHUB_MAX_JOBS,
        "{} jobs",
        r.only.len()
    );
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("256") && n.contains("one job each")),
        "{:?}",
        e.notes
    );
    // Only as many environments as needed are grouped: (300 - 256) / 2 rounded up = 22.
    let grouped = r
        .only
        .values()
        .filter(|o| o.len() == 1 && !o[0].contains('/'))
        .count();
    assert_eq!(grouped, 22);
    assert_eq!(r.only.len(), 300 - 2 * 22);
    let dir = tempfile::tempdir().unwrap();
    validate(
        ExportTarget::GithubActions,
        &write_files(dir.path(), &[("grouped.yml".into(), &e)]),
    );
}

#[test]
fn github_does_not_group_environments_into_a_cycle() {
    // b/d0 waits for a/d0 and a/d1 for b/d0: a's deployments cannot share a job, so a stays
    // ungrouped and b, c, d are grouped instead (largest first, as many as needed).
    let f = Fixture::new(&[]);
    for i in 0..230 {
        f.env(
            &format!("s{i:03}"),
            "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n",
            &["terraform"],
        );
    }
    let tools: Vec<String> = (0..10).map(|k| format!("d{k}")).collect();
    let tool_refs: Vec<&str> = tools.iter().map(String::as_str).collect();
    let list = |deps: &dyn Fn(usize) -> String, n: usize| -> String {
        let mut s = String::from("bitops:\n  deployments:\n");
        for k in 0..n {
            s.push_str(&format!(
                "    d{k}:\n      plugin: terraform\n      depends_on: [{}]\n",
                deps(k)
            ));
        }
        s
    };
    f.env(
        "a",
        &list(
            &|k| {
                if k == 1 {
                    "d0, b/d0".into()
                } else {
                    String::new()
                }
            },
            10,
        ),
        &tool_refs,
    );
    f.env(
        "b",
        &list(&|k| if k == 0 { "a/d0".into() } else { String::new() }, 10),
        &tool_refs,
    );
    for e in ["c", "d", "e", "f"] {
        f.env(e, &list(&|_| String::new(), 6), &tool_refs[..6]);
    }
    let l = f.load(&[]);
    let e = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, "."),
    )
    .unwrap();
    let r = assert_same_graph(ExportTarget::GithubActions, &l, &e.text);
    assert!(r.only.len() <= 256);
    let grouped: BTreeSet<&str> = r
        .only
        .values()
        .filter(|o| o.len() == 1 && !o[0].contains('/'))
        .map(|o| o[0].as_str())
        .collect();
    assert_eq!(grouped, BTreeSet::from(["b", "c", "d"]));
}

#[test]
fn github_refusal_names_environments_that_cannot_be_grouped() {
    let f = Fixture::new(&[]);
    for i in 0..255 {
        f.env(
            &format!("s{i:03}"),
            "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n",
            &["terraform"],
        );
    }
    f.env("a", "bitops:\n  deployments:\n    d0: {plugin: terraform}\n    d1:\n      plugin: terraform\n      depends_on: [d0, b/d0]\n", &["d0", "d1"]);
    f.env("b", "bitops:\n  deployments:\n    d0:\n      plugin: terraform\n      depends_on: [a/d0]\n    d1: {plugin: terraform}\n", &["d0", "d1"]);
    let l = f.load(&[]);
    let err = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, "."),
    )
    .unwrap_err();
    let m = &err.problems[0].message;
    assert!(m.contains("needs 258 (2 over the limit)"), "{m}");
    assert!(
        m.contains("1 environment cannot be grouped because its deployments wait for each other"),
        "{m}"
    );
}

#[test]
fn github_refuses_clearly_when_grouping_is_not_enough() {
    let f = Fixture::new(&[]);
    for i in 0..300 {
        f.env(
            &format!("s{i:03}"),
            "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n",
            &["terraform"],
        );
    }
    let l = f.load(&[]);
    let err = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, "."),
    )
    .unwrap_err();
    let p = &err.problems[0];
    assert_eq!(p.code, "bitops::export::github_job_limit");
    assert!(
        p.message.contains("at most 256 jobs")
            && p.message.contains("needs 300")
            && p.message.contains("44 over"),
        "{}",
        p.message
    );
    let help = p.help.as_deref().unwrap();
    assert!(
        help.contains("-e 'PATTERN'") && help.contains("--to gitlab-ci"),
        "{help}"
    );
    // A narrower selection fits.
    let l = f.load(&["s0*", "s1*"]);
    assert!(export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GithubActions, ".")
    )
    .is_ok());
    // GitLab and Argo take the whole repo.
    let l = f.load(&[]);
    for t in [ExportTarget::GitlabCi, ExportTarget::Argo] {
        assert!(export(&l.repo, &l.graph, &l.selection, &options(t, ".")).is_ok());
    }
}

/// `hub` depends on `n` environments `s00`, `s01`, … of one terraform deployment each.
fn hub_of_spokes(f: &Fixture, n: usize) {
    let spokes: Vec<String> = (0..n).map(|i| format!("s{i:02}")).collect();
    for s in &spokes {
        f.env(
            s,
            "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n",
            &["terraform"],
        );
    }
    f.env(
        "hub",
        &format!(
            "bitops:\n  depends_on: [{}]\n  deployments:\n    terraform: {{plugin: terraform}}\n",
            spokes.join(", ")
        ),
        &["terraform"],
    );
}

#[test]
fn gitlab_fans_in_over_50_needs() {
    let f = Fixture::new(&[]);
    // hub waits for 60 environments of one deployment each.
    hub_of_spokes(&f, 60);
    // after waits for an environment of 60 parallel deployments.
    let tools: Vec<String> = (0..60).map(|k| format!("d{k:02}")).collect();
    let mut big = String::from("bitops:\n  deployments:\n");
    for t in &tools {
        big.push_str(&format!(
            "    {t}:\n      plugin: terraform\n      depends_on: []\n"
        ));
    }
    f.env(
        "big",
        &big,
        &tools.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    f.env("after", "bitops:\n  depends_on: [big]\n  deployments:\n    terraform: {plugin: terraform}\n    helm: {plugin: helm}\n", &["terraform", "helm"]);
    // mixed waits for big and a few spokes: the big environment's gate is shared.
    f.env("mixed", "bitops:\n  depends_on: [big, s00, s01]\n  deployments:\n    terraform: {plugin: terraform}\n", &["terraform"]);

    let l = f.load(&[]);
    let e = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GitlabCi, "."),
    )
    .unwrap();
    let r = assert_same_graph(ExportTarget::GitlabCi, &l, &e.text);
    for (job, needs) in &r.needs {
        assert!(
            needs.len() <= super::GITLAB_MAX_NEEDS,
            "{job} needs {}",
            needs.len()
        );
    }
    let gates: Vec<&String> = r
        .only
        .iter()
        .filter(|(_, o)| o.is_empty())
        .map(|(j, _)| j)
        .collect();
    assert!(gates.iter().all(|g| g.starts_with("gate:")), "{gates:?}");
    assert!(
        r.needs["after/terraform"] == ["gate:big"],
        "{:?}",
        r.needs["after/terraform"]
    );
    assert!(r.needs["mixed/terraform"].contains(&"gate:big".to_string()));
    assert!(e.notes.iter().any(|n| n.contains("gate")), "{:?}", e.notes);
    let dir = tempfile::tempdir().unwrap();
    validate(
        ExportTarget::GitlabCi,
        &write_files(dir.path(), &[("gates.yml".into(), &e)]),
    );
    // The same repo is fine as is on Argo.
    let a = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::Argo, "."),
    )
    .unwrap();
    assert_same_graph(ExportTarget::Argo, &l, &a.text);
    validate(
        ExportTarget::Argo,
        &write_files(dir.path(), &[("argo.yaml".into(), &a)]),
    );
}

#[test]
fn argo_refuses_a_workflow_too_large_for_etcd() {
    assert!(super::limits::argo_size(10_000, 4).is_ok());
    let err = super::limits::argo_size(1_500_000, 3000).unwrap_err();
    let p = &err.problems[0];
    assert!(
        p.message.contains("1500000 bytes")
            && p.message.contains("500000 over")
            && p.message.contains("etcd"),
        "{}",
        p.message
    );
    assert!(p.help.as_deref().unwrap().contains("-e PATTERN"));
}

#[test]
fn names_a_ci_system_would_evaluate_are_refused() {
    // Refused when the repo is read (crate::names), so no export ever sees one; the export's
    // own `unsafe_name` check stays as a second line of defence.
    let f = Fixture::new(&[]);
    f.env(
        "x{{y",
        "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n",
        &["terraform"],
    );
    let env = crate::config::settings::EnvVars(Default::default());
    let (_, diags) = crate::discover::scan(&crate::discover::Input {
        root: f.dir.path().to_path_buf(),
        flags: &crate::config::settings::Flags::default(),
        env: &env,
    });
    assert_eq!(diags.problems()[0].code, "bitops::config::name");
}

#[test]
fn an_empty_selection_is_refused() {
    let f = rich_repo();
    let l = f.load(&["empty"]);
    let err = export(
        &l.repo,
        &l.graph,
        &l.selection,
        &options(ExportTarget::GitlabCi, "."),
    )
    .unwrap_err();
    assert_eq!(err.problems[0].code, "bitops::export::empty");
}

/// `examples/ci/*.generated.*` are what `bitops export` writes for `examples/ops-repo` today,
/// and they validate.
#[test]
fn generated_examples_are_current_and_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let l = load_dir(&root.join("examples/ops-repo"), SelectOptions::default());
    for (target, file, flag) in [
        (
            ExportTarget::GithubActions,
            "github-actions.generated.yml",
            "github-actions",
        ),
        (
            ExportTarget::GitlabCi,
            "gitlab-ci.generated.yml",
            "gitlab-ci",
        ),
        (
            ExportTarget::GitlabCi,
            "gitlab-ci.shell-runner.generated.yml",
            "gitlab-ci --image none",
        ),
        (ExportTarget::Argo, "argo.generated.yaml", "argo"),
    ] {
        let mut o = options(target, "examples/ops-repo");
        // The command line as `bitops export` writes it: its own options after `-C`.
        let (flag, extra) = match flag.split_once(' ') {
            Some((to, rest)) => (to, format!(" {rest}")),
            None => (flag, String::new()),
        };
        if extra == " --image none" {
            o.image = None;
        }
        o.regenerate =
            format!("bitops export --to {flag} -C examples/ops-repo{extra} -o examples/ci/{file}");
        let e = export(&l.repo, &l.graph, &l.selection, &o).unwrap();
        let path = root.join("examples/ci").join(file);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == e.text,
            "{} is not what `{}` writes now: regenerate it",
            path.display(),
            o.regenerate
        );
        assert_same_graph(target, &l, &e.text);
        validate(target, &[path]);
    }
}

/// `fail_fast: false`: a deployment after another in list order only waits for it to finish.
/// `keep/helm` also needs `net` (success), `solo/helm` only its predecessor; `net` keeps
/// fail-fast, so its order edge stays a success edge.
fn keep_going_repo() -> Fixture {
    let f = Fixture::new(&[]);
    f.env(
        "net",
        "bitops:\n  deployments:\n    terraform: {plugin: terraform}\n    helm: {plugin: helm}\n",
        &["terraform", "helm"],
    );
    f.env(
        "keep",
        "bitops:\n  fail_fast: false\n  depends_on: [net]\n  deployments:\n    terraform: {plugin: terraform}\n    helm: {plugin: helm}\n",
        &["terraform", "helm"],
    );
    f.env(
        "solo",
        "bitops:\n  fail_fast: false\n  deployments:\n    terraform: {plugin: terraform}\n    helm: {plugin: helm}\n",
        &["terraform", "helm"],
    );
    f
}

#[test]
fn order_only_edges_are_honoured_with_fail_fast_false() {
    let f = keep_going_repo();
    let out = tempfile::tempdir().expect("temp dir");
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>()
    };
    for target in TARGETS {
        let l = f.load(&[]);
        let e = export(&l.repo, &l.graph, &l.selection, &options(target, "."))
            .unwrap_or_else(|e| panic!("{:?}", e.problems));
        let r = assert_same_graph(target, &l, &e.text);
        let key = |id: &str| match target {
            ExportTarget::GithubActions => super::ids::GITHUB.id(id),
            ExportTarget::GitlabCi => super::limits::gitlab_name(id),
            ExportTarget::Argo => super::ids::ARGO.id(id),
        };
        let order = |id: &str| r.order_only[&key(id)].clone();
        assert_eq!(
            order("net/helm"),
            set(&[]),
            "{target:?}: fail-fast keeps success"
        );
        assert_eq!(
            order("solo/helm"),
            set(&[&key("solo/terraform")]),
            "{target:?}"
        );
        // GitLab cannot mix kinds in one job: keep/helm keeps success semantics there.
        let mixed = if target == ExportTarget::GitlabCi {
            set(&[])
        } else {
            set(&[&key("keep/terraform")])
        };
        assert_eq!(order("keep/helm"), mixed, "{target:?}");
        assert_eq!(r.needs[&key("keep/helm")].len(), 3, "{target:?}");
        match target {
            ExportTarget::GithubActions => assert!(
                e.text.contains("if: ${{ !cancelled() && needs.net__terraform.result == 'success' && needs.net__helm.result == 'success' }}"),
                "{}",
                e.text
            ),
            ExportTarget::GitlabCi => assert_eq!(e.text.matches("when: always").count(), 1 + 6),
            ExportTarget::Argo => assert!(e.text.contains(
                "depends: (solo--terraform.Succeeded || solo--terraform.Failed || solo--terraform.Errored || solo--terraform.Omitted)"
            ), "{}", e.text),
        }
        validate(
            target,
            &write_files(
                out.path(),
                &[(format!("{}-keep-going.yml", target_name(target)), &e)],
            ),
        );
    }
}
