//! Earlier runs, read from the reports kept in `<state>/runs/*/report.json`: finding one by
//! id or prefix, listing the recent ones, the slowest deployments over them, and the
//! `bitops report` command that shows them.
//!
//! The reports are the source rather than `history.json` because they keep every duration
//! (not a moving average), failures included, so medians and maxima mean what they say.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::live::fmt_duration;
use super::run_report::{self, RunReport, FILE_NAME};
use crate::exit_code;

/// How many recent runs `--slowest` looks at.
pub const RECENT_RUNS: usize = 20;
/// How many rows `--slowest` prints.
const SLOWEST_ROWS: usize = 15;

/// A run folder under `<state>/runs`, with its report when it has a readable one.
pub struct KeptRun {
    pub id: String,
    pub dir: PathBuf,
    pub report: Result<RunReport, String>,
}

/// Every run folder, oldest first (by the report's start time, then by id: ids sort by time
/// to the second, and the start time breaks ties between runs of the same second).
pub fn kept_runs(state_dir: &Path) -> Vec<KeptRun> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("runs")) else {
        return Vec::new();
    };
    let mut runs: Vec<KeptRun> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let id = e.file_name().into_string().ok()?;
            let path = e.path().join(FILE_NAME);
            let report = match run_report::read(&path) {
                Ok(r) => Ok(r),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err("no report: the run did not finish (killed, or still running)".to_string())
                }
                Err(e) => Err(format!("unreadable report {}: {e}", path.display())),
            };
            Some(KeptRun {
                id,
                dir: e.path(),
                report,
            })
        })
        .collect();
    runs.sort_by_cached_key(sort_key);
    runs
}

fn sort_key(k: &KeptRun) -> (String, String) {
    // Report times and run ids both begin with the UTC date and time, so they compare as text.
    let started = k
        .report
        .as_ref()
        .map(|r| r.started.replace(['-', ':'], ""))
        .unwrap_or_default();
    let id_time = k.id.split('-').next().unwrap_or(&k.id).to_string();
    (
        if started.is_empty() { id_time } else { started },
        k.id.clone(),
    )
}

/// Finds a run: `None` or `last` is the newest run with a report; otherwise a full id or a
/// unique prefix. Errors name the recent runs, so the user can pick one.
pub fn find(state_dir: &Path, wanted: Option<&str>) -> Result<RunReport, String> {
    let runs = kept_runs(state_dir);
    let wanted = wanted.filter(|w| *w != "last" && !w.is_empty());
    let pick: &KeptRun = match wanted {
        None => match runs.iter().rev().find(|r| r.report.is_ok()) {
            Some(r) => r,
            None => {
                return Err(format!(
                    "no finished run has a report in {}\n  help: reports are kept by `bitops deploy` and `bitops destroy`{}",
                    state_dir.join("runs").display(),
                    if runs.is_empty() { String::new() } else { format!("\n{}", recent_list(&runs)) }
                ))
            }
        },
        Some(w) => {
            let hits: Vec<&KeptRun> = match runs.iter().find(|r| r.id == w) {
                Some(exact) => vec![exact],
                None => runs.iter().filter(|r| r.id.starts_with(w)).collect(),
            };
            match hits.as_slice() {
                [one] => one,
                [] => return Err(format!("there is no run `{w}` in {}\n{}", state_dir.join("runs").display(), recent_list(&runs))),
                many => {
                    let ids: Vec<&str> = many.iter().map(|r| r.id.as_str()).collect();
                    return Err(format!("`{w}` matches {} runs ({}); give more of the id", many.len(), ids.join(", ")));
                }
            }
        }
    };
    pick.report
        .clone()
        .map_err(|e| format!("run {} has {e}", pick.id))
}

/// The newest runs, one line each, for error messages.
fn recent_list(runs: &[KeptRun]) -> String {
    if runs.is_empty() {
        return "  no runs are recorded yet".to_string();
    }
    let mut out = String::from("  recent runs:");
    for r in runs.iter().rev().take(10) {
        let what = match &r.report {
            Ok(rep) => format!(
                "{} {}  {}  {}",
                rep.started
                    .get(..19)
                    .unwrap_or(&rep.started)
                    .replace('T', " "),
                rep.command,
                verdict(rep),
                rep.selection
            ),
            Err(e) => e.clone(),
        };
        let _ = write!(out, "\n    {}  {what}", r.id);
    }
    out
}

fn verdict(r: &RunReport) -> &'static str {
    if r.exit_code == 0 {
        "ok"
    } else {
        "failed"
    }
}

/// One deployment over recent runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Slow {
    pub id: String,
    /// In how many of the runs it started.
    pub runs: usize,
    pub median_ms: u64,
    pub max_ms: u64,
    /// How many of those ended failed, timed out or interrupted.
    pub failures: usize,
}

