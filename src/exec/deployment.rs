//! One deployment, start to end: its working copy, its own environment variables (nothing
//! leaks from one deployment to another), before-hooks, the plugin's steps, after-hooks, its
//! outputs, retries with backoff, and its time limit — all written to its log as it happens.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use super::events::{ExitInfo, NodeResult, RunEvent, Status};
use super::log_sink::{LogSink, Mask};
use super::outputs::{self, Outputs};
use super::process::{self, CommandSpec, Limits, ProcessEnd, StopRequest};
use super::scheduler::Executor;
use super::workspace::Workspace;
use crate::model::Repo;
use crate::plugins::step::{Action, Capture, Context, Prepared, Step};
use crate::plugins::Registry;

/// A deployment as the runner needs it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub env: usize,
    pub dep: usize,
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// Declared inputs (`inputs:`), resolved against the graph.
    pub inputs: Vec<crate::graph::inputs::Wire>,
}

/// Everything shared by the deployments of one run.
pub struct Runner {
    pub repo: Arc<Repo>,
    pub registry: Arc<Registry>,
    pub workspace: Arc<Workspace>,
    pub run_id: String,
    /// The user's environment, the base of every deployment's environment.
    pub base_env: BTreeMap<String, String>,
    pub action: Action,
    pub fail_fast: bool,
    pub grace: Duration,
    /// Indexed like the schedule; `None` for environment nodes.
    pub jobs: Vec<Option<Job>>,
    pub masks: Vec<Arc<[Mask]>>,
    pub events: mpsc::UnboundedSender<RunEvent>,
    /// Output lines for the live display: never blocks, drops what a slow display cannot take.
    pub live: Arc<super::live_feed::LiveFeed>,
    /// Outputs reaching each deployment from upstream (this run's, else the last saved).
    pub upstream: super::upstream::Upstream,
    /// First retry delay; doubled each time, at most 60 s.
    pub backoff: Duration,
    /// `$BITOPS_PLUGINS_DIR`: the run's folder of links to every configured plugin, or why it
    /// could not be made (then every deployment fails with that reason).
    pub plugins_dir: Result<PathBuf, String>,
    /// The environment leases of a shared state store: once lost, nothing new starts.
    pub lease: Option<Arc<crate::state::store::lease::Watch>>,
}

/// The runner as the scheduler's executor: each node task holds its own `Arc` of it.
pub struct RunnerHandle(pub Arc<Runner>);

impl Executor for RunnerHandle {
    fn run(
        &self,
        node: usize,
        stop: watch::Receiver<StopRequest>,
    ) -> Pin<Box<dyn Future<Output = NodeResult> + Send>> {
        let this = Arc::clone(&self.0);
        Box::pin(async move { this.run_job(node, stop).await })
    }
}

