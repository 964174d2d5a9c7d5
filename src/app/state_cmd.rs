//! `bitops state`: what the state store holds (locks, runs, outputs), force-unlocking an
//! environment, and a deployment's last outputs (masked).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::stderr_color;
use crate::cli::ColorChoice;
use crate::config::settings::EnvVars;
use crate::diagnostic::{ConfigErrors, Problem};
use crate::exit_code;
use crate::report;
use crate::state::store::{choose, lease, State};

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub action: StateAction,
    #[arg(short = 'C', long = "ops-repo", value_name = "DIR", global = true)]
    pub ops_repo: Option<PathBuf>,
    #[arg(long, value_name = "DIR", env = "BITOPS_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// The shared state store [env: BITOPS_STATE; default: bitops.state, else the local folder]
    #[arg(long = "state", value_name = "URL", global = true)]
    pub state: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Locks (holder, age), runs, and the deployments with kept outputs
    List,
    /// Remove an environment's lock (like `terraform force-unlock`): only when its holder is
    /// surely gone, since that run may have left the environment half-deployed
    Unlock {
        /// The environment
        env: String,
        /// Do not ask (needed when not on a terminal)
        #[arg(long)]
        yes: bool,
    },
    /// A deployment's last successful outputs, masked with its environment's logging.masks
    Show {
        /// ENV/DEPLOYMENT
        node: String,
    },
}

pub fn state_command(args: &StateArgs) -> u8 {
    let env = EnvVars::from_process();
    let color = stderr_color(ColorChoice::Auto, &env);
    let fail = |p: Problem| {
        report::diagnostics::print(&ConfigErrors::single(p), color);
        exit_code::CONFIG
    };
    let root = match crate::discover::find_ops_repo(args.ops_repo.as_deref(), &env) {
        Ok(r) => r,
        Err(p) => return fail(p),
    };
    let config = match choose::from_repo_config(&root) {
        Ok(c) => c,
        Err(p) => return fail(p),
    };
    let dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| root.join(".bitops"));
    let state = match choose::resolve(args.state.as_deref(), &env, config.as_ref(), dir) {
        Ok((s, _)) => s,
        Err(p) => return fail(p),
    };
    // Names become keys and paths: only plain environment folder names are accepted.
    let name = match &args.action {
        StateAction::Unlock { env, .. } => Some(env.as_str()),
        StateAction::Show { node } => node.split_once('/').map(|(e, _)| e),
        StateAction::List => None,
    };
    if let Some(n) = name.filter(|n| !plain_name(n)) {
        eprintln!("error: `{n}` is not an environment name");
        return exit_code::CONFIG;
    }
    match &args.action {
        StateAction::List => list(&state),
        StateAction::Unlock { env: name, yes } => unlock(&state, name, *yes),
        StateAction::Show { node } => show(&state, args, node, color),
    }
}

/// `bitops report` with a shared store (flag, `BITOPS_STATE`, or the repo's `bitops.state`):
/// the store's run reports are copied into the local folder, which `report` then reads.
pub(super) fn fetch_reports(
    flag: Option<&str>,
    env: &EnvVars,
    root: Option<PathBuf>,
    state_dir: &std::path::Path,
) -> Result<(), Problem> {
    let config = match &root {
        Some(r) => choose::from_repo_config(r)?,
        None => None,
    };
    let (state, _) = choose::resolve(flag, env, config.as_ref(), state_dir.to_path_buf())?;
    let Some(store) = &state.shared else {
        return Ok(());
    };
    crate::state::store::runs::fetch_reports(store.as_ref(), state_dir).map_err(|e| {
        Problem::new(
            "bitops::report::store",
            format!("cannot read runs from the state store: {e}"),
        )
    })
}

/// A folder name as environments have: not empty, no `/`, not starting with `.` or `_`.
fn plain_name(n: &str) -> bool {
    !n.is_empty() && !n.contains(['/', '\\', '\0']) && !n.starts_with(['.', '_'])
}

fn age(t: Option<SystemTime>) -> String {
    t.and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|d| report::live::fmt_duration(std::time::Duration::from_secs(d.as_secs())))
        .unwrap_or_else(|| "?".into())
}

fn store_error(state: &State, e: impl std::fmt::Display) -> u8 {
    eprintln!(
        "error: cannot read the state store {}: {e}",
        state.describe()
    );
    exit_code::CONFIG
}

