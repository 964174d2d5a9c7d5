//! The plan cache: a second `bitops plan` of an unchanged repo prints what the first printed,
//! without reading and resolving the repo again (issue 13; docs/PERFORMANCE.md, "The plan
//! cache").
//!
//! A cache entry holds a plan's complete output (stderr, stdout, exit code) under a key of
//! everything about the invocation (`key`), and the `stat` of every file and folder that plan
//! looked at (`crate::discover::record`). A later plan with the same key replays the output
//! only if every recorded path still `stat`s identically (device, inode, size, mtime, ctime,
//! type and mode, or the same error): any file changed, added, removed or renamed changes a
//! recorded file or the `mtime` of a recorded folder. As in git's index, a path whose
//! timestamps are not older than the plan's start by a generous margin ([`RACY`]) could change
//! again within the same timestamp, so a plan that saw one is not cached ("racily clean").
//!
//! The cache lives in `<state>/cache/plan/` and is written only when the state folder already
//! exists (a plan never creates anything in a repo), through a temporary file renamed into
//! place (a reader sees a whole entry or none); a file that does not parse, is cut short,
//! damaged or from another bitops is a miss. At most [`KEEP`] entries are kept.

pub mod format;
pub mod key;

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::config::settings::EnvVars;
use crate::discover::record::{self, Found, Log, Rec};

/// How much older than the plan's start a recorded timestamp must be to be trusted. File
/// systems store times from a coarse clock (ext4: a kernel tick; others: whole seconds or two),
/// so a change right after a read can leave the same timestamps; be generous.
pub const RACY: Duration = Duration::from_secs(2);

/// Entries kept per state folder (each is a whole plan's output: tens of MB for 10,000
/// environments): the plan formats a user alternates between, not every one ever asked for.
pub const KEEP: usize = 3;

/// At most this many entries are recorded below one plugin folder; a larger one is not cached.
const TREE_LIMIT: usize = 20_000;

/// The cache folder inside a state folder.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("cache").join("plan")
}

/// Whether `BITOPS_NO_CACHE` asks for no cache (any value but empty and `0`).
pub fn disabled_by_env(env: &EnvVars) -> bool {
    env.get("BITOPS_NO_CACHE")
        .is_some_and(|v| !v.is_empty() && v != "0")
}

/// What [`open`] found.
pub enum Lookup {
    /// The output was replayed: exit with this code.
    Hit(u8),
    /// Plan as usual, recording, and [`Session::commit`] at the end.
    Miss(Box<Session>),
    /// No cache for this plan.
    Off,
}

/// A plan being recorded for the cache.
pub struct Session {
    key: [u8; 16],
    root: PathBuf,
    state_dir: PathBuf,
    start: SystemTime,
    debug: bool,
    stderr: Vec<u8>,
    writer: Option<Writer>,
}

/// One line on stderr under `BITOPS_LOG=debug` (not part of the cached output).
fn note(debug: bool, msg: impl std::fmt::Display) {
    if debug {
        eprintln!("bitops: plan cache: {msg}");
    }
}

