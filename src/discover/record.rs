//! What a `plan` looked at on the file system, for the plan cache (`crate::plan::cache`) to
//! check before it replays that plan's output.
//!
//! The cache is only correct if every file and folder whose content, presence or type the plan
//! depended on is recorded here; anything the plan reads that is missing here is a bug. So the
//! recording sits at the few places every read goes through: [`crate::discover::files`] (every
//! config file is read by `read_regular`, and the special-file walk lists every folder of the
//! repo, `.git` and `.bitops` aside), the plugin registry (each plugin folder, wherever it
//! lives, recorded whole), the state folder (`history.json`, saved outputs) and the helpers
//! below for the scattered probes (`PATH` lookups, tool files a plugin checks). Whatever cannot
//! be checked by a `stat` (git for `--changed-since`, a remote state store) *poisons* the
//! record: no cache is written for that plan.
//!
//! Recording is off (one relaxed atomic load per call) unless `plan` turned it on because it
//! can write a cache.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a `stat` said about a path: enough to notice any change (git's index uses the same
/// fields). A change of content changes `mtime` and `ctime`; setting `mtime` back (`touch -d`)
/// still changes `ctime`; replacing a file changes `ino`; adding, removing or renaming an entry
/// of a folder changes the folder's `mtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Nanoseconds since the epoch (one `i64` rather than two: a plan records 100,000 of these).
    pub mtime: i64,
    pub ctime: i64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
}

/// Seconds and nanoseconds as nanoseconds since the epoch (saturating: years past 2262 are all
/// the same to the cache, and they would be "racily clean", never trusted).
pub fn nanos(sec: i64, nsec: i64) -> i64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// The outcome of a `stat`: the file's fields, or the error number (a missing file is as much
/// an input as a present one: creating it must invalidate the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Stat(Stat),
    Error(i32),
}

impl Found {
    pub fn of(result: &io::Result<std::fs::Metadata>) -> Found {
        match result {
            Ok(m) => Found::Stat(Stat {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime: nanos(m.mtime(), m.mtime_nsec()),
                ctime: nanos(m.ctime(), m.ctime_nsec()),
                mode: m.mode(),
            }),
            // An error without a number cannot be compared: -1 never equals a real one.
            Err(e) => Found::Error(e.raw_os_error().unwrap_or(-1)),
        }
    }

    /// `stat` (following symlinks) or `lstat` of `path` now.
    pub fn now(path: &Path, follow: bool) -> Found {
        Found::of(&if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        })
    }

    pub fn is_regular_file(&self) -> bool {
        matches!(self, Found::Stat(s) if s.mode & libc::S_IFMT == libc::S_IFREG)
    }
}

/// One path the plan looked at.
#[derive(Debug, Clone)]
pub struct Rec {
    pub path: Box<Path>,
    /// `stat` (following symlinks) rather than `lstat`.
    pub follow: bool,
    /// What the `stat` said while the plan ran (taken before the content was read, so any
    /// later change shows), or `None` for an entry the repo walk listed: its `lstat` is taken
    /// when the cache is written (its folder is recorded too, so an entry replaced meanwhile
    /// shows as a changed folder).
    pub found: Option<Found>,
    /// The listing said regular file (an entry the walk listed).
    pub file: bool,
}

/// Everything recorded during one plan.
#[derive(Debug, Default)]
pub struct Log {
    pub recs: Vec<Rec>,
    /// Folders read as a whole (plugin folders) and their `stat` then: every entry below them
    /// is recorded when the cache is written, and the `stat` must still hold then.
    pub trees: Vec<(PathBuf, Found)>,
    /// Why this plan cannot be cached (it depended on something a `stat` cannot check).
    pub poisoned: Option<String>,
}

type Buffer = Arc<Mutex<Vec<Rec>>>;

static ON: AtomicBool = AtomicBool::new(false);
/// Trees and poison (rare); records go to per-thread buffers, so the parallel repo walk does
/// not contend for one lock 100,000 times.
static LOG: Mutex<Option<Log>> = Mutex::new(None);
static BUFFERS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: std::cell::OnceCell<Buffer> = const { std::cell::OnceCell::new() };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts recording (the plan command, when it may write a cache).
pub fn start() {
    *lock(&LOG) = Some(Log::default());
    for b in lock(&BUFFERS).iter() {
        lock(b).clear();
    }
    ON.store(true, Ordering::Release);
}

