//! Showing a run as it happens. The display mode is decided once ([`resolve_mode`]); the
//! reporter then only consumes `RunEvent`s.
//!
//! - `Bar`: a terminal — one progress bar for the run (done/total, elapsed, ETA) and one line
//!   per running deployment with its last output line.
//! - `Compact`: CI or no terminal, by default — a line when each deployment starts and ends,
//!   and the end of its log when it fails. Its full output is in its log file.
//! - `Stream`: every output line as it comes, prefixed `[env/deployment]` (`--output stream`).
//! - `Grouped`: each deployment's whole log when it ends (in `::group::` folds on GitHub Actions).
//! - `Quiet`: only the final summary.
//!
//! Lines may be dropped on the way here when the display falls behind (see `exec::live_feed`);
//! the display says how many. Without colour, escape sequences tools print are removed.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{OutputMode, Progress};
use crate::exec::events::{CancelReason, RunEvent, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Compact,
    Stream,
    Grouped,
    Quiet,
}

/// How many lines of a failed deployment's log `Compact` shows when it ends; the summary
/// shows more.
const COMPACT_TAIL: usize = 10;

/// The pure decision table: flags, terminal, CI.
pub fn resolve_mode(progress: Progress, output: OutputMode, is_tty: bool, is_ci: bool) -> Mode {
    match progress {
        Progress::None => Mode::Quiet,
        Progress::Bar => Mode::Bar,
        Progress::Plain => plain_mode(output),
        Progress::Auto => {
            if is_tty && !is_ci {
                Mode::Bar
            } else {
                plain_mode(output)
            }
        }
    }
}

fn plain_mode(output: OutputMode) -> Mode {
    match output {
        OutputMode::Compact => Mode::Compact,
        OutputMode::Stream => Mode::Stream,
        OutputMode::Grouped => Mode::Grouped,
    }
}

pub struct Live {
    mode: Mode,
    color: bool,
    github: bool,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    running: HashMap<String, ProgressBar>,
    done: u64,
    started: Instant,
}

impl Live {
    pub fn new(mode: Mode, color: bool, github: bool) -> Self {
        Live {
            mode,
            color,
            github,
            multi: None,
            overall: None,
            running: HashMap::new(),
            done: 0,
            started: Instant::now(),
        }
    }

    /// Whether colours are shown.
    pub fn color(&self) -> bool {
        self.color
    }

    /// Whether output lines are shown as they come (and so worth sending here at all).
    pub fn shows_output_lines(&self) -> bool {
        matches!(self.mode, Mode::Bar | Mode::Stream)
    }

