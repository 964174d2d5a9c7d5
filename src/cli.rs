//! Command-line arguments (clap). Validation only, no I/O: `app` turns these into settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "bitops",
    version,
    about = "Deploy an operations repo as a dependency graph (runs BitOps v2 repos and plugins unchanged)",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what would run, in what order, with which commands; starts no process
    Plan(PlanArgs),
    /// Run the graph
    Deploy(RunArgs),
    /// Run the graph in reverse with each plugin's destroy action
    Destroy(RunArgs),
    /// Write a CI pipeline (GitHub Actions, GitLab CI, Argo Workflows) from the graph
    Export(ExportArgs),
    /// Render a finished run (summary, HTML timeline, slowest deployments)
    Report(ReportArgs),
    /// List or install plugins
    Plugins(PluginsArgs),
    /// The state store: list locks, runs and outputs; unlock an environment; show outputs
    State(crate::app::state_cmd::StateArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

/// Options every command that reads the repo shares.
#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// The operations repo [default: $BITOPS_OPS_REPO, /opt/bitops_deployment if present, or .]
    #[arg(short = 'C', long = "ops-repo", value_name = "DIR")]
    pub ops_repo: Option<PathBuf>,
    /// Environments to run: names or globs, repeatable or comma-separated [env: BITOPS_ENVIRONMENT]
    #[arg(short = 'e', long = "env", value_name = "PATTERN")]
    pub envs: Vec<String>,
    /// Run only this node (`env` or `env/deployment`); repeatable
    #[arg(long, value_name = "NODE")]
    pub only: Vec<String>,
    /// Every environment (the default, except for `destroy` and in the BitOps container, where
    /// a selection must be explicit)
    #[arg(long, conflicts_with_all = ["envs", "only"])]
    pub all: bool,
    /// Make every warning an error (legacy BitOps keys, folders that look like misnamed tools…)
    #[arg(long)]
    pub strict: bool,
    /// Add everything the selected nodes depend on
    #[arg(long)]
    pub with_deps: bool,
    /// Add everything that depends on the selected nodes
    #[arg(long)]
    pub with_dependents: bool,
    /// Only environments with files changed since this git ref (committed, staged or untracked)
    #[arg(long, value_name = "GIT_REF")]
    pub changed_since: Option<String>,
    /// Refuse to run if more than N deployments are selected
    #[arg(long, value_name = "N")]
    pub max_nodes: Option<usize>,
    /// Allow environments marked `protected: true`
    #[arg(long)]
    pub allow_protected: bool,
    /// When to use colours
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Where runs, history, locks and plugins are kept [default: <ops-repo>/.bitops]
    #[arg(
        long,
        value_name = "DIR",
        env = "BITOPS_STATE_DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,
    /// Keep locks, outputs, journals, reports and history in a shared store:
    /// s3://bucket/prefix, az://container/prefix, file:///path [env: BITOPS_STATE]
    #[arg(long = "state", value_name = "URL")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output format
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Run every deployment's own dry run (terraform plan, ansible --check, …); the options
    /// under "With --run" only matter then
    #[arg(long)]
    pub run: bool,
    /// Plan from scratch: neither use nor keep the plan cache in the state folder (a second
    /// plan of an unchanged repo replays the first; any changed, added or removed file it read
    /// makes it plan again). Also BITOPS_NO_CACHE=1; not used with --run
    #[arg(long)]
    pub no_cache: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error
    #[arg(long, requires = "run", help_heading = "With --run")]
    pub detailed_exitcode: bool,
    #[command(flatten, next_help_heading = "With --run")]
    pub exec: ExecArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For people (with --run: a table of what would change)
    Text,
    /// For machines (docs/plan-json.md); errors too are a JSON document
    Json,
    /// The graph for Graphviz (without --run)
    Dot,
    /// The graph as a Mermaid flowchart (without --run)
    Mermaid,
    /// With --run: a table and each deployment's changes, for a pull-request comment
    Markdown,
}

