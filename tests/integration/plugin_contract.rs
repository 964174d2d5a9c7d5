//! A BitOps-format plugin written to the official plugins' contract, driven through bitops with
//! real terraform: its action comes from the stack-action export (`$BITOPS_TERRAFORM_COMMAND`),
//! never from `$1`, and it checks for the `aws` plugin under `$BITOPS_PLUGINS_DIR` in both forms
//! the official plugins use. `plan --run` must leave the state byte-identical, `destroy` must
//! empty it, and a plugin without a destroy action must not run and must say so.

use crate::harness::{require_tools, TestRepo};

const SCHEMA: &str = "\
terraform:
  type: object
  properties:
    cli:
      type: object
      properties:
        stack-action:
          type: string
          export_env: TERRAFORM_COMMAND
          default: plan
          required: true
    options:
      type: object
      properties:
        workspace:
          type: string
          export_env: TERRAFORM_WORKSPACE
";

/// Written like bitops-plugins/terraform's deploy.sh: the action is the export, `$1` is only
/// recorded; the dependency checks are those of the cloudformation and helm plugins.
const DEPLOY_SH: &str = r#"#!/usr/bin/env bash
set -e
if [ ! -d $BITOPS_PLUGINS_DIR/aws ]; then echo "aws plugin is missing..."; exit 1; fi
PLUGINS_ROOT_DIR="${BITOPS_PLUGINS_DIR%/*}"
if [ ! -d "$PLUGINS_ROOT_DIR/aws" ]; then echo "aws plugin is missing (helm form)"; exit 1; fi
[ -f "$BITOPS_PLUGIN_DIR/deploy.sh" ] || { echo "BITOPS_PLUGIN_DIR is not my folder"; exit 1; }
echo "arg=$1 command=$BITOPS_TERRAFORM_COMMAND plain=$TERRAFORM_COMMAND cli=$BITOPS_TERRAFORM_CLI" >> "$T_OUT/contract"
cd "$BITOPS_OPSREPO_ENVIRONMENT_DIR"
terraform init -input=false -no-color > /dev/null
if [ "${BITOPS_TERRAFORM_COMMAND}" == "plan" ]; then
  terraform plan -input=false -no-color
fi
if [ "${BITOPS_TERRAFORM_COMMAND}" == "apply" ] || [ "${TERRAFORM_APPLY}" == "true" ]; then
  echo applied >> "$T_OUT/contract"
  terraform plan -input=false -no-color
  terraform apply -input=false -auto-approve -no-color
fi
if [ "${BITOPS_TERRAFORM_COMMAND}" == "destroy" ] || [ "${TERRAFORM_DESTROY}" == "true" ]; then
  terraform plan -destroy -input=false -no-color
  terraform destroy -input=false -auto-approve -no-color
fi
"#;

/// A plugin with no stack action at all, like the official ansible plugin.
const NOACTION_SCHEMA: &str = "\
noaction:
  type: object
  properties:
    options:
      type: object
      properties:
        note:
          type: string
          export_env: NOACTION_NOTE
";

const NOACTION_SH: &str = "#!/usr/bin/env bash\necho \"ran $1\" >> \"$T_OUT/noaction\"\n";

const PLUGIN_CONFIG: &str =
    "plugin:\n  deployment:\n    language: bash\n    deployment_script: deploy.sh\n";

