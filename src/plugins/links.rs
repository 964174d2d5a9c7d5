//! `$BITOPS_PLUGINS_DIR`: one folder per run holding a symlink per configured plugin, named
//! after it and pointing to the plugin's real folder (local or installed).
//!
//! Official plugins look for each other there (`[ -d $BITOPS_PLUGINS_DIR/aws ]`, helm computes
//! `${BITOPS_PLUGINS_DIR%/*}/aws`), as they did in BitOps' `installed_plugins/` folder; local
//! plugins live elsewhere, so without the links those checks failed. Names come from the ops
//! repo, so each is checked to be one plain path segment before it becomes a file name.

use std::io;
use std::path::{Path, PathBuf};

use crate::model::{PluginSource, Repo};

/// Whether `name` can be a folder name under `$BITOPS_PLUGINS_DIR`: the one name check every
/// name from a repo passes (config reading already refused others; checked again where the
/// name becomes a path).
pub fn check_name(name: &str) -> Result<(), String> {
    crate::names::check(crate::names::Kind::Plugin, name)
}

/// The real folder of every configured plugin with a usable name.
pub fn plugin_dirs(repo: &Repo, state_dir: &Path) -> Vec<(String, PathBuf)> {
    repo.plugins
        .iter()
        .filter(|p| check_name(&p.name).is_ok())
        .map(|p| {
            let dir = match &p.source {
                PluginSource::Local(d) => d.clone(),
                PluginSource::Git { .. } => super::registry::installed_dir(state_dir, &p.name),
            };
            (p.name.clone(), dir)
        })
        .collect()
}

/// Creates `folder` (mode 0700) with one symlink per plugin and returns it. A plugin whose real
/// folder does not exist still gets its link, so a plugin checking for it fails as it would
/// have in BitOps. Absolute targets: the links stay valid wherever they are read from.
pub fn create(folder: &Path, plugins: &[(String, PathBuf)]) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)?;
    for (name, target) in plugins {
        // Checked again here: this is where a name becomes a path.
        if check_name(name).is_err() {
            continue;
        }
        let link = folder.join(name);
        let target = if target.is_absolute() {
            target.clone()
        } else {
            std::env::current_dir()?.join(target)
        };
        match std::fs::symlink_metadata(&link) {
            Ok(_) => std::fs::remove_file(&link)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(&target, &link)?;
    }
    Ok(folder.to_path_buf())
}

/// `$BITOPS_PLUGINS_DIR` for a folder: with BitOps' trailing slash.
pub fn plugins_dir_var(folder: &Path) -> String {
    format!("{}/", folder.display().to_string().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_plain_segments() {
        for ok in ["aws", "terraform", "my-tool_2", "a.b", "_x"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "x\n", "-x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn links_point_to_the_real_folders() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("somewhere/aws");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("marker"), "x").unwrap();
        let folder = t.path().join("run/plugins");
        let plugins = vec![
            ("aws".to_string(), real.clone()),
            ("../evil".to_string(), real.clone()),
        ];
        create(&folder, &plugins).unwrap();
        // Twice: an existing link is replaced, not an error.
        create(&folder, &plugins).unwrap();
        assert_eq!(
            std::fs::read_to_string(folder.join("aws/marker")).unwrap(),
            "x"
        );
        assert!(!t.path().join("run/evil").exists());
        let names: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("aws")]);
        assert!(plugins_dir_var(&folder).ends_with("/plugins/"));
    }
}
