//! Running a request while two threads of their own record and show it.
//!
//! - The *recorder* takes every event off the engine's channel and writes the journal at once,
//!   so `--resume` knows what happened even when nothing could be shown.
//! - The *display* is the only writer to stderr from the start of the run to its summary. It
//!   may block (a reader that does not read, a terminal paused with Ctrl-S); nothing waits for
//!   it but the very end, and that wait gives way to SIGINT/SIGTERM — and after a run that a
//!   signal stopped, to a short grace period — so bitops always exits when asked.
//!
//! Output lines reach the display through a [`LiveFeed`], which bounds what may queue up.

use std::io::Write;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::exec::events::RunEvent;
use crate::exec::live_feed::{LiveFeed, DEFAULT_BUDGET};
use crate::exec::process::Sig;
use crate::exec::run::{RunRequest, RunResult};
use crate::graph::{Graph, Selection};
use crate::report::live::Live;
use crate::state::journal::Journal;

/// After a run that a signal stopped, how long the display gets to write what is left before
/// bitops exits without it.
const DISPLAY_GRACE_AFTER_SIGNAL: Duration = Duration::from_secs(2);

/// How long the recorder gathers events after the first one before writing them to the journal
/// and handing them to the display: one wake-up of each thread per batch instead of per event.
/// With both cores running steps, every wake-up preempted a step; they were the largest part of
/// bitops' own CPU per deployment (docs/PERFORMANCE.md). A journal line is at most this late.
const EVENT_BATCH_WINDOW: Duration = Duration::from_millis(1);

#[expect(
    clippy::large_enum_variant,
    reason = "each message is moved once through a channel, like the events it carries"
)]
enum Msg {
    Event(RunEvent),
    /// Text for stderr as it is (the summary, warnings).
    Text(String),
}

/// A run's display, still open for the summary.
pub(super) struct Shown {
    runtime: tokio::runtime::Runtime,
    display: Option<std_mpsc::Sender<Msg>>,
    done: tokio::sync::oneshot::Receiver<()>,
    signals: Option<(Signal, Signal)>,
}

/// How waiting for the display ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closed {
    /// Everything was written.
    Written,
    /// The display was still blocked when the grace period after a signal ended.
    GaveUp,
    /// A signal came while waiting for a blocked display (the run itself had ended).
    Signal(Sig),
}

/// Whether the display shows output lines, and so wants them queued at all.
pub(super) fn feed_for(live: &Live) -> Arc<LiveFeed> {
    if live.shows_output_lines() {
        LiveFeed::new(true, live.color(), DEFAULT_BUDGET)
    } else {
        LiveFeed::silent()
    }
}

/// Runs `req` (built with `feed` as its `live`) with the recorder and display on their own
/// threads. `None` when the async runtime cannot start.
pub(super) fn execute_reported(
    req: RunRequest,
    graph: &Graph,
    selection: &Selection,
    mut live: Live,
    mut journal: Option<Journal>,
) -> Option<(RunResult, Shown)> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return None;
        }
    };
    // Listening from before the run: a signal that comes once it has ended is still seen.
    let signals = runtime.block_on(async {
        Some((
            signal(SignalKind::interrupt()).ok()?,
            signal(SignalKind::terminate()).ok()?,
        ))
    });
    let feed = Arc::clone(&req.live);
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let (display_tx, display_rx) = std_mpsc::channel::<Msg>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let to_display = display_tx.clone();
    let recorder = std::thread::spawn(move || {
        while let Some(first) = events_rx.blocking_recv() {
            // Cut short by the end of the run (`unpark` below), so it adds nothing there.
            std::thread::park_timeout(EVENT_BATCH_WINDOW);
            let mut batch = vec![first];
            while let Ok(ev) = events_rx.try_recv() {
                batch.push(ev);
            }
            for ev in batch {
                if let Some(j) = &mut journal {
                    j.record(&ev);
                }
                let _ = to_display.send(Msg::Event(ev));
            }
        }
    });
    std::thread::spawn(move || {
        for msg in display_rx {
            match msg {
                Msg::Event(ev) => {
                    if let RunEvent::NodeOutput { line, .. } = &ev {
                        feed.taken(line);
                    }
                    let dropped = feed.take_dropped();
                    if dropped > 0 {
                        live.dropped_lines(dropped);
                    }
                    live.event(&ev);
                }
                Msg::Text(text) => {
                    let _ = std::io::stderr().lock().write_all(text.as_bytes());
                }
            }
        }
        let _ = done_tx.send(());
    });
    let result = runtime.block_on(crate::exec::run::execute(req, graph, selection, events_tx));
    // The engine's senders are gone with the run: the recorder ends once it has written all,
    // without waiting out a batch window.
    recorder.thread().unpark();
    let _ = recorder.join();
    Some((
        result,
        Shown {
            runtime,
            display: Some(display_tx),
            done: done_rx,
            signals,
        },
    ))
}

impl Shown {
    /// Queues text for stderr after everything shown so far.
    pub(super) fn print(&self, text: impl Into<String>) {
        if let Some(d) = &self.display {
            let _ = d.send(Msg::Text(text.into()));
        }
    }

    /// Waits until everything queued is written. After a run stopped by a signal the wait is
    /// bounded; otherwise it lasts until the display is done or a signal comes.
    pub(super) fn close(mut self, stopped_by_signal: bool) -> Closed {
        // Told to stop when the run ended; its exit went on beside the reports.
        crate::exec::lifetime::reap_watchdog();
        self.display = None;
        let Shown {
            runtime,
            done,
            signals,
            ..
        } = self;
        runtime.block_on(async move {
            let grace = async {
                if stopped_by_signal {
                    tokio::time::sleep(DISPLAY_GRACE_AFTER_SIGNAL).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let signalled = async {
                match signals {
                    Some((mut int, mut term)) if !stopped_by_signal => tokio::select! {
                        _ = int.recv() => Sig::Int,
                        _ = term.recv() => Sig::Term,
                    },
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = done => Closed::Written,
                () = grace => Closed::GaveUp,
                sig = signalled => Closed::Signal(sig),
            }
        })
        // Dropping the runtime does not wait for the display thread, which may stay blocked
        // in a write until the process exits.
    }
}
