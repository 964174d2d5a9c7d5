//! Environment locks: two runs may not deploy the same environment at once.
//!
//! A lock is a file `<state>/locks/<env>.lock` holding who took it, created atomically (it must
//! not exist before). All the locks one acquisition takes are hard links to one holder file,
//! written once and unlinked again once they are taken: `link(2)` fails when the name exists,
//! just like `O_EXCL`, but allocates no inode. On ext4, allocating and freeing an inode per
//! environment and run was the largest per-deployment cost of bitops after process start-up
//! (see docs/PERFORMANCE.md); what a lock holds and how it is read did not change. A lock is stale only when no process of its run is alive
//! on this host: not its bitops (pid *and* start time and boot id, so a reused pid cannot fake
//! liveness), and no process carrying `BITOPS_RUN_ID=<its run>` (a deployment that outlived a
//! SIGKILLed bitops, or the watchdog still ending them). A stale lock is reported as such and
//! removed only when asked (`--break-stale-locks`), because an interrupted run may have left
//! the environment half-deployed.
//!
//! Locks taken are registered with `exec::lifetime`, so a signal while waiting for the next one
//! (`--lock-timeout`) or a panic releases them; only a SIGKILL leaves them (stale) behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started: String,
    pub command: String,
    pub run_id: String,
    /// The holder's start time in clock ticks after boot (`/proc/<pid>/stat`), absent in locks
    /// written by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when the lock was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl Holder {
    pub fn describe(&self) -> String {
        format!(
            "pid {} on {} since {} (run {}: {})",
            self.pid, self.host, self.started, self.run_id, self.command
        )
    }

    /// This process, as the holder of the locks of run `run_id`.
    pub fn me(run_id: &str, command: String) -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            host: hostname(),
            started: crate::state::rfc3339(std::time::SystemTime::now()),
            command,
            run_id: run_id.to_owned(),
            start_time: crate::exec::lifetime::start_time(pid as i32),
            boot_id: crate::exec::lifetime::boot_id(),
        }
    }

    /// Whether nothing of the holder's run is alive on this host any more.
    pub fn is_stale(&self) -> bool {
        self.host == hostname()
            && !self.holder_alive()
            && !crate::exec::lifetime::run_alive(&self.run_id)
    }

    /// The holding bitops itself, told apart from another process that got its pid.
    fn holder_alive(&self) -> bool {
        if self.boot_id.is_some() && self.boot_id != crate::exec::lifetime::boot_id() {
            return false;
        }
        if !pid_alive(self.pid) {
            return false;
        }
        match self.start_time {
            Some(t) => crate::exec::lifetime::start_time(self.pid as i32) == Some(t),
            None => true,
        }
    }
}

#[derive(Debug)]
pub enum LockError {
    /// Another live run holds it.
    Held { env: String, holder: Holder },
    /// Its holder is gone; `--break-stale-locks` removes it.
    Stale { env: String, holder: Holder },
    Io {
        env: String,
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { env, holder } => write!(f, "environment `{env}` is being deployed by another run: {}", holder.describe()),
            LockError::Stale { env, holder } => write!(
                f,
                "environment `{env}` has a stale lock from a run that no longer exists: {}; it may be half-deployed — check it, then pass --break-stale-locks",
                holder.describe()
            ),
            LockError::Io { env, path, error } => write!(f, "cannot lock environment `{env}` ({}): {error}", path.display()),
        }
    }
}

/// Locks held by this run; released when dropped.
#[derive(Debug, Default)]
pub struct Locks {
    paths: Vec<PathBuf>,
}

impl Drop for Locks {
    fn drop(&mut self) {
        crate::exec::lifetime::release_locks(&self.paths);
    }
}

pub fn lock_path(state_dir: &Path, env: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{env}.lock"))
}

