//! Which plugin a deployment uses, loaded once per run: a BitOps-format plugin named in
//! `bitops.plugins` (which replaces a built-in of the same name) or a built-in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use crate::diagnostic::{Diagnostics, Problem, SourceFile};
use crate::model::{PluginSource, Repo};
use crate::yaml::Node;

use super::bitops_format::{self, Plugin};
use super::step::{Context, Prepared};

#[derive(Debug, Default)]
pub struct Registry {
    bitops: HashMap<String, (Plugin, super::actions::Configured)>,
}

impl Registry {
    /// Loads every plugin the selected deployments use; problems name those deployments.
    pub fn load<'a>(
        repo: &Repo,
        state_dir: &Path,
        used: impl IntoIterator<Item = (&'a str, &'a str)>,
        diags: &mut Diagnostics,
    ) -> Registry {
        let mut users: HashMap<&str, Vec<&str>> = HashMap::new();
        for (plugin, node) in used {
            users.entry(plugin).or_default().push(node);
        }
        let mut reg = Registry::default();
        for p in &repo.plugins {
            let Some(who) = users.get(p.name.as_str()) else {
                continue;
            };
            let dir = match &p.source {
                PluginSource::Local(dir) => dir.clone(),
                PluginSource::Git { .. } => installed_dir(state_dir, &p.name),
            };
            // For the plan cache: everything in the plugin folder, wherever it is.
            crate::discover::record::tree(&dir);
            let mut local = Diagnostics::default();
            let loaded = bitops_format::load_plugin(&dir, &p.name, &mut local).filter(|plugin| {
                match bitops_format::check_deploy_script(plugin) {
                    Ok(_) => true,
                    Err(problem) => {
                        local.push(problem);
                        false
                    }
                }
            });
            match loaded {
                Some(plugin) => {
                    let words = super::actions::Configured::of(p);
                    reg.bitops.insert(p.name.clone(), (plugin, words));
                }
                None => {
                    let mut list = who.clone();
                    list.sort_unstable();
                    let shown = if list.len() > 5 {
                        format!("{} and {} more", list[..5].join(", "), list.len() - 5)
                    } else {
                        list.join(", ")
                    };
                    for mut problem in local.problems().iter().cloned() {
                        problem.message = format!("{} (used by {shown})", problem.message);
                        if matches!(p.source, PluginSource::Git { .. })
                            && problem.code == "bitops::plugin::not_found"
                        {
                            problem.help = Some("run `bitops plugins install` to fetch git plugins into the state folder".into());
                        }
                        diags.push(problem);
                    }
                }
            }
        }
        reg
    }

    /// The folder of a BitOps-format plugin, if the deployment uses one.
    pub fn plugin_dir(&self, name: &str) -> Option<PathBuf> {
        self.bitops.get(name).map(|(p, _)| p.dir.clone())
    }

    /// What the deployment runs.
    pub fn prepare(&self, ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
        if let Some((p, words)) = self.bitops.get(ctx.plugin) {
            return super::bitops_run::prepare(p, words, ctx);
        }
        if super::builtin::is_builtin(ctx.plugin) {
            return super::builtin::prepare(ctx);
        }
        Err(vec![Problem::new(
            "bitops::plugin::unknown",
            format!(
                "plugin `{}` of `{}/{}` is not available",
                ctx.plugin, ctx.environment, ctx.deployment
            ),
        )])
    }
}

/// Where `bitops plugins install` puts a git plugin (for reading; names were checked when the
/// config was read).
pub fn installed_dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("plugins").join(name)
}

/// [`installed_dir`], refused unless the name is valid and the path stays inside
/// `<state>/plugins`: the check before anything there is created or removed.
pub fn installed_dir_checked(state_dir: &Path, name: &str) -> Result<PathBuf, String> {
    crate::names::child(&state_dir.join("plugins"), crate::names::Kind::Plugin, name)
}

/// A tool folder's `bitops.config.yaml` (already merged with `_default` in a working copy):
/// its root node and the file, or `Ok(None)` when there is none. A file that cannot be read or
/// parsed is a located problem.
pub fn read_tool_config(
    tool_dir: &Path,
    display: &str,
) -> Result<Option<(Node, Arc<SourceFile>)>, Problem> {
    read_tool_config_noting(tool_dir, display, &mut Vec::new())
}

/// [`read_tool_config`], with legacy BitOps keys moved to their v2 places
/// (`crate::config::legacy`) and a warning for each added to `warnings`.
pub fn read_tool_config_noting(
    tool_dir: &Path,
    display: &str,
    warnings: &mut Vec<Problem>,
) -> Result<Option<(Node, Arc<SourceFile>)>, Problem> {
    let mut diags = Diagnostics::default();
    let loaded = crate::config::load_file(
        &tool_dir.join(crate::config::CONFIG_FILE),
        format!("{display}/bitops.config.yaml"),
        &mut diags,
    );
    if let Some(p) = diags.problems().first() {
        return Err(p.clone());
    }
    Ok(loaded.and_then(|l| {
        l.root.map(|mut root| {
            let shown = format!("{display}/bitops.config.yaml");
            warnings.extend(crate::config::legacy::rewrite(
                &mut root,
                Some(&l.file),
                &shown,
            ));
            (root, l.file)
        })
    }))
}

/// The environment's tool config deep-merged over `_default`'s, as a working copy has it.
pub fn merge_tool_configs(default: Option<&Node>, own: Option<Node>) -> Option<Node> {
    match (default, own) {
        (Some(d), Some(o)) if d.as_map().is_some() && o.as_map().is_some() => {
            Some(crate::yaml::merge(d, &o))
        }
        (_, Some(o)) => Some(o),
        (Some(d), None) => Some(d.clone()),
        (None, None) => None,
    }
}
