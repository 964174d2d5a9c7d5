//! Nothing bitops starts outlives it, and nothing it holds is left behind.
//!
//! * Every process bitops starts carries a tag in its environment, `BITOPS_PROCESS_TAG=
//!   <bitops pid>.<bitops start time>.<n>`; children inherit it, so whatever a deployment starts
//!   (also a `setsid` daemon that left the process group) can be found in `/proc/<pid>/environ`.
//! * bitops is a child subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose parent dies is
//!   re-parented to bitops instead of init, so bitops can reap what it kills and find escaped
//!   processes whose environment was cleared.
//! * After each process, [`sweep_escaped`] ends whatever still carries that process's tag; at the
//!   end of a run [`sweep_all`] ends everything with this bitops' tag and every re-parented
//!   orphan.
//! * A watchdog (`bitops __watchdog`, started with [`start_watchdog`]) waits for bitops to die
//!   by any means (its pipe closes) and then ends every tagged process, so SIGKILL, an abort or
//!   an out-of-memory kill of bitops leaves no deployment running.
//! * The registry below knows the live process groups and the lock files held, so that a panic
//!   anywhere, or a signal outside a run, ends in [`emergency_exit`]: groups stopped, tagged
//!   processes killed, locks released, one exit code.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// The environment variable that marks every process of one bitops invocation.
pub const TAG_VAR: &str = "BITOPS_PROCESS_TAG";

/// How long escaped processes get between SIGTERM and SIGKILL when nothing else is configured.
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// A panic or a signal outside a run waits at most this long for process groups to end.
const EMERGENCY_GRACE_CAP: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Registry {
    /// Process groups of running steps (each led by a direct child of bitops).
    groups: BTreeSet<i32>,
    /// Lock files this process created and has not released.
    locks: Vec<PathBuf>,
    grace: Option<Duration>,
    /// Set by [`emergency_exit`]: nothing may be started or locked any more.
    exiting: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: BTreeSet::new(),
    locks: Vec::new(),
    grace: None,
    exiting: false,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A poisoned registry still holds true facts: the panic happened elsewhere.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// `<pid>.<start time>.`: unique on this host for as long as this bitops lives (the start time
/// tells a reused pid apart).
pub fn tag_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let pid = std::process::id();
        let start = start_time(pid as i32).unwrap_or(0);
        format!("{pid}.{start}.")
    })
}

