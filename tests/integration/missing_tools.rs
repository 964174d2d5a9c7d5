//! Tools missing from PATH are named by `bitops plugins list` and `bitops plan` (a warning:
//! a plan runs nothing), not only by `deploy` (which refuses to start).

use crate::harness::TestRepo;

fn repo_with_tools() -> TestRepo {
    let repo = TestRepo::bare();
    repo.write("test/terraform/main.tf", "# nothing\n");
    repo.write(
        "test/ansible/bitops.config.yaml",
        "ansible:\n  cli:\n    main-playbook: playbook.yaml\n",
    );
    repo.write(
        "test/ansible/playbook.yaml",
        "- hosts: localhost\n  tasks: []\n",
    );
    repo
}

/// A PATH with nothing on it that a plugin runs.
fn empty_path(repo: &TestRepo) -> String {
    let dir = repo.tmp().join("empty-bin");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

#[test]
fn plugins_list_names_the_tools_missing_from_path() {
    let repo = repo_with_tools();
    let path = empty_path(&repo);
    let out = repo.run_env(&["plugins", "list"], &[("PATH", &path)]);
    assert_eq!(out.code, 0, "{out}");
    for (plugin, tool) in [
        ("helm", "helm"),
        ("ansible", "ansible-playbook"),
        ("terraform", "terraform"),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{plugin} ")))
            .unwrap_or_else(|| panic!("{plugin} not listed: {out}"));
        assert!(line.contains("no tool"), "{line}");
        assert!(
            out.stdout.contains(&format!("`{tool}` is not on PATH")),
            "{out}"
        );
    }
}

#[test]
fn plan_warns_about_tools_missing_from_path_and_deploy_refuses() {
    let repo = repo_with_tools();
    let path = empty_path(&repo);
    let out = repo.run_env(&["plan", "--color", "never"], &[("PATH", &path)]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("`terraform` is not on PATH")
            && out.stderr.contains("`ansible-playbook` is not on PATH"),
        "{out}"
    );
    assert!(out.stderr.contains("warning: 2 warnings"), "{out}");
    let out = repo.run_env(&["plan", "--strict"], &[("PATH", &path)]);
    assert_eq!(out.code, 2, "{out}");
    let out = repo.run_env(&["deploy", "--progress", "plain"], &[("PATH", &path)]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("`terraform` is not on PATH"), "{out}");
}
