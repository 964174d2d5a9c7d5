//! Reports of a real run (issue 5): the JSON report against its published schema, the JUnit file
//! through a real JUnit reader, and the HTML timeline in headless Chromium — for a run with a
//! success, a failure, a skip and a timeout.

use std::process::Command;

use crate::harness::{require_tools, TestRepo};

fn mixed_run(repo: &TestRepo) -> (serde_json::Value, std::path::PathBuf, std::path::PathBuf) {
    repo.env(
        "a",
        "deployments:\n  ok: {plugin: sh}\n  bad: {plugin: sh, depends_on: []}\n  after-bad: {plugin: sh, depends_on: [bad]}\n  slow: {plugin: sh, depends_on: [], timeout: 1}\n",
    );
    repo.dep("a", "ok", "echo fine");
    repo.dep("a", "bad", "echo broken; exit 3");
    repo.dep("a", "after-bad", "true");
    repo.dep("a", "slow", "sleep 30");
    let report = repo.tmp().join("report.json");
    let junit = repo.tmp().join("junit.xml");
    let out = repo.run(&[
        "deploy",
        "--keep-going",
        "--progress",
        "plain",
        "--grace",
        "1s",
        "--report",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (json, report, junit)
}

fn status_of<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} in report"))
}

#[test]
fn a_mixed_run_is_reported_and_every_report_loads_in_real_tools() {
    let repo = TestRepo::new();
    let (report, report_path, junit) = mixed_run(&repo);

    assert_eq!(report["report_version"], 1);
    assert_eq!(status_of(&report, "a/ok")["status"], "succeeded");
    assert_eq!(status_of(&report, "a/ok")["exit_code"], 0);
    assert_eq!(status_of(&report, "a/bad")["status"], "failed");
    assert_eq!(status_of(&report, "a/bad")["exit_code"], 3);
    assert!(status_of(&report, "a/bad")["log_tail"]
        .to_string()
        .contains("broken"));
    assert_eq!(status_of(&report, "a/after-bad")["status"], "skipped");
    assert_eq!(status_of(&report, "a/slow")["status"], "timed_out");
    assert!(status_of(&report, "a/slow")["reason"]
        .as_str()
        .unwrap()
        .contains("timed out after 1s"));
    // The run folder keeps its own copy, which `bitops report` reads.
    let kept = repo.run_dirs()[0].join("report.json");
    assert!(kept.exists());

    if require_tools(&["check-jsonschema"]) {
        let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");
        let out = Command::new("check-jsonschema")
            .args(["--schemafile", schema])
            .arg(&report_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    if require_tools(&["python3"]) {
        let script = r#"
import sys, junitparser
xml = junitparser.JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    cases = list(suite)
    failed = sum(1 for c in cases if any(isinstance(r, (junitparser.Failure, junitparser.Error)) for r in c.result))
    skipped = sum(1 for c in cases if any(isinstance(r, junitparser.Skipped) for r in c.result))
    print(suite.name, len(cases), failed, skipped)
"#;
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&junit)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("No module named 'junitparser'") {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set and junitparser is not installed"
            );
            eprintln!("skipped: junitparser not installed");
        } else {
            assert!(out.status.success(), "{stderr}");
            // One suite for environment `a`: 4 cases, `bad` and `slow` failed, `after-bad` skipped.
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a 4 2 1");
        }
    }

    if require_tools(&["chromium"]) {
        let html = repo.tmp().join("timeline.html");
        let out = repo.run(&["report", "--html", html.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{out}");
        let check = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-html.sh");
        let out = Command::new("bash").arg(check).arg(&html).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("ok, 4 bars"), "{text}");
    }
}

#[test]
fn report_prints_an_earlier_run_and_the_slowest_deployments() {
    let repo = TestRepo::new();
    mixed_run(&repo);
    let out = repo.run(&["report"]);
    assert_eq!(out.code, 0, "{out}");
    let all = out.all();
    for needle in ["a/ok", "a/bad", "a/after-bad", "a/slow", "timed out"] {
        assert!(all.contains(needle), "{needle} missing:\n{all}");
    }
    let out = repo.run(&["report", "--slowest"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.all().contains("a/ok"), "{out}");
    let out = repo.run(&["report", "no-such-run"]);
    assert_eq!(out.code, 2, "{out}");
}
