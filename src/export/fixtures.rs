//! Operations repos written into temporary folders for the export tests.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::settings::{EnvVars, Flags};
use crate::diagnostic::Diagnostics;
use crate::discover::{scan, Input};
use crate::graph::{self, Graph, SelectOptions, Selection};
use crate::model::Repo;

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct Loaded {
    pub(crate) repo: Repo,
    pub(crate) graph: Graph,
    pub(crate) selection: Selection,
}

impl Fixture {
    /// Files as `(relative path, content)`; every deployment folder named in the configs must be
    /// among them (a `main.tf` will do).
    pub(crate) fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (p, text) in files {
            write(dir.path(), p, text);
        }
        Fixture { dir }
    }

    /// An environment: its `bitops.config.yaml` and a folder per tool.
    pub(crate) fn env(&self, name: &str, config: &str, tools: &[&str]) {
        write(
            self.dir.path(),
            &format!("{name}/bitops.config.yaml"),
            config,
        );
        for t in tools {
            write(self.dir.path(), &format!("{name}/{t}/main.tf"), "");
        }
    }

    pub(crate) fn load(&self, envs: &[&str]) -> Loaded {
        self.load_with(SelectOptions {
            envs: envs.iter().map(|s| s.to_string()).collect(),
            ..SelectOptions::default()
        })
    }

    pub(crate) fn load_with(&self, opts: SelectOptions) -> Loaded {
        load_dir(self.dir.path(), opts)
    }
}

pub(crate) fn load_dir(root: &Path, opts: SelectOptions) -> Loaded {
    let env = EnvVars(BTreeMap::new());
    let flags = Flags::default();
    let (repo, mut diags) = scan(&Input {
        root: root.to_path_buf(),
        flags: &flags,
        env: &env,
    });
    let graph =
        graph::build(&repo, &mut diags).unwrap_or_else(|| panic!("graph: {}", describe(&diags)));
    let selection = graph::select(&repo, &graph, &opts, &env, &mut diags);
    assert!(diags.is_empty(), "fixture problems: {}", describe(&diags));
    Loaded {
        repo,
        graph,
        selection,
    }
}

fn describe(d: &Diagnostics) -> String {
    d.problems()
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("file in a folder")).expect("mkdir");
    std::fs::write(p, text).expect("write fixture");
}
