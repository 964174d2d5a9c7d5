//! Starting a step's process the way `posix_spawn` does (vfork-fast), with the parent-death
//! signal set, which neither std nor `posix_spawn` can do.
//!
//! Why this exists: `PR_SET_PDEATHSIG` can only be set by the child itself, between clone and
//! exec. std allows that only through `pre_exec`, which makes it `fork` all of bitops: copying
//! the page tables of a process with several threads and a parsed repo, then copy-on-write
//! faults in every thread and an `exit_mmap` at exec. Measured on 1,000 no-op deployments that
//! was ~0.75 ms of CPU per step, more than the rest of bitops' per-step work together. Here the
//! child shares bitops' memory (`CLONE_VM | CLONE_VFORK`, like glibc's `posix_spawn`): the
//! calling thread is suspended until the child has exec'd or failed, and the child runs only
//! raw system calls on a stack of its own, on data prepared beforehand.
//!
//! The kernel also hands back a pidfd (`CLONE_PIDFD`, Linux 5.2): it becomes readable when the
//! child exits, and `waitid(P_PIDFD)` reaps exactly this child, never another.
//!
//! Where the kernel or a seccomp filter refuses the clone (old kernels, some container
//! runtimes), [`spawn`] says so and the caller starts the process through std's fork path, with
//! the same guarantees at the old cost.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;

use super::process::CommandSpec;

/// The child's own stack while it runs before exec: a few frames of plain system calls.
const CHILD_STACK: usize = 64 * 1024;

/// Set once the kernel refused the fast clone; every later spawn goes the fork way at once.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// A started child: its pid, the pidfd that reports its exit, and the read ends of its stdout
/// and stderr pipes.
pub(super) struct Spawned {
    pub(super) child: Child,
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
}

/// Starts `spec` (running `program`, its resolved path) with `extra_env` added, in a new process group, stdin from `/dev/null`, stdout
/// and stderr into pipes, an empty signal mask, default signal handlers, and SIGTERM as its
/// parent-death signal. `Ok(None)`: this kernel cannot do it; use the fork path.
pub(super) fn spawn(
    spec: &CommandSpec,
    program: &OsStr,
    extra_env: (&OsStr, &OsStr),
) -> io::Result<Option<Spawned>> {
    if UNSUPPORTED.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let prepared = Prepared::new(spec, program, extra_env)?;
    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let devnull = open_devnull()?;
    match clone_and_exec(&prepared, &devnull, &out_write, &err_write)? {
        Some(child) => Ok(Some(Spawned {
            child,
            stdout: out_read,
            stderr: err_read,
        })),
        None => {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            Ok(None)
        }
    }
}

/// Everything the child needs, as C data built before the clone: the child must not allocate.
struct Prepared {
    program: CString,
    /// `argv` for `/bin/sh` when the program is a script without `#!` (`ENOEXEC`), as
    /// `execvp` and std's fork path do: `sh program args...`.
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    sh_argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: CString,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a program, argument, variable or folder holds a NUL byte",
        )
    })
}

impl Prepared {
    fn new(
        spec: &CommandSpec,
        program: &OsStr,
        extra_env: (&OsStr, &OsStr),
    ) -> io::Result<Prepared> {
        let program = cstring(program.as_bytes())?;
        let mut strings = Vec::with_capacity(spec.args.len() + spec.env.len() + 3);
        let mut argv = vec![program.as_ptr()];
        let sh = cstring(b"sh")?;
        let mut sh_argv = vec![sh.as_ptr(), program.as_ptr()];
        for arg in &spec.args {
            let arg = cstring(arg.as_bytes())?;
            argv.push(arg.as_ptr());
            sh_argv.push(arg.as_ptr());
            // Moving a CString does not move its heap buffer: the pointers stay valid.
            strings.push(arg);
        }
        strings.push(sh);
        argv.push(std::ptr::null());
        sh_argv.push(std::ptr::null());
        let mut envp = Vec::with_capacity(spec.env.len() + 2);
        let vars = spec
            .env
            .iter()
            .filter(|(k, _)| k.as_os_str() != extra_env.0)
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
            .chain(std::iter::once(extra_env));
        for (key, value) in vars {
            let mut entry = Vec::with_capacity(key.len() + value.len() + 1);
            entry.extend_from_slice(key.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            let entry = cstring(&entry)?;
            envp.push(entry.as_ptr());
            strings.push(entry);
        }
        envp.push(std::ptr::null());
        Ok(Prepared {
            program,
            _strings: strings,
            argv,
            sh_argv,
            envp,
            cwd: cstring(spec.cwd.as_os_str().as_bytes())?,
        })
    }
}

/// A pipe whose ends are close-on-exec and not 0, 1 or 2 (bitops may have been started with a
/// standard stream closed), so the child's `dup2`s cannot overwrite one with another.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok((above_stdio(read)?, above_stdio(write)?))
}

