//! What a run shows off a terminal (CI): compact by default, the full stream on request,
//! no colour codes anywhere a file or a CI log holds them; and a display that nobody reads
//! never costs unbounded memory nor keeps bitops from obeying SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{assert_no_survivors, kill_recorded, poll, wait_bounded, TestRepo};

/// Eight deployments, each printing twenty lines; `e4/d` fails.
fn chatty_repo() -> TestRepo {
    let repo = TestRepo::new();
    for i in 0..8 {
        let env = format!("e{i}");
        repo.env(&env, "deployments:\n  d: {plugin: sh}\n");
        let fail = if i == 4 {
            "; echo 'the last words'; exit 3"
        } else {
            ""
        };
        repo.dep(
            &env,
            "d",
            &format!("for n in $(seq 1 20); do echo \"output line $n of {env}\"; done{fail}"),
        );
    }
    repo
}

#[test]
fn ci_shows_starts_ends_and_the_failures_tail_by_default() {
    let repo = chatty_repo();
    let out = repo.run_env(&["deploy", "--keep-going"], &[("CI", "true")]);
    assert_eq!(out.code, 1, "{out}");
    let lines = out.stderr.lines().count();
    // 8 starts + 8 ends + the failure's last 10 lines and log path + the summary with the
    // failure's tail.
    assert!(lines < 80, "{lines} lines for 8 deployments:\n{out}");
    for i in 0..8 {
        assert!(out.stderr.contains(&format!("▶ start e{i}/d")), "{out}");
    }
    assert!(out.stderr.contains("✔ e0/d succeeded in"), "{out}");
    assert!(out.stderr.contains("✘ e4/d failed after"), "{out}");
    let failure = out.stderr.find("✘ e4/d failed").unwrap();
    let after = &out.stderr[failure..];
    assert!(
        after.contains("  │ the last words") && after.contains("full log: "),
        "the tail follows the failure: {out}"
    );
    assert!(
        !out.stderr.contains("output line 3 of e0"),
        "successful output stays in the logs: {out}"
    );
    let log = std::fs::read_to_string(repo.run_dirs()[0].join("logs/e0__d.log")).unwrap();
    assert!(log.contains("output line 3 of e0"), "{log}");

    // A run where all succeed: a header, 8 starts, 8 ends, the summary.
    let out = repo.run_env(&["deploy", "-e", "e0,e1,e2,e3,e5,e6,e7"], &[("CI", "true")]);
    assert_eq!(out.code, 0, "{out}");
    let lines = out.stderr.lines().count();
    assert!(lines <= 30, "{lines} lines:\n{out}");

    // The whole stream on request, every line prefixed.
    let out = repo.run_env(
        &["deploy", "--keep-going", "--output", "stream"],
        &[("CI", "true")],
    );
    assert_eq!(out.code, 1, "{out}");
    for i in 0..8 {
        assert!(
            out.stderr
                .contains(&format!("[e{i}/d] output line 20 of e{i}\n")),
            "{out}"
        );
    }
    // `lines`, its earlier name, still works.
    let out = repo.run_env(
        &["deploy", "--keep-going", "--output", "lines", "-e", "e0"],
        &[("CI", "true")],
    );
    assert!(out.stderr.contains("[e0/d] output line 1 of e0"), "{out}");
}

const COLOURED: &str = r#"printf '\033[1;32mgreen\033[0m and \033[4mplain\033[0m\n'; env | grep -E '^(NO_COLOR|ANSIBLE_NOCOLOR|TF_IN_AUTOMATION|TF_CLI_ARGS_plan)=' | sort; exit 1"#;

