//! The run folder and the working copy deployments run in.
//!
//! `<state>/runs/<run-id>/` holds `logs/`, `outputs/` and `work/`. `work/` is `$BITOPS_TEMPDIR`:
//! the repo's root files and `_`-folders, plus each environment that runs, copied when its
//! first deployment starts, with `_default` merged in (DESIGN §2.4). Deployments of one
//! environment share its copy, as they shared BitOps' temp copy (a terraform deployment may
//! write an inventory that a later ansible deployment reads). The ops repo is never written.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::yaml;

#[derive(Debug)]
pub struct Workspace {
    pub repo_root: PathBuf,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    /// `$BITOPS_TEMPDIR` (the repo itself with `--in-place`).
    pub tempdir: PathBuf,
    pub default_folder: String,
    pub in_place: bool,
    base: OnceLock<Result<(), String>>,
    no_inputs: OnceLock<()>,
    envs: Mutex<HashMap<String, Arc<EnvCopy>>>,
}

/// One environment's working copy, made once by whichever deployment needs it first.
type EnvCopy = OnceLock<Result<PathBuf, String>>;

impl Workspace {
    pub fn new(
        repo_root: &Path,
        state_dir: &Path,
        run_dir: &Path,
        default_folder: &str,
        in_place: bool,
    ) -> Self {
        Workspace {
            repo_root: repo_root.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            tempdir: if in_place {
                repo_root.to_path_buf()
            } else {
                run_dir.join("work")
            },
            default_folder: default_folder.to_string(),
            in_place,
            base: OnceLock::new(),
            no_inputs: OnceLock::new(),
            envs: Mutex::new(HashMap::new()),
        }
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.run_dir.join("logs")
    }

    pub fn outputs_dir(&self) -> PathBuf {
        self.run_dir.join("outputs")
    }

    /// `$BITOPS_INPUTS_JSON` for deployments with nothing upstream: one shared `{}` file.
    pub fn no_inputs_file(&self) -> PathBuf {
        let path = self.outputs_dir().join("no-inputs.json");
        self.no_inputs.get_or_init(|| {
            let _ = crate::state::fsutil::write_private(&path, "{}\n");
        });
        path
    }

    /// The environment's folder in the working copy, copying it on first use. Blocking: call
    /// from `spawn_blocking`.
    pub fn env_dir(&self, env: &str) -> Result<PathBuf, String> {
        if self.in_place {
            return Ok(self.repo_root.join(env));
        }
        self.base.get_or_init(|| self.copy_base()).clone()?;
        let cell = {
            let mut envs = self
                .envs
                .lock()
                .expect("workspace lock is never poisoned by a panic-free copy");
            Arc::clone(envs.entry(env.to_string()).or_default())
        };
        cell.get_or_init(|| self.copy_env(env)).clone()
    }

    /// Root files and `_`/`.` folders (not `.git`, not the state folder).
    fn copy_base(&self) -> Result<(), String> {
        crate::state::fsutil::private_dir(&self.tempdir)
            .map_err(|e| format!("cannot create {}: {e}", self.tempdir.display()))?;
        let entries = std::fs::read_dir(&self.repo_root)
            .map_err(|e| format!("cannot list the ops repo: {e}"))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name_s = name.to_string_lossy();
            let path = entry.path();
            if name_s == ".git" || name_s == ".bitops" || path == self.state_dir {
                continue;
            }
            let is_dir = path.is_dir();
            if is_dir
                && !(name_s.starts_with('_')
                    || name_s.starts_with('.')
                    || name_s == self.default_folder)
            {
                continue; // an environment: copied when it runs
            }
            copy_tree(&path, &self.tempdir.join(&name), &self.skip_list())
                .map_err(|e| format!("cannot copy {} into the run folder: {e}", path.display()))?;
        }
        Ok(())
    }

    fn skip_list(&self) -> Vec<PathBuf> {
        vec![self.state_dir.clone()]
    }

    fn copy_env(&self, env: &str) -> Result<PathBuf, String> {
        let src = self.repo_root.join(env);
        let dst = self.tempdir.join(env);
        copy_tree(&src, &dst, &self.skip_list())
            .map_err(|e| format!("cannot copy environment `{env}`: {e}"))?;
        let defaults = self.repo_root.join(&self.default_folder);
        if defaults.is_dir() {
            merge_defaults(&defaults, &dst)
                .map_err(|e| format!("cannot merge `{}` into `{env}`: {e}", self.default_folder))?;
        }
        Ok(dst)
    }

    /// Makes the working copies and log folders of `envs` (in the order given) on a thread of
    /// its own, so a deployment finds its copy ready instead of making it on the critical path.
    /// A deployment that gets there first makes the copy itself (each is made once). Setting
    /// `stop` ends it after the environment in hand.
    pub fn prepare_ahead(
        self: &Arc<Self>,
        envs: Vec<String>,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let ws = Arc::clone(self);
        std::thread::spawn(move || {
            for env in envs {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let _ = crate::state::fsutil::private_dir(&ws.logs_dir().join(&env));
                // A failure is reported by the deployment that needs the copy.
                let _ = ws.env_dir(&env);
            }
        })
    }

    /// Removes the working copy (after a successful run); logs and outputs stay.
    pub fn remove_work(&self) -> io::Result<()> {
        if self.in_place || !self.tempdir.exists() {
            return Ok(());
        }
        std::fs::remove_dir_all(&self.tempdir)
    }
}

