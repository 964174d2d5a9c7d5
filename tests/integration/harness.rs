//! Fixture operations repos in a temp folder, and the real `bitops` binary run on them.
//!
//! Layout of a [`TestRepo`]'s temp folder:
//!
//! ```text
//! <tmp>/repo/            the operations repo (what bitops is pointed at)
//! <tmp>/out/             what deployments record: `trace`, `started/<env>__<dep>`, pid files …
//! <tmp>/out/bin/         helper commands on the deployments' PATH (`waitfor`)
//! <tmp>/home/            HOME for bitops and git
//! ```
//!
//! Every fixture repo gets a tiny BitOps-format plugin, `sh`: its deploy script records
//! `start <env>/<dep> <ns>` in `out/trace`, touches `out/started/<env>__<dep>`, runs the command
//! its tool config gives in `sh.options.cmd` (exported as `SH_CMD`), then records
//! `end <env>/<dep> <ns> <rc>`. Deployments are therefore described by one shell command each.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_bitops");

const PLUGIN_CONFIG: &str = "\
plugin:
  deployment:
    language: bash
    deployment_script: deploy.sh
    core_schema_parsing: true
    before_hook_scripts: true
    after_hook_scripts: true
";

const PLUGIN_SCHEMA: &str = "\
sh:
  type: object
  properties:
    options:
      type: object
      properties:
        cmd:
          type: string
          export_env: SH_CMD
        extra:
          type: string
          export_env: SH_EXTRA
";

const DEPLOY_SH: &str = r#"#!/usr/bin/env bash
# Test plugin: records when it starts and ends, runs the configured command.
dep="$(basename "$BITOPS_OPSREPO_ENVIRONMENT_DIR")"
id="$BITOPS_ENVIRONMENT/$dep"
if [ -n "$T_OUT" ]; then
  echo "start $id $(date +%s%N)" >> "$T_OUT/trace"
  mkdir -p "$T_OUT/started"
  touch "$T_OUT/started/${BITOPS_ENVIRONMENT}__$dep"
fi
bash -c "$SH_CMD"
rc=$?
if [ -n "$T_OUT" ]; then
  echo "end $id $(date +%s%N) $rc" >> "$T_OUT/trace"
fi
exit $rc
"#;

/// `waitfor FILE [SECONDS] [TEXT]`: waits (bounded) until FILE exists (and contains TEXT).
/// Exits 1 if it never happens, so a deployment waiting on something that cannot happen fails
/// instead of hanging the test.
const WAITFOR: &str = r#"#!/usr/bin/env bash
f="$1"; secs="${2:-60}"; text="$3"
n=$((secs * 20))
while [ "$n" -gt 0 ]; do
  if [ -e "$f" ]; then
    if [ -z "$text" ] || grep -qF -- "$text" "$f"; then exit 0; fi
  fi
  sleep 0.05
  n=$((n - 1))
done
echo "waitfor: gave up on $f ${text:+($text)}" >&2
exit 1
"#;

pub(crate) struct TestRepo {
    tmp: tempfile::TempDir,
    /// The operations repo (canonical path, as bitops prints it).
    pub(crate) root: PathBuf,
    /// Where deployments record what they did.
    pub(crate) out: PathBuf,
    home: PathBuf,
    /// Extra variables for every bitops run.
    vars: BTreeMap<String, String>,
}

/// What a finished bitops run left.
#[derive(Debug)]
pub(crate) struct RunOutput {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl RunOutput {
    /// Everything the user saw.
    pub(crate) fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl TestRepo {
    /// A repo with the `sh` plugin and a repo-level config that names it.
    pub(crate) fn new() -> Self {
        Self::with_repo_config("")
    }

    /// `extra` is added under `bitops:` in the repo-level config (indented by two spaces).
    pub(crate) fn with_repo_config(extra: &str) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = fs::canonicalize(tmp.path()).expect("canonical temp dir");
        let root = base.join("repo");
        let out = base.join("out");
        let home = base.join("home");
        for d in [&root, &out.join("bin"), &home] {
            fs::create_dir_all(d).expect("create dir");
        }
        let repo = TestRepo {
            tmp,
            root,
            out,
            home,
            vars: BTreeMap::new(),
        };
        repo.write_exec("../out/bin/waitfor", WAITFOR);
        repo.write("_plugins/sh/plugin.config.yaml", PLUGIN_CONFIG);
        repo.write("_plugins/sh/bitops.schema.yaml", PLUGIN_SCHEMA);
        repo.write_exec("_plugins/sh/deploy.sh", DEPLOY_SH);
        let mut config =
            String::from("bitops:\n  plugins:\n    sh:\n      source: ./_plugins/sh\n");
        for line in extra.lines() {
            config.push_str("  ");
            config.push_str(line);
            config.push('\n');
        }
        repo.write("bitops.config.yaml", &config);
        repo
    }