#[test]
fn off_a_terminal_tools_are_asked_for_plain_text_and_colour_is_stripped() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", COLOURED);
    let report = repo.tmp().join("report.json");
    let out = repo.run(&[
        "deploy",
        "--output",
        "stream",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        !out.all().contains('\x1b'),
        "colour codes in CI output:\n{out}"
    );
    assert!(out.stderr.contains("[e/d] green and plain"), "{out}");
    for var in [
        "NO_COLOR=1",
        "ANSIBLE_NOCOLOR=1",
        "TF_IN_AUTOMATION=1",
        "TF_CLI_ARGS_plan=-no-color",
    ] {
        assert!(
            out.stderr.contains(var),
            "tools are not asked ({var}):\n{out}"
        );
    }
    let log = std::fs::read_to_string(repo.run_dirs()[0].join("logs/e__d.log")).unwrap();
    assert!(
        log.contains("green and plain") && !log.contains('\x1b'),
        "{log:?}"
    );
    let report = std::fs::read_to_string(report).unwrap();
    assert!(
        report.contains("green and plain") && !report.contains("\\u001b"),
        "{report}"
    );

    // Colours asked for: the tools are left alone and their colours reach the display, never
    // the log file.
    let out = repo.run(&["deploy", "--output", "stream", "--color", "always"]);
    assert!(
        out.stderr.contains("[e/d] \x1b[1;32mgreen\x1b[0m"),
        "colours pass through: {out}"
    );
    assert!(!out.stderr.contains("NO_COLOR=1"), "{out}");
    let newest = repo.run_dirs().into_iter().max().unwrap();
    let log = std::fs::read_to_string(newest.join("logs/e__d.log")).unwrap();
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// The deployment writes `MB` megabytes of output as fast as it can, recording its pids, and
/// then waits forever; bitops' stderr is a pipe nobody reads.
fn flood(mb: usize) -> (TestRepo, std::process::Child, std::process::ChildStderr) {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "e",
        "d",
        &format!(
            "mkdir -p \"$T_OUT/pids\"; echo $$ > \"$T_OUT/pids/inner\"\n\
             yes 'a line of deployment output, about sixty characters long....' | head -c {mb}M\n\
             touch \"$T_OUT/written\"\n\
             sleep 1000 & echo $! > \"$T_OUT/pids/background\"; wait\n"
        ),
    );
    let mut cmd = repo.command(&["deploy", "--output", "stream", "--grace", "2s"]);
    cmd.stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("bitops starts");
    let stderr = child.stderr.take().expect("piped");
    (repo, child, stderr)
}

/// Peak resident memory of a live process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kb / 1024
}

#[test]
fn an_unread_stderr_bounds_memory_and_sigterm_still_ends_the_run() {
    let (repo, mut child, stderr) = flood(200);
    poll(
        Duration::from_secs(120),
        "200 MB of output to be logged and the background pid recorded",
        // `background` comes last: waiting for `written` alone raced the pid being recorded.
        || {
            std::fs::read_to_string(repo.out_file("pids/background"))
                .ok()
                .filter(|p| p.ends_with('\n'))
                .map(|_| ())
        },
    );
    let peak = peak_rss_mib(child.id());
    let sent = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(60));
    let took = sent.elapsed();
    drop(stderr);
    if code != 143 {
        kill_recorded(&repo);
    }
    assert_eq!(
        code, 143,
        "bitops did not end on SIGTERM with stderr blocked"
    );
    assert_no_survivors(&repo, &["inner", "background"]);
    // Every line is in the log even though the display dropped most of them.
    let log = repo.run_dirs()[0].join("logs/e__d.log");
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(
        size >= 200 * 1024 * 1024,
        "the log is complete: {size} bytes"
    );
    assert!(
        peak < 120,
        "bitops held {peak} MiB while 200 MiB of output waited for a display nobody read"
    );
    eprintln!("peak RSS {peak} MiB; exited {took:?} after SIGTERM");
}

#[test]
fn sigterm_while_the_summary_waits_for_an_unread_stderr() {
    // The run itself ends; only its display is stuck behind a full pipe.
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "yes 'some output' | head -c 8M");
    let mut cmd = repo.command(&["deploy", "--output", "stream"]);
    cmd.stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("bitops starts");
    let stderr = child.stderr.take();
    // The report is written once the run is over, before the display is waited for.
    poll(Duration::from_secs(120), "the run to end", || {
        repo.run_dirs()
            .first()
            .map(|d| d.join("report.json"))
            .filter(|r| r.exists())
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "bitops should still be writing to its stderr"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let code = wait_bounded(&mut child, Duration::from_secs(30));
    drop(stderr);
    assert_eq!(code, 143);
}
