//! A real CI engine runs an exported pipeline (issue 11): `gitlab-ci-local` executes
//! `bitops export --to gitlab-ci --image none` of `tests/fixtures/export-ci` on shell runners
//! (`--shell-executor-no-image --shell-isolation`), each job in its own copy of the checkout.
//! Every job passes, jobs start only after the jobs they need ended, and outputs cross jobs and
//! environments through GitLab artifacts alone: the same pipeline without `artifacts: true`
//! fails where a deployment needs an upstream output. The store variant exports with
//! `--state s3://…` (that same pipeline without artifacts, plus the store) and runs it against
//! a real moto S3: outputs cross through the store, which then holds them and each job's report.
//!
//! Jobs find bitops the way a real shell runner would, as `bitops` on PATH: the freshly built
//! binary is linked into a folder put first on gitlab-ci-local's PATH.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{require_tools, wait_bounded, TestRepo, BIN};
use crate::services::{moto_s3, s3_keys};

/// Jobs of the fixture's pipeline, and the jobs each one needs (the plan's graph with
/// environment nodes contracted: `frontend-test` depends on all of `backend-test`).
const NEEDS: [(&str, &[&str]); 4] = [
    ("backend-test/db", &[]),
    ("backend-test/api", &["backend-test/db"]),
    (
        "frontend-test/web",
        &["backend-test/db", "backend-test/api"],
    ),
    ("monitoring-test/probe", &[]),
];

/// gitlab-ci-local is installed and runs (its native `re2` module can be missing after an
/// install that skipped build scripts; that is a missing tool too).
fn gitlab_ci_local() -> bool {
    if !require_tools(&["gitlab-ci-local", "rsync", "git"]) {
        return false;
    }
    let runs = Command::new("gitlab-ci-local")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        runs || !ci,
        "CI is set and `gitlab-ci-local --version` fails"
    );
    if !runs {
        eprintln!("skipped: `gitlab-ci-local --version` fails (reinstall it, see .ci/run)");
    }
    runs
}

/// The fixture as a git checkout with the exported pipeline committed as `.gitlab-ci.yml`.
fn checkout(extra: &[&str], pipeline_edit: impl Fn(&str) -> String) -> (TestRepo, String) {
    checkout_of(TestRepo::fixture("export-ci"), extra, pipeline_edit)
}

fn checkout_of(
    repo: TestRepo,
    extra: &[&str],
    pipeline_edit: impl Fn(&str) -> String,
) -> (TestRepo, String) {
    let mut args = vec!["export", "--to", "gitlab-ci", "--image", "none"];
    args.extend_from_slice(extra);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    let pipeline = pipeline_edit(&out.stdout);
    repo.write(".gitlab-ci.yml", &pipeline);
    repo.write(".gitignore", ".bitops/\n.gitlab-ci-local/\n");
    repo.git(&["init", "-q"]);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "ops repo"]);
    (repo, pipeline)
}

struct Pipeline {
    code: i32,
    output: String,
}

/// Runs the whole pipeline with gitlab-ci-local in the checkout, bounded in time; `vars` are
/// set in gitlab-ci-local's environment.
fn run_pipeline(repo: &TestRepo, vars: &[(String, String)]) -> Pipeline {
    let bin = repo.out_file("bin");
    let link = bin.join("bitops");
    if !link.exists() {
        std::os::unix::fs::symlink(BIN, &link).expect("link bitops");
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let home = repo.tmp().join("home");
    let log = repo.out_file("gitlab-ci-local.log");
    let mut child = Command::new("gitlab-ci-local")
        .args([
            "--shell-executor-no-image",
            "--shell-isolation",
            // Artifacts stay in gitlab-ci-local's state; nothing is copied back into the
            // checkout, so the only way outputs reach a job is its needs' artifacts.
            "--no-artifacts-to-source",
            "--no-color",
            "--variable",
        ])
        .arg(format!("T_OUT={}", repo.out.display()))
        .current_dir(&repo.root)
        .env("PATH", format!("{}:{path}", bin.display()))
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).expect("log file"))
        .stderr(fs::File::create(repo.out_file("gitlab-ci-local.stderr")).expect("log file"))
        .spawn()
        .expect("gitlab-ci-local starts");
    let code = wait_bounded(&mut child, Duration::from_secs(300));
    let output = format!(
        "{}{}",
        fs::read_to_string(&log).unwrap_or_default(),
        fs::read_to_string(repo.out_file("gitlab-ci-local.stderr")).unwrap_or_default()
    );
    Pipeline { code, output }
}

