//! Warnings about the repo's shape that the graph cannot see: an environment that has no
//! deployments (it would vanish from the plan without a word) and folders that look like tool
//! folders but match no plugin (`terrafrom/`). Each is an error instead when something depends
//! on that environment: the dependent would otherwise wait for nothing.

use std::collections::HashMap;
use std::path::Path;

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
    let found: Vec<Vec<Problem>> = crate::par::map(&repo.environments, |e| {
        check_env(e, &known, wanted.get(e.name.as_str()))
    });
    for p in found.into_iter().flatten() {
        diags.push(p);
    }
    plain_folders(repo, &known, diags);
}

/// Top-level folders that are not environments (nor `_`/`.` folders) but hold a folder that
/// looks like a misnamed tool folder: the environment the user meant vanished.
fn plain_folders(repo: &Repo, known: &[&str], diags: &mut Diagnostics) {
    let Ok(rd) = std::fs::read_dir(&repo.root) else {
        return;
    };
    // Names first, then the folder test (no `stat` for the environments, nearly every entry).
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e)))
        .filter(|(n, _)| {
            !n.starts_with('.')
                && !n.starts_with('_')
                && *n != repo.default_folder
                // Not `support_dirs`: a folder whose only tool folder is misnamed is a support
                // folder to discovery, and exactly the one to warn about.
                && repo.environment(n).is_none()
        })
        .filter(|(_, e)| is_dir(e))
        .map(|(n, _)| n)
        .collect();
    names.sort();
    for name in names {
        let misnamed = tool_like_folders(&repo.root.join(&name), |_| false, known);
        let Some((dir, plugin)) = misnamed.first() else {
            continue;
        };
        let help = match plugin {
            Some(p) => {
                format!("did you mean `{name}/{p}/`? The folder `{name}/{dir}/` matches no plugin")
            }
            None => format!("`{name}/{dir}/` has a {CONFIG_FILE} but no plugin is called `{dir}`"),
        };
        let p = Problem::new(
            "bitops::repo::empty_environment",
            format!("`{name}/` is not an environment: it holds no tool folder"),
        )
        .path(&repo.root.join(&name))
        .help(help)
        // A `depends_on` naming it is an unknown-name error already; this says why.
        .warning();
        diags.push(p);
    }
}

/// What `depends_on` entries ask of one environment: the whole of it, or named deployments.
#[derive(Default)]
struct Wanted<'a> {
    whole: Option<&'a Loc>,
    deployments: HashMap<&'a str, &'a Loc>,
}

/// Every environment some `depends_on` entry names, with the first entry naming each part.
fn depended_on(repo: &Repo) -> HashMap<&str, Wanted<'_>> {
    let mut out: HashMap<&str, Wanted<'_>> = HashMap::new();
    for e in &repo.environments {
        let env_level = e.depends_on.iter().map(|x| (x, false));
        let deployment_level = e
            .deployments
            .iter()
            .flat_map(|d| d.depends_on.iter().flatten())
            .map(|x| (x, true));
        for (entry, in_deployment) in env_level.chain(deployment_level) {
            let name = entry.value.trim().trim_end_matches('/');
            let (env, dep) = match name.split_once('/') {
                Some((env, dep)) => (env, Some(dep)),
                // A bare name is a deployment of the same environment when one has that name.
                None if in_deployment && e.deployment(name).is_some() => continue,
                None if repo.environment(name).is_some() || !in_deployment => (name, None),
                // Neither: meant as a deployment of this environment (maybe a misnamed folder).
                None => (e.name.as_str(), Some(name)),
            };
            let Some(target) = repo.environment(env) else {
                continue;
            };
            let w = out.entry(target.name.as_str()).or_default();
            match dep {
                None => {
                    w.whole.get_or_insert(&entry.loc);
                }
                Some(d) => {
                    w.deployments.entry(d).or_insert(&entry.loc);
                }
            }
        }
    }
    out
}

fn check_env(e: &Environment, known: &[&str], wanted: Option<&Wanted<'_>>) -> Vec<Problem> {
    let wanted_by = wanted.and_then(|w| w.whole.or_else(|| w.deployments.values().next().copied()));
    // Its config could not be read (already an error): its deployments are unknown, not absent.
    if e.config_file.is_none() && e.dir.join(CONFIG_FILE).is_file() {
        return Vec::new();
    }
    // With a `deployments` list, unlisted folders are the user's business (BitOps ignored them
    // too); found from folders, a misspelt tool folder silently drops a deployment.
    let look = e.deployments_from == DeploymentsFrom::Folders || e.deployments.is_empty();
    let misnamed: Vec<(String, Option<String>)> = if look {
        tool_like_folders(&e.dir, |n| e.deployment(n).is_some(), known)
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let depended = |p: Problem, wanted_by: Option<&Loc>| match wanted_by {
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
        out.push(depended(p, wanted_by));
        return out;
    }
    for (dir, plugin) in misnamed {
        let help = match &plugin {
            Some(p) => format!("did you mean `{p}`? Rename the folder to `{}/{p}/`", e.name),
            None => format!(
                "name it after its plugin, or list it in `bitops.deployments` with `plugin:` in {}/{CONFIG_FILE}",
                e.name
            ),
        };
        // Something depends on the deployment this folder was meant to be: an error.
        let needed = wanted.and_then(|w| {
            w.deployments
                .get(dir.as_str())
                .or_else(|| plugin.as_deref().and_then(|p| w.deployments.get(p)))
                .copied()
        });
        let p = Problem::new(
            "bitops::repo::tool_like_folder",
            format!(
                "`{}/{dir}/` looks like a tool folder but matches no plugin, so it is not deployed",
                e.name
            ),
        )
        .path(&e.dir.join(&dir))
        .help(help);
        out.push(depended(p, needed));
    }
    out
}

/// Sub-folders that are not deployments but look like tool folders: a near miss of a plugin's
/// name (with the plugin), or a folder holding a tool config (`None`).
fn tool_like_folders(
    dir: &Path,
    is_deployment: impl Fn(&str) -> bool,
    known: &[&str],
) -> Vec<(String, Option<String>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Names first: the folder test is a `stat` only for a symlink.
        if name.starts_with('.')
            || name.starts_with('_')
            || name == BEFORE_HOOKS
            || name == AFTER_HOOKS
            || is_deployment(&name)
            // A plugin's exact name that is not deployed (`aws/`, a library) is deliberate.
            || known.contains(&name.as_str())
            || !is_dir(&entry)
        {
            continue;
        }
        let lower = name.to_lowercase();
        let near = known
            .iter()
            .copied()
            .find(|p| *p == lower)
            .or_else(|| did_you_mean(&lower, known.iter().copied()));
        if let Some(p) = near {
            out.push((name, Some(p.to_string())));
        } else if entry.path().join(CONFIG_FILE).is_file() {
            out.push((name, None));
        }
    }
    out.sort();
    out
}

/// `entry.path().is_dir()` (a symlink is followed) from the listing's file type: a `stat` only
/// for a symlink or a file system that does not report types.
fn is_dir(entry: &std::fs::DirEntry) -> bool {
    match entry.file_type() {
        Ok(ft) if ft.is_dir() => true,
        Ok(ft) if !ft.is_symlink() => false,
        _ => entry.path().is_dir(),
    }
}
