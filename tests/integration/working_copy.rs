//! The persistent working copy (`<state>/work`): the whole repo's layout, refreshed from the
//! repo each run, tool-made files (local terraform state) kept; and repo files bitops refuses to
//! touch (FIFOs, symlinks out of the repo) refused before anything runs.

use std::time::Duration;

use crate::harness::{require_tools, wait_bounded, TestRepo};

#[test]
fn a_hook_reaches_scripts_and_other_environments_by_relative_path() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.env("other", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "cat ../../other/notes.txt > \"$T_OUT/other\"");
    repo.dep("other", "d", "true");
    repo.write("other/notes.txt", "from another environment\n");
    repo.write_exec(
        "scripts/x.sh",
        "echo \"scripts ran in $(basename \"$PWD\")\"\n",
    );
    repo.write("scripts/lib/data.txt", "data\n");
    repo.hook(
        "e",
        "d",
        "before",
        "10-x.sh",
        "../../scripts/x.sh > \"$T_OUT/hook\" && cat ../../scripts/lib/data.txt >> \"$T_OUT/hook\"\n",
    );
    let out = repo.run(&["deploy", "-e", "e", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("hook"), "scripts ran in d\ndata\n");
    assert_eq!(repo.read_out("other"), "from another environment\n");
    // `scripts/` has neither a config nor a tool folder: it is not an environment.
    let plan = repo.plan_json(&[]);
    let ids: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(!ids.iter().any(|i| i.starts_with("scripts")), "{ids:?}");
}

#[test]
fn a_repo_level_deployments_list_does_not_make_support_folders_environments() {
    let repo = TestRepo::with_repo_config("deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo ran > \"$T_OUT/e\"");
    repo.write_exec("scripts/x.sh", "echo x\n");
    repo.write("modules/vpc/main.tf", "# a module\n");
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.contains("scripts"), "{out}");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("e").trim(), "ran");
}

#[test]
fn tool_files_persist_between_runs_and_fresh_starts_clean() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    // The deployment records whether the file it made last time is still there.
    repo.dep(
        "e",
        "d",
        "if [ -e made-by-tool ]; then echo kept; else echo new; fi >> \"$T_OUT/seen\"; \
         echo x > made-by-tool; cat repo-file.txt >> \"$T_OUT/seen\"",
    );
    repo.write("e/d/repo-file.txt", "v1\n");
    repo.write("e/d/removed.txt", "soon gone\n");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    let work = repo.path(".bitops/work/e/d");
    assert!(
        out.stderr
            .contains(&repo.path(".bitops/work").display().to_string()),
        "where the working copy lives is printed: {out}"
    );
    assert!(work.join("removed.txt").exists());
    repo.write("e/d/repo-file.txt", "v2, changed\n");
    std::fs::remove_file(repo.path("e/d/removed.txt")).unwrap();
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        !work.join("removed.txt").exists(),
        "gone from the repo, gone from the copy"
    );
    let out = repo.run(&["deploy", "--fresh", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("seen"),
        "new\nv1\nkept\nv2, changed\nnew\nv2, changed\n"
    );
}

