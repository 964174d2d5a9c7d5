//! Tests of `process` against real `sh` processes: what they promise is about real process
//! groups and signals, which a mock could not show.

use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::*;

/// A safety net so that a broken `run` fails its test instead of hanging the suite.
const HANG_LIMIT: Duration = Duration::from_secs(20);

fn env() -> BTreeMap<OsString, OsString> {
    BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())])
}

fn sh(script: &str, dir: &Path) -> CommandSpec {
    CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: dir.to_owned(),
        env: env(),
    }
}

fn limits(timeout: Option<Duration>, grace: Duration) -> Limits {
    Limits { timeout, grace }
}

async fn run_collect(spec: &CommandSpec, limits: &Limits) -> (ProcessEnd, Vec<String>) {
    let (_tx, mut rx) = watch::channel(StopRequest::None);
    let mut lines = Vec::new();
    let end = tokio::time::timeout(
        HANG_LIMIT,
        run(spec, limits, &mut rx, |_, line| lines.push(line.to_owned())),
    )
    .await
    .expect("run did not return");
    (end, lines)
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn read_pid(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad pid file {text:?}"))
}

/// Gone, or a zombie: an orphan reparented to an init that does not reap is dead all the same.
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => matches!(parse_stat(&stat), Some(('Z' | 'X' | 'x', _))),
    }
}

/// For processes that were sent SIGKILL: it is delivered asynchronously.
async fn wait_until_dead(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still alive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn exit_code_is_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let no_limits = limits(None, Duration::from_secs(1));
    let (end, _) = run_collect(&sh("exit 3", dir.path()), &no_limits).await;
    assert!(matches!(end, ProcessEnd::Exited(3)), "{end:?}");
    let (end, _) = run_collect(&sh("true", dir.path()), &no_limits).await;
    assert!(end.success(), "{end:?}");
}

#[tokio::test]
async fn death_by_signal_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (end, _) = run_collect(
        &sh("kill -KILL $$", dir.path()),
        &limits(None, Duration::from_secs(1)),
    )
    .await;
    assert!(matches!(end, ProcessEnd::Signaled(9)), "{end:?}");
}

#[tokio::test]
async fn spawn_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = sh("", dir.path());
    spec.program = "/nonexistent/bitops-test-program".into();
    let (end, lines) = run_collect(&spec, &limits(None, Duration::from_secs(1))).await;
    match end {
        ProcessEnd::SpawnFailed(err) => assert_eq!(err.kind(), io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(lines.is_empty());
}

#[tokio::test]
async fn stdout_and_stderr_lines_both_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let script = r"echo out1; echo err1 >&2; echo out2; printf 'a\377b\r\nno newline'";
    let (end, mut lines) = run_collect(
        &sh(script, dir.path()),
        &limits(None, Duration::from_secs(1)),
    )
    .await;
    assert!(end.success(), "{end:?}");
    // The two pipes are read concurrently, so only each stream's own order is defined.
    lines.sort();
    assert_eq!(lines, ["a\u{FFFD}b", "err1", "no newline", "out1", "out2"]);
}

#[tokio::test]
async fn chatty_child_writing_megabytes_to_both_streams_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    // stderr first: reading only stdout until EOF would block the child on a full stderr pipe.
    let padding = "x".repeat(50);
    let script = format!(
        "yes 'err {padding}' | head -n 25000 >&2; yes 'out {padding}' | head -n 25000; \
         yes 'err {padding}' | head -n 25000 >&2"
    );
    let (_tx, mut rx) = watch::channel(StopRequest::None);
    let (mut out, mut err, mut bytes) = (0, 0, 0);
    let end = tokio::time::timeout(
        HANG_LIMIT,
        run(
            &sh(&script, dir.path()),
            &limits(None, Duration::from_secs(1)),
            &mut rx,
            |_, line| {
                bytes += line.len() + 1;
                if line.starts_with("out ") {
                    out += 1;
                } else if line.starts_with("err ") {
                    err += 1;
                }
            },
        ),
    )
    .await
    .expect("run did not return");
    assert!(end.success(), "{end:?}");
    assert_eq!((out, err), (25_000, 50_000));
    assert!(bytes > 3 << 20, "{bytes} bytes");
}

#[tokio::test]
async fn long_lines_are_cut_without_unbounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let script = r"head -c 150000 /dev/zero | tr '\0' x; echo; echo after";
    let (end, lines) = run_collect(
        &sh(script, dir.path()),
        &limits(None, Duration::from_secs(1)),
    )
    .await;
    assert!(end.success(), "{end:?}");
    let lengths: Vec<usize> = lines.iter().map(String::len).collect();
    assert_eq!(
        lengths,
        [
            MAX_LINE_BYTES,
            MAX_LINE_BYTES,
            150_000 - 2 * MAX_LINE_BYTES,
            5
        ]
    );
    assert_eq!(lines[3], "after");
}