/// The job names gitlab-ci-local reports with `status` (` PASS  job`, ` FAIL  job`).
fn jobs_with(output: &str, status: &str) -> Vec<String> {
    let mut v: Vec<String> = output
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(status))
        .map(|rest| rest.trim().to_string())
        .collect();
    v.sort();
    v
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn gitlab_ci_local_runs_an_exported_pipeline_with_outputs_through_artifacts() {
    if !gitlab_ci_local() {
        return;
    }
    let (repo, pipeline) = checkout(&[], str::to_string);
    assert!(
        !pipeline.contains("image:"),
        "a shell-runner pipeline names an image:\n{pipeline}"
    );
    for (job, _) in NEEDS {
        assert!(pipeline.contains(&format!("- bitops deploy -C . --only {job}\n")));
    }

    let p = run_pipeline(&repo, &[]);
    assert_outputs_crossed_jobs(&repo, &p);
}

/// What a passing run of the fixture's pipeline shows: every job passed, each started after the
/// jobs it needs had ended, and outputs crossed jobs and environments.
fn assert_outputs_crossed_jobs(repo: &TestRepo, p: &Pipeline) {
    assert_eq!(p.code, 0, "the pipeline failed:\n{}", p.output);
    let mut all: Vec<String> = NEEDS.iter().map(|(j, _)| j.to_string()).collect();
    all.sort();
    assert_eq!(jobs_with(&p.output, "PASS"), all, "{}", p.output);

    // Order: every job started after each job it needs had ended (the deployments' own record).
    let trace = repo.trace();
    for (job, needs) in NEEDS {
        assert_eq!(trace.span(job).rc, Some(0), "{job}: {trace:?}");
        for need in needs {
            assert!(
                trace.after(need, job),
                "{job} started before {need} ended: {trace:?}"
            );
        }
    }

    // Outputs crossed jobs and environments: web (frontend-test) saw db's directly and api's,
    // which api built from db's in its own job.
    assert_eq!(
        read(&repo.out_file("web.env")),
        "BITOPS_OUTPUT_BACKEND_TEST_API_API_URL=https://api.db.backend.internal\n\
         BITOPS_OUTPUT_BACKEND_TEST_DB_DB_HOST=db.backend.internal\n"
    );
    let inputs: serde_json::Value =
        serde_json::from_str(&read(&repo.out_file("web.json"))).expect("inputs JSON");
    assert_eq!(inputs["backend-test/db"]["DB_HOST"], "db.backend.internal");
    assert_eq!(
        inputs["backend-test/api"]["API_URL"],
        "https://api.db.backend.internal"
    );
    assert_eq!(
        read(&repo.out_file("probe.env")),
        "",
        "a job that needs nothing got outputs"
    );
    // The jobs ran in copies: the checkout itself never got a state folder to share.
    assert!(
        !repo.path(".bitops").exists(),
        "jobs wrote into the shared checkout"
    );
}

/// The control: without `artifacts: true` on the needs, nothing carries db's outputs to api,
/// whose deployment requires them — so the passing run above really went through artifacts.
#[test]
fn without_artifacts_the_outputs_do_not_reach_the_next_job() {
    if !gitlab_ci_local() {
        return;
    }
    let (repo, pipeline) = checkout(&[], |p| p.replace("artifacts: true", "artifacts: false"));
    assert!(pipeline.contains("artifacts: false"));
    let p = run_pipeline(&repo, &[]);
    assert_ne!(p.code, 0, "{}", p.output);
    assert_eq!(
        jobs_with(&p.output, "FAIL"),
        ["backend-test/api"],
        "{}",
        p.output
    );
    assert!(!repo.trace().ran("frontend-test/web"), "{}", p.output);
}

/// `fail_fast: false`: the first deployment of an environment fails and the second still runs
/// after it, as `bitops deploy` would (an order-only edge is `when: always` on GitLab); the
/// control without `when: always` skips it, so the run really depended on it.
#[test]
fn with_fail_fast_false_a_failed_deployment_does_not_skip_the_next() {
    if !gitlab_ci_local() {
        return;
    }
    let keep_going = || {
        let repo = TestRepo::fixture("export-ci");
        repo.write(
            "keep-test/bitops.config.yaml",
            "bitops:\n  fail_fast: false\n  deployments:\n    first: {plugin: sh}\n    second: {plugin: sh}\n",
        );
        repo.dep("keep-test", "first", "exit 3");
        repo.dep("keep-test", "second", "true");
        repo
    };
    let (repo, pipeline) = checkout_of(keep_going(), &["-e", "keep-test"], str::to_string);
    assert_eq!(pipeline.matches("when: always").count(), 3, "{pipeline}");
    let p = run_pipeline(&repo, &[]);
    assert_ne!(p.code, 0, "{}", p.output);
    assert_eq!(
        jobs_with(&p.output, "FAIL"),
        ["keep-test/first"],
        "{}",
        p.output
    );
    assert_eq!(
        jobs_with(&p.output, "PASS"),
        ["keep-test/second"],
        "{}",
        p.output
    );
    let trace = repo.trace();
    assert_eq!(trace.span("keep-test/second").rc, Some(0), "{trace:?}");
    assert!(
        trace.after("keep-test/first", "keep-test/second"),
        "second started before first ended: {trace:?}"
    );

    // The control: GitLab's default (every need must succeed) skips the second deployment.
    let (repo, pipeline) = checkout_of(keep_going(), &["-e", "keep-test"], |p| {
        p.replace("\n  when: always\n  script:", "\n  script:")
    });
    assert_eq!(pipeline.matches("when: always").count(), 2, "{pipeline}");
    let p = run_pipeline(&repo, &[]);
    assert!(repo.trace().ran("keep-test/first"), "{}", p.output);
    assert!(
        !repo.trace().ran("keep-test/second"),
        "{pipeline}\n{}",
        p.output
    );
}