/// Per deployment that started in any of the reports: median and maximum duration, slowest
/// (by median) first. Deployments that did not start carry no duration and are left out.
pub fn slowest(reports: &[RunReport]) -> Vec<Slow> {
    let mut by_id: std::collections::BTreeMap<&str, (Vec<u64>, usize)> =
        std::collections::BTreeMap::new();
    for r in reports {
        for d in r.deployments.iter().filter(|d| d.attempts > 0) {
            let e = by_id.entry(&d.id).or_default();
            e.0.push(d.duration_ms);
            e.1 += usize::from(d.status.is_failure());
        }
    }
    let mut rows: Vec<Slow> = by_id
        .into_iter()
        .map(|(id, (mut ms, failures))| {
            ms.sort_unstable();
            let n = ms.len();
            let median = if n % 2 == 1 {
                ms[n / 2]
            } else {
                (ms[n / 2 - 1] + ms[n / 2]) / 2
            };
            Slow {
                id: id.to_string(),
                runs: n,
                median_ms: median,
                max_ms: ms[n - 1],
                failures,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.median_ms
            .cmp(&a.median_ms)
            .then(b.max_ms.cmp(&a.max_ms))
            .then(a.id.cmp(&b.id))
    });
    rows
}

/// The `--slowest` table.
pub fn render_slowest(rows: &[Slow], runs: usize) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        let _ = writeln!(out, "No deployment ran in the last {runs} runs.");
        return out;
    }
    let shown = &rows[..rows.len().min(SLOWEST_ROWS)];
    let width = shown.iter().map(|r| r.id.len()).max().unwrap_or(10).max(10);
    let _ = writeln!(
        out,
        "Slowest deployments over the last {runs} run{}",
        if runs == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        out,
        "  {:<width$}  {:>8}  {:>8}  {:>4}  {:>8}",
        "deployment", "median", "max", "runs", "failures"
    );
    for r in shown {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>8}  {:>8}  {:>4}  {:>8}",
            r.id,
            fmt_duration(Duration::from_millis(r.median_ms)),
            fmt_duration(Duration::from_millis(r.max_ms)),
            r.runs,
            r.failures
        );
    }
    if rows.len() > shown.len() {
        let _ = writeln!(out, "  … and {} more", rows.len() - shown.len());
    }
    out
}

/// The summary of an earlier run, as `deploy` printed it at the end, under a header naming it.
pub fn render_summary(r: &RunReport, color: bool) -> String {
    let mut out = format!(
        "Run {}: bitops {} ({}), started {}, exit code {}\n",
        r.run_id,
        r.command,
        r.selection,
        r.started.get(..19).unwrap_or(&r.started).replace('T', " ") + " UTC",
        r.exit_code
    );
    if let Some(s) = &r.signal {
        let _ = writeln!(out, "stopped by {s}");
    }
    let results = run_report::to_results(r);
    out.push_str(&super::summary::render(&super::summary::SummaryInput {
        results: &results,
        elapsed: Duration::from_millis(r.duration_ms),
        cancel: r.cancel,
        run_dir: Path::new(&r.run_dir),
        work_kept: r.work_kept.as_deref().map(Path::new),
        color,
    }));
    if !r.critical_path.is_empty() {
        let _ = writeln!(
            out,
            "critical path: {} ({})",
            r.critical_path.join(" → "),
            fmt_duration(Duration::from_millis(r.critical_path_ms))
        );
    }
    out
}

/// What `bitops report` was asked for.
pub struct ReportRequest<'a> {
    pub state_dir: &'a Path,
    pub run: Option<&'a str>,
    pub html: Option<&'a Path>,
    pub slowest: bool,
    pub color: bool,
}

