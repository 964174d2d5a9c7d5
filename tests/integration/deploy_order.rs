//! Order and overlap, from the start/end times the deployments record themselves.

use std::collections::{BTreeMap, BTreeSet};

use crate::harness::{TestRepo, Trace};

const PLAIN: &[&str] = &["--progress", "plain", "--color", "never"];

fn deploy(repo: &TestRepo, extra: &[&str]) -> crate::harness::RunOutput {
    let mut args = vec!["deploy"];
    args.extend_from_slice(PLAIN);
    args.extend_from_slice(extra);
    repo.run(&args)
}

/// For each deployment of a JSON plan, every deployment it must wait for (through environment
/// nodes and transitively).
fn must_wait_for(plan: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let nodes = plan["nodes"].as_array().unwrap();
    let direct: BTreeMap<String, Vec<String>> = nodes
        .iter()
        .map(|n| {
            let deps = n["depends_on"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            (n["id"].as_str().unwrap().to_string(), deps)
        })
        .collect();
    let kind: BTreeMap<&str, &str> = nodes
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["kind"].as_str().unwrap()))
        .collect();
    let mut out = BTreeMap::new();
    for (id, _) in direct
        .iter()
        .filter(|(id, _)| kind[id.as_str()] == "deployment")
    {
        let mut seen = BTreeSet::new();
        let mut stack = direct[id].clone();
        while let Some(d) = stack.pop() {
            if seen.insert(d.clone()) {
                stack.extend(direct[&d].iter().cloned());
            }
        }
        seen.retain(|d| kind[d.as_str()] == "deployment");
        out.insert(id.clone(), seen);
    }
    out
}

/// Every planned deployment ran once, succeeded, and started after all it depends on ended.
fn assert_order(plan: &serde_json::Value, trace: &Trace) {
    let waits = must_wait_for(plan);
    assert_eq!(
        trace.starts.len(),
        waits.len(),
        "each deployment runs once: {:?}",
        trace.starts
    );
    for (id, deps) in &waits {
        assert_eq!(trace.span(id).rc, Some(0), "{id} failed");
        for d in deps {
            assert!(
                trace.after(d, id),
                "{id} started before its dependency {d} ended: {trace:?}"
            );
        }
    }
}

