//! Bad input (issue 2 §7): every mistake is a diagnostic naming file:line with the YAML shown,
//! exit code 2, nothing runs, and all mistakes of a repo come out in one run.

use crate::harness::{RunOutput, TestRepo, BIN};

/// A repo with two working environments (`a`, `b`) to break in different ways.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.env(
        "a",
        "deployments:\n  tf: {plugin: sh}\n  app: {plugin: sh}\n",
    );
    repo.env("b", "depends_on: [a]\ndeployments:\n  tf: {plugin: sh}\n");
    for id in ["a/tf", "a/app", "b/tf"] {
        let (e, d) = id.split_once('/').unwrap();
        repo.dep(e, d, "true");
    }
    repo
}

/// Runs `plan` and `deploy`; both must refuse with exit 2, print the same diagnostics, and
/// run nothing (no deployment, no state folder). Returns the plan's stderr.
fn refuse(repo: &TestRepo, extra: &[&str]) -> String {
    let mut plan = vec!["plan", "--color", "never"];
    plan.extend_from_slice(extra);
    let p = repo.run(&plan);
    assert_eq!(p.code, 2, "plan: {p}");
    assert!(
        p.stdout.is_empty(),
        "plan printed a plan despite errors: {p}"
    );
    let mut deploy = vec!["deploy", "--color", "never", "--progress", "plain"];
    deploy.extend_from_slice(extra);
    let d = repo.run(&deploy);
    assert_eq!(d.code, 2, "deploy: {d}");
    assert_eq!(p.stderr, d.stderr, "plan and deploy report differently");
    assert!(repo.started().is_empty(), "a deployment ran");
    assert!(
        !repo.path(".bitops").exists(),
        "the state folder was created"
    );
    assert!(p.stderr.contains("nothing was run"), "{p}");
    repo.redact(&p.stderr)
}

fn has(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "expected {n:?} in:\n{out}");
    }
}

#[test]
fn malformed_yaml() {
    let repo = repo();
    repo.write(
        "b/bitops.config.yaml",
        "bitops:\n  depends_on: [a\n  deployments:\n    tf: {plugin: sh}\n",
    );
    let err = refuse(&repo, &[]);
    has(
        &err,
        &["b/bitops.config.yaml:", "not valid YAML", "depends_on: [a"],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn wrong_type() {
    let repo = repo();
    repo.env(
        "b",
        "depends_on: [a]\njobs: lots\ndeployments:\n  tf: {plugin: sh, retries: often}\n",
    );
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "b/bitops.config.yaml:3",
            "`jobs` must be a whole number",
            "jobs: lots",
            "b/bitops.config.yaml:5",
            "retries",
        ],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_key_with_did_you_mean() {
    let repo = repo();
    repo.env(
        "b",
        "depends_on: [a]\nfail_fsat: false\ndeployments:\n  tf: {plugin: sh, timout: 5m}\n",
    );
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "fail_fsat",
            "did you mean `fail_fast`?",
            "timout",
            "did you mean `timeout`?",
            "b/bitops.config.yaml:3",
        ],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_dependency_with_suggestion() {
    let repo = repo();
    repo.env(
        "b",
        "depends_on: [aa]\ndeployments:\n  tf: {plugin: sh, depends_on: [a/ap]}\n",
    );
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "b/bitops.config.yaml:2",
            "did you mean `a`?",
            "b/bitops.config.yaml:4",
            "did you mean `a/app`?",
        ],
    );
    insta::assert_snapshot!(err);
}

#[test]
fn cycle_shows_the_whole_path() {
    let repo = repo();
    // a/app → b/tf → (b waits for a) … → a/app
    repo.env(
        "a",
        "deployments:\n  tf: {plugin: sh}\n  app: {plugin: sh, depends_on: [b/tf]}\n",
    );
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "dependency cycle",
            "a/app",
            "b/tf",
            "a/bitops.config.yaml:4",
        ],
    );
    let line = err
        .lines()
        .find(|l| l.contains("dependency cycle"))
        .unwrap();
    // The path starts and ends at the same node.
    let path = line.split("dependency cycle: ").nth(1).unwrap();
    let steps: Vec<&str> = path.split(" → ").map(str::trim).collect();
    assert!(steps.len() >= 3 && steps.first() == steps.last(), "{line}");
    insta::assert_snapshot!(err);
}

#[test]
fn listed_deployment_without_its_folder() {
    let repo = repo();
    repo.env(
        "a",
        "deployments:\n  tf: {plugin: sh}\n  app: {plugin: sh}\n  helm: {plugin: sh}\n",
    );
    let err = refuse(&repo, &[]);
    has(&err, &["a/bitops.config.yaml:5", "no folder `a/helm`"]);
    insta::assert_snapshot!(err);
}

