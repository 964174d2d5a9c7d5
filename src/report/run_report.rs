//! The run report: a versioned JSON document of one finished run (`report_version: 1`).
//!
//! Every run keeps one in `<state>/runs/<run-id>/report.json`; `--report FILE` writes a copy,
//! `--junit FILE` a JUnit rendering of it, and `bitops report` reads the kept ones back (summary,
//! HTML timeline, slowest deployments). The schema is published as `docs/report.schema.json`
//! and described in `docs/report.md`; a test validates a report against it with a real
//! validator, so the three cannot drift apart.
//!
//! The model holds only strings, integers and lists (times as RFC 3339 text, durations in
//! milliseconds) so that a report read back compares equal to the one written.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};

use crate::exec::events::{CancelReason, ExitInfo, NodeResult, Status};
use crate::exec::process::Sig;
use crate::exec::run::RunResult;
use crate::graph::{Graph, NodeKind, Selection};
use crate::plugins::step::Action;

/// The version of the document's shape; bumped only on incompatible changes (a field removed,
/// renamed or given another meaning). Added fields keep the version.
pub const REPORT_VERSION: u32 = 1;

/// The file name of the report kept in each run folder.
pub const FILE_NAME: &str = "report.json";

/// One finished run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub report_version: u32,
    pub run_id: String,
    /// `deploy`, `destroy`, or `plan` (a `plan --run`).
    pub command: String,
    pub ops_repo: String,
    /// What was selected, in words (`all environments`, `-e backend-*`, …).
    pub selection: String,
    pub bitops_version: String,
    /// RFC 3339, UTC, millisecond precision.
    pub started: String,
    pub ended: String,
    pub duration_ms: u64,
    /// The process exit code of the run.
    pub exit_code: u8,
    /// Why the run stopped starting new work, if it did.
    #[serde(default, with = "wire::cancel")]
    pub cancel: Option<CancelReason>,
    /// `SIGINT` or `SIGTERM` when the run was stopped by one.
    pub signal: Option<String>,
    pub run_dir: String,
    /// The working copy kept for inspection after a failure.
    pub work_kept: Option<String>,
    pub counts: Counts,
    /// The chain of dependent deployments with the largest sum of actual durations, first to
    /// last: what to speed up to shorten the run.
    pub critical_path: Vec<String>,
    pub critical_path_ms: u64,
    /// In the order the run scheduled them.
    pub deployments: Vec<DeploymentReport>,
}

/// How many deployments ended in each status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub interrupted: usize,
    pub skipped: usize,
    pub not_run: usize,
    /// Ran, but only planned: nothing was applied.
    #[serde(default)]
    pub planned: usize,
    /// Not run because it does not apply (skip-deploy, no destroy or dry-run action).
    #[serde(default)]
    pub not_applicable: usize,
}

/// One deployment of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentReport {
    /// `<environment>/<deployment>`.
    pub id: String,
    pub environment: String,
    pub deployment: String,
    #[serde(with = "wire::status")]
    pub status: Status,
    /// 0 when it never started.
    pub attempts: u32,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub duration_ms: u64,
    /// The exit code of the last attempt's process, when it exited.
    pub exit_code: Option<i32>,
    /// The signal number that ended the last attempt's process, when one did.
    pub signal: Option<i32>,
    /// Why it failed, was skipped or not run, in words.
    pub reason: Option<String>,
    pub log: Option<String>,
    /// The last lines of the log, masks applied.
    pub log_tail: Vec<String>,
    /// `KEY=value` outputs the deployment wrote, masks applied.
    pub outputs: BTreeMap<String, String>,
    /// The deployments of this run it waited for (for `destroy`, the reversed edges).
    pub depends_on: Vec<String>,
    /// Its working folder, kept after a failure.
    pub kept_dir: Option<String>,
}

/// The words the engine's enums are written as. Kept here, not derived on the engine's types,
/// because they are part of the published format: renaming a variant must not change a report.
mod wire {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::exec::events::{CancelReason, Status};

