//! Fault injection: an ops repo written by an attacker, or broken the way real files break.
//! One test per finding of the hardening issue (names that become paths, huge numbers, deep
//! YAML, hostile outputs, file modes, batches of config mistakes), each through the real binary.
//! Every run also checks (in the harness) that nothing changed in the repo outside `.bitops/`;
//! where deployments run, no process of theirs may outlive bitops, by process group or session.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::{require_tools, TestRepo};

/// `echo "$$ <pgid> <sid>"` into `out/pids/<name>`: what a deployment leaves to find its
/// process group and session afterwards.
fn record_ids(name: &str) -> String {
    format!(
        "mkdir -p \"$T_OUT/pids\"; read -r -a st < /proc/$$/stat; echo \"$$ ${{st[4]}} ${{st[5]}}\" > \"$T_OUT/pids/{name}\""
    )
}

/// No process is left in a process group or session that a deployment recorded (sessions
/// shared with the test runner itself aside).
fn assert_no_process_left(repo: &TestRepo) {
    let own_sid = stat_field(std::process::id() as i32, 5);
    let mut groups = BTreeSet::new();
    let mut sessions = BTreeSet::new();
    let dir = repo.out_file("pids");
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let text = fs::read_to_string(e.path()).unwrap_or_default();
        let f: Vec<i32> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [_, pgid, sid] = f[..] {
            groups.insert(pgid);
            if Some(sid) != own_sid {
                sessions.insert(sid);
            }
        }
    }
    assert!(!groups.is_empty(), "no deployment recorded its ids");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left: Vec<i32> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| !crate::harness::process_gone(*pid))
            .filter(|pid| {
                stat_field(*pid, 4).is_some_and(|g| groups.contains(&g))
                    || stat_field(*pid, 5).is_some_and(|s| sessions.contains(&s))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes outlived bitops in its deployments' groups/sessions: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Field `n` (0-based, after the command name) of `/proc/<pid>/stat`, where 2 is the ppid,
/// 4 the process group, 5 the session… counted as `proc(5)` does from the pid.
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    // After `)`: state(2) ppid(3) pgrp(4) session(5) in proc(5)'s 0-based-from-pid numbering.
    rest.split_whitespace().nth(n - 2)?.parse().ok()
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// A folder with one file in it, to see that nothing removed it.
fn victim(path: &Path) {
    fs::create_dir_all(path).unwrap();
    fs::write(path.join("keep.txt"), "precious").unwrap();
}

#[test]
fn plugin_names_that_are_paths_are_refused_and_install_deletes_nothing() {
    let repo = TestRepo::new();
    let keep = repo.tmp().join("keep-me");
    victim(&keep);
    victim(&repo.tmp().join("victim"));
    // A real git source that clones fine: before the fix, install removed the folder the name
    // pointed at and moved the clone there.
    let src = repo.tmp().join("plugin-src");
    victim(&src);
    let src_s = src.display().to_string();
    repo.git(&["-C", &src_s, "init", "-q"]);
    repo.git(&["-C", &src_s, "add", "."]);
    repo.git(&["-C", &src_s, "commit", "-qm", "plugin"]);
    // `../../../victim` from `<repo>/.bitops/plugins/` is `<tmp>/victim`.
    repo.write(
        "bitops.config.yaml",
        &format!(
            "bitops:\n  plugins:\n    sh:\n      source: ./_plugins/sh\n    {}:\n      source: {src_s}/.git\n    \"../../../victim\":\n      source: {src_s}/.git\n",
            keep.display()
        ),
    );
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    for args in [&["plugins", "install"][..], &["plan"], &["plugins", "list"]] {
        let out = repo.run(args);
        assert_eq!(out.code, 2, "{args:?}: {out}");
        assert!(
            out.stderr.contains("is not a valid plugin name")
                && out.stderr.contains("bitops.config.yaml:5")
                && out.stderr.contains("bitops.config.yaml:7"),
            "{args:?}: both names, located: {out}"
        );
    }
    assert_eq!(
        fs::read_to_string(keep.join("keep.txt")).unwrap(),
        "precious"
    );
    assert_eq!(
        fs::read_to_string(repo.tmp().join("victim/keep.txt")).unwrap(),
        "precious"
    );
    assert!(
        !repo.path(".bitops/plugins").exists(),
        "nothing was installed"
    );

    // The same for the other names that become paths: a `_default` outside the repo, a pool,
    // a deployment, an environment folder.
    let repo = TestRepo::new();
    victim(&repo.tmp().join("outside"));
    repo.env(
        "e",
        "default_folder: ../outside\npools: {\"../p\": 1}\ndeployments:\n  d: {plugin: sh}\n  \"a b\": {plugin: sh}\n",
    );
    repo.dep("e", "d", "true");
    repo.dep("e f", "d", "true");
    let out = repo.run(&["deploy"]);
    assert_eq!(out.code, 2, "{out}");
    for want in [
        "`../outside` is not a valid folder name",
        "`../p` is not a valid pool name",
        "`a b` is not a valid deployment name",
        "folder `e f` cannot be an environment",
    ] {
        assert!(out.stderr.contains(want), "missing {want:?}: {out}");
    }
    let out = repo.run_env(&["plan"], &[("BITOPS_DEFAULT_FOLDER", "/etc")]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("BITOPS_DEFAULT_FOLDER"), "{out}");
    assert!(repo.started().is_empty(), "nothing ran");
}

#[test]
fn huge_durations_and_numbers_are_located_errors_not_panics() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "timeout: 500000000000y\nretries: 4294967296\ndeployments:\n  d: {plugin: sh, timeout: 99999999999999999999d}\n",
    );
    repo.dep("e", "d", "true");
    let out = repo.run(&["plan"]);
    assert_eq!(out.code, 2, "{out}");
    for (line, what) in [
        (2, "`timeout` is too long"),
        (3, "`retries` must be at most"),
        (5, "`timeout`"),
    ] {
        assert!(
            out.stderr.contains(&format!("e/bitops.config.yaml:{line}"))
                && out.stderr.contains(what),
            "line {line}, {what}: {out}"
        );
    }
    assert!(
        out.stderr.contains("at most 365 days"),
        "the limit is named: {out}"
    );

    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    let out = repo.run_env(&["deploy"], &[("BITOPS_TIMEOUT", "18446744073709551615")]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("BITOPS_TIMEOUT") && out.stderr.contains("365d"),
        "{out}"
    );
    for flag in ["--deadline", "--lock-timeout", "--timeout"] {
        let out = repo.run(&["deploy", flag, "500000000000y"]);
        assert_eq!(out.code, 2, "{flag}: {out}");
        assert!(out.stderr.contains("at most 365 days"), "{flag}: {out}");
    }
    for (flag, value, limit) in [
        ("--retries", "4294967296", "at most 100"),
        ("--retries", "101", "at most 100"),
        ("--jobs", "18446744073709551616", "whole number"),
        ("--jobs", "5000", "at most 4096"),
    ] {
        let out = repo.run(&["deploy", flag, value]);
        assert_eq!(out.code, 2, "{flag} {value}: {out}");
        assert!(out.stderr.contains(limit), "{flag} {value}: {out}");
    }
    assert!(repo.started().is_empty(), "nothing ran");
}

