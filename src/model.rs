//! The operations repo as bitops understands it after discovery and configuration: validated
//! domain values, with no YAML left in them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::settings::{EnvSettings, Setting};
use crate::config::BitopsSection;
use crate::diagnostic::{Loc, SourceFile, Spanned};

/// Plugins bitops knows without configuration, in BitOps' default deployment order first.
pub const BUILTIN_PLUGINS: &[&str] = &[
    "cloudformation",
    "terraform",
    "helm",
    "ansible",
    "kubectl",
    "aws",
];

/// Hook folders of a deployment (BitOps names).
pub const BEFORE_HOOKS: &str = "bitops.before-deploy.d";
pub const AFTER_HOOKS: &str = "bitops.after-deploy.d";

#[derive(Debug)]
pub struct Repo {
    pub root: PathBuf,
    pub config: BitopsSection,
    pub config_file: Option<Arc<SourceFile>>,
    /// Name of the folder merged into every environment (`_default`).
    pub default_folder: String,
    /// Sorted by name.
    pub environments: Vec<Environment>,
    /// Top-level folders that are not environments (`_default`, `_scripts`, `_plugins`, …).
    pub support_dirs: Vec<String>,
    /// BitOps-format plugins named in the repo config, with their resolved folders.
    pub plugins: Vec<PluginRef>,
}

#[derive(Debug, Clone)]
pub struct PluginRef {
    pub name: String,
    pub source: PluginSource,
    pub decl: Loc,
    /// `plan_action` / `destroy_action` as written (`Some("")`: explicitly none); `None`
    /// takes the official plugins' words (see `plugins::actions`).
    pub plan_action: Option<String>,
    pub destroy_action: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A folder in (or relative to) the ops repo.
    Local(PathBuf),
    /// A git URL, installed into the state folder by `bitops plugins install`.
    Git {
        url: String,
        branch: Option<String>,
        tag: Option<String>,
    },
}

#[derive(Debug)]
pub struct Environment {
    pub name: String,
    pub dir: PathBuf,
    pub config: BitopsSection,
    pub config_file: Option<Arc<SourceFile>>,
    pub settings: EnvSettings,
    pub deployments: Vec<Deployment>,
    /// Environment-level `bitops.depends_on`.
    pub depends_on: Vec<Spanned<String>>,
    /// Which config listed the deployments, for the plan ("environment config", …).
    pub deployments_from: DeploymentsFrom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentsFrom {
    Environment,
    Repo,
    Folders,
}

#[derive(Debug)]
pub struct Deployment {
    pub name: String,
    pub plugin: String,
    /// `<env>/<name>` in the repo (it may come only from `_default` after merging).
    pub dir: PathBuf,
    /// Where the entry was declared; `None` for a deployment found from its folder.
    pub decl: Option<Loc>,
    pub depends_on: Option<Vec<Spanned<String>>>,
    pub timeout: Setting<Option<Duration>>,
    pub retries: Setting<u32>,
    pub pool: Option<Spanned<String>>,
    /// Declared `inputs` (resolved against the graph in `graph::inputs`).
    pub inputs: Vec<crate::config::section::InputSpec>,
    pub hooks: Hooks,
}

#[derive(Debug, Default, Clone)]
pub struct Hooks {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl Repo {
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.environments[i])
    }

    pub fn plugin(&self, name: &str) -> Option<&PluginRef> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

impl Environment {
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.name == name)
    }
}
