//! Fault injection (issue 10, items 3, 5, 7, 9): nothing a deployment starts outlives bitops,
//! whatever ends it; a panic exits 3 with nothing left; SIGHUP and SIGQUIT act like SIGTERM;
//! secrets in command lines and output keys are masked everywhere; Ctrl-C while waiting for a
//! lock releases the locks taken.
//!
//! Survivors are found the way an operator would: every bitops run gets a unique `T_MARK`
//! variable, which every process of its deployments inherits (also those that left the process
//! group or the session with `setsid`); after bitops ended, `/proc` must hold no live process
//! carrying it, and none in a process group or session a deployment recorded.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{poll, require_tools, wait_bounded, TestRepo};

/// A live (not zombie) process: pid, pgid, session, command.
#[derive(Debug)]
#[allow(dead_code, reason = "the fields are shown in failure messages")]
struct Proc {
    pid: i32,
    pgid: i32,
    sid: i32,
    cmd: String,
}

fn live_processes() -> Vec<(Proc, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 1..].split_ascii_whitespace().collect();
        if f.len() < 4 || matches!(f[0], "Z" | "X" | "x") {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        out.push((
            Proc {
                pid,
                pgid: f[2].parse().unwrap_or(0),
                sid: f[3].parse().unwrap_or(0),
                cmd,
            },
            environ,
        ));
    }
    out
}

/// Live processes carrying `T_MARK=<mark>`, or in a group or session listed in `groups`.
fn survivors(mark: &str, groups: &[i32]) -> Vec<Proc> {
    let needle = format!("T_MARK={mark}");
    let me = std::process::id() as i32;
    live_processes()
        .into_iter()
        .filter(|(p, env)| {
            p.pid != me
                && (env.split(|&b| b == 0).any(|v| v == needle.as_bytes())
                    || groups.contains(&p.pgid)
                    || groups.contains(&p.sid))
        })
        .map(|(p, _)| p)
        .collect()
}

/// Fails (after killing them) if anything of the run is alive right now.
fn assert_nothing_survives(mark: &str, groups: &[i32], what: &str) {
    let alive = survivors(mark, groups);
    // Clean up only what certainly is the test's: processes carrying its mark.
    for p in survivors(mark, &[]) {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
    assert!(alive.is_empty(), "{what}: processes survived: {alive:#?}");
}

/// Group and session ids the deployment recorded in `out/groups`. The session bitops itself
/// runs in (the test's) is left out: only those the deployment created count.
fn recorded_groups(repo: &TestRepo) -> Vec<i32> {
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<i32> = own[own.rfind(')').unwrap() + 1..]
        .split_ascii_whitespace()
        .skip(2)
        .take(2)
        .map(|w| w.parse().unwrap())
        .collect();
    std::fs::read_to_string(repo.out_file("groups"))
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(|w| w.parse().ok())
        .filter(|&g| g > 1 && !f.contains(&g))
        .collect()
}

fn unique_mark() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A deployment that leaves the process group and the session in every way a script can: a
/// background job, a `setsid` daemon (its own session), and a double-forked `nohup` in a new
/// session. It records their groups and sessions, then runs `then`.
fn escaping_deployment(repo: &TestRepo, then: &str) {
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh}\n  next: {plugin: sh}\n",
    );
    repo.dep(
        "e",
        "d",
        &format!(
            "ps -o pgid= -o sid= -p $$ >> \"$T_OUT/groups\"\n\
             sleep 1000 &\n\
             setsid bash -c 'ps -o pgid= -o sid= -p $$ >> \"$T_OUT/groups\"; touch \"$T_OUT/daemon\"; exec sleep 1000' &\n\
             ( setsid nohup bash -c 'touch \"$T_OUT/nohup\"; exec sleep 1000' >/dev/null 2>&1 & ) \n\
             waitfor \"$T_OUT/daemon\" 30 && waitfor \"$T_OUT/nohup\" 30 || exit 1\n\
             {then}"
        ),
    );
    repo.dep("e", "next", "true");
}