    /// An empty temp folder with nothing written: for repos made entirely by the test.
    pub(crate) fn bare() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = fs::canonicalize(tmp.path()).expect("canonical temp dir");
        let root = base.join("repo");
        let out = base.join("out");
        let home = base.join("home");
        for d in [&root, &out.join("bin"), &home] {
            fs::create_dir_all(d).expect("create dir");
        }
        let repo = TestRepo {
            tmp,
            root,
            out,
            home,
            vars: BTreeMap::new(),
        };
        repo.write_exec("../out/bin/waitfor", WAITFOR);
        repo
    }

    /// A repo with the `sh` plugin, then `tests/fixtures/<name>` copied over it (a fixture's
    /// own `bitops.config.yaml` replaces the default one, and must name the plugin).
    pub(crate) fn fixture(name: &str) -> Self {
        let repo = Self::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        copy_dir(&src, &repo.root);
        repo
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a file relative to the repo root, creating folders.
    pub(crate) fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().expect("a file has a parent")).expect("create dir");
        fs::write(&p, text).expect("write file");
        self
    }

    pub(crate) fn write_exec(&self, rel: &str, text: &str) -> &Self {
        self.write(rel, text);
        let p = self.root.join(rel);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }

    /// `<env>/bitops.config.yaml` with `body` under `bitops:` (indented by two spaces).
    pub(crate) fn env(&self, name: &str, body: &str) -> &Self {
        let mut text = String::from("bitops:\n");
        for line in body.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        self.write(&format!("{name}/bitops.config.yaml"), &text)
    }

    /// A deployment folder `<env>/<dep>` whose tool config runs `cmd`.
    pub(crate) fn dep(&self, env: &str, dep: &str, cmd: &str) -> &Self {
        self.dep_with(env, dep, cmd, "")
    }

    /// Like [`dep`](Self::dep), with more `sh.options` lines (`extra: value`).
    pub(crate) fn dep_with(&self, env: &str, dep: &str, cmd: &str, more_options: &str) -> &Self {
        let mut text = format!("sh:\n  options:\n    cmd: {}\n", yaml_str(cmd));
        for line in more_options.lines() {
            text.push_str("    ");
            text.push_str(line);
            text.push('\n');
        }
        self.write(&format!("{env}/{dep}/bitops.config.yaml"), &text)
    }

    /// A hook script in `<env>/<dep>/bitops.{before,after}-deploy.d/<name>`.
    pub(crate) fn hook(&self, env: &str, dep: &str, when: &str, name: &str, script: &str) -> &Self {
        self.write_exec(
            &format!("{env}/{dep}/bitops.{when}-deploy.d/{name}"),
            script,
        )
    }

    /// Adds a variable to every bitops run.
    pub(crate) fn var(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    /// `bitops ARGS -C <repo>` with a controlled environment; stdout and stderr go to files in
    /// `out/` (`bitops.stdout`, `bitops.stderr`), so deployments may watch what bitops prints.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args).arg("-C").arg(&self.root);
        cmd.env_clear();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        cmd.env("PATH", format!("{}:{path}", self.out.join("bin").display()));
        cmd.env("HOME", &self.home);
        cmd.env("T_OUT", &self.out);
        cmd.env("LANG", "C.UTF-8");
        cmd.env("TERM", "dumb");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.current_dir(&self.home);
        cmd.stdin(Stdio::null());
        cmd.stdout(fs::File::create(self.out.join("bitops.stdout")).expect("stdout file"));
        cmd.stderr(fs::File::create(self.out.join("bitops.stderr")).expect("stderr file"));
        cmd
    }

    /// Runs bitops to the end. Every run also checks the ops repo is byte-for-byte unchanged
    /// (the state folder `.bitops/` aside).
    pub(crate) fn run(&self, args: &[&str]) -> RunOutput {
        self.run_env(args, &[])
    }

    /// Like [`run`](Self::run) with extra variables for this run only.
    pub(crate) fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> RunOutput {
        let before = self.hash();
        let mut cmd = self.command(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("bitops starts");
        let status = wait_bounded(&mut child, Duration::from_secs(180));
        let out = RunOutput {
            code: status,
            stdout: fs::read_to_string(self.out.join("bitops.stdout")).unwrap_or_default(),
            stderr: fs::read_to_string(self.out.join("bitops.stderr")).unwrap_or_default(),
        };
        // `--in-place` runs in the repo itself by design (local terraform state lands there);
        // every other run must leave it as it was.
        if !args.contains(&"--in-place") {
            let after = self.hash();
            assert_same_tree(&before, &after, &out);
        }
        out
    }

    /// Spawns bitops without waiting (for signal tests).
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("bitops starts")
    }

    pub(crate) fn stdout_so_far(&self) -> String {
        fs::read_to_string(self.out.join("bitops.stdout")).unwrap_or_default()
    }

    pub(crate) fn stderr_so_far(&self) -> String {
        fs::read_to_string(self.out.join("bitops.stderr")).unwrap_or_default()
    }

    /// Every file of the ops repo (outside `.bitops/`) with its content and mode.
    pub(crate) fn hash(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        tree(&self.root)
    }

    /// A file under `out/`.
    pub(crate) fn out_file(&self, rel: &str) -> PathBuf {
        self.out.join(rel)
    }

    pub(crate) fn read_out(&self, rel: &str) -> String {
        fs::read_to_string(self.out.join(rel)).unwrap_or_else(|e| panic!("read out/{rel}: {e}"))
    }

    /// The deployments' own record of when they ran.
    pub(crate) fn trace(&self) -> Trace {
        Trace::parse(&fs::read_to_string(self.out.join("trace")).unwrap_or_default())
    }

    /// Deployments that started (from `out/started`).
    pub(crate) fn started(&self) -> BTreeSet<String> {
        match fs::read_dir(self.out.join("started")) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().replacen("__", "/", 1))
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// Run folders under `.bitops/runs`.
    pub(crate) fn run_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.root.join(".bitops/runs"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `plan --format json` parsed.
    pub(crate) fn plan_json(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["plan", "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(out.code, 0, "{out}");
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("plan JSON: {e}\n{out}"))
    }

    /// Ids of the deployment nodes a plan selects, sorted.
    pub(crate) fn planned_deployments(&self, extra: &[&str]) -> Vec<String> {
        deployment_ids(&self.plan_json(extra))
    }

    /// Runs git in the repo (as a fixed author).
    pub(crate) fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&self.root)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Replaces the temp paths in `text` by stable names, for snapshots.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&self.root.display().to_string(), "[REPO]")
            .replace(&self.out.display().to_string(), "[OUT]")
    }

    pub(crate) fn tmp(&self) -> &Path {
        self.tmp.path()
    }
}

