//! `bitops plugins list` and `bitops plugins install`.
//!
//! Local plugins are read in place at every run; git plugins are cloned into
//! `<state>/plugins/<name>` by `install` (`source_tag` wins over `source_branch`; BitOps ignored
//! the tag). Plugins' own install scripts run only with `--run-install-scripts`: in BitOps they
//! installed tools into the image, which on a laptop or CI runner is the user's decision.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use crate::diagnostic::{Diagnostics, Problem};
use crate::model::{PluginSource, Repo, BUILTIN_PLUGINS};

use super::bitops_format;
use super::registry::{installed_dir, installed_dir_checked};

/// The programs a built-in plugin runs (the main one first; helm also runs `aws` to fetch an
/// EKS kubeconfig, which is reported when a deployment needs it).
pub fn builtin_tools(name: &str) -> &'static [&'static str] {
    match name {
        "terraform" => &["terraform"],
        "ansible" => &["ansible-playbook"],
        "helm" => &["helm"],
        "cloudformation" | "aws" => &["aws"],
        "kubectl" => &["kubectl"],
        _ => &[],
    }
}

/// One line per plugin: name, where it comes from, whether it loads (for a built-in: whether
/// its tool is on `path_var`), who uses it.
pub fn list(repo: &Repo, state_dir: &Path, path_var: Option<&str>) -> String {
    let mut out = String::new();
    let users = |name: &str| -> usize {
        repo.environments
            .iter()
            .flat_map(|e| e.deployments.iter())
            .filter(|d| d.plugin == name)
            .count()
    };
    let _ = writeln!(
        out,
        "{:<16} {:<10} {:<8} {:<9} source",
        "plugin", "kind", "status", "used by"
    );
    for p in &repo.plugins {
        let (kind, source, dir) = match &p.source {
            PluginSource::Local(d) => ("local", d.display().to_string(), d.clone()),
            PluginSource::Git { url, branch, tag } => {
                let at = tag
                    .as_ref()
                    .or(branch.as_ref())
                    .map(|r| format!("@{r}"))
                    .unwrap_or_default();
                (
                    "git",
                    format!("{url}{at}"),
                    installed_dir(state_dir, &p.name),
                )
            }
        };
        let mut d = Diagnostics::default();
        let status = match bitops_format::load_plugin(&dir, &p.name, &mut d) {
            Some(_) if d.is_empty() => "ok".to_string(),
            _ if !dir.exists() => "missing".to_string(),
            _ => "broken".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<16} {kind:<10} {status:<8} {:<9} {source}",
            p.name,
            users(&p.name)
        );
        for problem in d.problems() {
            let _ = writeln!(out, "    {problem}");
        }
    }
    for b in BUILTIN_PLUGINS {
        if repo.plugin(b).is_none() {
            let missing: Vec<&str> = builtin_tools(b)
                .iter()
                .copied()
                .filter(|t| crate::plan::preview::find_on_path(t, path_var).is_none())
                .collect();
            let status = if missing.is_empty() { "ok" } else { "no tool" };
            let _ = writeln!(
                out,
                "{b:<16} {:<10} {status:<8} {:<9} native",
                "built-in",
                users(b)
            );
            for t in missing {
                let _ = writeln!(
                    out,
                    "    `{t}` is not on PATH: plan works, deploy refuses until it is installed"
                );
            }
        }
    }
    out
}