/// `e` deploys `infra` (the terraform-contract plugin, replacing the built-in) then `config`
/// (the plugin without an action). The state lives outside the repo and the working copies.
fn repo(stack_action: &str) -> (TestRepo, std::path::PathBuf) {
    let repo = TestRepo::with_repo_config(
        // Indented into the `plugins:` map the harness starts (after its `sh` plugin).
        "  terraform:\n    source: ./_plugins/terraform\n  noaction:\n    source: ./_plugins/noaction\n  aws:\n    source: ./_plugins/aws\n",
    );
    repo.write("_plugins/terraform/plugin.config.yaml", PLUGIN_CONFIG);
    repo.write("_plugins/terraform/bitops.schema.yaml", SCHEMA);
    repo.write_exec("_plugins/terraform/deploy.sh", DEPLOY_SH);
    repo.write("_plugins/noaction/plugin.config.yaml", PLUGIN_CONFIG);
    repo.write("_plugins/noaction/bitops.schema.yaml", NOACTION_SCHEMA);
    repo.write_exec("_plugins/noaction/deploy.sh", NOACTION_SH);
    // The aws plugin is only a folder the others look for, as in BitOps.
    repo.write("_plugins/aws/install.sh", "#!/usr/bin/env bash\n");
    repo.env(
        "e",
        "deployments:\n  infra: {plugin: terraform}\n  config: {plugin: noaction}\n",
    );
    let state = repo.tmp().join("state/terraform.tfstate");
    repo.write(
        "e/infra/main.tf",
        &format!(
            "terraform {{\n  backend \"local\" {{ path = \"{}\" }}\n}}\n\
             resource \"terraform_data\" \"a\" {{ input = \"a\" }}\n\
             resource \"terraform_data\" \"b\" {{ input = \"b\" }}\n",
            state.display()
        ),
    );
    repo.write(
        "e/infra/bitops.config.yaml",
        &format!("terraform:\n  cli:\n    stack-action: {stack_action}\n"),
    );
    repo.write(
        "e/config/bitops.config.yaml",
        "noaction:\n  options:\n    note: hi\n",
    );
    (repo, state)
}

fn resources(state: &std::path::Path) -> usize {
    let Ok(text) = std::fs::read_to_string(state) else {
        return 0;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["resources"].as_array().map_or(0, Vec::len)
}

/// The run's `--report` file, checked against the published schema (new statuses included).
fn report(repo: &TestRepo) -> serde_json::Value {
    let path = repo.tmp().join("report.json");
    if require_tools(&["check-jsonschema"]) {
        let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");
        let out = std::process::Command::new("check-jsonschema")
            .args(["--schemafile", schema])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn deployment<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the report"))
}

const PLAIN: [&str; 4] = ["--progress", "plain", "--color", "never"];

#[test]
fn official_contract_plugin_deploys_dry_runs_and_destroys() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let (repo, state) = repo("apply");
    let report_arg = repo.tmp().join("report.json").display().to_string();

    // Deploy: applied through the export, both `aws` checks pass.
    let mut args = vec!["deploy"];
    args.extend(PLAIN);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(resources(&state), 2, "{out}");
    assert_eq!(
        repo.read_out("contract").trim(),
        "arg=apply command=apply plain=apply cli=apply\napplied"
    );
    assert_eq!(repo.read_out("noaction").trim(), "ran");
    let before = std::fs::read(&state).unwrap();

    // plan --run: every export, the CLI and argv[1] say `plan`, even when the user's own
    // override asks for apply; the state is untouched; the plugin without an action is skipped.
    std::fs::remove_file(repo.out_file("contract")).unwrap();
    let mut args = vec!["plan", "--run"];
    args.extend(PLAIN);
    // The official plugin also applies on TERRAFORM_APPLY=true and destroys on
    // TERRAFORM_DESTROY=true: a dry run hides both from it.
    let out = repo.run_env(
        &args,
        &[
            ("BITOPS_TERRAFORM_STACK_ACTION", "apply"),
            ("TERRAFORM_APPLY", "true"),
            ("TERRAFORM_DESTROY", "true"),
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("contract").trim(),
        "arg=plan command=plan plain=plan cli=plan",
        "{out}"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "plan --run changed the state"
    );
    assert_eq!(repo.read_out("noaction").trim(), "ran", "{out}");
    assert!(out.all().contains("has no `stack-action`"), "{out}");

    // destroy: the export says `destroy`, the state is emptied; the plugin without an action
    // is not run, and the summary and the report say nothing was destroyed.
    std::fs::remove_file(repo.out_file("contract")).unwrap();
    let mut args = vec!["destroy", "-e", "e", "--report", &report_arg];
    args.extend(PLAIN);
    let out = repo.run_env(&args, &[("TERRAFORM_APPLY", "true")]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("contract").trim(),
        "arg=destroy command=destroy plain=destroy cli=destroy",
        "{out}"
    );
    assert_eq!(resources(&state), 0, "{out}");
    assert_eq!(
        repo.read_out("noaction").trim(),
        "ran",
        "destroy re-ran it\n{out}"
    );
    let summary_line = out
        .stderr
        .lines()
        .find(|l| l.contains("e/config") && l.contains("skipped"))
        .unwrap_or_else(|| panic!("no skipped line for e/config\n{out}"));
    assert!(
        summary_line.contains("nothing was destroyed"),
        "{summary_line}"
    );
    let r = report(&repo);
    let config = deployment(&r, "e/config");
    assert_eq!(config["status"], "not_applicable");
    assert!(config["reason"]
        .as_str()
        .unwrap()
        .contains("nothing was destroyed"));
    assert_eq!(deployment(&r, "e/infra")["status"], "succeeded");
    assert_eq!(r["counts"]["not_applicable"], 1);
}

#[test]
fn a_contract_plugin_that_only_plans_reports_planned() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let (repo, state) = repo("plan");
    let report_arg = repo.tmp().join("report.json").display().to_string();
    let junit_arg = repo.tmp().join("junit.xml").display().to_string();
    let mut args = vec!["deploy", "--report", &report_arg, "--junit", &junit_arg];
    args.extend(PLAIN);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(resources(&state), 0, "a plan applied something\n{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("e/infra") && l.contains("planned only"))
        .unwrap_or_else(|| panic!("no planned-only line\n{out}"));
    assert!(
        line.contains("stack-action: apply` under `terraform.cli` in e/infra/bitops.config.yaml"),
        "{line}"
    );
    let r = report(&repo);
    assert_eq!(deployment(&r, "e/infra")["status"], "planned");
    assert_eq!(r["counts"]["planned"], 1);
    let junit = std::fs::read_to_string(repo.tmp().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<skipped message=\"planned only:"),
        "{junit}"
    );
}

#[test]
fn builtin_terraform_with_the_default_plan_reports_planned() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  terraform: {plugin: terraform}\n");
    repo.write(
        "e/terraform/main.tf",
        "resource \"terraform_data\" \"a\" { input = \"a\" }\n",
    );
    let report_arg = repo.tmp().join("report.json").display().to_string();
    let junit_arg = repo.tmp().join("junit.xml").display().to_string();
    let mut args = vec!["deploy", "--report", &report_arg, "--junit", &junit_arg];
    args.extend(PLAIN);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("planned only"), "{out}");
    assert!(
        out.stderr
            .contains("set `stack-action: apply` under `terraform.cli`"),
        "{out}"
    );
    assert!(!out.stderr.contains("1 succeeded"), "{out}");
    let r = report(&repo);
    let d = deployment(&r, "e/terraform");
    assert_eq!(d["status"], "planned");
    assert!(d["reason"]
        .as_str()
        .unwrap()
        .contains("nothing was applied"));
    let junit = std::fs::read_to_string(repo.tmp().join("junit.xml")).unwrap();
    assert!(junit.contains("planned only:"), "{junit}");
    assert!(!junit.contains("planned only: planned only"), "{junit}");
}