    pub(super) const STATUSES: [(Status, &str); 8] = [
        (Status::Succeeded, "succeeded"),
        (Status::Failed, "failed"),
        (Status::TimedOut, "timed_out"),
        (Status::Interrupted, "interrupted"),
        (Status::Skipped, "skipped"),
        (Status::NotRun, "not_run"),
        (Status::Planned, "planned"),
        (Status::NotApplicable, "not_applicable"),
    ];
    const CANCELS: [(CancelReason, &str); 5] = [
        (CancelReason::Failure, "failure"),
        (CancelReason::Deadline, "deadline"),
        (CancelReason::Terminate, "terminate"),
        (CancelReason::Interrupt, "interrupt"),
        (CancelReason::Kill, "kill"),
    ];

    /// The report's word for a status (`timed_out`, `not_run`, …).
    pub fn status_word(s: Status) -> &'static str {
        STATUSES
            .iter()
            .find(|(v, _)| *v == s)
            .map(|(_, w)| *w)
            .expect("every status has a word")
    }

    pub(super) mod status {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
            ser.serialize_str(status_word(*s))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Status, D::Error> {
            let w = String::deserialize(de)?;
            STATUSES
                .iter()
                .find(|(_, x)| *x == w)
                .map(|(v, _)| *v)
                .ok_or_else(|| D::Error::custom(format!("unknown status `{w}`")))
        }
    }

    pub(super) mod cancel {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(
            c: &Option<CancelReason>,
            ser: S,
        ) -> Result<S::Ok, S::Error> {
            match c.and_then(|c| CANCELS.iter().find(|(v, _)| *v == c)) {
                Some((_, w)) => ser.serialize_some(w),
                None => ser.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            de: D,
        ) -> Result<Option<CancelReason>, D::Error> {
            let Some(w) = Option::<String>::deserialize(de)? else {
                return Ok(None);
            };
            CANCELS
                .iter()
                .find(|(_, x)| *x == w)
                .map(|(v, _)| Some(*v))
                .ok_or_else(|| D::Error::custom(format!("unknown cancel reason `{w}`")))
        }
    }
}

pub use wire::status_word;

/// What the report needs besides the run's results: taken from the loaded repo and graph.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub command: String,
    pub ops_repo: PathBuf,
    pub selection: String,
    /// Deployment id → the deployment ids of this run it waited for.
    pub depends_on: HashMap<String, Vec<String>>,
}

impl RunInfo {
    /// Reads the run's context from the graph; `destroy` waits along reversed edges.
    pub fn from_graph(
        action: Action,
        ops_repo: &Path,
        graph: &Graph,
        selection: &Selection,
    ) -> Self {
        let reverse = action == Action::Destroy;
        let depends_on = selection
            .deployments(graph)
            .map(|i| {
                (
                    graph.node(i).id.clone(),
                    waits_for(graph, selection, i, reverse),
                )
            })
            .collect();
        RunInfo {
            command: match action {
                Action::Destroy => "destroy",
                Action::DryRun => "plan",
                Action::Deploy => "deploy",
            }
            .to_string(),
            ops_repo: ops_repo.to_path_buf(),
            selection: selection.description.clone(),
            depends_on,
        }
    }
}

/// The selected deployments a deployment waits for. Environment nodes are looked through (an
/// environment stands for its deployments); unselected deployments are taken as already done,
/// like the scheduler does.
fn waits_for(graph: &Graph, selection: &Selection, i: NodeIndex, reverse: bool) -> Vec<String> {
    let next = |n: NodeIndex| -> Vec<NodeIndex> {
        if reverse {
            graph.dependents(n).collect()
        } else {
            graph.dependencies(n).collect()
        }
    };
    let mut seen = HashSet::new();
    let mut stack = next(i);
    let mut out = Vec::new();
    while let Some(p) = stack.pop() {
        if p == i || !seen.insert(p) {
            continue;
        }
        match graph.node(p).kind {
            NodeKind::Deployment if selection.contains(p) => out.push(graph.node(p).id.clone()),
            NodeKind::Deployment => {}
            NodeKind::Environment => stack.extend(next(p)),
        }
    }
    out.sort();
    out
}

