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
        let log = repo.run_dirs().first()?.join("logs/e__long.log");
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
    // A SIGKILLed bitops cannot clean up; its parent-death signal and watchdog do (see
    // faults.rs for escaped processes). `kill_recorded` only keeps a failure here from leaving
    // processes behind.
    poll(
        Duration::from_secs(30),
        "the deployment to die with bitops",
        || {
            crate::harness::recorded_pids(&repo)
                .iter()
                .all(|(_, p)| crate::harness::process_gone(*p))
                .then_some(())
        },
    );
    assert_no_survivors(&repo, &["deploy-script", "inner", "background"]);
    kill_recorded(&repo);
    assert_unchanged(&repo, &before);
    // Its lock stays behind: the next run says so and runs nothing until told to break it. It
    // is stale once no process of the run (the watchdog included) is alive.
    repo.dep("e", "long", "true");
    poll(
        Duration::from_secs(30),
        "the lock to be reported stale",
        || {
            let out = repo.run(&["deploy", "--progress", "plain"]);
            assert_eq!(out.code, 4, "{out}");
            out.stderr.contains("stale").then_some(())
        },
    );
    let out = repo.run(&["deploy", "--progress", "plain", "--break-stale-locks"]);
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn a_signal_during_the_retry_backoff_stops_the_run() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh, retries: 5}\n  next: {plugin: sh}\n",
    );
    repo.dep("e", "d", "exit 1");
    repo.dep("e", "next", "true");
    let mut child = repo.spawn(&["deploy", "--progress", "plain", "--color", "never"]);
    poll(Duration::from_secs(60), "the first retry", || {
        repo.stderr_so_far().contains("↻ retry").then_some(())
    });
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let stderr = repo.stderr_so_far();
    assert_eq!(status, 130, "{stderr}");
    assert_eq!(
        repo.trace().starts,
        vec!["e/d"],
        "an attempt or a dependent started after the signal: {stderr}"
    );
}

/// A tool (think terraform) under a deploy script: on SIGTERM or SIGINT it records the signal,
/// cleans up for a moment (releasing its state lock) and exits. A second signal would make
/// terraform quit at once without releasing the lock, so bitops must deliver exactly one, even
/// though the bash deploy script around the tool dies of SIGTERM at once.
fn tool_winding_down(sig: Signal, name: &str, code: i32) {
    let repo = tool_repo("");
    let mut child = repo.spawn(&[
        "deploy",
        "--progress",
        "plain",
        "--color",
        "never",
        "--grace",
        "10s",
    ]);
    poll(Duration::from_secs(60), "the tool to start", || {
        repo.out_file("ready").exists().then_some(())
    });
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    assert_eq!(status, code, "{}", repo.stderr_so_far());
    assert_eq!(
        repo.read_out("signals"),
        format!("got {name}\nreleased-lock\n"),
        "the tool was signalled more than once, or not allowed to finish"
    );
    assert_no_survivors(&repo, &["tool"]);
}

/// The winding-down tool as deployment `e/tf`; `spec` adds to its deployment entry.
fn tool_repo(spec: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.env("e", &format!("deployments:\n  tf: {{plugin: sh{spec}}}\n"));
    repo.write_exec(
        "_scripts/tool.sh",
        // The handler only notes the signal (bash drops a signal that arrives while its own
        // trap runs); the clean-up runs in the main loop, where a second signal would show.
        "#!/bin/bash\n\
         mkdir -p \"$T_OUT/pids\"; echo $$ > \"$T_OUT/pids/tool\"\n\
         trap 'echo \"got TERM\" >> \"$T_OUT/signals\"; stop=1' TERM\n\
         trap 'echo \"got INT\" >> \"$T_OUT/signals\"; stop=1' INT\n\
         touch \"$T_OUT/ready\"\n\
         while [ -z \"$stop\" ]; do sleep 0.05; done\n\
         for i in $(seq 20); do sleep 0.05; done\n\
         echo released-lock >> \"$T_OUT/signals\"\n\
         exit 0\n",
    );
    repo.dep("e", "tf", "bash \"$BITOPS_TEMPDIR/_scripts/tool.sh\"");
    repo
}

#[test]
fn a_tool_winding_down_after_sigterm_gets_no_second_signal() {
    tool_winding_down(Signal::SIGTERM, "TERM", 143);
}

#[test]
fn a_tool_winding_down_after_sigint_gets_no_second_signal() {
    tool_winding_down(Signal::SIGINT, "INT", 130);
}

#[test]
fn a_tool_winding_down_after_a_timeout_gets_no_second_signal() {
    let repo = tool_repo(", timeout: 1s");
    let out = repo.run(&[
        "deploy",
        "--progress",
        "plain",
        "--color",
        "never",
        "--grace",
        "10s",
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("timed out"), "{out}");
    assert_eq!(
        repo.read_out("signals"),
        "got TERM\nreleased-lock\n",
        "the tool was signalled more than once"
    );
    assert_no_survivors(&repo, &["tool"]);
}
