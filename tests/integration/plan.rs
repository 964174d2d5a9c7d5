//! `bitops plan`: renderings (snapshots), selection, and that planning has no side effects.

use crate::harness::{deployment_ids, TestRepo};

fn plan_text(repo: &TestRepo, args: &[&str]) -> String {
    let mut all = vec!["plan", "--color", "never"];
    all.extend_from_slice(args);
    let out = repo.run(&all);
    assert_eq!(out.code, 0, "{out}");
    repo.redact(&out.stdout)
}

#[test]
fn plan_text_snapshot() {
    let repo = TestRepo::fixture("plan-basic");
    insta::assert_snapshot!("plan_text", plan_text(&repo, &[]));
}

#[test]
fn plan_json_snapshot() {
    let repo = TestRepo::fixture("plan-basic");
    let text = plan_text(&repo, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    insta::assert_json_snapshot!("plan_json", v);
}

#[test]
fn plan_json_has_the_documented_fields() {
    let repo = TestRepo::fixture("plan-basic");
    let plan = repo.plan_json(&[]);
    assert_eq!(plan["version"], 1);
    let nodes = plan["nodes"].as_array().unwrap();
    let web = nodes
        .iter()
        .find(|n| n["id"] == "frontend-test/web")
        .expect("frontend-test/web planned");
    assert_eq!(web["kind"], "deployment");
    assert_eq!(web["environment"], "frontend-test");
    assert_eq!(web["deployment"], "web");
    assert_eq!(web["plugin"], "sh");
    assert_eq!(web["depends_on"], serde_json::json!(["backend-test/app"]));
    let argv = web["invocation"]["argv"].as_array().expect("argv");
    assert!(
        argv.iter().any(|a| a
            .as_str()
            .is_some_and(|a| a.ends_with("_plugins/sh/deploy.sh"))),
        "{argv:?}"
    );
    // The contract exports the option and its BITOPS_ copy.
    assert_eq!(
        web["invocation"]["env"]["SH_CMD"],
        "echo deploying frontend-test/web"
    );
    assert_eq!(
        web["invocation"]["env"]["BITOPS_SH_CMD"],
        "echo deploying frontend-test/web"
    );
    // `_default/app/bitops.config.yaml` is deep-merged under the environment's tool config.
    let app = nodes
        .iter()
        .find(|n| n["id"] == "backend-test/app")
        .unwrap();
    assert_eq!(app["invocation"]["env"]["SH_EXTRA"], "from-default");
    assert_eq!(app["pool"], "api");
    assert_eq!(app["retries"], 2);
    let env = nodes
        .iter()
        .find(|n| n["id"] == "backend-test")
        .expect("environment node");
    assert_eq!(env["kind"], "environment");
    assert_eq!(
        env["depends_on"],
        serde_json::json!(["backend-test/app", "backend-test/infra"])
    );
    assert!(plan["waves"].as_array().is_some_and(|w| !w.is_empty()));
    assert!(plan["critical_path"]
        .as_array()
        .is_some_and(|w| !w.is_empty()));
}

/// Every direct dependency edge of the JSON plan, as (from, to).
fn edges(plan: &serde_json::Value) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for n in plan["nodes"].as_array().unwrap() {
        for d in n["depends_on"].as_array().unwrap() {
            v.push((
                d.as_str().unwrap().to_string(),
                n["id"].as_str().unwrap().to_string(),
            ));
        }
    }
    v
}