/// RFC 3339 text of a time, truncated to milliseconds.
fn time_text(t: SystemTime) -> String {
    crate::state::rfc3339(t)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Builds the report of a finished run. `exit_code` is what the process will exit with.
pub fn build(info: &RunInfo, result: &RunResult, exit_code: u8) -> RunReport {
    let deployments: Vec<DeploymentReport> = result
        .nodes
        .iter()
        .filter(|(_, is_deployment, _)| *is_deployment)
        .map(|(id, _, r)| deployment(id, r, info.depends_on.get(id).cloned().unwrap_or_default()))
        .collect();
    let mut counts = Counts {
        total: deployments.len(),
        ..Counts::default()
    };
    for d in &deployments {
        *match d.status {
            Status::Succeeded => &mut counts.succeeded,
            Status::Failed => &mut counts.failed,
            Status::TimedOut => &mut counts.timed_out,
            Status::Interrupted => &mut counts.interrupted,
            Status::Skipped => &mut counts.skipped,
            Status::NotRun => &mut counts.not_run,
            Status::Planned => &mut counts.planned,
            Status::NotApplicable => &mut counts.not_applicable,
        } += 1;
    }
    let (critical_path, critical_path_ms) = critical_path(&deployments);
    RunReport {
        report_version: REPORT_VERSION,
        run_id: result.run_id.clone(),
        command: info.command.clone(),
        ops_repo: info.ops_repo.display().to_string(),
        selection: info.selection.clone(),
        bitops_version: env!("CARGO_PKG_VERSION").to_string(),
        started: time_text(result.started),
        ended: time_text(result.started + result.elapsed),
        duration_ms: millis(result.elapsed),
        exit_code,
        cancel: result.cancel,
        signal: result.signal.map(|s| match s {
            Sig::Int => "SIGINT".to_string(),
            Sig::Term => "SIGTERM".to_string(),
            Sig::Hup => "SIGHUP".to_string(),
            Sig::Quit => "SIGQUIT".to_string(),
        }),
        run_dir: result.run_dir.display().to_string(),
        work_kept: result.work_kept.as_ref().map(|p| p.display().to_string()),
        counts,
        critical_path,
        critical_path_ms,
        deployments,
    }
}

fn deployment(id: &str, r: &NodeResult, depends_on: Vec<String>) -> DeploymentReport {
    // Ids are `<env>/<deployment>` and environment names never hold a `/`.
    let (environment, name) = id.split_once('/').unwrap_or((id, ""));
    let (exit_code, signal) = match r.exit {
        Some(ExitInfo::Code(c)) => (Some(c), None),
        Some(ExitInfo::Signal(s)) => (None, Some(s)),
        None => (None, None),
    };
    DeploymentReport {
        id: id.to_string(),
        environment: environment.to_string(),
        deployment: name.to_string(),
        status: r.status,
        attempts: r.attempts,
        started: r.started.map(time_text),
        ended: r.ended.map(time_text),
        duration_ms: millis(r.duration),
        exit_code,
        signal,
        reason: r.reason.clone(),
        log: r.log.as_ref().map(|p| p.display().to_string()),
        log_tail: r.tail.clone(),
        // Duplicate keys: the last one written wins, as for the `BITOPS_OUTPUT_*` variables.
        outputs: r.outputs.iter().cloned().collect(),
        depends_on,
        kept_dir: r.kept_dir.as_ref().map(|p| p.display().to_string()),
    }
}

/// The heaviest chain of deployments that ran (attempts > 0) along `depends_on`, by actual
/// duration. Deployments that never started weigh nothing, so they are left out rather than
/// padding the path. Ties go to the first in run order, so the result is deterministic.
pub fn critical_path(deployments: &[DeploymentReport]) -> (Vec<String>, u64) {
    let ran: Vec<usize> = (0..deployments.len())
        .filter(|&k| deployments[k].attempts > 0)
        .collect();
    let pos: HashMap<&str, usize> = ran
        .iter()
        .map(|&k| (deployments[k].id.as_str(), k))
        .collect();
    // Kahn's order over the edges between deployments that ran; the run order is not
    // necessarily topological for these edges (destroy reverses them).
    let mut indegree: HashMap<usize, usize> = ran.iter().map(|&k| (k, 0)).collect();
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for &k in &ran {
        for dep in &deployments[k].depends_on {
            if let Some(&p) = pos.get(dep.as_str()) {
                *indegree.get_mut(&k).expect("ran node") += 1;
                dependents.entry(p).or_default().push(k);
            }
        }
    }
    let mut queue: VecDeque<usize> = ran.iter().copied().filter(|k| indegree[k] == 0).collect();
    let mut best: HashMap<usize, (u64, Option<usize>)> = HashMap::new();
    while let Some(k) = queue.pop_front() {
        let own = deployments[k].duration_ms;
        let (before, prev) = deployments[k]
            .depends_on
            .iter()
            .filter_map(|d| pos.get(d.as_str()))
            .filter_map(|p| best.get(p).map(|(w, _)| (*w, *p)))
            .fold((0, None), |acc, (w, p)| {
                if w > acc.0 || (w == acc.0 && acc.1.is_none_or(|a| p < a)) {
                    (w, Some(p))
                } else {
                    acc
                }
            });
        best.insert(k, (before + own, prev));
        for &n in dependents.get(&k).map(Vec::as_slice).unwrap_or(&[]) {
            let d = indegree.get_mut(&n).expect("ran node");
            *d -= 1;
            if *d == 0 {
                queue.push_back(n);
            }
        }
    }
    let Some((&end, &(total, _))) = ran.iter().filter_map(|k| best.get_key_value(k)).fold(
        None,
        |acc: Option<(&usize, &(u64, Option<usize>))>, kv| match acc {
            Some(a) if a.1 .0 >= kv.1 .0 => Some(a),
            _ => Some(kv),
        },
    ) else {
        return (Vec::new(), 0);
    };
    let mut path = vec![deployments[end].id.clone()];
    let mut at = end;
    while let Some(prev) = best[&at].1 {
        path.push(deployments[prev].id.clone());
        at = prev;
    }
    path.reverse();
    (path, total)
}

/// Writes a report as pretty JSON, through a temporary file so a reader never sees half of it.
pub fn write(report: &RunReport, path: &Path) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    text.push('\n');
    crate::state::fsutil::write_private_atomic(path, text)
}

