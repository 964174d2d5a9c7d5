//! Child processes in their own process group: spawn, stream, time out, stop, reap.
//!
//! Every process bitops starts is the leader of a new process group, and every signal bitops
//! sends goes to the whole group: hooks and plugins start their own children (terraform
//! providers, `sleep 1000 &` in a hook), and the promise is that none of them outlives its step.
//! When the direct child ends, whatever is left of its group is stopped the same way a timeout
//! stops it: SIGTERM, a grace period, SIGKILL.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;

/// One line of output is cut into pieces of at most this many bytes, so that a tool printing
/// megabytes without a newline (a base64 blob, a minified JSON) cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How long to keep reading the pipes once the process group is gone. Only a process that left
/// the group (`setsid`) can still hold them open, and bitops does not wait for it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How often to look whether a process group left behind by its leader has died yet; nothing
/// notifies us, because those processes are not our children.
const GROUP_POLL: Duration = Duration::from_millis(20);

const READ_CHUNK: usize = 16 * 1024;

/// What to run. Nothing is inherited from bitops: `env` is the complete environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    pub env: BTreeMap<OsString, OsString>,
}

impl CommandSpec {
    /// The command line, quoted for a POSIX shell, for logs and `plan`. The environment is
    /// left out: it is long and holds secrets.
    pub fn display(&self) -> String {
        let mut out = shell_quote(&self.program);
        for arg in &self.args {
            out.push(' ');
            out.push_str(&shell_quote(arg));
        }
        out
    }
}

fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How long a process may run, and how long it gets to wind down once asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL, after a timeout and when a group outlives its leader.
    pub grace: Duration,
}

/// Which pipe a line came from: both go to the log, only stdout is parsed (`terraform output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A signal bitops received. A first Ctrl-C passes SIGINT on to running process groups; SIGTERM,
/// SIGHUP and SIGQUIT all pass on SIGTERM (a hangup or a quit must stop a deployment as
/// gracefully as a SIGTERM does, not leave it running or dump core).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sig {
    Int,
    Term,
    Hup,
    Quit,
}

impl Sig {
    /// The signal passed on to process groups.
    fn signal(self) -> Signal {
        match self {
            Sig::Int => Signal::SIGINT,
            Sig::Term | Sig::Hup | Sig::Quit => Signal::SIGTERM,
        }
    }

    /// bitops' exit code after this signal: 128 + its number (130, 143, 129, 131).
    pub fn exit_code(self) -> u8 {
        match self {
            Sig::Int => crate::exit_code::INTERRUPTED,
            Sig::Term => crate::exit_code::TERMINATED,
            Sig::Hup => crate::exit_code::HANGUP,
            Sig::Quit => crate::exit_code::QUIT,
        }
    }
}

/// What the engine asks of running processes. Ordered by escalation, so the sender can keep the
/// strongest request seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StopRequest {
    None,
    /// Pass the signal to the group once and wait for it to exit: terraform must be allowed to
    /// release its state lock.
    Forward(Sig),
    /// SIGKILL the group now.
    Kill,
}

#[derive(Debug)]
pub enum ProcessEnd {
    Exited(i32),
    Signaled(i32),
    /// The timeout hit: the group got SIGTERM, then SIGKILL after the grace period.
    TimedOut {
        after: Duration,
    },
    /// Ended after a stop request. `status` is the exit code, or 128 + signal; `None` when the
    /// request came before the process was started, so it never was.
    Stopped {
        request: StopRequest,
        status: Option<i32>,
    },
    /// The process could not be started, or (rarely) its exit status was lost because something
    /// else reaped it.
    SpawnFailed(io::Error),
}

impl ProcessEnd {
    /// Exit code 0, the only end that lets dependent steps go on.
    pub fn success(&self) -> bool {
        matches!(self, ProcessEnd::Exited(0))
    }
}

