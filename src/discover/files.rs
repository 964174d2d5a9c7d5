//! Reading repo files safely, and refusing the ones that cannot be read safely.
//!
//! Every file in an ops repo is hostile input. Opening a FIFO for reading blocks until a writer
//! appears (forever, deaf to deadlines and signals: the thread is stuck in `open`), and a
//! character device such as `/dev/zero` never ends. So files are opened with `O_NONBLOCK` and
//! checked to be regular files before a byte is read, and before a run the whole repo is walked
//! once: a FIFO, socket or device, a symlink leading out of the repo (it would be read as
//! content, wherever it points), a dangling symlink or a symlink loop is a located error.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostics, Problem};
use crate::model::{AFTER_HOOKS, BEFORE_HOOKS};

/// What kind of special file this is, or `None` for a regular file, folder or symlink.
pub fn special_kind(ft: &std::fs::FileType) -> Option<&'static str> {
    if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else {
        None
    }
}

/// Opens a regular file for reading without ever blocking in `open` (a FIFO would), and
/// refuses anything that is not a regular file once it is open (no race with a swap).
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_regular_len(path).map(|(file, _)| file)
}

/// [`open_regular`] with the file's size at opening.
fn open_regular_len(path: &Path) -> io::Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .inspect_err(|e| super::record::seen_error(path, e))?;
    let meta = file.metadata()?;
    // For the plan cache: the `fstat` before the read, so any later change shows.
    super::record::seen_meta(path, &meta);
    if !meta.is_file() {
        let what = special_kind(&meta.file_type()).unwrap_or("not a regular file");
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {what}; bitops reads only regular files",
                path.display()
            ),
        ));
    }
    Ok((file, meta.len()))
}

/// The whole content of a regular file (see [`open_regular`]).
/// The size from the `fstat` that checked the file sizes the buffer, and the read goes through
/// `Take` so std's `File::read_to_end` does not `statx` and `lseek` again for its own size hint:
/// two syscalls fewer per file, on 50,000 config files per plan of a large repo.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular_len(path)?;
    // One byte more than the size, so the read that finds the end needs no growth.
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.take(u64::MAX).read_to_end(&mut out)?;
    Ok(out)
}

/// [`read_regular`] for a file a step wrote that may hold secrets (`$BITOPS_OUTPUT_FILE`), of
/// at most `limit` bytes (more is an error naming the limit, read no further): made 0600
/// through the open descriptor if the step created it with looser permissions. A symlink, or a
/// hard link to a file elsewhere, is read but its mode is left alone: bitops changes nothing
/// outside its own folders.
pub fn read_regular_private(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(path);
    // `own`: the name is the file's only one, not a symlink (followed by `open_regular`).
    let (file, own) = match opened {
        Ok(file) => (file, true),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => (open_regular(path)?, false),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        // A FIFO or device: refused with the same message as everywhere else.
        return open_regular(path).and_then(|_| Err(io::ErrorKind::InvalidInput.into()));
    }
    if own && meta.nlink() == 1 && meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(0) + 1);
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {limit} bytes, the limit for this file"),
        ));
    }
    Ok(out)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text: {e}", path.display()),
        )
    })
}

/// What a walk saw, for discovery to reuse instead of asking the file system again: the folders
/// it listed whole, and the entries named like a hook folder in them.
#[derive(Default)]
pub struct Seen {
    listed: HashSet<PathBuf>,
    hook_named: HashSet<PathBuf>,
}

impl Seen {
    /// False only when the walk listed `path`'s folder and found no entry of that name: a
    /// hook-folder probe of every deployment (two failing `stat`s each) is then skipped.
    pub fn may_exist(&self, path: &Path) -> bool {
        match path.parent() {
            Some(parent) if self.listed.contains(parent) => self.hook_named.contains(path),
            _ => true,
        }
    }
}

/// Walks `dir` (a folder of the repo at `root`, both canonical or both as found) and records a
/// problem for every entry bitops could not copy safely. `skip` names folders not walked (the
/// state folder).
pub fn check_tree(root: &Path, dir: &Path, skip: &HashSet<PathBuf>, diags: &mut Diagnostics) {
    check_tree_seen(root, dir, skip, diags, &mut Seen::default());
}

/// [`check_tree`], recording what it saw in `seen`.
pub fn check_tree_seen(
    root: &Path,
    dir: &Path,
    skip: &HashSet<PathBuf>,
    diags: &mut Diagnostics,
    seen: &mut Seen,
) {
    // `root` is canonical; `dir` below it is its own real path unless it is a symlink (an
    // environment folder may be one), which is checked like any other.
    let real = match std::fs::symlink_metadata(dir) {
        Ok(m) if !m.file_type().is_symlink() && dir.starts_with(root) => dir.to_path_buf(),
        Ok(m) if m.file_type().is_symlink() && dir != root => {
            return check_symlink(root, dir, skip, &mut Vec::new(), diags, seen);
        }
        _ => std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
    };
    let mut ancestors = vec![real];
    walk(root, dir, skip, &mut ancestors, diags, seen);
}

