//! The state folder (`<ops-repo>/.bitops` or `--state-dir`): run ids and recorded durations.
//! It is the only place bitops writes inside an ops repo.

pub mod fsutil;
pub mod journal;
pub mod lock;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A sortable, unique run id: `20261121T061502Z-4242`.
pub fn new_run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (y, mo, d, h, mi, s) = civil(now);
    format!(
        "{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{}",
        std::process::id()
    )
}

/// UTC calendar fields of a Unix time (Howard Hinnant's days-from-civil, inverted).
pub fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        ((secs % 3600) / 60) as u32,
        (secs % 60) as u32,
    )
}

/// RFC 3339 text of a time, for reports.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, day, h, mi, s) = civil(d.as_secs() as i64);
    format!(
        "{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        d.subsec_millis()
    )
}

pub fn history_path(state_dir: &Path) -> PathBuf {
    state_dir.join("history.json")
}

/// Recorded seconds per deployment id (a moving average of successful runs).
pub fn load_durations(state_dir: &Path) -> HashMap<String, f64> {
    // Through `read_regular`: recorded for the plan cache (and a FIFO never blocks).
    crate::discover::files::read_regular_string(&history_path(state_dir))
        .ok()
        .and_then(|t| serde_json::from_str::<History>(&t).ok())
        .map(|h| h.durations)
        .unwrap_or_default()
}

/// `history.json`, in the state folder or a shared store.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct History {
    #[serde(default)]
    pub(crate) durations: HashMap<String, f64>,
}

impl History {
    /// Folds a run's successful durations in (weight 0.5 for the newest run).
    pub(crate) fn fold(&mut self, finished: &[(String, f64)]) {
        for (id, secs) in finished {
            let v = self
                .durations
                .get(id)
                .map_or(*secs, |old| 0.5 * old + 0.5 * secs);
            self.durations.insert(id.clone(), v);
        }
    }
}

/// Folds a run's successful durations into the history (weight 0.5 for the newest run).
pub fn record_durations(state_dir: &Path, finished: &[(String, f64)]) -> std::io::Result<()> {
    let mut h = History {
        durations: load_durations(state_dir),
    };
    h.fold(finished);
    fsutil::state_dir(state_dir)?;
    fsutil::write_private_atomic(
        &history_path(state_dir),
        serde_json::to_vec_pretty(&h).expect("plain map serializes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_795_000_000), (2026, 11, 18, 11, 6, 40));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn durations_average() {
        let t = tempfile::tempdir().unwrap();
        record_durations(t.path(), &[("a/b".into(), 4.0)]).unwrap();
        record_durations(t.path(), &[("a/b".into(), 2.0)]).unwrap();
        assert_eq!(load_durations(t.path())["a/b"], 3.0);
    }
}
