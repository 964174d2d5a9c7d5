//! Property tests: plans of generated acyclic repos respect every dependency, generated cycles
//! are reported, and the config loader never panics on arbitrary input.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::harness::TestRepo;

/// A generated repo: environments `e0..`, each with deployments `d0..`.
#[derive(Clone, Debug)]
struct GenRepo {
    envs: Vec<GenEnv>,
}

#[derive(Clone, Debug)]
struct GenEnv {
    /// Environment-level `depends_on` (indices of environments).
    depends_on: Vec<usize>,
    deployments: Vec<GenDep>,
}

#[derive(Clone, Debug)]
struct GenDep {
    /// `None`: no `depends_on` (implicit order); `Some`: exactly these targets.
    depends_on: Option<Vec<Target>>,
}

#[derive(Clone, Debug)]
enum Target {
    /// A deployment of the same environment, by bare name.
    Sibling(usize),
    /// A whole environment, by bare name.
    Env(usize),
    /// Another environment's deployment, as `env/dep`.
    Other(usize, usize),
}

impl GenRepo {
    fn write(&self, repo: &TestRepo) {
        for (ei, e) in self.envs.iter().enumerate() {
            let mut body = String::new();
            if !e.depends_on.is_empty() {
                let list: Vec<String> = e.depends_on.iter().map(|t| format!("e{t}")).collect();
                body.push_str(&format!("depends_on: [{}]\n", list.join(", ")));
            }
            body.push_str("deployments:\n");
            for (di, d) in e.deployments.iter().enumerate() {
                body.push_str(&format!("  d{di}:\n    plugin: sh\n"));
                if let Some(list) = &d.depends_on {
                    let names: Vec<String> = list
                        .iter()
                        .map(|t| match t {
                            Target::Sibling(s) => format!("d{s}"),
                            Target::Env(x) => format!("e{x}"),
                            Target::Other(x, y) => format!("e{x}/d{y}"),
                        })
                        .collect();
                    body.push_str(&format!("    depends_on: [{}]\n", names.join(", ")));
                }
                repo.dep(&format!("e{ei}"), &format!("d{di}"), "true");
            }
            repo.env(&format!("e{ei}"), &body);
        }
    }