/// `bitops report`: the summary of a run (default), its HTML timeline (`--html`), or the
/// slowest deployments over recent runs (`--slowest`). Output goes to stdout; exit 2 when the
/// run cannot be found (a usage problem), 3 when a file cannot be written.
pub fn command(req: &ReportRequest<'_>) -> u8 {
    let mut out = std::io::stdout().lock();
    if req.slowest {
        // Dry runs take their own time: only deploys and destroys say how slow a deployment is.
        let reports: Vec<RunReport> = kept_runs(req.state_dir)
            .into_iter()
            .filter_map(|k| k.report.ok())
            .filter(|r| r.command != "plan")
            .collect();
        let recent = &reports[reports.len().saturating_sub(RECENT_RUNS)..];
        if recent.is_empty() {
            eprintln!(
                "error: no finished run has a report in {}",
                req.state_dir.join("runs").display()
            );
            return exit_code::CONFIG;
        }
        let _ = std::io::Write::write_all(
            &mut out,
            render_slowest(&slowest(recent), recent.len()).as_bytes(),
        );
        if req.html.is_none() && req.run.is_none() {
            return exit_code::SUCCESS;
        }
    }
    let report = match find(req.state_dir, req.run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_code::CONFIG;
        }
    };
    if let Some(path) = req.html {
        if let Err(e) = run_report::write_text(path, &super::html::render(&report)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit_code::INTERNAL;
        }
        eprintln!(
            "wrote the timeline of run {} to {}",
            report.run_id,
            path.display()
        );
        return exit_code::SUCCESS;
    }
    let _ = std::io::Write::write_all(&mut out, render_summary(&report, req.color).as_bytes());
    exit_code::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::events::Status;
    use crate::report::run_report::{build, tests::sample, write};

    fn ran(status: Status) -> bool {
        !matches!(
            status,
            Status::Skipped | Status::NotRun | Status::NotApplicable
        )
    }

    fn keep(state: &Path, id: &str, started: &str, durations: &[(&str, u64, Status)]) {
        let (info, result) = sample();
        let mut r = build(&info, &result, 1);
        r.run_id = id.to_string();
        r.started = started.to_string();
        r.deployments
            .retain(|d| durations.iter().any(|(x, ..)| *x == d.id));
        for d in &mut r.deployments {
            let (_, ms, st) = durations.iter().find(|(x, ..)| *x == d.id).unwrap();
            d.duration_ms = *ms;
            d.status = *st;
            d.attempts = u32::from(ran(*st));
        }
        write(&r, &state.join("runs").join(id).join(FILE_NAME)).unwrap();
    }

    #[test]
    fn finds_runs_by_id_prefix_and_latest() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path();
        let ok = Status::Succeeded;
        keep(
            s,
            "20261118T100000Z-10",
            "2026-11-18T10:00:00.000Z",
            &[("net-test/terraform", 1000, ok)],
        );
        keep(
            s,
            "20261118T110000Z-11",
            "2026-11-18T11:00:00.000Z",
            &[("net-test/terraform", 2000, ok)],
        );
        keep(
            s,
            "20261119T090000Z-12",
            "2026-11-19T09:00:00.000Z",
            &[("net-test/terraform", 3000, ok)],
        );
        // A run that was killed: a folder with no report.
        std::fs::create_dir_all(s.join("runs/20261120T000000Z-13")).unwrap();
        assert_eq!(find(s, None).unwrap().run_id, "20261119T090000Z-12");
        assert_eq!(find(s, Some("last")).unwrap().run_id, "20261119T090000Z-12");
        assert_eq!(
            find(s, Some("20261118T10")).unwrap().run_id,
            "20261118T100000Z-10"
        );
        let e = find(s, Some("20261118")).unwrap_err();
        assert!(e.contains("matches 2 runs"), "{e}");
        let e = find(s, Some("nope")).unwrap_err();
        assert!(
            e.contains("there is no run `nope`") && e.contains("20261119T090000Z-12"),
            "{e}"
        );
        let e = find(s, Some("20261120")).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(find(empty.path(), None)
            .unwrap_err()
            .contains("no finished run"));
    }

    #[test]
    fn slowest_uses_median_and_max() {
        let t = tempfile::tempdir().unwrap();
        let s = t.path();
        let (ok, bad) = (Status::Succeeded, Status::Failed);
        keep(
            s,
            "r1",
            "2026-11-18T10:00:00.000Z",
            &[
                ("net-test/terraform", 1000, ok),
                ("app-test/ansible", 9000, bad),
            ],
        );
        keep(
            s,
            "r2",
            "2026-11-18T11:00:00.000Z",
            &[
                ("net-test/terraform", 3000, ok),
                ("app-test/ansible", 5000, ok),
            ],
        );
        keep(
            s,
            "r3",
            "2026-11-18T12:00:00.000Z",
            &[
                ("net-test/terraform", 2000, ok),
                ("app-test/helm", 0, Status::Skipped),
            ],
        );
        let reports: Vec<RunReport> = kept_runs(s)
            .into_iter()
            .filter_map(|k| k.report.ok())
            .collect();
        assert_eq!(
            reports
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>(),
            ["r1", "r2", "r3"]
        );
        let rows = slowest(&reports);
        assert_eq!(
            rows,
            vec![
                Slow {
                    id: "app-test/ansible".into(),
                    runs: 2,
                    median_ms: 7000,
                    max_ms: 9000,
                    failures: 1
                },
                Slow {
                    id: "net-test/terraform".into(),
                    runs: 3,
                    median_ms: 2000,
                    max_ms: 3000,
                    failures: 0
                },
            ]
        );
        let text = render_slowest(&rows, 3);
        assert!(text.contains("over the last 3 runs"));
        assert!(text.lines().nth(2).unwrap().contains("app-test/ansible"));
        assert!(text.contains("7.0s") && text.contains("9.0s"));
    }

    #[test]
    fn summary_of_an_earlier_run() {
        let (info, result) = sample();
        let text = render_summary(&build(&info, &result, 1), false);
        assert!(text.starts_with("Run 20261118T114640Z-4242: bitops deploy (all environments), started 2026-11-18 11:06:40 UTC"));
        assert!(text.contains("app-test/ansible"));
        assert!(text.contains("full log: /tmp/state/runs/r1/logs/app-test_ansible.log"));
        assert!(
            text.contains("FAILED: 1 succeeded, 1 failed, 1 timed out, 1 skipped, 1 not run"),
            "{text}"
        );
        assert!(text.contains("critical path: dns-test/cloudformation (1m00s)"));
    }
}