impl fmt::Display for ProcessEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessEnd::Exited(code) => write!(f, "exited with code {code}"),
            ProcessEnd::Signaled(sig) => write!(f, "killed by {}", signal_name(*sig)),
            ProcessEnd::TimedOut { after } => {
                write!(f, "timed out after {}", humantime::format_duration(*after))
            }
            ProcessEnd::Stopped { request, status } => {
                match request {
                    StopRequest::Kill => f.write_str("killed on request")?,
                    StopRequest::Forward(sig) => write!(
                        f,
                        "stopped by forwarded {}",
                        signal_name(sig.signal() as i32)
                    )?,
                    StopRequest::None => f.write_str("stopped")?,
                }
                match status {
                    Some(code) => write!(f, " (status {code})"),
                    None => f.write_str(" before it started"),
                }
            }
            ProcessEnd::SpawnFailed(err) => write!(f, "could not run: {err}"),
        }
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

/// Why the group is being ended; the first reason wins, except that a `Kill` upgrades a
/// `Forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Natural,
    TimedOut,
    Stopped(StopRequest),
}

/// The program as an absolute path, looked up on the child's own `PATH`: what the child's
/// environment names runs, and the exec in [`super::spawn`] needs no search. Unresolvable names
/// are left alone so the spawn error names them.
fn resolve_program(spec: &CommandSpec) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    if spec.program.as_bytes().contains(&b'/') {
        return spec.program.clone();
    }
    let Some(path) = spec.env.get(std::ffi::OsStr::new("PATH")) else {
        return spec.program.clone();
    };
    std::env::split_paths(path)
        .map(|dir| {
            if dir.is_relative() {
                spec.cwd.join(dir)
            } else {
                dir
            }
        })
        .map(|dir| dir.join(&spec.program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|p| p.into_os_string())
        .unwrap_or_else(|| spec.program.clone())
}