/// Looks for a cached plan of this invocation and replays it, or starts recording one.
/// `ops_repo`/`state_dir` are the command's flags; `no_cache` is `--no-cache`.
pub fn open(
    ops_repo: Option<&Path>,
    state_dir: Option<&Path>,
    env: &EnvVars,
    no_cache: bool,
) -> Lookup {
    // Before anything is read: every recorded timestamp is compared with this.
    let start = SystemTime::now();
    let debug = env.get("BITOPS_LOG") == Some("debug");
    if no_cache || disabled_by_env(env) {
        note(debug, "off (--no-cache or BITOPS_NO_CACHE)");
        return Lookup::Off;
    }
    let Ok(root) = crate::discover::find_ops_repo(ops_repo, env) else {
        return Lookup::Off;
    };
    let state_dir = state_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join(".bitops"));
    if !state_dir.is_dir() {
        note(
            debug,
            format_args!(
                "off: no state folder {} (a plan creates none)",
                state_dir.display()
            ),
        );
        return Lookup::Off;
    }
    let Some(key) = key::of_this_process() else {
        note(debug, "off: cannot identify the bitops executable");
        return Lookup::Off;
    };
    let path = dir(&state_dir).join(key::hex(&key));
    let t = Instant::now();
    match std::fs::read(&path) {
        Ok(data) => match check(&data, &key, &root) {
            Ok(p) => {
                note(
                    debug,
                    format_args!(
                        "hit ({}, {} paths checked in {} ms)",
                        path.display(),
                        p.entries.len(),
                        t.elapsed().as_millis()
                    ),
                );
                let _ = io::stderr().write_all(p.stderr);
                let mut out = io::stdout().lock();
                let _ = out.write_all(p.stdout).and_then(|()| out.flush());
                // Recently used entries are the ones kept (see `prune`).
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                return Lookup::Hit(p.code);
            }
            Err(why) => note(debug, format_args!("miss: {why}")),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => note(debug, "miss: no entry"),
        Err(e) => note(debug, format_args!("miss: {}: {e}", path.display())),
    }
    record::start();
    Lookup::Miss(Box::new(Session {
        key,
        root,
        state_dir,
        start,
        debug,
        stderr: Vec::new(),
        writer: None,
    }))
}

/// Parses a cache file and checks it against this invocation and the file system.
fn check<'a>(data: &'a [u8], key: &[u8; 16], root: &Path) -> Result<format::Parsed<'a>, String> {
    let p = format::parse(data).map_err(str::to_string)?;
    if &p.key != key {
        return Err("entry of another invocation".into());
    }
    if p.root != root {
        return Err(format!("entry of another repo ({})", p.root.display()));
    }
    if let Some(e) = p
        .entries
        .par_iter()
        .find_any(|e| Found::now(&e.path, e.follow) != e.found)
    {
        return Err(format!("{} changed", e.path.display()));
    }
    Ok(p)
}

impl Session {
    /// Prints `text` on stderr and keeps it for the cache.
    pub fn stderr(session: Option<&mut Session>, text: &str) {
        let _ = io::stderr().write_all(text.as_bytes());
        if let Some(s) = session {
            s.stderr.extend_from_slice(text.as_bytes());
        }
    }

    /// Where a copy of stdout goes (after the last stderr text: the file starts with it), or
    /// `None` when the cache file cannot be written (a read-only state folder).
    pub fn stdout_copy(&mut self) -> Option<&mut Writer> {
        if self.writer.is_none() {
            match Writer::create(&dir(&self.state_dir), &self.key, &self.stderr) {
                Ok(w) => self.writer = Some(w),
                Err(e) => {
                    note(self.debug, format_args!("not written: {e}"));
                    return None;
                }
            }
        }
        self.writer.as_mut()
    }

    /// Keeps the plan just printed (exit `code`) if everything it looked at can be checked.
    pub fn commit(mut self, code: u8) {
        let t = Instant::now();
        let result = self.finish(code);
        match result {
            Ok((path, n)) => note(
                self.debug,
                format_args!(
                    "written ({}, {n} paths, {} ms)",
                    path.display(),
                    t.elapsed().as_millis()
                ),
            ),
            Err(why) => note(self.debug, format_args!("not written: {why}")),
        }
    }

    fn finish(&mut self, code: u8) -> Result<(PathBuf, usize), String> {
        let log = record::finish().ok_or("nothing was recorded")?;
        if let Some(why) = log.poisoned {
            return Err(why);
        }
        let Some(mut w) = self.writer.take() else {
            return Err("no output was kept".into());
        };
        if let Some(e) = w.failed.take() {
            return Err(format!("cannot write {}: {e}", w.tmp.display()));
        }
        // Recorded paths are absolute and canonical below the repo; `--state-dir` may be neither.
        let state =
            std::fs::canonicalize(&self.state_dir).unwrap_or_else(|_| self.state_dir.clone());
        let entries = resolve(log, &state.join("cache"))?;
        let threshold = self
            .start
            .checked_sub(RACY)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let threshold = record::nanos(
            threshold.as_secs() as i64,
            i64::from(threshold.subsec_nanos()),
        );
        if let Some(e) = entries.iter().find(|e| match e.found {
            Some(Found::Stat(s)) => s.mtime >= threshold || s.ctime >= threshold,
            _ => false,
        }) {
            return Err(format!(
                "{} changed less than {} s before this plan (a change within the same timestamp could not be seen)",
                e.path.display(),
                RACY.as_secs()
            ));
        }
        let at = w.len;
        let stdout_len = w.stdout_len;
        format::tail(&self.root, &entries, code, stdout_len, at, &mut |b| {
            w.raw(b)
        });
        let sum = std::mem::take(&mut w.sum).finish();
        w.raw(&format::end(sum));
        let dest = dir(&self.state_dir).join(key::hex(&self.key));
        w.done(&dest)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        prune(&dir(&self.state_dir));
        Ok((dest, entries.len()))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A plan that ended another way (an error, exit 2) keeps nothing.
        record::finish();
    }
}