/// Copies a file or folder, following symlinks as BitOps' copy did. A symlink that leads back
/// into a folder being copied (a loop) is an error naming it, instead of endless recursion.
pub fn copy_tree(src: &Path, dst: &Path, skip: &[PathBuf]) -> io::Result<()> {
    copy_tree_within(src, dst, skip, &mut Vec::new())
}

fn copy_tree_within(
    src: &Path,
    dst: &Path,
    skip: &[PathBuf],
    ancestors: &mut Vec<PathBuf>,
) -> io::Result<()> {
    if skip.iter().any(|s| s == src) {
        return Ok(());
    }
    let meta = std::fs::metadata(src)?;
    if !meta.is_dir() {
        return std::fs::copy(src, dst).map(|_| ());
    }
    let real = std::fs::canonicalize(src)?;
    if ancestors.contains(&real) {
        return Err(io::Error::other(format!(
            "{} is a symlink loop (it leads back to {})",
            src.display(),
            real.display()
        )));
    }
    ancestors.push(real);
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        copy_tree_within(&entry.path(), &dst.join(entry.file_name()), skip, ancestors)?;
    }
    ancestors.pop();
    Ok(())
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Files only in `_default` are copied; on a clash the environment's file wins, except YAML
/// files, which are deep-merged (environment wins per key; lists are replaced).
pub fn merge_defaults(defaults: &Path, env_dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(defaults)? {
        let entry = entry?;
        let src = entry.path();
        let dst = env_dir.join(entry.file_name());
        if src.is_dir() {
            std::fs::create_dir_all(&dst)?;
            merge_defaults(&src, &dst)?;
        } else if !dst.exists() {
            std::fs::copy(&src, &dst)?;
        } else if is_yaml(&src) {
            let base = std::fs::read_to_string(&src)?;
            let over = std::fs::read_to_string(&dst)?;
            // A file over yaml.rs' limits fails the merge (never a silent keep, never a crash).
            let merged = yaml::merge_text(&base, &over).map_err(|(in_base, why)| {
                let file = if in_base { &src } else { &dst };
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {why}", file.display()),
                )
            })?;
            if let Some(merged) = merged {
                std::fs::write(&dst, merged)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_gaps_and_yaml_merges() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join("_default/terraform")).unwrap();
        std::fs::create_dir_all(repo.join("env1/terraform")).unwrap();
        std::fs::create_dir_all(repo.join("_scripts")).unwrap();
        std::fs::write(repo.join("_scripts/x.sh"), "echo x").unwrap();
        std::fs::write(repo.join("_default/terraform/versions.tf"), "# default").unwrap();
        std::fs::write(repo.join("_default/terraform/main.tf"), "# default main").unwrap();
        std::fs::write(repo.join("env1/terraform/main.tf"), "# env main").unwrap();
        std::fs::write(
            repo.join("_default/terraform/bitops.config.yaml"),
            "terraform:\n  cli: {stack-action: plan}\n  options: {workspace: dflt}\n",
        )
        .unwrap();
        std::fs::write(
            repo.join("env1/terraform/bitops.config.yaml"),
            "terraform:\n  cli: {stack-action: apply}\n",
        )
        .unwrap();
        let before = snapshot(&repo);

        let state = repo.join(".bitops");
        let ws = Workspace::new(&repo, &state, &state.join("runs/r1"), "_default", false);
        let env = ws.env_dir("env1").unwrap();
        assert_eq!(
            std::fs::read_to_string(env.join("terraform/versions.tf")).unwrap(),
            "# default"
        );
        assert_eq!(
            std::fs::read_to_string(env.join("terraform/main.tf")).unwrap(),
            "# env main"
        );
        let cfg = yaml::parse(
            &std::fs::read_to_string(env.join("terraform/bitops.config.yaml")).unwrap(),
        )
        .unwrap()
        .unwrap();
        let tf = cfg.get("terraform").unwrap();
        assert_eq!(
            tf.get("cli").unwrap().get("stack-action").unwrap().as_str(),
            Some("apply")
        );
        assert_eq!(
            tf.get("options")
                .unwrap()
                .get("workspace")
                .unwrap()
                .as_str(),
            Some("dflt")
        );
        assert!(ws.tempdir.join("_scripts/x.sh").exists());
        // The repo itself is untouched (the state folder aside).
        assert_eq!(snapshot(&repo), before);
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_endless_recursion() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("env/terraform");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main.tf"), "# x").unwrap();
        std::os::unix::fs::symlink("..", src.join("up")).unwrap();
        let err = copy_tree(&t.path().join("env"), &t.path().join("copy"), &[]).unwrap_err();
        assert!(err.to_string().contains("symlink loop"), "{err}");
        // A symlink to a file or to a folder outside the copy is followed as before.
        std::fs::remove_file(src.join("up")).unwrap();
        std::fs::create_dir_all(t.path().join("shared")).unwrap();
        std::fs::write(t.path().join("shared/mod.tf"), "# m").unwrap();
        std::os::unix::fs::symlink(t.path().join("shared"), src.join("shared")).unwrap();
        copy_tree(&t.path().join("env"), &t.path().join("copy2"), &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("copy2/terraform/shared/mod.tf")).unwrap(),
            "# m"
        );
    }

    /// Every file below `dir` (outside `.bitops`) with its content.
    pub(super) fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.file_name().is_some_and(|n| n == ".bitops") {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }
}