#[test]
fn plugins_dir_links_every_configured_plugin_and_plugin_dir_comes_from_the_environment() {
    let repo = TestRepo::with_repo_config(
        "  aws:\n    source: ./_plugins/aws\n  kubectl:\n    source: ./_plugins/kubectl\n",
    );
    repo.write("_plugins/aws/marker", "aws\n");
    repo.write("_plugins/kubectl/marker", "kubectl\n");
    repo.env("e", "deployments:\n  a: {plugin: sh}\n");
    repo.dep(
        "e",
        "a",
        "echo \"dir=$BITOPS_PLUGINS_DIR\" > $T_OUT/vars; cat ${BITOPS_PLUGINS_DIR}aws/marker ${BITOPS_PLUGINS_DIR%/*}/kubectl/marker $BITOPS_PLUGINS_DIR/sh/deploy.sh >/dev/null && echo ok >> $T_OUT/vars; echo \"own=$BITOPS_PLUGIN_DIR\" >> $T_OUT/vars",
    );
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let vars = repo.read_out("vars");
    assert!(
        vars.lines().next().unwrap().ends_with("/plugins/"),
        "{vars}"
    );
    assert!(vars.contains("\nok\n"), "{vars}");
    assert!(
        vars.contains(&format!("own={}", repo.path("_plugins/sh").display())),
        "{vars}"
    );
    let out = repo.run_env(
        &["deploy", "--progress", "plain"],
        &[("BITOPS_PLUGIN_DIR", "/opt/custom/plugins/")],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        repo.read_out("vars").contains("own=/opt/custom/plugins/"),
        "{}",
        repo.read_out("vars")
    );
}