fn list(state: &State) -> u8 {
    let store = state.store();
    let mut out = format!("State store: {}\n", state.describe());
    // Only the store's own parts: the local folder also holds working copies and plugins.
    let mut keys = Vec::new();
    for prefix in ["locks/", "runs/", "outputs/"] {
        match store.list(prefix) {
            Ok(k) => keys.extend(k),
            Err(e) => return store_error(state, e),
        }
    }
    out.push_str("\nLocks:\n");
    let mut any = false;
    for l in keys.iter().filter(|l| l.key.starts_with("locks/")) {
        let name = &l.key["locks/".len()..];
        let line = if let Some(env) = name
            .strip_suffix(".json")
            .filter(|_| state.shared.is_some())
        {
            match lease::read(store.as_ref(), env) {
                Ok(Some((lease, _))) => format!(
                    "  {env:<24} {}  age {}  {}",
                    lease.holder.describe(),
                    age(lease.holder_start()),
                    match lease.remaining() {
                        Some(r) => format!("lease ends in {}s", r.as_secs()),
                        None => "lease EXPIRED (stale: the next run takes it over)".into(),
                    }
                ),
                Ok(None) => continue,
                Err(e) => format!("  {env:<24} unreadable: {e}"),
            }
        } else if let Some(env) = name
            .strip_suffix(".lock")
            .filter(|_| state.shared.is_none())
        {
            match crate::state::lock::read_holder(&crate::state::lock::lock_path(&state.dir, env)) {
                Some(h) => format!(
                    "  {env:<24} {}  age {}{}",
                    h.describe(),
                    age(l.modified),
                    if h.is_stale() {
                        "  STALE (its process is gone)"
                    } else {
                        ""
                    }
                ),
                None => format!("  {env:<24} unreadable lock file"),
            }
        } else {
            continue;
        };
        any = true;
        out.push_str(&line);
        out.push('\n');
    }
    if !any {
        out.push_str("  none\n");
    }
    out.push_str("\nRuns (newest last):\n");
    let mut runs: Vec<(String, bool)> = Vec::new();
    for l in keys.iter().filter(|l| l.key.starts_with("runs/")) {
        let mut parts = l.key["runs/".len()..].splitn(2, '/');
        let (Some(id), Some(file)) = (parts.next(), parts.next()) else {
            continue;
        };
        let report = file == crate::report::run_report::FILE_NAME;
        match runs.last_mut() {
            Some((last, r)) if last == id => *r |= report,
            _ => runs.push((id.to_string(), report)),
        }
    }
    if runs.is_empty() {
        out.push_str("  none\n");
    }
    for (id, report) in runs.iter().rev().take(20).rev() {
        out.push_str(&format!(
            "  {id}  {}\n",
            if *report {
                "finished (report kept)"
            } else {
                "no report: still running, or killed"
            }
        ));
    }
    if runs.len() > 20 {
        out.push_str(&format!("  … {} older runs\n", runs.len() - 20));
    }
    out.push_str("\nOutputs kept (last successful run of each deployment):\n");
    let outs: Vec<String> = keys
        .iter()
        .filter_map(|l| {
            let n = l.key.strip_prefix("outputs/")?.strip_suffix(".json")?;
            Some(format!(
                "  {:<40} written {} ago\n",
                n.replacen("__", "/", 1),
                age(l.modified)
            ))
        })
        .collect();
    if outs.is_empty() {
        out.push_str("  none\n");
    }
    out.extend(outs);
    let _ = std::io::stdout().write_all(out.as_bytes());
    exit_code::SUCCESS
}

fn unlock(state: &State, env: &str, yes: bool) -> u8 {
    let store = state.store();
    let (holder, key) = match &state.shared {
        Some(_) => match lease::read(store.as_ref(), env) {
            Ok(Some((l, _))) => (l.holder.describe(), crate::state::store::lock_key(env)),
            Ok(None) => {
                eprintln!(
                    "bitops: environment `{env}` is not locked in {}",
                    state.describe()
                );
                return exit_code::SUCCESS;
            }
            Err(e) => return store_error(state, e),
        },
        None => {
            let path = crate::state::lock::lock_path(&state.dir, env);
            match crate::state::lock::read_holder(&path) {
                Some(h) => (h.describe(), format!("locks/{env}.lock")),
                None if path.exists() => (
                    "an unreadable lock file".into(),
                    format!("locks/{env}.lock"),
                ),
                None => {
                    eprintln!(
                        "bitops: environment `{env}` is not locked in {}",
                        state.describe()
                    );
                    return exit_code::SUCCESS;
                }
            }
        }
    };
    eprintln!("Environment `{env}` is locked by {holder}.");
    eprintln!("Unlocking lets another run deploy it now; if that run is still going, both will.");
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("error: not on a terminal: pass --yes to unlock without asking");
            return exit_code::CONFIG;
        }
        eprint!("Unlock `{env}`? Only `yes` is accepted: ");
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim() != "yes" {
            eprintln!("bitops: left locked");
            return exit_code::FAILED;
        }
    }
    match store.delete(&key) {
        Ok(()) => {
            eprintln!("bitops: unlocked `{env}`");
            exit_code::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot unlock `{env}` in {}: {e}", state.describe());
            exit_code::CONFIG
        }
    }
}

fn show(state: &State, args: &StateArgs, node: &str, color: bool) -> u8 {
    let Some((env_name, _)) = node.split_once('/').filter(|(_, d)| plain_name(d)) else {
        eprintln!("error: `{node}` is not ENV/DEPLOYMENT");
        return exit_code::CONFIG;
    };
    // The environment's masks apply: load the repo as a command would.
    let common = crate::cli::Common {
        ops_repo: args.ops_repo.clone(),
        state_dir: args.state_dir.clone(),
        state: args.state.clone(),
        ..Default::default()
    };
    let loaded = match super::load(
        &common,
        &Default::default(),
        super::Guards::Skip,
        EnvVars::from_process(),
    ) {
        Ok(l) => l,
        Err(e) => {
            report::diagnostics::print(&e, color);
            return exit_code::CONFIG;
        }
    };
    let Some(env) = loaded.repo.environments.iter().find(|e| e.name == env_name) else {
        eprintln!(
            "error: there is no environment `{env_name}` in {}",
            loaded.repo.root.display()
        );
        return exit_code::CONFIG;
    };
    let masks: Vec<crate::mask::Mask> = env.settings.masks.iter().map(|m| m.mask.clone()).collect();
    match state.load_outputs(node) {
        Ok(Some(outs)) => {
            let mut text = format!(
                "Outputs of {node} (last successful run, from {}):\n",
                state.describe()
            );
            for (k, v) in outs {
                text.push_str(&format!(
                    "  {k} = {}\n",
                    crate::mask::apply_masks(&masks, &v)
                ));
            }
            let _ = std::io::stdout().write_all(text.as_bytes());
            exit_code::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "bitops: no outputs are kept for `{node}` in {} (it never succeeded, or wrote none)",
                state.describe()
            );
            exit_code::FAILED
        }
        Err(e) => store_error(state, e),
    }
}