/// Runs `spec` to completion, calling `on_line` for each line of its stdout and stderr as they
/// arrive. Returns only when the child is reaped, nothing of its process group is left alive,
/// and its output is read (or, for output held open by a process that escaped the group,
/// after `DRAIN_TIMEOUT`). If the future is dropped early, the group is killed.
pub async fn run(
    spec: &CommandSpec,
    limits: &Limits,
    stop: &mut watch::Receiver<StopRequest>,
    mut on_line: impl FnMut(Stream, &str),
) -> ProcessEnd {
    let request = *stop.borrow_and_update();
    if request != StopRequest::None {
        return ProcessEnd::Stopped {
            request,
            status: None,
        };
    }

    // Everything this process starts inherits the tag, which is how escaped descendants are
    // found once it ended (see `lifetime`).
    let tag = super::lifetime::next_tag();
    let (mut child, stdout, stderr) = match start(spec, &tag) {
        Ok(started) => started,
        Err(err) => return ProcessEnd::SpawnFailed(err),
    };
    let pid = child.id();
    let pgid = Pid::from_raw(pid);
    let mut guard = GroupGuard { pgid, armed: true };
    if !super::lifetime::register_group(pid) {
        // bitops is exiting (a panic elsewhere): this group must not outlive it.
        signal_group(pgid, Signal::SIGKILL);
    }

    let mut stdout = Some(stdout);
    let mut stderr = Some(stderr);
    let mut out_lines = LineSplitter::default();
    let mut err_lines = LineSplitter::default();
    let mut out_buf = vec![0; READ_CHUNK];
    let mut err_buf = vec![0; READ_CHUNK];

    // A timeout too far away to represent is none (and no overflow panic).
    let timeout_at = limits.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut cause = Cause::Natural;
    let mut status: Option<io::Result<ExitStatus>> = None;
    let mut stop_open = true;
    let mut forwarded = false;
    let mut timeout_fired = false;
    let mut killed = false;
    let mut kill_at: Option<Instant> = None;
    // Set once the child is reaped and its group is gone or SIGKILLed; from then on only the
    // pipes are read, until EOF or this deadline.
    let mut drain_until: Option<Instant> = None;

    let mut swept = false;
    loop {
        if drain_until.is_some() && !swept {
            // The group is gone: what left it (`setsid`, a double fork) still carries the tag
            // and is ended now, not left running after a step bitops reports as finished.
            // Done before draining, so the pipes such a process held close at once. Without
            // escapees this is one pass over /proc from the child's pid up.
            swept = true;
            // The check is a few small reads, done here; ending what it finds waits out grace
            // periods, on a blocking thread.
            if super::lifetime::may_have_escaped(&tag, pid) {
                let (tag, grace) = (tag.clone(), limits.grace);
                let _ = tokio::task::spawn_blocking(move || {
                    super::lifetime::sweep_escaped(&tag, pid, grace)
                })
                .await;
            }
        }
        let pipes_open = stdout.is_some() || stderr.is_some();
        if let Some(until) = drain_until {
            if !pipes_open || Instant::now() >= until {
                break;
            }
        }
        let running = status.is_none();
        let draining = drain_until.is_some();
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => {
                match read {
                    Ok(n) if n > 0 => out_lines.push(&out_buf[..n], &mut |l: &str| {
                        if l == TEST_PANIC_LINE {
                            super::lifetime::test_panic_point("output");
                        }
                        on_line(Stream::Stdout, l)
                    }),
                    // A read error on a pipe means no more output will come from it.
                    _ => {
                        out_lines.finish(&mut |l: &str| on_line(Stream::Stdout, l));
                        stdout = None;
                    }
                }
            }
            read = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => {
                match read {
                    Ok(n) if n > 0 => err_lines.push(&err_buf[..n], &mut |l: &str| on_line(Stream::Stderr, l)),
                    _ => {
                        err_lines.finish(&mut |l: &str| on_line(Stream::Stderr, l));
                        stderr = None;
                    }
                }
            }
            exit = child.wait(), if running => {
                status = Some(exit);
                if !group_alive(pgid) {
                    drain_until = drain_deadline();
                } else if killed {
                    // Members may still be dying of the SIGKILL already sent; a repeat reaches
                    // anything forked meanwhile, and SIGKILL leaves nothing to wait for.
                    signal_group(pgid, Signal::SIGKILL);
                    drain_until = drain_deadline();
                } else {
                    // A wrapper script (bash without a trap) dies of a SIGTERM at once, while
                    // the tools it started are still winding down from the same SIGTERM; a
                    // second signal would make terraform quit without releasing its state
                    // lock. So a group that already got SIGTERM (forwarded, or the timeout's)
                    // gets only the grace period, then SIGKILL. After a forwarded SIGINT the
                    // wrapper has waited for its tools, and what is left is background jobs,
                    // which ignore SIGINT: they get SIGTERM.
                    let got_term = timeout_fired
                        || matches!(cause, Cause::Stopped(StopRequest::Forward(s)) if s.signal() == Signal::SIGTERM);
                    if !got_term {
                        signal_group(pgid, Signal::SIGTERM);
                    }
                    let grace_end = later(limits.grace);
                    kill_at = Some(kill_at.map_or(grace_end, |at| at.min(grace_end)));
                }
            }
            // Still armed after a forwarded Ctrl-C: the step's limit holds even while it winds
            // down, but the user's request stays the reported cause.
            () = sleep_until(timeout_at), if running && !timeout_fired && !killed => {
                timeout_fired = true;
                if cause == Cause::Natural {
                    cause = Cause::TimedOut;
                }
                signal_group(pgid, Signal::SIGTERM);
                let grace_end = later(limits.grace);
                kill_at = Some(kill_at.map_or(grace_end, |at| at.min(grace_end)));
            }
            () = sleep_until(kill_at), if kill_at.is_some() && !draining => {
                signal_group(pgid, Signal::SIGKILL);
                killed = true;
                kill_at = None;
                if !running {
                    drain_until = drain_deadline();
                }
            }
            () = tokio::time::sleep(GROUP_POLL), if !running && !draining => {
                if !group_alive(pgid) {
                    drain_until = drain_deadline();
                }
            }
            // Wakes the loop to give up on pipes held by a process outside the group.
            () = sleep_until(drain_until), if draining => {}
            changed = stop.changed(), if stop_open && !draining => {
                if changed.is_err() {
                    // The engine dropped its sender: no further requests can come.
                    stop_open = false;
                    continue;
                }
                match *stop.borrow_and_update() {
                    StopRequest::None => {}
                    StopRequest::Forward(sig) => {
                        // Forwarded once: a second Ctrl-C arrives as `Kill`. After the child
                        // has exited its group is already being ended.
                        if running && !forwarded && !killed {
                            forwarded = true;
                            if cause == Cause::Natural {
                                cause = Cause::Stopped(StopRequest::Forward(sig));
                            }
                            signal_group(pgid, sig.signal());
                        }
                    }
                    StopRequest::Kill => {
                        if running && cause != Cause::TimedOut {
                            cause = Cause::Stopped(StopRequest::Kill);
                        }
                        signal_group(pgid, Signal::SIGKILL);
                        killed = true;
                        kill_at = None;
                        if !running {
                            drain_until = drain_deadline();
                        }
                    }
                }
            }
        }
        if drain_until.is_some() {
            // The group is gone or SIGKILLed and the leader reaped: its pgid may be reused.
            guard.armed = false;
        }
    }
    // A partial last line read so far is still delivered.
    out_lines.finish(&mut |l: &str| on_line(Stream::Stdout, l));
    err_lines.finish(&mut |l: &str| on_line(Stream::Stderr, l));
    super::lifetime::unregister_group(pid);

    match status {
        Some(Ok(status)) => process_end(cause, status, limits),
        Some(Err(err)) => ProcessEnd::SpawnFailed(io::Error::new(
            err.kind(),
            format!("lost the exit status of the child process: {err}"),
        )),
        None => unreachable!("the loop only ends after the child was reaped"),
    }
}

