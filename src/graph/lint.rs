//! Warnings about the repo's shape that the graph cannot see: an environment that has no
//! deployments (it would vanish from the plan without a word) and folders that look like tool
//! folders but match no plugin (`terrafrom/`). Each is an error instead when something depends
//! on that environment: the dependent would otherwise wait for nothing.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::config::CONFIG_FILE;
use crate::diagnostic::{did_you_mean, Diagnostics, Loc, Problem};
use crate::model::{
    DeploymentsFrom, Environment, Repo, AFTER_HOOKS, BEFORE_HOOKS, BUILTIN_PLUGINS,
};

/// Pushes a warning (or error) for each empty environment and each tool-like folder.
pub fn shape(repo: &Repo, diags: &mut Diagnostics) {
    let known: Vec<&str> = BUILTIN_PLUGINS
        .iter()
        .copied()
        .chain(repo.plugins.iter().map(|p| p.name.as_str()))
        .collect();
    let wanted = depended_on(repo);
    let found: Vec<Problem> = repo
        .environments
        .par_iter()
        .flat_map_iter(|e| check_env(e, &known, wanted.get(e.name.as_str())))
        .collect();
    for p in found {
        diags.push(p);
    }
}

/// Environments named by a `depends_on` entry, with the first entry naming each.
fn depended_on(repo: &Repo) -> HashMap<&str, &Loc> {
    let mut out: HashMap<&str, &Loc> = HashMap::new();
    for e in &repo.environments {
        let deployment_entries = e
            .deployments
            .iter()
            .flat_map(|d| d.depends_on.iter().flatten());
        for entry in e.depends_on.iter().chain(deployment_entries) {
            let name = entry.value.trim().trim_end_matches('/');
            let env = match name.split_once('/') {
                Some((env, _)) => env,
                // A bare name is a deployment of the same environment when one has that name.
                None if e.deployment(name).is_some() => continue,
                None => name,
            };
            if let Some(target) = repo.environment(env) {
                out.entry(target.name.as_str()).or_insert(&entry.loc);
            }
        }
    }
    out
}

fn check_env(e: &Environment, known: &[&str], wanted_by: Option<&&Loc>) -> Vec<Problem> {
    // Its config could not be read (already an error): its deployments are unknown, not absent.
    if e.config_file.is_none() && e.dir.join(CONFIG_FILE).is_file() {
        return Vec::new();
    }
    // With a `deployments` list, unlisted folders are the user's business (BitOps ignored them
    // too); found from folders, a misspelt tool folder silently drops a deployment.
    let look = e.deployments_from == DeploymentsFrom::Folders || e.deployments.is_empty();
    let misnamed: Vec<(String, Option<&str>)> = if look {
        tool_like_folders(&e.dir, e, known)
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let depended = |p: Problem| match wanted_by {
        Some(loc) => {
            let mut p = p.at(loc, "depends on it");
            p.severity = crate::diagnostic::Severity::Error;
            p
        }
        None => p.warning(),
    };
    if e.deployments.is_empty() {
        let mut message = format!("environment `{}` has no deployments", e.name);
        if wanted_by.is_some() {
            message.push_str(", yet something depends on it");
        }
        let help = match misnamed.first() {
            Some((dir, Some(plugin))) => format!(
                "did you mean `{}/{plugin}/`? The folder `{}/{dir}/` matches no plugin",
                e.name, e.name
            ),
            Some((dir, None)) => format!(
                "`{}/{dir}/` has a {CONFIG_FILE} but no plugin is called `{dir}`; name it after its plugin or list it in `bitops.deployments` with `plugin:`",
                e.name
            ),
            None => format!(
                "add a tool folder ({}/terraform/, helm/, ansible/, cloudformation/, kubectl/) or list `bitops.deployments` in {}/{CONFIG_FILE}; a folder that is not an environment can start with `_`",
                e.name, e.name
            ),
        };
        let p = Problem::new("bitops::repo::empty_environment", message)
            .path(&e.dir)
            .help(help);
        out.push(depended(p));
        return out;
    }
    for (dir, plugin) in misnamed {
        let help = match plugin {
            Some(p) => format!("did you mean `{p}`? Rename the folder to `{}/{p}/`", e.name),
            None => format!(
                "name it after its plugin, or list it in `bitops.deployments` with `plugin:` in {}/{CONFIG_FILE}",
                e.name
            ),
        };
        out.push(
            Problem::new(
                "bitops::repo::tool_like_folder",
                format!(
                    "`{}/{dir}/` looks like a tool folder but matches no plugin, so it is not deployed",
                    e.name
                ),
            )
            .path(&e.dir.join(&dir))
            .help(help)
            .warning(),
        );
    }
    out
}

/// Sub-folders that are not deployments but look like tool folders: a near miss of a plugin's
/// name (with the plugin), or a folder holding a tool config (`None`).
fn tool_like_folders(
    dir: &Path,
    e: &Environment,
    known: &[&str],
) -> Vec<(String, Option<&'static str>)>
where
{
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !entry.path().is_dir()
            || name.starts_with('.')
            || name.starts_with('_')
            || name == BEFORE_HOOKS
            || name == AFTER_HOOKS
            || e.deployment(&name).is_some()
        {
            continue;
        }
        let lower = name.to_lowercase();
        let near = BUILTIN_PLUGINS
            .iter()
            .copied()
            .find(|p| *p == lower)
            .or_else(|| did_you_mean(&lower, BUILTIN_PLUGINS.iter().copied()));
        let near_configured = known.iter().any(|k| *k == name);
        if near_configured {
            continue;
        }
        if let Some(p) = near {
            out.push((name, Some(p)));
        } else if entry.path().join(CONFIG_FILE).is_file() {
            out.push((name, None));
        }
    }
    out.sort();
    out
}