/// The largest number of deployments running at one moment, among `ids`.
fn max_concurrency(trace: &Trace, ids: &[&str]) -> usize {
    let mut events: Vec<(u128, i32)> = Vec::new();
    for id in ids {
        let s = trace.span(id);
        events.push((s.start, 1));
        events.push((s.end.expect("ended"), -1));
    }
    // At equal times, ends first: touching intervals do not overlap.
    events.sort_by_key(|&(t, d)| (t, d));
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

#[test]
fn independent_deployments_overlap() {
    let repo = TestRepo::new();
    // Each waits (bounded) until the other has started: run one after the other, the first
    // would give up and fail.
    for (me, other) in [("x", "y"), ("y", "x")] {
        repo.env(me, "deployments:\n  d: {plugin: sh}\n");
        repo.dep(
            me,
            "d",
            &format!("waitfor \"$T_OUT/started/{other}__d\" 60"),
        );
    }
    let out = deploy(&repo, &[]);
    assert_eq!(out.code, 0, "{out}");
    let t = repo.trace();
    assert!(t.overlap("x/d", "y/d"), "{t:?}");
}

#[test]
fn dependents_start_after_their_dependencies_end() {
    let repo = TestRepo::fixture("plan-basic");
    let plan = repo.plan_json(&[]);
    let out = deploy(&repo, &["--allow-protected"]);
    assert_eq!(out.code, 0, "{out}");
    assert_order(&plan, &repo.trace());
    // Sanity: the fixture has real chains, across environments and inside one.
    let waits = must_wait_for(&plan);
    assert!(waits["frontend-test/web"].contains("shared-network/net"));
    assert!(waits["backend-test/app"].contains("backend-test/infra"));
    assert!(waits["frontend-test/cdn"].is_empty());
}

#[test]
fn jobs_1_never_overlaps() {
    let repo = TestRepo::new();
    let ids = ["e1/d", "e2/d", "e3/d", "e4/d"];
    for id in ids {
        let (e, d) = id.split_once('/').unwrap();
        repo.env(e, "deployments:\n  d: {plugin: sh}\n");
        repo.dep(e, d, "sleep 0.2");
    }
    for (args, vars) in [
        (vec!["-j", "1"], vec![]),
        (vec![], vec![("BITOPS_JOBS", "1")]),
    ] {
        let _ = std::fs::remove_file(repo.out_file("trace"));
        let mut all = vec!["deploy", "--progress", "plain"];
        all.extend(args);
        let out = repo.run_env(&all, &vars);
        assert_eq!(out.code, 0, "{out}");
        let t = repo.trace();
        assert_eq!(t.starts.len(), 4, "{t:?}");
        assert_eq!(max_concurrency(&t, &ids), 1, "{vars:?}: {t:?}");
    }
    // Without a limit they do run together (all four wait for each other to start).
    let _ = std::fs::remove_file(repo.out_file("trace"));
    for id in ids {
        let (e, d) = id.split_once('/').unwrap();
        let others: Vec<String> = ids
            .iter()
            .filter(|o| **o != id)
            .map(|o| format!("waitfor \"$T_OUT/started/{}\" 60", o.replace('/', "__")))
            .collect();
        repo.dep(e, d, &others.join(" && "));
    }
    let _ = std::fs::remove_dir_all(repo.out_file("started"));
    let out = deploy(&repo, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(max_concurrency(&repo.trace(), &ids), 4);
}

#[test]
fn pools_limit_their_members() {
    let repo = TestRepo::with_repo_config("pools:\n  api: 1\n  db: 2\n");
    let api = ["a1/d", "a2/d", "a3/d"];
    let db = ["b1/d", "b2/d", "b3/d", "b4/d"];
    for id in api {
        let (e, d) = id.split_once('/').unwrap();
        repo.env(e, "deployments:\n  d: {plugin: sh, pool: api}\n");
        repo.dep(e, d, "sleep 0.2");
    }
    for id in db {
        let (e, d) = id.split_once('/').unwrap();
        repo.env(e, "deployments:\n  d: {plugin: sh, pool: db}\n");
        repo.dep(e, d, "sleep 0.2");
    }
    let out = deploy(&repo, &["-j", "8"]);
    assert_eq!(out.code, 0, "{out}");
    let t = repo.trace();
    assert_eq!(t.starts.len(), 7, "{t:?}");
    assert_eq!(max_concurrency(&t, &api), 1, "pool api (1): {t:?}");
    assert!(max_concurrency(&t, &db) <= 2, "pool db (2): {t:?}");
}

#[test]
fn implicit_sequence_and_explicit_edges_inside_an_environment() {
    let repo = TestRepo::new();
    // one → two (implicit order); three declares `depends_on: []` and may start at once,
    // alongside one: it waits for one to start to prove it.
    repo.env("e", "deployments:\n  one: {plugin: sh}\n  two: {plugin: sh}\n  three: {plugin: sh, depends_on: []}\n");
    repo.dep("e", "one", "waitfor \"$T_OUT/started/e__three\" 60");
    repo.dep("e", "two", "true");
    repo.dep("e", "three", "waitfor \"$T_OUT/started/e__one\" 60");
    let plan = repo.plan_json(&[]);
    let out = deploy(&repo, &[]);
    assert_eq!(out.code, 0, "{out}");
    let t = repo.trace();
    assert_order(&plan, &t);
    assert!(t.after("e/one", "e/two"));
    assert!(t.overlap("e/one", "e/three"));
}

#[test]
fn destroy_runs_the_graph_in_reverse() {
    // `destroy` runs only plugins with a destroy action: give `sh` a stack-action property
    // and name its destroy word.
    let repo = TestRepo::with_repo_config("    destroy_action: destroy\n");
    repo.write(
        "_plugins/sh/bitops.schema.yaml",
        "sh:\n  type: object\n  properties:\n    cli:\n      type: object\n      properties:\n        stack-action: {type: string}\n    options:\n      type: object\n      properties:\n        cmd: {type: string, export_env: SH_CMD}\n",
    );
    repo.env("net", "deployments:\n  tf: {plugin: sh}\n");
    repo.env(
        "app",
        "depends_on: [net]\ndeployments:\n  tf: {plugin: sh}\n  cfg: {plugin: sh}\n",
    );
    for id in ["net/tf", "app/tf", "app/cfg"] {
        let (e, d) = id.split_once('/').unwrap();
        repo.dep(e, d, "echo \"$BITOPS_ACTION\" >> \"$T_OUT/actions\"");
    }
    let out = repo.run(&["destroy", "--all", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let t = repo.trace();
    assert!(t.after("app/cfg", "app/tf"), "{t:?}");
    assert!(t.after("app/tf", "net/tf"), "{t:?}");
    assert!(t.after("app/cfg", "net/tf"), "{t:?}");
    assert_eq!(repo.read_out("actions"), "destroy\ndestroy\ndestroy\n");
}

#[test]
fn color_never_prints_no_escape_codes() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  ok: {plugin: sh}\n  bad: {plugin: sh, depends_on: []}\n",
    );
    repo.dep("e", "ok", "echo fine");
    repo.dep("e", "bad", "exit 1");
    for args in [vec!["deploy", "--keep-going"], vec!["plan"]] {
        let mut all = args.clone();
        all.extend_from_slice(PLAIN);
        let out = repo.run(&all);
        assert!(!out.all().contains('\u{1b}'), "{args:?}: {out}");
        let out = repo.run_env(&args, &[("NO_COLOR", "1")]);
        assert!(
            !out.all().contains('\u{1b}'),
            "{args:?} with NO_COLOR: {out}"
        );
    }
}

#[test]
fn jobs_must_be_at_least_one_in_every_form() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    let flag = repo.run(&["deploy", "-j", "0", "--progress", "plain"]);
    assert_eq!(flag.code, 2, "{flag}");
    let var = repo.run_env(&["deploy", "--progress", "plain"], &[("BITOPS_JOBS", "0")]);
    assert_eq!(var.code, 2, "{var}");
    let config = TestRepo::with_repo_config("jobs: 0\n");
    config.env("e", "deployments:\n  d: {plugin: sh}\n");
    config.dep("e", "d", "true");
    let cfg = config.run(&["deploy", "--progress", "plain"]);
    assert_eq!(cfg.code, 2, "{cfg}");
    assert!(repo.started().is_empty() && config.started().is_empty());
}

/// With one job slot, the ready deployment with the longest remaining path goes first;
/// durations recorded by earlier runs weigh the paths.
#[test]
fn the_longest_remaining_path_starts_first() {
    let repo = TestRepo::new();
    repo.env(
        "chain",
        "deployments:\n  d1: {plugin: sh}\n  d2: {plugin: sh}\n  d3: {plugin: sh}\n",
    );
    for d in ["d1", "d2", "d3"] {
        repo.dep("chain", d, "true");
    }
    repo.env("heavy", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("heavy", "d", "sleep 1");
    // No history: every deployment counts the same, so the chain of three is the longest.
    let out = deploy(&repo, &["-j", "1"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.trace().starts.first().map(String::as_str),
        Some("chain/d1"),
        "{:?}",
        repo.trace().starts
    );
    // The first run recorded that `heavy/d` takes far longer than the whole chain.
    std::fs::remove_file(repo.out_file("trace")).unwrap();
    let out = deploy(&repo, &["-j", "1"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.trace().starts.first().map(String::as_str),
        Some("heavy/d"),
        "{:?}",
        repo.trace().starts
    );
}

#[test]
fn ci_output_is_prefixed_lines_or_grouped_logs() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  a: {plugin: sh}\n  b: {plugin: sh}\n");
    repo.dep("e", "a", "echo line one; echo line two");
    repo.dep("e", "b", "echo from b");
    // `--output stream` in CI (and without a terminal): each line prefixed with its deployment.
    let out = repo.run_env(
        &["deploy", "--color", "never", "--output", "stream"],
        &[("CI", "true")],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("[e/a] line one\n") && out.stderr.contains("[e/b] from b\n"),
        "{out}"
    );
    // Grouped on GitHub Actions: each log whole, inside a fold.
    let out = repo.run_env(
        &["deploy", "--color", "never", "--output", "grouped"],
        &[("CI", "true"), ("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(out.code, 0, "{out}");
    let start = out
        .stderr
        .find("::group::e/a")
        .unwrap_or_else(|| panic!("no fold for e/a: {out}"));
    let end = start
        + out.stderr[start..]
            .find("::endgroup::")
            .expect("fold closed");
    let fold = &out.stderr[start..end];
    assert!(
        fold.contains("line one\n") && fold.contains("line two\n") && !fold.contains("from b"),
        "{fold}"
    );
}

#[test]
fn environment_level_pools_hold_in_a_multi_environment_run() {
    let repo = TestRepo::new();
    repo.env("a", "pools:\n  local: 1\ndeployments:\n  p1: {plugin: sh, pool: local}\n  p2: {plugin: sh, pool: local, depends_on: []}\n");
    repo.dep("a", "p1", "sleep 0.3");
    repo.dep("a", "p2", "sleep 0.3");
    repo.env("b", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("b", "d", "true");
    // Alone, the pool holds.
    let out = deploy(&repo, &["-e", "a"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(max_concurrency(&repo.trace(), &["a/p1", "a/p2"]), 1);
    std::fs::remove_file(repo.out_file("trace")).unwrap();
    let out = deploy(&repo, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        max_concurrency(&repo.trace(), &["a/p1", "a/p2"]),
        1,
        "{:?}",
        repo.trace()
    );
}
