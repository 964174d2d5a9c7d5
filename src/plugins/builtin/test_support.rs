//! Test helpers: a tool folder in a temporary directory with a tool config and an environment,
//! the [`Context`] for it, and the plan text of the steps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::plugins::step::{Action, Context, Prepared};
use crate::yaml::Node;

/// `<tmp>/env/<tool>` with a parsed tool config and an environment.
pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
    pub(super) config: Option<Node>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) tool: String,
}

impl Fixture {
    /// A fixture whose tool folder is `env/tool`.
    pub(super) fn new(config: &str, env: &[(&str, &str)]) -> Fixture {
        Fixture::named("tool", config, env)
    }

    pub(super) fn named(tool: &str, config: &str, env: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("env").join(tool)).expect("mkdir");
        let config = crate::yaml::parse(config).expect("test YAML");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Fixture {
            dir,
            config,
            env,
            tool: tool.into(),
        }
    }

    pub(super) fn tool_dir(&self) -> PathBuf {
        self.dir.path().join("env").join(&self.tool)
    }

    pub(super) fn default_dir(&self) -> PathBuf {
        self.dir.path().join("_default").join(&self.tool)
    }

    /// Writes a file relative to the tool folder, creating folders.
    pub(super) fn write(&self, rel: &str, text: &str) -> PathBuf {
        write_at(&self.tool_dir(), rel, text)
    }

    /// Writes a file relative to the `_default` copy of the tool folder.
    pub(super) fn write_default(&self, rel: &str, text: &str) -> PathBuf {
        write_at(&self.default_dir(), rel, text)
    }
}

pub(super) fn write_at(base: &Path, rel: &str, text: &str) -> PathBuf {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    p
}

pub(super) fn ctx_in<'a>(fx: &'a Fixture, plugin: &'a str, action: Action) -> Context<'a> {
    let default_dir = fx.default_dir();
    Context {
        environment: "env",
        deployment: &fx.tool,
        plugin,
        tool_dir: fx.tool_dir(),
        default_dir: default_dir.is_dir().then_some(default_dir),
        tool_config: fx.config.as_ref(),
        tool_config_name: format!("env/{}/bitops.config.yaml", fx.tool),
        tool_config_file: None,
        env: &fx.env,
        action,
    }
}

/// Each step as the plan shows it.
pub(super) fn argvs(p: &Prepared) -> Vec<String> {
    p.steps.iter().map(|s| s.display()).collect()
}

/// A table-driven case: tool config, environment, action, the expected commands as shown.
pub(super) type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Action,
    &'static [&'static str],
);