    /// Pairs (dependency, dependent) of deployment ids the plan must honour, from the rules of
    /// DESIGN §2.2 (an environment means all of its deployments).
    fn required(&self) -> Vec<(String, String)> {
        let id = |e: usize, d: usize| format!("e{e}/d{d}");
        let all_of = |e: usize| (0..self.envs[e].deployments.len()).map(move |d| id(e, d));
        let mut out = Vec::new();
        for (ei, e) in self.envs.iter().enumerate() {
            for (di, d) in e.deployments.iter().enumerate() {
                let me = id(ei, di);
                for &t in &e.depends_on {
                    out.extend(all_of(t).map(|x| (x, me.clone())));
                }
                match &d.depends_on {
                    None if di > 0 => out.push((id(ei, di - 1), me.clone())),
                    None => {}
                    Some(list) => {
                        for t in list {
                            match *t {
                                Target::Sibling(s) => out.push((id(ei, s), me.clone())),
                                Target::Env(x) => out.extend(all_of(x).map(|x| (x, me.clone()))),
                                Target::Other(x, y) => out.push((id(x, y), me.clone())),
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// Acyclic by construction: environment `i` only depends on environments `< i`, deployment
/// `j` only on siblings `< j`.
fn acyclic_repo() -> impl Strategy<Value = GenRepo> {
    (1usize..=6, proptest::collection::vec(1usize..=3, 6)).prop_flat_map(|(n, sizes)| {
        let sizes: Vec<usize> = sizes[..n].to_vec();
        let envs: Vec<_> = (0..n)
            .map(|ei| {
                let sizes = sizes.clone();
                let env_deps = proptest::collection::btree_set(0..ei.max(1), 0..=ei.min(2))
                    .prop_map(move |s| s.into_iter().filter(|&t| t < ei).collect::<Vec<_>>());
                let deps: Vec<_> = (0..sizes[ei])
                    .map(|di| {
                        let mut targets: Vec<BoxedStrategy<Target>> = Vec::new();
                        if di > 0 {
                            targets.push((0..di).prop_map(Target::Sibling).boxed());
                        }
                        if ei > 0 {
                            targets.push((0..ei).prop_map(Target::Env).boxed());
                            let sizes = sizes.clone();
                            targets.push(
                                (0..ei, 0usize..3)
                                    .prop_map(move |(x, y)| Target::Other(x, y % sizes[x]))
                                    .boxed(),
                            );
                        }
                        let dep = if targets.is_empty() {
                            prop_oneof![Just(None), Just(Some(Vec::new()))].boxed()
                        } else {
                            prop_oneof![
                                Just(None),
                                Just(Some(Vec::new())),
                                proptest::collection::vec(
                                    proptest::strategy::Union::new(targets),
                                    1..=2
                                )
                                .prop_map(Some),
                            ]
                            .boxed()
                        };
                        dep.prop_map(|d| GenDep { depends_on: d })
                    })
                    .collect();
                (env_deps, deps).prop_map(|(depends_on, deployments)| GenEnv {
                    depends_on,
                    deployments,
                })
            })
            .collect();
        envs.prop_map(|envs| GenRepo { envs })
    })
}

/// A JSON plan's node order, waves and direct dependencies, by id.
struct PlanView {
    node_pos: BTreeMap<String, usize>,
    wave_of: BTreeMap<String, usize>,
    direct: BTreeMap<String, Vec<String>>,
}

fn plan_positions(plan: &serde_json::Value) -> PlanView {
    let mut node_pos = BTreeMap::new();
    let mut direct = BTreeMap::new();
    for (k, n) in plan["nodes"].as_array().unwrap().iter().enumerate() {
        let id = n["id"].as_str().unwrap().to_string();
        node_pos.insert(id.clone(), k);
        direct.insert(
            id,
            n["depends_on"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect(),
        );
    }
    let mut wave_of = BTreeMap::new();
    for (w, wave) in plan["waves"].as_array().unwrap().iter().enumerate() {
        for id in wave.as_array().unwrap() {
            wave_of.insert(id.as_str().unwrap().to_string(), w);
        }
    }
    PlanView {
        node_pos,
        wave_of,
        direct,
    }
}

/// Whether `to` reaches `from` through `depends_on` links.
fn reaches(direct: &BTreeMap<String, Vec<String>>, to: &str, from: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![to.to_string()];
    while let Some(n) = stack.pop() {
        if n == from {
            return true;
        }
        if seen.insert(n.clone()) {
            stack.extend(direct.get(&n).into_iter().flatten().cloned());
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_node_comes_after_its_dependencies(gen in acyclic_repo()) {
        let repo = TestRepo::new();
        gen.write(&repo);
        let out = repo.run(&["plan", "--format", "json"]);
        prop_assert_eq!(out.code, 0, "{}", out);
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let PlanView { node_pos, wave_of, direct } = plan_positions(&plan);
        let total: usize = gen.envs.iter().map(|e| e.deployments.len()).sum();
        prop_assert_eq!(wave_of.len(), total);
        // Node order is topological.
        for (id, deps) in &direct {
            for d in deps {
                prop_assert!(node_pos[d] < node_pos[id], "{} listed before its dependency {}", id, d);
            }
        }
        // Every rule-given dependency is in the graph and in an earlier wave.
        for (from, to) in gen.required() {
            prop_assert!(reaches(&direct, &to, &from), "{} does not depend on {}", to, from);
            prop_assert!(wave_of[&from] < wave_of[&to], "{} (wave {}) not before {} (wave {})", from, wave_of[&from], to, wave_of[&to]);
        }
    }

    #[test]
    fn every_generated_cycle_is_reported(
        len in 1usize..=4,
        deps_per_env in 1usize..=2,
        mode in 0usize..3,
        extra_envs in 0usize..=2,
    ) {
        // mode 0: e0 → e1 → … → e(len-1) → e0 as environment-level depends_on;
        // mode 1: the same as deployment-level `eX/d0` entries;
        // mode 2: inside e0, d0 → d1 → … → d(len-1) → d0 by bare names.
        // Extra environments hang off the cycle and must not be named in it.
        let repo = TestRepo::new();
        let (env_count, on_cycle): (usize, Vec<String>) = match mode {
            0 | 1 => (len, (0..len).map(|i| format!("e{i}")).collect()),
            _ => (1, (0..len).map(|d| format!("e0/d{d}")).collect()),
        };
        for i in 0..env_count + extra_envs {
            let mut body = String::new();
            let cyclic = i < env_count;
            if mode == 0 || !cyclic {
                let target = if cyclic { (i + 1) % len } else { 0 };
                body.push_str(&format!("depends_on: [e{target}]\n"));
            }
            body.push_str("deployments:\n");
            let count = if mode == 2 && cyclic { len.max(deps_per_env) } else { deps_per_env };
            for d in 0..count {
                body.push_str(&format!("  d{d}:\n    plugin: sh\n"));
                if mode == 1 && cyclic && d == 0 {
                    body.push_str(&format!("    depends_on: [e{}/d0]\n", (i + 1) % len));
                }
                if mode == 2 && cyclic && d < len {
                    body.push_str(&format!("    depends_on: [d{}]\n", (d + 1) % len));
                }
                repo.dep(&format!("e{i}"), &format!("d{d}"), "true");
            }
            repo.env(&format!("e{i}"), &body);
        }
        let out = repo.run(&["plan", "--color", "never"]);
        prop_assert_eq!(out.code, 2, "{}", out);
        prop_assert!(out.stdout.is_empty());
        // The message, however the renderer wraps it: up to the source snippet.
        let text = out.stderr.split("dependency cycle: ").nth(1).map(|t| t.split('╭').next().unwrap_or(t).to_string());
        prop_assert!(text.is_some(), "no cycle reported: {}", out);
        let text = text.unwrap();
        let steps: Vec<&str> = text.split('→').map(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '│')).collect();
        prop_assert!(steps.len() >= 2 && steps.first() == steps.last(), "not a closed path: {}", text);
        for node in &on_cycle {
            prop_assert!(
                steps.iter().any(|s| s == node || s.starts_with(&format!("{node}/"))),
                "{} missing from the cycle {:?}", node, steps
            );
        }
        for i in env_count..env_count + extra_envs {
            prop_assert!(!steps.iter().any(|s| s.split('/').next() == Some(&format!("e{i}"))), "e{} is not on the cycle: {:?}", i, steps);
        }
    }
}

const KEYS: &[&str] = &[
    "bitops",
    "fail_fast",
    "jobs",
    "pools",
    "timeout",
    "retries",
    "default_folder",
    "logging",
    "masks",
    "search",
    "replace",
    "plugins",
    "source",
    "deployments",
    "depends_on",
    "protected",
    "plugin",
    "pool",
    "terraform",
    "on",
    "yes",
];

/// Arbitrary YAML documents built from bitops' own keys, so the checks go deep.
fn yaml_value() -> impl Strategy<Value = serde_yaml::Value> {
    use serde_yaml::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Number(i.into())),
        any::<f64>().prop_map(|f| Value::Number(f.into())),
        "[a-z0-9 _./:-]{0,12}".prop_map(Value::String),
        proptest::sample::select(KEYS).prop_map(|k| Value::String(k.to_string())),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Sequence),
            proptest::collection::vec((proptest::sample::select(KEYS), inner.clone()), 0..6)
                .prop_map(|kv| {
                    Value::Mapping(
                        kv.into_iter()
                            .map(|(k, v)| (Value::String(k.to_string()), v))
                            .collect(),
                    )
                }),
            proptest::collection::vec((inner.clone(), inner), 0..3)
                .prop_map(|kv| Value::Mapping(kv.into_iter().collect())),
        ]
    })
}

/// YAML text of a value; the emitter refuses a few shapes (a mapping as a key), whose debug
/// text is then used as arbitrary input instead.
fn emit(v: &serde_yaml::Value) -> String {
    serde_yaml::to_string(v).unwrap_or_else(|_| format!("{v:?}"))
}

fn load_text(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bitops.config.yaml");
    std::fs::write(&path, bytes).unwrap();
    let mut diags = bitops::diagnostic::Diagnostics::default();
    if let Some(loaded) = bitops::config::load_file(&path, "bitops.config.yaml".into(), &mut diags)
    {
        let _ = bitops::config::section::read_file_section(
            &loaded.file,
            loaded.root.as_ref(),
            &mut diags,
        );
    }
    // Rendering every problem (with its snippet) must not panic either.
    if let Err(e) = diags.into_result() {
        let _ = bitops::report::diagnostics::render(&e, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        load_text(&bytes);
    }

    #[test]
    fn config_loader_never_panics_on_arbitrary_yaml(doc in yaml_value(), wrap in any::<bool>()) {
        let doc = if wrap {
            serde_yaml::Value::Mapping([(serde_yaml::Value::String("bitops".into()), doc)].into_iter().collect())
        } else {
            doc
        };
        load_text(emit(&doc).as_bytes());
    }

    #[test]
    fn config_loader_never_panics_on_yaml_like_text(text in "([a-z_ :\\[\\]{},&*!|>'\"#%@`-]|\n|  ){0,120}") {
        load_text(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    /// Discovery of a whole repo whose configs are arbitrary YAML.
    #[test]
    fn scan_never_panics(repo_doc in yaml_value(), env_doc in yaml_value()) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let wrap = |d: serde_yaml::Value| emit(
            &serde_yaml::Value::Mapping([(serde_yaml::Value::String("bitops".into()), d)].into_iter().collect())
        );
        std::fs::write(root.join("bitops.config.yaml"), wrap(repo_doc)).unwrap();
        std::fs::create_dir_all(root.join("env/terraform")).unwrap();
        std::fs::write(root.join("env/bitops.config.yaml"), wrap(env_doc)).unwrap();
        let flags = bitops::config::settings::Flags::default();
        let env = bitops::config::settings::EnvVars::default();
        let (repo, mut diags) = bitops::discover::scan(&bitops::discover::Input { root: root.to_path_buf(), flags: &flags, env: &env });
        let _ = bitops::graph::build(&repo, &mut diags);
    }
}
