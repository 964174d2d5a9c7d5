//! `bitops plan` on generated repos of 1,000 and 10,000 environments × 4 deployments with
//! cross-environment edges (each environment depends on up to three earlier ones).
//!
//! Two measurements per size: `full` is what `bitops plan --format json` does (read every
//! config, build, select, prepare every deployment's plugin, render), `graph` is the in-memory
//! part alone (graph + selection + plan + render from an already-read repo), which shows the
//! cost that grows with the graph rather than with the filesystem.
//!
//! Run: `cargo bench --bench plan` (figures in docs/PERFORMANCE.md).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use bitops::config::settings::{EnvVars, Flags};
use bitops::diagnostic::Diagnostics;
use bitops::discover::{scan, Input};
use bitops::graph::{self, SelectOptions};
use bitops::plan::{self, Plan};
use bitops::plugins::step::Action;
use bitops::plugins::Registry;
use criterion::{criterion_group, criterion_main, Criterion};

const DEPLOYMENTS: usize = 4;

/// A deterministic repo: environment i depends on i-1, i/7 and i/3 (when distinct).
fn generate(root: &Path, envs: usize) {
    let w = |p: &Path, s: &str| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w(
        &root.join("bitops.config.yaml"),
        "bitops:\n  plugins:\n    noop:\n      source: ./_plugins/noop\n",
    );
    w(
        &root.join("_plugins/noop/plugin.config.yaml"),
        "plugin:\n  deployment:\n    core_schema_parsing: true\n",
    );
    w(
        &root.join("_plugins/noop/bitops.schema.yaml"),
        "noop:\n  type: object\n  properties:\n    options:\n      type: object\n      properties:\n        cmd: {type: string, export_env: NOOP_CMD}\n",
    );
    w(
        &root.join("_plugins/noop/deploy.sh"),
        "#!/usr/bin/env bash\nexec sh -c \"$NOOP_CMD\"\n",
    );
    for i in 0..envs {
        let mut deps: Vec<usize> = [i.wrapping_sub(1), i / 7, i / 3]
            .into_iter()
            .filter(|d| *d < i)
            .collect();
        deps.sort_unstable();
        deps.dedup();
        let mut cfg = String::from("bitops:\n");
        if !deps.is_empty() {
            let names: Vec<String> = deps.iter().map(|d| format!("e{d:05}")).collect();
            cfg.push_str(&format!("  depends_on: [{}]\n", names.join(", ")));
        }
        cfg.push_str("  deployments:\n");
        for k in 0..DEPLOYMENTS {
            cfg.push_str(&format!("    d{k}:\n      plugin: noop\n"));
            w(
                &root.join(format!("e{i:05}/d{k}/bitops.config.yaml")),
                "noop:\n  options:\n    cmd: \"true\"\n",
            );
        }
        w(&root.join(format!("e{i:05}/bitops.config.yaml")), &cfg);
    }
}

fn full_plan(root: &Path) -> usize {
    let env = EnvVars::default();
    let flags = Flags::default();
    let (repo, mut diags) = scan(&Input {
        root: root.to_path_buf(),
        flags: &flags,
        env: &env,
    });
    let g = graph::build(&repo, &mut diags).expect("generated repos are valid");
    let sel = graph::select(&repo, &g, &SelectOptions::default(), &env, &mut diags);
    let used: Vec<(&str, &str)> = sel
        .deployments(&g)
        .map(|i| {
            let n = g.node(i);
            (
                repo.environments[n.env].deployments[n.dep.unwrap()]
                    .plugin
                    .as_str(),
                n.id.as_str(),
            )
        })
        .collect();
    let reg = Registry::load(&repo, &root.join(".bitops"), used, &mut diags);
    let mut p = Plan::new(&repo, &g, &sel, &HashMap::new());
    for (i, r) in plan::preview::prepare_all(
        &repo,
        &g,
        &sel,
        &reg,
        Action::Deploy,
        &env.0,
        &mut Vec::new(),
    ) {
        p.invocations.insert(
            i,
            r.map(|x| plan::preview::invocation(&x, &[]))
                .map_err(|_| String::new()),
        );
    }
    assert!(diags.is_empty());
    plan::json::render(&p).len()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for envs in [1_000usize, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), envs);
        group.bench_function(format!("full/{envs}x{DEPLOYMENTS}"), |b| {
            b.iter(|| black_box(full_plan(dir.path())))
        });

        let env = EnvVars::default();
        let flags = Flags::default();
        let (repo, _) = scan(&Input {
            root: dir.path().to_path_buf(),
            flags: &flags,
            env: &env,
        });
        group.bench_function(format!("graph/{envs}x{DEPLOYMENTS}"), |b| {
            b.iter(|| {
                let mut d = Diagnostics::default();
                let g = graph::build(&repo, &mut d).unwrap();
                let sel = graph::select(&repo, &g, &SelectOptions::default(), &env, &mut d);
                let p = Plan::new(&repo, &g, &sel, &HashMap::new());
                black_box(plan::json::render(&p).len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
