//! Reads the repo: its config, its environments (in parallel) and each environment's
//! deployments, folders and hooks.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::files;
use crate::config::section::read_file_section;
use crate::config::settings::{env_settings, EnvVars, Flags, Origin, Setting, DEFAULT_FOLDER};
use crate::config::{load_file, BitopsSection, DeploymentSpec, CONFIG_FILE};
use crate::diagnostic::{did_you_mean, Diagnostics, Problem};
use crate::model::{
    Deployment, DeploymentsFrom, Environment, Hooks, PluginRef, PluginSource, Repo, AFTER_HOOKS,
    BEFORE_HOOKS, BUILTIN_PLUGINS,
};

pub struct Input<'a> {
    pub root: PathBuf,
    pub flags: &'a Flags,
    pub env: &'a EnvVars,
}

/// Reads everything; problems are collected, not returned early, so one run reports them all.
pub fn scan(input: &Input<'_>) -> (Repo, Diagnostics) {
    let mut diags = Diagnostics::default();
    let root = &input.root;
    let (config, config_file) =
        match load_file(&root.join(CONFIG_FILE), CONFIG_FILE.to_string(), &mut diags) {
            Some(l) => (
                read_file_section(&l.file, l.root.as_ref(), &mut diags),
                Some(l.file),
            ),
            None => (BitopsSection::default(), None),
        };
    let default_folder = input
        .env
        .get("BITOPS_DEFAULT_FOLDER")
        // An invalid one (`/etc`) is reported by the settings; never read it meanwhile.
        .filter(|f| crate::names::check(crate::names::Kind::Folder, f).is_ok())
        .map(str::to_string)
        .or_else(|| config.default_folder.as_ref().map(|s| s.value.clone()))
        .unwrap_or_else(|| DEFAULT_FOLDER.to_string());

    let (env_names, support_dirs) = match top_level_dirs(root, &default_folder) {
        Ok(v) => v,
        Err(e) => {
            diags.push(
                Problem::new(
                    "bitops::repo::unreadable",
                    format!("cannot list the operations repo: {e}"),
                )
                .path(root),
            );
            (Vec::new(), Vec::new())
        }
    };
    let plugins = plugin_refs(root, &config, &mut diags);
    let default_dirs: BTreeSet<String> = subdirs(&root.join(&default_folder)).unwrap_or_default();
    let known_plugins: Vec<&str> = BUILTIN_PLUGINS
        .iter()
        .copied()
        .chain(plugins.iter().map(|p| p.name.as_str()))
        .collect();

    // A top-level folder is an environment when it has a config or a tool folder.
    let tool_names: BTreeSet<String> = known_plugins
        .iter()
        .map(|s| s.to_string())
        .chain(
            config
                .deployments
                .iter()
                .flatten()
                .map(|d| d.name.value.clone()),
        )
        .collect();
    let ctx = EnvCtx {
        root,
        tool_names: &tool_names,
        repo: &config,
        flags: input.flags,
        env: input.env,
        default_dirs: &default_dirs,
        default_hooks: default_hooks(root, &default_folder, &default_dirs),
        known_plugins: &known_plugins,
    };
    let results: Vec<(Option<Environment>, Diagnostics)> = crate::par::map(&env_names, |name| {
        // Every file a run copies or reads is checked before anything runs. Walked first:
        // what the walk listed spares the hook-folder probes (problems keep their order).
        let mut seen = files::Seen::default();
        let mut walked = Diagnostics::default();
        let dir = root.join(name);
        files::check_tree_seen(root, &dir, &Default::default(), &mut walked, &mut seen);
        let (env, mut d) = ctx.scan_env(name, &seen);
        d.extend(walked);
        (env, d)
    });
    let mut environments = Vec::with_capacity(results.len());
    let mut support_dirs = support_dirs;
    for ((e, d), name) in results.into_iter().zip(&env_names) {
        match e {
            Some(e) => environments.push(e),
            None => support_dirs.push(name.clone()),
        }
        diags.extend(d);
    }
    support_dirs.sort();
    // Root files and support folders (walked above: the environments).
    let mut skip: std::collections::HashSet<PathBuf> =
        [".git", ".bitops"].iter().map(|n| root.join(n)).collect();
    skip.extend(env_names.iter().map(|n| root.join(n)));
    files::check_tree(root, root, &skip, &mut diags);
    environments.sort_by(|a, b| a.name.cmp(&b.name));
    let repo = Repo {
        root: root.clone(),
        config,
        config_file,
        default_folder,
        environments,
        support_dirs,
        plugins,
    };
    (repo, diags)
}