/// Takes the lock of every environment, all or none. With `wait`, a held lock is retried until
/// the time is up.
pub fn acquire(
    state_dir: &Path,
    envs: &[String],
    me: &Holder,
    wait: Option<Duration>,
    break_stale: bool,
) -> Result<Locks, LockError> {
    let mut locks = Locks::default();
    let mut holder_file = HolderFile::new(state_dir, me);
    // A wait too long to represent is a wait without end (and no overflow panic).
    let until = wait.map(|w| Instant::now().checked_add(w));
    for env in envs {
        let path = lock_path(state_dir, env);
        loop {
            let linked = holder_file.ensure().and_then(|holder| {
                crate::exec::lifetime::create_lock(&path, || link_or_create(holder, &path, me))
            });
            match linked {
                Ok(()) => {
                    locks.paths.push(path);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = read_holder(&path).unwrap_or_else(|| Holder {
                        pid: 0,
                        host: "unknown".into(),
                        started: "unknown".into(),
                        command: "unreadable lock file".into(),
                        run_id: "unknown".into(),
                        start_time: None,
                        boot_id: None,
                    });
                    if holder.is_stale() {
                        if break_stale {
                            let _ = std::fs::remove_file(&path);
                            continue;
                        }
                        return Err(LockError::Stale {
                            env: env.clone(),
                            holder,
                        });
                    }
                    match until {
                        Some(None) => std::thread::sleep(Duration::from_millis(200)),
                        Some(Some(t)) if Instant::now() < t => {
                            std::thread::sleep(Duration::from_millis(200))
                        }
                        _ => {
                            return Err(LockError::Held {
                                env: env.clone(),
                                holder,
                            })
                        }
                    }
                }
                Err(error) => {
                    return Err(LockError::Io {
                        env: env.clone(),
                        path,
                        error,
                    })
                }
            }
        }
    }
    drop(holder_file);
    crate::exec::lifetime::test_panic_point("locked");
    Ok(locks)
}

/// The file every lock of one acquisition is a hard link to, made on first use. Named with a
/// dot, so listings of the locks folder skip it; removed when dropped (the locks linked to it
/// keep its content). Only a SIGKILL in between leaves it behind, and it locks nothing.
struct HolderFile<'a> {
    dir: PathBuf,
    me: &'a Holder,
    path: Option<PathBuf>,
}

impl<'a> HolderFile<'a> {
    fn new(state_dir: &Path, me: &'a Holder) -> HolderFile<'a> {
        HolderFile {
            dir: state_dir.join("locks"),
            me,
            path: None,
        }
    }

    /// The holder file, created on first use. A lock is then `link(2)`ed to it: `AlreadyExists`
    /// when the lock is taken.
    fn ensure(&mut self) -> std::io::Result<&Path> {
        if self.path.is_none() {
            self.path = Some(self.create()?);
        }
        Ok(self.path.as_deref().expect("created above"))
    }

    /// Registered like a lock, so that a signal or a panic before it is dropped removes it too.
    fn create(&self) -> std::io::Result<PathBuf> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        crate::state::fsutil::own_dir(&self.dir, "locks")?;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.join(format!(".holder-{}-{n}", std::process::id()));
        crate::exec::lifetime::create_lock(&path, || {
            // A leftover of a SIGKILLed bitops that had this pid is not a lock: replace it.
            let _ = std::fs::remove_file(&path);
            // No fsync: after a crash of the machine the lock is stale anyway, and one fsync
            // per environment is seconds on big runs.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::state::fsutil::FILE_MODE)
                .open(&path)?;
            f.write_all(&serde_json::to_vec_pretty(self.me).expect("holder serializes"))
        })?;
        Ok(path)
    }
}

impl Drop for HolderFile<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            crate::exec::lifetime::release_locks(&[p]);
        }
    }
}

/// `lock` as a hard link to `holder`; where the file system refuses the link for another reason
/// than the name existing (no hard links there, or the holder's link count at its limit: ext4
/// allows 65,000), the lock file is created and written on its own, `O_EXCL`, as before.
fn link_or_create(holder: &Path, lock: &Path, me: &Holder) -> std::io::Result<()> {
    match std::fs::hard_link(holder, lock) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::state::fsutil::FILE_MODE)
                .open(lock)?;
            f.write_all(&serde_json::to_vec_pretty(me).expect("holder serializes"))
        }
        linked => linked,
    }
}

#[cfg(test)]
fn try_create(path: &Path, me: &Holder) -> std::io::Result<()> {
    let mut holder = HolderFile::new(path.parent().and_then(Path::parent).unwrap(), me);
    std::fs::hard_link(holder.ensure()?, path)
}

