//! `deploy`/`destroy` with a shared state store: checking the store before anything starts,
//! taking the environment leases, uploading the journal and report, and fetching an earlier
//! run's journal for `--resume`. With the embedded local folder, each step is a no-op and the
//! run behaves exactly as it always did.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::load::Loaded;
use crate::cli::Common;
use crate::config::settings::EnvVars;
use crate::diagnostic::Problem;
use crate::exit_code;
use crate::state::lock::Holder;
use crate::state::store::{choose, lease, runs, State};

/// Before anything starts: the store answers and takes a write, and the outputs this run will
/// need from earlier runs are read. Either failing stops the run (exit 2) naming the URL.
pub(super) fn check(loaded: &Loaded) -> Result<(), u8> {
    let Some(store) = &loaded.state.shared else {
        return Ok(());
    };
    let origin = loaded
        .state_origin
        .as_ref()
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default();
    eprintln!("bitops: state store {}{origin}", store.url());
    let fail = |what: &str, e: String, t: Instant| {
        eprintln!(
            "error: the state store {} {what} (after {:.1}s): {e}\n  help: nothing was started; check the URL, the credentials and endpoint variables (docs/state.md)",
            store.url(),
            t.elapsed().as_secs_f64()
        );
        exit_code::CONFIG
    };
    let t = Instant::now();
    loaded
        .state
        .check_writable()
        .map_err(|e| fail("cannot be used", e, t))?;
    let needed = outside_upstream(loaded);
    loaded
        .state
        .prefetch_outputs(needed.iter().map(String::as_str))
        .map_err(|e| {
            fail(
                "did not give the saved outputs of upstream deployments",
                e,
                t,
            )
        })?;
    Ok(())
}

/// Deployments that selected ones depend on (directly or not) but that this run does not run:
/// their outputs come from the store.
fn outside_upstream(loaded: &Loaded) -> Vec<String> {
    let g = &loaded.graph;
    let mut seen = HashSet::new();
    let mut stack: Vec<_> = loaded.selection.deployments(g).collect();
    let mut out = Vec::new();
    while let Some(i) = stack.pop() {
        for d in g.dependencies(i) {
            if !seen.insert(d) {
                continue;
            }
            let n = g.node(d);
            if n.kind == crate::graph::NodeKind::Deployment && !loaded.selection.contains(d) {
                out.push(n.id.clone());
            }
            stack.push(d);
        }
    }
    out.sort();
    out
}

/// The environment leases of a shared store (`None` with the local folder, whose pid locks
/// are taken as before). Held by another run: exit 4 naming it; store failure: exit 2.
pub(super) fn lease(
    loaded: &Loaded,
    envs: &[String],
    me: &Holder,
    wait: Option<Duration>,
) -> Result<Option<lease::Leases>, u8> {
    let Some(store) = &loaded.state.shared else {
        return Ok(None);
    };
    let ttl = lease::ttl_from_env(&loaded.env).map_err(|e| {
        eprintln!("error: {e}");
        exit_code::CONFIG
    })?;
    // Said at the moment it happens, not only in the summary.
    let notify: lease::Notify = Box::new(|why: &str| {
        eprintln!("bitops: warning: {why}; no new deployment will start (running ones finish)");
    });
    match lease::acquire(store, envs, me, ttl, wait, Some(notify)) {
        Ok(l) => Ok(Some(l)),
        Err(e @ lease::LeaseError::Held { .. }) => {
            eprintln!("error: {e}");
            eprintln!("  help: wait for that run, pass --lock-timeout DURATION to wait for it, or, if it is surely gone, `bitops state unlock ENV`");
            Err(exit_code::LOCKED)
        }
        Err(e) => {
            eprintln!("error: {e}\n  help: nothing was started");
            Err(exit_code::CONFIG)
        }
    }
}

/// The environments to lock in the local folder: all of them, unless a shared store's leases
/// are the locks.
pub(super) fn local_lock_envs(loaded: &Loaded, envs: &[String]) -> Vec<String> {
    if loaded.state.shared.is_some() {
        Vec::new()
    } else {
        envs.to_vec()
    }
}

/// After the run: the report and the last of the journal go to the store, then the leases
/// are released. Failures are warnings: the run's outcome stands.
pub(super) fn finish(
    state: &State,
    result: &crate::exec::run::RunResult,
    mirror: Option<runs::JournalMirror>,
    leases: Option<lease::Leases>,
) {
    if let Some(m) = mirror {
        if let Err(e) = m.finish() {
            eprintln!(
                "warning: the journal of run {} is not in the state store: {e}",
                result.run_id
            );
        }
    }
    if let Some(store) = &state.shared {
        let local = result.run_dir.join(crate::report::run_report::FILE_NAME);
        if let Err(e) = runs::upload_report(store.as_ref(), &result.run_id, &local) {
            eprintln!(
                "warning: the report of run {} is not in the state store: {e}",
                result.run_id
            );
        }
    }
    if let Some(l) = leases {
        if let Some(why) = l.watch.lost() {
            eprintln!("warning: {why}; bitops stopped starting deployments from then on");
        }
        drop(l);
    }
}

/// `--resume RUN` with a shared store: the run's journal is fetched into the local folder
/// first, so a run started on another machine can be resumed here.
pub(super) fn fetch_for_resume(
    common: &Common,
    env: &EnvVars,
    root: &Path,
    state_dir: &Path,
    which: &str,
) -> Result<(), Problem> {
    let config = choose::from_repo_config(root)?;
    let (state, _) = choose::resolve(
        common.state.as_deref(),
        env,
        config.as_ref(),
        state_dir.to_path_buf(),
    )?;
    let Some(store) = state.shared.as_ref().map(Arc::clone) else {
        return Ok(());
    };
    runs::fetch_journals(store.as_ref(), state_dir, which).map_err(|e| {
        Problem::new(
            "bitops::resume::store",
            format!("--resume: cannot read runs from the state store: {e}"),
        )
    })
}
