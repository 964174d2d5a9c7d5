//! The run folder and the persistent working copy deployments run in.
//!
//! `<state>/runs/<run-id>/` holds a run's `logs/` and `outputs/`. `<state>/work/` is
//! `$BITOPS_TEMPDIR`: a copy of the whole repo laid out as the repo is, so every relative path
//! that resolved in BitOps' copy resolves here too (root files, `_`-folders, `scripts/`, other
//! environments). Each environment's folder has `_default` merged in (DESIGN §2.4), and
//! deployments of one environment share it, as they shared BitOps' temp copy (a terraform
//! deployment may write an inventory that a later ansible deployment reads).
//!
//! The copy is kept between runs and refreshed from the repo at each (see `refresh`): files the
//! tools create there (local terraform state, `.terraform/` provider caches) survive, so
//! deploy → `plan --run` → destroy works with a local backend; `--fresh` starts an environment's
//! folder clean. An environment's folder is refreshed and used only by a run holding that
//! environment's lock; the shared part (everything that is not an environment) is refreshed by
//! every run under a file lock of its own. Environments a run does not select are copied when
//! their folder is missing and otherwise left as the last run that selected them made them. The
//! ops repo is never written.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::refresh::{refresh, Unit};

/// The folder under the state folder that holds the working copy.
pub const WORK_DIR: &str = "work";
/// The folder under the state folder that holds what each refresh copied.
const MANIFEST_DIR: &str = "manifests";
/// The manifest of the shared part (no environment name starts with `_`).
const SHARED: &str = "_shared";

#[derive(Debug)]
pub struct Workspace {
    pub repo_root: PathBuf,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    /// `$BITOPS_TEMPDIR`: `<state>/work` (the repo itself with `--in-place`).
    pub tempdir: PathBuf,
    pub default_folder: String,
    pub in_place: bool,
    /// `--fresh`: an environment's folder is emptied before its first use in this run.
    pub fresh: bool,
    /// Every environment of the repo: what is not one belongs to the shared part.
    environments: Vec<String>,
    unselected: Vec<String>,
    base: OnceLock<Result<(), String>>,
    no_inputs: OnceLock<()>,
    envs: Mutex<HashMap<String, Arc<EnvCopy>>>,
}