/// `now + d`, saturated: an absurd grace period means "wait very long", not a panic.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

fn drain_deadline() -> Option<Instant> {
    Some(Instant::now() + DRAIN_TIMEOUT)
}

fn process_end(cause: Cause, status: ExitStatus, limits: &Limits) -> ProcessEnd {
    match cause {
        Cause::TimedOut => ProcessEnd::TimedOut {
            after: limits.timeout.unwrap_or_default(),
        },
        Cause::Stopped(request) => ProcessEnd::Stopped {
            request,
            status: Some(
                status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            ),
        },
        Cause::Natural => match (status.code(), status.signal()) {
            (Some(code), _) => ProcessEnd::Exited(code),
            (None, Some(sig)) => ProcessEnd::Signaled(sig),
            // wait() reports only exits and deaths by signal.
            (None, None) => ProcessEnd::Exited(-1),
        },
    }
}

/// The stdout line that triggers the test-only panic `BITOPS_TEST_PANIC=output` (debug builds).
const TEST_PANIC_LINE: &str = "BITOPS_TEST_PANIC_NOW";

/// A started step: its leader and the read ends of its stdout and stderr.
type Started = (Child, Pipe, Pipe);
type Pipe = Box<dyn AsyncRead + Unpin + Send>;

/// Starts the step's leader in a new process group with the parent-death signal set: through
/// [`super::spawn`] (vfork-fast) where the kernel allows, else through std's fork path.
fn start(spec: &CommandSpec, tag: &str) -> io::Result<Started> {
    let program = resolve_program(spec);
    super::lifetime::note_spawner();
    // No process of a run exists before its watchdog.
    super::lifetime::watchdog_started();
    let tag_var = (OsStr::new(super::lifetime::TAG_VAR), OsStr::new(tag));
    let fast = if fast_spawn_allowed() {
        super::spawn::spawn(spec, &program, tag_var)?
    } else {
        None
    };
    if let Some(spawned) = fast {
        let stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(spawned.stdout)?;
        let stderr = tokio::net::unix::pipe::Receiver::from_owned_fd(spawned.stderr)?;
        return Ok((
            Child::Fast(spawned.child),
            Box::new(stdout),
            Box::new(stderr),
        ));
    }
    let mut command = Command::new(&program);
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(&spec.env)
        .env(tag_var.0, tag_var.1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut command);
    let mut child = command.spawn()?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the child process has no pipes"));
    };
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        // Only possible if the child was already reaped, which nothing has had a chance to do.
        return Err(io::Error::other("the child process has no pid"));
    };
    Ok((
        Child::Forked(child, pid),
        Box::new(stdout),
        Box::new(stderr),
    ))
}

#[cfg(test)]
thread_local! {
    /// Tests of the fork fallback set this on their (current-thread) runtime's thread.
    pub(super) static FORCE_FORK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn fast_spawn_allowed() -> bool {
    #[cfg(test)]
    {
        !FORCE_FORK.with(std::cell::Cell::get)
    }
    #[cfg(not(test))]
    {
        true
    }
}

/// The leader of a step, however it was started.
enum Child {
    Fast(super::spawn::Child),
    /// With its pid, kept: tokio forgets it once the child is reaped, and a pid of 0 would
    /// name bitops' own process group.
    Forked(tokio::process::Child, i32),
}

impl Child {
    fn id(&self) -> i32 {
        match self {
            Child::Fast(child) => child.id(),
            Child::Forked(_, pid) => *pid,
        }
    }

    async fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Child::Fast(child) => child.wait().await,
            Child::Forked(child, _) => child.wait().await,
        }
    }
}