#[test]
fn plan_run_takes_the_environment_lock() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    let lock = repo.path(".bitops/locks/e.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let holder = serde_json::json!({
        "pid": std::process::id(), "host": hostname(), "started": "now",
        "command": "bitops deploy", "run_id": "other"
    });
    std::fs::write(&lock, holder.to_string()).unwrap();
    let out = repo.run(&["plan", "--run", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 4, "{out}");
    assert!(
        out.stderr.contains("being deployed by another run"),
        "{out}"
    );
    std::fs::remove_file(&lock).unwrap();
    let out = repo.run(&["plan", "--run", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!lock.exists(), "the dry run released its lock");
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn state_resources(repo: &TestRepo) -> Vec<String> {
    crate::harness::tf_state_resources(&repo.path(".bitops/work/e/terraform/terraform.tfstate"))
}

#[test]
fn local_terraform_state_survives_deploy_plan_run_and_destroy_twice() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  terraform: {plugin: terraform}\n");
    repo.write(
        "e/terraform/main.tf",
        "resource \"terraform_data\" \"a\" { input = \"a\" }\nresource \"terraform_data\" \"b\" { input = \"b\" }\n",
    );
    repo.write(
        "e/terraform/bitops.config.yaml",
        "terraform:\n  cli:\n    stack-action: apply\n",
    );
    let before = repo.hash();
    for round in 1..=2 {
        let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
        assert_eq!(out.code, 0, "round {round}: {out}");
        assert_eq!(
            state_resources(&repo),
            vec!["a", "b"],
            "round {round}: {out}"
        );
        let state = std::fs::read(repo.path(".bitops/work/e/terraform/terraform.tfstate")).unwrap();
        let out = repo.run(&[
            "plan",
            "--run",
            "--detailed-exitcode",
            "--progress",
            "plain",
            "--color",
            "never",
        ]);
        assert_eq!(
            out.code, 0,
            "round {round}: nothing to change after a deploy: {out}"
        );
        assert_eq!(
            std::fs::read(repo.path(".bitops/work/e/terraform/terraform.tfstate")).unwrap(),
            state,
            "round {round}: a dry run left the state as it was"
        );
        let out = repo.run(&[
            "destroy",
            "-e",
            "e",
            "--progress",
            "plain",
            "--color",
            "never",
        ]);
        assert_eq!(out.code, 0, "round {round}: {out}");
        assert!(
            state_resources(&repo).is_empty(),
            "round {round}: destroy emptied the state: {out}"
        );
        // What terraform made stays between runs (the state file, its backup).
        assert!(repo
            .path(".bitops/work/e/terraform/terraform.tfstate.backup")
            .exists());
    }
    assert_eq!(repo.hash(), before, "the repo is never written");
}

/// Runs bitops on a repo holding a FIFO, bounded: a hang fails the test instead of the suite.
fn run_bounded(repo: &TestRepo, args: &[&str]) -> (i32, String) {
    let mut child = repo.spawn(args);
    let code = wait_bounded(&mut child, Duration::from_secs(30));
    (code, repo.stderr_so_far())
}

fn mkfifo(repo: &TestRepo, rel: &str) {
    let p = repo.path(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(
        &p,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
}

#[test]
fn a_fifo_anywhere_in_the_repo_is_a_located_error_before_anything_runs() {
    for place in [
        "e/d/pipe",
        "_default/d/pipe",
        "scripts/pipe",
        "e/bitops.config.yaml",
        "_default/d/bitops.config.yaml",
    ] {
        let repo = TestRepo::new();
        repo.dep("e", "d", "echo ran > \"$T_OUT/ran\"");
        if place != "e/bitops.config.yaml" {
            repo.env("e", "deployments:\n  d: {plugin: sh}\n");
        }
        repo.write("scripts/x.sh", "echo x\n");
        mkfifo(&repo, place);
        for cmd in [&["plan"][..], &["plan", "--run"], &["deploy"]] {
            let mut args = cmd.to_vec();
            args.extend(["--progress", "plain", "--color", "never"]);
            let (code, stderr) = run_bounded(&repo, &args);
            assert_eq!(code, 2, "{place} {cmd:?}: {stderr}");
            assert!(
                stderr.contains(place) && stderr.contains("FIFO"),
                "{place} {cmd:?}: the error names the file: {stderr}"
            );
            assert!(
                !repo.out_file("ran").exists(),
                "{place} {cmd:?}: something ran"
            );
        }
    }
}

#[test]
fn a_symlink_out_of_the_repo_is_refused() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo ran > \"$T_OUT/ran\"");
    std::os::unix::fs::symlink("/etc", repo.path("e/d/etc")).unwrap();
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("leading out of the ops repo"), "{out}");
}

#[test]
fn a_fifo_made_by_a_deployment_does_not_hang_bitops() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    // The output file bitops reads afterwards, and a FIFO left in the working copy.
    repo.dep(
        "e",
        "d",
        "[ -p made-fifo ] || mkfifo made-fifo; rm -f \"$BITOPS_OUTPUT_FILE\"; mkfifo \"$BITOPS_OUTPUT_FILE\"",
    );
    // It ends (the bound), and the deployment fails naming the FIFO instead of reading it.
    for round in 1..=2 {
        let (code, stderr) = run_bounded(&repo, &["deploy", "--progress", "plain"]);
        assert_eq!(code, 1, "round {round}: {stderr}");
        assert!(
            stderr.contains("is a FIFO (named pipe)"),
            "round {round}: {stderr}"
        );
    }
}

#[test]
fn concurrent_runs_on_different_environments_use_their_own_folders() {
    let repo = TestRepo::new();
    for (env, other) in [("a", "b"), ("b", "a")] {
        repo.env(env, "deployments:\n  d: {plugin: sh}\n");
        // Each waits until the other run is inside its deployment: both run at once.
        repo.dep(
            env,
            "d",
            &format!(
                "pwd -P > \"$T_OUT/{env}.pwd\"; echo mine > state.txt; \
                 waitfor \"$T_OUT/{other}.pwd\" 60 && [ \"$(cat state.txt)\" = mine ]"
            ),
        );
    }
    let mut first = repo.spawn(&["deploy", "-e", "a", "--progress", "plain"]);
    // A second bitops with its own output files: the harness's go to `out/bitops.*`.
    let mut second = std::process::Command::new(crate::harness::BIN)
        .args(["deploy", "-e", "b", "--progress", "plain", "-C"])
        .arg(&repo.root)
        .env("PATH", {
            let path = std::env::var("PATH").unwrap_or_default();
            format!("{}:{path}", repo.out_file("bin").display())
        })
        .env("T_OUT", &repo.out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(wait_bounded(&mut first, Duration::from_secs(90)), 0);
    assert_eq!(wait_bounded(&mut second, Duration::from_secs(90)), 0);
    let a = repo.read_out("a.pwd");
    let b = repo.read_out("b.pwd");
    assert!(a.trim().ends_with("/.bitops/work/a/d"), "{a}");
    assert!(b.trim().ends_with("/.bitops/work/b/d"), "{b}");
}

#[test]
fn a_plan_refuses_fresh_because_it_would_delete_local_state() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo kept > tool-made.txt");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    for args in [&["plan", "--fresh"][..], &["plan", "--run", "--fresh"]] {
        let out = repo.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(out.stderr.contains("--fresh"), "{out}");
    }
    assert!(repo.path(".bitops/work/e/d/tool-made.txt").exists());
}