#[test]
fn long_lines_are_cut_between_characters() {
    let line = format!("a{}", "é".repeat(40_000));
    let mut pieces = Vec::new();
    let mut splitter = LineSplitter::default();
    for chunk in line.as_bytes().chunks(1000) {
        splitter.push(chunk, &mut |piece: &str| pieces.push(piece.to_owned()));
    }
    splitter.finish(&mut |piece: &str| pieces.push(piece.to_owned()));
    assert!(pieces.len() > 1);
    assert!(pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES));
    assert_eq!(pieces.concat(), line);
}

#[tokio::test]
async fn environment_is_exactly_the_given_one() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        std::env::vars_os().any(|(name, _)| name != "PATH"),
        "the test needs variables of its own that could leak"
    );
    let mut env = env();
    env.insert("BITOPS_TEST_VALUE".into(), "a b".into());
    let spec = CommandSpec {
        program: "env".into(),
        args: vec![],
        cwd: dir.path().to_owned(),
        env,
    };
    let (end, mut lines) = run_collect(&spec, &limits(None, Duration::from_secs(1))).await;
    assert!(end.success(), "{end:?}");
    lines.sort();
    // The one variable bitops adds: the tag that finds the process's descendants later.
    let tag = format!("{}=", crate::exec::lifetime::TAG_VAR);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with(&tag)).count(),
        1,
        "{lines:?}"
    );
    lines.retain(|l| !l.starts_with(&tag));
    assert_eq!(lines, ["BITOPS_TEST_VALUE=a b", "PATH=/usr/bin:/bin"]);
}

#[tokio::test]
async fn the_fork_fallback_gives_the_same_process() {
    // Where the kernel refuses the vfork-fast clone, std's fork path starts the step: same
    // group, same empty signal mask, same environment, same exit status.
    let dir = tempfile::tempdir().unwrap();
    let script = "grep '^SigBlk:' /proc/self/status; \
                  [ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ] && echo own-group; \
                  env | grep -c . ; exit 3";
    // bitops blocks the signals it takes in every thread: the child must not inherit that.
    let mut usr2 = nix::sys::signal::SigSet::empty();
    usr2.add(nix::sys::signal::Signal::SIGUSR2);
    usr2.thread_block().unwrap();
    let mut outs = Vec::new();
    for force in [false, true] {
        FORCE_FORK.with(|f| f.set(force));
        let (end, lines) =
            run_collect(&sh(script, dir.path()), &limits(None, Duration::ZERO)).await;
        assert!(matches!(end, ProcessEnd::Exited(3)), "{end:?}");
        outs.push(lines);
    }
    FORCE_FORK.with(|f| f.set(false));
    usr2.thread_unblock().unwrap();
    assert_eq!(outs[0], outs[1]);
    assert!(
        outs[1].contains(&"SigBlk:\t0000000000000000".to_owned()),
        "{:?}",
        outs[1]
    );
    assert!(outs[1].contains(&"own-group".to_owned()), "{:?}", outs[1]);
}

#[tokio::test]
async fn runs_in_the_given_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (end, lines) = run_collect(&sh("pwd -P", dir.path()), &limits(None, Duration::ZERO)).await;
    assert!(end.success(), "{end:?}");
    assert_eq!(
        lines,
        [dir.path().canonicalize().unwrap().to_str().unwrap()]
    );
}

#[tokio::test]
async fn timeout_ends_the_whole_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sleep 300 & echo $! > grandchild.pid; sleep 300";
    let timeout = Duration::from_millis(500);
    let (end, _) = run_collect(
        &sh(script, dir.path()),
        &limits(Some(timeout), Duration::from_secs(1)),
    )
    .await;
    assert!(
        matches!(end, ProcessEnd::TimedOut { after } if after == timeout),
        "{end:?}"
    );
    // `run` returns only once no member of the group is alive, so no waiting here.
    let grandchild = read_pid(&dir.path().join("grandchild.pid"));
    assert!(is_dead(grandchild), "grandchild {grandchild} survived");
}

#[tokio::test]
async fn child_that_handles_term_and_exits_is_timed_out_without_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let script = "trap 'exit 5' TERM; while :; do sleep 0.05; done";
    let grace = Duration::from_secs(2);
    let started = Instant::now();
    let (end, _) = run_collect(
        &sh(script, dir.path()),
        &limits(Some(Duration::from_millis(300)), grace),
    )
    .await;
    assert!(matches!(end, ProcessEnd::TimedOut { .. }), "{end:?}");
    assert!(
        started.elapsed() < grace,
        "took {:?}: SIGTERM did not end it, SIGKILL did",
        started.elapsed()
    );
}