/// A fresh tag for one process.
pub fn next_tag() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    format!("{}{}", tag_prefix(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Makes bitops the reaper of its orphaned descendants. Failing (an old kernel) only loses the
/// re-parenting; tagged processes are still found.
pub fn become_subreaper() {
    if nix::sys::prctl::set_child_subreaper(true).is_ok() {
        SUBREAPER.store(true, Ordering::Relaxed);
    }
}

static SUBREAPER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The grace period used when bitops stops processes on its own (panic, signal outside a run).
pub fn set_grace(grace: Duration) {
    registry().grace = Some(grace);
}

/// Registers a running step's process group; `false` when bitops is exiting and the caller must
/// kill it at once.
pub(crate) fn register_group(pgid: i32) -> bool {
    let mut r = registry();
    r.groups.insert(pgid);
    !r.exiting
}

pub(crate) fn unregister_group(pgid: i32) {
    registry().groups.remove(&pgid);
}

fn is_active_group(pid: i32) -> bool {
    registry().groups.contains(&pid)
}

/// Creates a lock file with `create` and registers it, atomically with respect to
/// [`emergency_exit`]: a lock is either released by it or never created.
pub(crate) fn create_lock(
    path: &Path,
    create: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut r = registry();
    if r.exiting {
        drop(r);
        // emergency_exit is removing the locks and about to end the process.
        loop {
            std::thread::park();
        }
    }
    create()?;
    r.locks.push(path.to_owned());
    Ok(())
}

/// Removes lock files this process holds. One pass over the registry for all of them: a run
/// holds a lock per environment, and forgetting them one by one was quadratic (21 ms for 1000).
pub(crate) fn release_locks(paths: &[PathBuf]) {
    let mut r = registry();
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
    let released: std::collections::HashSet<&PathBuf> = paths.iter().collect();
    r.locks.retain(|p| !released.contains(p));
}

/// The lock files the emergency exit would remove now.
#[cfg(test)]
pub(crate) fn registered_locks() -> Vec<PathBuf> {
    registry().locks.clone()
}

/// Ends bitops after a panic or a signal that no run handles: stops every running process group
/// (SIGTERM, the grace period, SIGKILL), kills every tagged process, removes the locks held, and
/// exits with `code`. Never returns, never waits unboundedly.
pub fn emergency_exit(code: u8) -> ! {
    emergency_exit_with(code, None)
}

/// [`emergency_exit`], then `message` on stderr — after the cleanup, and given at most a second:
/// a blocked stderr must neither keep deployments running nor hold bitops up.
pub fn emergency_exit_with(code: u8, message: Option<String>) -> ! {
    // The panicking thread may hold the registry; wait a little, then go on without it.
    let until = Instant::now() + Duration::from_secs(2);
    let mut taken = None;
    while Instant::now() < until {
        match REGISTRY.try_lock() {
            Ok(g) => {
                taken = Some(g);
                break;
            }
            Err(std::sync::TryLockError::Poisoned(e)) => {
                taken = Some(e.into_inner());
                break;
            }
            Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(POLL),
        }
    }
    let (groups, locks, grace) = match &mut taken {
        Some(r) => {
            r.exiting = true;
            (
                r.groups.iter().copied().collect::<Vec<_>>(),
                std::mem::take(&mut r.locks),
                r.grace.unwrap_or(DEFAULT_GRACE).min(EMERGENCY_GRACE_CAP),
            )
        }
        None => (Vec::new(), Vec::new(), DEFAULT_GRACE),
    };
    // The registry stays locked until the process exits: no new group, no new lock.
    for &g in &groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGTERM);
    }
    let end = Instant::now() + grace.min(EMERGENCY_GRACE_CAP);
    while Instant::now() < end
        && groups
            .iter()
            .any(|&g| super::process::group_alive(Pid::from_raw(g)))
    {
        std::thread::sleep(POLL);
    }
    for &g in &groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
    kill_matching(
        &Match::Prefix(tag_prefix().to_owned()),
        Duration::ZERO,
        None,
    );
    for l in &locks {
        let _ = std::fs::remove_file(l);
    }
    if let Some(text) = message {
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = std::thread::Builder::new().spawn(move || {
            use std::io::Write;
            let _ = std::io::stderr().write_all(text.as_bytes());
            let _ = tx.send(());
        });
        if writer.is_ok() {
            let _ = rx.recv_timeout(Duration::from_secs(1));
        }
    }
    exit_now(code)
}

/// Ends the process without `std::process::exit`'s cleanup, which flushes stdout's buffer and
/// would block on a full pipe. No safe API offers `_exit`.
#[allow(unsafe_code)]
fn exit_now(code: u8) -> ! {
    // SAFETY: `_exit` has no preconditions; it ends the process at once, and nothing of this
    // process runs afterwards that could observe a broken invariant.
    unsafe { libc::_exit(i32::from(code)) }
}