#[test]
fn dot_and_mermaid_contain_every_edge() {
    let repo = TestRepo::fixture("plan-basic");
    let plan = repo.plan_json(&[]);
    let all = edges(&plan);
    assert!(all.len() >= 8, "{all:?}");

    let dot = plan_text(&repo, &["--format", "dot"]);
    assert!(dot.starts_with("digraph"), "{dot}");
    for (from, to) in &all {
        assert!(
            dot.contains(&format!("\"{from}\" -> \"{to}\"")),
            "DOT lacks {from} -> {to}:\n{dot}"
        );
    }
    assert_eq!(dot.matches(" -> ").count(), all.len(), "{dot}");

    let mermaid = plan_text(&repo, &["--format", "mermaid"]);
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    // Mermaid nodes have short keys: map `nK["id"]` / `nK(["id"])` back to ids.
    let mut key_of = std::collections::HashMap::new();
    for line in mermaid.lines() {
        let line = line.trim();
        let key: String = line
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if line[key.len()..].starts_with(['[', '(']) {
            if let Some(id) = line.split('"').nth(1) {
                key_of.insert(id.to_string(), key);
            }
        }
    }
    // An order edge (the implicit sequence: finish, not succeed) is dotted in mermaid and
    // dashed in DOT.
    let order: std::collections::HashSet<(String, String)> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| {
            let to = n["id"].as_str().unwrap().to_string();
            n["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"] == "order")
                .map(move |d| (d["id"].as_str().unwrap().to_string(), to.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!order.is_empty(), "the fixture has an implicit order");
    for (from, to) in &all {
        let is_order = order.contains(&(from.clone(), to.clone()));
        let arrow = if is_order { "-.->" } else { "-->" };
        let edge = format!("{} {arrow} {}", key_of[from], key_of[to]);
        assert!(
            mermaid.contains(&edge),
            "mermaid lacks {from} {arrow} {to} ({edge}):\n{mermaid}"
        );
        if is_order {
            assert!(
                dot.contains(&format!("\"{from}\" -> \"{to}\" [style=dashed]")),
                "{dot}"
            );
        }
    }
    assert_eq!(
        mermaid.matches(" --> ").count() + mermaid.matches(" -.-> ").count(),
        all.len(),
        "{mermaid}"
    );
}

#[test]
fn plan_starts_no_process_and_writes_nothing() {
    let repo = TestRepo::fixture("plan-basic");
    let before = repo.hash();
    for format in ["text", "json", "dot", "mermaid"] {
        // `run` also asserts the repo is unchanged; here `.bitops` must not appear either.
        let out = repo.run(&["plan", "--format", format]);
        assert_eq!(out.code, 0, "{out}");
    }
    assert_eq!(repo.hash(), before);
    assert!(
        !repo.path(".bitops").exists(),
        "plan created the state folder"
    );
    // The plugin's deploy script and the hook would have recorded themselves.
    assert!(!repo.out_file("trace").exists(), "plan ran a deployment");
    assert!(repo.started().is_empty());
}

fn selection_repo() -> TestRepo {
    let repo = TestRepo::new();
    for (env, body) in [
        ("backend-test", "deployments:\n  infra: {plugin: sh}\n  app: {plugin: sh}\n"),
        ("backend-prod", "deployments:\n  infra: {plugin: sh}\n  app: {plugin: sh}\n"),
        ("frontend-test", "depends_on: [backend-test]\ndeployments:\n  web: {plugin: sh}\n"),
        ("frontend-prod", "depends_on: [backend-prod]\ndeployments:\n  web: {plugin: sh}\n"),
        ("monitoring", "deployments:\n  infra: {plugin: sh}\n  alerts: {plugin: sh, depends_on: [frontend-test/web]}\n"),
    ] {
        repo.env(env, body);
    }
    for id in [
        "backend-test/infra",
        "backend-test/app",
        "backend-prod/infra",
        "backend-prod/app",
        "frontend-test/web",
        "frontend-prod/web",
        "monitoring/infra",
        "monitoring/alerts",
    ] {
        let (e, d) = id.split_once('/').unwrap();
        repo.dep(e, d, "true");
    }
    repo
}

fn ids(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn env_patterns_globs_and_comma_lists() {
    let repo = selection_repo();
    assert_eq!(
        repo.planned_deployments(&["-e", "backend-*"]),
        ids(&[
            "backend-test/infra",
            "backend-test/app",
            "backend-prod/infra",
            "backend-prod/app"
        ])
    );
    assert_eq!(
        repo.planned_deployments(&["-e", "frontend-test,monitoring"]),
        ids(&["frontend-test/web", "monitoring/infra", "monitoring/alerts"])
    );
    assert_eq!(
        repo.planned_deployments(&["-e", "frontend-test", "-e", "*-prod"]),
        ids(&[
            "frontend-test/web",
            "backend-prod/infra",
            "backend-prod/app",
            "frontend-prod/web"
        ])
    );
    assert_eq!(repo.planned_deployments(&[]).len(), 8);
}

#[test]
fn environment_variables_select_and_the_flag_wins() {
    let repo = selection_repo();
    let plan = |args: &[&str], vars: &[(&str, &str)]| -> Vec<String> {
        let mut all = vec!["plan", "--format", "json"];
        all.extend_from_slice(args);
        let out = repo.run_env(&all, vars);
        assert_eq!(out.code, 0, "{out}");
        deployment_ids(&serde_json::from_str(&out.stdout).unwrap())
    };
    assert_eq!(
        plan(&[], &[("BITOPS_ENVIRONMENT", "frontend-*")]),
        ids(&["frontend-test/web", "frontend-prod/web"])
    );
    assert_eq!(
        plan(&[], &[("ENVIRONMENT", "monitoring")]),
        ids(&["monitoring/infra", "monitoring/alerts"])
    );
    // BITOPS_ENVIRONMENT before the older ENVIRONMENT; -e before both.
    assert_eq!(
        plan(
            &[],
            &[
                ("BITOPS_ENVIRONMENT", "frontend-prod"),
                ("ENVIRONMENT", "monitoring")
            ]
        ),
        ids(&["frontend-prod/web"])
    );
    assert_eq!(
        plan(
            &["-e", "backend-test"],
            &[("BITOPS_ENVIRONMENT", "frontend-prod")]
        ),
        ids(&["backend-test/infra", "backend-test/app"])
    );
}

#[test]
fn only_with_deps_and_with_dependents() {
    let repo = selection_repo();
    assert_eq!(
        repo.planned_deployments(&["--only", "frontend-test/web"]),
        ids(&["frontend-test/web"])
    );
    assert_eq!(
        repo.planned_deployments(&["--only", "frontend-test/web", "--with-deps"]),
        ids(&[
            "frontend-test/web",
            "backend-test/infra",
            "backend-test/app"
        ])
    );
    assert_eq!(
        repo.planned_deployments(&["--only", "frontend-test/web", "--with-dependents"]),
        ids(&["frontend-test/web", "monitoring/alerts"])
    );
    // The implicit order inside an environment is a dependency too.
    assert_eq!(
        repo.planned_deployments(&["--only", "backend-prod/infra", "--with-dependents"]),
        ids(&[
            "backend-prod/infra",
            "backend-prod/app",
            "frontend-prod/web"
        ])
    );
    assert_eq!(
        repo.planned_deployments(&["-e", "monitoring", "--with-deps"]),
        ids(&[
            "monitoring/infra",
            "monitoring/alerts",
            "frontend-test/web",
            "backend-test/infra",
            "backend-test/app"
        ])
    );
    // An environment id selects all of its deployments.
    assert_eq!(
        repo.planned_deployments(&["--only", "backend-prod"]),
        ids(&["backend-prod/infra", "backend-prod/app"])
    );
    // Edges to unselected nodes are dropped from the plan; selected ones are kept.
    let plan = repo.plan_json(&["--only", "frontend-test/web", "--with-dependents"]);
    let alerts = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "monitoring/alerts")
        .unwrap();
    assert_eq!(
        alerts["depends_on"],
        serde_json::json!(["frontend-test/web"])
    );
    let web = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "frontend-test/web")
        .unwrap();
    assert_eq!(web["depends_on"], serde_json::json!([]));
}

