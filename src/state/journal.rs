//! The journal: node states appended to `<run>/journal.jsonl` as they change, one JSON object
//! per line, each written with one `write` call so a killed run leaves at most a torn last
//! line (which the reader ignores). `bitops deploy --resume` reads it back.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exec::events::{RunEvent, Status};

pub const JOURNAL_FILE: &str = "journal.jsonl";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Run {
        run_id: String,
        command: String,
        config_hash: String,
        deployments: Vec<String>,
        started: String,
    },
    Started {
        node: String,
        attempt: u32,
        at: String,
    },
    Finished {
        node: String,
        status: Status,
        at: String,
    },
}

pub struct Journal {
    file: Option<File>,
    path: PathBuf,
}

impl Journal {
    /// Creates the journal with its header; a failure to write it is returned, later write
    /// failures are remembered and do not stop the run.
    pub fn create(run_dir: &Path, header: &Entry) -> std::io::Result<Journal> {
        // The run folder holds working copies, logs, outputs and plan files: 0700, and
        // `runs/` too (older versions made both 0755).
        if let Some(runs) = run_dir.parent() {
            super::fsutil::own_dir(runs, "runs")?;
        }
        super::fsutil::private_dir(run_dir)?;
        let path = run_dir.join(JOURNAL_FILE);
        let file = super::fsutil::append_private(&path)?;
        let mut j = Journal {
            file: Some(file),
            path,
        };
        j.append(header);
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, e: &Entry) {
        if let Some(f) = &mut self.file {
            let mut line = serde_json::to_vec(e).expect("journal entries serialize");
            line.push(b'\n');
            if f.write_all(&line).is_err() {
                self.file = None;
            }
        }
    }

    pub fn record(&mut self, ev: &RunEvent) {
        let at = crate::state::rfc3339(std::time::SystemTime::now());
        match ev {
            RunEvent::NodeStarted { id, attempt, .. } => self.append(&Entry::Started {
                node: id.clone(),
                attempt: *attempt,
                at,
            }),
            RunEvent::NodeFinished {
                id,
                deployment: true,
                result,
            } => self.append(&Entry::Finished {
                node: id.clone(),
                status: result.status,
                at,
            }),
            _ => {}
        }
    }
}

/// What a journal says about a run.
#[derive(Debug, Default)]
pub struct Replay {
    pub run_id: String,
    pub command: String,
    pub config_hash: String,
    pub deployments: Vec<String>,
    /// Deployments whose last state is `succeeded`.
    pub succeeded: Vec<String>,
}

impl Replay {
    /// What `--resume` reruns: everything selected that did not succeed.
    pub fn remaining(&self) -> Vec<String> {
        self.deployments
            .iter()
            .filter(|d| !self.succeeded.contains(d))
            .cloned()
            .collect()
    }
}

/// Reads a run's journal. One without its header line (empty, or not a journal at all) is an
/// error naming the file: read as "nothing left to do" it once made `--resume` claim success.
pub fn read(run_dir: &Path) -> std::io::Result<Replay> {
    let path = run_dir.join(JOURNAL_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut r = Replay::default();
    let mut header = false;
    let mut last: std::collections::HashMap<String, Status> = Default::default();
    for line in text.lines() {
        // A run killed mid-write leaves a torn last line; everything before it is intact.
        let Ok(e) = serde_json::from_str::<Entry>(line) else {
            continue;
        };
        match e {
            Entry::Run {
                run_id,
                command,
                config_hash,
                deployments,
                ..
            } => {
                header = true;
                r.run_id = run_id;
                r.command = command;
                r.config_hash = config_hash;
                r.deployments = deployments;
            }
            Entry::Started { node, .. } => {
                last.remove(&node);
            }
            Entry::Finished { node, status, .. } => {
                last.insert(node, status);
            }
        }
    }
    if !header {
        let what = if text.trim().is_empty() {
            "is empty"
        } else {
            "has no run header"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} {what}: the run stopped before it started, or the file was damaged; start a new run instead of resuming this one",
                path.display()
            ),
        ));
    }
    r.succeeded = r
        .deployments
        .iter()
        .filter(|d| last.get(*d).is_some_and(|s| s.is_success()))
        .cloned()
        .collect();
    Ok(r)
}

