//! Refreshing a persistent working folder from the repo: copy only what changed, remove what
//! the repo no longer has, keep what the tools made.
//!
//! A manifest (`<state>/manifests/<unit>.json`) lists every file and folder that came from the
//! repo, with the size, mtime, ctime and inode of its source(s) and of the copy made. A file is
//! copied again only when its source changed or its copy was changed or removed since; a file
//! the manifest lists that the repo no longer has is removed. Anything else in the folder was
//! made by a tool (`terraform.tfstate`, `.terraform/`, an inventory) and is left alone, so local
//! state and provider caches survive from run to run. On a path both sides use, the repo wins.
//!
//! Sources are read with `O_NONBLOCK` and must be regular files; symlinks are followed as
//! content (as BitOps' copy did) only while they stay inside the repo.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::discover::files::{open_regular, read_regular, read_regular_string, special_kind};

/// What a file of the working folder is made from.
enum Source {
    File(PathBuf, Metadata),
    /// A YAML file of the environment deep-merged over `_default`'s (environment, default).
    Merged((PathBuf, Metadata), (PathBuf, Metadata)),
}

impl Source {
    fn signature(&self) -> Vec<u64> {
        match self {
            Source::File(_, m) => sig(m).to_vec(),
            Source::Merged((_, a), (_, b)) => [sig(a), sig(b)].concat(),
        }
    }
}

fn sig(m: &Metadata) -> [u64; 4] {
    let ns = |s: i64, n: i64| {
        (s as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(n as u64)
    };
    [
        m.size(),
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
        m.ino(),
    ]
}

#[derive(Default, Serialize, Deserialize)]
struct Manifest {
    /// Relative path → (source signature, copy signature).
    files: BTreeMap<String, (Vec<u64>, [u64; 4])>,
    dirs: BTreeSet<String>,
}

/// One unit to refresh: `src` (a folder or a file of the repo) into `dst`.
pub struct Unit<'a> {
    /// The repo's top folder, canonical: symlinks must stay below it.
    pub repo: &'a Path,
    pub src: &'a Path,
    pub dst: &'a Path,
    /// `_default`, merged in (environments only).
    pub defaults: Option<&'a Path>,
    pub manifest: &'a Path,
    /// Folders of the repo not copied (the state folder, `.git`).
    pub skip: &'a HashSet<PathBuf>,
}

/// What a refresh did, for tests and figures.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub copied: usize,
    pub kept: usize,
    pub removed: usize,
}