fn git_repo() -> TestRepo {
    let repo = TestRepo::new();
    for env in ["a", "b", "c", "d", "e"] {
        repo.env(env, "deployments:\n  tf: {plugin: sh}\n");
        repo.dep(env, "tf", "true");
    }
    // Only `e` has an `app` deployment, which `_default/app` serves.
    repo.env(
        "e",
        "deployments:\n  tf: {plugin: sh}\n  app: {plugin: sh}\n",
    );
    repo.dep("e", "app", "true");
    repo.write("_default/app/common.txt", "v1\n");
    repo.write("_scripts/helper.sh", "echo v1\n");
    repo.git(&["init", "-q"]);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "base"]);
    repo.git(&["tag", "base"]);
    repo
}

fn changed(repo: &TestRepo) -> Vec<String> {
    let mut envs: Vec<String> = repo
        .planned_deployments(&["--changed-since", "base"])
        .iter()
        .map(|id| id.split('/').next().unwrap().to_string())
        .collect();
    envs.dedup();
    envs
}

#[test]
fn changed_since_counts_committed_staged_and_untracked_changes() {
    let repo = git_repo();
    assert!(repo
        .planned_deployments(&["--changed-since", "base"])
        .is_empty());
    // Committed.
    repo.write("a/tf/main.tf", "# new\n");
    repo.git(&["add", "a/tf/main.tf"]);
    repo.git(&["commit", "-q", "-m", "a"]);
    // Staged only.
    repo.write(
        "b/tf/bitops.config.yaml",
        "sh:\n  options:\n    cmd: \"echo changed\"\n",
    );
    repo.git(&["add", "b/tf/bitops.config.yaml"]);
    // Untracked.
    repo.write("c/notes.txt", "untracked\n");
    assert_eq!(changed(&repo), vec!["a", "b", "c"]);
}