fn walk(
    root: &Path,
    dir: &Path,
    skip: &HashSet<PathBuf>,
    ancestors: &mut Vec<PathBuf>,
    diags: &mut Diagnostics,
    seen: &mut Seen,
) {
    // Opened as a file first: its `fstat` (for the plan cache: a folder's `mtime` changes with
    // every entry added, removed or renamed, and the walk lists every folder of the repo but
    // `.git` and the state folder) costs no second path lookup.
    let listing = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .and_then(|f| {
            if super::record::on() {
                match f.metadata() {
                    Ok(m) => super::record::seen_meta(dir, &m),
                    Err(_) => super::record::listed(dir, true, false),
                }
            }
            nix::dir::Dir::from_fd(f.into()).map_err(io::Error::from)
        });
    let Ok(mut listing) = listing else {
        // Unreadable folders are reported where they are needed (scan, the working copy).
        super::record::listed(dir, true, false);
        return;
    };
    let mut whole = true;
    for entry in listing.iter() {
        // A folder that could not be listed to its end is not `listed`: nothing is assumed.
        let Ok(entry) = entry else {
            whole = false;
            continue;
        };
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let path = dir.join(name);
        if name == BEFORE_HOOKS || name == AFTER_HOOKS {
            seen.hook_named.insert(path.clone());
        }
        if !skip.is_empty() && skip.contains(&path) {
            continue;
        }
        // The listing's type (`d_type`); a file system that does not give one is asked.
        let kind = match entry.file_type() {
            Some(t) => Kind::of_listing(t),
            None => match std::fs::symlink_metadata(&path) {
                Ok(m) => Kind::of(&m.file_type()),
                Err(_) => {
                    super::record::listed(&path, false, false);
                    continue;
                }
            },
        };
        if !matches!(kind, Kind::Dir | Kind::Symlink) {
            // Folders are recorded when walked, symlinks by `check_symlink`.
            super::record::listed(&path, false, kind == Kind::File);
        }
        match kind {
            Kind::Dir => {
                let real = ancestors
                    .last()
                    .map(|a| a.join(name))
                    .unwrap_or_else(|| path.clone());
                ancestors.push(real);
                walk(root, &path, skip, ancestors, diags, seen);
                ancestors.pop();
            }
            Kind::Symlink => check_symlink(root, &path, skip, ancestors, diags, seen),
            Kind::Special(what) => diags.push(special_problem(root, &path, what)),
            Kind::File => {}
        }
    }
    if whole {
        seen.listed.insert(dir.to_path_buf());
    }
}

/// An entry's type as the walk needs it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Symlink,
    File,
    Special(&'static str),
}

impl Kind {
    fn of(ft: &std::fs::FileType) -> Kind {
        if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if let Some(what) = special_kind(ft) {
            Kind::Special(what)
        } else {
            Kind::File
        }
    }

    /// The same names as [`special_kind`].
    fn of_listing(t: nix::dir::Type) -> Kind {
        use nix::dir::Type;
        match t {
            Type::Directory => Kind::Dir,
            Type::Symlink => Kind::Symlink,
            Type::File => Kind::File,
            Type::Fifo => Kind::Special("a FIFO (named pipe)"),
            Type::Socket => Kind::Special("a socket"),
            Type::CharacterDevice => Kind::Special("a character device"),
            Type::BlockDevice => Kind::Special("a block device"),
        }
    }
}

fn check_symlink(
    root: &Path,
    path: &Path,
    skip: &HashSet<PathBuf>,
    ancestors: &mut Vec<PathBuf>,
    diags: &mut Diagnostics,
    seen: &mut Seen,
) {
    let rel = shown(root, path);
    super::record::listed(path, false, false);
    super::record::listed(path, true, false);
    let target = match std::fs::canonicalize(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(
                Problem::new(
                    "bitops::repo::dangling_symlink",
                    format!("`{rel}` is a symlink that cannot be followed: {e}"),
                )
                .path(path)
                .help("bitops copies the repo with symlinks followed (as BitOps did): point it at a file in the repo, or remove it"),
            );
            return;
        }
    };
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if !target.starts_with(&real_root) {
        diags.push(
            Problem::new(
                "bitops::repo::symlink_outside",
                format!(
                    "`{rel}` is a symlink leading out of the ops repo (to {})",
                    target.display()
                ),
            )
            .path(path)
            .help("bitops never follows a symlink out of the repo: copy what it points to into the repo, or point it at a path inside the repo"),
        );
        return;
    }
    let Ok(meta) = std::fs::metadata(&target) else {
        return;
    };
    if meta.is_dir() {
        if ancestors.iter().any(|a| a == &target) {
            diags.push(
                Problem::new(
                    "bitops::repo::symlink_loop",
                    format!("`{rel}` is a symlink loop (it leads back to {})", target.display()),
                )
                .path(path)
                .help("bitops copies symlinked folders as content; a link to a folder that contains it never ends: remove it"),
            );
            return;
        }
        ancestors.push(target);
        walk(root, path, skip, ancestors, diags, seen);
        ancestors.pop();
    } else if let Some(what) = special_kind(&meta.file_type()) {
        diags.push(special_problem(root, path, what));
    }
}

