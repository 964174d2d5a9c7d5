//! docs/troubleshooting.md quotes bitops' real messages. Each entry is marked
//! `<!-- check: NAME exit=CODE -->` followed by a ```text block; the test of the same name runs
//! that scenario through the binary and checks the exit code and that every quoted line is still
//! in what bitops printed, so a reworded message makes the page fail loudly instead of going
//! stale. In a quoted line `…` stands for text that differs per machine (paths, run ids,
//! timings); the pieces around it must appear in that order. Lines are compared with miette's
//! frame characters (`│`) removed and whitespace collapsed, so wrapping does not matter.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{poll, require_tools, wait_bounded, RunOutput, TestRepo};

const DOC: &str = include_str!("../../docs/troubleshooting.md");

/// Every scenario the page has an entry for, in page order; `every_entry_has_a_scenario` keeps
/// this list and the page in step.
const SCENARIOS: &[&str] = &[
    "no-environments",
    "environment-folder",
    "no-match",
    "misnamed-tool-folder",
    "unknown-key",
    "legacy-key",
    "cycle",
    "missing-tool",
    "empty-bitops-environment",
    "destroy-without-selection",
    "lock-held",
    "stale-lock",
    "failing-deployment",
    "timeout",
    "planned-only",
];

/// (exit code, quoted lines) of the entry `name`.
fn entry(name: &str) -> (i32, Vec<&'static str>) {
    let marker = format!("<!-- check: {name} exit=");
    let start = DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/troubleshooting.md has no entry `{name}`"));
    let rest = &DOC[start + marker.len()..];
    let code: i32 = rest[..rest.find(' ').expect("exit=CODE -->")]
        .parse()
        .expect("exit code");
    let block = rest
        .split_once("```text\n")
        .unwrap_or_else(|| panic!("entry `{name}` has no ```text block"))
        .1;
    let block = &block[..block.find("```").expect("the block ends")];
    let lines = block.lines().filter(|l| !l.trim().is_empty()).collect();
    (code, lines)
}