/// Reads a report; a newer, incompatible version is refused with a clear message.
pub fn read(path: &Path) -> io::Result<RunReport> {
    let text = std::fs::read_to_string(path)?;
    let version: Option<u64> = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        .get("report_version")
        .and_then(serde_json::Value::as_u64);
    match version {
        Some(v) if v == u64::from(REPORT_VERSION) => {}
        Some(v) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "report_version {v} is not one this bitops reads (it reads {REPORT_VERSION})"
                ),
            ))
        }
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a bitops run report (no report_version)",
            ))
        }
    }
    serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The end of every run: keeps the report in the run folder, and writes `--report` /
/// `--junit` when asked. Failures are warnings, returned for the display (which may be
/// blocked: nothing here writes to the terminal): the run's outcome stands.
pub fn finish_run(
    info: &RunInfo,
    result: &RunResult,
    exit_code: u8,
    report: Option<&Path>,
    junit: Option<&Path>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let r = build(info, result, exit_code);
    let kept = result.run_dir.join(FILE_NAME);
    if let Err(e) = write(&r, &kept) {
        warnings.push(format!(
            "warning: cannot keep the run report {}: {e}",
            kept.display()
        ));
    }
    if let Some(path) = report {
        if let Err(e) = write(&r, path) {
            warnings.push(format!(
                "warning: cannot write the report {}: {e}",
                path.display()
            ));
        }
    }
    if let Some(path) = junit {
        let xml = super::junit::render(&r);
        if let Err(e) = write_text(path, &xml) {
            warnings.push(format!(
                "warning: cannot write the JUnit report {}: {e}",
                path.display()
            ));
        }
    }
    warnings
}

/// Writes a text file, creating its folder.
pub fn write_text(path: &Path, text: &str) -> io::Result<()> {
    crate::state::fsutil::write_private(path, text)
}

/// Parses the RFC 3339 text reports hold (`2026-11-21T06:15:02.123Z`, or with a `+hh:mm`
/// offset) back into a time.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nanos = kept.parse::<u64>().ok()? * 10u64.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm; the inverse
/// of `state::civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Turns a kept report back into the engine's results, for the summary printer.
pub fn to_results(report: &RunReport) -> Vec<(String, NodeResult)> {
    report
        .deployments
        .iter()
        .map(|d| {
            let mut r = NodeResult::new(d.status);
            r.attempts = d.attempts;
            r.exit = d
                .exit_code
                .map(ExitInfo::Code)
                .or(d.signal.map(ExitInfo::Signal));
            r.started = d.started.as_deref().and_then(parse_time);
            r.ended = d.ended.as_deref().and_then(parse_time);
            r.duration = Duration::from_millis(d.duration_ms);
            r.log = d.log.as_ref().map(PathBuf::from);
            r.tail = d.log_tail.clone();
            r.reason = d.reason.clone();
            r.outputs = d
                .outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            r.kept_dir = d.kept_dir.as_ref().map(PathBuf::from);
            (d.id.clone(), r)
        })
        .collect()
}