/// `depth` levels of `[` per line, each line nesting the previous one through an alias.
fn alias_tower(lines: usize, depth: usize) -> String {
    let mut text = format!("z0: &a0 {}x{}\n", "[".repeat(depth), "]".repeat(depth));
    for i in 1..lines {
        text.push_str(&format!(
            "z{i}: &a{i} {}*a{}{}\n",
            "[".repeat(depth),
            i - 1,
            "]".repeat(depth)
        ));
    }
    text
}

#[test]
fn deeply_nested_yaml_is_a_located_error_never_a_stack_overflow() {
    // In an environment config: refused before anything runs, at its line.
    let repo = TestRepo::new();
    let mut text = String::from("bitops:\n  deployments:\n    d: {plugin: sh}\n");
    text.push_str(&alias_tower(50, 120));
    repo.write("e/bitops.config.yaml", &text);
    repo.dep("e", "d", "true");
    let out = repo.run(&["plan"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("e/bitops.config.yaml:5") && out.stderr.contains("nesting too deep"),
        "{out}"
    );

    // Block nesting on one line, 60 KB: the YAML crate's loader recursed once per level.
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    repo.write(
        "e/d/bitops.config.yaml",
        &format!(
            "sh:\n  options:\n    cmd: \"true\"\n  x:\n    {}x\n",
            "- ".repeat(30_000)
        ),
    );
    let out = repo.run(&["deploy"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("e/d/bitops.config.yaml:5") && out.stderr.contains("nesting too deep"),
        "{out}"
    );
    assert!(repo.started().is_empty(), "nothing ran");

    // In a `_default` manifest the working copy deep-merges mid-run: that deployment fails
    // naming the file; bitops does not abort, and leaves no lock and no process behind.
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", &record_ids("d"));
    repo.write("_default/d/manifest.yaml", &alias_tower(50, 120));
    repo.write("e/d/manifest.yaml", "k: v\n");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.all()
            .contains("_default/d/manifest.yaml: line 2: nesting too deep"),
        "{out}"
    );
    let locks: Vec<_> = fs::read_dir(repo.path(".bitops/locks"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(locks.is_empty(), "locks left: {locks:?}");
    assert!(
        !repo.out_file("pids/d").exists(),
        "the deployment never started"
    );
}

#[test]
fn hostile_outputs_fail_their_producer_naming_the_problem() {
    // (producer command, what its failure must say)
    let cases: [(&str, &str); 4] = [
        (
            r"printf 'A=1\nB=\377\376\nC=3\n' >> $BITOPS_OUTPUT_FILE",
            "$BITOPS_OUTPUT_FILE: line 2 is not UTF-8",
        ),
        (
            "printf 'a.b=1\\na_b=2\\n' >> $BITOPS_OUTPUT_FILE",
            "outputs `a.b` and `a_b` both become BITOPS_OUTPUT_P_D_A_B",
        ),
        (
            r"printf 'K=a\000b\n' >> $BITOPS_OUTPUT_FILE",
            "output `K` contains a NUL byte",
        ),
        (
            "printf 'BIG=%0200000d\\n' 0 >> $BITOPS_OUTPUT_FILE",
            "MAX_ARG_STRLEN",
        ),
    ];
    for (cmd, says) in cases {
        let repo = TestRepo::new();
        repo.env("p", "deployments:\n  d: {plugin: sh}\n");
        repo.dep("p", "d", &format!("{}; {cmd}", record_ids("p")));
        repo.env("c", "depends_on: [p]\ndeployments:\n  d: {plugin: sh}\n");
        repo.dep("c", "d", &record_ids("c"));
        let out = repo.run(&["deploy", "--progress", "plain"]);
        assert_eq!(out.code, 1, "{cmd}: {out}");
        assert!(out.all().contains(says), "{cmd}: want {says:?}\n{out}");
        assert!(
            repo.trace().spans["p/d"].rc == Some(0),
            "the producer's own command succeeded; bitops failed it"
        );
        assert!(
            !repo.trace().ran("c/d"),
            "{cmd}: the dependent must not run: {out}"
        );
        assert!(
            !repo.path(".bitops/outputs/p__d.json").exists(),
            "{cmd}: refused outputs are not kept"
        );
        assert_no_process_left(&repo);
    }

    // Environments whose names become the same variable prefix: refused before anything runs.
    let repo = TestRepo::new();
    for e in ["x-y", "x_y"] {
        repo.env(e, "deployments:\n  d: {plugin: sh}\n");
        repo.dep(e, "d", "true");
    }
    let out = repo.run(&["plan"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("`x-y/d` and `x_y/d` both publish outputs as BITOPS_OUTPUT_X_Y_D_"),
        "{out}"
    );

    // Names that spell the same file name (`<env>__<deployment>`: logs, outputs): refused too,
    // though their variable prefixes (A__B_C and A_B__C) differ.
    let repo = TestRepo::new();
    repo.env("a__b", "deployments:\n  c: {plugin: sh}\n");
    repo.dep("a__b", "c", "true");
    repo.env("a", "deployments:\n  b__c: {plugin: sh}\n");
    repo.dep("a", "b__c", "true");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("would share their log and output files (`a__b__c`)"),
        "{out}"
    );
    let t = repo.trace();
    assert!(!t.ran("a__b/c") && !t.ran("a/b__c"), "nothing ran: {out}");
}

#[test]
fn files_that_can_hold_values_are_private() {
    let tf = require_tools(&["terraform"]);
    let repo = TestRepo::new();
    repo.env(
        "p",
        if tf {
            "deployments:\n  d: {plugin: sh}\n  terraform: {plugin: terraform}\n"
        } else {
            "deployments:\n  d: {plugin: sh}\n"
        },
    );
    repo.dep("p", "d", "echo 'TOKEN=s3cr3t' >> \"$BITOPS_OUTPUT_FILE\"");
    if tf {
        repo.write(
            "p/terraform/main.tf",
            "output \"pw\" {\n  value     = \"s3cr3t\"\n  sensitive = true\n}\n",
        );
        repo.write(
            "p/terraform/bitops.config.yaml",
            "terraform:\n  cli:\n    stack-action: apply\n",
        );
    }
    repo.env("c", "depends_on: [p]\ndeployments:\n  d: {plugin: sh}\n");
    repo.dep("c", "d", "cat \"$BITOPS_INPUTS_JSON\" > /dev/null");
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");

    let state = repo.path(".bitops");
    let mut seen_files = Vec::new();
    let mut stack = vec![state.clone()];
    assert_eq!(mode(&state), 0o700, "the state folder");
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(&state).unwrap().to_path_buf();
            // `<state>/work/…`: the persistent working copy mirrors the repo's own modes inside
            // a 0700 folder (the folder itself is checked).
            let in_work = rel.components().count() > 1
                && rel
                    .components()
                    .next()
                    .is_some_and(|c| c.as_os_str() == "work");
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                // Working copies mirror the repo's own modes inside a 0700 folder.
                if !in_work {
                    assert_eq!(mode(&p), 0o700, "{}", rel.display());
                    stack.push(p);
                }
            } else if ft.is_file() && !in_work {
                assert_eq!(mode(&p), 0o600, "{}", rel.display());
                seen_files.push(rel.display().to_string());
            }
        }
    }
    let any = |suffix: &str| seen_files.iter().any(|f| f.ends_with(suffix));
    for want in [
        "outputs/p__d.json",
        "/outputs/p__d.env",
        "/outputs/c__d.inputs.json",
        "journal.jsonl",
        "report.json",
        "/logs/p__d.log",
    ] {
        assert!(any(want), "no {want} among {seen_files:?}");
    }
    if tf {
        assert!(any("/outputs/p__terraform.tfplan"), "{seen_files:?}");
        // Written by terraform itself (bitops only created it empty, with its mode).
        let plan = seen_files
            .iter()
            .find(|f| f.ends_with(".tfplan"))
            .map(|f| state.join(f))
            .unwrap();
        assert!(
            fs::metadata(&plan).unwrap().len() > 0,
            "terraform wrote no plan: {out}"
        );
    }
}