#[test]
fn escaped_grandchildren_die_with_a_successful_deployment() {
    let mut repo = TestRepo::new();
    let mark = unique_mark();
    repo.var("T_MARK", &mark);
    escaping_deployment(&repo, "echo done");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    // Checked the moment bitops returns: "succeeded" means nothing of it runs on.
    assert_nothing_survives(&mark, &recorded_groups(&repo), "after a successful run");
    assert!(repo.trace().ran("e/next"), "{out}");
}

/// A deployment script that starts a daemon in its own session (through `prefix`, e.g.
/// `env -i … `), its pid in `$T_OUT/<pid_file>`, and returns once it runs.
fn daemon_script(prefix: &str, pid_file: &str) -> String {
    format!(
        "{prefix}setsid sh -c 'echo $$ > \"$0\"; exec sleep 1000' \"$T_OUT/{pid_file}\" \
           < /dev/null > /dev/null 2>&1 &\n\
         waitfor \"$T_OUT/{pid_file}\" 30 || exit 1"
    )
}

/// The pid [`daemon_script`] recorded.
fn daemon_pid(repo: &TestRepo, pid_file: &str, out: &impl std::fmt::Display) -> i32 {
    std::fs::read_to_string(repo.out_file(pid_file))
        .unwrap_or_else(|e| panic!("the daemon did not start ({e}): {out}"))
        .trim()
        .parse()
        .unwrap()
}

/// Kills `pid` if it still runs (so a failing test leaves nothing behind); whether it did.
fn end_if_alive(pid: i32) -> bool {
    let alive = !crate::harness::process_gone(pid);
    if alive {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    alive
}

#[test]
fn a_tagged_escapee_is_ended_when_its_step_ends_not_at_the_end_of_the_run() {
    // The check after every step reads only the main thread's children where the kernel
    // re-parents orphans there: if that missed the daemon, it would live on until the sweep at
    // the end of the run, and `next` (which starts after `d` ended) would see it running.
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh}\n  next: {plugin: sh}\n",
    );
    repo.dep("e", "d", &daemon_script("", "daemon.pid"));
    repo.dep(
        "e",
        "next",
        "pid=$(cat \"$T_OUT/daemon.pid\")\n\
         state=$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -c1)\n\
         echo \"${state:-gone}\" > \"$T_OUT/seen\"",
    );
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    end_if_alive(daemon_pid(&repo, "daemon.pid", &out));
    assert_eq!(out.code, 0, "{out}");
    let seen = std::fs::read_to_string(repo.out_file("seen")).unwrap();
    // Gone, or a zombie bitops has not reaped yet: either way no longer running.
    assert!(
        matches!(seen.trim(), "gone" | "Z" | "X"),
        "the daemon was still running ({}) when the next deployment started: {out}",
        seen.trim()
    );
}

#[test]
fn an_escapee_without_the_tag_dies_with_the_run() {
    // `env -i` drops the process tag, so no per-step sweep can find the daemon; as subreaper,
    // bitops finds it re-parented to itself at the end of the run and ends it before exiting.
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "e",
        "d",
        &daemon_script("env -i PATH=/usr/bin:/bin ", "untagged.pid"),
    );
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    let pid = daemon_pid(&repo, "untagged.pid", &out);
    let alive = end_if_alive(pid);
    assert_eq!(out.code, 0, "{out}");
    assert!(!alive, "the untagged daemon {pid} outlived the run");
}

/// A running deployment with escaped processes, ready when `out/ready` exists.
fn start_escaping(repo: &TestRepo, extra: &[&str]) -> std::process::Child {
    escaping_deployment(
        repo,
        "trap 'echo TERM >> \"$T_OUT/trapped\"; exit 0' TERM\n\
         trap 'echo INT >> \"$T_OUT/trapped\"; exit 0' INT\n\
         touch \"$T_OUT/ready\"\nwhile :; do sleep 0.1; done",
    );
    let mut args = vec![
        "deploy",
        "--progress",
        "plain",
        "--color",
        "never",
        "--grace",
        "5s",
    ];
    args.extend_from_slice(extra);
    let child = repo.spawn(&args);
    poll(Duration::from_secs(60), "the deployment to start", || {
        repo.out_file("ready").exists().then_some(())
    });
    child
}

