//! The contract between the engine and everything that shows or records a run: the engine
//! sends [`RunEvent`]s and never prints.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// How a node ended.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    /// Stopped by Ctrl-C / SIGTERM while it ran: it may have been mid-apply.
    Interrupted,
    /// Not started because something it depends on did not succeed.
    Skipped,
    /// Not started because the run stopped (fail-fast, deadline, signal) before its turn.
    NotRun,
    /// Ran, but its deploy only planned (terraform's default `stack-action: plan`): nothing
    /// was applied. A success for the graph; `reason` says how to make it apply.
    Planned,
    /// Not run because it does not apply: its config skips it (`skip-deploy`), or its plugin
    /// has no action for this command (no destroy, no dry run). A success for the graph;
    /// `reason` says why.
    NotApplicable,
}

impl Status {
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::TimedOut | Status::Interrupted
        )
    }

    /// Whether dependents may go on and the run counts it as done.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Planned | Status::NotApplicable
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed out",
            Status::Interrupted => "interrupted",
            Status::Skipped => "skipped",
            Status::NotRun => "not run",
            Status::Planned => "planned only",
            Status::NotApplicable => "skipped",
        }
    }
}

/// How a process ended, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitInfo {
    Code(i32),
    Signal(i32),
}

/// The outcome of one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeResult {
    pub status: Status,
    pub attempts: u32,
    pub exit: Option<ExitInfo>,
    #[serde(skip)]
    pub started: Option<SystemTime>,
    #[serde(skip)]
    pub ended: Option<SystemTime>,
    pub duration: Duration,
    pub log: Option<PathBuf>,
    /// The last lines of the log (masked).
    pub tail: Vec<String>,
    /// Why it failed or was skipped, in words.
    pub reason: Option<String>,
    /// `KEY=value` outputs the deployment wrote (masked).
    pub outputs: Vec<(String, String)>,
    /// The working folder kept after a failure.
    pub kept_dir: Option<PathBuf>,
    /// What a dry run (`plan --run`) found.
    pub changes: Option<crate::plan::dry_run::Changes>,
}

impl NodeResult {
    pub fn new(status: Status) -> Self {
        NodeResult {
            status,
            attempts: 0,
            exit: None,
            started: None,
            ended: None,
            duration: Duration::ZERO,
            log: None,
            tail: Vec::new(),
            reason: None,
            outputs: Vec::new(),
            kept_dir: None,
            changes: None,
        }
    }

    pub fn with_reason(status: Status, reason: impl Into<String>) -> Self {
        let mut r = NodeResult::new(status);
        r.reason = Some(reason.into());
        r
    }

    /// Every string of bitops' own in the result through the mask choke point
    /// ([`crate::mask::scrub`]): the reason (it may quote a command line with a secret) and the
    /// outputs, keys as well as values. The tail is process output, masked when it was read.
    pub fn masked(mut self) -> Self {
        self.reason = self.reason.map(|r| crate::mask::scrub(&r));
        for (k, v) in &mut self.outputs {
            *k = crate::mask::scrub(k);
            *v = crate::mask::scrub(v);
        }
        if let Some(c) = &mut self.changes {
            c.summary = crate::mask::scrub(&c.summary);
        }
        self
    }
}

/// Why the run stopped starting new work; ordered by severity (escalation only goes up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    Failure,
    Deadline,
    Terminate,
    Interrupt,
    /// A second signal: running processes are killed.
    Kill,
}

#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "each event is moved once through a channel; boxing the result buys nothing"
)]
pub enum RunEvent {
    Started {
        run_id: String,
        total: usize,
        jobs: usize,
        eta: Option<Duration>,
    },
    NodeStarted {
        id: String,
        attempt: u32,
        log: Option<PathBuf>,
    },
    NodeOutput {
        id: String,
        line: String,
    },
    NodeRetry {
        id: String,
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    NodeFinished {
        id: String,
        deployment: bool,
        result: NodeResult,
    },
    Cancel {
        reason: CancelReason,
    },
    Finished {
        elapsed: Duration,
    },
}
