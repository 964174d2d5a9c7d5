//! The final summary of a run: every deployment's status, duration and attempts; for failures
//! the log tail and the log's path; deployments interrupted mid-run, which may hold locks.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::live::{fmt_duration, status_mark};
use crate::exec::events::{CancelReason, NodeResult, Status};

pub struct SummaryInput<'a> {
    /// Deployment results in run order.
    pub results: &'a [(String, NodeResult)],
    pub elapsed: Duration,
    pub cancel: Option<CancelReason>,
    pub run_dir: &'a Path,
    pub work_kept: Option<&'a Path>,
    pub color: bool,
}

pub fn render(s: &SummaryInput<'_>) -> String {
    let paint = |code: &str, t: &str| {
        if s.color {
            format!("\x1b[{code}m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "\nSummary");
    let width = s
        .results
        .iter()
        .map(|(id, _)| id.len())
        .max()
        .unwrap_or(10)
        .max(10);
    for (id, r) in s.results {
        let (mark, code) = status_mark(r.status);
        let dur = if r.attempts > 0 {
            fmt_duration(r.duration)
        } else {
            "-".into()
        };
        let attempts = if r.attempts > 1 {
            format!("  {} attempts", r.attempts)
        } else {
            String::new()
        };
        let why = match r.status {
            Status::Succeeded | Status::NotApplicable | Status::Planned => r
                .reason
                .clone()
                .map(|x| format!("  ({x})"))
                .unwrap_or_default(),
            _ => r
                .reason
                .clone()
                .map(|x| format!("  {x}"))
                .unwrap_or_default(),
        };
        let _ = writeln!(
            out,
            "  {} {id:<width$} {:<11} {dur:>7}{attempts}{why}",
            paint(code, mark),
            r.status.label()
        );
    }
    for (id, r) in s.results.iter().filter(|(_, r)| r.status.is_failure()) {
        let _ = writeln!(
            out,
            "\n{} {id}",
            paint("31", &format!("── {} ──", r.status.label()))
        );
        for line in &r.tail {
            let _ = writeln!(out, "  │ {line}");
        }
        if let Some(log) = &r.log {
            let _ = writeln!(out, "  full log: {}", log.display());
        }
        if let Some(dir) = &r.kept_dir {
            let _ = writeln!(out, "  working folder kept: {}", dir.display());
        }
    }
    let interrupted: Vec<&str> = s
        .results
        .iter()
        .filter(|(_, r)| r.status == Status::Interrupted)
        .map(|(id, _)| id.as_str())
        .collect();
    if !interrupted.is_empty() {
        let _ = writeln!(
            out,
            "\n{} were interrupted mid-run and may have left partial changes or held state locks: {}\n  check them (e.g. `terraform force-unlock` if a lock remains), then `bitops deploy --resume`",
            paint("33", "These deployments"),
            interrupted.join(", ")
        );
    }
    let count = |st: Status| s.results.iter().filter(|(_, r)| r.status == st).count();
    let mut parts = vec![format!("{} succeeded", count(Status::Succeeded))];
    for st in [
        Status::Planned,
        Status::NotApplicable,
        Status::Failed,
        Status::TimedOut,
        Status::Interrupted,
        Status::Skipped,
        Status::NotRun,
    ] {
        let n = count(st);
        if n > 0 {
            let label = match st {
                Status::NotApplicable => "skipped (does not apply)",
                other => other.label(),
            };
            parts.push(format!("{n} {label}"));
        }
    }
    let verdict = if s.results.iter().any(|(_, r)| !r.status.is_success()) || s.cancel.is_some() {
        paint("31", "FAILED")
    } else {
        paint("32", "OK")
    };
    let _ = writeln!(
        out,
        "\n{verdict}: {} in {}  (logs: {})",
        parts.join(", "),
        fmt_duration(s.elapsed),
        s.run_dir.join("logs").display()
    );
    if let Some(w) = s.work_kept {
        let _ = writeln!(
            out,
            "working copy (local state, tool caches; kept between runs, --fresh starts clean): {}",
            w.display()
        );
    }
    out
}
