//! Files and folders bitops writes, private to the user running it.
//!
//! Outputs, inputs, logs, reports, journals, locks and the working copies (where tools write
//! plan files and state) can hold secret values, so every file bitops writes is 0600 and every
//! folder it makes is 0700 (docs/guarantees.md). Modes are set when a file or folder is
//! created, never after it was briefly readable.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const FILE_MODE: u32 = 0o600;
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and any missing parents with mode 0700. Existing folders keep their mode:
/// they may be the user's (`--state-dir /some/shared/place`); see [`own_dir`].
pub fn private_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir) {
        Err(e) if !(e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir()) => Err(e),
        _ => Ok(()),
    }
}

/// A folder of bitops' own inside the state folder (`runs`, `outputs`, `locks`, `plugins`):
/// created 0700, and tightened to 0700 if an older bitops made it 0755. Only a folder with
/// that exact name is ever changed, so a wrong path cannot loosen or tighten anything else.
pub fn own_dir(dir: &Path, name: &str) -> io::Result<()> {
    private_dir(dir)?;
    if dir.file_name().is_none_or(|n| n != name) {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() && meta.permissions().mode() & 0o777 != DIR_MODE {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// The state folder itself: created 0700 when missing, left as it is when it exists (it may be
/// a folder the user chose with `--state-dir`; the folders bitops makes inside are 0700).
pub fn state_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates the parent folder of `path` (0700) when it has one.
fn parent_dir(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if !p.is_dir() => private_dir(p),
        _ => Ok(()),
    }
}

/// Opens `path` for writing with mode 0600, creating its folder; an existing file is truncated
/// and its mode tightened.
pub fn create_private(path: &Path) -> io::Result<File> {
    parent_dir(path)?;
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Opens `path` for appending with mode 0600, creating it and its folder.
pub fn append_private(path: &Path) -> io::Result<File> {
    parent_dir(path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Writes a whole file with mode 0600.
pub fn write_private(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    create_private(path)?.write_all(bytes.as_ref())
}

/// Writes a whole file with mode 0600 through a temporary file beside it, so a reader never
/// sees half of it.
pub fn write_private_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_0600_and_folders_0700() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a/b/c.json");
        write_private_atomic(&f, "{}").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert_eq!(mode(&t.path().join("a/b")), 0o700);
        // An existing, looser file is tightened when rewritten.
        let g = t.path().join("g");
        std::fs::write(&g, "x").unwrap();
        std::fs::set_permissions(&g, Permissions::from_mode(0o644)).unwrap();
        write_private(&g, "y").unwrap();
        assert_eq!(mode(&g), 0o600);
        let d = t.path().join("runs");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o755, "an existing folder is left alone");
        own_dir(&d, "outputs").unwrap();
        assert_eq!(
            mode(&d),
            0o755,
            "only a folder of the expected name changes"
        );
        own_dir(&d, "runs").unwrap();
        assert_eq!(mode(&d), 0o700);
    }
}