#[tokio::test]
async fn background_process_of_a_finished_hook_is_stopped_promptly() {
    let dir = tempfile::tempdir().unwrap();
    // The grandchild holds the output pipe open: without stopping it, reading would never end.
    let script = "sleep 300 & echo $! > grandchild.pid; echo done";
    let grace = Duration::from_secs(2);
    let started = Instant::now();
    let (end, lines) = run_collect(&sh(script, dir.path()), &limits(None, grace)).await;
    assert!(matches!(end, ProcessEnd::Exited(0)), "{end:?}");
    assert_eq!(lines, ["done"]);
    // Well under the grace period: the grandchild died of SIGTERM, and a zombie is not waited
    // for (an init that reaps late would otherwise cost the whole grace).
    assert!(
        started.elapsed() < grace / 2,
        "took {:?}: waited for the grace period or the drain timeout",
        started.elapsed()
    );
    let grandchild = read_pid(&dir.path().join("grandchild.pid"));
    assert!(is_dead(grandchild), "grandchild {grandchild} survived");
}

#[tokio::test]
async fn background_process_ignoring_term_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let script = "trap '' TERM; sleep 300 & echo $! > grandchild.pid; exit 4";
    let (end, _) = run_collect(
        &sh(script, dir.path()),
        &limits(None, Duration::from_millis(300)),
    )
    .await;
    assert!(matches!(end, ProcessEnd::Exited(4)), "{end:?}");
    wait_until_dead(read_pid(&dir.path().join("grandchild.pid"))).await;
}

/// Runs a hook whose grandchild leaves the group with `setsid` (through `prefix`, e.g. `env -i`)
/// and keeps the pipe open. The hook ends only once the grandchild is out of the group, or the
/// group signals sent when the hook exits would still reach it.
async fn escaping_hook(prefix: &str) -> (ProcessEnd, Vec<String>, i32, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "{prefix} setsid sh -c 'echo $$ > escaped.pid; exec sleep 300' & \
         while [ ! -s escaped.pid ]; do sleep 0.01; done; echo done"
    );
    let started = Instant::now();
    let (end, lines) = run_collect(
        &sh(&script, dir.path()),
        &limits(None, Duration::from_millis(200)),
    )
    .await;
    let took = started.elapsed();
    (end, lines, read_pid(&dir.path().join("escaped.pid")), took)
}

#[tokio::test]
async fn process_that_left_the_group_is_ended_and_does_not_hold_up_the_step() {
    let (end, lines, escaped, took) = escaping_hook("").await;
    let stat = crate::exec::lifetime::stat(escaped);
    let _ = nix::sys::signal::kill(Pid::from_raw(escaped), Signal::SIGKILL);
    assert!(matches!(end, ProcessEnd::Exited(0)), "{end:?}");
    assert_eq!(lines, ["done"]);
    // It carried the step's tag: ended (SIGTERM) once the group was gone, which closed the pipe.
    assert!(stat.is_none_or(|s| s.zombie()), "{stat:?}");
    assert!(took < DRAIN_TIMEOUT, "took {took:?}");
}

#[tokio::test]
async fn untagged_escapee_holding_the_pipe_is_abandoned_after_the_drain_timeout() {
    // `env -i` drops the tag: nothing finds it (the end of a run sweeps orphans re-parented to
    // bitops); the step still ends, after the drain timeout.
    let (end, lines, escaped, took) = escaping_hook("env -i PATH=/usr/bin:/bin").await;
    // Not ours to leave running once the test has shown what it needed.
    let _ = nix::sys::signal::kill(Pid::from_raw(escaped), Signal::SIGKILL);
    assert!(matches!(end, ProcessEnd::Exited(0)), "{end:?}");
    assert_eq!(lines, ["done"]);
    assert!(took >= DRAIN_TIMEOUT, "took {took:?}");
    assert!(took < DRAIN_TIMEOUT * 3, "took {took:?}");
}

#[tokio::test]
async fn forwarded_interrupt_reaches_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = "trap 'exit 7' INT; touch ready; while :; do sleep 0.05; done";
    let (tx, mut rx) = watch::channel(StopRequest::None);
    let spec = sh(script, dir.path());
    let no_limits = limits(None, Duration::from_secs(1));
    let trigger = async {
        wait_for_file(&ready).await;
        tx.send(StopRequest::Forward(Sig::Int)).unwrap();
    };
    let (end, ()) = tokio::time::timeout(HANG_LIMIT, async {
        tokio::join!(run(&spec, &no_limits, &mut rx, |_, _| {}), trigger)
    })
    .await
    .expect("run did not return");
    assert!(
        matches!(
            end,
            ProcessEnd::Stopped {
                request: StopRequest::Forward(Sig::Int),
                status: Some(7)
            }
        ),
        "{end:?} (is SIGINT ignored in the test process? then sh cannot trap it)"
    );
}