/// One environment's working copy, refreshed once by whichever deployment needs it first.
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
                state_dir.join(WORK_DIR)
            },
            default_folder: default_folder.to_string(),
            in_place,
            fresh: false,
            environments: Vec::new(),
            unselected: Vec::new(),
            base: OnceLock::new(),
            no_inputs: OnceLock::new(),
            envs: Mutex::new(HashMap::new()),
        }
    }

    /// The repo's environments (all of them), and those this run selects: the others are
    /// copied when missing, the selected ones refreshed under their locks.
    pub fn with_environments(mut self, all: Vec<String>, selected: &[String]) -> Self {
        let selected: std::collections::HashSet<&String> = selected.iter().collect();
        self.unselected = all
            .iter()
            .filter(|e| !selected.contains(e))
            .cloned()
            .collect();
        self.environments = all;
        self
    }

    pub fn with_fresh(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.run_dir.join("logs")
    }

    /// `logs/<env>__<deployment>.log`: flat, like the outputs. A folder per environment was an
    /// inode more per environment and run, and creating inodes is most of what a small
    /// deployment costs bitops on ext4 (distinct ids cannot collide: the config refuses
    /// environment and deployment names that would).
    pub fn log_path(&self, env: &str, deployment: &str) -> PathBuf {
        self.logs_dir().join(format!("{env}__{deployment}.log"))
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

    /// The environment's folder in the working copy, refreshed on first use in this run. The
    /// caller holds the environment's lock. Blocking: call from `spawn_blocking`.
    pub fn env_dir(&self, env: &str) -> Result<PathBuf, String> {
        if self.in_place {
            return Ok(self.repo_root.join(env));
        }
        self.base.get_or_init(|| self.refresh_shared()).clone()?;
        let cell = {
            let mut envs = self
                .envs
                .lock()
                .expect("workspace lock is never poisoned by a panic-free copy");
            Arc::clone(envs.entry(env.to_string()).or_default())
        };
        cell.get_or_init(|| self.refresh_env(env)).clone()
    }

    /// [`Self::env_dir`] when it is already known (made ahead, or by an earlier deployment of
    /// the environment): no file work, so the caller need not hand it to a blocking thread.
    pub fn env_dir_if_ready(&self, env: &str) -> Option<Result<PathBuf, String>> {
        if self.in_place {
            return Some(Ok(self.repo_root.join(env)));
        }
        if let Err(e) = self.base.get()? {
            return Some(Err(e.clone()));
        }
        let envs = self.envs.lock().ok()?;
        envs.get(env)?.get().cloned()
    }

    fn manifest(&self, unit: &str) -> PathBuf {
        self.state_dir
            .join(MANIFEST_DIR)
            .join(format!("{unit}.json"))
    }

    fn real_root(&self) -> PathBuf {
        std::fs::canonicalize(&self.repo_root).unwrap_or_else(|_| self.repo_root.clone())
    }

    /// What is not copied from the repo: `.git`, the state folder.
    fn skip_list(&self) -> HashSet<PathBuf> {
        [
            self.repo_root.join(".git"),
            self.repo_root.join(".bitops"),
            self.state_dir.clone(),
        ]
        .into_iter()
        .collect()
    }

    /// Root files and every top-level folder that is not an environment; then the folders of
    /// environments never copied yet. Runs of other environments do this too, one at a time
    /// (a file lock), so two refreshes never interleave.
    fn refresh_shared(&self) -> Result<(), String> {
        let manifests = self.state_dir.join(MANIFEST_DIR);
        // The working copy holds state files and secrets the tools write: 0700, like the rest
        // of the state folder.
        crate::state::fsutil::private_dir(&manifests)
            .map_err(|e| format!("cannot create {}: {e}", manifests.display()))?;
        crate::state::fsutil::private_dir(&self.tempdir)
            .map_err(|e| format!("cannot create {}: {e}", self.tempdir.display()))?;
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(manifests.join(".lock"))
            .map_err(|e| format!("cannot open {}: {e}", manifests.display()))?;
        let _guard = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("cannot lock the working copy: {e}"))?;
        let root = self.real_root();
        let mut skip = self.skip_list();
        skip.extend(self.environments.iter().map(|e| self.repo_root.join(e)));
        refresh(&Unit {
            repo: &root,
            src: &self.repo_root,
            dst: &self.tempdir,
            defaults: None,
            manifest: &self.manifest(SHARED),
            skip: &skip,
        })
        .map_err(|e| format!("cannot refresh the working copy: {e}"))?;
        // Other environments, so that `../../other-env/...` resolves as in BitOps' copy.
        // Copied aside and renamed into place: a run that selects one may be making it too.
        for env in &self.unselected {
            let dst = self.tempdir.join(env);
            if dst.exists() {
                continue;
            }
            let tmp = self
                .tempdir
                .join(format!(".bitops-new-{env}-{}", std::process::id()));
            let tmp_manifest = self.manifest(&format!("{env}.new{}", std::process::id()));
            let made = self.refresh_into(env, &tmp, &tmp_manifest);
            if made.is_ok() && std::fs::rename(&tmp, &dst).is_ok() {
                let _ = std::fs::rename(&tmp_manifest, self.manifest(env));
            } else {
                let _ = std::fs::remove_dir_all(&tmp);
                let _ = std::fs::remove_file(&tmp_manifest);
            }
        }
        Ok(())
    }

    fn refresh_into(&self, env: &str, dst: &Path, manifest: &Path) -> Result<(), String> {
        let defaults = self.repo_root.join(&self.default_folder);
        let root = self.real_root();
        refresh(&Unit {
            repo: &root,
            src: &self.repo_root.join(env),
            dst,
            defaults: defaults.is_dir().then_some(defaults.as_path()),
            manifest,
            skip: &self.skip_list(),
        })
        .map(|_| ())
    }

    fn refresh_env(&self, env: &str) -> Result<PathBuf, String> {
        let dst = self.tempdir.join(env);
        let manifest = self.manifest(env);
        if self.fresh {
            for r in [
                std::fs::remove_dir_all(&dst),
                std::fs::remove_file(&manifest),
            ] {
                if let Some(e) = r
                    .as_ref()
                    .err()
                    .filter(|e| e.kind() != io::ErrorKind::NotFound)
                {
                    return Err(format!("--fresh: cannot remove {}: {e}", dst.display()));
                }
            }
        }
        self.refresh_into(env, &dst, &manifest)
            .map_err(|e| format!("cannot refresh environment `{env}`: {e}"))?;
        Ok(dst)
    }

    /// Makes the working copies and log folders of `envs` (in the order given) on a thread of
    /// its own, so a deployment finds its copy ready instead of making it on the critical path.
    /// A deployment that gets there first makes the copy itself (each is made once). Setting
    /// `stop` ends it after the environment in hand.
    pub fn prepare_ahead(
        self: &Arc<Self>,
        envs: Vec<(String, Vec<String>)>,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let ws = Arc::clone(self);
        std::thread::spawn(move || {
            let _ = crate::state::fsutil::private_dir(&ws.logs_dir());
            for (env, deployments) in envs {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                // Empty log files, so that starting a deployment opens a file instead of
                // allocating an inode (on ext4 the largest part of a step's own work in bitops).
                // The ones of deployments that never start are removed at the end of the run.
                for dep in &deployments {
                    let _ = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(crate::state::fsutil::FILE_MODE)
                        .open(ws.log_path(&env, dep));
                }
                // A failure is reported by the deployment that needs the copy.
                let _ = ws.env_dir(&env);
            }
        })
    }

    /// Removes the log files made ahead for deployments that never started, if still empty.
    pub fn remove_unused_logs<'a>(&self, never_started: impl Iterator<Item = (&'a str, &'a str)>) {
        for (env, dep) in never_started {
            let path = self.log_path(env, dep);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
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
        let ws = Workspace::new(&repo, &state, &state.join("runs/r1"), "_default", false)
            .with_environments(vec!["env1".into()], &[]);
        let env = ws.env_dir("env1").unwrap();
        assert_eq!(
            std::fs::read_to_string(env.join("terraform/versions.tf")).unwrap(),
            "# default"
        );
        assert_eq!(
            std::fs::read_to_string(env.join("terraform/main.tf")).unwrap(),
            "# env main"
        );
        let cfg = crate::yaml::parse(
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
        let repo = t.path().join("repo");
        let src = repo.join("env/terraform");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main.tf"), "# x").unwrap();
        std::os::unix::fs::symlink("..", src.join("up")).unwrap();
        let state = repo.join(".bitops");
        let ws = Workspace::new(&repo, &state, &state.join("runs/r1"), "_default", false)
            .with_environments(vec!["env".into()], &[]);
        let err = ws.env_dir("env").unwrap_err();
        assert!(err.contains("symlink loop"), "{err}");
        // A symlink to a folder elsewhere in the repo is followed (copied as content).
        std::fs::remove_file(src.join("up")).unwrap();
        std::fs::create_dir_all(repo.join("_shared")).unwrap();
        std::fs::write(repo.join("_shared/mod.tf"), "# m").unwrap();
        std::os::unix::fs::symlink("../../_shared", src.join("shared")).unwrap();
        let ws = Workspace::new(&repo, &state, &state.join("runs/r2"), "_default", false)
            .with_environments(vec!["env".into()], &[]);
        let env = ws.env_dir("env").unwrap();
        assert_eq!(
            std::fs::read_to_string(env.join("terraform/shared/mod.tf")).unwrap(),
            "# m"
        );
        assert!(!std::fs::symlink_metadata(env.join("terraform/shared"))
            .unwrap()
            .is_symlink());
    }

    #[test]
    fn a_refresh_copies_what_changed_removes_what_went_and_keeps_what_tools_made() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join("e/tf")).unwrap();
        std::fs::create_dir_all(repo.join("other/tf")).unwrap();
        std::fs::create_dir_all(repo.join("scripts")).unwrap();
        std::fs::write(repo.join("e/tf/main.tf"), "# 1").unwrap();
        std::fs::write(repo.join("e/tf/gone.tf"), "# gone").unwrap();
        std::fs::write(repo.join("other/tf/o.tf"), "# o").unwrap();
        std::fs::write(repo.join("scripts/x.sh"), "echo x").unwrap();
        let state = repo.join(".bitops");
        let envs = vec!["e".to_string(), "other".to_string()];
        let run = |n: u32, fresh: bool| {
            Workspace::new(
                &repo,
                &state,
                &state.join(format!("runs/r{n}")),
                "_default",
                false,
            )
            .with_environments(envs.clone(), &envs[..1])
            .with_fresh(fresh)
            .env_dir("e")
            .unwrap()
        };
        let before = snapshot(&repo);
        let env = run(1, false);
        let work = env.parent().unwrap().to_path_buf();
        assert!(work.join("scripts/x.sh").exists());
        assert!(
            work.join("other/tf/o.tf").exists(),
            "other environments are there too"
        );
        std::fs::write(env.join("tf/terraform.tfstate"), "state").unwrap();
        std::fs::create_dir_all(env.join("tf/.terraform/providers")).unwrap();
        std::fs::write(repo.join("e/tf/main.tf"), "# 2, longer").unwrap();
        std::fs::remove_file(repo.join("e/tf/gone.tf")).unwrap();
        let before2 = snapshot(&repo);
        let env = run(2, false);
        assert_eq!(
            std::fs::read_to_string(env.join("tf/main.tf")).unwrap(),
            "# 2, longer"
        );
        assert!(
            !env.join("tf/gone.tf").exists(),
            "removed from the repo, removed here"
        );
        assert_eq!(
            std::fs::read_to_string(env.join("tf/terraform.tfstate")).unwrap(),
            "state"
        );
        assert!(env.join("tf/.terraform/providers").is_dir());
        // A copy changed by a tool is refreshed from the repo.
        std::fs::write(env.join("tf/main.tf"), "# edited by a hook").unwrap();
        let env = run(3, false);
        assert_eq!(
            std::fs::read_to_string(env.join("tf/main.tf")).unwrap(),
            "# 2, longer"
        );
        // --fresh starts clean.
        let env = run(4, true);
        assert!(!env.join("tf/terraform.tfstate").exists());
        assert!(env.join("tf/main.tf").exists());
        assert_eq!(snapshot(&repo), before2);
        assert_ne!(before, before2);
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