#[test]
fn the_watchdog_runs_while_deployments_do_and_is_gone_when_bitops_returns() {
    // It starts on a thread of its own; a step's process waits for it, and bitops reaps it
    // after the reports (it is told to stop when the run ends).
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "e",
        "d",
        "prefix=\"${BITOPS_PROCESS_TAG%.*}.\"\n\
         echo \"$prefix\" > \"$T_OUT/prefix\"\n\
         for c in /proc/[0-9]*/cmdline; do\n\
           if tr '\\0' ' ' < \"$c\" 2>/dev/null | grep -qF -- \"__watchdog $prefix\"; then\n\
             echo running > \"$T_OUT/watchdog\"\n\
           fi\n\
         done",
    );
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(repo.out_file("watchdog")).unwrap_or_default(),
        "running\n",
        "no watchdog of the run was running during its deployment"
    );
    let prefix = std::fs::read_to_string(repo.out_file("prefix")).unwrap();
    let needle = format!("__watchdog {}", prefix.trim());
    let left: Vec<Proc> = live_processes()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.cmd.contains(&needle))
        .collect();
    assert!(left.is_empty(), "the watchdog outlived bitops: {left:#?}");
}

#[test]
fn sigkill_to_bitops_ends_its_deployment_and_leaves_a_breakable_lock_without_orphans() {
    let mut repo = TestRepo::new();
    let mark = unique_mark();
    repo.var("T_MARK", &mark);
    let mut child = start_escaping(&repo, &[]);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    assert_eq!(wait_bounded(&mut child, Duration::from_secs(30)), 137);
    let groups = recorded_groups(&repo);
    // The deployment's direct child gets the parent-death signal at once; the watchdog ends
    // the rest, escaped ones included, within the grace period. Poll for that condition.
    poll(
        Duration::from_secs(30),
        "the deployment to die with bitops",
        || survivors(&mark, &groups).is_empty().then_some(()),
    );
    // The lock stays (the environment may be half-deployed) and is stale once the run's
    // watchdog is gone too: no process of that run is alive.
    repo.dep("e", "d", "true");
    let out = poll(
        Duration::from_secs(30),
        "the lock to be reported stale",
        || {
            let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
            assert_eq!(out.code, 4, "{out}");
            out.stderr.contains("stale").then_some(out)
        },
    );
    assert!(out.stderr.contains("--break-stale-locks"), "{out}");
    let out = repo.run(&[
        "deploy",
        "--progress",
        "plain",
        "--color",
        "never",
        "--break-stale-locks",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_nothing_survives(&mark, &groups, "after breaking the stale lock");
}

#[test]
fn a_lock_is_not_stale_while_a_process_of_its_run_lives() {
    let mut repo = TestRepo::new();
    let mark = unique_mark();
    repo.var("T_MARK", &mark);
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    // A lock whose bitops is gone (a pid above pid_max) but whose run still has a process:
    // this test's own stand-in carries `BITOPS_RUN_ID` of that run.
    let run_id = format!("20260101T000000Z-{}", std::process::id());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    repo.write(
        ".bitops/locks/e.lock",
        &serde_json::json!({
            "pid": 4_194_305u32, "host": hostname.trim(), "started": "2026-01-01T00:00:00Z",
            "command": "bitops deploy", "run_id": run_id,
        })
        .to_string(),
    );
    let mut orphan = std::process::Command::new("sleep")
        .arg("1000")
        .env("BITOPS_RUN_ID", &run_id)
        .env("T_MARK", &mark)
        .spawn()
        .unwrap();
    let out = repo.run(&["deploy", "--progress", "plain", "--break-stale-locks"]);
    assert_eq!(
        out.code, 4,
        "a run beside a live process of the lock's run: {out}"
    );
    assert!(out.stderr.contains("another run"), "{out}");
    orphan.kill().unwrap();
    orphan.wait().unwrap();
    let out = repo.run(&["deploy", "--progress", "plain", "--break-stale-locks"]);
    assert_eq!(out.code, 0, "{out}");
}

fn signal_acts_like_sigterm(sig: Signal, code: i32) {
    let mut repo = TestRepo::new();
    let mark = unique_mark();
    repo.var("T_MARK", &mark);
    let mut child = start_escaping(&repo, &[]);
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let stderr = repo.stderr_so_far();
    assert_eq!(status, code, "{stderr}");
    assert_eq!(
        repo.read_out("trapped").trim(),
        "TERM",
        "{sig} must reach the deployment as SIGTERM: {stderr}"
    );
    assert!(!repo.trace().ran("e/next"), "{stderr}");
    assert_nothing_survives(&mark, &recorded_groups(&repo), &format!("after {sig}"));
    assert!(
        !repo.path(".bitops/locks/e.lock").exists(),
        "the lock was left behind"
    );
}

#[test]
fn sighup_acts_like_sigterm_and_exits_129() {
    signal_acts_like_sigterm(Signal::SIGHUP, 129);
}

#[test]
fn sigquit_acts_like_sigterm_and_exits_131() {
    signal_acts_like_sigterm(Signal::SIGQUIT, 131);
}

#[test]
fn a_panic_in_a_worker_stops_everything_releases_the_lock_and_exits_3() {
    let mut repo = TestRepo::new();
    let mark = unique_mark();
    repo.var("T_MARK", &mark);
    repo.var("BITOPS_TEST_PANIC", "output");
    // The panic comes from the worker reading this deployment's output, while its processes
    // (escaped ones included) run.
    escaping_deployment(
        &repo,
        "echo BITOPS_TEST_PANIC_NOW\nwhile :; do sleep 0.1; done",
    );
    let mut child = repo.spawn(&["deploy", "--progress", "plain", "--color", "never"]);
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    let stderr = repo.stderr_so_far();
    assert_eq!(status, 3, "{stderr}");
    assert!(stderr.contains("internal error"), "{stderr}");
    assert!(
        repo.out_file("daemon").exists(),
        "the panic came too early: {stderr}"
    );
    assert_nothing_survives(&mark, &recorded_groups(&repo), "after a panic");
    assert!(
        !repo.path(".bitops/locks/e.lock").exists(),
        "the lock was left behind"
    );
}

#[test]
fn a_panic_holding_locks_releases_them_and_exits_3() {
    let mut repo = TestRepo::new();
    repo.var("BITOPS_TEST_PANIC", "locked");
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(!repo.path(".bitops/locks/e.lock").exists(), "{out}");
    assert!(!repo.trace().ran("e/d"), "{out}");
}

#[test]
fn ctrl_c_while_waiting_for_a_lock_releases_the_locks_taken() {
    let repo = TestRepo::new();
    repo.env("a", "deployments:\n  d: {plugin: sh}\n");
    repo.env("b", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("a", "d", "true");
    repo.dep("b", "d", "true");
    // `b` is held by a live run (this test process stands in for it); `a` is free. Locks are
    // taken in name order, so bitops holds `a` while it waits for `b`.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let held = serde_json::json!({
        "pid": std::process::id(), "host": hostname.trim(), "started": "2026-01-01T00:00:00Z",
        "command": "another bitops", "run_id": "other",
    })
    .to_string();
    repo.write(".bitops/locks/b.lock", &held);
    let mut child = repo.spawn(&["deploy", "--progress", "plain", "--lock-timeout", "10m"]);
    poll(
        Duration::from_secs(30),
        "the first lock to be taken",
        || repo.path(".bitops/locks/a.lock").exists().then_some(()),
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert_eq!(status, 130, "{}", repo.stderr_so_far());
    assert!(
        !repo.path(".bitops/locks/a.lock").exists(),
        "the lock taken before Ctrl-C was left behind"
    );
    assert_eq!(
        std::fs::read_to_string(repo.path(".bitops/locks/b.lock")).unwrap(),
        held,
        "another run's lock was touched"
    );
    std::fs::remove_file(repo.path(".bitops/locks/b.lock")).unwrap();
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.all().contains("half-deployed"), "{out}");
}

/// Everything bitops printed or saved about a run: terminal, summary, report.json, JUnit, HTML,
/// the journal and the logs.
fn everything_written(repo: &TestRepo, out: &crate::harness::RunOutput) -> String {
    let mut all = out.all();
    for f in ["report.json", "junit.xml"] {
        all.push_str(
            &std::fs::read_to_string(repo.out_file(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
        );
    }
    let html = repo.out_file("report.html");
    let r = repo.run(&["report", "--html", html.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r}");
    all.push_str(&r.all());
    all.push_str(&std::fs::read_to_string(&html).unwrap());
    // What bitops itself writes about the run; `work/` (the repo's own files) and `outputs/`
    // (values handed to downstream deployments) are data, not reports.
    for run in repo.run_dirs() {
        for entry in walk(&run) {
            let rel = entry.strip_prefix(&run).unwrap();
            if rel.starts_with("work") || rel.starts_with("outputs") {
                continue;
            }
            all.push_str(&String::from_utf8_lossy(&std::fs::read(entry).unwrap()));
        }
    }
    all
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else if p.is_file() {
            files.push(p);
        }
    }
    files
}

#[test]
fn a_secret_in_a_failing_terraform_command_line_is_masked_everywhere() {
    if !require_tools(&["terraform"]) {
        return;
    }
    let repo = TestRepo::with_repo_config(
        "logging:\n  masks:\n    - search: 'password=\\S+'\n      replace: 'password=*****'\n",
    );
    repo.env("e", "deployments:\n  tf: {plugin: terraform}\n");
    repo.write(
        "e/tf/main.tf",
        "terraform {\n  backend \"local\" {}\n}\nresource \"terraform_data\" \"a\" { input = \"a\" }\n",
    );
    repo.write(
        "e/tf/bitops.config.yaml",
        "terraform:\n  cli:\n    stack-action: apply\n    backend-config: [password=TOPSECRET123]\n",
    );
    let out = deploy_with_reports(&repo);
    assert_eq!(
        out.code, 1,
        "terraform init must fail on the unknown argument: {out}"
    );
    let all = everything_written(&repo, &out);
    assert!(
        !all.contains("TOPSECRET123"),
        "the secret was written somewhere:\n{all}"
    );
    assert!(
        out.all().contains("-backend-config=password=*****"),
        "the failing command is still named, masked: {out}"
    );
}

/// A plain deploy that also writes `out/report.json` and `out/junit.xml`.
fn deploy_with_reports(repo: &TestRepo) -> crate::harness::RunOutput {
    let report = repo.out_file("report.json");
    let junit = repo.out_file("junit.xml");
    repo.run(&[
        "deploy",
        "--progress",
        "plain",
        "--color",
        "never",
        "--report",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ])
}

#[test]
fn output_keys_are_masked_like_values() {
    let repo = TestRepo::with_repo_config(
        "logging:\n  masks:\n    - search: 'SECRETWORD'\n      replace: 'MASKED'\n",
    );
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh}\n  bad: {plugin: sh, depends_on: [d]}\n",
    );
    repo.dep(
        "e",
        "d",
        "printf 'key_SECRETWORD=plain\\nplain=value_SECRETWORD\\n' > \"$BITOPS_OUTPUT_FILE\"",
    );
    // A downstream deployment sees the real value (masks are for what is shown, not for data).
    repo.dep(
        "e",
        "bad",
        "test \"$BITOPS_OUTPUT_E_D_PLAIN\" = value_SECRETWORD && echo downstream-ok; exit 1",
    );
    let out = deploy_with_reports(&repo);
    assert_eq!(out.code, 1, "{out}");
    let all = everything_written(&repo, &out);
    assert!(
        !all.contains("SECRETWORD"),
        "an output key or value went unmasked:\n{all}"
    );
    assert!(all.contains("key_MASKED"), "{all}");
    assert!(out.all().contains("downstream-ok"), "{out}");
}
