//! `plan --run` results for machines and reviewers (JSON, Markdown, `$GITHUB_STEP_SUMMARY`),
//! kept as a report `bitops report` shows; `--format json` errors as JSON; the help texts.

use crate::harness::{require_tools, TestRepo};

/// Two terraform deployments (offline `terraform_data`): `add` would create two resources,
/// `broken` fails its plan.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.env("app", "deployments:\n  terraform: {plugin: terraform}\n");
    repo.write(
        "app/terraform/main.tf",
        "resource \"terraform_data\" \"web\" { input = \"w\" }\nresource \"terraform_data\" \"db\" { input = \"d\" }\n",
    );
    repo.env("broken", "deployments:\n  terraform: {plugin: terraform}\n");
    repo.write(
        "broken/terraform/main.tf",
        "resource \"terraform_data\" \"x\" { input = var.missing }\n",
    );
    repo
}

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn plan_run_as_json_markdown_and_step_summary() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo = repo();
    let summary = repo.tmp().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = repo.run_env(
        &["plan", "--run", "--format", "json", "--detailed-exitcode"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 1, "an error wins over changes:\n{out}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{out}"));
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["outcome"], "errors");
    assert_eq!(doc["exit_code"], 1);
    let deps = doc["deployments"].as_array().unwrap();
    let find = |id: &str| {
        deps.iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {doc:#}"))
    };
    let app = find("app/terraform");
    assert_eq!(app["result"], "changes", "{app:#}");
    assert_eq!(app["changed"], true);
    assert_eq!(
        (app["add"].as_u64(), app["destroy"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(app["exit_code"], 0, "a dry run that succeeded");
    let broken = find("broken/terraform");
    assert_eq!(broken["result"], "error", "{broken:#}");
    assert!(broken["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(!out.stdout.contains('\x1b'));

    // The same as Markdown, appended to the step summary.
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n"),
        "appended, not replaced: {md}"
    );
    assert!(
        md.contains("### bitops plan --run: some dry runs failed"),
        "{md}"
    );
    assert!(
        md.contains("| `app/terraform` | 🟡 changes | 2 to add, 0 to change, 0 to destroy |"),
        "{md}"
    );
    assert!(md.contains("# terraform_data.web will be created"), "{md}");
    assert!(md.contains("<details>") && md.contains("</details>"));

    // `--format markdown` prints it; this run kept a report `bitops report` shows.
    let out = repo.run(&["plan", "--run", "--format", "markdown", "-e", "app"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .starts_with("### bitops plan --run: changes found"),
        "{out}"
    );
    let shown = repo.run(&["report"]);
    assert_eq!(shown.code, 0, "{shown}");
    assert!(
        shown.stdout.contains("bitops plan") && shown.stdout.contains("app/terraform"),
        "{shown}"
    );
    assert!(!shown.all().contains("did not finish"), "{shown}");
}

#[test]
fn ci_examples_use_the_plan_formats() {
    let root = env!("CARGO_MANIFEST_DIR");
    let github = std::fs::read_to_string(format!("{root}/examples/ci/github-actions.yml")).unwrap();
    assert!(github.contains("plan --run --detailed-exitcode --format markdown"));
    let gitlab = std::fs::read_to_string(format!("{root}/examples/ci/gitlab-ci.yml")).unwrap();
    assert!(gitlab.contains("--format json"));
}

#[test]
fn json_errors_are_a_json_document() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh}\n  x: {plugin: sh, depends_on: [nope]}\n",
    );
    repo.dep("e", "d", "true");
    repo.dep("e", "x", "true");
    for args in [
        &["plan", "--format", "json"][..],
        &["plan", "--run", "--format", "json"][..],
    ] {
        let out = repo.run(args);
        assert_eq!(out.code, 2, "{out}");
        let doc: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{out}"));
        let problems = doc["error"]["problems"].as_array().expect("problems");
        assert!(!problems.is_empty(), "{doc:#}");
        assert!(
            problems[0]["message"].as_str().unwrap().contains("nope"),
            "{doc:#}"
        );
        assert_eq!(doc["error"]["exit_code"], 2);
        assert!(
            out.stderr.contains("nope"),
            "people still get the diagnostic: {out}"
        );
    }
    // A format that does not go with --run is a usage error, as JSON too where asked.
    let out = repo.run(&["plan", "--format", "markdown"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("needs --run"), "{out}");
}

#[test]
fn help_texts_say_what_each_option_does() {
    let repo = TestRepo::new();
    for cmd in [
        &["report", "--help"][..],
        &["plugins", "list", "--help"][..],
    ] {
        let out = repo.run(cmd);
        assert_eq!(out.code, 0, "{out}");
        for line in out.stdout.lines() {
            let t = line.trim_start();
            if t.starts_with("-C, --ops-repo") || t.starts_with("--state-dir") {
                assert!(
                    t.split("  ").filter(|p| !p.trim().is_empty()).count() >= 2,
                    "no help text: {line}"
                );
            }
        }
        assert!(!out.stdout.contains("BITOPS_STATE_DIR=]"), "{out}");
    }
    let out = repo.run_env(&["report", "--help"], &[("BITOPS_STATE_DIR", "")]);
    assert!(!out.stdout.contains("BITOPS_STATE_DIR=]"), "{out}");
    let top = repo.run(&["--help"]);
    assert!(
        top.stdout.contains("completions") && top.stdout.contains("man "),
        "{top}"
    );
    let plan = repo.run(&["plan", "--help"]);
    let heading = plan
        .stdout
        .find("With --run:")
        .expect("a With --run section");
    for flag in ["--detailed-exitcode", "--jobs", "--timeout", "--output"] {
        let at = plan.stdout.find(flag).unwrap_or_else(|| panic!("{flag}"));
        assert!(at > heading, "{flag} is not under With --run:\n{plan}");
    }
}