/// Clones every git plugin and, with `run_scripts`, runs every configured plugin's install
/// script; returns what was done, or the problems.
pub fn install(
    repo: &Repo,
    state_dir: &Path,
    run_scripts: bool,
) -> Result<Vec<String>, Diagnostics> {
    let mut done = fetch(repo, state_dir)?;
    if run_scripts {
        let mut diags = Diagnostics::default();
        for (name, dir) in super::links::plugin_dirs(repo, state_dir) {
            match run_install_script(repo, &name, &dir) {
                Ok(line) => done.push(line),
                Err(p) => diags.push(p),
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
    }
    Ok(done)
}

/// Runs `<install language> <plugin>/<install script>` in the plugin's folder, as BitOps' image
/// build did (after checking `plugin.install.dependencies` are configured plugins). Its output
/// goes straight to the terminal: installers can take long and may ask for nothing else.
// `Problem` is large, but this runs once per plugin and callers collect problems by value.
#[allow(clippy::result_large_err)]
fn run_install_script(repo: &Repo, name: &str, dir: &Path) -> Result<String, Problem> {
    let mut d = Diagnostics::default();
    let Some(config) = bitops_format::plugin_config::load(dir, &mut d) else {
        let first = d.problems().first().cloned();
        return Err(first.unwrap_or_else(|| {
            Problem::new(
                "bitops::plugin::install",
                format!("plugin `{name}`: cannot read its plugin.config.yaml"),
            )
        }));
    };
    let missing: Vec<&str> = config
        .dependencies
        .iter()
        .map(String::as_str)
        .filter(|dep| repo.plugin(dep).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Problem::new(
            "bitops::plugin::install",
            format!(
                "plugin `{name}` needs the plugin(s) {} in `bitops.plugins`",
                missing.join(", ")
            ),
        )
        .help("add them to `bitops.plugins` (BitOps stopped with exit 10 here)"));
    }
    let script = dir.join(config.install_script.trim_start_matches('/'));
    if !script.is_file() {
        return Ok(format!(
            "{name}: no install script ({}), nothing to run",
            config.install_script
        ));
    }
    let status = Command::new(&config.install_language)
        .arg(&script)
        .current_dir(dir)
        .env("BITOPS_INSTALLED_PLUGIN_DIR", dir)
        .env("BITOPS_PLUGIN_DIR", dir)
        .env("BITOPS_PLUGIN_NAME", name)
        .status();
    match status {
        Ok(s) if s.success() => Ok(format!("{name}: ran {}", script.display())),
        Ok(s) => Err(Problem::new(
            "bitops::plugin::install",
            format!(
                "plugin `{name}`: {} {} {s}",
                config.install_language,
                script.display()
            ),
        )
        .help("see its output above")),
        Err(e) => Err(Problem::new(
            "bitops::plugin::install",
            format!(
                "plugin `{name}`: cannot run `{}`: {e}",
                config.install_language
            ),
        )
        .help(format!(
            "install `{}` or set `plugin.install.language`",
            config.install_language
        ))),
    }
}

/// Clones every git plugin; returns what was done, or the problems.
fn fetch(repo: &Repo, state_dir: &Path) -> Result<Vec<String>, Diagnostics> {
    let mut done = Vec::new();
    let mut diags = Diagnostics::default();
    for p in &repo.plugins {
        let PluginSource::Git { url, branch, tag } = &p.source else {
            done.push(format!("{}: local, read in place", p.name));
            continue;
        };
        // Both paths are checked to stay inside `<state>/plugins` before anything is removed:
        // a plugin named `/srv/keep-me` or `../../x` once made install delete that folder.
        let plugins_dir = state_dir.join("plugins");
        let paths = installed_dir_checked(state_dir, &p.name).and_then(|dest| {
            let staging = plugins_dir.join(format!(".{}.new", p.name));
            crate::names::inside(&plugins_dir, &staging)?;
            Ok((dest, staging))
        });
        let (dest, staging) = match paths {
            Ok(p) => p,
            Err(why) => {
                diags.push(
                    Problem::new(
                        "bitops::config::name",
                        format!(
                            "plugin `{}` cannot be installed: {why}",
                            p.name.escape_debug()
                        ),
                    )
                    .at(&p.decl, "this plugin")
                    .help(format!("use {}", crate::names::ALLOWED)),
                );
                continue;
            }
        };
        if let Some(r) = tag.as_ref().or(branch.as_ref()) {
            if r.starts_with('-') {
                diags.push(
                    Problem::new(
                        "bitops::plugin::install",
                        format!("plugin `{}`: `{r}` is not a branch or tag name", p.name),
                    )
                    .at(&p.decl, "this plugin"),
                );
                continue;
            }
        }
        let _ = std::fs::remove_dir_all(&staging);
        if let Err(e) = crate::state::fsutil::own_dir(&plugins_dir, "plugins") {
            diags.push(Problem::new(
                "bitops::plugin::install",
                format!("cannot create {}: {e}", plugins_dir.display()),
            ));
            continue;
        }
        let mut cmd = Command::new("git");
        cmd.args(["clone", "--quiet", "--depth", "1"]);
        if let Some(r) = tag.as_ref().or(branch.as_ref()) {
            cmd.args(["--branch", r]);
        }
        // `--`: a URL starting with `-` is a URL, never an option (`--upload-pack=…`).
        cmd.arg("--").arg(url).arg(&staging);
        match cmd.output() {
            Ok(out) if out.status.success() => {
                let _ = std::fs::remove_dir_all(&dest);
                if let Err(e) = std::fs::rename(&staging, &dest) {
                    diags.push(Problem::new(
                        "bitops::plugin::install",
                        format!("plugin `{}`: cannot move it into place: {e}", p.name),
                    ));
                    continue;
                }
                let mut d = Diagnostics::default();
                if bitops_format::load_plugin(&dest, &p.name, &mut d).is_none() {
                    diags.extend(d);
                    continue;
                }
                done.push(format!(
                    "{}: installed from {url} into {}",
                    p.name,
                    dest.display()
                ));
            }
            Ok(out) => {
                let _ = std::fs::remove_dir_all(&staging);
                diags.push(
                    Problem::new(
                        "bitops::plugin::install",
                        format!("plugin `{}`: git clone {url} failed: {}", p.name, String::from_utf8_lossy(&out.stderr).trim()),
                    )
                    .at(&p.decl, "this plugin")
                    .help("check the URL and `source_branch`/`source_tag`, and that git can reach the repository"),
                );
            }
            Err(e) => diags.push(
                Problem::new("bitops::plugin::install", format!("cannot run git: {e}"))
                    .help("install git"),
            ),
        }
    }
    if diags.is_empty() {
        Ok(done)
    } else {
        Err(diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::{EnvVars, Flags};
    use crate::discover::{scan, Input};

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn installs_a_git_plugin_at_its_tag_and_lists_it() {
        let t = tempfile::tempdir().unwrap();
        // A plugin repository with a tag v1 and a later commit on main.
        let src = t.path().join("plugin-src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("deploy.sh"), "echo v1\n").unwrap();
        std::fs::write(
            src.join("plugin.config.yaml"),
            "plugin:\n  deployment:\n    core_schema_parsing: false\n",
        )
        .unwrap();
        git(&src, &["init", "-q"]);
        git(&src, &["add", "."]);
        git(&src, &["commit", "-qm", "v1"]);
        git(&src, &["tag", "v1"]);
        std::fs::write(src.join("deploy.sh"), "echo v2\n").unwrap();
        git(&src, &["commit", "-qam", "v2"]);

        let repo_dir = t.path().join("ops");
        std::fs::create_dir_all(repo_dir.join("env1/thing")).unwrap();
        std::fs::write(
            repo_dir.join("bitops.config.yaml"),
            format!("bitops:\n  plugins:\n    thing:\n      source: file://{}/.git\n      source_tag: v1\n", src.display()).replace("file://", ""),
        )
        .unwrap();
        // A path ending in .git counts as a git source.
        let (repo, d) = scan(&Input {
            root: repo_dir.clone(),
            flags: &Flags::default(),
            env: &EnvVars::default(),
        });
        assert!(d.is_empty(), "{:?}", d.problems());
        let state = repo_dir.join(".bitops");
        assert!(list(&repo, &state, None).contains("missing"));
        let done = install(&repo, &state, false)
            .map_err(|d| format!("{:?}", d.problems()))
            .unwrap();
        assert!(done[0].contains("installed"));
        assert_eq!(
            std::fs::read_to_string(state.join("plugins/thing/deploy.sh")).unwrap(),
            "echo v1\n",
            "the tag, not main"
        );
        let listed = list(&repo, &state, None);
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with("thing") && l.contains(" ok ")),
            "{listed}"
        );
    }
}
