//! The built-in terraform plugin driven through bitops against the real terraform binary
//! (offline: `terraform_data` resources, local state, `--in-place` so the state can be read).

use crate::harness::{require_tools, TestRepo};

const MAIN_TF: &str = r#"
resource "terraform_data" "a" { input = "a" }
resource "terraform_data" "b" { input = "b" }
output "a_input" { value = terraform_data.a.input }
"#;

fn repo(tool_config: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  terraform: {plugin: terraform}\n  after: {plugin: sh}\n",
    );
    repo.write("e/terraform/main.tf", MAIN_TF);
    repo.write("e/terraform/bitops.config.yaml", tool_config);
    repo.dep(
        "e",
        "after",
        "echo \"got a_input=$BITOPS_OUTPUT_E_TERRAFORM_A_INPUT\"",
    );
    repo
}

fn resources(repo: &TestRepo) -> Vec<String> {
    crate::harness::tf_state_resources(&repo.path("e/terraform/terraform.tfstate"))
}

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn targets_apply_only_the_targeted_resources() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo =
        repo("terraform:\n  cli:\n    stack-action: apply\n    targets: [terraform_data.a]\n");
    let out = repo.run(&[
        "deploy",
        "--in-place",
        "--progress",
        "plain",
        "--output",
        "stream",
        "--color",
        "never",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(resources(&repo), vec!["a".to_string()], "{out}");
    // The output of the applied resource reaches the dependent deployment.
    assert!(out.stderr.contains("got a_input=a"), "{out}");
}

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn plan_only_changes_nothing_and_apply_then_destroy_empties_the_state() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo = repo("terraform:\n  cli:\n    stack-action: plan\n");
    let out = repo.run(&[
        "deploy",
        "--in-place",
        "--only",
        "e/terraform",
        "--progress",
        "plain",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        resources(&repo).is_empty(),
        "stack-action plan applied something: {out}"
    );

    repo.write(
        "e/terraform/bitops.config.yaml",
        "terraform:\n  cli:\n    stack-action: apply\n",
    );
    let out = repo.run(&["deploy", "--in-place", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(resources(&repo), vec!["a".to_string(), "b".to_string()]);

    let out = repo.run(&["destroy", "--all", "--in-place", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(resources(&repo).is_empty(), "{out}");
}
