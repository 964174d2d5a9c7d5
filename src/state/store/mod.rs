//! Where the shared parts of the state live: environment locks, the last outputs of every
//! deployment, run journals and reports, durations history.
//!
//! The embedded default is the local state folder (`<ops-repo>/.bitops`, or `--state-dir`),
//! read and written exactly as bitops always did (pid locks, files in place). `--state URL`
//! (`BITOPS_STATE`, `bitops.state`) puts them in a shared store instead, so runs on different
//! machines coordinate: `file:///path` (a folder, e.g. on a shared mount), `s3://bucket/prefix`
//! and `az://container/prefix` (through the `object_store` crate). Every shared store offers
//! the same small interface, [`StateStore`]: whole-object reads and atomic writes, with
//! create-if-absent and compare-and-swap (If-Match) for leases.
//!
//! Layout under the store's prefix:
//! ```text
//! locks/<env>.json              a lease: holder, expiry (see lease.rs)
//! outputs/<env>__<dep>.json     last successful outputs of a deployment
//! runs/<run-id>/journal.jsonl   the journal, uploaded as the run goes
//! runs/<run-id>/report.json     the run report, when the run ends
//! history.json                  durations (moving average per deployment)
//! ```

pub mod choose;
pub mod folder;
pub mod lease;
pub mod object;
pub mod runs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::exec::outputs::Outputs;

/// Which version of an object a conditional write expects (an ETag, or a store's version id).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Version {
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

/// An object as read: its bytes and the version a conditional update must match.
#[derive(Clone, Debug)]
pub struct Object {
    pub data: Vec<u8>,
    pub version: Version,
}

/// A key found by [`StateStore::list`], with its age.
#[derive(Clone, Debug)]
pub struct Listed {
    pub key: String,
    pub modified: Option<std::time::SystemTime>,
}

/// How a write may land.
#[derive(Clone, Debug)]
pub enum Cond {
    /// Replace whatever is there (still atomic: no reader sees half an object).
    Overwrite,
    /// Only if nothing is there (`If-None-Match: *`): taking a lock.
    Create,
    /// Only if the object is still this version (`If-Match`): renewing or taking over a lease.
    Matches(Version),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `Cond::Create` found an object.
    #[error("{key} already exists")]
    Exists { key: String },
    /// `Cond::Matches` found another version (or none).
    #[error("{key} changed since it was read")]
    Changed { key: String },
    /// The store could not be reached, refused the request, or answered nonsense.
    #[error("{0}")]
    Failed(String),
}

/// A shared state store: whole objects by key, written atomically, with conditional writes.
/// Keys are `/`-separated, relative to the store's prefix.
pub trait StateStore: Send + Sync {
    /// The URL the user gave, for messages.
    fn url(&self) -> &str;
    fn get(&self, key: &str) -> Result<Option<Object>, StoreError>;
    fn put(&self, key: &str, data: Vec<u8>, cond: Cond) -> Result<Version, StoreError>;
    /// Removing a key that is not there is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key under a prefix (recursively), sorted.
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError>;
}

pub fn lock_key(env: &str) -> String {
    format!("locks/{env}.json")
}

pub fn outputs_key(node_id: &str) -> String {
    format!("outputs/{}.json", node_id.replace('/', "__"))
}

pub fn journal_key(run_id: &str) -> String {
    format!("runs/{run_id}/{}", crate::state::journal::JOURNAL_FILE)
}

pub fn report_key(run_id: &str) -> String {
    format!("runs/{run_id}/{}", crate::report::run_report::FILE_NAME)
}

pub const HISTORY_KEY: &str = "history.json";

/// The state of a run: the local folder (always: working copies, logs, plugins), and where the
/// shared parts live.
#[derive(Clone)]
pub struct State {
    pub dir: PathBuf,
    /// `None`: the embedded default, the local folder itself, as bitops always used it.
    pub shared: Option<Arc<dyn StateStore>>,
    /// Outputs read from a shared store before the run (see [`State::prefetch_outputs`]).
    cache: Arc<std::sync::Mutex<HashMap<String, Option<Outputs>>>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "State({})", self.describe())
    }
}

impl State {
    pub fn embedded(dir: PathBuf) -> Self {
        State {
            dir,
            shared: None,
            cache: Arc::default(),
        }
    }

    pub fn shared(dir: PathBuf, store: Arc<dyn StateStore>) -> Self {
        State {
            dir,
            shared: Some(store),
            cache: Arc::default(),
        }
    }

