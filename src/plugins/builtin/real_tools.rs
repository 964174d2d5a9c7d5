//! The built-ins' steps run with the real tools: terraform (offline, `terraform_data` and local
//! state), ansible-playbook (localhost, `connection: local`) and the AWS CLI against a local
//! moto server. The steps `prepare` returns are run one by one with `std::process::Command`
//! (argv, cwd, environment, fallbacks, accepted exit codes, `may_fail`, `on_failure`) the way
//! the engine runs them, so what is tested is exactly what `bitops plan` shows.
//!
//! helm and kubectl have no binary or cluster here; their tests check command lines only.
//!
//! A test whose tool is missing prints why and passes, except when `CI` is set: then it fails,
//! so a missing install in `.ci/run` cannot silently test less.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::plugins::step::{Action, Capture, Prepared, Step};

use super::test_support::{ctx_in, Fixture};

/// Whether `name` runs here (a skip when missing; a failure under CI).
fn require_tool(name: &str) -> bool {
    // `moto_server` has no `--version` (and `aws --help` exits 2).
    let probe = if name == "moto_server" {
        "--help"
    } else {
        "--version"
    };
    crate::test_tools::require(name, &[probe])
}

/// One finished command.
#[derive(Debug)]
struct Ran {
    line: String,
    code: i32,
    stdout: String,
    stderr: String,
    capture: Capture,
}

/// What running a deployment's steps gave: every command run, and whether it ended in failure.
#[derive(Debug)]
struct Outcome {
    ran: Vec<Ran>,
    failed: bool,
}

impl Outcome {
    fn last(&self) -> &Ran {
        self.ran.last().expect("a step ran")
    }

    fn captured(&self, c: &Capture) -> &Ran {
        self.ran
            .iter()
            .rev()
            .find(|r| r.capture == *c)
            .expect("captured step")
    }

    fn all_stderr(&self) -> String {
        self.ran
            .iter()
            .map(|r| format!("{}\n{}", r.stdout, r.stderr))
            .collect()
    }
}

/// The environment every command starts from: only what a tool needs to start, so the tests do
/// not depend on the developer's AWS profile or terraform settings.
fn base_env(extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "PATH" | "HOME" | "USER" | "TMPDIR" | "PYENV_ROOT" | "PYENV_VERSION"
            )
        })
        .collect();
    // ansible refuses to start without a UTF-8 locale.
    env.insert("LC_ALL".into(), "C.UTF-8".into());
    env.insert("LANG".into(), "C.UTF-8".into());
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

