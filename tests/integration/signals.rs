//! Signals to bitops: forwarded to running deployments, exit 130/143, nothing left behind;
//! a SIGKILLed bitops still leaves the log so far on disk.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{
    assert_no_survivors, assert_unchanged, kill_recorded, poll, wait_bounded, TestRepo,
};

/// A deployment that records its pids (its deploy script, itself, a background `sleep`),
/// traps SIGINT/SIGTERM (writing which one into `out/trapped`, then exiting unless `stay`),
/// says it is ready, and loops forever. A dependent deployment must never start.
fn repo(stay: bool) -> TestRepo {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  long: {plugin: sh}\n  next: {plugin: sh}\n",
    );
    let exit = if stay { "" } else { "; exit 0" };
    repo.dep(
        "e",
        "long",
        &format!(
            "mkdir -p \"$T_OUT/pids\"; echo $$ > \"$T_OUT/pids/inner\"; echo $PPID > \"$T_OUT/pids/deploy-script\"\n\
             sleep 1000 &\necho $! > \"$T_OUT/pids/background\"\n\
             trap 'echo INT >> \"$T_OUT/trapped\"{exit}' INT\n\
             trap 'echo TERM >> \"$T_OUT/trapped\"{exit}' TERM\n\
             echo 'marker: deployment is running'\n\
             touch \"$T_OUT/ready\"\n\
             while :; do sleep 0.1; done\n"
        ),
    );
    repo.dep("e", "next", "true");
    repo
}

fn start(repo: &TestRepo) -> std::process::Child {
    let child = repo.spawn(&[
        "deploy",
        "--progress",
        "plain",
        "--color",
        "never",
        "--grace",
        "5s",
    ]);
    poll(Duration::from_secs(60), "the deployment to start", || {
        repo.out_file("ready").exists().then_some(())
    });
    child
}

fn signal_test(sig: Signal, name: &str, code: i32) {
    let repo = repo(false);
    let before = repo.hash();
    let mut child = start(&repo);
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let stderr = repo.stderr_so_far();
    assert_eq!(status, code, "{stderr}");
    assert_eq!(
        repo.read_out("trapped").trim(),
        name,
        "the signal was not forwarded: {stderr}"
    );
    assert_no_survivors(&repo, &["deploy-script", "inner", "background"]);
    assert!(
        !repo.trace().ran("e/next"),
        "a deployment started after the signal"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("e/long"), "{stderr}");
    assert_unchanged(&repo, &before);
}

#[test]
fn sigint_is_forwarded_and_exits_130() {
    signal_test(Signal::SIGINT, "INT", 130);
}

#[test]
fn sigterm_is_forwarded_and_exits_143() {
    signal_test(Signal::SIGTERM, "TERM", 143);
}

#[test]
fn a_second_signal_kills_what_ignores_the_first() {
    let repo = repo(true);
    let mut child = start(&repo);
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    poll(
        Duration::from_secs(30),
        "the first signal to be trapped",
        || {
            std::fs::read_to_string(repo.out_file("trapped"))
                .ok()
                .filter(|t| t.contains("INT"))
        },
    );
    // The deployment shrugged it off; bitops waits (its grace period is long) until asked again.
    kill(pid, Signal::SIGINT).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    assert_eq!(status, 130, "{}", repo.stderr_so_far());
    assert_no_survivors(&repo, &["deploy-script", "inner", "background"]);
}

#[test]
fn sigkill_leaves_the_log_so_far_on_disk() {
    let repo = repo(false);
    let before = repo.hash();
    let mut child = start(&repo);
    let log = poll(Duration::from_secs(30), "the log line", || {
        let log = repo.run_dirs().first()?.join("logs/e/long.log");
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("marker: deployment is running"))
            .map(|_| log)
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert_eq!(status, 137);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("marker: deployment is running"), "{text}");
    // A SIGKILLed bitops cannot clean up: the test does.
    kill_recorded(&repo);
    assert_no_survivors(&repo, &["deploy-script", "inner", "background"]);
    assert_unchanged(&repo, &before);
}
