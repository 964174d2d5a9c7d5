//! Outputs between deployments: `$BITOPS_OUTPUT_FILE` → `BITOPS_OUTPUT_<ENV>_<DEP>_<KEY>` and
//! `$BITOPS_INPUTS_JSON` in every (transitive) dependent.

use crate::harness::TestRepo;

const RECORD: &str = "env | grep '^BITOPS_OUTPUT_' | grep -v '^BITOPS_OUTPUT_FILE=' | LC_ALL=C sort > \"$T_OUT/$BITOPS_ENVIRONMENT.env\"; \
                      cp \"$BITOPS_INPUTS_JSON\" \"$T_OUT/$BITOPS_ENVIRONMENT.json\"";

/// `net/tf` publishes outputs; `app` depends on the `net` environment, `web/d` on `app/d`
/// (so on `net/tf` only transitively), and `solo` on nothing.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.env("net", "deployments:\n  tf: {plugin: sh}\n");
    repo.dep(
        "net",
        "tf",
        "echo 'VPC_ID=vpc-123' >> \"$BITOPS_OUTPUT_FILE\"; echo 'db-url=\"postgres://db:5432\"' >> \"$BITOPS_OUTPUT_FILE\"",
    );
    repo.env(
        "app",
        "depends_on: [net]\ndeployments:\n  d: {plugin: sh}\n",
    );
    repo.dep(
        "app",
        "d",
        &format!("{RECORD}; echo 'PORT=8080' >> \"$BITOPS_OUTPUT_FILE\""),
    );
    repo.env(
        "web",
        "deployments:\n  d: {plugin: sh, depends_on: [app/d]}\n",
    );
    repo.dep("web", "d", RECORD);
    repo.env("solo", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("solo", "d", RECORD);
    repo
}

#[test]
fn outputs_reach_dependents_and_transitive_dependents() {
    let repo = repo();
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("app.env"),
        "BITOPS_OUTPUT_NET_TF_DB_URL=postgres://db:5432\nBITOPS_OUTPUT_NET_TF_VPC_ID=vpc-123\n"
    );
    let web = repo.read_out("web.env");
    assert!(
        web.contains("BITOPS_OUTPUT_NET_TF_VPC_ID=vpc-123\n"),
        "a transitive dependent misses net/tf's outputs: {web}"
    );
    assert!(web.contains("BITOPS_OUTPUT_APP_D_PORT=8080\n"), "{web}");
    assert_eq!(
        repo.read_out("solo.env"),
        "",
        "an independent deployment got outputs"
    );

    let json: serde_json::Value = serde_json::from_str(&repo.read_out("web.json")).unwrap();
    assert_eq!(json["net/tf"]["VPC_ID"], "vpc-123");
    assert_eq!(json["net/tf"]["db-url"], "postgres://db:5432");
    assert_eq!(json["app/d"]["PORT"], "8080");
    let solo: serde_json::Value = serde_json::from_str(&repo.read_out("solo.json")).unwrap();
    assert_eq!(solo, serde_json::json!({}));
}

#[test]
fn an_unselected_upstream_gives_its_last_successful_outputs() {
    let repo = repo();
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    std::fs::remove_file(repo.out_file("web.env")).unwrap();
    let out = repo.run(&["deploy", "--progress", "plain", "--only", "web/d"]);
    assert_eq!(out.code, 0, "{out}");
    let web = repo.read_out("web.env");
    assert!(
        web.contains("BITOPS_OUTPUT_NET_TF_VPC_ID=vpc-123\n")
            && web.contains("BITOPS_OUTPUT_APP_D_PORT=8080\n"),
        "{web}"
    );
}

#[test]
fn a_malformed_output_file_fails_the_deployment_and_names_the_line() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh}\n  next: {plugin: sh}\n",
    );
    repo.dep(
        "e",
        "d",
        "echo 'GOOD=1' >> \"$BITOPS_OUTPUT_FILE\"; echo 'not a pair' >> \"$BITOPS_OUTPUT_FILE\"",
    );
    repo.dep("e", "next", "true");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("line 2"), "{out}");
    assert!(!repo.trace().ran("e/next"));
}

#[test]
fn output_that_is_not_utf8_is_logged_not_fatal() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "e",
        "d",
        "printf 'caf\\xe9 \\xff\\xfe done\\n'; printf 'no newline at the end'",
    );
    let out = repo.run(&[
        "deploy",
        "--progress",
        "plain",
        "--output",
        "stream",
        "--color",
        "never",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let log = std::fs::read_to_string(repo.run_dirs()[0].join("logs/e__d.log")).unwrap();
    assert!(
        log.contains(" done") && log.contains("no newline at the end"),
        "{log}"
    );
    assert!(out.stderr.contains("[e/d] no newline at the end"), "{out}");
}
