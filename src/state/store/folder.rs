//! A state store in a local folder (`file:///path`, e.g. on a mount several runners share).
//!
//! Writes go through a temporary file and a rename, so no reader sees half an object.
//! Conditional writes are made atomic by an exclusive `flock` on `<root>/.store.lock` held
//! around the check and the rename; a version is a hash of the content (two writes of the same
//! bytes are the same version, which is all compare-and-swap needs here since leases always
//! change their expiry).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{key_path, Cond, Listed, Object, StateStore, StoreError, Version};

pub struct FolderStore {
    root: PathBuf,
    url: String,
}

impl FolderStore {
    pub fn new(root: &Path, url: &str) -> Self {
        FolderStore {
            root: root.to_path_buf(),
            url: url.to_string(),
        }
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Failed(format!("{what} in {}: {e}", self.root.display()))
    }

    /// Holds the store's lock for a conditional write.
    fn exclusive(&self) -> Result<nix::fcntl::Flock<std::fs::File>, StoreError> {
        mkdirs(&self.root).map_err(|e| self.fail("cannot create the folder", e))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.root.join(".store.lock"))
            .map_err(|e| self.fail("cannot open .store.lock", e))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| self.fail("cannot lock .store.lock", e))
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            mkdirs(dir)?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        drop(f);
        std::fs::rename(&tmp, path)
    }
}

fn mkdirs(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn version_of(data: &[u8]) -> Version {
    Version {
        e_tag: Some(crate::state::journal::config_hash([
            String::from_utf8_lossy(data).as_ref(),
        ])),
        version: None,
    }
}

impl StateStore for FolderStore {
    fn url(&self) -> &str {
        &self.url
    }

    fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let path = key_path(&self.root, key);
        // For the plan cache: the file's `stat` before it is read.
        crate::discover::record::before_read(&path);
        match std::fs::read(&path) {
            Ok(data) => Ok(Some(Object {
                version: version_of(&data),
                data,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fail(&format!("cannot read {key}"), e)),
        }
    }

    fn put(&self, key: &str, data: Vec<u8>, cond: Cond) -> Result<Version, StoreError> {
        let path = key_path(&self.root, key);
        let _guard = match cond {
            Cond::Overwrite => None,
            Cond::Create | Cond::Matches(_) => Some(self.exclusive()?),
        };
        match &cond {
            Cond::Overwrite => {}
            Cond::Create => {
                if path.exists() {
                    return Err(StoreError::Exists { key: key.into() });
                }
            }
            Cond::Matches(v) => match self.get(key)? {
                Some(o) if &o.version == v => {}
                _ => return Err(StoreError::Changed { key: key.into() }),
            },
        }
        self.write_atomic(&path, &data)
            .map_err(|e| self.fail(&format!("cannot write {key}"), e))?;
        Ok(version_of(&data))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match std::fs::remove_file(key_path(&self.root, key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fail(&format!("cannot delete {key}"), e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.fail("cannot list", e)),
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                // Temporary files and the store's own lock are not objects.
                if name.starts_with('.') {
                    continue;
                }
                let path = e.path();
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key = rel.to_string_lossy().into_owned();
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    // Only descend where the prefix can still match.
                    let k = format!("{key}/");
                    if k.starts_with(prefix) || prefix.starts_with(&k) {
                        stack.push(path);
                    }
                } else if key.starts_with(prefix) {
                    out.push(Listed {
                        key,
                        modified: meta.modified().ok(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_writes_and_listing() {
        let t = tempfile::tempdir().unwrap();
        let s = FolderStore::new(t.path(), "file://t");
        let v1 = s.put("locks/a.json", b"1".to_vec(), Cond::Create).unwrap();
        assert!(matches!(
            s.put("locks/a.json", b"2".to_vec(), Cond::Create),
            Err(StoreError::Exists { .. })
        ));
        let v2 = s
            .put("locks/a.json", b"2".to_vec(), Cond::Matches(v1.clone()))
            .unwrap();
        assert!(matches!(
            s.put("locks/a.json", b"3".to_vec(), Cond::Matches(v1)),
            Err(StoreError::Changed { .. })
        ));
        assert_eq!(s.get("locks/a.json").unwrap().unwrap().version, v2);
        s.put("runs/r1/report.json", b"{}".to_vec(), Cond::Overwrite)
            .unwrap();
        let keys: Vec<String> = s.list("").unwrap().into_iter().map(|l| l.key).collect();
        assert_eq!(keys, ["locks/a.json", "runs/r1/report.json"]);
        let keys: Vec<String> = s
            .list("runs/")
            .unwrap()
            .into_iter()
            .map(|l| l.key)
            .collect();
        assert_eq!(keys, ["runs/r1/report.json"]);
        s.delete("locks/a.json").unwrap();
        s.delete("locks/a.json").unwrap();
        assert!(s.get("locks/a.json").unwrap().is_none());
        assert!(matches!(
            s.put("locks/a.json", b"4".to_vec(), Cond::Matches(v2)),
            Err(StoreError::Changed { .. })
        ));
    }
}