fn open_devnull() -> io::Result<OwnedFd> {
    let file = std::fs::File::open("/dev/null")?;
    above_stdio(OwnedFd::from(file))
}

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let fd = fd.as_fd().try_clone_to_owned()?;
    above_stdio(fd)
}

/// What the child reads (and, on failure, writes: `errno`). Lives on the parent's stack; the
/// parent thread is suspended while the child uses it.
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    sh_argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    parent: libc::pid_t,
    errno: libc::c_int,
}

#[allow(unsafe_code)]
fn clone_and_exec(
    prepared: &Prepared,
    stdin: &OwnedFd,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
) -> io::Result<Option<Child>> {
    let mut args = ChildArgs {
        program: prepared.program.as_ptr(),
        argv: prepared.argv.as_ptr(),
        sh_argv: prepared.sh_argv.as_ptr(),
        envp: prepared.envp.as_ptr(),
        cwd: prepared.cwd.as_ptr(),
        stdin: stdin.as_raw_fd(),
        stdout: stdout.as_raw_fd(),
        stderr: stderr.as_raw_fd(),
        parent: std::process::id() as libc::pid_t,
        errno: 0,
    };
    // One stack per thread, reused: a fresh allocation faulted its pages in on every spawn.
    // Spawns from one thread never overlap (the thread is suspended while its child uses it).
    thread_local! {
        static STACK: std::cell::RefCell<Vec<std::mem::MaybeUninit<u8>>> =
            std::cell::RefCell::new(Vec::with_capacity(CHILD_STACK));
    }
    // The stack grows down; the ABI wants its top 16-byte aligned.
    let top = STACK.with(|s| {
        let mut s = s.borrow_mut();
        let base = s.as_mut_ptr() as usize;
        (base + s.capacity()) & !15
    });
    let mut pidfd: libc::c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;

    // SAFETY (the one place bitops clones by hand; audited with `child_main`):
    // * Every signal is blocked in this thread across the clone, so no handler of bitops can run
    //   in the child, which shares bitops' memory; the child resets handlers to the default
    //   before it unblocks anything.
    // * `CLONE_VFORK` suspends this thread until the child has exec'd or exited, so `args`,
    //   `prepared` and this thread's `STACK` outlive every use the child makes of them, and
    //   nothing else touches them meanwhile. Other threads keep running but never see them.
    // * The child runs `child_main` on `STACK`, which only makes async-signal-safe calls on
    //   pointers prepared above, allocates nothing, takes no lock, and never returns into Rust
    //   code of the parent (it execs or `_exit`s).
    let (pid, clone_errno) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top as *mut libc::c_void,
            flags,
            (&raw mut args).cast::<libc::c_void>(),
            &raw mut pidfd,
        );
        let clone_errno = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        (pid, clone_errno)
    };
    if pid < 0 {
        return match clone_errno.raw_os_error() {
            // No CLONE_PIDFD (Linux < 5.2), clone filtered (seccomp): use the fork path.
            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) => Ok(None),
            _ => Err(clone_errno),
        };
    }
    // SAFETY: the kernel returned a new pidfd, owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let mut child = Child {
        pid,
        pidfd: None,
        raw_pidfd: Some(pidfd),
        status: None,
    };
    // Written by the child through the pointer the clone was given: read it as memory that
    // changed behind the compiler's back.
    // SAFETY: `args` is a live local; the child is gone (exec'd or exited).
    let errno = unsafe { std::ptr::read_volatile(&raw const args.errno) };
    if errno != 0 {
        // The exec failed; the child `_exit`ed. Reap it so it does not linger as a zombie.
        let _ = child.wait_blocking();
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(Some(child))
}

