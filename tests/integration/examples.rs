//! The example operations repos in `examples/` plan, and deploy for real when their tools are
//! installed (terraform; ansible-playbook for `ops-repo-ansible`).

use crate::harness::{copy_dir, TestRepo};

/// A copy of `examples/<name>`; the other examples sit beside it (`ops-repo-ansible` uses
/// `../ops-repo/_plugins/greeter`).
fn example(name: &str) -> TestRepo {
    let repo = TestRepo::bare();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    copy_dir(&examples.join(name), &repo.root);
    for other in ["ops-repo", "ops-repo-ansible"]
        .into_iter()
        .filter(|o| *o != name)
    {
        copy_dir(&examples.join(other), &repo.tmp().join(other));
    }
    for dir in [
        repo.root.clone(),
        repo.tmp().join("ops-repo"),
        repo.tmp().join("ops-repo-ansible"),
    ] {
        let _ = std::fs::remove_dir_all(dir.join(".bitops"));
    }
    repo
}

#[test]
fn examples_plan() {
    for name in ["ops-repo", "ops-repo-ansible"] {
        let repo = example(name);
        let plan = repo.plan_json(&[]);
        assert!(
            plan["nodes"].as_array().is_some_and(|n| n.len() >= 6),
            "{name}: {plan}"
        );
    }
}

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn example_ops_repo_deploys() {
    if !crate::harness::require_tools(&["terraform"]) {
        return;
    }
    let repo = example("ops-repo");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("OK: 8 succeeded"), "{out}");
    // The greeter in frontend-test received outputs from upstream deployments.
    let logs = repo
        .run_dirs()
        .pop()
        .unwrap()
        .join("logs/frontend-test__greeter.log");
    let log = std::fs::read_to_string(logs).unwrap();
    assert!(
        log.contains("BITOPS_OUTPUT_BACKEND_TEST_TERRAFORM_"),
        "terraform outputs reach a transitive dependent: {log}"
    );
}

#[test]
#[cfg_attr(
    any(missing_tool = "terraform", missing_tool = "ansible-playbook"),
    ignore = "terraform or ansible-playbook does not run here; CI fails instead of skipping"
)]
fn example_ops_repo_ansible_deploys() {
    if !crate::harness::require_tools(&["terraform", "ansible-playbook"]) {
        return;
    }
    let repo = example("ops-repo-ansible");
    let before = crate::harness::TestRepo::hash(&repo);
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("OK: 5 succeeded"), "{out}");
    crate::harness::assert_unchanged(&repo, &before);
}
