//! What a run covers when nothing (or something empty) selects it: an empty
//! `BITOPS_ENVIRONMENT`, `destroy` without a selection, a repo with nothing to run. Each is a
//! usage error (exit 2) that says what was searched, and nothing is written.

use crate::harness::TestRepo;

fn two_envs() -> TestRepo {
    let repo = TestRepo::new();
    for env in ["test", "production"] {
        repo.env(env, "deployments:\n  d: {plugin: sh}\n");
        repo.dep(env, "d", "echo ran");
    }
    repo
}

#[test]
fn an_empty_environment_variable_is_a_usage_error_not_everything() {
    let repo = two_envs();
    for var in ["BITOPS_ENVIRONMENT", "ENVIRONMENT"] {
        for value in ["", " "] {
            let out = repo.run_env(&["deploy", "--progress", "plain"], &[(var, value)]);
            assert_eq!(out.code, 2, "{var}={value:?}: {out}");
            assert!(
                out.stderr
                    .contains(&format!("{var} is set but names no environment")),
                "{out}"
            );
            assert!(repo.started().is_empty(), "something ran: {out}");
            assert!(
                !repo.path(".bitops").exists(),
                "the state folder was written"
            );
        }
    }
    // An explicit selection does not read the variable.
    let out = repo.run_env(
        &["plan", "-e", "test", "--format", "json"],
        &[("BITOPS_ENVIRONMENT", "")],
    );
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn destroy_needs_an_explicit_selection() {
    let repo = two_envs();
    let out = repo.run(&["destroy", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("`bitops destroy` needs an explicit selection")
            && out.stderr.contains("--all"),
        "{out}"
    );
    assert!(repo.started().is_empty(), "{out}");
    assert!(!repo.path(".bitops").exists());
    for args in [
        vec!["destroy", "-e", "test"],
        vec!["destroy", "--only", "test/d"],
        vec!["destroy", "--all"],
    ] {
        let mut all = args.clone();
        all.extend(["--progress", "plain"]);
        let out = repo.run(&all);
        assert_eq!(out.code, 0, "{args:?}: {out}");
    }
    let out = repo.run_env(
        &["destroy", "--progress", "plain"],
        &[("BITOPS_ENVIRONMENT", "test")],
    );
    assert_eq!(out.code, 0, "BITOPS_ENVIRONMENT names one: {out}");
    // `--all` with `-e` is a contradiction clap refuses.
    assert_eq!(repo.run(&["destroy", "--all", "-e", "test"]).code, 2);
}

#[test]
fn a_folder_without_environments_is_exit_2_with_a_hint_and_writes_nothing() {
    let repo = TestRepo::bare();
    repo.write("README.md", "not an ops repo\n");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("no environment folders in"), "{out}");
    assert!(out.stderr.contains("-C DIR"), "{out}");
    assert!(
        !repo.path(".bitops").exists(),
        "deploy wrote its state folder"
    );
}

#[test]
fn running_inside_an_environment_folder_suggests_its_parent() {
    // The "repo" is an environment folder: its top-level folders are tool folders.
    let repo = TestRepo::bare();
    repo.write("terraform/main.tf", "# nothing\n");
    repo.write("terraform/bitops.config.yaml", "terraform: {}\n");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    let parent = repo.root.parent().unwrap().display().to_string();
    assert!(
        out.stderr.contains("looks like an environment folder")
            && out.stderr.contains(&format!("-C {parent}")),
        "{out}"
    );
    assert!(!repo.path(".bitops").exists());
}

#[test]
fn a_selection_without_deployments_is_exit_2() {
    let repo = two_envs();
    repo.env("empty", "deployments: {}\n");
    let out = repo.run(&["deploy", "-e", "empty", "--progress", "plain"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("holds no deployment"), "{out}");
    assert!(!repo.path(".bitops").exists());
}

/// The BitOps-image way: the repo mounted at `/opt/bitops_deployment`, found without `-C`.
/// Run in a private mount namespace (a tmpfs over `/opt`), so nothing outside the test sees
/// it; that needs root and `unshare`, otherwise the test says why it did not run.
#[test]
fn in_the_bitops_container_a_run_needs_an_environment_named() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let unshare = std::path::Path::new("/usr/bin/unshare").exists();
    if !root || !unshare {
        eprintln!("skipped: needs root and unshare to mount a private /opt/bitops_deployment");
        return;
    }
    let repo = two_envs();
    let script = r#"set -e
mount -t tmpfs none /opt
mkdir /opt/bitops_deployment
cp -r "$SRC/." /opt/bitops_deployment/
cd /
set +e
"$BIN" plan --format json >/dev/null 2>"$OUT/none.err"; echo "none=$?" >> "$OUT/codes"
BITOPS_ENVIRONMENT=test "$BIN" plan --format json >/dev/null 2>"$OUT/named.err"; echo "named=$?" >> "$OUT/codes"
"$BIN" plan --all --format json >/dev/null 2>"$OUT/all.err"; echo "all=$?" >> "$OUT/codes"
"#;
    let out_dir = repo.tmp().join("container");
    std::fs::create_dir_all(&out_dir).unwrap();
    let status = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SRC", &repo.root)
        .env("BIN", crate::harness::BIN)
        .env("OUT", &out_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let codes = std::fs::read_to_string(out_dir.join("codes")).unwrap();
    let err = std::fs::read_to_string(out_dir.join("none.err")).unwrap();
    assert!(codes.contains("none=2\n"), "{codes}\n{err}");
    assert!(
        err.contains(
            "a run in the BitOps container (/opt/bitops_deployment) needs an explicit selection"
        ),
        "{err}"
    );
    assert!(
        codes.contains("named=0\n") && codes.contains("all=0\n"),
        "{codes}"
    );
}