fn exec(step: &Step, env: &BTreeMap<String, String>) -> Ran {
    let out = Command::new(&step.argv[0])
        .args(&step.argv[1..])
        .current_dir(&step.cwd)
        .env_clear()
        .envs(env)
        .envs(&step.env)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", step.display()));
    Ran {
        line: step.display(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        capture: step.capture.clone(),
    }
}

/// Runs a step and, while it fails, its fallback chain; true when one succeeded.
fn run_with_fallback(step: &Step, env: &BTreeMap<String, String>, ran: &mut Vec<Ran>) -> bool {
    let r = exec(step, env);
    let ok = r.code == 0 || step.ok_codes.contains(&r.code);
    ran.push(r);
    if ok {
        return true;
    }
    match &step.fallback {
        Some(f) => run_with_fallback(f, env, ran),
        None => false,
    }
}

/// Runs the deployment's steps in order with the deployment's environment (`extra`, standing
/// for the context's) and the plugin's exports, stopping at the first failure after running its
/// `on_failure` steps.
fn run(p: &Prepared, extra: &BTreeMap<String, String>) -> Outcome {
    let mut env = base_env(extra);
    env.extend(p.exports.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut ran = Vec::new();
    for step in &p.steps {
        if run_with_fallback(step, &env, &mut ran) || step.may_fail {
            continue;
        }
        for f in &step.on_failure {
            ran.push(exec(f, &env));
        }
        return Outcome { ran, failed: true };
    }
    Outcome { ran, failed: false }
}

fn expect_ok(o: &Outcome, what: &str) {
    assert!(!o.failed, "{what} failed: {:#?}", o.ran);
}

/// `prepare` for the fixture, then run its steps.
fn deploy(fx: &Fixture, plugin: &str, action: Action) -> (Prepared, Outcome) {
    let p = super::prepare(&ctx_in(fx, plugin, action))
        .unwrap_or_else(|e| panic!("prepare {plugin} {action:?}: {e:?}"));
    let o = run(&p, &fx.env);
    (p, o)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

const MAIN_TF: &str = r#"
variable "greeting" {
  type = string
}

variable "who" {
  type    = string
  default = "world"
}

resource "terraform_data" "hello" {
  input = "${var.greeting}, ${var.who}"
}

output "message" {
  value = terraform_data.hello.output
}

output "workspace" {
  value = terraform.workspace
}
"#;

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn terraform_deploy_dry_run_and_destroy_for_real() {
    if !require_tool("terraform") {
        return;
    }
    let fx = Fixture::named(
        "terraform",
        "terraform:\n  cli:\n    stack-action: apply\n    var-file: vars.tfvars\n  options:\n    workspace: ws1\n",
        // No network: no version check, and nothing to download for terraform_data.
        &[("CHECKPOINT_DISABLE", "1"), ("TF_IN_AUTOMATION", "1")],
    );
    fx.write("main.tf", MAIN_TF);
    fx.write("vars.tfvars", "greeting = \"hi\"\n");
    // BitOps' terraform plugin sourced ENV_FILE; its variables reach terraform.
    fx.write("ENV_FILE", "export TF_VAR_who=bitops\n");

    // A dry run before anything exists: `plan -detailed-exitcode` exits 2 (changes), accepted.
    let (_, o) = deploy(&fx, "terraform", Action::DryRun);
    expect_ok(&o, "first dry run");
    assert_eq!(o.last().code, 2, "{:#?}", o.ran);
    assert!(
        o.last().stdout.contains("terraform_data.hello"),
        "{}",
        o.last().stdout
    );

    let (_, o) = deploy(&fx, "terraform", Action::Deploy);
    expect_ok(&o, "deploy");
    let outputs = json(&o.captured(&Capture::TerraformOutputs).stdout);
    assert_eq!(outputs["message"]["value"], "hi, bitops");
    assert_eq!(outputs["workspace"]["value"], "ws1");
    let state_file = fx
        .tool_dir()
        .join("terraform.tfstate.d/ws1/terraform.tfstate");
    let state = json(&std::fs::read_to_string(&state_file).expect("workspace state"));
    assert_eq!(state["resources"][0]["type"], "terraform_data");
    // The saved plan was applied, not a fresh one.
    assert!(o
        .ran
        .iter()
        .any(|r| r.line.contains("apply") && r.line.ends_with("bitops.tfplan")));

    // Nothing changed: exit 0. A second deploy selects the existing workspace.
    let (_, o) = deploy(&fx, "terraform", Action::DryRun);
    expect_ok(&o, "second dry run");
    assert_eq!(o.last().code, 0, "{:#?}", o.ran);

    let (_, o) = deploy(&fx, "terraform", Action::Destroy);
    expect_ok(&o, "destroy");
    let state = json(&std::fs::read_to_string(&state_file).expect("workspace state"));
    assert_eq!(
        state["resources"].as_array().map(Vec::len),
        Some(0),
        "{state}"
    );
}

const PLAYBOOK: &str = r#"
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    # The python running ansible; discovery could pick an interpreter that is not installed.
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: write the greeting
      ansible.builtin.copy:
        content: "{{ greeting }}"
        dest: "{{ out }}"
      tags: [write]
    - name: a task that is not selected
      ansible.builtin.copy:
        content: "other"
        dest: "{{ out }}.other"
      tags: [other]
"#;

#[test]
#[cfg_attr(
    missing_tool = "ansible-playbook",
    ignore = "ansible-playbook does not run here; CI fails instead of skipping"
)]
fn ansible_check_and_deploy_for_real() {
    if !require_tool("ansible-playbook") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("greeting.txt");
    let tmp = scratch.path().join("ansible-tmp");
    let env = [
        // The env override wins over the config's `tags: other`.
        ("BITOPS_ANSIBLE_TAGS", "write"),
        ("ANSIBLE_LOCAL_TEMP", tmp.to_str().unwrap()),
    ];
    let fx = Fixture::named(
        "ansible",
        "ansible:\n  cli:\n    main-playbook: site.yaml\n    inventory: 'localhost,'\n    extra-vars: '@vars.json'\n    tags: other\n  options:\n    verbosity: 1\n",
        &env,
    );
    fx.write("site.yaml", PLAYBOOK);
    fx.write(
        "vars.json",
        &serde_json::json!({"greeting": "hello from bitops", "out": out}).to_string(),
    );

    let (p, o) = deploy(&fx, "ansible", Action::DryRun);
    expect_ok(&o, "ansible --check");
    assert!(p.steps[0]
        .argv
        .ends_with(&["--check".into(), "--diff".into()]));
    assert!(!out.exists(), "--check must not write");
    assert!(o.last().stdout.contains("changed=1"), "{}", o.last().stdout);

    let (p, o) = deploy(&fx, "ansible", Action::Deploy);
    expect_ok(&o, "ansible-playbook");
    assert_eq!(p.exports["ANSIBLE_VERBOSITY"], "1");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello from bitops");
    assert!(
        !scratch.path().join("greeting.txt.other").exists(),
        "only the tagged task runs"
    );

    let (p, o) = deploy(&fx, "ansible", Action::Destroy);
    assert!(p.skip.is_some() && o.ran.is_empty());
}

/// A moto server on a free loopback port, stopped (its whole process group) when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so the pyenv shim and python go together.
            .process_group(0)
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                moto.child.try_wait().ok().flatten().is_none(),
                "moto_server exited at start"
            );
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env:
    Type: String
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "bitops-${Env}-bucket"
Outputs:
  BucketName:
    Value: !Ref Bucket