/// Deployment node ids in a plan JSON, sorted.
pub(crate) fn deployment_ids(plan: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = plan["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["kind"] == "deployment")
        .map(|n| n["id"].as_str().expect("id").to_string())
        .collect();
    v.sort();
    v
}

/// Waits for a child with a bound (a hung bitops fails the test instead of hanging it).
pub(crate) fn wait_bounded(child: &mut Child, limit: Duration) -> i32 {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            use std::os::unix::process::ExitStatusExt;
            return status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("bitops did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until `f` returns `Some`, for at most `limit`.
pub(crate) fn poll<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A JSON/YAML string literal (valid YAML scalar).
pub(crate) fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("under root").to_path_buf();
            if rel == Path::new(".bitops") {
                continue;
            }
            let meta = fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                out.insert(rel, (meta.permissions().mode(), Vec::new()));
                stack.push(p);
            } else {
                out.insert(
                    rel,
                    (meta.permissions().mode(), fs::read(&p).unwrap_or_default()),
                );
            }
        }
    }
    out
}

fn assert_same_tree(
    before: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    after: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    out: &RunOutput,
) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (p, v) in before {
        match after.get(p) {
            None => diffs.push(format!("removed {}", p.display())),
            Some(w) if w != v => diffs.push(format!("changed {}", p.display())),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("added {}", p.display()));
    }
    panic!("the ops repo changed during the run: {diffs:?}\n{out}");
}

/// Asserts the repo is the same as a snapshot taken with [`TestRepo::hash`].
pub(crate) fn assert_unchanged(repo: &TestRepo, before: &BTreeMap<PathBuf, (u32, Vec<u8>)>) {
    let after = repo.hash();
    assert_same_tree(
        before,
        &after,
        &RunOutput {
            code: -1,
            stdout: String::new(),
            stderr: String::new(),
        },
    );
}

pub(crate) fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create dir");
    for e in fs::read_dir(src)
        .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
        .flatten()
    {
        let p = e.path();
        let to = dst.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            fs::copy(&p, &to).expect("copy file");
        }
    }
}

