//! `bitops plan` on generated repos of 1,000 and 10,000 environments × 4 deployments with
//! cross-environment edges (each environment depends on up to three earlier ones).
//!
//! Two measurements per size: `full` is what `bitops plan --format json` does (read every
//! config, build, select, prepare every deployment's plugin, render), `graph` is the in-memory
//! part alone (graph + selection + plan + render from an already-read repo), which shows the
//! cost that grows with the graph rather than with the filesystem.
//!
//! Sizes: 1,000 and 10,000 environments; 100,000 too (500,001 files, generated once per run,
//! fewer samples) when `BITOPS_BENCH_100K=1`. The repos are generated in a temporary folder
//! under `BITOPS_BENCH_DIR` (default: the system's), so the filesystem measured is a choice:
//! the figures in docs/PERFORMANCE.md are on ext4, not tmpfs.
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
use rayon::prelude::*;

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
    let prepared = plan::preview::prepare_all(
        &repo,
        &g,
        &sel,
        &reg,
        Action::Deploy,
        &env.0,
        &mut Vec::new(),
    );
    let rendered: Vec<_> = prepared
        .into_par_iter()
        .map(|(i, r)| {
            let r = r
                .map(|x| plan::preview::invocation(&x, &[]))
                .map_err(|_| String::new());
            (i, r)
        })
        .collect();
    p.invocations.extend(rendered);
    assert!(diags.is_empty());
    // Streamed as `bitops plan --format json` does (to a pipe there, nowhere here).
    let mut out = CountingSink(0);
    plan::json::write(&p, &mut out).unwrap();
    out.0
}

/// Counts the bytes written and keeps none.
struct CountingSink(usize);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The sizes to measure: 100,000 environments only on request (generating 500,001 files takes
/// minutes and `cargo test --benches` runs every bench once).
fn sizes() -> Vec<usize> {
    let mut v = vec![1_000, 10_000];
    if std::env::var_os("BITOPS_BENCH_100K").is_some_and(|x| x == "1") {
        v.push(100_000);
    }
    v
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("BITOPS_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    for envs in sizes() {
        // Criterion's minimum is 10 samples; at 100,000 environments a sample is seconds.
        group.sample_size(10);
        if envs >= 100_000 {
            group.measurement_time(std::time::Duration::from_secs(60));
        }
        let dir = bench_dir();
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
                let mut out = CountingSink(0);
                plan::json::write(&p, &mut out).unwrap();
                black_box(out.0)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