#[test]
fn install_scripts_run_only_when_asked() {
    let repo = TestRepo::with_repo_config("  tool:\n    source: ./_plugins/tool\n");
    repo.write("_plugins/tool/plugin.config.yaml", PLUGIN_CONFIG);
    repo.write_exec("_plugins/tool/deploy.sh", "#!/usr/bin/env bash\n");
    repo.write(
        "_plugins/tool/install.sh",
        "echo \"in=$(pwd) dir=$BITOPS_INSTALLED_PLUGIN_DIR\" >> \"$T_OUT/installed\"\n",
    );
    let out = repo.run(&["plugins", "install"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!repo.out_file("installed").exists(), "{out}");
    let out = repo.run(&["plugins", "install", "--run-install-scripts"]);
    assert_eq!(out.code, 0, "{out}");
    let dir = repo.path("_plugins/tool").display().to_string();
    assert_eq!(
        repo.read_out("installed").trim(),
        format!("in={dir} dir={dir}"),
        "{out}"
    );
    assert!(out.stdout.contains("tool: ran"), "{out}");
    // The `sh` plugin has no install.sh: said, not an error.
    assert!(out.stdout.contains("sh: no install script"), "{out}");
}

/// `bitops plan --format json` shows the kubeconfig a deploy really passes to helm (the run
/// folder is `<run>` in a plan, since it does not exist yet).
#[test]
fn plan_shows_the_kubeconfig_deploy_uses() {
    let repo = TestRepo::new();
    repo.write_exec(
        "../out/bin/helm",
        "#!/usr/bin/env bash\necho \"$*\" >> \"$T_OUT/helm.args\"\n",
    );
    repo.env("e", "deployments:\n  helm: {plugin: helm}\n");
    repo.write(
        "e/helm/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    repo.write(
        "e/helm/web/bitops.config.yaml",
        "helm:\n  cli:\n    namespace: web\n",
    );
    let vars = [("BITOPS_KUBECONFIG_BASE64", "YXBpVmVyc2lvbjogdjEK")];
    let mut plan_cmd = repo.command(&["plan", "--format", "json"]);
    for (k, v) in vars {
        plan_cmd.env(k, v);
    }
    assert!(plan_cmd.status().unwrap().success());
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.out_file("bitops.stdout")).unwrap())
            .unwrap();
    let node = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "e/helm")
        .unwrap();
    let planned: Vec<String> = node["invocation"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .filter(|c| c.starts_with("helm upgrade"))
        .collect();
    assert_eq!(planned.len(), 1, "{node}");
    let kube_arg = |cmd: &str| -> String {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let i = words
            .iter()
            .position(|w| *w == "--kubeconfig")
            .expect("--kubeconfig");
        words[i + 1].trim_matches('\'').to_string()
    };
    assert_eq!(kube_arg(&planned[0]), "<run>/.kube/config");

    let out = repo.run_env(&["deploy", "--progress", "plain"], &vars);
    assert_eq!(out.code, 0, "{out}");
    let ran = repo.read_out("helm.args");
    let upgrade = ran
        .lines()
        .find(|l| l.starts_with("upgrade"))
        .unwrap_or_else(|| panic!("{ran}\n{out}"));
    let run_dir = repo.run_dirs().pop().unwrap();
    assert_eq!(
        kube_arg(upgrade),
        format!("{}/.kube/config", run_dir.display()),
        "{ran}"
    );
    assert!(run_dir.join(".kube/config").is_file());
}

/// The built-in ansible has no destroy: `destroy` does not run the playbook and says so.
#[test]
fn destroy_reports_builtin_ansible_as_not_destroyed() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  ansible: {plugin: ansible}\n");
    repo.write(
        "e/ansible/playbook.yaml",
        "- hosts: localhost\n  tasks: []\n",
    );
    let report_arg = repo.tmp().join("report.json").display().to_string();
    let mut args = vec!["destroy", "-e", "e", "--report", &report_arg];
    args.extend(PLAIN);
    let out = repo.run(&args);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.lines().any(|l| l.contains("e/ansible")
            && l.contains("skipped")
            && l.contains("nothing was destroyed")),
        "{out}"
    );
    assert!(out.stderr.contains("1 skipped (does not apply)"), "{out}");
    let r = report(&repo);
    assert_eq!(deployment(&r, "e/ansible")["status"], "not_applicable");
    assert_eq!(r["exit_code"], 0);
}