/// One deployment's run as it recorded it.
#[derive(Clone, Debug)]
pub(crate) struct Span {
    pub(crate) start: u128,
    pub(crate) end: Option<u128>,
    pub(crate) rc: Option<i32>,
}

/// `start`/`end` records from `out/trace` (the last attempt of each deployment wins).
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) spans: BTreeMap<String, Span>,
    /// Every start, in file order (retries appear more than once).
    pub(crate) starts: Vec<String>,
}

impl Trace {
    fn parse(text: &str) -> Trace {
        let mut t = Trace::default();
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["start", id, ns] => {
                    t.starts.push(id.to_string());
                    t.spans.insert(
                        id.to_string(),
                        Span {
                            start: ns.parse().expect("ns"),
                            end: None,
                            rc: None,
                        },
                    );
                }
                ["end", id, ns, rc] => {
                    let s = t
                        .spans
                        .get_mut(*id)
                        .unwrap_or_else(|| panic!("end before start: {line}"));
                    s.end = Some(ns.parse().expect("ns"));
                    s.rc = rc.parse().ok();
                }
                _ => panic!("bad trace line {line:?}"),
            }
        }
        t
    }

    pub(crate) fn span(&self, id: &str) -> &Span {
        self.spans
            .get(id)
            .unwrap_or_else(|| panic!("`{id}` never started; trace: {self:?}"))
    }

    pub(crate) fn ran(&self, id: &str) -> bool {
        self.spans.contains_key(id)
    }

    /// Whether two deployments ran at the same time (by their own clocks).
    pub(crate) fn overlap(&self, a: &str, b: &str) -> bool {
        let (x, y) = (self.span(a), self.span(b));
        let (xe, ye) = (x.end.expect("a ended"), y.end.expect("b ended"));
        x.start < ye && y.start < xe
    }

    /// `b` started after `a` ended.
    pub(crate) fn after(&self, a: &str, b: &str) -> bool {
        let (x, y) = (self.span(a), self.span(b));
        x.end.is_some_and(|e| e < y.start)
    }
}

/// Whether a process is gone: no `/proc/<pid>`, or a zombie waiting for a reaper.
pub(crate) fn process_gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // `pid (comm) S …`: the state follows the last `)`.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            matches!(state, Some('Z') | Some('X'))
        }
    }
}

/// The process group of a live process.
pub(crate) fn process_group(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Reads pids written one per line to files under `out/pids/`.
pub(crate) fn recorded_pids(repo: &TestRepo) -> Vec<(String, i32)> {
    let mut v = Vec::new();
    if let Ok(rd) = fs::read_dir(repo.out.join("pids")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            for line in fs::read_to_string(e.path()).unwrap_or_default().lines() {
                if let Ok(pid) = line.trim().parse() {
                    v.push((name.clone(), pid));
                }
            }
        }
    }
    v.sort();
    v
}

/// Asserts that each of `expected` recorded its pid and that no recorded process is still
/// alive (waiting a bounded time for the kernel to finish tearing them down; a process that
/// merely sleeps never ends by itself). On failure kills them so the test leaves nothing behind.
pub(crate) fn assert_no_survivors(repo: &TestRepo, expected: &[&str]) {
    let pids = recorded_pids(repo);
    for name in expected {
        assert!(
            pids.iter().any(|(n, _)| n == name),
            "no pid recorded as `{name}`: {pids:?}"
        );
    }
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<&(String, i32)> = pids.iter().filter(|(_, p)| !process_gone(*p)).collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > end {
            let list = format!("{alive:?}");
            for (_, p) in &alive {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            panic!("processes outlived bitops: {list}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills everything recorded (cleanup after a SIGKILLed bitops, which cannot clean up itself).
pub(crate) fn kill_recorded(repo: &TestRepo) {
    for (_, pid) in recorded_pids(repo) {
        if let Some(pgid) = process_group(pid) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Whether every tool is on PATH. Locally a missing tool skips the test with a printed reason;
/// under CI (`CI` set) it fails it, so nothing real is silently left untested there.
pub(crate) fn require_tools(tools: &[&str]) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !path.split(':').any(|d| Path::new(d).join(t).is_file()))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(!ci, "CI is set and {} not installed", missing.join(", "));
    eprintln!("skipped: {} not installed", missing.join(", "));
    false
}

/// The sorted resource names in a terraform state file; none when the file does not exist.
pub(crate) fn tf_state_resources(path: &std::path::Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut names: Vec<String> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}