"#;

/// moto accepts this template but fails to create the queue (a FIFO queue's name must end in
/// `.fifo`); its validate-template (cfn-lint) rejects it too.
const BAD_TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: not-fifo
      FifoQueue: true
"#;

fn cfn_config(stack: &str, template: &str) -> String {
    format!(
        "cloudformation:\n  cli:\n    stack-action: deploy\n  options:\n    cfn-stack-name: {stack}\n    cfn-files:\n      template-file: {template}\n      parameters:\n        template-param-flag: true\n        template-param-file: params.json\n"
    )
}

fn params(env: &str) -> String {
    serde_json::json!([{"ParameterKey": "Env", "ParameterValue": env}]).to_string()
}

#[test]
#[cfg_attr(
    any(missing_tool = "aws", missing_tool = "moto_server"),
    ignore = "aws or moto_server does not run here; CI fails instead of skipping"
)]
fn cloudformation_against_moto() {
    if !require_tool("aws") || !require_tool("moto_server") {
        return;
    }
    let moto = Moto::start();
    let scratch = tempfile::tempdir().unwrap();
    let nowhere = scratch.path().join("no-aws-config");
    let env: Vec<(&str, &str)> = vec![
        ("AWS_ENDPOINT_URL", &moto.url),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", nowhere.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", nowhere.to_str().unwrap()),
        ("AWS_PAGER", ""),
    ];
    let aws = |args: &[&str]| {
        let mut argv = vec!["aws".to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let e: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        exec(&Step::new(argv, scratch.path()), &base_env(&e))
    };

    // Deploy: validate, `aws cloudformation deploy` with the parameters file, describe-stacks.
    let fx = Fixture::named(
        "cloudformation",
        &cfn_config("bitops-stack", "template.yaml"),
        &env,
    );
    fx.write("template.yaml", TEMPLATE);
    fx.write("params.json", &params("test"));
    let (_, o) = deploy(&fx, "cloudformation", Action::Deploy);
    expect_ok(&o, "cloudformation deploy");
    assert!(o.ran[0].line.contains("validate-template"));
    let described = json(&o.captured(&Capture::CloudFormationOutputs).stdout);
    let stack = &described["Stacks"][0];
    assert_eq!(stack["StackStatus"], "CREATE_COMPLETE", "{described}");
    assert_eq!(stack["Parameters"][0]["ParameterValue"], "test");
    // moto 5.2 does not fill `Outputs` for stacks made through change sets (which `deploy`
    // uses), so the resource itself is checked.
    assert_eq!(
        aws(&["s3api", "head-bucket", "--bucket", "bitops-test-bucket"]).code,
        0
    );

    // Dry run against the existing stack: an UPDATE change set, described, then deleted.
    fx.write("params.json", &params("next"));
    let (_, o) = deploy(&fx, "cloudformation", Action::DryRun);
    expect_ok(&o, "cloudformation dry run");
    let cs = json(
        &o.captured(&Capture::DryRunSummary(
            super::super::step::DryRunTool::CloudFormation,
        ))
        .stdout,
    );
    assert_eq!(cs["ChangeSetName"], "bitops-dry-run");
    assert!(cs["Changes"].is_array(), "{cs}");
    assert!(o
        .ran
        .iter()
        .any(|r| r.line.contains("--change-set-type UPDATE") && r.code == 0));
    let listed = aws(&[
        "cloudformation",
        "list-change-sets",
        "--stack-name",
        "bitops-stack",
    ]);
    // moto lists every change set of the region, including `deploy`'s executed ones.
    assert!(
        !listed.stdout.contains("bitops-dry-run"),
        "{}",
        listed.stdout
    );
    let head = aws(&["s3api", "head-bucket", "--bucket", "bitops-next-bucket"]);
    assert_ne!(head.code, 0, "a dry run changes nothing");

    // A dry run of a stack that does not exist yet falls back to a CREATE change set.
    let fresh = Fixture::named(
        "cloudformation",
        &cfn_config("bitops-fresh", "template.yaml"),
        &env,
    );
    fresh.write("template.yaml", TEMPLATE);
    fresh.write("params.json", &params("fresh"));
    let (_, o) = deploy(&fresh, "cloudformation", Action::DryRun);
    expect_ok(&o, "dry run of a new stack");
    assert!(o
        .ran
        .iter()
        .any(|r| r.line.contains("--change-set-type CREATE") && r.code == 0));

    // A template moto rejects: validate-template fails with the reason.
    let bad = Fixture::named(
        "cloudformation",
        &cfn_config("bitops-bad", "bad.yaml"),
        &env,
    );
    bad.write("bad.yaml", BAD_TEMPLATE);
    bad.write("params.json", "[]");
    let (_, o) = deploy(&bad, "cloudformation", Action::Deploy);
    assert!(
        o.failed && o.last().line.contains("validate-template"),
        "{:#?}",
        o.ran
    );
    assert!(o.last().stderr.contains("fifo"), "{}", o.last().stderr);

    // Without validation, the deploy itself fails, says why, and the failed events are listed.
    let mut env2 = env.clone();
    env2.push(("BITOPS_CLOUDFORMATION_VALIDATE_CFN", "false"));
    let bad = Fixture::named(
        "cloudformation",
        &cfn_config("bitops-bad", "bad.yaml"),
        &env2,
    );
    bad.write("bad.yaml", BAD_TEMPLATE);
    bad.write("params.json", "[]");
    let (_, o) = deploy(&bad, "cloudformation", Action::Deploy);
    assert!(o.failed, "{:#?}", o.ran);
    assert!(o.all_stderr().contains("must end in .fifo"), "{:#?}", o.ran);
    let events = o.last();
    assert!(
        events.line.contains("describe-stack-events") && events.code == 0,
        "{:#?}",
        o.ran
    );

    // Destroy: delete-stack and wait; the bucket is gone.
    let (_, o) = deploy(&fx, "cloudformation", Action::Destroy);
    expect_ok(&o, "cloudformation delete");
    assert_ne!(
        aws(&["s3api", "head-bucket", "--bucket", "bitops-test-bucket"]).code,
        0
    );
    drop(moto);
}