/// Test-only fault injection: with `BITOPS_TEST_PANIC=<point>` a debug build panics at that
/// point. Compiled only under `cfg(debug_assertions)` (the integration tests run the debug
/// binary); a release build has no trigger and this is a no-op.
#[inline]
pub fn test_panic_point(point: &str) {
    #[cfg(debug_assertions)]
    {
        static WANTED: OnceLock<Option<String>> = OnceLock::new();
        if WANTED
            .get_or_init(|| std::env::var("BITOPS_TEST_PANIC").ok())
            .as_deref()
            == Some(point)
        {
            panic!("BITOPS_TEST_PANIC={point}: test-only panic");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Which tagged processes to end.
#[derive(Clone, Debug)]
enum Match {
    /// The exact tag of one process (and so of everything it started).
    Exact(String),
    /// Every tag of this bitops.
    Prefix(String),
}

impl Match {
    fn hit(&self, environ: &[u8]) -> bool {
        let (value, exact) = match self {
            Match::Exact(t) => (t.as_str(), true),
            Match::Prefix(p) => (p.as_str(), false),
        };
        environ.split(|&b| b == 0).any(|var| {
            var.strip_prefix(TAG_VAR.as_bytes())
                .and_then(|v| v.strip_prefix(b"="))
                .is_some_and(|v| {
                    if exact {
                        v == value.as_bytes()
                    } else {
                        v.starts_with(value.as_bytes())
                    }
                })
        })
    }

    /// The start time (clock ticks after boot) of the bitops the tags belong to: the second
    /// field of `<pid>.<start time>.<seq>`. 0 (every process) when it cannot be read.
    fn bitops_start(&self) -> u64 {
        let (Match::Exact(t) | Match::Prefix(t)) = self;
        t.split('.')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// Ends every live process still carrying `tag` after the step it belongs to ended (a daemon
/// started with `setsid`, a `nohup … &`). Processes started before the step (`first_pid`) are not
/// looked at unless pids wrapped around. Blocking: at most about two grace periods.
pub fn sweep_escaped(tag: &str, first_pid: i32, grace: Duration) -> usize {
    if !may_have_escaped(tag, first_pid) {
        return 0;
    }
    kill_matching(&Match::Exact(tag.to_owned()), grace, Some(first_pid))
}

/// Whether anything carrying `tag` may still live after its step's group is gone: cheap enough
/// to ask after every step on the runtime's own thread (no `/proc` listing).
///
/// As subreaper, the root of every escaped tree is a child of bitops once the step's group is
/// gone (its parent died with the group, or was the reaped leader, and the kernel re-parents
/// before the group can be seen empty). So the common case reads bitops' own children (a few
/// small files), and a tree is searched by environment only when one of its roots carries this
/// step's tag. Without subreaper, there is no such shortcut.
pub fn may_have_escaped(tag: &str, first_pid: i32) -> bool {
    if !SUBREAPER.load(Ordering::Relaxed) {
        return true;
    }
    let what = Match::Exact(tag.to_owned());
    // After every step: where the kernel gives orphans to the main thread, its file is the
    // only one an escaped root can be in (the spawning threads hold running steps and the
    // zombie leader just reaped, neither of which is an escape).
    let children = own_children(!orphans_go_to_main()).unwrap_or_else(|| {
        let me = std::process::id() as i32;
        proc_pids(Some(first_pid))
            .filter(|&p| stat(p).is_some_and(|s| s.ppid == me))
            .collect()
    });
    children
        .into_iter()
        .filter(|&p| Some(p) != watchdog_pid() && !is_active_group(p))
        // A zombie's environment reads empty: it matches nothing.
        .any(|p| environ(p).is_some_and(|e| what.hit(&e)))
}

/// Ends everything this bitops started that is still alive, and every orphan re-parented to it
/// that is not a running step. For the end of a run.
pub fn sweep_all(grace: Duration) -> usize {
    // As subreaper, every descendant still alive once no step runs is in a tree whose root is
    // a child of bitops (its parent died, so it was re-parented here). No child but the
    // watchdog, not even a zombie (a zombie child may just have forked one that is being
    // re-parented): nothing to look for, and the scans below (every process on the host, three
    // times) are skipped.
    if SUBREAPER.load(Ordering::Relaxed) {
        let other = |p: &i32| Some(*p) != watchdog_pid() && !is_active_group(*p);
        let any_other_child = match own_children(true) {
            Some(children) => children.iter().any(other),
            None => {
                let me = std::process::id() as i32;
                proc_pids(None)
                    .filter(other)
                    .any(|p| stat(p).is_some_and(|s| s.ppid == me))
            }
        };
        if !any_other_child {
            return 0;
        }
    }
    let mut n = kill_matching(&Match::Prefix(tag_prefix().to_owned()), grace, None);
    // Orphans whose environment was cleared (`env -i`) still have bitops as parent.
    let me = std::process::id() as i32;
    let orphans: Vec<i32> = proc_pids(None)
        .filter(|&p| !is_active_group(p))
        .filter(|&p| stat(p).is_some_and(|s| s.ppid == me && !s.zombie()))
        .filter(|&p| Some(p) != watchdog_pid())
        .collect();
    for &p in &orphans {
        // Its own group too: what it started went with it when it left ours.
        let _ = killpg(Pid::from_raw(p), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    n += orphans.len();
    reap_orphans();
    n
}

/// One pass: SIGTERM what matches, wait up to `grace`, SIGKILL what is left; repeated a few
/// times for what was forked meanwhile. Returns how many processes were signalled.
///
/// Only processes started after the bitops that made the tags can carry one, so their start
/// time (in `stat`, cheap) is checked before their environment is read (the kernel copies it
/// out of the other process's memory): on a busy host that is most of the cost.
fn kill_matching(what: &Match, grace: Duration, first_pid: Option<i32>) -> usize {
    let me = std::process::id() as i32;
    let since = what.bitops_start();
    let mut signalled: BTreeSet<i32> = BTreeSet::new();
    for round in 0..4 {
        let found: Vec<i32> = proc_pids(first_pid)
            .filter(|&p| p != me && Some(p) != watchdog_pid())
            .filter(|&p| stat(p).is_some_and(|s| !s.zombie() && s.start >= since))
            .filter(|&p| environ(p).is_some_and(|e| what.hit(&e)))
            .collect();
        if found.is_empty() {
            break;
        }
        let first = round == 0 && !grace.is_zero();
        for &p in &found {
            let sig = if first {
                Signal::SIGTERM
            } else {
                Signal::SIGKILL
            };
            let _ = kill(Pid::from_raw(p), sig);
            signalled.insert(p);
        }
        let wait = if first { grace } else { Duration::from_secs(2) };
        let end = Instant::now() + wait.min(Duration::from_secs(300));
        while Instant::now() < end && found.iter().any(|&p| alive(p)) {
            std::thread::sleep(POLL);
        }
    }
    // Those re-parented to bitops are its zombies now. Only these pids are reaped here: a
    // zombie bitops did not signal may be a step's child whose status its waiter still needs.
    for &p in &signalled {
        if stat(p).is_some_and(|s| s.ppid == me && s.zombie()) {
            let _ = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
        }
    }
    signalled.len()
}

/// Reaps zombies re-parented to bitops. Only when no step is being started (the end of a run): a
/// step's child that exited before its group was registered must be left to its waiter.
fn reap_orphans() {
    let me = std::process::id() as i32;
    for p in proc_pids(None) {
        if is_active_group(p) || Some(p) == watchdog_pid() {
            continue;
        }
        if stat(p).is_some_and(|s| s.ppid == me && s.zombie()) {
            let _ = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Whether any live process carries `BITOPS_RUN_ID=<run_id>` (a deployment of that run, or its
/// watchdog still cleaning up).
pub fn run_alive(run_id: &str) -> bool {
    let needle = format!("BITOPS_RUN_ID={run_id}");
    proc_pids(None).any(|p| {
        environ(p).is_some_and(|e| e.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
            && stat(p).is_some_and(|s| !s.zombie())
    })
}

fn alive(pid: i32) -> bool {
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => false,
        _ => stat(pid).is_some_and(|s| !s.zombie()),
    }
}

/// Pids in `/proc`; with `from`, only those at or above it (pids grow until they wrap, which
/// `ns_last_pid` below `from` reveals).
fn proc_pids(from: Option<i32>) -> impl Iterator<Item = i32> {
    let from = from.filter(|&f| {
        std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
            .is_some_and(|last| last >= f)
    });
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(move |&p| from.is_none_or(|f| p >= f))
}

/// Threads of bitops that started a process (see [`note_spawner`]), besides the main thread.
static SPAWNERS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Records the calling thread as one that starts processes. A process is the child of the
/// thread that cloned it until that thread exits (then of another live thread). An orphan
/// re-parented to bitops as subreaper goes to the first live thread of the group, the main
/// thread (see [`orphans_go_to_main`]); older kernels gave it to the thread that started its
/// step. Call before spawning.
pub fn note_spawner() {
    let tid = nix::unistd::gettid().as_raw();
    let mut spawners = SPAWNERS.lock().unwrap_or_else(|e| e.into_inner());
    if !spawners.contains(&tid) {
        spawners.push(tid);
    }
}

/// The children of bitops, zombies included, from `/proc/self/task/<tid>/children` of the main
/// thread and, with `spawners`, of every thread that started a process: a few small reads,
/// instead of a `stat` of every process on the host (or of every thread of bitops, a dozen).
/// `None` where the kernel does not provide the file (`CONFIG_PROC_CHILDREN`), or a spawning
/// thread has exited (its children went to another thread): callers then scan `/proc`.
fn own_children(spawners: bool) -> Option<Vec<i32>> {
    let main = std::process::id() as i32;
    let others = if spawners {
        SPAWNERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for tid in std::iter::once(main).chain(others.into_iter().filter(|&t| t != main)) {
        read_small(&format!("/proc/self/task/{tid}/children"), &mut buf).ok()?;
        out.extend(
            buf.split(u8::is_ascii_whitespace)
                .filter_map(|p| std::str::from_utf8(p).ok()?.parse::<i32>().ok()),
        );
    }
    Some(out)
}

/// Reads a `/proc` file into `buf` with plain reads: `fs::read` asks for its size first, a
/// `statx` that `/proc` answers with 0 (a system call saved on a path taken after every step).
fn read_small(path: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    let mut f = std::fs::File::open(path)?;
    let mut chunk = [0u8; 512];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether the kernel gives an orphan to the subreaper's first live thread (the main thread,
/// alive for the whole run) rather than to the thread up its `real_parent` chain. Since Linux
/// 3.19 `find_new_reaper` takes `find_alive_thread(reaper)`, which walks the thread group from
/// its leader (checked on 6.18: a process orphaned under a step started by a worker thread
/// shows in the main thread's `children`, not the worker's). Older or unreadable: no.
fn orphans_go_to_main() -> bool {
    static AT_LEAST_3_19: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AT_LEAST_3_19.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| kernel_at_least(&r, (3, 19)))
            .unwrap_or(false)
    })
}

/// `release` (`uname -r`, e.g. `6.18.44-fc`) is at least `major.minor`; `None` if unreadable.
fn kernel_at_least(release: &str, (major, minor): (u32, u32)) -> Option<bool> {
    let mut parts = release.trim().split(['.', '-']);
    let a: u32 = parts.next()?.parse().ok()?;
    let b: u32 = parts.next()?.parse().ok()?;
    Some((a, b) >= (major, minor))
}

fn environ(pid: i32) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/environ"))
        .ok()?
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// The fields of `/proc/<pid>/stat` bitops uses.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks after boot: with the boot id, tells a reused pid apart.
    pub start: u64,
}

impl Stat {
    pub fn zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The command name may contain spaces and parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) session(3) … starttime(19).
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start)
}

/// This boot's id: a pid and start time recorded before a reboot mean nothing after it.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

struct Watchdog {
    pid: i32,
    /// Its stdin: closing it (bitops exiting, however) is what wakes it.
    pipe: Option<std::process::ChildStdin>,
    child: std::process::Child,
}

static WATCHDOG: Mutex<Option<Watchdog>> = Mutex::new(None);
static WATCHDOG_PID: AtomicU64 = AtomicU64::new(0);

fn watchdog_pid() -> Option<i32> {
    match WATCHDOG_PID.load(Ordering::Relaxed) {
        0 => None,
        p => Some(p as i32),
    }
}

/// Starts the watchdog for this run: `bitops __watchdog <tag prefix> <grace ms>`, carrying
/// `BITOPS_RUN_ID` so that the run's lock counts as held while it cleans up. Best effort: without
/// it (no `current_exe`), a SIGKILL of bitops leaves only the parent-death signal.
///
/// Started on a thread of its own: exec'ing the bitops binary again keeps the spawning thread
/// waiting (the child shares its memory until exec), up to a millisecond that the run's start
/// need not wait for. The first step's process waits for it ([`watchdog_started`]).
pub fn start_watchdog(run_id: &str, grace: Duration) {
    let id = run_id.to_owned();
    let mut starting = WATCHDOG_START.lock().unwrap_or_else(|e| e.into_inner());
    match std::thread::Builder::new().spawn(move || spawn_watchdog(&id, grace)) {
        Ok(handle) => *starting = Some(handle),
        Err(_) => {
            drop(starting);
            spawn_watchdog(run_id, grace)
        }
    }
}

static WATCHDOG_START: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);

/// Returns once the watchdog that [`start_watchdog`] is starting runs (or has failed to start).
/// Called before every step's process starts, so no process of a run exists without it.
pub(crate) fn watchdog_started() {
    let mut starting = WATCHDOG_START.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = starting.take() {
        let _ = handle.join();
    }
}

fn spawn_watchdog(run_id: &str, grace: Duration) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let spawned = std::process::Command::new(exe)
        .arg("__watchdog")
        .arg(tag_prefix())
        .arg(grace.as_millis().to_string())
        .env_clear()
        .env("BITOPS_RUN_ID", run_id)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // Out of the terminal's process group: a Ctrl-C is bitops' to handle, not its.
        .process_group(0)
        .spawn();
    if let Ok(mut child) = spawned {
        let pid = child.id() as i32;
        WATCHDOG_PID.store(pid as u64, Ordering::Relaxed);
        let pipe = child.stdin.take();
        *WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(Watchdog { pid, pipe, child });
    }
}

/// Tells the watchdog the run ended normally. bitops has swept the run's processes itself
/// (`sweep_all`), so the watchdog exits without looking again: its scan of every process on the
/// host took tens of milliseconds at the end of every run. It is reaped by [`reap_watchdog`],
/// after the reports: its exit need not hold them up.
pub fn stop_watchdog() {
    watchdog_started();
    let mut w = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut pipe) = w.as_mut().and_then(|w| w.pipe.take()) {
        use std::io::Write;
        let _ = pipe.write_all(CLEAN_END);
    }
}

/// Waits for the watchdog told to stop by [`stop_watchdog`] (at once if there is none). Before
/// bitops exits: nothing it started outlives it.
pub fn reap_watchdog() {
    stop_watchdog();
    let taken = WATCHDOG.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut w) = taken {
        let _ = w.child.wait();
        debug_assert!(w.pid > 0);
        WATCHDOG_PID.store(0, Ordering::Relaxed);
    }
}

/// What bitops writes to the watchdog when the run ended normally and its processes are gone.
const CLEAN_END: &[u8] = b"clean end\n";

/// `bitops __watchdog <prefix> <grace ms>`: blocks until its stdin closes, then ends every
/// process tagged with `prefix` unless bitops said it ended cleanly. Signals from the terminal are ignored: only bitops' end counts.
pub fn watchdog_main(args: &[String]) -> u8 {
    let (Some(prefix), Some(grace)) = (args.first(), args.get(1)) else {
        return crate::exit_code::CONFIG;
    };
    let grace = Duration::from_millis(grace.parse().unwrap_or(5000)).min(Duration::from_secs(300));
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    let mut heard = Vec::new();
    loop {
        match stdin.read(&mut sink) {
            Ok(0) => break,
            Ok(n) => heard.extend_from_slice(&sink[..n.min(CLEAN_END.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // Only the end of a bitops that did not say goodbye (SIGKILL, a crash) leaves work.
    if !heard.starts_with(CLEAN_END) {
        kill_matching(&Match::Prefix(prefix.clone()), grace, None);
    }
    crate::exit_code::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_exactly_or_by_prefix() {
        let env = b"A=1\0BITOPS_PROCESS_TAG=12.34.5\0B=2\0";
        assert!(Match::Exact("12.34.5".into()).hit(env));
        assert!(!Match::Exact("12.34.".into()).hit(env));
        assert!(!Match::Exact("12.34.55".into()).hit(b"BITOPS_PROCESS_TAG=12.34.5\0"));
        assert!(Match::Prefix("12.34.".into()).hit(env));
        assert!(!Match::Prefix("12.35.".into()).hit(env));
        assert!(!Match::Prefix("12.34.".into()).hit(b"XBITOPS_PROCESS_TAG=12.34.1\0"));
        assert_eq!(Match::Prefix("12.34.".into()).bitops_start(), 34);
        assert_eq!(Match::Exact("12.34.5".into()).bitops_start(), 34);
        assert_eq!(Match::Exact("garbage".into()).bitops_start(), 0);
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert_eq!(kernel_at_least("6.18.44-fc-v657\n", (3, 19)), Some(true));
        assert_eq!(kernel_at_least("3.19", (3, 19)), Some(true));
        assert_eq!(kernel_at_least("4.4.0-210-generic", (3, 19)), Some(true));
        assert_eq!(kernel_at_least("3.18.140", (3, 19)), Some(false));
        assert_eq!(kernel_at_least("2.6.32-754.el6", (3, 19)), Some(false));
        assert_eq!(kernel_at_least("6", (3, 19)), None);
        assert_eq!(kernel_at_least("", (3, 19)), None);
        assert_eq!(kernel_at_least("x.y", (3, 19)), None);
    }

    #[test]
    fn a_threads_children_file_lists_the_child_it_started() {
        // The file `own_children` reads: a child of the calling thread is in it
        // until reaped. (Which thread gets an orphan is covered end to end in faults.rs.)
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let mut buf = Vec::new();
        let me = nix::unistd::gettid();
        read_small(&format!("/proc/self/task/{me}/children"), &mut buf).unwrap();
        let pids: Vec<i32> = String::from_utf8(buf)
            .unwrap()
            .split_ascii_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        assert!(pids.contains(&(child.id() as i32)), "{pids:?}");
    }

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let s =
            parse_stat("42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0")
                .unwrap();
        assert_eq!((s.state, s.ppid, s.pgrp, s.start), ('S', 7, 42, 98765));
        assert!(start_time(std::process::id() as i32).is_some());
    }
}