pub fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // A zombie still answers kill(0) but has exited.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32) -> Holder {
        Holder {
            pid,
            host: hostname(),
            started: "now".into(),
            command: "bitops deploy".into(),
            run_id: "r".into(),
            start_time: None,
            boot_id: None,
        }
    }

    #[test]
    fn a_held_lock_refuses_and_is_released_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let envs = vec!["a".to_string(), "b".to_string()];
        let first = acquire(t.path(), &envs, &holder(std::process::id()), None, false).unwrap();
        match acquire(t.path(), &["b".to_string()], &holder(1), None, false) {
            Err(LockError::Held { env, holder }) => {
                assert_eq!(env, "b");
                assert_eq!(holder.pid, std::process::id());
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(acquire(t.path(), &envs, &holder(std::process::id()), None, false).is_ok());
    }

    #[test]
    fn released_locks_are_forgotten_by_the_emergency_exit() {
        // A released lock left registered would be removed by a later emergency exit: by then
        // it may be another run's lock.
        let t = tempfile::tempdir().unwrap();
        let envs: Vec<String> = (0..50).map(|i| format!("e{i}")).collect();
        let mine = || -> Vec<PathBuf> {
            crate::exec::lifetime::registered_locks()
                .into_iter()
                .filter(|p| p.starts_with(t.path()))
                .collect()
        };
        let locks = acquire(t.path(), &envs, &holder(std::process::id()), None, false).unwrap();
        let held = mine();
        assert_eq!(
            held.len(),
            envs.len(),
            "the holder file is released at once"
        );
        for e in &envs {
            assert!(held.contains(&lock_path(t.path(), e)));
        }
        drop(locks);
        assert!(mine().is_empty());
        for e in &envs {
            assert!(!lock_path(t.path(), e).exists());
        }
    }

    #[test]
    fn the_locks_of_one_acquisition_share_one_private_file_and_leave_nothing_else() {
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let envs: Vec<String> = (0..5).map(|i| format!("e{i}")).collect();
        let me = holder(std::process::id());
        let locks = acquire(t.path(), &envs, &me, None, false).unwrap();
        let metas: Vec<_> = envs
            .iter()
            .map(|e| std::fs::metadata(lock_path(t.path(), e)).unwrap())
            .collect();
        // One inode, linked once per environment: the holder file itself is gone.
        assert!(metas.iter().all(|m| m.ino() == metas[0].ino()));
        assert_eq!(metas[0].nlink(), 5);
        assert_eq!(metas[0].mode() & 0o777, crate::state::fsutil::FILE_MODE);
        let names: Vec<String> = std::fs::read_dir(t.path().join("locks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert!(names.iter().all(|n| n.ends_with(".lock")), "{names:?}");
        assert_eq!(read_holder(&lock_path(t.path(), "e3")).unwrap(), me);
        // A refused acquisition leaves no holder file either, and keeps nothing it took.
        assert!(acquire(
            t.path(),
            &["new".into(), "e1".into()],
            &holder(1),
            None,
            false
        )
        .is_err());
        assert!(!lock_path(t.path(), "new").exists());
        assert_eq!(
            std::fs::read_dir(t.path().join("locks")).unwrap().count(),
            5
        );
        drop(locks);
        assert_eq!(
            std::fs::read_dir(t.path().join("locks")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_refused_link_falls_back_to_a_file_of_its_own() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("locks")).unwrap();
        let me = holder(std::process::id());
        // A holder the link cannot use (here: gone; on a file system without hard links, or
        // at ext4's 65,000 links, the link fails the same way).
        let gone = t.path().join("locks/.holder-gone");
        let lock = lock_path(t.path(), "a");
        link_or_create(&gone, &lock, &me).unwrap();
        assert_eq!(read_holder(&lock).unwrap(), me);
        // A taken name is still refused, by either path.
        let err = link_or_create(&gone, &lock, &me).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn a_reused_pid_or_another_boot_does_not_fake_liveness() {
        let me = Holder::me("r-liveness", "bitops deploy".into());
        assert!(!me.is_stale(), "this process holds it");
        // Same pid, another process (a different start time): its bitops is gone.
        let reused = Holder {
            start_time: me.start_time.map(|t| t + 1),
            ..me.clone()
        };
        assert!(reused.is_stale());
        // Same pid and start time, but recorded before a reboot.
        let rebooted = Holder {
            boot_id: Some("not-this-boot".into()),
            ..me.clone()
        };
        assert!(rebooted.is_stale());
    }

    #[test]
    fn stale_locks_are_reported_and_broken_on_request() {
        let t = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above pid_max).
        let dead = holder(4_194_305);
        try_create(&lock_path(t.path(), "a"), &dead).unwrap();
        let me = holder(std::process::id());
        assert!(matches!(
            acquire(t.path(), &["a".to_string()], &me, None, false),
            Err(LockError::Stale { .. })
        ));
        let held = acquire(t.path(), &["a".to_string()], &me, None, true).unwrap();
        assert_eq!(read_holder(&lock_path(t.path(), "a")).unwrap(), me);
        drop(held);
    }
}