#[test]
fn changed_since_maps_default_and_underscore_folders_to_their_users() {
    let repo = git_repo();
    repo.write("_default/app/common.txt", "v2\n");
    assert_eq!(
        changed(&repo),
        vec!["e"],
        "a change in _default/app selects the environments with an `app` deployment"
    );
    repo.git(&["checkout", "-q", "--", "_default"]);
    assert!(changed(&repo).is_empty());
    repo.write("_scripts/helper.sh", "echo v2\n");
    assert_eq!(
        changed(&repo),
        vec!["a", "b", "c", "d", "e"],
        "a change in _scripts selects every environment"
    );
}

#[test]
fn changed_since_a_deleted_environment_selects_nothing() {
    let repo = git_repo();
    repo.git(&["rm", "-r", "-q", "d"]);
    assert!(
        changed(&repo).is_empty(),
        "deleting an environment leaves nothing to deploy: {:?}",
        changed(&repo)
    );
}

#[test]
fn changed_since_a_bad_ref_is_a_usage_error() {
    let repo = git_repo();
    let out = repo.run(&["plan", "--changed-since", "no-such-ref"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("no-such-ref"), "{out}");
}

#[test]
fn max_nodes_refuses_a_bigger_deploy() {
    let repo = selection_repo();
    let out = repo.run(&["deploy", "--max-nodes", "3", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("--max-nodes 3"), "{out}");
    assert!(repo.started().is_empty(), "nothing may run");
    // Within the limit it runs.
    let out = repo.run(&[
        "deploy",
        "--max-nodes",
        "2",
        "-e",
        "backend-test",
        "--progress",
        "plain",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.started().len(), 2);
}

#[test]
fn protected_environments_need_allow_protected_to_deploy_but_not_to_plan() {
    let repo = TestRepo::new();
    repo.env(
        "prod",
        "protected: true\ndeployments:\n  tf: {plugin: sh}\n",
    );
    repo.dep("prod", "tf", "true");
    repo.env("dev", "deployments:\n  tf: {plugin: sh}\n");
    repo.dep("dev", "tf", "true");

    assert_eq!(repo.planned_deployments(&[]), ids(&["dev/tf", "prod/tf"]));
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("prod") && out.stderr.contains("--allow-protected"),
        "{out}"
    );
    assert!(repo.started().is_empty(), "nothing may run");

    // Leaving it out of the selection is fine too.
    let out = repo.run(&["deploy", "-e", "dev", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let out = repo.run(&["deploy", "--allow-protected", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(repo.started().contains("prod/tf"));
}

/// `timeout_secs` and `retries` of each deployment in a JSON plan.
fn limits(
    repo: &TestRepo,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Vec<(String, Option<f64>, u64)> {
    let mut all = vec!["plan", "--format", "json"];
    all.extend_from_slice(args);
    let out = repo.run_env(&all, vars);
    assert_eq!(out.code, 0, "{out}");
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut v: Vec<(String, Option<f64>, u64)> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "deployment")
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["timeout_secs"].as_f64(),
                n["retries"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn settings_precedence_flag_env_var_environment_repo_default() {
    let repo = TestRepo::with_repo_config("timeout: 10m\nretries: 1\n");
    repo.env("a", "timeout: 5m\nretries: 2\ndeployments:\n  own: {plugin: sh, timeout: 1m, retries: 3}\n  inherit: {plugin: sh}\n");
    repo.env("b", "deployments:\n  d: {plugin: sh}\n");
    for id in ["a/own", "a/inherit", "b/d"] {
        let (e, d) = id.split_once('/').unwrap();
        repo.dep(e, d, "true");
    }
    let row = |id: &str, t: f64, r: u64| (id.to_string(), Some(t), r);
    assert_eq!(
        limits(&repo, &[], &[]),
        vec![
            row("a/inherit", 300.0, 2),
            row("a/own", 60.0, 3),
            row("b/d", 600.0, 1)
        ]
    );
    let env = [("BITOPS_TIMEOUT", "2m"), ("BITOPS_RETRIES", "4")];
    assert_eq!(
        limits(&repo, &[], &env),
        vec![
            row("a/inherit", 120.0, 4),
            row("a/own", 120.0, 4),
            row("b/d", 120.0, 4)
        ]
    );
    assert_eq!(
        limits(&repo, &["--timeout", "30s", "--retries", "0"], &env),
        vec![
            row("a/inherit", 30.0, 0),
            row("a/own", 30.0, 0),
            row("b/d", 30.0, 0)
        ]
    );
    // Without any configuration: no timeout, no retries.
    let bare = selection_repo();
    assert!(limits(&bare, &["-e", "monitoring"], &[])
        .iter()
        .all(|(_, t, r)| t.is_none() && *r == 0));
}

#[test]
fn yaml_1_1_booleans_as_bitops_read_them() {
    let repo = TestRepo::with_repo_config("fail_fast: off\n");
    repo.env("prod", "protected: yes\ndeployments:\n  tf: {plugin: sh}\n");
    repo.dep("prod", "tf", "true");
    let text = plan_text(&repo, &[]);
    assert!(
        text.contains("fail_fast false (bitops.config.yaml:5)"),
        "{text}"
    );
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 2, "`protected: yes` is true: {out}");
    // BitOps read any non-empty string as true; bitops reads "false" as false.
    let out = repo.run_env(&["plan"], &[("BITOPS_FAST_FAIL", "false")]);
    assert!(
        out.stdout
            .contains("fail_fast false (env BITOPS_FAST_FAIL)"),
        "{out}"
    );
}

#[test]
fn changed_since_maps_a_plugin_folder_to_its_users_and_the_repo_config_to_all() {
    let repo = TestRepo::new();
    // A second plugin, `other`, a copy of `sh` under another name.
    for f in ["plugin.config.yaml", "deploy.sh"] {
        let text = std::fs::read_to_string(repo.path(&format!("_plugins/sh/{f}"))).unwrap();
        repo.write_exec(&format!("_plugins/other/{f}"), &text);
    }
    let schema = std::fs::read_to_string(repo.path("_plugins/sh/bitops.schema.yaml")).unwrap();
    repo.write(
        "_plugins/other/bitops.schema.yaml",
        &schema.replacen("sh:", "other:", 1),
    );
    repo.write(
        "bitops.config.yaml",
        "bitops:\n  plugins:\n    sh:\n      source: ./_plugins/sh\n    other:\n      source: ./_plugins/other\n",
    );
    for env in ["a", "b"] {
        repo.env(env, "deployments:\n  tf: {plugin: sh}\n");
        repo.dep(env, "tf", "true");
    }
    repo.env("c", "deployments:\n  x: {plugin: other}\n");
    repo.write(
        "c/x/bitops.config.yaml",
        "other:\n  options:\n    cmd: \"true\"\n",
    );
    repo.git(&["init", "-q"]);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "base"]);
    repo.git(&["tag", "base"]);

    repo.write_exec("_plugins/other/deploy.sh", "#!/bin/bash\nexit 0\n");
    assert_eq!(
        changed(&repo),
        vec!["c"],
        "a plugin change selects the environments using it"
    );
    repo.git(&["checkout", "-q", "--", "_plugins"]);
    let text = std::fs::read_to_string(repo.path("bitops.config.yaml")).unwrap();
    repo.write("bitops.config.yaml", &format!("{text}  fail_fast: true\n"));
    assert_eq!(
        changed(&repo),
        vec!["a", "b", "c"],
        "a repo config change selects every environment"
    );
}

#[test]
fn the_ops_repo_comes_from_the_flag_the_variable_or_the_current_folder() {
    let repo = selection_repo();
    let plan = |dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]| {
        let out = std::process::Command::new(crate::harness::BIN)
            .args(["plan", "--format", "json"])
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["ops_repo"].as_str().unwrap().to_string()
    };
    let root = repo.root.display().to_string();
    if std::path::Path::new("/opt/bitops_deployment").exists() {
        return; // the container default would win over the current folder
    }
    assert_eq!(plan(&repo.root, &[], &[]), root);
    let elsewhere = repo.tmp().join("home");
    assert_eq!(plan(&elsewhere, &[], &[("BITOPS_OPS_REPO", &root)]), root);
    let other = TestRepo::new();
    other.env("x", "deployments:\n  d: {plugin: sh}\n");
    other.dep("x", "d", "true");
    let other_root = other.root.display().to_string();
    assert_eq!(
        plan(
            &elsewhere,
            &["-C", &other_root],
            &[("BITOPS_OPS_REPO", &root)]
        ),
        other_root,
        "-C wins over BITOPS_OPS_REPO"
    );
}