    /// Some output lines never reached the display because it fell behind.
    pub fn dropped_lines(&mut self, n: u64) {
        if matches!(self.mode, Mode::Stream) {
            self.println(&self.paint(
                "33",
                &format!(
                    "bitops: {n} line{} of output not shown here: the display fell behind (the logs have every line)",
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
    }

    /// A tool's line as shown: its colours only when colours are on.
    fn tool_line<'a>(&self, line: &'a str) -> std::borrow::Cow<'a, str> {
        if self.color || !line.contains('\x1b') {
            std::borrow::Cow::Borrowed(line)
        } else {
            std::borrow::Cow::Owned(crate::report::run_report::strip_ansi(line))
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
        }
    }

    pub fn event(&mut self, ev: &RunEvent) {
        match ev {
            RunEvent::Started {
                run_id,
                total,
                jobs,
                eta,
            } => {
                self.started = Instant::now();
                if self.mode == Mode::Bar {
                    let multi =
                        MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
                    let bar = multi.add(ProgressBar::new(*total as u64));
                    let eta_text = eta
                        .map(|e| format!(" (usual {})", fmt_duration(e)))
                        .unwrap_or_default();
                    bar.set_style(
                        ProgressStyle::with_template(&format!("{{bar:30.cyan/blue}} {{pos}}/{{len}} deployments  {{elapsed}}  eta {{eta}}{eta_text}  {{msg}}"))
                            .expect("static template")
                            .progress_chars("█▉░"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(250));
                    self.overall = Some(bar);
                    self.multi = Some(multi);
                }
                if self.mode != Mode::Quiet {
                    self.println(&format!(
                        "bitops run {run_id}: {total} deployments, up to {jobs} at a time"
                    ));
                }
            }
            RunEvent::NodeStarted { id, attempt, .. } => match self.mode {
                Mode::Bar => {
                    if let Some(m) = &self.multi {
                        let pb = self.running.remove(id).unwrap_or_else(|| {
                            let pb = m.add(ProgressBar::new_spinner());
                            pb.set_style(
                                ProgressStyle::with_template(
                                    "  {spinner} {prefix:.bold} {elapsed:>4} {wide_msg}",
                                )
                                .expect("static template"),
                            );
                            pb.enable_steady_tick(Duration::from_millis(120));
                            pb
                        });
                        pb.set_prefix(id.clone());
                        if *attempt > 1 {
                            pb.set_message(format!("attempt {attempt}"));
                        }
                        self.running.insert(id.clone(), pb);
                    }
                }
                Mode::Compact | Mode::Stream | Mode::Grouped => {
                    let extra = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    self.println(&format!("{} {id}{extra}", self.paint("36", "▶ start")));
                }
                Mode::Quiet => {}
            },
            RunEvent::NodeOutput { id, line } => match self.mode {
                Mode::Bar => {
                    if let Some(pb) = self.running.get(id) {
                        // Colours would upset the bar's width arithmetic.
                        let plain = crate::report::run_report::strip_ansi(line);
                        pb.set_message(plain.chars().take(200).collect::<String>());
                    }
                }
                Mode::Stream => self.println(&format!("[{id}] {}", self.tool_line(line))),
                _ => {}
            },
            RunEvent::NodeRetry {
                id,
                attempt,
                delay,
                reason,
            } => {
                if self.mode != Mode::Quiet {
                    self.println(&format!(
                        "{} {id}: {reason}; attempt {attempt} in {}",
                        self.paint("33", "↻ retry"),
                        fmt_duration(*delay)
                    ));
                }
            }
            RunEvent::NodeFinished {
                id,
                deployment,
                result,
            } => {
                if !deployment {
                    return;
                }
                if let Some(pb) = self.running.remove(id) {
                    pb.finish_and_clear();
                    if let Some(m) = &self.multi {
                        m.remove(&pb);
                    }
                }
                if matches!(
                    result.status,
                    Status::Succeeded
                        | Status::Planned
                        | Status::Failed
                        | Status::TimedOut
                        | Status::Interrupted
                ) {
                    self.done += 1;
                }
                if let Some(o) = &self.overall {
                    o.inc(1);
                }
                if self.mode == Mode::Quiet {
                    return;
                }
                if self.mode == Mode::Grouped {
                    if let Some(log) = &result.log {
                        self.print_log(id, result.status, log);
                    }
                }
                let (mark, code) = status_mark(result.status);
                let detail = match result.status {
                    Status::Succeeded => format!("in {}", fmt_duration(result.duration)),
                    Status::Skipped | Status::NotRun | Status::NotApplicable => {
                        result.reason.clone().unwrap_or_default()
                    }
                    Status::Planned => format!(
                        "in {}: {}",
                        fmt_duration(result.duration),
                        result.reason.clone().unwrap_or_default()
                    ),
                    _ => format!(
                        "after {}: {}",
                        fmt_duration(result.duration),
                        result.reason.clone().unwrap_or_default()
                    ),
                };
                self.println(&format!(
                    "{} {id} {} {detail}",
                    self.paint(code, mark),
                    result.status.label()
                ));
                if self.mode == Mode::Compact && result.status.is_failure() {
                    let tail = &result.tail[result.tail.len().saturating_sub(COMPACT_TAIL)..];
                    for l in tail {
                        self.println(&format!("  │ {}", self.tool_line(l)));
                    }
                    if let Some(log) = &result.log {
                        self.println(&format!("  full log: {}", log.display()));
                    }
                }
            }
            RunEvent::Cancel { reason } => {
                let text = match reason {
                    CancelReason::Failure => "a deployment failed: starting nothing new, letting running ones finish (fail-fast)",
                    CancelReason::Deadline => "the run's deadline passed: stopping running deployments",
                    CancelReason::Interrupt | CancelReason::Terminate => {
                        "interrupted: passing the signal on and waiting for running deployments to stop (again to kill them)"
                    }
                    CancelReason::Kill => "second signal: killing running deployments",
                };
                if self.mode != Mode::Quiet || *reason >= CancelReason::Interrupt {
                    self.println(&self.paint("33", &format!("bitops: {text}")));
                }
            }
            RunEvent::Finished { .. } => {
                for (_, pb) in self.running.drain() {
                    pb.finish_and_clear();
                }
                if let Some(o) = self.overall.take() {
                    o.finish_and_clear();
                }
                if let Some(m) = self.multi.take() {
                    let _ = m.clear();
                }
            }
        }
    }
}

impl Live {
    /// A deployment's whole log, read line by line (a log may be far larger than memory).
    fn print_log(&self, id: &str, status: Status, log: &std::path::Path) {
        use std::io::BufRead;
        if self.github {
            self.println(&format!("::group::{id} ({})", status.label()));
        } else {
            self.println(&format!("──── {id} ────"));
        }
        if let Ok(file) = std::fs::File::open(log) {
            let mut reader = std::io::BufReader::new(file);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&buf);
                self.println(&self.tool_line(text.trim_end_matches('\n')));
                buf.clear();
            }
        }
        if self.github {
            self.println("::endgroup::");
        }
    }
}

pub fn status_mark(s: Status) -> (&'static str, &'static str) {
    match s {
        Status::Succeeded => ("✔", "32"),
        Status::Failed | Status::TimedOut => ("✘", "31"),
        Status::Interrupted => ("■", "31"),
        Status::Skipped | Status::NotRun | Status::NotApplicable => ("○", "33"),
        // Ran fine, but nothing was applied: not the green of a deployment that did its job.
        Status::Planned => ("◐", "33"),
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let s = d.as_secs();
        if s < 3600 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_table() {
        use OutputMode::*;
        use Progress as P;
        let cases = [
            (P::Auto, Compact, true, false, Mode::Bar),
            (P::Auto, Compact, true, true, Mode::Compact),
            (P::Auto, Compact, false, false, Mode::Compact),
            (P::Auto, Stream, false, false, Mode::Stream),
            (P::Auto, Grouped, false, true, Mode::Grouped),
            (P::Plain, Stream, true, false, Mode::Stream),
            (P::Plain, Compact, true, false, Mode::Compact),
            (P::Bar, Compact, false, true, Mode::Bar),
            (P::None, Grouped, true, false, Mode::Quiet),
        ];
        for (p, o, tty, ci, want) in cases {
            assert_eq!(
                resolve_mode(p, o, tty, ci),
                want,
                "{p:?} {o:?} tty={tty} ci={ci}"
            );
        }
    }
}