/// Candidate environments (top-level folders not starting with `_` or `.`; `scan_env` decides)
/// and support folders.
fn top_level_dirs(
    root: &Path,
    default_folder: &str,
) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let mut envs = Vec::new();
    let mut support = Vec::new();
    for name in subdirs(root)? {
        if name == ".git" || name == ".bitops" {
            continue;
        }
        if name.starts_with('_') || name.starts_with('.') || name == default_folder {
            support.push(name);
        } else {
            envs.push(name);
        }
    }
    Ok((envs, support))
}

fn subdirs(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Follow symlinks: BitOps copied them as content.
        let is_dir = entry.file_type()?.is_dir()
            || (entry.file_type()?.is_symlink() && entry.path().is_dir());
        if is_dir {
            if let Ok(name) = entry.file_name().into_string() {
                out.insert(name);
            }
        }
    }
    Ok(out)
}

fn plugin_refs(root: &Path, config: &BitopsSection, diags: &mut Diagnostics) -> Vec<PluginRef> {
    let mut out = Vec::new();
    for p in config.plugins.iter().flatten() {
        let Some(source) = &p.source else {
            diags.push(
                Problem::new(
                    "bitops::plugin::source",
                    format!("plugin `{}` has no `source`", p.name.value),
                )
                .at(&p.name.loc, "no source")
                .help("add `source: ./path/to/plugin` (a folder in the repo) or a git URL"),
            );
            continue;
        };
        let s = source.value.trim();
        let is_git = s.contains("://") && !s.starts_with("file://")
            || s.starts_with("git@")
            || s.ends_with(".git");
        let src = if is_git {
            PluginSource::Git {
                url: s.to_string(),
                branch: p.source_branch.as_ref().map(|b| b.value.clone()),
                tag: p.source_tag.as_ref().map(|t| t.value.clone()),
            }
        } else {
            let path = Path::new(s.strip_prefix("file://").unwrap_or(s));
            // `./_plugins/x` → `<root>/_plugins/x`: keep paths shown in plans and logs clean.
            let joined = if path.is_absolute() {
                path.to_path_buf()
            } else {
                root.join(path)
            };
            PluginSource::Local(
                joined
                    .components()
                    .filter(|c| !matches!(c, std::path::Component::CurDir))
                    .collect(),
            )
        };
        out.push(PluginRef {
            name: p.name.value.clone(),
            source: src,
            decl: p.name.loc.clone(),
            plan_action: p.plan_action.as_ref().map(|a| a.value.trim().to_string()),
            destroy_action: p
                .destroy_action
                .as_ref()
                .map(|a| a.value.trim().to_string()),
        });
    }
    out
}

struct EnvCtx<'a> {
    root: &'a Path,
    tool_names: &'a BTreeSet<String>,
    repo: &'a BitopsSection,
    flags: &'a Flags,
    env: &'a EnvVars,
    default_dirs: &'a BTreeSet<String>,
    default_hooks: HashMap<String, Hooks>,
    known_plugins: &'a [&'a str],
}