/// Brings `unit.dst` in line with the repo. Errors name the file.
pub fn refresh(unit: &Unit<'_>) -> Result<Counts, String> {
    let mut files: BTreeMap<PathBuf, Source> = BTreeMap::new();
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    if let Some(defaults) = unit.defaults {
        collect(
            unit,
            defaults,
            None,
            Path::new(""),
            &mut Vec::new(),
            &mut files,
            &mut dirs,
        )?;
        // Every `_default` file is overridden or merged by the environment's below.
    }
    let mut own: BTreeMap<PathBuf, Source> = BTreeMap::new();
    if std::fs::symlink_metadata(unit.src).is_ok_and(|m| m.file_type().is_symlink()) {
        let target =
            std::fs::canonicalize(unit.src).map_err(|e| format!("{}: {e}", unit.src.display()))?;
        if !target.starts_with(unit.repo) {
            return Err(format!(
                "{} is a symlink leading out of the ops repo (to {}); bitops never follows one",
                unit.src.display(),
                target.display()
            ));
        }
    }
    let meta = std::fs::metadata(unit.src).map_err(|e| format!("{}: {e}", unit.src.display()))?;
    if meta.is_dir() {
        collect(
            unit,
            unit.src,
            None,
            Path::new(""),
            &mut Vec::new(),
            &mut own,
            &mut dirs,
        )?;
    } else if meta.is_file() {
        own.insert(PathBuf::new(), Source::File(unit.src.to_path_buf(), meta));
    } else {
        return Err(format!(
            "{} is {}",
            unit.src.display(),
            special_kind(&meta.file_type()).unwrap_or("not a regular file")
        ));
    }
    for (rel, src) in own {
        let merged = match (files.remove(&rel), src) {
            (Some(Source::File(dp, dm)), Source::File(ep, em)) if is_yaml(&rel) => {
                Source::Merged((ep, em), (dp, dm))
            }
            (_, s) => s,
        };
        files.insert(rel, merged);
    }

    let old_bytes = read_regular(unit.manifest).unwrap_or_default();
    let old: Manifest = serde_json::from_slice(&old_bytes).unwrap_or_default();
    let mut new = Manifest::default();
    let mut counts = Counts::default();
    if !files.contains_key(Path::new("")) {
        ensure_dir(unit.dst)?;
    }
    for d in &dirs {
        ensure_dir(&unit.dst.join(d))?;
        new.dirs.insert(key(d));
    }
    for (rel, src) in &files {
        let dst = if rel.as_os_str().is_empty() {
            unit.dst.to_path_buf()
        } else {
            unit.dst.join(rel)
        };
        let k = key(rel);
        let want = src.signature();
        let current = std::fs::symlink_metadata(&dst).ok().filter(|m| m.is_file());
        let unchanged = match (old.files.get(&k), &current) {
            (Some((s, d)), Some(m)) => s == &want && d == &sig(m),
            _ => false,
        };
        if unchanged {
            counts.kept += 1;
            new.files
                .insert(k, (want, sig(current.as_ref().expect("checked"))));
            continue;
        }
        let made = write_copy(src, &dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        counts.copied += 1;
        new.files.insert(k, (want, sig(&made)));
    }
    // What came from the repo before and is gone from it now.
    for k in old.files.keys().filter(|k| !new.files.contains_key(*k)) {
        let p = unit.dst.join(k);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir())
            && std::fs::remove_file(&p).is_ok()
        {
            counts.removed += 1;
        }
    }
    for k in old.dirs.iter().rev().filter(|k| !new.dirs.contains(*k)) {
        // Only when empty: a tool's files in it stay.
        let _ = std::fs::remove_dir(unit.dst.join(k));
    }
    // Unchanged on most runs: writing it anyway would make a file per environment per run.
    let bytes = serde_json::to_vec(&new).expect("a manifest serializes");
    if bytes != old_bytes {
        write_manifest(unit.manifest, &bytes)
            .map_err(|e| format!("{}: {e}", unit.manifest.display()))?;
    }
    Ok(counts)
}

