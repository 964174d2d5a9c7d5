//! `bitops.logging.masks` hide secrets on the terminal and in log files; logs are private.

use std::os::unix::fs::PermissionsExt;

use crate::harness::TestRepo;

#[test]
fn masks_hide_secrets_in_terminal_output_and_log_files() {
    let repo = TestRepo::with_repo_config(
        "logging:\n  masks:\n    - search: hunter2\n      replace: '*****'\n    - search: 'token=(\\w+)'\n      replace: 'token=[MASKED]'\n",
    );
    repo.env(
        "e",
        "deployments:\n  ok: {plugin: sh}\n  bad: {plugin: sh, depends_on: []}\n",
    );
    repo.dep(
        "e",
        "ok",
        "echo 'password is hunter2, token=abc123'; echo 'stderr hunter2' >&2",
    );
    repo.dep(
        "e",
        "bad",
        "echo 'failing with hunter2 token=abc123'; exit 1",
    );
    for output in ["lines", "grouped"] {
        let out = repo.run(&[
            "deploy",
            "--keep-going",
            "--progress",
            "plain",
            "--output",
            output,
            "--color",
            "never",
        ]);
        assert_eq!(out.code, 1, "{out}");
        let all = out.all();
        assert!(
            !all.contains("hunter2") && !all.contains("abc123"),
            "a secret reached the terminal ({output}):\n{all}"
        );
        assert!(all.contains("password is *****, token=[MASKED]"), "{all}");
        assert!(
            all.contains("failing with ***** token=[MASKED]"),
            "the failure's tail is masked too: {all}"
        );
    }
    let mut logs = 0;
    for run in repo.run_dirs() {
        for dep in ["ok", "bad"] {
            let log = run.join(format!("logs/e__{dep}.log"));
            let text = std::fs::read_to_string(&log).unwrap();
            assert!(
                !text.contains("hunter2") && !text.contains("abc123"),
                "{}: {text}",
                log.display()
            );
            assert!(text.contains("*****"), "{}: {text}", log.display());
            let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", log.display());
            logs += 1;
        }
    }
    assert_eq!(logs, 4);
}

#[test]
fn plan_output_is_masked_too() {
    let repo = TestRepo::with_repo_config(
        "logging:\n  masks:\n    - search: hunter2\n      replace: '*****'\n",
    );
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo 'password is hunter2'");
    for format in ["text", "json"] {
        let out = repo.run(&["plan", "--format", format, "--color", "never"]);
        assert_eq!(out.code, 0, "{out}");
        assert!(
            !out.all().contains("hunter2"),
            "plan --format {format} shows a masked secret:\n{out}"
        );
    }
}