fn special_problem(root: &Path, path: &Path, what: &str) -> Problem {
    let rel = shown(root, path);
    Problem::new(
        "bitops::repo::special_file",
        format!("`{rel}` is {what}, not a regular file"),
    )
    .path(path)
    .help("bitops copies and reads every file of the repo, and reading this one could block forever: remove it from the ops repo")
}

/// `path` relative to the repo, as the user knows it.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        nix::unistd::mkfifo(
            p,
            nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        )
        .unwrap();
    }

    #[test]
    fn a_private_read_tightens_only_a_file_of_its_own_and_stops_at_the_limit() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let loose =
            |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        // The step's own file: made 0600.
        let own = t.path().join("own.env");
        std::fs::write(&own, "A=1\n").unwrap();
        loose(&own);
        assert_eq!(read_regular_private(&own, 100).unwrap(), b"A=1\n");
        assert_eq!(mode(&own), 0o600);
        // A hard link to, and a symlink at, a file elsewhere: read, its mode left alone.
        let elsewhere = t.path().join("elsewhere");
        std::fs::write(&elsewhere, "B=2\n").unwrap();
        loose(&elsewhere);
        let linked = t.path().join("linked.env");
        std::fs::hard_link(&elsewhere, &linked).unwrap();
        assert_eq!(read_regular_private(&linked, 100).unwrap(), b"B=2\n");
        let symlinked = t.path().join("symlinked.env");
        std::os::unix::fs::symlink(&elsewhere, &symlinked).unwrap();
        assert_eq!(read_regular_private(&symlinked, 100).unwrap(), b"B=2\n");
        assert_eq!(mode(&elsewhere), 0o644);
        // At the limit it reads; one byte over it refuses, naming the limit.
        assert_eq!(read_regular_private(&own, 4).unwrap().len(), 4);
        let e = read_regular_private(&own, 3).unwrap_err();
        assert!(e.to_string().contains("more than 3 bytes"), "{e}");
        // A FIFO is refused without blocking.
        let fifo = t.path().join("fifo.env");
        mkfifo(&fifo);
        let e = read_regular_private(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("pipe");
        mkfifo(&fifo);
        let err = read_regular(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let mut diags = Diagnostics::default();
        check_tree(t.path(), t.path(), &HashSet::new(), &mut diags);
        let codes: Vec<_> = diags.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            codes.len() == 1 && codes[0].contains("`pipe` is a FIFO"),
            "{codes:?}"
        );
    }

    #[test]
    fn a_hook_folder_is_assumed_absent_only_where_the_walk_listed_and_missed_it() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path();
        std::fs::create_dir_all(repo.join("e/with").join(BEFORE_HOOKS)).unwrap();
        std::fs::create_dir_all(repo.join("e/without")).unwrap();
        let mut seen = Seen::default();
        let mut diags = Diagnostics::default();
        check_tree_seen(
            repo,
            &repo.join("e"),
            &HashSet::new(),
            &mut diags,
            &mut seen,
        );
        assert!(seen.may_exist(&repo.join("e/with").join(BEFORE_HOOKS)));
        assert!(!seen.may_exist(&repo.join("e/with").join(AFTER_HOOKS)));
        assert!(!seen.may_exist(&repo.join("e/without").join(BEFORE_HOOKS)));
        // Not walked: nothing is assumed.
        assert!(seen.may_exist(&repo.join("other/d").join(BEFORE_HOOKS)));
    }

    #[test]
    fn symlinks_out_of_the_repo_or_in_a_loop_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join("e/d")).unwrap();
        std::fs::create_dir_all(repo.join("_shared")).unwrap();
        std::fs::write(repo.join("_shared/x"), "x").unwrap();
        std::os::unix::fs::symlink("../../_shared", repo.join("e/d/shared")).unwrap();
        let mut diags = Diagnostics::default();
        check_tree(&repo, &repo, &HashSet::new(), &mut diags);
        assert!(diags.is_empty(), "a link inside the repo is fine");

        std::os::unix::fs::symlink("/etc", repo.join("e/d/etc")).unwrap();
        std::os::unix::fs::symlink("/etc", repo.join("outside-env")).unwrap();
        let mut d = Diagnostics::default();
        check_tree(&repo, &repo.join("outside-env"), &HashSet::new(), &mut d);
        assert_eq!(
            d.len(),
            1,
            "a top-level link out of the repo is refused too"
        );
        std::os::unix::fs::symlink("..", repo.join("e/d/up")).unwrap();
        let mut diags = Diagnostics::default();
        check_tree(&repo, &repo, &HashSet::new(), &mut diags);
        let text: Vec<_> = diags.problems().iter().map(|p| p.to_string()).collect();
        let text = text.join("\n");
        assert!(text.contains("leading out of the ops repo"), "{text}");
        assert!(text.contains("symlink loop"), "{text}");
    }
}
