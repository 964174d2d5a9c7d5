//! Declared inputs (`inputs: {name: <env>/<deployment>.<output>}`): the implied edge, the value
//! reaching each kind of plugin natively, the plan's wiring, and every way to get one wrong.

use crate::harness::{require_tools, TestRepo};

const RUN: &[&str] = &[
    "deploy",
    "--progress",
    "plain",
    "--output",
    "stream",
    "--color",
    "never",
];

/// `a/p` publishes `URL` (and `OTHER`); `b/c` declares `api_url: a/p.<output>` and records
/// `$BITOPS_INPUT_API_URL`. No `depends_on` anywhere: only the input orders them.
fn producer_consumer(output: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.env("a", "deployments:\n  p: {plugin: sh}\n");
    repo.dep(
        "a",
        "p",
        "echo 'URL=http://api.internal:8080' >> \"$BITOPS_OUTPUT_FILE\"; echo 'OTHER=1' >> \"$BITOPS_OUTPUT_FILE\"",
    );
    repo.env(
        "b",
        &format!("deployments:\n  c:\n    plugin: sh\n    inputs:\n      api_url: a/p.{output}\n"),
    );
    repo.dep("b", "c", "echo \"$BITOPS_INPUT_API_URL\" > \"$T_OUT/got\"");
    repo
}

#[test]
fn an_input_reaches_a_bitops_format_plugin_and_implies_a_success_edge() {
    let repo = producer_consumer("URL");
    let plan = repo.plan_json(&[]);
    let c = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "b/c")
        .unwrap()
        .clone();
    assert!(
        c["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "a/p" && d["kind"] == "success"),
        "{c}"
    );
    // Before any deploy the value is not known: the wiring is shown, the value is null.
    assert_eq!(c["invocation"]["inputs"][0]["from"], "a/p.URL", "{c}");
    assert!(c["invocation"]["inputs"][0]["value"].is_null(), "{c}");
    assert_eq!(
        c["invocation"]["env"]["BITOPS_INPUT_API_URL"], "<a/p.URL>",
        "{c}"
    );

    let out = repo.run(RUN);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("got").trim(), "http://api.internal:8080");
    let t = repo.trace();
    assert!(t.after("a/p", "b/c"), "{out}");

    // Now the plan shows the producer's last value.
    let text = repo.run(&["plan", "--color", "never"]);
    assert!(
        text.stdout
            .contains("api_url <- a/p.URL = http://api.internal:8080"),
        "{text}"
    );
}

#[test]
fn an_unselected_producer_gives_its_last_outputs_and_a_dry_run_too() {
    let repo = producer_consumer("URL");
    assert_eq!(repo.run(RUN).code, 0);
    std::fs::remove_file(repo.out_file("got")).unwrap();
    let mut args = RUN.to_vec();
    args.extend(["--only", "b/c"]);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("got").trim(), "http://api.internal:8080");
}

#[test]
fn a_missing_output_fails_the_dependent_before_it_starts() {
    let repo = producer_consumer("api_url");
    let out = repo.run(RUN);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.all()
            .contains("input `api_url`: a/p has no output `api_url` (its outputs: OTHER, URL)"),
        "{out}"
    );
    assert!(repo.started().contains("a/p"), "{out}");
    assert!(
        !repo.started().contains("b/c"),
        "the dependent started: {out}"
    );
}

#[test]
fn input_values_are_masked_in_the_plan() {
    let repo = TestRepo::with_repo_config(
        "logging:\n  masks:\n    - search: 'hunter2'\n      replace: '*****'\n",
    );
    repo.env("a", "deployments:\n  p: {plugin: sh}\n");
    repo.dep("a", "p", "echo 'PW=hunter2' >> \"$BITOPS_OUTPUT_FILE\"");
    repo.env(
        "b",
        "deployments:\n  c:\n    plugin: sh\n    inputs:\n      pw: a/p.PW\n",
    );
    repo.dep(
        "b",
        "c",
        "test \"$BITOPS_INPUT_PW\" = hunter2 && touch \"$T_OUT/ok\"",
    );
    let out = repo.run(RUN);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        repo.out_file("ok").exists(),
        "the tool gets the real value: {out}"
    );
    let plan = repo.run(&["plan", "--color", "never"]);
    assert!(plan.stdout.contains("pw <- a/p.PW = *****"), "{plan}");
    let json = repo.run(&["plan", "--format", "json"]);
    assert!(!json.stdout.contains("hunter2"), "{json}");
    assert!(!plan.all().contains("hunter2"), "{plan}");
}