/// The child, between clone and exec. Runs on its own stack in bitops' memory with every signal
/// blocked: plain system calls only.
#[allow(unsafe_code)]
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` of the suspended parent thread (see `clone_and_exec`);
    // every pointer in it is valid until this child execs or exits.
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        // Handlers bitops installed (tokio's SIGCHLD, std's SIGPIPE ignore) must not run here
        // once signals are unblocked: back to the defaults, as std does for its children. Other
        // ignored signals stay ignored, as `posix_spawn` leaves them. The child does not share
        // the handler table (no CLONE_SIGHAND), so this changes nothing for bitops.
        let mut action: libc::sigaction = std::mem::zeroed();
        for sig in 1..libc::SIGRTMAX() + 1 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            if libc::sigaction(sig, std::ptr::null(), &mut action) != 0 {
                continue;
            }
            if action.sa_sigaction == libc::SIG_DFL
                || (action.sa_sigaction == libc::SIG_IGN && sig != libc::SIGPIPE)
            {
                continue;
            }
            action.sa_sigaction = libc::SIG_DFL;
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        // The step must not run on without the process that reports and locks it.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
            return fail(args);
        }
        // bitops died before the prctl: the signal would never come.
        if libc::getppid() != args.parent {
            *libc::__errno_location() = libc::ESRCH;
            return fail(args);
        }
        if libc::setpgid(0, 0) != 0
            || libc::dup2(args.stdin, 0) < 0
            || libc::dup2(args.stdout, 1) < 0
            || libc::dup2(args.stderr, 2) < 0
            || libc::chdir(args.cwd) != 0
        {
            return fail(args);
        }
        let empty: libc::sigset_t = {
            let mut set = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        };
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        libc::execve(args.program, args.argv, args.envp);
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), args.sh_argv, args.envp);
            *libc::__errno_location() = libc::ENOEXEC;
        }
        fail(args)
    }
}

/// Records `errno` for the parent and ends the child without running any exit handler.
#[allow(unsafe_code)]
unsafe fn fail(args: &mut ChildArgs) -> libc::c_int {
    // SAFETY: see `child_main`; `_exit` runs no Rust or libc cleanup in the shared memory.
    unsafe {
        args.errno = (*libc::__errno_location()).max(1);
        libc::_exit(127)
    }
}

/// A child started by [`spawn`]. Dropped before it was reaped, it is killed and reaped (like
/// tokio's `kill_on_drop`); its process group is the caller's to end.
pub(super) struct Child {
    pid: libc::pid_t,
    /// Registered with the runtime on the first async wait (spawning needs no runtime).
    pidfd: Option<AsyncFd<OwnedFd>>,
    raw_pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
}

impl Child {
    pub(super) fn id(&self) -> i32 {
        self.pid
    }

    /// Waits for the child to exit and reaps it.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if self.pidfd.is_none() {
            let fd = self.raw_pidfd.take().expect("a pidfd until reaped");
            // SAFETY: an `OwnedFd` stays open and names the same pidfd until the `AsyncFd`
            // (which owns it) is dropped.
            #[allow(unsafe_code)]
            let registered =
                unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
            self.pidfd = Some(registered.map_err(io::Error::from)?);
        }
        let fd = self.pidfd.as_ref().expect("registered above");
        loop {
            let mut ready = fd.readable().await?;
            if let Some(status) = reap(fd.get_ref(), WaitPidFlag::WNOHANG)? {
                self.status = Some(status);
                return Ok(status);
            }
            ready.clear_ready();
        }
    }

    fn wait_blocking(&mut self) -> io::Result<ExitStatus> {
        let fd = match (&self.pidfd, &self.raw_pidfd) {
            (Some(fd), _) => fd.get_ref(),
            (None, Some(fd)) => fd,
            (None, None) => return Err(io::Error::other("no pidfd")),
        };
        let status =
            reap(fd, WaitPidFlag::empty())?.ok_or_else(|| io::Error::other("not exited"))?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // Not reaped yet, so the pid still names this child (a zombie keeps it). Reaped now if
        // it is already gone; never waited for here (a drop must not block a runtime thread on
        // a process stuck in the kernel): what is left is reaped with the run's orphans.
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        let fd = match (&self.pidfd, &self.raw_pidfd) {
            (Some(fd), _) => fd.get_ref(),
            (None, Some(fd)) => fd,
            (None, None) => return,
        };
        let _ = reap(fd, WaitPidFlag::WNOHANG);
    }
}

/// `waitid(P_PIDFD)`: the exit status once the child exited, `None` while it runs (`WNOHANG`).
fn reap(pidfd: &OwnedFd, flags: WaitPidFlag) -> io::Result<Option<ExitStatus>> {
    loop {
        return match waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED | flags) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(ExitStatus::from_raw((code & 0xff) << 8))),
            Ok(WaitStatus::Signaled(_, sig, core)) => Ok(Some(ExitStatus::from_raw(
                sig as i32 | if core { 0x80 } else { 0 },
            ))),
            Ok(_) => Ok(None),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(err) => Err(err.into()),
        };
    }
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
