//! Failures: fail-fast and keep-going, timeouts that kill whole process trees, retries.

use crate::harness::{assert_no_survivors, TestRepo};

/// ```text
/// x/fail ──▶ x/after            (implicit order)
///   x ─────▶ w/d                (w depends on environment x)
/// y/slow ──▶ z/later            (z/later depends on y/slow only)
/// ```
/// `y/slow` runs alongside `x/fail` and finishes only once bitops has printed x/fail's failure,
/// so `z/later` becomes ready strictly after the failure was seen.
fn failing_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.env(
        "x",
        "deployments:\n  fail: {plugin: sh}\n  after: {plugin: sh}\n",
    );
    repo.dep("x", "fail", "echo 'about to fail'; exit 3");
    repo.dep("x", "after", "true");
    repo.env("w", "depends_on: [x]\ndeployments:\n  d: {plugin: sh}\n");
    repo.dep("w", "d", "true");
    repo.env("y", "deployments:\n  slow: {plugin: sh}\n");
    repo.dep(
        "y",
        "slow",
        "waitfor \"$T_OUT/bitops.stderr\" 60 'x/fail failed'",
    );
    repo.env(
        "z",
        "deployments:\n  later: {plugin: sh, depends_on: [y/slow]}\n",
    );
    repo.dep("z", "later", "true");
    repo
}

fn summary_line<'a>(out: &'a str, id: &str) -> &'a str {
    let summary = out
        .rsplit_once("\nSummary\n")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no summary in:\n{out}"));
    summary
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .unwrap_or_else(|| panic!("{id} not in the summary:\n{summary}"))
}

fn status_of(out: &str, id: &str) -> String {
    let line = summary_line(out, id);
    let words: Vec<&str> = line.split_whitespace().collect();
    // `✔ id status …`; two-word labels (`not run`, `timed out`) are kept whole.
    match (words.get(2), words.get(3)) {
        (Some(&"not"), Some(&"run")) => "not run".into(),
        (Some(&"timed"), Some(&"out")) => "timed out".into(),
        (Some(s), _) => s.to_string(),
        _ => panic!("bad summary line {line:?}"),
    }
}

#[test]
fn keep_going_runs_independent_branches_and_skips_dependents() {
    let repo = failing_repo();
    let out = repo.run(&[
        "deploy",
        "--keep-going",
        "--progress",
        "plain",
        "--color",
        "never",
    ]);
    assert_eq!(out.code, 1, "{out}");
    let t = repo.trace();
    assert_eq!(t.span("x/fail").rc, Some(3));
    assert!(!t.ran("w/d"), "a dependent of the failure ran: {t:?}");
    // The implicit order inside an environment is an order, not a need (BitOps).
    assert_eq!(t.span("x/after").rc, Some(0), "{t:?}");
    assert_eq!(t.span("y/slow").rc, Some(0));
    assert_eq!(
        t.span("z/later").rc,
        Some(0),
        "an independent branch stopped: {t:?}"
    );
    assert_eq!(status_of(&out.stderr, "x/fail"), "failed");
    assert_eq!(status_of(&out.stderr, "x/after"), "succeeded");
    assert_eq!(status_of(&out.stderr, "w/d"), "skipped");
    assert_eq!(status_of(&out.stderr, "z/later"), "succeeded");
    // The failure's log tail is in the summary.
    assert!(out.stderr.contains("about to fail"), "{out}");
}

#[test]
fn fail_fast_starts_nothing_new_but_lets_running_deployments_finish() {
    let repo = failing_repo();
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 1, "{out}");
    let t = repo.trace();
    assert_eq!(t.span("x/fail").rc, Some(3));
    assert_eq!(
        t.span("y/slow").rc,
        Some(0),
        "a running deployment was not allowed to finish: {t:?}"
    );
    assert!(
        !t.ran("z/later"),
        "a deployment started after the failure: {t:?}"
    );
    assert!(!t.ran("x/after") && !t.ran("w/d"));
    assert_eq!(status_of(&out.stderr, "z/later"), "not run");
    assert_eq!(status_of(&out.stderr, "y/slow"), "succeeded");
    // Log files are made ahead of the deployments; the ones that never started leave none.
    let logs = repo.run_dirs()[0].join("logs");
    assert!(logs.join("x__fail.log").exists() && logs.join("y__slow.log").exists());
    for never in ["z__later.log", "x__after.log", "w__d.log"] {
        assert!(!logs.join(never).exists(), "{never} was left behind");
    }
    // The same from the repo config, and from BitOps' variable.
    for (vars, config) in [
        (vec![], "fail_fast: true\n"),
        (vec![("BITOPS_FAST_FAIL", "true")], "fail_fast: false\n"),
    ] {
        let repo = failing_repo();
        let mut text = std::fs::read_to_string(repo.path("bitops.config.yaml")).unwrap();
        text.push_str(&format!("  {config}"));
        repo.write("bitops.config.yaml", &text);
        let out = repo.run_env(&["deploy", "--progress", "plain"], &vars);
        assert_eq!(out.code, 1, "{out}");
        assert!(!repo.trace().ran("z/later"), "{config} {vars:?}: {out}");
    }
}