#[test]
fn wrong_references_are_located_errors_with_did_you_mean() {
    let repo = TestRepo::new();
    repo.env("backend", "deployments:\n  terraform: {plugin: sh}\n");
    repo.dep("backend", "terraform", "true");
    repo.env(
        "front",
        "deployments:\n  app:\n    plugin: sh\n    inputs:\n      a: backend/terraform.url\n      b: backnd/terraform.url\n      c: backend/terraform\n      d: backend/terafrom.url\n      api-url: backend/terraform.x\n      api_url: backend/terraform.y\n      bad name: backend/terraform.url\n",
    );
    repo.dep("front", "app", "touch \"$T_OUT/ran\"");
    let out = repo.run(&["deploy", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    let all = out.all();
    for want in [
        "names no environment `backnd`",
        "did you mean `backend/terraform.url`?",
        "`backend/terraform` does not name an output",
        "environment `backend` has no deployment `terafrom`",
        "inputs `api-url` and `api_url` of `front/app` both become BITOPS_INPUT_API_URL",
        "is not a valid input name",
        "front/bitops.config.yaml",
    ] {
        assert!(all.contains(want), "missing {want:?}:\n{out}");
    }
    assert!(!repo.out_file("ran").exists());
}

#[test]
fn an_input_cycle_is_reported_like_a_depends_on_cycle() {
    let repo = TestRepo::new();
    repo.env(
        "a",
        "deployments:\n  p:\n    plugin: sh\n    inputs:\n      x: b/c.X\n",
    );
    repo.env(
        "b",
        "deployments:\n  c:\n    plugin: sh\n    inputs:\n      y: a/p.Y\n",
    );
    repo.dep("a", "p", "true");
    repo.dep("b", "c", "true");
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.all().contains("dependency cycle: a/p → b/c → a/p"),
        "{out}"
    );
    assert!(out.all().contains("`depends_on` entry or input"), "{out}");
}

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn a_terraform_input_becomes_tf_var_and_is_applied() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo = TestRepo::new();
    let apply = "terraform:\n  cli:\n    stack-action: apply\n";
    repo.env("net", "deployments:\n  terraform: {plugin: terraform}\n");
    repo.write(
        "net/terraform/main.tf",
        "output \"api_url\" { value = \"http://api.net.internal:9000\" }\n",
    );
    repo.write("net/terraform/bitops.config.yaml", apply);
    repo.env(
        "app",
        "deployments:\n  terraform:\n    plugin: terraform\n    inputs:\n      api_url: net/terraform.api_url\n  check: {plugin: sh}\n",
    );
    repo.write(
        "app/terraform/main.tf",
        "variable \"api_url\" { type = string }\nresource \"terraform_data\" \"site\" { input = \"site of ${var.api_url}\" }\noutput \"site\" { value = terraform_data.site.output }\n",
    );
    repo.write("app/terraform/bitops.config.yaml", apply);
    repo.dep(
        "app",
        "check",
        "echo \"$BITOPS_OUTPUT_APP_TERRAFORM_SITE\" > \"$T_OUT/site\"",
    );
    let plan = repo.run(&["plan", "--color", "never"]);
    assert!(
        plan.stdout
            .contains("TF_VAR_api_url=<net/terraform.api_url>"),
        "{plan}"
    );
    let out = repo.run(RUN);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("site").trim(),
        "site of http://api.net.internal:9000"
    );
    // A dry run of the dependent alone plans with the producer's last real output: against
    // the persistent local state that is no change at all (a missing input would be an
    // error, another value a change).
    let dry = repo.run(&[
        "plan",
        "--run",
        "--detailed-exitcode",
        "--only",
        "app/terraform",
        "--output",
        "stream",
        "--color",
        "never",
    ]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(dry.stdout.contains("no changes"), "{dry}");
}