/// The cache file being written: a temporary file beside the entry, renamed into place when
/// complete and removed otherwise.
pub struct Writer {
    file: io::BufWriter<std::fs::File>,
    tmp: PathBuf,
    sum: format::Sum,
    len: u64,
    stdout_len: u64,
    failed: Option<io::Error>,
    done: bool,
}

impl Writer {
    fn create(dir: &Path, key: &[u8; 16], stderr: &[u8]) -> io::Result<Writer> {
        if let Some(cache) = dir.parent() {
            crate::state::fsutil::own_dir(cache, "cache")?;
        }
        crate::state::fsutil::own_dir(dir, "plan")?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let tmp = dir.join(format!(".tmp-{}-{nanos}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::state::fsutil::FILE_MODE)
            .open(&tmp)?;
        let mut w = Writer {
            file: io::BufWriter::with_capacity(1 << 20, file),
            tmp,
            sum: format::Sum::default(),
            len: 0,
            stdout_len: 0,
            failed: None,
            done: false,
        };
        w.raw(&format::header(key, stderr));
        Ok(w)
    }

    fn raw(&mut self, b: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.sum.update(b);
        self.len += b.len() as u64;
        if let Err(e) = self.file.write_all(b) {
            self.failed = Some(e);
        }
    }

    /// A piece of stdout, as printed.
    pub fn stdout(&mut self, b: &[u8]) {
        self.stdout_len += b.len() as u64;
        self.raw(b);
    }

    fn done(&mut self, dest: &Path) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.file.flush()?;
        std::fs::rename(&self.tmp, dest)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// stdout, copied into the cache file as it is printed.
pub struct Tee<'a, W: Write> {
    pub out: W,
    pub copy: Option<&'a mut Writer>,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        if let Some(c) = self.copy.as_mut() {
            c.stdout(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// A fast hash of a path (8 bytes at a time): only to group equal paths, which are then
/// compared byte for byte.
fn path_hash(b: &[u8]) -> u64 {
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(0x51_7C_C1_B7_27_22_0A_95);
    h ^ (h >> 29)
}

/// Turns what was recorded into the sorted list of paths to check, every one with its `stat`:
/// what the walk listed and what plugin folders hold is `stat`ed now. Paths under `exclude`
/// (the cache itself, when a state folder inside the repo is walked) are left out.
pub fn resolve(log: Log, exclude: &Path) -> Result<Vec<Rec>, String> {
    let Log {
        mut recs, trees, ..
    } = log;
    for (path, found) in trees {
        if Found::now(&path, true) != found {
            return Err(format!("{} changed during the plan", path.display()));
        }
        let mut below = Vec::new();
        expand(&path, 0, &mut below);
        if below.len() > TREE_LIMIT {
            return Err(format!(
                "{} holds more than {TREE_LIMIT} files",
                path.display()
            ));
        }
        recs.extend(below);
        recs.push(Rec {
            path: path.into_boxed_path(),
            follow: true,
            found: Some(found),
            file: false,
        });
    }
    let ex = bytes(exclude);
    recs.retain(|e| {
        let p = bytes(&e.path);
        !(p.starts_with(ex) && (p.len() == ex.len() || p[ex.len()] == b'/'))
    });
    // One record per (path, follow). Sorting 100,000 paths that share long prefixes cost a
    // plan more than everything else here: records are grouped by a hash of their path instead
    // and keep the order they were recorded in (the walk's, which the file's prefix encoding
    // likes).
    let mut keys: Vec<(u64, u32)> = recs
        .par_iter()
        .enumerate()
        .map(|(i, r)| (path_hash(bytes(&r.path)), i as u32))
        .collect();
    keys.par_sort_unstable();
    let mut keep = vec![true; recs.len()];
    for group in keys.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        for (n, &(_, i)) in group.iter().enumerate() {
            let i = i as usize;
            if !keep[i] {
                continue;
            }
            for &(_, j) in &group[n + 1..] {
                let j = j as usize;
                if !keep[j] || bytes(&recs[i].path) != bytes(&recs[j].path) {
                    continue;
                }
                let (a, b) = (&recs[i], &recs[j]);
                if a.follow == b.follow {
                    match (a.found, b.found) {
                        (Some(x), Some(y)) if x != y => {
                            return Err(format!("{} changed during the plan", b.path.display()))
                        }
                        // What the plan saw while it ran, rather than a `stat` now.
                        (None, Some(_)) => recs[i].found = recs[j].found,
                        _ => {}
                    }
                    keep[j] = false;
                }
            }
        }
        // A regular file the walk listed and the plan read: the read's `fstat` (taken before
        // the read) covers it; one `stat` fewer per config file.
        for &(_, i) in group {
            let i = i as usize;
            let r = &recs[i];
            if keep[i] && !r.follow && r.file && r.found.is_none() {
                let read = group.iter().any(|&(_, j)| {
                    let o = &recs[j as usize];
                    keep[j as usize]
                        && o.follow
                        && o.found.is_some_and(|f| f.is_regular_file())
                        && bytes(&o.path) == bytes(&r.path)
                });
                if read {
                    keep[i] = false;
                }
            }
        }
    }
    let mut kept = keep.iter();
    recs.retain(|_| *kept.next().expect("one flag per record"));
    recs.par_iter_mut()
        .filter(|r| r.found.is_none())
        .for_each(|r| r.found = Some(Found::now(&r.path, r.follow)));
    Ok(recs)
}

/// Every entry below a plugin folder (`lstat`; symlinks also followed, folders listed).
fn expand(dir: &Path, depth: usize, out: &mut Vec<Rec>) {
    let rec = |path: &Path, follow: bool, file: bool| Rec {
        path: path.into(),
        follow,
        found: None,
        file,
    };
    if depth > 16 || out.len() > TREE_LIMIT {
        // Deeper than any real plugin (or a link loop), or too big: the limit check in
        // `resolve` refuses the cache.
        out.extend(std::iter::repeat_n(rec(dir, true, false), TREE_LIMIT + 1));
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else {
            out.push(rec(&path, false, false));
            continue;
        };
        out.push(rec(&path, false, ft.is_file()));
        if ft.is_symlink() {
            out.push(rec(&path, true, false));
            if path.is_dir() {
                expand(&path, depth + 1, out);
            }
        } else if ft.is_dir() {
            expand(&path, depth + 1, out);
        }
    }
}

/// Keeps the [`KEEP`] most recently used entries, and removes temporary files a plan killed
/// mid-write left behind (older than an hour: a concurrent plan may be writing one now).
fn prune(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut entries = Vec::new();
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let modified = m.modified().unwrap_or(UNIX_EPOCH);
        if e.file_name().as_bytes().starts_with(b".tmp-") {
            if now
                .duration_since(modified)
                .is_ok_and(|d| d > Duration::from_secs(3600))
            {
                let _ = std::fs::remove_file(e.path());
            }
        } else if m.is_file() {
            entries.push((modified, e.path()));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in entries.into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(path: &Path) -> Rec {
        Rec {
            path: path.into(),
            follow: true,
            found: Some(Found::now(path, true)),
            file: false,
        }
    }

    fn listed(path: &Path, follow: bool, file: bool) -> Rec {
        Rec {
            path: path.into(),
            follow,
            found: None,
            file,
        }
    }

    fn log(recs: Vec<Rec>, trees: Vec<(PathBuf, Found)>) -> Log {
        Log {
            recs,
            trees,
            poisoned: None,
        }
    }

    #[test]
    fn what_the_walk_listed_and_the_plan_read_is_recorded_once() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let recs = vec![
            listed(t.path(), true, false),
            listed(&f, false, true),
            seen(&f),
            seen(&t.path().join("missing")),
            listed(t.path(), true, false),
        ];
        let e = resolve(log(recs, vec![]), &t.path().join("cache")).unwrap();
        let shown: Vec<_> = e.iter().map(|e| (e.path.to_path_buf(), e.follow)).collect();
        assert_eq!(
            shown,
            vec![
                (t.path().to_path_buf(), true),
                (f.clone(), true),
                (t.path().join("missing"), true)
            ]
        );
        assert!(e.iter().all(|e| e.found.is_some()));
        assert_eq!(e[2].found, Some(Found::Error(libc::ENOENT)));
    }

    #[test]
    fn duplicates_anywhere_in_the_record_are_merged_and_a_read_covers_a_listing() {
        let t = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..50).map(|i| t.path().join(format!("f{i}"))).collect();
        for f in &files {
            std::fs::write(f, "x").unwrap();
        }
        let mut recs = Vec::new();
        for f in &files {
            recs.push(listed(f, false, true));
            recs.push(listed(t.path(), true, false));
        }
        for f in files.iter().rev() {
            recs.push(seen(f));
            recs.push(listed(f, false, true));
        }
        let e = resolve(log(recs, vec![]), Path::new("/x")).unwrap();
        assert_eq!(e.len(), files.len() + 1, "{e:?}");
        assert!(e.iter().all(|r| r.follow && r.found.is_some()));
    }

    #[test]
    fn a_path_seen_two_ways_during_one_plan_refuses_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        let before = seen(&f);
        std::fs::write(&f, "x").unwrap();
        let recs = vec![before, seen(&f)];
        assert!(resolve(log(recs, vec![]), Path::new("/nowhere"))
            .unwrap_err()
            .contains("changed during the plan"));
    }

    #[test]
    fn a_plugin_folder_is_recorded_whole_and_the_cache_itself_never() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("plugin");
        std::fs::create_dir_all(p.join("lib")).unwrap();
        std::fs::write(p.join("deploy.sh"), "").unwrap();
        std::fs::write(p.join("lib/x.sh"), "").unwrap();
        std::fs::create_dir_all(t.path().join("cache/plan")).unwrap();
        // Many records before the plugin folder do not count against its limit.
        let mut recs: Vec<Rec> = (0..TREE_LIMIT + 1)
            .map(|_| listed(&p.join("deploy.sh"), false, true))
            .collect();
        recs.push(listed(&t.path().join("cache/plan"), true, false));
        let trees = vec![(p.clone(), Found::now(&p, true))];
        let e = resolve(log(recs, trees), &t.path().join("cache")).unwrap();
        let mut shown: Vec<_> = e
            .iter()
            .map(|e| e.path.strip_prefix(t.path()).unwrap().to_path_buf())
            .collect();
        shown.sort();
        let want: Vec<PathBuf> = [
            "plugin",
            "plugin/deploy.sh",
            "plugin/lib",
            "plugin/lib/x.sh",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(shown, want);
    }

    #[test]
    fn a_plugin_folder_changed_during_the_plan_or_too_big_refuses_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("plugin");
        std::fs::create_dir_all(&p).unwrap();
        let before = Found::now(&p, true);
        std::fs::write(p.join("new.sh"), "").unwrap();
        let err = resolve(log(vec![], vec![(p.clone(), before)]), Path::new("/x")).unwrap_err();
        assert!(err.contains("changed during the plan"), "{err}");
        std::os::unix::fs::symlink(".", p.join("loop")).unwrap();
        let err = resolve(
            log(vec![], vec![(p.clone(), Found::now(&p, true))]),
            Path::new("/x"),
        )
        .unwrap_err();
        assert!(err.contains("holds more than"), "{err}");
    }
}