#[test]
fn fail_fast_false_in_config_keeps_going() {
    let repo = failing_repo();
    let mut text = std::fs::read_to_string(repo.path("bitops.config.yaml")).unwrap();
    text.push_str("  fail_fast: false\n");
    repo.write("bitops.config.yaml", &text);
    let out = repo.run(&["deploy", "--progress", "plain"]);
    // BitOps exited 0 here; bitops reports the failure.
    assert_eq!(out.code, 1, "{out}");
    let t = repo.trace();
    assert_eq!(t.span("z/later").rc, Some(0), "{out}");
    // As in BitOps: the next deployment of the environment runs after the failed one ended.
    assert_eq!(t.span("x/after").rc, Some(0), "{out}");
    assert!(
        t.span("x/fail").end.unwrap() <= t.span("x/after").start,
        "{t:?}"
    );
    // A declared dependency still needs success: w depends on environment x.
    assert!(!t.ran("w/d"), "{t:?}");
    assert_eq!(status_of(&out.stderr, "w/d"), "skipped");
}

#[test]
fn timeout_kills_a_hanging_hook_and_its_background_grandchild() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh, timeout: 2s}\n");
    repo.dep(
        "e",
        "d",
        "echo the plugin must not run; touch \"$T_OUT/plugin-ran\"",
    );
    // The grandchild ignores SIGTERM, so only the SIGKILL after the grace period ends it.
    repo.hook(
        "e",
        "d",
        "before",
        "10-hang.sh",
        "#!/bin/bash\nmkdir -p \"$T_OUT/pids\"\n\
         ( trap '' TERM; exec sleep 1000 ) &\n\
         echo $! > \"$T_OUT/pids/grandchild\"\n\
         echo $$ > \"$T_OUT/pids/hook\"\n\
         echo hook hanging\n\
         while :; do sleep 0.1; done\n",
    );
    let out = repo.run(&[
        "deploy",
        "--grace",
        "1s",
        "--progress",
        "plain",
        "--color",
        "never",
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(status_of(&out.stderr, "e/d"), "timed out", "{out}");
    assert!(!repo.out_file("plugin-ran").exists());
    assert_no_survivors(&repo, &["hook", "grandchild"]);
}

#[test]
fn retries_rerun_a_failed_deployment() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh, retries: 1}\n");
    // The failed attempt's outputs are not the deployment's: only the attempt that succeeded
    // reaches its dependents.
    repo.dep(
        "e",
        "d",
        "n=$(cat \"$T_OUT/count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$T_OUT/count\"; echo attempt $n; \
         if [ $n -lt 2 ]; then echo STALE=1 >> \"$BITOPS_OUTPUT_FILE\"; exit 1; fi; echo FRESH=$n >> \"$BITOPS_OUTPUT_FILE\"",
    );
    repo.env("c", "depends_on: [e]\ndeployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "c",
        "d",
        "env | grep '^BITOPS_OUTPUT_E_D_' | sort > \"$T_OUT/seen\"",
    );
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("count").trim(), "2");
    assert_eq!(repo.read_out("seen"), "BITOPS_OUTPUT_E_D_FRESH=2\n");
    let t = repo.trace();
    assert_eq!(t.starts, vec!["e/d", "e/d", "c/d"]);
    assert_eq!(t.span("e/d").rc, Some(0));
    assert_eq!(status_of(&out.stderr, "e/d"), "succeeded");
    assert!(
        summary_line(&out.stderr, "e/d").contains("2 attempts"),
        "{out}"
    );
    // Without retries the same deployment fails once.
    let repo2 = TestRepo::new();
    repo2.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo2.dep("e", "d", "exit 1");
    let out = repo2.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(repo2.trace().starts.len(), 1);
}

#[test]
fn the_working_copy_is_kept_and_printed_after_success_and_failure() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo made > made-here.txt");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let runs = repo.run_dirs();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].join("logs/e__d.log").exists(), "logs are kept");
    let kept = |out: &crate::harness::RunOutput| {
        let line = out
            .stderr
            .lines()
            .find(|l| l.starts_with("working copy ("))
            .unwrap_or_else(|| panic!("the working copy is not printed: {out}"));
        std::path::PathBuf::from(line.rsplit(": ").next().unwrap().trim())
    };
    assert_eq!(kept(&out), repo.path(".bitops/work"));
    assert!(repo.path(".bitops/work/e/d/made-here.txt").exists());

    repo.dep("e", "d", "echo again > made-here.txt; exit 1");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 1, "{out}");
    let path = kept(&out);
    assert_eq!(
        std::fs::read_to_string(path.join("e/d/made-here.txt")).unwrap(),
        "again\n"
    );
    assert!(!repo.path("e/d/made-here.txt").exists());
}

