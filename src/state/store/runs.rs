//! Journals and reports in a shared store.
//!
//! A run still writes its journal and report in its local run folder (its logs are there
//! too); with a shared store they are also uploaded: the journal whenever it has grown (checked
//! twice a second, and once more at the end), the report when the run ends. `bitops report`
//! and `deploy --resume` on another machine first fetch what they need into their own state
//! folder, then read it as they read local runs: the local folder is a cache of the store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{journal_key, report_key, Cond, StateStore};

/// Uploads a growing journal file until finished.
pub struct JournalMirror {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Option<String>>>,
}

impl JournalMirror {
    pub fn start(store: Arc<dyn StateStore>, local: PathBuf, run_id: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let key = journal_key(run_id);
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("bitops-journal".into())
            .spawn(move || {
                let mut sent = u64::MAX;
                let mut last_error = None;
                loop {
                    let done = flag.load(Ordering::Acquire);
                    let len = std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0);
                    if len != sent {
                        if let Ok(data) = std::fs::read(&local) {
                            match store.put(&key, data, Cond::Overwrite) {
                                Ok(_) => {
                                    sent = len;
                                    last_error = None;
                                }
                                Err(e) => last_error = Some(format!("{}: {e}", store.url())),
                            }
                        }
                    }
                    if done {
                        return last_error;
                    }
                    std::thread::park_timeout(Duration::from_millis(500));
                }
            })
            .ok();
        JournalMirror { stop, thread }
    }

    /// A last upload; the error of the last attempt if it failed.
    pub fn finish(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => {
                t.thread().unpark();
                t.join().ok().flatten().map_or(Ok(()), Err)
            }
            None => Err("the journal upload thread did not start".into()),
        }
    }
}

/// Uploads a finished run's report.
pub fn upload_report(store: &dyn StateStore, run_id: &str, local: &Path) -> Result<(), String> {
    let data = std::fs::read(local).map_err(|e| format!("{}: {e}", local.display()))?;
    store
        .put(&report_key(run_id), data, Cond::Overwrite)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", store.url()))
}

/// Run ids in the store that have a journal or a report, oldest first.
pub fn run_ids(store: &dyn StateStore) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = store
        .list("runs/")
        .map_err(|e| format!("{}: {e}", store.url()))?
        .into_iter()
        .filter_map(|l| Some(l.key.strip_prefix("runs/")?.split_once('/')?.0.to_string()))
        // Run ids are bitops' own (`20261121T061502Z-4242`); anything else in the store is
        // not a run, and never becomes a local path.
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Copies the reports of the store's runs that the local folder lacks (reports never change
/// once written), so `bitops report` reads them as local runs.
pub fn fetch_reports(store: &dyn StateStore, state_dir: &Path) -> Result<(), String> {
    for id in run_ids(store)? {
        let local = run_file(state_dir, &id, crate::report::run_report::FILE_NAME);
        if local.exists() {
            continue;
        }
        if let Some(o) = store
            .get(&report_key(&id))
            .map_err(|e| format!("{}: {e}", store.url()))?
        {
            write_local(&local, &o.data)?;
        }
    }
    Ok(())
}

/// Copies the journals of the runs `--resume WHICH` may mean (an id prefix, or `last`: the
/// newest run), so the local resume finds them. The store's copy wins: it is the newest.
pub fn fetch_journals(store: &dyn StateStore, state_dir: &Path, which: &str) -> Result<(), String> {
    let ids = run_ids(store)?;
    let wanted: Vec<&String> = if which == "last" || which.is_empty() {
        ids.last().into_iter().collect()
    } else {
        ids.iter().filter(|id| id.starts_with(which)).collect()
    };
    for id in wanted {
        if let Some(o) = store
            .get(&journal_key(id))
            .map_err(|e| format!("{}: {e}", store.url()))?
        {
            write_local(
                &run_file(state_dir, id, crate::state::journal::JOURNAL_FILE),
                &o.data,
            )?;
        }
    }
    Ok(())
}

fn run_file(state_dir: &Path, id: &str, name: &str) -> PathBuf {
    state_dir.join("runs").join(id).join(name)
}

fn write_local(path: &Path, data: &[u8]) -> Result<(), String> {
    let dir = path.parent().expect("run files are in a folder");
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = path.with_extension("fetch.tmp");
    std::fs::write(&tmp, data)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))
}
