//! Deployment output on its way to the live display, with a bound on how much may wait.
//!
//! The log files get every line (see `log_sink`); the display is a courtesy that may fall
//! behind: stderr piped into a slow reader, a terminal paused with Ctrl-S, a CI runner that
//! stops reading. Lines queued for such a display would pile up without limit (1 GB of output
//! once took 7 GB of memory), so at most [`DEFAULT_BUDGET`] bytes of lines wait at any time;
//! beyond that, lines are dropped and counted, and the display says how many it missed.
//! Sending never blocks: the scheduler must go on handling signals and deadlines whatever
//! the terminal does.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use super::events::RunEvent;

/// Bytes of output lines that may wait for the display at once.
pub const DEFAULT_BUDGET: usize = 4 * 1024 * 1024;

/// What a line costs against the budget: its text and the event around it.
fn cost(line: &str) -> usize {
    line.len() + 64
}

/// Shared by the deployments (which offer lines) and the display (which takes them).
#[derive(Debug)]
pub struct LiveFeed {
    /// Whether the display shows output lines at all; when not, none is even queued.
    wants_lines: bool,
    /// Whether the display shows colours: then lines reach it with the tools' colour codes
    /// (log files never have them).
    color: bool,
    budget: usize,
    in_flight: AtomicUsize,
    dropped: AtomicU64,
}

impl LiveFeed {
    pub fn new(wants_lines: bool, color: bool, budget: usize) -> Arc<Self> {
        Arc::new(LiveFeed {
            wants_lines,
            color,
            budget,
            in_flight: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// A feed for a display that shows no output lines.
    pub fn silent() -> Arc<Self> {
        Self::new(false, false, 0)
    }

    /// Whether lines should keep their colour codes for the display.
    pub fn color(&self) -> bool {
        self.color && self.wants_lines
    }

    /// Queues one (already masked) output line for the display, unless the display does not
    /// show lines, or is so far behind that the budget is spent: then it is counted as dropped.
    pub fn offer(&self, events: &UnboundedSender<RunEvent>, id: &str, line: String) {
        if !self.wants_lines {
            return;
        }
        let c = cost(&line);
        let before = self.in_flight.fetch_add(c, Ordering::AcqRel);
        if before + c > self.budget && before > 0 {
            self.in_flight.fetch_sub(c, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let sent = events.send(RunEvent::NodeOutput {
            id: id.to_string(),
            line,
        });
        if sent.is_err() {
            self.in_flight.fetch_sub(c, Ordering::AcqRel);
        }
    }

    /// The display took `line` off the queue: its bytes no longer count.
    pub fn taken(&self, line: &str) {
        self.in_flight.fetch_sub(cost(line), Ordering::AcqRel);
    }

    /// How many lines were dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::AcqRel)
    }

    /// Bytes of lines waiting for the display now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_beyond_the_budget_are_dropped_and_counted() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = LiveFeed::new(true, false, 1000);
        for i in 0..100 {
            feed.offer(&tx, "e/d", format!("line {i:>40}"));
        }
        let mut got = Vec::new();
        while let Ok(RunEvent::NodeOutput { line, .. }) = rx.try_recv() {
            got.push(line);
        }
        assert!(!got.is_empty() && got.len() < 100, "{}", got.len());
        assert_eq!(feed.take_dropped() as usize, 100 - got.len());
        assert_eq!(feed.take_dropped(), 0);
        // Once the display catches up, lines flow again.
        for l in &got {
            feed.taken(l);
        }
        assert_eq!(feed.in_flight(), 0);
        feed.offer(&tx, "e/d", "again".into());
        assert!(matches!(rx.try_recv(), Ok(RunEvent::NodeOutput { .. })));
    }

    #[test]
    fn a_huge_line_still_passes_when_nothing_waits() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = LiveFeed::new(true, false, 10);
        feed.offer(&tx, "e/d", "x".repeat(100));
        assert!(rx.try_recv().is_ok());
        assert_eq!(feed.take_dropped(), 0);
    }

    #[test]
    fn a_display_without_lines_gets_none() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let feed = LiveFeed::silent();
        feed.offer(&tx, "e/d", "x".into());
        assert!(rx.try_recv().is_err());
        assert_eq!(feed.take_dropped(), 0);
    }
}
