//! `json::write` serializes the nodes in parallel, piece by piece: its bytes must stay exactly
//! those of one `serde_json::to_writer_pretty` call over the whole document.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::json::{write, write_reference};
use super::{Invocation, Plan};
use crate::config::settings::{EnvVars, Flags};
use crate::discover::{scan, Input};
use crate::graph::{self, SelectOptions};

fn both(plan: &Plan<'_>) -> (String, String) {
    let mut fast = Vec::new();
    write(plan, &mut fast).unwrap();
    let mut reference = Vec::new();
    write_reference(plan, &mut reference).unwrap();
    (
        String::from_utf8(fast).unwrap(),
        String::from_utf8(reference).unwrap(),
    )
}

fn check(root: &Path, envs: &[&str], invocations: bool) {
    let env = EnvVars(BTreeMap::new());
    let flags = Flags::default();
    let (repo, mut diags) = scan(&Input {
        root: root.to_path_buf(),
        flags: &flags,
        env: &env,
    });
    let g = graph::build(&repo, &mut diags).expect("fixture graph");
    let opts = SelectOptions {
        envs: envs.iter().map(|s| s.to_string()).collect(),
        ..SelectOptions::default()
    };
    let sel = graph::select(&repo, &g, &opts, &env, &mut diags);
    let mut plan = Plan::new(&repo, &g, &sel, &HashMap::new());
    if invocations {
        // Values that need escaping: quotes, newlines, control and non-ASCII characters.
        for (k, &i) in plan.order.clone().iter().enumerate() {
            let value = if k % 3 == 0 {
                Err(format!("broken \"{k}\"\nsecond line\t\u{1}"))
            } else {
                Ok(Invocation {
                    argv: vec!["bash".into(), format!("/x/é {k}/deploy.sh"), String::new()],
                    env: [("A".to_string(), "line\nnext".to_string())].into(),
                    commands: vec![format!("echo '{k}' \\ \"q\"")],
                    settings: Vec::new(),
                    inputs: Vec::new(),
                })
            };
            plan.invocations.insert(i, value);
        }
    }
    let (fast, reference) = both(&plan);
    assert_eq!(fast, reference);
}

#[test]
fn parallel_json_equals_one_pretty_document() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan-basic");
    check(&fixture, &[], false);
    check(&fixture, &[], true);
    check(&fixture, &["backend-test"], true);
}

#[test]
fn parallel_json_of_an_empty_plan_and_of_many_chunks() {
    let dir = tempfile::tempdir().unwrap();
    // No environment at all: `"nodes": []`, no waves.
    check(dir.path(), &[], false);
    // More nodes than one parallel chunk (4,096), so chunk boundaries are crossed.
    for i in 0..1100 {
        let e = dir.path().join(format!("e{i:04}"));
        let mut cfg = String::from("bitops:\n  deployments:\n");
        for d in 0..3 {
            std::fs::create_dir_all(e.join(format!("d{d}"))).unwrap();
            cfg.push_str(&format!("    d{d}:\n      plugin: terraform\n"));
        }
        if i > 0 {
            cfg.push_str(&format!("  depends_on: [e{:04}]\n", i / 2));
        }
        std::fs::write(e.join("bitops.config.yaml"), cfg).unwrap();
    }
    check(dir.path(), &[], true);
}