    /// Reads, before anything starts, the saved outputs a run will need, so that a store that
    /// stops answering mid-run cannot silently hand a deployment no inputs.
    pub fn prefetch_outputs<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        if self.shared.is_none() {
            return Ok(());
        }
        for id in ids {
            let o = self.load_outputs(id)?;
            self.cache
                .lock()
                .expect("outputs cache")
                .insert(id.to_string(), o);
        }
        Ok(())
    }

    /// One line for `plan` and messages: which store a run uses.
    pub fn describe(&self) -> String {
        match &self.shared {
            None => format!("local folder {} (embedded default)", self.dir.display()),
            Some(s) => s.url().to_string(),
        }
    }

    /// The store that holds the shared parts: the shared one, or the local folder.
    pub fn store(&self) -> Arc<dyn StateStore> {
        match &self.shared {
            Some(s) => Arc::clone(s),
            None => Arc::new(folder::FolderStore::new(&self.dir, "embedded")),
        }
    }

    /// Keeps a deployment's last successful outputs; empty outputs remove older ones, so
    /// stale values are never handed on.
    pub fn record_outputs(&self, node_id: &str, outputs: &Outputs) -> Result<(), String> {
        match &self.shared {
            None => {
                crate::exec::outputs::record(&self.dir, node_id, outputs).map_err(|e| e.to_string())
            }
            Some(s) => {
                let key = outputs_key(node_id);
                if outputs.is_empty() {
                    return s.delete(&key).map_err(|e| e.to_string());
                }
                let map: std::collections::BTreeMap<&str, &str> = outputs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let data = serde_json::to_vec_pretty(&map).expect("string map serializes");
                s.put(&key, data, Cond::Overwrite)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", s.url()))
            }
        }
    }

    /// A deployment's last successful outputs, if any were kept.
    pub fn load_outputs(&self, node_id: &str) -> Result<Option<Outputs>, String> {
        match &self.shared {
            None => {
                // For the plan cache: the file's `stat` before it is read.
                crate::discover::record::before_read(crate::exec::outputs::saved_path(
                    &self.dir, node_id,
                ));
                Ok(crate::exec::outputs::load_saved(&self.dir, node_id))
            }
            Some(_)
                if self
                    .cache
                    .lock()
                    .expect("outputs cache")
                    .contains_key(node_id) =>
            {
                Ok(self
                    .cache
                    .lock()
                    .expect("outputs cache")
                    .get(node_id)
                    .cloned()
                    .flatten())
            }
            Some(s) => match s.get(&outputs_key(node_id)) {
                Ok(None) => Ok(None),
                Ok(Some(o)) => {
                    serde_json::from_slice::<std::collections::BTreeMap<String, String>>(&o.data)
                        .map(|m| Some(m.into_iter().collect()))
                        .map_err(|e| format!("{}: {}: {e}", s.url(), outputs_key(node_id)))
                }
                Err(e) => Err(format!("{}: {e}", s.url())),
            },
        }
    }

    /// Recorded seconds per deployment id.
    pub fn load_durations(&self) -> HashMap<String, f64> {
        match &self.shared {
            None => crate::state::load_durations(&self.dir),
            Some(s) => s
                .get(HISTORY_KEY)
                .ok()
                .flatten()
                .and_then(|o| serde_json::from_slice::<History>(&o.data).ok())
                .map(|h| h.durations)
                .unwrap_or_default(),
        }
    }

    /// Folds a run's successful durations into the history. In a shared store two runs may
    /// finish at once: the update is a compare-and-swap, retried a few times.
    pub fn record_durations(&self, finished: &[(String, f64)]) -> Result<(), String> {
        let Some(s) = &self.shared else {
            return crate::state::record_durations(&self.dir, finished).map_err(|e| e.to_string());
        };
        for _ in 0..5 {
            let current = s.get(HISTORY_KEY).map_err(|e| e.to_string())?;
            let (mut h, cond) = match current {
                Some(o) => (
                    serde_json::from_slice::<History>(&o.data).unwrap_or_default(),
                    Cond::Matches(o.version),
                ),
                None => (History::default(), Cond::Create),
            };
            h.fold(finished);
            let data = serde_json::to_vec_pretty(&h).expect("plain map serializes");
            match s.put(HISTORY_KEY, data, cond) {
                Ok(_) => return Ok(()),
                Err(StoreError::Exists { .. } | StoreError::Changed { .. }) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("history.json kept changing under concurrent runs".into())
    }

    /// Before anything runs: the store answers and accepts a write (exit 2 otherwise). The
    /// embedded folder is checked by creating it, as before.
    pub fn check_writable(&self) -> Result<(), String> {
        let Some(s) = &self.shared else {
            return Ok(());
        };
        let key = format!(
            "probe/{}-{}.json",
            crate::state::lock::hostname(),
            std::process::id()
        );
        s.list("locks/").map_err(|e| e.to_string())?;
        s.put(&key, b"{}".to_vec(), Cond::Overwrite)
            .map_err(|e| format!("a test write was refused: {e}"))?;
        s.delete(&key)
            .map_err(|e| format!("a test delete was refused: {e}"))
    }
}

use crate::state::History;

/// Opens the store a URL names (already checked by [`choose::parse`]).
pub fn open(
    url: &choose::StoreUrl,
    env: &crate::config::settings::EnvVars,
) -> Result<Arc<dyn StateStore>, String> {
    match url {
        choose::StoreUrl::Folder { path, text } => {
            Ok(Arc::new(folder::FolderStore::new(path, text)))
        }
        other => {
            // A remote store cannot be checked with a `stat`: no plan cache.
            crate::discover::record::poison("the state store is remote");
            object::ObjectBackend::open(other, env).map(|b| Arc::new(b) as Arc<dyn StateStore>)
        }
    }
}

/// The local path of a key in a folder store (also how the embedded layout maps).
pub fn key_path(root: &Path, key: &str) -> PathBuf {
    key.split('/')
        .fold(root.to_path_buf(), |p, part| p.join(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_history_in_a_shared_store() {
        let t = tempfile::tempdir().unwrap();
        let store: Arc<dyn StateStore> = Arc::new(folder::FolderStore::new(
            &t.path().join("shared"),
            "file://x",
        ));
        let state = State::shared(t.path().join("local"), store);
        state
            .record_outputs("a/b", &vec![("K".into(), "v".into())])
            .unwrap();
        assert_eq!(
            state.load_outputs("a/b").unwrap().unwrap(),
            vec![("K".to_string(), "v".to_string())]
        );
        assert!(t.path().join("shared/outputs/a__b.json").exists());
        assert!(!t.path().join("local").exists(), "nothing local");
        state.record_outputs("a/b", &Vec::new()).unwrap();
        assert!(state.load_outputs("a/b").unwrap().is_none());
        state.record_durations(&[("a/b".into(), 4.0)]).unwrap();
        state.record_durations(&[("a/b".into(), 2.0)]).unwrap();
        assert_eq!(state.load_durations()["a/b"], 3.0);
        state.check_writable().unwrap();
    }
}