impl EnvCtx<'_> {
    /// The environment in folder `name`, or `None` when the folder is not one: it has neither
    /// a config nor a folder named after a plugin or a repo-level deployment (`scripts/`,
    /// `modules/`: support folders, copied into the working copy like `_`-folders).
    fn scan_env(&self, name: &str, seen: &files::Seen) -> (Option<Environment>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let dir = self.root.join(name);
        // The name becomes run-folder paths and variable names (crate::names).
        if let Err(why) = crate::names::check(crate::names::Kind::Environment, name) {
            diags.push(
                Problem::new(
                    "bitops::config::name",
                    format!(
                        "folder `{}` cannot be an environment: {why}",
                        name.escape_debug()
                    ),
                )
                .path(&dir)
                .help(format!(
                    "rename it using {}; folders starting with `_` or `.` are not environments",
                    crate::names::ALLOWED
                )),
            );
        }
        let (config, config_file) = match load_file(
            &dir.join(CONFIG_FILE),
            format!("{name}/{CONFIG_FILE}"),
            &mut diags,
        ) {
            Some(l) => (
                read_file_section(&l.file, l.root.as_ref(), &mut diags),
                Some(l.file),
            ),
            None => (BitopsSection::default(), None),
        };
        let own_dirs = subdirs(&dir).unwrap_or_default();
        if config_file.is_none()
            && diags.is_empty()
            && !own_dirs.iter().any(|d| self.tool_names.contains(d))
        {
            return (None, diags);
        }
        let settings = env_settings(self.flags, self.env, self.repo, &config, &mut diags);

        let (specs, from) = if let Some(d) = &config.deployments {
            (Some(d), DeploymentsFrom::Environment)
        } else if let Some(d) = &self.repo.deployments {
            (Some(d), DeploymentsFrom::Repo)
        } else {
            (None, DeploymentsFrom::Folders)
        };
        let deployments = match specs {
            Some(specs) => specs
                .iter()
                .filter_map(|s| self.declared(name, s, &settings, &own_dirs, seen, &mut diags))
                .collect(),
            None => self.found_in_folders(name, &dir, &own_dirs, &settings, seen),
        };
        // A pool nobody defined would silently mean "no limit": a typo must not lift one.
        let pools: Vec<&str> = [self.repo, &config]
            .iter()
            .flat_map(|c| c.pools.iter().flatten())
            .map(|(n, _)| n.value.as_str())
            .collect();
        for d in &deployments {
            let Some(pool) = &d.pool else { continue };
            if pools.contains(&pool.value.as_str()) {
                continue;
            }
            let mut p = Problem::new(
                "bitops::config::unknown_pool",
                format!(
                    "deployment `{name}/{}` uses pool `{}`, which no `bitops.pools` defines",
                    d.name, pool.value
                ),
            )
            .at(&pool.loc, "unknown pool");
            p = match did_you_mean(&pool.value, pools.iter().copied()) {
                Some(s) => p.help(format!("did you mean `{s}`?")),
                None => p.help(format!(
                    "define it in the repo's {CONFIG_FILE}: `bitops.pools: {{{}: 1}}`",
                    pool.value
                )),
            };
            diags.push(p);
        }
        let env = Environment {
            name: name.to_string(),
            dir,
            depends_on: config.depends_on.clone().unwrap_or_default(),
            config,
            config_file,
            settings,
            deployments,
            deployments_from: from,
        };
        (Some(env), diags)
    }

    fn declared(
        &self,
        env: &str,
        spec: &DeploymentSpec,
        settings: &crate::config::settings::EnvSettings,
        own_dirs: &BTreeSet<String>,
        seen: &files::Seen,
        diags: &mut Diagnostics,
    ) -> Option<Deployment> {
        let name = &spec.name.value;
        let plugin = spec
            .plugin
            .as_ref()
            .map(|p| p.value.clone())
            .unwrap_or_else(|| name.clone());
        if !self.known_plugins.contains(&plugin.as_str()) {
            let loc = spec
                .plugin
                .as_ref()
                .map(|p| &p.loc)
                .unwrap_or(&spec.name.loc);
            let mut p = Problem::new(
                "bitops::plugin::unknown",
                format!("deployment `{env}/{name}` uses plugin `{plugin}`, which is neither built in nor configured"),
            )
            .at(loc, "unknown plugin");
            p = match did_you_mean(&plugin, self.known_plugins.iter().copied()) {
                Some(s) => p.help(format!("did you mean `{s}`? Otherwise add it under `bitops.plugins` in the repo's {CONFIG_FILE}")),
                None => p.help(format!(
                    "built-in plugins are {}; add others under `bitops.plugins.{plugin}.source` in the repo's {CONFIG_FILE}",
                    BUILTIN_PLUGINS.join(", ")
                )),
            };
            diags.push(p);
        }
        if !own_dirs.contains(name) && !self.default_dirs.contains(name) {
            let mut p = Problem::new(
                "bitops::deployment::missing_folder",
                format!("deployment `{name}` of environment `{env}` has no folder `{env}/{name}`"),
            )
            .at(&spec.name.loc, "no such folder");
            p = match did_you_mean(name, own_dirs.iter().map(String::as_str)) {
                Some(s) => p.help(format!("did you mean the folder `{s}`? Otherwise create `{env}/{name}` or remove this entry")),
                None => p.help(format!("create the folder `{env}/{name}` or remove this entry")),
            };
            diags.push(p);
            return None;
        }
        let overriding = |o: &Origin| matches!(o, Origin::Flag(_) | Origin::EnvVar(_));
        let timeout = match &spec.timeout {
            Some(t) if !overriding(&settings.timeout.origin) => Setting {
                value: Some(t.value),
                origin: Origin::Config(t.loc.to_string()),
            },
            _ => settings.timeout.clone(),
        };
        let retries = match &spec.retries {
            Some(r) if !overriding(&settings.retries.origin) => Setting {
                value: r.value as u32,
                origin: Origin::Config(r.loc.to_string()),
            },
            _ => settings.retries.clone(),
        };
        let dir = self.root.join(env).join(name);
        Some(Deployment {
            hooks: self.hooks(env, name, seen),
            name: name.clone(),
            plugin,
            dir,
            decl: Some(spec.name.loc.clone()),
            depends_on: spec.depends_on.clone(),
            timeout,
            retries,
            pool: spec.pool.clone(),
            inputs: spec.inputs.clone(),
        })
    }

    /// Without any `deployments` list: the tool folders present, BitOps' image order first.
    fn found_in_folders(
        &self,
        env: &str,
        env_dir: &Path,
        own_dirs: &BTreeSet<String>,
        settings: &crate::config::settings::EnvSettings,
        seen: &files::Seen,
    ) -> Vec<Deployment> {
        let ordered = ["cloudformation", "terraform", "helm", "ansible"];
        let mut names: Vec<&str> = ordered
            .iter()
            .copied()
            .filter(|n| own_dirs.contains(*n))
            .collect();
        names.extend(
            own_dirs
                .iter()
                .map(String::as_str)
                .filter(|n| !ordered.contains(n) && self.known_plugins.contains(n) && *n != "aws"),
        );
        names
            .into_iter()
            .map(|n| Deployment {
                name: n.to_string(),
                plugin: n.to_string(),
                dir: env_dir.join(n),
                decl: None,
                depends_on: None,
                timeout: settings.timeout.clone(),
                retries: settings.retries.clone(),
                pool: None,
                inputs: Vec::new(),
                hooks: self.hooks(env, n, seen),
            })
            .collect()
    }

    /// Hook files as BitOps runs them: every entry, byte order; `_default`'s merged in.
    /// Two `stat`s decide whether there is anything to list (the kernel caches misses), and
    /// none when the repo walk listed the deployment's folder without a hook folder in it: this
    /// matters on repos with tens of thousands of deployments and no hooks.
    fn hooks(&self, env: &str, deployment: &str, seen: &files::Seen) -> Hooks {
        let mut hooks = self
            .default_hooks
            .get(deployment)
            .cloned()
            .unwrap_or_default();
        let dir = self.root.join(env).join(deployment);
        for (name, target) in [
            (BEFORE_HOOKS, &mut hooks.before),
            (AFTER_HOOKS, &mut hooks.after),
        ] {
            let folder = dir.join(name);
            if seen.may_exist(&folder) && std::fs::metadata(&folder).is_ok_and(|m| m.is_dir()) {
                target.extend(list_names(&folder));
                target.sort();
                target.dedup();
            }
        }
        hooks
    }
}

fn list_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Hook files of each tool folder in `_default`, read once per run.
fn default_hooks(
    root: &Path,
    default_folder: &str,
    default_dirs: &BTreeSet<String>,
) -> HashMap<String, Hooks> {
    default_dirs
        .iter()
        .map(|tool| {
            let base = root.join(default_folder).join(tool);
            let mut before = list_names(&base.join(BEFORE_HOOKS));
            let mut after = list_names(&base.join(AFTER_HOOKS));
            before.sort();
            after.sort();
            (tool.clone(), Hooks { before, after })
        })
        .collect()
}