/// Stops recording and hands over what was recorded (in one list of the exact size: the
/// per-thread buffers are freed as they are moved).
pub fn finish() -> Option<Log> {
    ON.store(false, Ordering::Release);
    let mut log = lock(&LOG).take()?;
    let parts: Vec<Vec<Rec>> = lock(&BUFFERS)
        .iter()
        .map(|b| std::mem::take(&mut *lock(b)))
        .collect();
    log.recs = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        log.recs.extend(part);
    }
    Some(log)
}

#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

fn push(rec: Rec) {
    MINE.with(|mine| {
        let buf = mine.get_or_init(|| {
            let b = Buffer::default();
            lock(&BUFFERS).push(Arc::clone(&b));
            b
        });
        lock(buf).push(rec);
    });
}

/// This plan depended on something no `stat` can check: it must not be cached.
pub fn poison(why: &str) {
    if on() {
        if let Some(log) = lock(&LOG).as_mut() {
            log.poisoned.get_or_insert_with(|| why.to_string());
        }
    }
}

/// Records the result of a `stat` (`follow`) or `lstat` the plan made of `path`.
pub fn seen(path: &Path, follow: bool, result: &io::Result<std::fs::Metadata>) {
    if on() {
        push(Rec {
            path: path.into(),
            follow,
            found: Some(Found::of(result)),
            file: false,
        });
    }
}

/// [`seen`] with the metadata of an open file or folder (its `fstat`, taken before reading it).
pub fn seen_meta(path: &Path, meta: &std::fs::Metadata) {
    if on() {
        push(Rec {
            path: path.into(),
            follow: true,
            found: Some(Found::of(&Ok(meta.clone()))),
            file: false,
        });
    }
}

/// [`seen`] for a path that could not be opened.
pub fn seen_error(path: &Path, e: &io::Error) {
    if on() {
        push(Rec {
            path: path.into(),
            follow: true,
            found: Some(Found::Error(e.raw_os_error().unwrap_or(-1))),
            file: false,
        });
    }
}

/// Records an entry of a folder listing, to be `stat`ed when the cache is written.
pub fn listed(path: &Path, follow: bool, file: bool) {
    if on() {
        push(Rec {
            path: path.into(),
            follow,
            found: None,
            file,
        });
    }
}

/// Records a folder the plan reads as a whole (a plugin folder): it and everything below it.
pub fn tree(path: &Path) {
    if on() {
        let found = Found::now(path, true);
        if let Some(log) = lock(&LOG).as_mut() {
            log.trees.push((path.to_path_buf(), found));
        }
    }
}

/// `std::fs::metadata`, recorded.
pub fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref();
    let m = std::fs::metadata(path);
    seen(path, true, &m);
    m
}

/// Records `path`'s `stat` before a read that does not go through `files::read_regular`
/// (nothing is done while recording is off).
pub fn before_read(path: impl AsRef<Path>) {
    if on() {
        let path = path.as_ref();
        seen(path, true, &std::fs::metadata(path));
    }
}

/// `path.is_file()`, recorded.
pub fn is_file(path: impl AsRef<Path>) -> bool {
    metadata(path).is_ok_and(|m| m.is_file())
}

/// `path.is_dir()`, recorded.
pub fn is_dir(path: impl AsRef<Path>) -> bool {
    metadata(path).is_ok_and(|m| m.is_dir())
}

/// `std::fs::read_dir`, recorded: the folder's `stat` before the listing (its `mtime` changes
/// with any entry added, removed or renamed).
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<std::fs::ReadDir> {
    let path = path.as_ref();
    if on() {
        metadata(path)?;
    }
    std::fs::read_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_tells_files_folders_and_missing_paths_apart() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, "x").unwrap();
        assert!(Found::now(&f, true).is_regular_file());
        assert!(!Found::now(t.path(), true).is_regular_file());
        assert_eq!(
            Found::now(&t.path().join("nope"), true),
            Found::Error(libc::ENOENT)
        );
        assert_eq!(
            Found::now(&f.join("below-a-file"), false),
            Found::Error(libc::ENOTDIR)
        );
        std::os::unix::fs::symlink(&f, t.path().join("l")).unwrap();
        assert_eq!(Found::now(&t.path().join("l"), true), Found::now(&f, true));
        assert_ne!(Found::now(&t.path().join("l"), false), Found::now(&f, true));
    }
}