#[tokio::test]
async fn kill_ends_a_child_that_survives_the_forwarded_signal() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let got_term = dir.path().join("got-term");
    let script = "trap 'touch got-term' TERM; touch ready; while :; do sleep 0.05; done";
    let (tx, mut rx) = watch::channel(StopRequest::None);
    let spec = sh(script, dir.path());
    let no_limits = limits(None, Duration::from_secs(1));
    let trigger = async {
        wait_for_file(&ready).await;
        tx.send(StopRequest::Forward(Sig::Term)).unwrap();
        // The forwarded signal arrived and the child carried on: only `Kill` can end it now.
        wait_for_file(&got_term).await;
        tx.send(StopRequest::Kill).unwrap();
    };
    let (end, ()) = tokio::time::timeout(HANG_LIMIT, async {
        tokio::join!(run(&spec, &no_limits, &mut rx, |_, _| {}), trigger)
    })
    .await
    .expect("run did not return");
    assert!(
        matches!(
            end,
            ProcessEnd::Stopped {
                request: StopRequest::Kill,
                status: Some(137)
            }
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn stop_requested_before_start_spawns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    for request in [StopRequest::Forward(Sig::Int), StopRequest::Kill] {
        let (_tx, mut rx) = watch::channel(request);
        let end = run(
            &sh("touch ran", dir.path()),
            &limits(None, Duration::ZERO),
            &mut rx,
            |_, _| {},
        )
        .await;
        assert!(
            matches!(end, ProcessEnd::Stopped { request: r, status: None } if r == request),
            "{end:?}"
        );
        assert!(!marker.exists());
    }
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = "sleep 300 & echo $! > grandchild.pid; touch ready; sleep 300";
    let (_tx, mut rx) = watch::channel(StopRequest::None);
    let spec = sh(script, dir.path());
    let no_limits = limits(None, Duration::from_secs(60));
    tokio::select! {
        end = run(&spec, &no_limits, &mut rx, |_, _| {}) => panic!("ended on its own: {end:?}"),
        () = wait_for_file(&ready) => {}
    }
    wait_until_dead(read_pid(&dir.path().join("grandchild.pid"))).await;
}

#[test]
fn display_quotes_for_a_shell() {
    let spec = CommandSpec {
        program: "terraform".into(),
        args: ["apply", "-var", "name=it's here", "", "a/b.tf"]
            .map(OsString::from)
            .to_vec(),
        cwd: PathBuf::from("/"),
        env: BTreeMap::new(),
    };
    assert_eq!(
        spec.display(),
        r"terraform apply -var 'name=it'\''s here' '' a/b.tf"
    );
}

#[test]
fn stat_is_parsed_after_the_command_name() {
    let stat = "4242 (a) b (c)) S 1 777 777 0 -1 4194560";
    assert_eq!(parse_stat(stat), Some(('S', 777)));
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn ends_read_well_in_logs() {
    let cases = [
        (ProcessEnd::Exited(2), "exited with code 2"),
        (ProcessEnd::Signaled(9), "killed by SIGKILL"),
        (
            ProcessEnd::TimedOut {
                after: Duration::from_secs(90),
            },
            "timed out after 1m 30s",
        ),
        (
            ProcessEnd::Stopped {
                request: StopRequest::Forward(Sig::Int),
                status: Some(130),
            },
            "stopped by forwarded SIGINT (status 130)",
        ),
    ];
    for (end, text) in cases {
        assert_eq!(end.to_string(), text);
    }
}

#[tokio::test]
async fn a_process_that_left_the_session_is_ended_with_its_step() {
    let dir = tempfile::tempdir().unwrap();
    // `setsid` in a background job (not a group leader) execs directly: `$!` is the daemon.
    let (end, lines) = run_collect(
        &sh("setsid sleep 1000 & echo $!", dir.path()),
        &limits(None, Duration::from_secs(1)),
    )
    .await;
    assert!(end.success(), "{end:?}");
    let pid: i32 = lines[0].trim().parse().unwrap();
    // Checked as soon as `run` returns: a step is over only when its escapees are too.
    let stat = crate::exec::lifetime::stat(pid);
    assert!(
        stat.is_none_or(|s| s.zombie()),
        "the escaped daemon {pid} still runs: {stat:?}"
    );
}
