//! Things checked by other tools: the Dockerfile (hadolint), the hand-written CI examples
//! (the GitHub and GitLab schemas), and helm's exact command lines (no helm binary can be had
//! here, so they are checked through `plan --format json` instead of a real run).

use std::process::Command;

use crate::harness::{require_tools, TestRepo};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
#[cfg_attr(
    missing_tool = "hadolint",
    ignore = "hadolint does not run here; CI fails instead of skipping"
)]
fn dockerfile_passes_hadolint() {
    if !require_tools(&["hadolint"]) {
        return;
    }
    let out = Command::new("hadolint")
        .arg(format!("{ROOT}/Dockerfile"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
#[cfg_attr(
    missing_tool = "check-jsonschema",
    ignore = "check-jsonschema does not run here; CI fails instead of skipping"
)]
fn ci_examples_validate_against_their_schemas() {
    if !require_tools(&["check-jsonschema"]) {
        return;
    }
    for (file, schema) in [
        ("github-actions.yml", "vendor.github-workflows"),
        ("gitlab-ci.yml", "vendor.gitlab-ci"),
    ] {
        let out = Command::new("check-jsonschema")
            .args(["--builtin-schema", schema])
            .arg(format!("{ROOT}/examples/ci/{file}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// helm is not installable here: its commands are checked as the plan shows them, which is
/// exactly what `deploy` runs (both come from the same `Prepared` steps).
#[test]
fn helm_commands_as_planned() {
    let repo = TestRepo::new();
    repo.env("k8s", "deployments:\n  helm: {plugin: helm}\n");
    repo.write(
        "k8s/helm/web/bitops.config.yaml",
        "helm:\n  cli:\n    namespace: web\n    timeout: 120s\n    atomic: true\n  options:\n    release-name: web\n    k8s:\n      fetch:\n        kubeconfig: false\n",
    );
    repo.write(
        "k8s/helm/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    repo.write("k8s/helm/web/values.yaml", "replicas: 2\n");
    repo.write("k8s/helm/web/values-files/extra.yaml", "debug: false\n");
    let plan = repo.plan_json(&[]);
    let node = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "k8s/helm")
        .expect("helm node");
    let commands: Vec<String> = node["invocation"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let all = commands.join("\n");
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("helm dependency update")),
        "{all}"
    );
    let upgrade = commands
        .iter()
        .find(|c| c.starts_with("helm upgrade"))
        .unwrap_or_else(|| panic!("no upgrade:\n{all}"));
    for part in [
        "--install",
        "web",
        "--namespace",
        "--create-namespace",
        "--atomic",
        "--timeout",
        "values.yaml",
        "extra.yaml",
    ] {
        assert!(upgrade.contains(part), "`{part}` missing from: {upgrade}");
    }
    // values.yaml comes before the values-files, as in BitOps' order.
    assert!(
        upgrade.find("values.yaml").unwrap() < upgrade.find("extra.yaml").unwrap(),
        "{upgrade}"
    );
}
