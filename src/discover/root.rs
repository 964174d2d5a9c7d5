//! Which folder is the operations repo.

use std::path::{Path, PathBuf};

use crate::config::settings::EnvVars;
use crate::diagnostic::Problem;

/// Where BitOps' container mounts the repo.
pub const CONTAINER_REPO: &str = "/opt/bitops_deployment";

/// `-C/--ops-repo`, else `BITOPS_OPS_REPO`, else `/opt/bitops_deployment` when it exists (the
/// BitOps container path), else the current folder.
pub fn find_ops_repo(flag: Option<&Path>, env: &EnvVars) -> Result<PathBuf, Problem> {
    let (path, from) = if let Some(p) = flag {
        (p.to_path_buf(), "--ops-repo")
    } else if let Some(p) = env.get("BITOPS_OPS_REPO").filter(|p| !p.is_empty()) {
        (PathBuf::from(p), "BITOPS_OPS_REPO")
    } else if crate::discover::record::is_dir(CONTAINER_REPO) {
        (PathBuf::from(CONTAINER_REPO), "the container default")
    } else {
        let cwd = std::env::current_dir().map_err(|e| {
            Problem::new(
                "bitops::repo::cwd",
                format!("cannot read the current folder: {e}"),
            )
            .help("pass the operations repo with -C DIR")
        })?;
        (cwd, "the current folder")
    };
    match crate::discover::record::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(std::fs::canonicalize(&path).unwrap_or(path)),
        Ok(_) => Err(Problem::new(
            "bitops::repo::not_a_folder",
            format!(
                "the operations repo `{}` (from {from}) is not a folder",
                path.display()
            ),
        )
        .help("pass the repo's top folder with -C DIR")),
        Err(e) => Err(Problem::new(
            "bitops::repo::missing",
            format!(
                "the operations repo `{}` (from {from}) cannot be opened: {e}",
                path.display()
            ),
        )
        .help("pass an existing operations repo with -C DIR or BITOPS_OPS_REPO")),
    }
}