#[test]
fn config_mistakes_of_every_stage_arrive_in_one_run() {
    let repo = TestRepo::new();
    // A YAML syntax error, an environment-level typo, a duplicate key, a top-level typo, a
    // tool-level typo and an unknown dependency: six mistakes in five files, one run.
    repo.write("broken/bitops.config.yaml", "bitops:\n  deployments: [\n");
    repo.env("a", "fail_fsat: true\ndeployments:\n  d: {plugin: sh}\n");
    repo.dep("a", "d", "true");
    repo.env("b", "jobs: 1\njobs: 2\ndeployments:\n  d: {plugin: sh}\n");
    repo.write(
        "b/d/bitops.config.yaml",
        "sh:\n  optons:\n    cmd: \"true\"\n",
    );
    repo.write(
        "c/bitops.config.yaml",
        "bitops:\n  depends_on: [nope]\n  deployments:\n    d: {plugin: sh}\nbitop:\n  fail_fast: false\n",
    );
    repo.dep("c", "d", "true");
    let out = repo.run(&["plan"]);
    assert_eq!(out.code, 2, "{out}");
    for want in [
        "broken/bitops.config.yaml:2",
        "unknown key `fail_fsat`",
        "`jobs` is written twice in `b/bitops.config.yaml`",
        "b/d/bitops.config.yaml",
        "unknown top-level key `bitop`",
        "`nope` in `depends_on`",
    ] {
        assert!(out.stderr.contains(want), "missing {want:?}: {out}");
    }
    assert!(
        !repo.path(".bitops").exists(),
        "a plan with errors writes nothing"
    );
}

#[test]
fn resuming_from_an_empty_journal_is_an_error_naming_it() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "true");
    let run = repo.path(".bitops/runs/20260101T000000Z-1");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("journal.jsonl"), "").unwrap();
    let out = repo.run(&["deploy", "--resume", "20260101T000000Z-1"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("journal.jsonl is empty"),
        "the file is named: {out}"
    );
    assert!(repo.started().is_empty(), "nothing ran");
}