fn key(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Every file and folder below `dir`, symlinks followed while they stay in the repo. `real` is
/// `dir`'s real path when the caller knows it (for loops).
fn collect(
    unit: &Unit<'_>,
    dir: &Path,
    real: Option<PathBuf>,
    rel: &Path,
    ancestors: &mut Vec<PathBuf>,
    files: &mut BTreeMap<PathBuf, Source>,
    dirs: &mut BTreeSet<PathBuf>,
) -> Result<(), String> {
    let at = |e: io::Error, p: &Path| format!("{}: {e}", p.display());
    let real = match real {
        Some(r) => r,
        None => std::fs::canonicalize(dir).map_err(|e| at(e, dir))?,
    };
    if ancestors.contains(&real) {
        return Err(format!(
            "{} is a symlink loop (it leads back to {})",
            dir.display(),
            real.display()
        ));
    }
    ancestors.push(real);
    for entry in std::fs::read_dir(dir).map_err(|e| at(e, dir))? {
        let entry = entry.map_err(|e| at(e, dir))?;
        let path = entry.path();
        if !unit.skip.is_empty() && unit.skip.contains(&path) {
            continue;
        }
        let rel = rel.join(entry.file_name());
        let mut ft = entry.file_type().map_err(|e| at(e, &path))?;
        let mut meta = None;
        let mut real = ancestors.last().map(|a| a.join(entry.file_name()));
        if ft.is_symlink() {
            let target = std::fs::canonicalize(&path).map_err(|e| at(e, &path))?;
            if !target.starts_with(unit.repo) {
                return Err(format!(
                    "{} is a symlink leading out of the ops repo (to {}); bitops never follows one",
                    path.display(),
                    target.display()
                ));
            }
            let m = std::fs::metadata(&target).map_err(|e| at(e, &path))?;
            ft = m.file_type();
            meta = Some(m);
            real = Some(target);
        }
        if ft.is_dir() {
            dirs.insert(rel.clone());
            collect(unit, &path, real, &rel, ancestors, files, dirs)?;
        } else if ft.is_file() {
            let m = match meta {
                Some(m) => m,
                None => entry.metadata().map_err(|e| at(e, &path))?,
            };
            files.insert(rel, Source::File(path, m));
        } else {
            return Err(format!(
                "{} is {}; bitops copies only regular files",
                path.display(),
                special_kind(&ft).unwrap_or("not a regular file")
            ));
        }
    }
    ancestors.pop();
    Ok(())
}

/// `p` as a real folder: a file or symlink a tool left there is replaced.
fn ensure_dir(p: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Writes the copy (never through a symlink a tool left at `dst`) and returns its metadata.
fn write_copy(src: &Source, dst: &Path) -> io::Result<Metadata> {
    match std::fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(dst)?,
        Ok(m) if !m.is_file() => std::fs::remove_file(dst)?,
        _ => {}
    }
    let (from, mode) = match src {
        Source::File(p, m) => (p, m.permissions().mode()),
        Source::Merged((p, m), _) => (p, m.permissions().mode()),
    };
    let merged = match src {
        Source::Merged((env, _), (default, _)) => {
            let over = read_regular_string(env)?;
            let base = read_regular_string(default)?;
            // A file over yaml.rs' limits fails the merge (never a silent keep, never a crash).
            crate::yaml::merge_text(&base, &over).map_err(|(in_base, why)| {
                let file = if in_base { default } else { env };
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {why}", file.display()),
                )
            })?
        }
        Source::File(..) => None,
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)?;
    match merged {
        Some(text) => io::Write::write_all(&mut out, text.as_bytes())?,
        None => {
            let mut input = open_regular(from)?;
            io::copy(&mut input, &mut out)?;
        }
    }
    out.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
    out.metadata()
}

/// Written aside and renamed (a manifest is never half-written), 0600 in a 0700 folder: it
/// lists the state folder's files.
fn write_manifest(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        crate::state::fsutil::private_dir(parent)?;
    }
    crate::state::fsutil::write_private_atomic(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_repo_copies_and_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let repo = std::fs::canonicalize(t.path()).unwrap().join("repo");
        std::fs::create_dir_all(repo.join("e/d")).unwrap();
        std::fs::write(repo.join("e/d/a.tf"), "# a").unwrap();
        std::fs::write(repo.join("e/d/b.yaml"), "x: 1\n").unwrap();
        std::fs::create_dir_all(repo.join("_default/d")).unwrap();
        std::fs::write(repo.join("_default/d/b.yaml"), "y: 2\n").unwrap();
        let dst = t.path().join("work/e");
        let manifest = t.path().join("m/e.json");
        let defaults = repo.join("_default");
        let skip = HashSet::new();
        let unit = Unit {
            repo: &repo,
            src: &repo.join("e"),
            dst: &dst,
            defaults: Some(&defaults),
            manifest: &manifest,
            skip: &skip,
        };
        let first = refresh(&unit).unwrap();
        assert_eq!((first.copied, first.kept), (2, 0));
        let text = std::fs::read_to_string(dst.join("d/b.yaml")).unwrap();
        assert!(text.contains('x') && text.contains('y'), "{text}");
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        let before = ino(&manifest);
        let again = refresh(&unit).unwrap();
        assert_eq!(
            again,
            Counts {
                copied: 0,
                kept: 2,
                removed: 0
            }
        );
        assert_eq!(ino(&manifest), before, "the manifest was rewritten");
        // A changed `_default` file re-merges.
        std::fs::write(repo.join("_default/d/b.yaml"), "y: 3\n").unwrap();
        assert_eq!(refresh(&unit).unwrap().copied, 1);
        assert!(std::fs::read_to_string(dst.join("d/b.yaml"))
            .unwrap()
            .contains('3'));
    }
}