/// The store the S3 variant's jobs share: a bucket on moto and a prefix in it.
const BUCKET: &str = "ops-state";
const PREFIX: &str = "team/ops";

/// The same pipeline exported with `--state s3://…`: its needs carry no artifacts (the export
/// writes `artifacts: false` and no outputs paths — exactly the control's pipeline above, which
/// fails), so outputs reach the next job only through the store, moto's S3 here. The jobs get
/// the endpoint and credentials from gitlab-ci-local's environment, as a runner's would.
#[test]
fn gitlab_ci_local_runs_an_exported_pipeline_with_outputs_through_the_s3_store() {
    if !gitlab_ci_local() {
        return;
    }
    let Some((_moto, vars)) = moto_s3(BUCKET) else {
        return;
    };
    let url = format!("s3://{BUCKET}/{PREFIX}");
    let (repo, pipeline) = checkout(&["--state", &url], str::to_string);
    assert!(
        pipeline.contains("artifacts: false")
            && !pipeline.contains("artifacts: true")
            && !pipeline.contains(".bitops/outputs"),
        "the store pipeline moves outputs artifacts:\n{pipeline}"
    );
    for (job, _) in NEEDS {
        assert!(pipeline.contains(&format!(
            "- bitops deploy -C . --only {job} --state {url}\n"
        )));
    }

    let p = run_pipeline(&repo, &vars);
    assert_outputs_crossed_jobs(&repo, &p);

    // The store holds what crossed: the outputs of both deployments that wrote some, each job's
    // run report (four runs, one per job), and no lock left behind.
    let keys = s3_keys(&vars, BUCKET, &format!("{PREFIX}/"));
    for dep in ["backend-test__db", "backend-test__api"] {
        let key = format!("{PREFIX}/outputs/{dep}.json");
        assert!(keys.contains(&key), "no {key} in the store: {keys:?}");
    }
    let reports = keys.iter().filter(|k| k.ends_with("/report.json")).count();
    assert_eq!(reports, NEEDS.len(), "one report per job: {keys:?}");
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with(&format!("{PREFIX}/locks/"))),
        "a lock was left in the store: {keys:?}"
    );
}

/// Argo tasks are pods: `--image none` is refused with a diagnostic, exit 2, nothing written.
#[test]
fn argo_refuses_shell_runners() {
    let repo = TestRepo::fixture("export-ci");
    let out = repo.run(&["export", "--to", "argo", "--image", "none"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(
        out.stderr.contains("Argo runs every task in a container")
            && out.stderr.contains("--image IMAGE"),
        "{out}"
    );
}

/// `export --state URL` writes jobs that run `bitops deploy --state URL` and move no outputs
/// artifacts (the YAML only: the store is `deploy --state`'s); a value that is not a URL is a
/// diagnostic, exit 2.
#[test]
fn export_with_a_state_store_passes_it_to_every_job() {
    let repo = TestRepo::fixture("export-ci");
    let url = "s3://ops-state/team-a";
    let out = repo.run(&[
        "export",
        "--to",
        "gitlab-ci",
        "--image",
        "none",
        "--state",
        url,
    ]);
    assert_eq!(out.code, 0, "{out}");
    let deploys: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  - bitops deploy"))
        .collect();
    assert_eq!(deploys.len(), NEEDS.len(), "{out}");
    for line in deploys {
        assert!(line.ends_with(&format!(" --state {url}")), "{line}");
    }
    assert!(
        out.stdout.contains("artifacts: false") && !out.stdout.contains("artifacts: true"),
        "{out}"
    );
    assert!(!out.stdout.contains(".bitops/outputs/"), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "bitops export --to gitlab-ci -C . --image none --state {url}"
        )),
        "the header's command does not regenerate the file: {out}"
    );

    let out = repo.run(&["export", "--to", "gitlab-ci", "--state", "ops-state/team-a"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("is not a state URL"), "{out}");
}
