//! BitOps' documentation example repos, reproduced as fixtures (tests/fixtures/bitops-docs/):
//! keys BitOps v1/v2 docs used and v2 ignored are warnings naming the v2 key, mapped to it
//! where it exists; `--strict` makes them errors; a typo stays an error; a repo BitOps itself
//! refused (required keys missing) stays a located error.

use crate::harness::{copy_dir, TestRepo};

fn docs_example(name: &str) -> TestRepo {
    let repo = TestRepo::bare();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bitops-docs")
        .join(name);
    copy_dir(&src, &repo.root);
    repo
}

/// `(fixture, legacy keys warned about)`: every one plans with exit 0.
const PLANS: &[(&str, &[&str])] = &[
    (
        "tf-v1-options",
        &[
            "terraform.options.command",
            "terraform.options.version",
            "terraform.options.fetch-kubeconfig",
        ],
    ),
    ("tf-init-upgrade", &["terraform.options.command"]),
    (
        "tf-destroy-v1",
        &[
            "terraform.options.command",
            "terraform.options.version",
            "terraform.options.fetch-kubeconfig",
        ],
    ),
    (
        "helm-v1-kubeconfig",
        &[
            "helm.options.kubeconfig.fetch.enabled",
            "helm.options.kubeconfig.fetch.cluster-name",
        ],
    ),
    (
        "cfn-v1-keys",
        &[
            "cloudformation.cli.cfn-stack-action",
            "cloudformation.options.cfn-create-bucket",
            "cloudformation.options.cfn-s3-bucket",
            "cloudformation.options.cfn-s3-prefix",
            "cloudformation.options.cfn-files.parameters.enabled",
        ],
    ),
];

#[test]
fn tool_settings_outside_a_tool_folder_are_a_warning_not_silence() {
    let repo = docs_example("tf-gcp-root-config");
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("`terraform:` in `bitops.config.yaml` is not read")
            && out.stderr.contains("tool settings belong in"),
        "{out}"
    );
    assert_eq!(repo.run(&["plan", "--strict"]).code, 2);
}

#[test]
fn bitops_docs_examples_plan_with_warnings_naming_the_v2_key() {
    for (name, keys) in PLANS {
        let repo = docs_example(name);
        let out = repo.run(&["plan", "--color", "never"]);
        assert_eq!(out.code, 0, "{name}: {out}");
        for key in *keys {
            assert!(
                out.stderr.contains(&format!("`{key}` in `")),
                "{name}: no warning for {key}: {out}"
            );
        }
        assert_eq!(
            out.stderr.matches("bitops::config::legacy_key").count(),
            keys.len(),
            "{name}: {out}"
        );
        // --strict: the same warnings are errors, and the plan is refused.
        let strict = repo.run(&["plan", "--strict", "--color", "never"]);
        assert_eq!(strict.code, 2, "{name}: {strict}");
        assert!(strict.stderr.contains("because of --strict"), "{strict}");
    }
}

fn env_of(plan: &serde_json::Value, id: &str, var: &str) -> Option<String> {
    plan["nodes"].as_array()?.iter().find(|n| n["id"] == id)?["invocation"]["env"][var]
        .as_str()
        .map(str::to_string)
}

#[test]
fn legacy_keys_are_read_from_their_v2_place() {
    let plan = docs_example("tf-v1-options").plan_json(&[]);
    assert_eq!(
        env_of(&plan, "test/terraform", "TERRAFORM_COMMAND").as_deref(),
        Some("apply"),
        "options.command → cli.stack-action: {plan}"
    );
    // A v1 `command: destroy` never makes deploy destroy.
    let plan = docs_example("tf-destroy-v1").plan_json(&[]);
    assert_eq!(
        env_of(&plan, "azure/terraform", "TERRAFORM_COMMAND").as_deref(),
        Some("plan"),
        "{plan}"
    );
    let plan = docs_example("cfn-v1-keys").plan_json(&[]);
    assert_eq!(
        env_of(&plan, "test/cloudformation", "CFN_PARAMS_FLAG").as_deref(),
        Some("true"),
        "parameters.enabled → template-param-flag: {plan}"
    );
    assert_eq!(
        env_of(&plan, "test/cloudformation", "CFN_TEMPLATE_S3_BUCKET").as_deref(),
        Some("docs-bucket"),
        "{plan}"
    );
}

#[test]
fn a_repo_bitops_refused_stays_a_located_error() {
    let repo = docs_example("cfn-multiregion");
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("`cloudformation.options.cfn-stack-name` is required")
            && out
                .stderr
                .contains("multi/cloudformation/bitops.config.yaml"),
        "{out}"
    );
    // Its legacy keys are still explained.
    assert!(
        out.stderr
            .contains("`cloudformation.multi-regional-target-regions` in `"),
        "{out}"
    );
}

#[test]
fn a_typo_is_still_an_error_with_did_you_mean() {
    let repo = docs_example("tf-v1-options");
    repo.write(
        "test/terraform/bitops.config.yaml",
        "terraform:\n  cli:\n    stack-acton: apply\n",
    );
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("did you mean `stack-action`?"), "{out}");
}