/// The child gets SIGTERM when bitops dies, however it dies (SIGKILL included): a deployment
/// must not run on without the process that reports and locks it.
///
/// Only for the fallback of [`start`], where [`super::spawn`] cannot clone. std has no safe API
/// for `PR_SET_PDEATHSIG`: it must be set in the child between fork and exec, which only
/// `pre_exec` (unsafe) allows. The cost is that std forks all of bitops for these children.
///
/// Caveat: the kernel sends the signal when the *thread* that forked the child exits. Steps are
/// spawned from the async runtime's worker threads, which live until the run is over.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed. It makes three raw syscalls (prctl, pthread_sigmask, getppid),
    // allocates nothing, takes no lock and touches no state shared with the parent. `io::Error::from_raw_os_error` does not
    // allocate.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // bitops blocks the signals it takes on its signal thread; the fork path of std
            // keeps the mask, and a deployment must get its signals.
            nix::sys::signal::SigSet::empty()
                .thread_set_mask()
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // bitops died between fork and prctl: the signal would never come.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Kills the group if `run` is dropped before it finished, e.g. when the engine gives up on a
/// step. `kill_on_drop` alone would reach only the leader.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, Signal::SIGKILL);
        }
        super::lifetime::unregister_group(self.pgid.as_raw());
    }
}

fn signal_group(pgid: Pid, signal: Signal) {
    // ESRCH (group already gone) is the expected race; EPERM cannot be acted upon either.
    let _ = killpg(pgid, signal);
}

/// Whether any process of the group can still run. Zombies do not count: a grandchild that was
/// orphaned stays a zombie until init reaps it, and some container inits never do.
pub(crate) fn group_alive(pgid: Pid) -> bool {
    match killpg(pgid, None) {
        Err(Errno::ESRCH) => false,
        Ok(()) => live_member_in_proc(pgid).unwrap_or(true),
        Err(_) => true,
    }
}

/// Looks through `/proc` for a group member that is not a zombie; `None` without `/proc`.
fn live_member_in_proc(pgid: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process that exits between listing and reading is simply not alive.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, pgrp)) = parse_stat(&stat) {
            if pgrp == pgid.as_raw() && !matches!(state, 'Z' | 'X' | 'x') {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// State and process group from `/proc/<pid>/stat`. The command name may contain spaces and
/// parentheses, so fields are counted from its last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

async fn read_some<R: AsyncRead + Unpin>(
    stream: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match stream {
        Some(stream) => stream.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Cuts one stream's bytes into lines.
#[derive(Default)]
struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    fn push(&mut self, data: &[u8], emit: &mut impl FnMut(&str)) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let newline = rest
                .iter()
                .take(MAX_LINE_BYTES + 1)
                .position(|&b| b == b'\n');
            if let Some(end) = newline {
                emit_line(&rest[..end], emit);
                start += end + 1;
            } else if rest.len() > MAX_LINE_BYTES {
                let cut = char_boundary(rest, MAX_LINE_BYTES);
                emit_line(&rest[..cut], emit);
                start += cut;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
    }

    /// Delivers a last line that had no newline.
    fn finish(&mut self, emit: &mut impl FnMut(&str)) {
        if !self.buf.is_empty() {
            emit_line(&self.buf, emit);
            self.buf.clear();
        }
    }
}

fn emit_line(line: &[u8], emit: &mut impl FnMut(&str)) {
    // CRLF output would otherwise leave a carriage return at the end of every log line.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    emit(&String::from_utf8_lossy(line));
}

/// The largest cut at or before `max` that does not split a UTF-8 sequence, so that a long line
/// cut in pieces does not turn into replacement characters at the seams.
fn char_boundary(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    (max - 3..=max)
        .rev()
        .find(|&i| !is_continuation(bytes[i]))
        .unwrap_or(max)
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
