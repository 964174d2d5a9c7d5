use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;

use super::*;

fn spec(script: &str) -> CommandSpec {
    let mut env = BTreeMap::new();
    env.insert(OsString::from("PATH"), OsString::from("/usr/bin:/bin"));
    env.insert(OsString::from("ONLY_THIS"), OsString::from("yes"));
    CommandSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: PathBuf::from("/"),
        env,
    }
}

/// Starts `sh -c script` on the fast path (fails the test where the kernel cannot).
fn start(script: &str) -> Spawned {
    spawn(
        &spec(script),
        OsStr::new("/bin/sh"),
        (OsStr::new("T"), OsStr::new("")),
    )
    .expect("spawn")
    .expect("this kernel supports CLONE_VM | CLONE_VFORK | CLONE_PIDFD")
}

/// The error of starting `spec` (which must fail).
fn start_error(spec: &CommandSpec) -> io::Error {
    match spawn(spec, &spec.program, (OsStr::new("T"), OsStr::new(""))) {
        Err(e) => e,
        Ok(_) => panic!("{spec:?} started"),
    }
}

/// Runs `spec` on the fast path (fails the test where the kernel cannot) and returns its exit
/// status and stdout.
fn run(spec: &CommandSpec) -> (ExitStatus, String) {
    let spawned = spawn(spec, &spec.program, (OsStr::new("T_TAG"), OsStr::new("t1")))
        .expect("spawn")
        .expect("this kernel supports CLONE_VM | CLONE_VFORK | CLONE_PIDFD");
    let Spawned {
        mut child, stdout, ..
    } = spawned;
    let mut out = String::new();
    std::fs::File::from(stdout)
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait_blocking().unwrap();
    (status, out)
}

#[test]
fn the_child_gets_exactly_its_environment_folder_and_streams() {
    let mut spec = spec(
        "env | sort; pwd; readlink /proc/self/fd/0; \
         grep -E '^(SigBlk|SigIgn):' /proc/self/status; \
         [ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ] && echo own-group",
    );
    spec.cwd = PathBuf::from("/tmp");
    // bitops blocks the signals it takes in every thread: the child must not inherit that.
    let mut usr2 = nix::sys::signal::SigSet::empty();
    usr2.add(Signal::SIGUSR2);
    usr2.thread_block().unwrap();
    let (status, out) = run(&spec);
    usr2.thread_unblock().unwrap();
    assert!(status.success(), "{status:?} {out}");
    let lines: Vec<&str> = out.lines().collect();
    // Nothing inherited from the test process: the spec's variables, the tag, and what sh
    // itself sets (PWD, SHLVL, `_`).
    assert!(lines.contains(&"ONLY_THIS=yes"), "{out}");
    assert!(lines.contains(&"T_TAG=t1"), "{out}");
    assert!(!out.contains("CARGO"), "{out}");
    assert!(lines.contains(&"/tmp"), "{out}");
    assert!(lines.contains(&"/dev/null"), "{out}");
    // No signal blocked (bitops blocks SIGINT/SIGTERM/... in every thread), and the same
    // signals ignored as in a child std starts: SIGPIPE (Rust programs ignore it) back to the
    // default, what bitops inherited as ignored left ignored.
    assert!(lines.contains(&"SigBlk:\t0000000000000000"), "{out}");
    let std_child = std::process::Command::new("/bin/sh")
        .args(["-c", "grep -E '^SigIgn:' /proc/self/status"])
        .output()
        .unwrap();
    let mask = |text: &str| {
        let line = text.lines().find(|l| l.starts_with("SigIgn:")).unwrap();
        // glibc's posix_spawn marks its two internal signals (32, 33) ignored in children it
        // starts; they are no signals a deployment can use.
        u64::from_str_radix(line.rsplit('\t').next().unwrap(), 16).unwrap() & !0x1_8000_0000
    };
    let std_ignored = String::from_utf8(std_child.stdout).unwrap();
    assert_eq!(
        mask(&out),
        mask(&std_ignored),
        "{out} vs std: {std_ignored}"
    );
    assert_eq!(mask(&out) & (1 << (libc::SIGPIPE - 1)), 0);
    assert!(lines.contains(&"own-group"), "{out}");
}

#[test]
fn exit_codes_and_deaths_by_signal_come_back() {
    assert_eq!(run(&spec("exit 3")).0.code(), Some(3));
    let (status, _) = run(&spec("kill -USR1 $$"));
    assert_eq!(status.signal(), Some(libc::SIGUSR1));
}

#[test]
fn stderr_has_its_own_pipe() {
    let spawned = start("echo out; echo err >&2");
    let Spawned {
        mut child,
        stdout,
        stderr,
    } = spawned;
    let (mut out, mut err) = (String::new(), String::new());
    std::fs::File::from(stdout)
        .read_to_string(&mut out)
        .unwrap();
    std::fs::File::from(stderr)
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    assert!(child.wait_blocking().unwrap().success());
}

#[test]
fn an_exec_failure_is_the_error_of_the_spawn_and_leaves_no_zombie() {
    let mut missing = spec("");
    missing.program = "/nonexistent/program".into();
    let err = start_error(&missing);
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");

    let mut folder = spec("");
    folder.program = "/tmp".into();
    let err = start_error(&folder);
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");

    let mut bad_cwd = spec("true");
    bad_cwd.cwd = PathBuf::from("/nonexistent/folder");
    let err = start_error(&bad_cwd);
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[test]
fn a_nul_byte_is_refused_before_anything_starts() {
    let mut spec = spec("true");
    spec.args.push(OsString::from("a\0b"));
    let err = start_error(&spec);
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_script_without_interpreter_line_runs_through_sh() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plain-script");
    std::fs::write(&script, "echo \"ran with $# args: $1\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut spec = spec("");
    spec.program = script.into_os_string();
    spec.args = vec!["one".into()];
    let (status, out) = run(&spec);
    assert!(status.success());
    assert_eq!(out, "ran with 1 args: one\n");
}

#[test]
fn the_child_gets_sigterm_when_the_thread_that_started_it_ends() {
    // The parent-death signal is per thread: ending the spawning thread must end the child,
    // which proves the signal was set (the child would otherwise sleep for 100 s).
    let child = std::thread::spawn(|| {
        let spawned = start("exec sleep 100");
        // Keep the pidfd; the thread ends here without killing the child.
        let Spawned { child, .. } = spawned;
        child
    })
    .join()
    .unwrap();
    let mut child = child;
    let status = child.wait_blocking().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
}

#[test]
fn dropping_an_unreaped_child_kills_it() {
    let spawned = start("exec sleep 100");
    let pid = Pid::from_raw(spawned.child.id());
    drop(spawned);
    // Killed: it is a zombie or already reaped, never a sleeping process.
    let status = waitid(Id::Pid(pid), WaitPidFlag::WEXITED);
    assert!(
        matches!(
            status,
            Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) | Err(nix::errno::Errno::ECHILD)
        ),
        "{status:?}"
    );
}

#[tokio::test]
async fn waiting_is_async_on_the_pidfd() {
    let spawned = start("sleep 0.2; exit 7");
    let Spawned { mut child, .. } = spawned;
    assert_eq!(child.wait().await.unwrap().code(), Some(7));
    // A second wait returns the same status, not an error.
    assert_eq!(child.wait().await.unwrap().code(), Some(7));
}