#[test]
fn env_pattern_matching_nothing() {
    let repo = repo();
    let err = refuse(&repo, &["-e", "bb"]);
    has(&err, &["`bb` matches no environment", "did you mean `b`?"]);
    insta::assert_snapshot!(err);
}

#[test]
fn missing_ops_repo() {
    let out = std::process::Command::new(BIN)
        .args(["plan", "--color", "never", "-C", "/nonexistent/ops-repo"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("bitops runs");
    let out = RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(out.code, 2, "{out}");
    has(&out.stderr, &["/nonexistent/ops-repo", "cannot be opened"]);
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_cycle_is_reported_alongside_unknown_names() {
    let repo = repo();
    repo.env(
        "a",
        "depends_on: [b, nope]\ndeployments:\n  tf: {plugin: sh}\n",
    );
    repo.env("b", "depends_on: [a]\ndeployments:\n  tf: {plugin: sh}\n");
    repo.dep("a", "tf", "true");
    repo.dep("b", "tf", "true");
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "`nope`",
            "dependency cycle:",
            "a/tf",
            "b/tf",
            "2 configuration errors",
        ],
    );
}

#[test]
fn all_mistakes_of_a_repo_in_one_run() {
    let repo = repo();
    repo.env(
        "a",
        "deployments:\n  tf: {plugin: sh}\n  app: {plugin: sh}\n  gone: {plugin: sh}\n",
    );
    repo.env(
        "b",
        "depends_on: [a]\nretries: -1\ndeployments:\n  tf: {plugin: sh, pol: x}\n",
    );
    repo.env(
        "c",
        "depends_on: [zz]\nprotected: maybe\ndeployments:\n  tf: {plugin: shh}\n",
    );
    repo.dep("c", "tf", "true");
    repo.write("d/bitops.config.yaml", "bitops: [not, a, map\n");
    repo.write(
        "bitops.config.yaml",
        "bitops:\n  jbos: 2\n  plugins:\n    sh:\n      source: ./_plugins/sh\n",
    );
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "bitops.config.yaml:2",   // repo-level unknown key `jbos`
            "a/bitops.config.yaml:5", // missing folder a/gone
            "b/bitops.config.yaml:3", // retries: -1
            "b/bitops.config.yaml:5", // unknown key `pol`
            "c/bitops.config.yaml:3", // protected: maybe
            "c/bitops.config.yaml:5", // plugin `shh`
            "d/bitops.config.yaml:",  // malformed YAML
        ],
    );
    insta::assert_snapshot!(err);
}

/// A repo whose tool-level config (`a/tf/bitops.config.yaml`) is malformed.
fn broken_tool_config() -> TestRepo {
    let repo = repo();
    repo.write(
        "a/tf/bitops.config.yaml",
        "sh:\n  options:\n    cmd: [unclosed\n",
    );
    repo
}

#[test]
fn deploy_refuses_a_malformed_tool_config_before_running_anything() {
    let repo = broken_tool_config();
    let out = repo.run(&["deploy", "--color", "never", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    has(&out.stderr, &["a/tf/bitops.config.yaml", "not valid YAML"]);
    assert!(repo.started().is_empty());
}

#[test]
fn plan_refuses_a_malformed_tool_config() {
    let repo = broken_tool_config();
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn tool_config_diagnostics_show_file_line_and_yaml() {
    let repo = broken_tool_config();
    let out = repo.run(&["deploy", "--color", "never", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    has(
        &out.stderr,
        &["a/tf/bitops.config.yaml:3", "cmd: [unclosed"],
    );
    repo.write(
        "a/tf/bitops.config.yaml",
        "sh:\n  options:\n    cmd: \"true\"\n    cmdd: x\n",
    );
    let out = repo.run(&["deploy", "--color", "never", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    has(&out.stderr, &["a/tf/bitops.config.yaml:4", "cmdd: x"]);
}

#[test]
fn unknown_pool_with_suggestion() {
    let repo = TestRepo::with_repo_config("pools:\n  aws-api: 1\n");
    repo.env("a", "deployments:\n  tf: {plugin: sh, pool: aws-apii}\n");
    repo.dep("a", "tf", "true");
    let err = refuse(&repo, &[]);
    has(
        &err,
        &[
            "a/bitops.config.yaml:3",
            "pool `aws-apii`",
            "did you mean `aws-api`?",
        ],
    );
    insta::assert_snapshot!(err);
}