/// Options of commands that run deployments.
#[derive(Debug, Args, Clone, Default)]
pub struct ExecArgs {
    /// How many deployments run at once [default: 8; env: BITOPS_JOBS]
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// After a failure, keep running what does not depend on it
    #[arg(long, conflicts_with = "fail_fast")]
    pub keep_going: bool,
    /// Start nothing new after the first failure (the default)
    #[arg(long)]
    pub fail_fast: bool,
    /// Time limit per deployment (e.g. 15m) [env: BITOPS_TIMEOUT]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// Time limit for the whole run
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub deadline: Option<Duration>,
    /// Reruns of a failed deployment (at most 100) [env: BITOPS_RETRIES]
    #[arg(long, value_name = "N", value_parser = parse_retries)]
    pub retries: Option<u32>,
    /// Between SIGTERM and SIGKILL when stopping a deployment
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", default_value = "30s")]
    pub grace: Duration,
    /// Progress display
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
    /// How deployment output is shown when not on a terminal (or with --progress plain);
    /// every line is always in the deployment's log file
    #[arg(long, value_enum, default_value_t = OutputMode::Compact)]
    pub output: OutputMode,
    /// Run in the repo itself instead of the working copy in the state folder
    #[arg(long)]
    pub in_place: bool,
    /// Empty the selected environments' working folders first (local state, tool caches)
    #[arg(long, conflicts_with = "in_place")]
    pub fresh: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten, next_help_heading = "Running")]
    pub exec: ExecArgs,
    /// Write a JSON report of the run
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report of the run
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Rerun only what failed, was skipped, interrupted or never started in a run (default: the last)
    #[arg(long, value_name = "RUN", num_args = 0..=1, default_missing_value = "last")]
    pub resume: Option<String>,
    /// Wait this long for another run's lock instead of failing at once
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub lock_timeout: Option<Duration>,
    /// Remove a lock left by a run that no longer exists
    #[arg(long)]
    pub break_stale_locks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Progress {
    #[default]
    Auto,
    Bar,
    Plain,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputMode {
    /// A line when each deployment starts and ends, and the end of its log when it fails
    #[default]
    Compact,
    /// Every output line as it comes, prefixed `[env/deployment]`
    #[value(alias = "lines")]
    Stream,
    /// Each deployment's whole log when it ends (`::group::` folds on GitHub Actions)
    Grouped,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: Common,
    /// The CI system
    #[arg(long = "to", value_enum)]
    pub target: ExportTarget,
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The bitops container image the jobs run in; `none` for shell runners (bitops on PATH)
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
}

/// The image exported jobs run in unless `--image` says otherwise.
pub const DEFAULT_IMAGE: &str = "ghcr.io/bitops/bitops:latest";
/// `--image none`: jobs for shell runners, without a container image.
pub const NO_IMAGE: &str = "none";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportTarget {
    GithubActions,
    GitlabCi,
    Argo,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run id or a unique prefix of it (default: the last run with a report)
    pub run: Option<String>,
    /// The operations repo whose runs to show [default: $BITOPS_OPS_REPO, or .]
    #[arg(short = 'C', long = "ops-repo", value_name = "DIR")]
    pub ops_repo: Option<PathBuf>,
    /// Where runs are kept [default: <ops-repo>/.bitops]
    #[arg(
        long,
        value_name = "DIR",
        env = "BITOPS_STATE_DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,
    /// Read runs from this shared state store [env: BITOPS_STATE]
    #[arg(long = "state", value_name = "URL")]
    pub state: Option<String>,
    /// Write a self-contained HTML timeline of the run
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Show the slowest deployments over the recent runs
    #[arg(long)]
    pub slowest: bool,
}

#[derive(Debug, Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    pub action: PluginsAction,
}

#[derive(Debug, Subcommand)]
pub enum PluginsAction {
    /// List the plugins the repo can use and where they come from
    List(PluginsCommon),
    /// Fetch git plugins into the state folder (and, if asked, run their install scripts)
    Install(PluginsInstallArgs),
}

#[derive(Debug, Args)]
pub struct PluginsInstallArgs {
    #[command(flatten)]
    pub common: PluginsCommon,
    /// Also run each configured plugin's install script (`plugin.install.install_script`,
    /// default install.sh), as BitOps did when building its image: it may install tools on
    /// this machine
    #[arg(long)]
    pub run_install_scripts: bool,
}

#[derive(Debug, Args)]
pub struct PluginsCommon {
    /// The operations repo whose plugins to use [default: $BITOPS_OPS_REPO, or .]
    #[arg(short = 'C', long = "ops-repo", value_name = "DIR")]
    pub ops_repo: Option<PathBuf>,
    /// Where plugins are installed (under plugins/) [default: <ops-repo>/.bitops]
    #[arg(
        long,
        value_name = "DIR",
        env = "BITOPS_STATE_DIR",
        hide_env_values = true
    )]
    pub state_dir: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::reader::parse_duration(s)
}

/// At least 1 and at most 4096, like `BITOPS_JOBS` and `bitops.jobs`.
fn parse_jobs(s: &str) -> Result<usize, String> {
    use crate::config::section::MAX_JOBS;
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) if n > MAX_JOBS => Err(format!("must be at most {MAX_JOBS}")),
        Ok(n) => usize::try_from(n).map_err(|_| format!("must be at most {MAX_JOBS}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// At most 100, like `BITOPS_RETRIES` and `retries:`: a huge count is a mistake, not a wish.
fn parse_retries(s: &str) -> Result<u32, String> {
    use crate::config::section::MAX_RETRIES;
    match s.trim().parse::<u64>() {
        Ok(n) if n > MAX_RETRIES => Err(format!("must be at most {MAX_RETRIES}")),
        Ok(n) => u32::try_from(n).map_err(|_| format!("must be at most {MAX_RETRIES}")),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_and_man_page_cover_every_command() {
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "bitops",
            &mut out,
        );
        let bash = String::from_utf8(out).unwrap();
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        for cmd in ["plan", "deploy", "destroy", "export", "report", "plugins"] {
            assert!(bash.contains(cmd), "bash completion lacks {cmd}");
            assert!(man.contains(cmd), "man page lacks {cmd}");
        }
        assert!(bash.contains("--with-dependents"));
    }
}