#[test]
#[cfg_attr(
    missing_tool = "ansible-playbook",
    ignore = "ansible-playbook does not run here; CI fails instead of skipping"
)]
fn an_ansible_input_is_an_extra_var() {
    if !require_tools(&["ansible-playbook"]) {
        return;
    }
    let repo = TestRepo::new();
    repo.env("a", "deployments:\n  p: {plugin: sh}\n");
    repo.dep(
        "a",
        "p",
        // `{{ … }}` in an output is data: ansible must not template it.
        "echo 'URL=http://x:1/a b {{ 7*6 }}' >> \"$BITOPS_OUTPUT_FILE\"",
    );
    repo.env(
        "b",
        "deployments:\n  ansible:\n    plugin: ansible\n    inputs:\n      api_url: a/p.URL\n",
    );
    repo.write(
        "b/ansible/bitops.config.yaml",
        "ansible:\n  cli:\n    inventory: 'localhost,'\n",
    );
    repo.write(
        "b/ansible/playbook.yaml",
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n        msg: \"got <{{ api_url }}>\"\n",
    );
    let out = repo.run(RUN);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.all().contains("got <http://x:1/a b {{ 7*6 }}>"),
        "{out}"
    );
    let json = repo.run(&["plan", "--format", "json"]);
    assert!(
        json.stdout
            .contains(r#"--extra-vars={\"api_url\": !unsafe \"http://x:1/a b {{ 7*6 }}\"}"#),
        "{json}"
    );
}

#[test]
fn an_input_on_the_previous_entry_is_a_success_edge_not_the_order_one() {
    // `c` follows `p` in the list (an order edge) and takes an input from it (`p.URL`, the same
    // environment): with fail-fast off, `c` must not run after `p` failed.
    let repo = TestRepo::with_repo_config("fail_fast: false\n");
    repo.env(
        "a",
        "deployments:\n  p: {plugin: sh}\n  c:\n    plugin: sh\n    inputs:\n      url: p.URL\n",
    );
    repo.dep("a", "p", "echo 'URL=x' >> \"$BITOPS_OUTPUT_FILE\"; exit 1");
    repo.dep("a", "c", "true");
    let plan = repo.plan_json(&[]);
    let c = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "a/c")
        .unwrap()
        .clone();
    assert_eq!(
        c["dependencies"],
        serde_json::json!([{"id": "a/p", "kind": "success"}]),
        "{c}"
    );
    let out = repo.run(RUN);
    assert_ne!(out.code, 0, "{out}");
    assert!(repo.started().contains("a/p"), "{out}");
    assert!(!repo.started().contains("a/c"), "{out}");
}

/// The plan's commands of `b/<tool>` after `a/p` deployed `URL`.
fn planned_commands(tool: &str, files: &[(&str, &str)]) -> String {
    let repo = producer_consumer("URL");
    repo.env(
        "b",
        &format!(
            "deployments:\n  {tool}:\n    plugin: {tool}\n    inputs:\n      api_url: a/p.URL\n"
        ),
    );
    for (path, text) in files {
        repo.write(&format!("b/{tool}/{path}"), text);
    }
    let mut args = RUN.to_vec();
    args.extend(["--only", "a/p"]);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    let plan = repo.run_env(
        &["plan", "--format", "json"],
        &[("AWS_DEFAULT_REGION", "eu-west-1")],
    );
    assert_eq!(plan.code, 0, "{plan}");
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let node = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == format!("b/{tool}"))
        .unwrap()
        .clone();
    assert!(node["error"].is_null(), "{node}");
    assert_eq!(
        node["invocation"]["inputs"][0]["value"], "http://api.internal:8080",
        "{node}"
    );
    node["invocation"]["commands"].to_string()
}

#[test]
fn helm_gets_an_input_as_set_string() {
    let commands = planned_commands(
        "helm",
        &[
            ("web/Chart.yaml", "name: web\n"),
            (
                "web/bitops.config.yaml",
                "helm:\n  cli:\n    namespace: web\n  options:\n    k8s:\n      fetch:\n        kubeconfig: false\n",
            ),
        ],
    );
    assert!(
        commands.contains("helm upgrade --install web . ")
            && commands.contains("--set-string api_url=http://api.internal:8080"),
        "{commands}"
    );
}

#[test]
fn cloudformation_gets_an_input_as_a_parameter_override() {
    let commands = planned_commands(
        "cloudformation",
        &[
            ("template.yaml", "Resources: {}\n"),
            (
                "bitops.config.yaml",
                "cloudformation:\n  options:\n    cfn-stack-name: s\n    cfn-files:\n      template-file: template.yaml\n",
            ),
        ],
    );
    assert!(
        commands.contains("--parameter-overrides api_url=http://api.internal:8080"),
        "{commands}"
    );
}