impl Runner {
    async fn run_job(
        self: Arc<Self>,
        node: usize,
        mut stop: watch::Receiver<StopRequest>,
    ) -> NodeResult {
        let job = self.jobs[node]
            .clone()
            .expect("the scheduler only runs deployment nodes");
        if let Some(why) = self.lease.as_ref().and_then(|l| l.lost()) {
            return NodeResult::with_reason(
                Status::NotRun,
                format!("not started: {why}; no new deployment starts without the lock"),
            );
        }
        let env = &self.repo.environments[job.env];
        let dep = &env.deployments[job.dep];
        let log_path = self.workspace.log_path(&env.name, &dep.name);
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let mut sink = match LogSink::create(&log_path, Arc::clone(&self.masks[job.env]), 40) {
            Ok(s) => s.display_color(self.live.color()),
            Err(e) => {
                let mut r = NodeResult::with_reason(
                    Status::Failed,
                    format!("cannot write the log {}: {e}", log_path.display()),
                );
                r.started = Some(started_at);
                r.ended = Some(SystemTime::now());
                return r;
            }
        };
        // Inputs are known before the first attempt: a missing one fails the deployment before
        // anything of it starts (no retry would make the producer's outputs appear).
        let inputs = match self.input_values(&job, &mut sink) {
            Ok(v) => v,
            Err(reason) => {
                let _ = self.events.send(RunEvent::NodeStarted {
                    id: job.id.clone(),
                    attempt: 1,
                    log: Some(log_path.clone()),
                });
                let mut r = self.fail(&mut sink, reason);
                r.attempts = 1;
                r.started = Some(started_at);
                r.ended = Some(SystemTime::now());
                r.duration = clock.elapsed();
                r.log = Some(log_path);
                r.tail = sink.tail();
                return r;
            }
        };
        let mut attempt = 0u32;
        let mut delay = self.backoff;
        let result = loop {
            attempt += 1;
            let _ = self.events.send(RunEvent::NodeStarted {
                id: job.id.clone(),
                attempt,
                log: Some(log_path.clone()),
            });
            if attempt > 1 {
                sink.note(&format!("--- attempt {attempt} of {} ---", job.retries + 1));
            }
            let outcome = self.attempt(&job, &inputs, &mut sink, &mut stop).await;
            let retry = outcome.status == Status::Failed
                && attempt <= job.retries
                && *stop.borrow() == StopRequest::None;
            if !retry {
                break (outcome, attempt);
            }
            let reason = outcome.reason.clone().unwrap_or_else(|| "failed".into());
            sink.note(&format!(
                "bitops: {reason}; retrying in {}",
                humantime::format_duration(delay)
            ));
            let _ = self.events.send(RunEvent::NodeRetry {
                id: job.id.clone(),
                attempt: attempt + 1,
                delay,
                reason: crate::mask::scrub(&reason),
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() != StopRequest::None {
                let mut r = outcome;
                r.status = Status::Interrupted;
                r.reason = Some("interrupted while waiting to retry".into());
                break (r, attempt);
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        };
        let (mut r, attempts) = result;
        r.attempts = attempts;
        if r.status == Status::TimedOut {
            let limit = job
                .timeout
                .map(|t| humantime::format_duration(t).to_string())
                .unwrap_or_else(|| "its time limit".into());
            r.reason = Some(format!(
                "timed out after {limit} ({})",
                r.reason.as_deref().unwrap_or("")
            ));
            sink.note(&format!(
                "bitops: {}",
                r.reason.as_deref().unwrap_or_default()
            ));
        }
        if matches!(r.status, Status::Succeeded | Status::Planned) && r.exit.is_none() {
            r.exit = Some(ExitInfo::Code(0));
        }
        r.started = Some(started_at);
        r.ended = Some(SystemTime::now());
        r.duration = clock.elapsed();
        r.log = Some(log_path);
        r.tail = sink.tail();
        if let Some(e) = sink.write_error() {
            r.reason
                .get_or_insert_with(|| format!("writing the log failed: {e}"));
        }
        // A dry run changed nothing: downstream dry runs see the last real outputs instead.
        if r.status.is_success() && self.action != Action::DryRun {
            if let Err(e) = self.upstream.keep(&job.id, &r.outputs) {
                sink.note(&format!(
                    "bitops: could not keep outputs in the state store: {e}"
                ));
            }
            self.upstream.record(&job.id, &r.outputs);
        } else if !r.status.is_success() && !self.workspace.in_place {
            r.kept_dir = Some(self.workspace.tempdir.join(&env.name).join(&dep.name));
        }
        // Outputs (keys and values) and the reason are masked by the scheduler as the result
        // leaves the engine (`NodeResult::masked`).
        r
    }

    /// The environment a deployment runs with: the user's variables, BitOps' variables
    /// (reference §5.2–5.3) and the outputs of everything upstream.
    fn environment(
        &self,
        job: &Job,
        env_dir: &Path,
        plugin_dir: Option<&Path>,
    ) -> (BTreeMap<String, String>, PathBuf, PathBuf) {
        let env = &self.repo.environments[job.env];
        let dep = &env.deployments[job.dep];
        let ws = &self.workspace;
        let tool_dir = env_dir.join(&dep.name);
        let mut vars = self.base_env.clone();
        let state = ws.state_dir.display().to_string();
        let plugins_dir = match &self.plugins_dir {
            Ok(d) => d.clone(),
            Err(_) => ws.run_dir.join("plugins"),
        };
        let set = |vars: &mut BTreeMap<String, String>, k: &str, v: String| {
            vars.insert(k.to_string(), v);
        };
        set(
            &mut vars,
            "BITOPS_TEMPDIR",
            ws.tempdir.display().to_string(),
        );
        set(&mut vars, "BITOPS_ENVROOT", env_dir.display().to_string());
        set(&mut vars, "BITOPS_DIR", state.clone());
        set(&mut vars, "BITOPS_SCRIPTS_DIR", format!("{state}/scripts"));
        // Every configured plugin is `$BITOPS_PLUGINS_DIR<name>`, with BitOps' trailing slash.
        set(
            &mut vars,
            "BITOPS_PLUGINS_DIR",
            crate::plugins::links::plugins_dir_var(&plugins_dir),
        );
        set(
            &mut vars,
            "BITOPS_FAIL_FAST",
            if self.fail_fast { "True" } else { "False" }.into(),
        );
        // In the run folder, not the working copy: `bitops plan` shows the same path (as
        // `<run>/.kube/config`), and it is never inside the repo, even with `--in-place`.
        set(
            &mut vars,
            "BITOPS_KUBE_CONFIG_FILE",
            crate::plan::preview::kube_config_file(&ws.run_dir.display().to_string()),
        );
        set(
            &mut vars,
            "BITOPS_DEFAULT_ROOT_DIR",
            ws.default_folder.clone(),
        );
        set(&mut vars, "BITOPS_ENVIRONMENT", env.name.clone());
        set(&mut vars, "ENVIRONMENT", env.name.clone());
        let own_dir = plugin_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| plugins_dir.join(&dep.plugin))
            .display()
            .to_string();
        set(&mut vars, "BITOPS_INSTALLED_PLUGIN_DIR", own_dir.clone());
        // BitOps read `BITOPS_PLUGIN_DIR` from the environment, else `plugins.plugin_dir`; by
        // default it is the plugin's own folder, where the official helm and cloudformation
        // plugins look for their scripts (`$BITOPS_PLUGIN_DIR/scripts`).
        if !self.base_env.contains_key("BITOPS_PLUGIN_DIR") {
            let setting = self
                .repo
                .config
                .plugin_dir
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or(own_dir);
            set(&mut vars, "BITOPS_PLUGIN_DIR", setting);
        }
        set(
            &mut vars,
            "BITOPS_OPSREPO_ENVIRONMENT_DIR",
            tool_dir.display().to_string(),
        );
        set(&mut vars, "BITOPS_PLUGIN_NAME", dep.plugin.clone());
        set(
            &mut vars,
            "BITOPS_OPSREPO_ENV_FILE",
            tool_dir.join("ENV_FILE").display().to_string(),
        );
        set(&mut vars, "BITOPS_DEPLOYMENT", dep.name.clone());
        set(&mut vars, "BITOPS_RUN_ID", self.run_id.clone());
        set(
            &mut vars,
            "BITOPS_ACTION",
            match self.action {
                Action::Deploy => "deploy",
                Action::Destroy => "destroy",
                Action::DryRun => "dry-run",
            }
            .into(),
        );
        // Flat names (`env__deployment`): one folder for the run, not one per environment.
        let output_file = ws
            .outputs_dir()
            .join(format!("{}__{}.env", env.name, dep.name));
        let inputs_file = ws
            .outputs_dir()
            .join(format!("{}__{}.inputs.json", env.name, dep.name));
        set(
            &mut vars,
            "BITOPS_OUTPUT_FILE",
            output_file.display().to_string(),
        );
        set(
            &mut vars,
            "BITOPS_INPUTS_JSON",
            inputs_file.display().to_string(),
        );
        (vars, output_file, inputs_file)
    }

    /// The values of the deployment's declared inputs, from what it sees upstream. A deploy
    /// fails on a missing one; a dry run or destroy goes on without it (a dry run previews
    /// with the last real outputs, which a never-deployed producer does not have), saying so.
    fn input_values(&self, job: &Job, sink: &mut LogSink) -> Result<Vec<(String, String)>, String> {
        if job.inputs.is_empty() {
            return Ok(Vec::new());
        }
        let upstream = self.upstream.inputs(&job.id);
        let mut out = Vec::with_capacity(job.inputs.len());
        let mut missing = Vec::new();
        for w in &job.inputs {
            match upstream.get(&w.producer).and_then(|o| o.get(&w.output)) {
                Some(v) => {
                    sink.note(&format!("bitops: input {} <- {}", w.name, w.reference()));
                    out.push((w.name.clone(), v.clone()));
                }
                None => missing.push(crate::graph::inputs::missing_message(
                    w,
                    upstream.get(&w.producer),
                )),
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        if self.action == Action::Deploy {
            return Err(missing.join("; "));
        }
        for m in &missing {
            sink.note(&format!("bitops: {m}; going on without it"));
        }
        Ok(out)
    }

    async fn attempt(
        &self,
        job: &Job,
        inputs: &[(String, String)],
        sink: &mut LogSink,
        stop: &mut watch::Receiver<StopRequest>,
    ) -> NodeResult {
        let env = &self.repo.environments[job.env];
        let dep = &env.deployments[job.dep];
        // Checked: a deadline past the clock's range is no deadline, never a panic (durations
        // are capped when read, so this is the second line of defence).
        let deadline = job.timeout.and_then(|t| Instant::now().checked_add(t));
        if let Err(e) = &self.plugins_dir {
            return self.fail(sink, format!("preparing $BITOPS_PLUGINS_DIR: {e}"));
        }

        let ws = Arc::clone(&self.workspace);
        let env_name = env.name.clone();
        // Usually made ahead: then no hand-over to a blocking thread and back (two thread
        // wake-ups on the path from one deployment to the next).
        let ready = ws.env_dir_if_ready(&env_name);
        // Refreshing the working copy is file work on a blocking thread: the deployment still
        // answers its stop request and its time limit while it goes on.
        let refresh = async move {
            match ready {
                Some(r) => Ok(r),
                None => tokio::task::spawn_blocking(move || ws.env_dir(&env_name)).await,
            }
        };
        let limit = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let stopped = async {
            while *stop.borrow_and_update() == StopRequest::None {
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let env_dir = tokio::select! {
            r = refresh => match r {
                Ok(Ok(d)) => d,
                Ok(Err(e)) => return self.fail(sink, format!("preparing the working copy: {e}")),
                Err(e) => return self.fail(sink, format!("preparing the working copy: {e}")),
            },
            () = stopped => {
                sink.note("bitops: stopped while preparing the working copy");
                return NodeResult::with_reason(
                    Status::Interrupted,
                    "interrupted while preparing the working copy".to_string(),
                );
            }
            () = limit => {
                return NodeResult::with_reason(
                    Status::TimedOut,
                    "while preparing the working copy".to_string(),
                );
            }
        };
        let plugin_dir = self.registry.plugin_dir(&dep.plugin);
        let (mut vars, output_file, inputs_file) =
            self.environment(job, &env_dir, plugin_dir.as_deref());
        let upstream = self.upstream.inputs(&job.id);
        for (id, outs) in &upstream {
            let (e, d) = id.split_once('/').unwrap_or((id, ""));
            for (k, v) in outs {
                vars.insert(outputs::variable_name(e, d, k), v.clone());
            }
        }
        // The output file is the plugin's to create (a missing one means no outputs). The
        // inputs file is written only when there is something upstream: on wide graphs of
        // small deployments every file created shows in the per-deployment cost.
        if let Some(parent) = output_file.parent() {
            let _ = crate::state::fsutil::private_dir(parent);
        }
        // Not created here: on wide graphs of small deployments every file created shows in the
        // per-deployment cost (an inode allocated per step). The folder is 0700, and the file a
        // plugin creates is made 0600 when it is read back. What an earlier attempt (a retry)
        // wrote is not this attempt's output.
        let _ = std::fs::remove_file(&output_file);
        // Likewise terraform's saved plan (it holds every value of the plan): terraform
        // truncates an existing file and keeps its mode.
        if dep.plugin == "terraform" {
            let _ = crate::state::fsutil::write_private(&output_file.with_extension("tfplan"), "");
        }
        let inputs_file = if upstream.is_empty() {
            self.workspace.no_inputs_file()
        } else {
            let _ = crate::state::fsutil::write_private(
                &inputs_file,
                serde_json::to_vec_pretty(&upstream).expect("string maps serialize"),
            );
            inputs_file
        };
        vars.insert(
            "BITOPS_INPUTS_JSON".into(),
            inputs_file.display().to_string(),
        );

        let tool_dir = env_dir.join(&dep.name);
        // The working copy's file is already merged with `_default`'s, so its spans are its own.
        let tool_config = match crate::plugins::read_tool_config(
            &tool_dir,
            &format!("{}/{}", env.name, dep.name),
        ) {
            Ok(c) => c,
            Err(p) => return self.fail(sink, p.to_string()),
        };
        let default_dir = self
            .workspace
            .repo_root
            .join(&self.workspace.default_folder)
            .join(&dep.name);
        let ctx = Context {
            environment: &env.name,
            deployment: &dep.name,
            plugin: &dep.plugin,
            tool_dir: tool_dir.clone(),
            default_dir: default_dir.is_dir().then_some(default_dir),
            tool_config: tool_config.as_ref().map(|(n, _)| n),
            tool_config_name: format!("{}/{}/bitops.config.yaml", env.name, dep.name),
            tool_config_file: tool_config.as_ref().map(|(_, f)| f),
            env: &vars,
            action: self.action,
        };
        let prepared: Prepared = match self.registry.prepare(&ctx) {
            Ok(p) => p,
            Err(problems) => {
                let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return self.fail(sink, text.join("; "));
            }
        };
        if let Some(why) = &prepared.skip {
            sink.note(&format!("bitops: skipped: {why}"));
            return NodeResult::with_reason(Status::NotApplicable, why.clone());
        }
        let mut prepared = prepared;
        let builtin = plugin_dir.is_none().then_some(dep.plugin.as_str());
        if let Err(e) = crate::plugins::inputs::apply(&mut prepared, builtin, inputs) {
            return self.fail(sink, format!("inputs: {e}"));
        }
        vars.extend(prepared.exports.clone());
        for k in &prepared.unset {
            vars.remove(k);
        }

        let mut captured: Outputs = Vec::new();
        let mut changes: Option<crate::plan::dry_run::Changes> = None;
        // Before hooks, the plugin's steps, after hooks, in one sequence: the first failure
        // ends the deployment. After-deploy hooks check or announce a deployment; a dry run
        // deployed nothing, so they do not run then.
        let hook = |folder: &str, name: &str, what: &str| {
            let path = tool_dir.join(folder).join(name);
            (
                Step::new(["bash".to_string(), path.display().to_string()], &tool_dir),
                format!("{what} {name}"),
            )
        };
        let mut sequence: Vec<(Step, String)> = Vec::new();
        if prepared.before_hooks {
            sequence.extend(
                dep.hooks
                    .before
                    .iter()
                    .map(|h| hook(crate::model::BEFORE_HOOKS, h, "before hook")),
            );
        }
        sequence.extend(prepared.steps.iter().map(|s| (s.clone(), String::new())));
        if prepared.after_hooks && self.action != Action::DryRun {
            sequence.extend(
                dep.hooks
                    .after
                    .iter()
                    .map(|h| hook(crate::model::AFTER_HOOKS, h, "after hook")),
            );
        }
        for (step, what) in &sequence {
            let found = (&mut captured, &mut changes);
            if let Some(r) = self
                .run_step(&job.id, step, &vars, deadline, sink, stop, found, what)
                .await
            {
                return r;
            }
        }
        let mut result = match &prepared.planned_only {
            Some(how) => {
                sink.note(&format!("bitops: planned only: {how}"));
                NodeResult::with_reason(Status::Planned, how.clone())
            }
            None => NodeResult::new(Status::Succeeded),
        };
        // Made by the plugin, so hostile: a FIFO there must not block bitops, nor a file of
        // gigabytes fill its memory.
        let written = match crate::discover::files::read_regular_private(
            &output_file,
            outputs::MAX_OUTPUT_FILE_BYTES,
        ) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return self.fail(sink, format!("$BITOPS_OUTPUT_FILE: cannot read it: {e}")),
        };
        match outputs::parse_bytes(&written) {
            Ok(o) => {
                for (k, v) in o {
                    captured.retain(|(c, _)| *c != k);
                    captured.push((k, v));
                }
            }
            Err(e) => return self.fail(sink, format!("$BITOPS_OUTPUT_FILE: {e}")),
        }
        // The producer fails for outputs its dependents could not be given, not they.
        let (env_name, dep_name) = job.id.split_once('/').unwrap_or((&job.id, ""));
        if let Err(e) = outputs::validate(env_name, dep_name, &captured) {
            return self.fail(sink, format!("outputs: {e}"));
        }
        result.outputs = captured;
        result.changes = changes;
        result
    }

    fn fail(&self, sink: &mut LogSink, reason: String) -> NodeResult {
        sink.note(&format!("bitops: {reason}"));
        NodeResult::with_reason(Status::Failed, reason)
    }

    /// Runs one step (with its fallback and failure handlers). `None` means go on.
    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        id: &str,
        step: &Step,
        vars: &BTreeMap<String, String>,
        deadline: Option<Instant>,
        sink: &mut LogSink,
        stop: &mut watch::Receiver<StopRequest>,
        found: (&mut Outputs, &mut Option<crate::plan::dry_run::Changes>),
        what: &str,
    ) -> Option<NodeResult> {
        let (captured, changes) = found;
        let label = if what.is_empty() {
            step.display()
        } else {
            format!("{what}: {}", step.display())
        };
        let (end, stdout) = self
            .run_process(id, step, vars, deadline, sink, stop, &label)
            .await;
        let ok = match &end {
            ProcessEnd::Exited(c) => *c == 0 || step.ok_codes.contains(c),
            _ => false,
        };
        if ok {
            match step.capture {
                Capture::TerraformOutputs => match outputs::from_terraform_json(&stdout) {
                    Ok(o) => captured.extend(o),
                    Err(e) => return Some(self.fail(sink, e)),
                },
                Capture::CloudFormationOutputs => {
                    match outputs::from_cloudformation_json(&stdout) {
                        Ok(o) => captured.extend(o),
                        Err(e) => return Some(self.fail(sink, e)),
                    }
                }
                Capture::DryRunSummary(tool) => {
                    let code = if let ProcessEnd::Exited(c) = end {
                        c
                    } else {
                        0
                    };
                    let found = crate::plan::dry_run::parse(tool, &stdout, code);
                    // Several charts or steps: any change counts, summaries add up.
                    *changes = Some(match changes.take() {
                        None => found,
                        Some(mut prev) => {
                            prev.changed = match (prev.changed, found.changed) {
                                (Some(true), _) | (_, Some(true)) => Some(true),
                                (Some(false), Some(false)) => Some(false),
                                _ => None,
                            };
                            prev.summary = format!("{}; {}", prev.summary, found.summary);
                            prev
                        }
                    });
                }
                Capture::None => {}
            }
            return None;
        }
        match end {
            ProcessEnd::TimedOut { .. } => {
                // The deployment's limit is added by `run_job`, which knows it.
                let r = NodeResult::with_reason(Status::TimedOut, format!("during {label}"));
                return Some(r);
            }
            ProcessEnd::Stopped { request, status } => {
                let mut r = NodeResult::with_reason(
                    Status::Interrupted,
                    format!("interrupted during {label}"),
                );
                r.exit = status.map(ExitInfo::Code);
                let how = match request {
                    StopRequest::Forward(process::Sig::Int) => {
                        "stopped by Ctrl-C (SIGINT passed on)"
                    }
                    StopRequest::Forward(_) => "stopped by SIGTERM (passed on)",
                    StopRequest::Kill => "killed (SIGKILL)",
                    StopRequest::None => "stopped",
                };
                sink.note(&format!("bitops: {how} during {label}"));
                return Some(r);
            }
            _ => {}
        }
        if let Some(fb) = &step.fallback {
            return Box::pin(self.run_step(
                id,
                fb,
                vars,
                deadline,
                sink,
                stop,
                (captured, changes),
                what,
            ))
            .await;
        }
        if step.may_fail {
            sink.note(&format!(
                "bitops: {label} {end}; going on (this step may fail)"
            ));
            return None;
        }
        for handler in &step.on_failure {
            let (h_end, _) = self
                .run_process(
                    id,
                    handler,
                    vars,
                    deadline,
                    sink,
                    stop,
                    &format!("on failure: {}", handler.display()),
                )
                .await;
            if !h_end.success() {
                sink.note(&format!(
                    "bitops: failure handler {} {h_end}",
                    handler.display()
                ));
            }
        }
        let mut r = NodeResult::with_reason(Status::Failed, format!("{label} {end}"));
        r.exit = match end {
            ProcessEnd::Exited(c) => Some(ExitInfo::Code(c)),
            ProcessEnd::Signaled(s) => Some(ExitInfo::Signal(s)),
            _ => None,
        };
        sink.note(&format!(
            "bitops: {}",
            r.reason.as_deref().unwrap_or_default()
        ));
        Some(r)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_process(
        &self,
        id: &str,
        step: &Step,
        vars: &BTreeMap<String, String>,
        deadline: Option<Instant>,
        sink: &mut LogSink,
        stop: &mut watch::Receiver<StopRequest>,
        label: &str,
    ) -> (ProcessEnd, String) {
        sink.note(&format!("$ {label}"));
        let timeout = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => Some(left),
                None => {
                    return (
                        ProcessEnd::TimedOut {
                            after: Duration::ZERO,
                        },
                        String::new(),
                    )
                }
            },
            None => None,
        };
        let mut env: BTreeMap<std::ffi::OsString, std::ffi::OsString> =
            vars.iter().map(|(k, v)| (k.into(), v.into())).collect();
        env.extend(step.env.iter().map(|(k, v)| (k.into(), v.into())));
        let Some((program, args)) = step.argv.split_first() else {
            return (ProcessEnd::Exited(0), String::new());
        };
        let spec = CommandSpec {
            program: program.into(),
            args: args.iter().map(Into::into).collect(),
            cwd: step.cwd.clone(),
            env,
        };
        let capture = step.capture != Capture::None;
        let mut stdout = String::new();
        let id = id.to_string();
        let events = self.events.clone();
        let live = Arc::clone(&self.live);
        let end = process::run(
            &spec,
            &Limits {
                timeout,
                grace: self.grace,
            },
            stop,
            |stream, line| {
                let masked = sink.write_line(line);
                if capture && stream == process::Stream::Stdout {
                    stdout.push_str(line);
                    stdout.push('\n');
                }
                live.offer(&events, &id, masked);
            },
        )
        .await;
        (end, stdout)
    }
}