/// The newest run folder (run ids sort by time), or the one named by id or unique prefix.
pub fn find_run(state_dir: &Path, wanted: Option<&str>) -> Result<PathBuf, String> {
    let runs = state_dir.join("runs");
    // Only ids listed in `runs/` are ever used as paths; an id outside the set is refused
    // with a clear message rather than "no such run".
    if let Some(w) = wanted.filter(|w| !w.is_empty()) {
        crate::names::check(crate::names::Kind::RunId, w)
            .map_err(|why| format!("`{}` is not a run id: {why}", w.escape_debug()))?;
    }
    let mut ids: Vec<String> = std::fs::read_dir(&runs)
        .map_err(|_| format!("no runs recorded in {}", runs.display()))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    let pick = match wanted.filter(|w| *w != "last") {
        None => ids.last().cloned(),
        Some(w) => {
            let hits: Vec<&String> = ids.iter().filter(|id| id.starts_with(w)).collect();
            match hits.as_slice() {
                [one] => Some((*one).clone()),
                [] => None,
                many => {
                    return Err(format!(
                        "`{w}` matches {} runs; give more of the id",
                        many.len()
                    ))
                }
            }
        }
    };
    pick.map(|id| runs.join(id)).ok_or_else(|| {
        let recent: Vec<&str> = ids.iter().rev().take(5).map(String::as_str).collect();
        format!(
            "no such run; recent runs: {}",
            if recent.is_empty() {
                "none".to_string()
            } else {
                recent.join(", ")
            }
        )
    })
}

/// The newest run of `command` (`deploy` or `destroy`) that has a journal: `--resume` without
/// an id. Newer runs of other kinds (`plan --run`, the other command) are passed over, so a
/// dry run never stands in for the deploy it followed.
pub fn find_resumable(state_dir: &Path, command: &str) -> Result<PathBuf, String> {
    let runs = state_dir.join("runs");
    let mut ids: Vec<String> = std::fs::read_dir(&runs)
        .map_err(|_| format!("no runs recorded in {}", runs.display()))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| crate::names::check(crate::names::Kind::RunId, id).is_ok())
        .collect();
    ids.sort();
    ids.iter()
        .rev()
        .map(|id| runs.join(id))
        .find(|dir| read(dir).is_ok_and(|r| r.command == command))
        .ok_or_else(|| format!("no `bitops {command}` run recorded in {}", runs.display()))
}

/// A stable fingerprint of the repo's configuration (FNV-1a over the config texts).
pub fn config_hash<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in texts {
        for b in t.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::events::NodeResult;

    #[test]
    fn an_empty_or_headless_journal_is_an_error_naming_it() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(JOURNAL_FILE), "").unwrap();
        let e = read(t.path()).unwrap_err().to_string();
        assert!(e.contains(JOURNAL_FILE) && e.contains("is empty"), "{e}");
        std::fs::write(
            t.path().join(JOURNAL_FILE),
            "{\"kind\":\"started\",\"node\":\"a/b\",\"attempt\":1,\"at\":\"x\"}\n",
        )
        .unwrap();
        let e = read(t.path()).unwrap_err().to_string();
        assert!(e.contains("no run header"), "{e}");
        std::fs::remove_file(t.path().join(JOURNAL_FILE)).unwrap();
        assert!(read(t.path())
            .unwrap_err()
            .to_string()
            .contains(JOURNAL_FILE));
    }

    #[test]
    fn replay_finds_what_did_not_succeed_and_ignores_a_torn_line() {
        let t = tempfile::tempdir().unwrap();
        let header = Entry::Run {
            run_id: "r1".into(),
            command: "deploy".into(),
            config_hash: "h".into(),
            deployments: vec!["a/x".into(), "a/y".into(), "b/z".into()],
            started: "now".into(),
        };
        let mut j = Journal::create(t.path(), &header).unwrap();
        j.record(&RunEvent::NodeStarted {
            id: "a/x".into(),
            attempt: 1,
            log: None,
        });
        j.record(&RunEvent::NodeFinished {
            id: "a/x".into(),
            deployment: true,
            result: NodeResult::new(Status::Succeeded),
        });
        j.record(&RunEvent::NodeStarted {
            id: "a/y".into(),
            attempt: 1,
            log: None,
        });
        j.record(&RunEvent::NodeFinished {
            id: "a/y".into(),
            deployment: true,
            result: NodeResult::new(Status::Failed),
        });
        drop(j);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(t.path().join(JOURNAL_FILE))
            .unwrap();
        f.write_all(b"{\"kind\":\"finished\",\"node\":\"b/z\",\"sta")
            .unwrap();
        let r = read(t.path()).unwrap();
        assert_eq!(r.succeeded, vec!["a/x".to_string()]);
        assert_eq!(r.remaining(), vec!["a/y".to_string(), "b/z".to_string()]);
    }

    #[test]
    fn runs_are_found_by_prefix() {
        let t = tempfile::tempdir().unwrap();
        for id in ["20260101T000000Z-1", "20260102T000000Z-2"] {
            std::fs::create_dir_all(t.path().join("runs").join(id)).unwrap();
        }
        assert!(find_run(t.path(), None)
            .unwrap()
            .ends_with("20260102T000000Z-2"));
        assert!(find_run(t.path(), Some("20260101"))
            .unwrap()
            .ends_with("20260101T000000Z-1"));
        assert!(find_run(t.path(), Some("2026")).is_err());
        assert!(find_run(t.path(), Some("1999")).is_err());
    }

    #[test]
    fn config_hash_is_stable_and_sensitive() {
        assert_eq!(config_hash(["a", "b"]), config_hash(["a", "b"]));
        assert_ne!(config_hash(["ab"]), config_hash(["a", "b"]));
    }
}
