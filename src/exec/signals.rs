//! Signals to bitops, handled on one thread for the whole life of the process.
//!
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT are blocked in every thread (before any is started) and
//! taken with `sigwait` by a dedicated thread, so no signal is ever lost between phases:
//! * during a run, they go to the scheduler ([`subscribe`]), which forwards them to the process
//!   groups (SIGHUP and SIGQUIT are passed on as SIGTERM) and decides the exit code;
//! * at any other time (loading, waiting for `--lock-timeout`, writing reports) bitops releases
//!   the locks it holds, stops what runs and exits 128 + the signal number at once
//!   ([`super::lifetime::emergency_exit`]).
//!
//! Child processes must not inherit the block: deployments are spawned with an empty mask
//! (`process::die_with_parent`), and the watchdog blocks what it ignores itself.

use std::sync::Mutex;

use nix::sys::signal::{SigSet, Signal};
use tokio::sync::mpsc::UnboundedSender;

use super::process::Sig;

static SUBSCRIBER: Mutex<Option<UnboundedSender<Sig>>> = Mutex::new(None);

const HANDLED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    set
}

/// Blocks the handled signals and starts the thread that takes them. Call first thing in
/// `main`, before any other thread exists (threads inherit the mask of their creator).
pub fn install() {
    let set = handled_set();
    if set.thread_block().is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("bitops-signals".into())
        .spawn(move || loop {
            let Ok(signal) = set.wait() else { continue };
            let sig = match signal {
                Signal::SIGINT => Sig::Int,
                Signal::SIGHUP => Sig::Hup,
                Signal::SIGQUIT => Sig::Quit,
                _ => Sig::Term,
            };
            let delivered = SUBSCRIBER
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|tx| tx.send(sig).is_ok());
            if !delivered {
                super::lifetime::emergency_exit(sig.exit_code());
            }
        });
    if spawned.is_err() {
        // Without the thread the default actions must stay in force.
        let _ = set.thread_unblock();
    }
}

/// Sends every signal to `tx` until the returned guard is dropped.
pub fn subscribe(tx: UnboundedSender<Sig>) -> Subscription {
    *SUBSCRIBER.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    Subscription(())
}

pub struct Subscription(());

impl Drop for Subscription {
    fn drop(&mut self) {
        *SUBSCRIBER.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