fn normalize(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks `out` against the page's entry `name`.
fn check(name: &str, out: &RunOutput) {
    let (code, lines) = entry(name);
    assert_eq!(
        out.code, code,
        "docs/troubleshooting.md `{name}` says exit {code}\n{out}"
    );
    let seen = normalize(&out.all());
    for line in lines {
        let mut from = 0;
        for piece in line.split('…').map(normalize).filter(|p| !p.is_empty()) {
            match seen[from..].find(&piece) {
                Some(i) => from += i + piece.len(),
                None => panic!(
                    "docs/troubleshooting.md `{name}` quotes a message bitops no longer prints:\n  \
                     {line}\n(missing: `{piece}`); update the page from this output:\n{out}"
                ),
            }
        }
    }
}

#[test]
fn every_entry_has_a_scenario() {
    let marked: Vec<&str> = DOC
        .match_indices("<!-- check: ")
        .map(|(i, m)| {
            let rest = &DOC[i + m.len()..];
            &rest[..rest.find(' ').unwrap()]
        })
        .collect();
    assert_eq!(marked, SCENARIOS, "entries of docs/troubleshooting.md");
}

/// A repo with one environment `dev` whose deployment `app` runs `cmd` (the harness's `sh`
/// plugin), with `more` added to the deployment entry.
fn app(cmd: &str, more: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.env(
        "dev",
        &format!("deployments:\n  app: {{plugin: sh{more}}}\n"),
    );
    repo.dep("dev", "app", cmd);
    repo
}

fn terraform_repo() -> TestRepo {
    let repo = TestRepo::bare();
    repo.write("dev/terraform/main.tf", "output \"x\" { value = 1 }\n");
    repo
}

#[test]
fn no_environments() {
    let repo = TestRepo::bare();
    check("no-environments", &repo.run(&["deploy"]));
    assert!(!repo.path(".bitops").exists(), "nothing is written");
}

#[test]
fn environment_folder() {
    // The folder bitops is pointed at is an environment: it holds a tool folder.
    let repo = TestRepo::bare();
    repo.write("terraform/main.tf", "# x\n");
    check("environment-folder", &repo.run(&["plan"]));
}

#[test]
fn no_match() {
    check("no-match", &terraform_repo().run(&["plan", "-e", "prod"]));
}

#[test]
fn misnamed_tool_folder() {
    let repo = TestRepo::bare();
    repo.write("dev/terrafrom/main.tf", "# x\n");
    repo.write(
        "dev/ansible/playbook.yaml",
        "- hosts: localhost\n  tasks: []\n",
    );
    check("misnamed-tool-folder", &repo.run(&["plan"]));
}

#[test]
fn unknown_key() {
    let repo = terraform_repo();
    repo.write("dev/bitops.config.yaml", "bitops:\n  fail_fsat: false\n");
    repo.write(
        "dev/terraform/bitops.config.yaml",
        "terraform:\n  cli:\n    stack-acton: apply\n",
    );
    check("unknown-key", &repo.run(&["plan"]));
}

#[test]
fn legacy_key() {
    let repo = terraform_repo();
    repo.write(
        "dev/terraform/bitops.config.yaml",
        "terraform:\n  options:\n    command: apply\n",
    );
    check("legacy-key", &repo.run(&["plan"]));
}

#[test]
fn cycle() {
    let repo = TestRepo::new();
    repo.env("a", "depends_on: [b]\ndeployments:\n  app: {plugin: sh}\n");
    repo.env("b", "depends_on: [a]\ndeployments:\n  app: {plugin: sh}\n");
    repo.dep("a", "app", "true");
    repo.dep("b", "app", "true");
    check("cycle", &repo.run(&["plan"]));
}

#[test]
fn missing_tool() {
    let repo = terraform_repo();
    let empty = repo.tmp().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = repo.run_env(&["deploy"], &[("PATH", &empty.display().to_string())]);
    check("missing-tool", &out);
}

#[test]
fn empty_bitops_environment() {
    let out = terraform_repo().run_env(&["plan"], &[("BITOPS_ENVIRONMENT", "")]);
    check("empty-bitops-environment", &out);
}

#[test]
fn destroy_without_selection() {
    check(
        "destroy-without-selection",
        &terraform_repo().run(&["destroy"]),
    );
}

#[test]
fn lock_held() {
    let repo = app("waitfor \"$T_OUT/release\" 120", "");
    let mut first = repo.spawn(&["deploy"]);
    poll(
        Duration::from_secs(60),
        "the first run's deployment",
        || repo.started().contains("dev/app").then_some(()),
    );
    // The second run's output is captured apart from the first one's files.
    let second = repo
        .command(&["deploy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("bitops runs");
    let out = RunOutput {
        code: second.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&second.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&second.stderr).into_owned(),
    };
    std::fs::write(repo.out_file("release"), "go").unwrap();
    assert_eq!(wait_bounded(&mut first, Duration::from_secs(60)), 0);
    check("lock-held", &out);
}

#[test]
fn stale_lock() {
    let repo = app("true", "");
    // A lock left by a run that no longer exists: the pid of a process that has exited.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let host = nix::unistd::gethostname()
        .unwrap()
        .into_string()
        .unwrap_or_default();
    repo.write(
        ".bitops/locks/dev.lock",
        &format!(
            "{{\"pid\": {pid}, \"host\": \"{host}\", \"started\": \"2026-11-30T00:00:00Z\", \
             \"command\": \"bitops deploy\", \"run_id\": \"20261130T000000Z-1\"}}"
        ),
    );
    check("stale-lock", &repo.run(&["deploy"]));
}

#[test]
fn failing_deployment() {
    let repo = app(
        "echo connecting to the database; echo 'error: password authentication failed' >&2; exit 3",
        "",
    );
    check("failing-deployment", &repo.run(&["deploy"]));
}

#[test]
fn timeout() {
    let repo = app("echo waiting; sleep 60", ", timeout: 1s");
    check("timeout", &repo.run(&["deploy", "--grace", "1s"]));
}

#[test]
#[cfg_attr(
    missing_tool = "terraform",
    ignore = "terraform does not run here; CI fails instead of skipping"
)]
fn planned_only() {
    if !require_tools(&["terraform"]) {
        return;
    }
    check("planned-only", &terraform_repo().run(&["deploy"]));
}
