//! The plan cache (issue 13): a second `bitops plan` of an unchanged repo replays the first
//! one's output byte for byte, and any change to what the plan read — a file changed (even with
//! the same size and mtime), added, removed or renamed, a folder added or removed, a plugin
//! file inside or outside the repo, `history.json`, an environment variable, the arguments, the
//! binary — makes the next plan plan again and show the new result.
//!
//! Files written less than `RACY` (2 s) before a plan cannot be trusted by their timestamps
//! (git's "racily clean" rule), so a test builds its repos, waits once for them to age past
//! that window (a fixed rule of the cache, not a race), then checks.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{RunOutput, TestRepo};

const JSON: &[&str] = &["plan", "--format", "json"];

/// What the cache said (`BITOPS_LOG=debug` lines), and what the user sees without them.
fn cache_lines(out: &RunOutput) -> String {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("bitops: plan cache:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn shown(out: &RunOutput) -> (i32, String, String) {
    let stderr: String = out
        .stderr
        .lines()
        .filter(|l| !l.starts_with("bitops: plan cache:"))
        .map(|l| format!("{l}\n"))
        .collect();
    (out.code, out.stdout.clone(), stderr)
}

fn plan(repo: &TestRepo, args: &[&str]) -> RunOutput {
    plan_env(repo, args, &[])
}

fn plan_env(repo: &TestRepo, args: &[&str], vars: &[(&str, &str)]) -> RunOutput {
    let mut all = vec![("BITOPS_LOG", "debug")];
    all.extend_from_slice(vars);
    repo.run_env(args, &all)
}

fn hit(out: &RunOutput) -> bool {
    cache_lines(out).contains("plan cache: hit")
}

/// Two environments of one `sh` deployment each, a hook, a warning (a legacy key), and a
/// state folder, as after a first deploy.
fn repo_with(plugin_source: Option<&Path>) -> TestRepo {
    let repo = match plugin_source {
        None => TestRepo::new(),
        Some(_) => TestRepo::bare(),
    };
    if let Some(dir) = plugin_source {
        let src = TestRepo::new();
        copy(&src.path("_plugins/sh"), dir);
        repo.write(
            "bitops.config.yaml",
            &format!(
                "bitops:\n  plugins:\n    sh:\n      source: {}\n",
                dir.display()
            ),
        );
    }
    repo.env("a", "deployments:\n  d: {plugin: sh}\n")
        .dep("a", "d", "echo one")
        .env("b", "deployments:\n  d: {plugin: sh}\n")
        .dep("b", "d", "echo two")
        .hook("a", "d", "before", "10-first.sh", "true\n");
    fs::create_dir(repo.path(".bitops")).unwrap();
    repo
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Waits until every file written so far is older than the cache's racy window.
fn age() {
    std::thread::sleep(Duration::from_millis(2500));
}

/// A first plan that writes the cache and a second that replays it, identical; returns it.
fn warm(repo: &TestRepo, args: &[&str]) -> RunOutput {
    let first = plan(repo, args);
    assert_eq!(first.code, 0, "{first}");
    assert!(
        cache_lines(&first).contains("plan cache: written"),
        "{first}"
    );
    let second = plan(repo, args);
    assert!(hit(&second), "{second}");
    assert_eq!(
        shown(&first),
        shown(&second),
        "a hit replays the plan exactly"
    );
    second
}

/// After `change`, the next plan is a miss and shows what a plan without the cache shows.
fn check_change(
    name: &str,
    repo: &TestRepo,
    before: &RunOutput,
    output_changes: bool,
) -> Result<(), String> {
    let after = plan(repo, JSON);
    if hit(&after) {
        return Err(format!("{name}: still a hit after the change\n{after}"));
    }
    let truth = plan(repo, &["plan", "--format", "json", "--no-cache"]);
    if shown(&after) != shown(&truth) {
        return Err(format!("{name}: not the fresh result\n{after}\n{truth}"));
    }
    if output_changes && shown(&after) == shown(before) {
        return Err(format!(
            "{name}: the change should show in the plan\n{after}"
        ));
    }
    Ok(())
}

fn flip(path: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{text}");
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

type Change = Box<dyn Fn(&TestRepo)>;

#[test]
fn each_change_to_what_a_plan_read_makes_the_next_plan_plan_again() {
    let outside = tempfile::tempdir().unwrap();
    let outside_schema = outside.path().join("sh/bitops.schema.yaml");
    let outside_script = outside.path().join("sh2/deploy.sh");
    let cases: Vec<(&str, TestRepo, Change, bool)> = vec![
        (
            "a tool config changed, same size",
            repo_with(None),
            Box::new(|r: &TestRepo| flip(&r.path("a/d/bitops.config.yaml"), "one", "onf")),
            true,
        ),
        (
            "a tool config changed, same size and mtime set back",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                let p = r.path("a/d/bitops.config.yaml");
                let mtime = fs::metadata(&p).unwrap().modified().unwrap();
                flip(&p, "one", "onf");
                fs::File::options()
                    .append(true)
                    .open(&p)
                    .unwrap()
                    .set_modified(mtime)
                    .unwrap();
                assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), mtime);
            }),
            true,
        ),
        (
            "a file added in an environment",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                r.hook("b", "d", "after", "20-check.sh", "true\n");
            }),
            true,
        ),
        (
            "a file that the plan does not show added",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                r.write("a/d/notes.txt", "x");
            }),
            false,
        ),
        (
            "a file removed",
            repo_with(None),
            Box::new(|r: &TestRepo| fs::remove_file(r.path("b/d/bitops.config.yaml")).unwrap()),
            true,
        ),
        (
            "a folder added (a new environment)",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                r.env("c", "deployments:\n  d: {plugin: sh}\n")
                    .dep("c", "d", "echo three");
            }),
            true,
        ),
        (
            "a folder removed (an environment)",
            repo_with(None),
            Box::new(|r: &TestRepo| fs::remove_dir_all(r.path("b")).unwrap()),
            true,
        ),
        (
            "a file renamed",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                fs::rename(
                    r.path("a/d/bitops.before-deploy.d/10-first.sh"),
                    r.path("a/d/bitops.before-deploy.d/11-first.sh"),
                )
                .unwrap()
            }),
            true,
        ),
        (
            "a plugin file changed (in the repo)",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                flip(
                    &r.path("_plugins/sh/bitops.schema.yaml"),
                    "SH_CMD",
                    "SH_CMX",
                )
            }),
            true,
        ),
        (
            "a plugin file changed (outside the repo)",
            repo_with(Some(&outside.path().join("sh"))),
            Box::new(move |_| flip(&outside_schema, "SH_CMD", "SH_CMX")),
            true,
        ),
        (
            "a plugin's deploy script removed (outside the repo)",
            repo_with(Some(&outside.path().join("sh2"))),
            Box::new(move |_| fs::remove_file(&outside_script).unwrap()),
            true,
        ),
        (
            "history.json changed",
            repo_with(None),
            Box::new(|r: &TestRepo| {
                fs::write(
                    r.path(".bitops/history.json"),
                    r#"{"durations": {"b/d": 100.0}}"#,
                )
                .unwrap()
            }),
            true,
        ),
    ];
    age();
    // Every case is checked, and all failures shown together.
    let mut failed = Vec::new();
    for (name, repo, change, output_changes) in &cases {
        let before = warm(repo, JSON);
        change(repo);
        if let Err(e) = check_change(name, repo, &before, *output_changes) {
            failed.push(e);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn the_key_covers_the_environment_the_arguments_and_the_binary() {
    let repo = repo_with(None);
    age();
    warm(&repo, JSON);
    // Another variable: another key (plugins and configs read variables).
    let other = plan_env(&repo, JSON, &[("SOME_VARIABLE", "1")]);
    assert!(cache_lines(&other).contains("miss: no entry"), "{other}");
    // Other arguments: another key, and the plan they ask for.
    let text = plan(&repo, &["plan"]);
    assert!(cache_lines(&text).contains("miss: no entry"), "{text}");
    assert!(text.stdout.starts_with("Plan for "), "{text}");
    // Still a hit for the first invocation.
    assert!(hit(&plan(&repo, JSON)));
    let only_a = plan(&repo, &["plan", "--format", "json", "-e", "a"]);
    assert!(!hit(&only_a), "{only_a}");
    assert!(!only_a.stdout.contains("\"b/d\""), "{only_a}");
    // Another binary (a copy: another executable identity, as after a rebuild).
    let bin = repo.tmp().join("bitops-copy");
    fs::copy(crate::harness::BIN, &bin).unwrap();
    let out = std::process::Command::new(&bin)
        .args(JSON)
        .arg("-C")
        .arg(&repo.root)
        .env("BITOPS_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plan cache: miss: no entry"), "{stderr}");
}

#[test]
fn without_a_state_folder_nothing_is_cached_or_created() {
    let repo = repo_with(None);
    fs::remove_dir(repo.path(".bitops")).unwrap();
    age();
    let before = repo.hash();
    for _ in 0..2 {
        let out = plan(&repo, JSON);
        assert_eq!(out.code, 0, "{out}");
        assert!(cache_lines(&out).contains("off: no state folder"), "{out}");
    }
    assert!(
        !repo.path(".bitops").exists(),
        "a plan creates no state folder"
    );
    assert_eq!(before, repo.hash());
    let names: Vec<_> = fs::read_dir(&repo.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names.iter().any(|n| n == ".bitops"),
        "nothing new in the repo: {names:?}"
    );
}

fn cache_file(repo: &TestRepo) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(repo.path(".bitops/cache/plan"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn a_damaged_cache_is_a_miss_and_is_replaced() {
    let repo = repo_with(None);
    age();
    let good = warm(&repo, JSON);
    let file = cache_file(&repo);
    let data = fs::read(&file).unwrap();
    let mut flipped = data.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let damaged: Vec<(&str, Vec<u8>)> = vec![
        ("a byte flipped", flipped),
        ("cut short", data[..data.len() - 9].to_vec()),
        ("empty", Vec::new()),
        ("not a cache", b"hello".repeat(100)),
    ];
    for (what, bytes) in damaged {
        fs::write(&file, &bytes).unwrap();
        let out = plan(&repo, JSON);
        assert!(!hit(&out), "{what}: {out}");
        assert!(cache_lines(&out).contains("written"), "{what}: {out}");
        assert_eq!(shown(&out), shown(&good), "{what}");
        let again = plan(&repo, JSON);
        assert!(hit(&again), "{what}: replaced by a good entry\n{again}");
    }
}

#[test]
fn the_cache_is_private_bounded_and_skipped_when_asked() {
    let repo = repo_with(None);
    age();
    warm(&repo, JSON);
    let dir = repo.path(".bitops/cache/plan");
    for d in [repo.path(".bitops/cache"), dir.clone()] {
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    assert_eq!(
        fs::metadata(cache_file(&repo))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // --no-cache and BITOPS_NO_CACHE: neither read nor written.
    let out = plan(&repo, &["plan", "--format", "json", "--no-cache"]);
    assert!(cache_lines(&out).contains("off"), "{out}");
    let out = plan_env(&repo, JSON, &[("BITOPS_NO_CACHE", "1")]);
    assert!(cache_lines(&out).contains("off"), "{out}");
    // `plan --run` runs tools: never from the cache.
    for _ in 0..2 {
        let out = plan(&repo, &["plan", "--run"]);
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(cache_lines(&out), "", "{out}");
    }
    // Many invocations: only the last few are kept.
    for f in ["text", "json", "dot", "mermaid"] {
        for e in ["a", "b"] {
            let out = plan(&repo, &["plan", "--format", f, "-e", e]);
            assert_eq!(out.code, 0, "{out}");
        }
    }
    let kept = fs::read_dir(&dir).unwrap().count();
    assert_eq!(kept, 3, "bounded");
}

#[test]
fn a_plan_right_after_a_change_or_with_errors_is_not_cached() {
    let repo = repo_with(None);
    // Just written: within the racy window (the plan starts milliseconds later).
    repo.dep("b", "d", "echo two");
    let out = plan(&repo, JSON);
    assert!(
        cache_lines(&out).contains("not written") && cache_lines(&out).contains("less than 2 s"),
        "{out}"
    );
    assert!(!hit(&plan(&repo, JSON)));
    // A configuration error (exit 2) is never cached.
    repo.write("b/d/bitops.config.yaml", "sh: [not, a, mapping\n");
    age();
    for _ in 0..2 {
        let out = plan(&repo, JSON);
        assert_eq!(out.code, 2, "{out}");
        assert!(!hit(&out), "{out}");
        assert!(!cache_lines(&out).contains("written ("), "{out}");
    }
}

#[test]
fn a_tool_appearing_on_path_is_seen() {
    let repo = TestRepo::bare();
    repo.write("test/terraform/main.tf", "# nothing\n");
    fs::create_dir(repo.path(".bitops")).unwrap();
    let bin = repo.tmp().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let path = bin.display().to_string();
    let vars = [("PATH", path.as_str())];
    age();
    let first = plan_env(&repo, JSON, &vars);
    assert!(
        first.stderr.contains("`terraform` is not on PATH"),
        "{first}"
    );
    assert!(hit(&plan_env(&repo, JSON, &vars)));
    fs::write(bin.join("terraform"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(bin.join("terraform"), fs::Permissions::from_mode(0o755)).unwrap();
    let after = plan_env(&repo, JSON, &vars);
    assert!(!hit(&after), "{after}");
    assert!(!after.stderr.contains("is not on PATH"), "{after}");
}

#[test]
fn the_cache_lives_in_the_state_folder_given() {
    let repo = repo_with(None);
    fs::remove_dir(repo.path(".bitops")).unwrap();
    let state = repo.tmp().join("state");
    fs::create_dir(&state).unwrap();
    let state = state.display().to_string();
    let args = ["plan", "--format", "json", "--state-dir", state.as_str()];
    age();
    warm(&repo, &args);
    assert!(!repo.path(".bitops").exists());
    assert_eq!(
        fs::read_dir(Path::new(&state).join("cache/plan"))
            .unwrap()
            .count(),
        1
    );
    // The state folder's own files count: history.json there, not in the repo.
    fs::write(
        Path::new(&state).join("history.json"),
        r#"{"durations": {"b/d": 100.0}}"#,
    )
    .unwrap();
    assert!(!hit(&plan(&repo, &args)));
}