#[test]
fn a_second_run_on_a_locked_environment_fails_at_once_naming_the_holder() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "e",
        "d",
        "touch \"$T_OUT/ready\"; waitfor \"$T_OUT/release\" 60",
    );
    let mut first = repo.spawn(&["deploy", "--progress", "plain"]);
    crate::harness::poll(
        std::time::Duration::from_secs(60),
        "the first run to start",
        || repo.out_file("ready").exists().then_some(()),
    );
    let second = std::process::Command::new(crate::harness::BIN)
        .args(["deploy", "--progress", "plain", "-C"])
        .arg(&repo.root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    std::fs::write(repo.out_file("release"), "").unwrap();
    let code = crate::harness::wait_bounded(&mut first, std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    assert_eq!(code, 0, "{}", repo.stderr_so_far());
    assert_eq!(
        repo.trace().starts,
        vec!["e/d"],
        "the second run started a deployment"
    );
}

#[test]
fn resume_reruns_only_what_did_not_succeed() {
    let repo = failing_repo();
    // x/fail fails until `out/fixed` exists.
    repo.dep(
        "x",
        "fail",
        "[ -e \"$T_OUT/fixed\" ] || { echo 'about to fail'; exit 3; }",
    );
    let out = repo.run(&["deploy", "--keep-going", "--progress", "plain"]);
    assert_eq!(out.code, 1, "{out}");
    std::fs::write(repo.out_file("fixed"), "").unwrap();
    std::fs::remove_file(repo.out_file("trace")).unwrap();
    let out = repo.run(&["deploy", "--resume", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let mut rerun = repo.trace().starts;
    rerun.sort();
    // x/after only waited for x/fail to finish: it ran (and succeeded) in the first run.
    assert_eq!(rerun, vec!["w/d", "x/fail"], "{out}");
}

#[test]
fn the_run_deadline_stops_running_deployments_and_starts_nothing_new() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  long: {plugin: sh}\n  next: {plugin: sh}\n",
    );
    repo.dep(
        "e",
        "long",
        "mkdir -p \"$T_OUT/pids\"; echo $$ > \"$T_OUT/pids/inner\"; sleep 1000 & echo $! > \"$T_OUT/pids/background\"; \
         while :; do sleep 0.1; done",
    );
    repo.dep("e", "next", "true");
    let out = repo.run(&[
        "deploy",
        "--deadline",
        "1s",
        "--grace",
        "1s",
        "--progress",
        "plain",
        "--color",
        "never",
    ]);
    assert_ne!(out.code, 0, "{out}");
    // Stopped by the deadline: a timeout, not an interruption by the user.
    assert_eq!(status_of(&out.stderr, "e/long"), "timed out", "{out}");
    assert!(!repo.trace().ran("e/next"), "{out}");
    assert!(out.stderr.contains("deadline"), "{out}");
    assert_no_survivors(&repo, &["inner", "background"]);
}

#[test]
fn resume_continues_the_last_run_of_its_own_command() {
    let repo = failing_repo();
    repo.dep(
        "x",
        "fail",
        "[ -e \"$T_OUT/fixed\" ] || { echo 'about to fail'; exit 3; }",
    );
    let out = repo.run(&["deploy", "--keep-going", "--progress", "plain"]);
    assert_eq!(out.code, 1, "{out}");
    // A newer run of another command: the `sh` plugin has no stack action, so this destroy
    // runs nothing and its journal has nothing left to do.
    let out = repo.run(&["destroy", "--all", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let mut dirs = repo.run_dirs();
    dirs.sort();
    let destroy_id = dirs
        .last()
        .and_then(|d| d.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Named explicitly, the destroy run is refused for a deploy, naming the command to use.
    let out = repo.run(&["deploy", "--resume", &destroy_id]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("was a `bitops destroy` run")
            && out
                .stderr
                .contains(&format!("bitops destroy --resume {destroy_id}")),
        "{out}"
    );
    // Without an id, `--resume` passes over it to the failed deploy.
    std::fs::write(repo.out_file("fixed"), "").unwrap();
    std::fs::remove_file(repo.out_file("trace")).unwrap();
    let out = repo.run(&["deploy", "--resume", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let mut rerun = repo.trace().starts;
    rerun.sort();
    assert_eq!(rerun, vec!["w/d", "x/fail"], "{out}");
}