pub use crate::ansi::strip_ansi;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn at(secs: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_000_000) + Duration::from_secs_f64(secs)
    }

    fn node(status: Status, start: f64, secs: f64, attempts: u32) -> NodeResult {
        let mut r = NodeResult::new(status);
        r.attempts = attempts;
        if attempts > 0 {
            r.started = Some(at(start));
            r.ended = Some(at(start + secs));
            r.duration = Duration::from_secs_f64(secs);
        }
        r
    }

    /// A run with a success, a failure, a skip, a timeout and a not-run, with the awkward
    /// characters a log can hold.
    pub(crate) fn sample() -> (RunInfo, RunResult) {
        let mut net = node(Status::Succeeded, 0.0, 12.5, 1);
        net.exit = Some(ExitInfo::Code(0));
        net.log = Some("/tmp/state/runs/r1/logs/net-test_terraform.log".into());
        net.outputs = vec![
            ("VPC_ID".into(), "vpc-123".into()),
            ("TOKEN".into(), "****".into()),
        ];
        net.tail = vec!["Apply complete! Resources: 3 added.".into()];
        let mut app = node(Status::Failed, 12.6, 30.25, 2);
        app.exit = Some(ExitInfo::Code(2));
        app.reason = Some("exit code 2 after 2 attempts".into());
        app.log = Some("/tmp/state/runs/r1/logs/app-test_ansible.log".into());
        app.tail = vec![
            "\u{1b}[31mfatal: [web]: FAILED! => {\"msg\": \"a < b && c > d\"}\u{1b}[0m".into(),
            "bell \u{7} and nul \u{0} and </script> and ]]> end".into(),
        ];
        app.kept_dir = Some("/tmp/state/runs/r1/work".into());
        let web = NodeResult::with_reason(Status::Skipped, "app-test/ansible failed");
        let mut dns = node(Status::TimedOut, 0.5, 60.0, 1);
        dns.exit = Some(ExitInfo::Signal(15));
        dns.reason = Some("timed out after 1m".into());
        dns.tail = vec!["waiting for the zone…".into()];
        let late = NodeResult::with_reason(Status::NotRun, "the run stopped after a failure");
        let nodes = vec![
            (
                "net-test".to_string(),
                false,
                NodeResult::new(Status::Succeeded),
            ),
            ("net-test/terraform".to_string(), true, net),
            ("dns-test/cloudformation".to_string(), true, dns),
            ("app-test/ansible".to_string(), true, app),
            ("app-test/helm".to_string(), true, web),
            ("zz-test/kubectl".to_string(), true, late),
        ];
        let result = RunResult {
            run_id: "20261118T114640Z-4242".into(),
            run_dir: "/tmp/state/runs/20261118T114640Z-4242".into(),
            nodes,
            cancel: Some(CancelReason::Failure),
            signal: None,
            started: at(0.0),
            elapsed: Duration::from_millis(61_234),
            work_kept: Some("/tmp/state/runs/r1/work".into()),
        };
        let depends_on = HashMap::from([
            (
                "app-test/ansible".to_string(),
                vec!["net-test/terraform".to_string()],
            ),
            (
                "app-test/helm".to_string(),
                vec!["app-test/ansible".to_string()],
            ),
            (
                "zz-test/kubectl".to_string(),
                vec!["dns-test/cloudformation".to_string()],
            ),
        ]);
        let info = RunInfo {
            command: "deploy".into(),
            ops_repo: "/srv/ops".into(),
            selection: "all environments".into(),
            depends_on,
        };
        (info, result)
    }

    #[test]
    fn builds_every_field() {
        let (info, result) = sample();
        let r = build(&info, &result, 1);
        assert_eq!(r.report_version, 1);
        assert_eq!(r.started, "2026-11-18T11:06:40.000Z");
        assert_eq!(r.ended, "2026-11-18T11:07:41.234Z");
        assert_eq!(r.duration_ms, 61_234);
        assert_eq!(
            r.deployments.len(),
            5,
            "environment nodes are not deployments"
        );
        assert_eq!(
            r.counts,
            Counts {
                total: 5,
                succeeded: 1,
                failed: 1,
                timed_out: 1,
                interrupted: 0,
                skipped: 1,
                not_run: 1,
                planned: 0,
                not_applicable: 0,
            }
        );
        let app = &r.deployments[2];
        assert_eq!(
            (app.environment.as_str(), app.deployment.as_str()),
            ("app-test", "ansible")
        );
        assert_eq!(
            (app.attempts, app.exit_code, app.signal),
            (2, Some(2), None)
        );
        assert_eq!(app.duration_ms, 30_250);
        assert_eq!(r.deployments[1].signal, Some(15));
        assert_eq!(r.deployments[0].outputs["VPC_ID"], "vpc-123");
        assert_eq!(r.deployments[3].started, None);
        // net (12.5 s) → app (30.25 s) = 42.75 s beats dns alone (60 s)? No: 60 s wins.
        assert_eq!(r.critical_path, vec!["dns-test/cloudformation"]);
        assert_eq!(r.critical_path_ms, 60_000);
    }

    #[test]
    fn critical_path_follows_the_heaviest_chain() {
        let d = |id: &str, ms: u64, deps: &[&str]| DeploymentReport {
            id: id.into(),
            environment: String::new(),
            deployment: String::new(),
            status: Status::Succeeded,
            attempts: 1,
            started: None,
            ended: None,
            duration_ms: ms,
            exit_code: None,
            signal: None,
            reason: None,
            log: None,
            log_tail: vec![],
            outputs: BTreeMap::new(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
            kept_dir: None,
        };
        // Listed in an order that is not topological (as for destroy).
        let ds = vec![
            d("c", 5, &["a", "b"]),
            d("a", 10, &[]),
            d("b", 3, &[]),
            d("e", 14, &[]),
            d("d", 1, &["c"]),
        ];
        assert_eq!(
            critical_path(&ds),
            (vec!["a".to_string(), "c".into(), "d".into()], 16)
        );
        assert_eq!(critical_path(&[]), (vec![], 0));
    }

    #[test]
    fn round_trips() {
        let (info, result) = sample();
        let r = build(&info, &result, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/report.json");
        write(&r, &path).unwrap();
        assert_eq!(read(&path).unwrap(), r);
    }

    #[test]
    fn refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, r#"{"report_version": 7}"#).unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("report_version 7"));
        std::fs::write(&path, "{}").unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("not a bitops run report"));
    }

    #[test]
    fn times_parse_back() {
        for secs in [0.0, 0.001, 12.5, 86_399.999, 40_000_000.25] {
            let t = at(secs);
            let text = crate::state::rfc3339(t);
            let back = parse_time(&text).unwrap();
            let diff = t.duration_since(back).unwrap();
            assert!(diff < Duration::from_millis(1), "{text}");
        }
        assert_eq!(
            parse_time("2000-03-01T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert_eq!(
            parse_time("2000-03-01T02:00:00+02:00"),
            parse_time("2000-03-01T00:00:00Z")
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn results_come_back_for_the_summary() {
        let (info, result) = sample();
        let r = build(&info, &result, 1);
        let back = to_results(&r);
        assert_eq!(back.len(), 5);
        assert_eq!(back[2].1.status, Status::Failed);
        assert_eq!(back[2].1.exit, Some(ExitInfo::Code(2)));
        assert_eq!(back[1].1.exit, Some(ExitInfo::Signal(15)));
        assert_eq!(back[2].1.duration, Duration::from_millis(30_250));
    }

    /// The schema in docs/ accepts what `build` writes, checked by a real validator.
    #[test]
    #[cfg_attr(
        missing_tool = "check-jsonschema",
        ignore = "check-jsonschema does not run here; CI fails instead of skipping"
    )]
    fn report_matches_published_schema() {
        let (info, result) = sample();
        let mut r = build(&info, &result, 1);
        // Exercise the optional fields the sample leaves empty, too.
        r.signal = Some("SIGINT".into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write(&r, &path).unwrap();
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
        if !crate::test_tools::require("check-jsonschema", &["--version"]) {
            return;
        }
        let out = std::process::Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(&schema)
            .arg(&path)
            .output()
            .expect("check-jsonschema runs");
        assert!(
            out.status.success(),
            "the report does not match docs/report.schema.json:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // And the schema is strict enough to catch a wrong status.
        let bad = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"failed\"", "\"exploded\"", 1);
        std::fs::write(&path, bad).unwrap();
        let out = std::process::Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(&schema)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "the schema accepted an unknown status"
        );
    }
}
