//! `--changed-since REF`: which environments a git change touches.
//!
//! Committed changes since REF, staged and unstaged edits, and untracked files all count. A
//! change inside an environment selects it; a change under `_default/<tool>` selects the
//! environments with that deployment; a change in a plugin's folder selects the environments
//! using that plugin; a deleted environment selects nothing; anything else outside the
//! environments (the repo config, `_scripts`, other root files copied into every working copy)
//! selects every environment.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::diagnostic::Problem;
use crate::model::{PluginSource, Repo};

/// Runs git in the repo and maps the changed paths to environment names.
pub fn changed_environments(repo: &Repo, git_ref: &str) -> Result<BTreeSet<String>, Problem> {
    // What git says cannot be checked with a `stat`: no plan cache.
    crate::discover::record::poison("--changed-since asks git");
    let mut paths = git_lines(
        &repo.root,
        &["diff", "--name-only", "--relative", git_ref, "--"],
        git_ref,
    )?;
    paths.extend(git_lines(
        &repo.root,
        &["ls-files", "--others", "--exclude-standard"],
        git_ref,
    )?);
    Ok(environments_for_paths(
        repo,
        paths.iter().map(String::as_str),
    ))
}

fn git_lines(dir: &Path, args: &[&str], git_ref: &str) -> Result<Vec<String>, Problem> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| {
            Problem::new(
                "bitops::changed::git",
                format!("--changed-since needs git, which could not run: {e}"),
            )
            .help("install git, or drop --changed-since")
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Problem::new(
            "bitops::changed::git",
            format!("--changed-since {git_ref}: git {} failed: {}", args[0], err.trim()),
        )
        .help("the ops repo must be inside a git checkout and REF a commit, branch or tag it knows (fetch it first in a shallow CI clone)"));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// The pure part: paths relative to the repo root → environments.
pub fn environments_for_paths<'a>(
    repo: &Repo,
    paths: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    let all = || repo.environments.iter().map(|e| e.name.clone());
    let mut out = BTreeSet::new();
    for path in paths {
        let path = path.trim_start_matches("./");
        if path.starts_with(".bitops/") {
            continue;
        }
        let (first, rest) = path.split_once('/').unwrap_or((path, ""));
        if repo.environment(first).is_some() {
            out.insert(first.to_string());
            continue;
        }
        let abs = repo.root.join(path);
        let plugins: Vec<&str> = repo
            .plugins
            .iter()
            .filter(|p| matches!(&p.source, PluginSource::Local(dir) if abs.starts_with(dir)))
            .map(|p| p.name.as_str())
            .collect();
        if !plugins.is_empty() {
            for e in &repo.environments {
                if e.deployments
                    .iter()
                    .any(|d| plugins.contains(&d.plugin.as_str()))
                {
                    out.insert(e.name.clone());
                }
            }
            continue;
        }
        // A folder that is no environment now, yet named like one, is an environment that the
        // change deleted: nothing is left to deploy for it.
        let env_like =
            !first.starts_with('_') && !first.starts_with('.') && first != repo.default_folder;
        if env_like && !rest.is_empty() {
            continue;
        }
        if first == repo.default_folder && rest.contains('/') {
            let tool = rest.split('/').next().unwrap_or_default();
            for e in &repo.environments {
                if e.deployments.iter().any(|d| d.name == tool) {
                    out.insert(e.name.clone());
                }
            }
            continue;
        }
        out.extend(all());
    }
    out
}
