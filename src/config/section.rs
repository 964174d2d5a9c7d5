//! The `bitops:` section of a repo- or environment-level `bitops.config.yaml`.
//!
//! Every field is optional: `None` means "not set at this level", so `settings` can layer the
//! levels leaf by leaf as BitOps did. BitOps ignored unknown keys; here they are errors with a
//! did-you-mean, because a silently ignored `fail_fsat: false` is how production gets hurt.

use std::sync::Arc;
use std::time::Duration;

use crate::diagnostic::{Diagnostics, Loc, Problem, SourceFile, Spanned};
use crate::yaml::Node;

use super::reader::Reader;
use crate::names::Kind;

#[derive(Clone, Debug, Default)]
pub struct BitopsSection {
    pub fail_fast: Option<Spanned<bool>>,
    pub run_mode: Option<Spanned<String>>,
    pub jobs: Option<Spanned<u64>>,
    pub pools: Option<Vec<(Spanned<String>, Spanned<u64>)>>,
    pub timeout: Option<Spanned<Duration>>,
    pub retries: Option<Spanned<u64>>,
    pub default_folder: Option<Spanned<String>>,
    pub logging: LoggingSection,
    pub plugins: Option<Vec<PluginSpec>>,
    pub plugin_dir: Option<Spanned<String>>,
    pub deployments: Option<Vec<DeploymentSpec>>,
    /// Where `deployments:` was written (for "no deployments" messages).
    pub deployments_loc: Option<Loc>,
    pub depends_on: Option<Vec<Spanned<String>>>,
    pub protected: Option<Spanned<bool>>,
    /// Repo level only: the shared state store's URL (src/state/store/choose.rs).
    pub state: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Default)]
pub struct LoggingSection {
    pub level: Option<Spanned<String>>,
    pub color: Option<Spanned<bool>>,
    pub filename: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub masks: Option<Vec<MaskSpec>>,
}

#[derive(Clone, Debug)]
pub struct MaskSpec {
    pub search: Spanned<String>,
    pub replace: String,
    /// Compiled here, once: a mask that cannot be built is a diagnostic, never a mask that is
    /// silently left out (which would print the secret).
    pub mask: crate::mask::Mask,
}

#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub name: Spanned<String>,
    pub source: Option<Spanned<String>>,
    pub source_branch: Option<Spanned<String>>,
    pub source_tag: Option<Spanned<String>>,
    /// The plugin's stack action for `plan --run` / `destroy` (`""`: it has none).
    pub plan_action: Option<Spanned<String>>,
    pub destroy_action: Option<Spanned<String>>,
}

#[derive(Clone, Debug)]
pub struct DeploymentSpec {
    pub name: Spanned<String>,
    /// `None` when the entry names no plugin: the deployment's name is used.
    pub plugin: Option<Spanned<String>>,
    /// `None`: run after the previous deployment; `Some([])`: start at once.
    pub depends_on: Option<Vec<Spanned<String>>>,
    pub timeout: Option<Spanned<Duration>>,
    pub retries: Option<Spanned<u64>>,
    pub pool: Option<Spanned<String>>,
    /// `inputs: {name: <env>/<deployment>.<output>}`, in the order written.
    pub inputs: Vec<InputSpec>,
}

/// One declared input: a name for the tool and the upstream output it takes its value from.
#[derive(Clone, Debug)]
pub struct InputSpec {
    pub name: Spanned<String>,
    /// `<env>/<deployment>.<output>` or `<deployment>.<output>` (same environment).
    pub from: Spanned<String>,
}

/// Limits on numbers (docs/guarantees.md): out of range is a located error, never truncated.
pub const MAX_JOBS: u64 = 4096;
pub const MAX_RETRIES: u64 = 100;

const SECTION_KEYS: &[&str] = &[
    "fail_fast",
    "run_mode",
    "jobs",
    "pools",
    "timeout",
    "retries",
    "default_folder",
    "logging",
    "plugins",
    "deployments",
    "depends_on",
    "protected",
    "state",
];
const LOGGING_KEYS: &[&str] = &["level", "color", "filename", "path", "err", "masks"];
const PLUGIN_KEYS: &[&str] = &[
    "source",
    "source_branch",
    "source_tag",
    "plan_action",
    "destroy_action",
];
const DEPLOYMENT_KEYS: &[&str] = &[
    "plugin",
    "depends_on",
    "timeout",
    "retries",
    "pool",
    "inputs",
];

/// Reads the `bitops:` section of a parsed repo- or environment-level file.
pub fn read_file_section(
    file: &Arc<SourceFile>,
    root: Option<&Node>,
    diags: &mut Diagnostics,
) -> BitopsSection {
    let Some(root) = root else {
        return BitopsSection::default();
    };
    let mut r = Reader::new(file, diags);
    let Some(top) = r.map("(top level)", root) else {
        return BitopsSection::default();
    };
    // Besides `bitops:`, BitOps ignored every top-level key: a `bitop:` typo silently dropped
    // its settings. A tool's settings here (`terraform:` in a repo or environment config) are
    // read by no one, in BitOps as in bitops: say where they belong rather than drop them.
    for (k, _) in &top {
        if k.value == "bitops" {
            continue;
        }
        if crate::model::BUILTIN_PLUGINS.contains(&k.value.as_str()) {
            r.diags.push(
                Problem::new(
                    "bitops::config::tool_section",
                    format!("`{}:` in `{}` is not read", k.value, file.name),
                )
                .at(&k.loc, "tool settings here are ignored")
                .help(format!(
                    "tool settings belong in the tool folder's own file, `<environment>/{}/bitops.config.yaml`; this file only holds `bitops:`",
                    k.value
                ))
                .warning(),
            );
            continue;
        }
        let help = match crate::diagnostic::did_you_mean(&k.value, ["bitops"]) {
            Some(_) => "did you mean `bitops`?".to_string(),
            None => format!(
                "this file holds `bitops:` only; a tool's settings go in its folder's {}",
                super::CONFIG_FILE
            ),
        };
        r.diags.push(
            Problem::new(
                "bitops::config::unknown_key",
                format!("unknown top-level key `{}`", k.value),
            )
            .at(&k.loc, "unknown key")
            .help(help),
        );
    }
    let Some((_, section)) = top.iter().rev().find(|(k, _)| k.value == "bitops") else {
        return BitopsSection::default();
    };
    read_section(&mut r, section)
}

fn read_section(r: &mut Reader<'_>, node: &Node) -> BitopsSection {
    let mut s = BitopsSection::default();
    let Some(entries) = r.map("bitops", node) else {
        return s;
    };
    r.check_keys("bitops", &entries, SECTION_KEYS);
    for (k, v) in &entries {
        let key = k.value.as_str();
        match key {
            "fail_fast" => s.fail_fast = r.bool(key, v),
            "run_mode" => s.run_mode = r.string(key, v),
            "jobs" => s.jobs = r.uint_in(key, v, 1, MAX_JOBS),
            "timeout" => s.timeout = r.duration(key, v),
            "retries" => s.retries = r.uint_in(key, v, 0, MAX_RETRIES),
            "default_folder" => {
                s.default_folder = r.string(key, v).filter(|f| r.name(Kind::Folder, f))
            }
            "protected" => s.protected = r.bool(key, v),
            "state" => s.state = r.string(key, v),
            "depends_on" => s.depends_on = r.string_list(key, v),
            "pools" => {
                s.pools = r.map(key, v).map(|pools| {
                    pools
                        .into_iter()
                        .filter_map(|(name, n)| {
                            let size = r.uint_in("pools.<name>", n, 1, MAX_JOBS);
                            if !r.name(Kind::Pool, &name) {
                                return None;
                            }
                            Some((name, size?))
                        })
                        .collect()
                })
            }
            "logging" => s.logging = read_logging(r, v),
            "plugins" => read_plugins(r, v, &mut s),
            "deployments" => {
                s.deployments_loc = Some(k.loc.clone());
                s.deployments = read_deployments(r, v);
            }
            _ => {}
        }
    }
    s
}

fn read_logging(r: &mut Reader<'_>, node: &Node) -> LoggingSection {
    let mut l = LoggingSection::default();
    let Some(entries) = r.map("logging", node) else {
        return l;
    };
    r.check_keys("bitops.logging", &entries, LOGGING_KEYS);
    for (k, v) in &entries {
        match k.value.as_str() {
            "level" => l.level = r.string("logging.level", v),
            "filename" => l.filename = r.string("logging.filename", v),
            "path" => l.path = r.string("logging.path", v),
            "color" => {
                if let Some(c) = r.map("logging.color", v) {
                    r.check_keys("bitops.logging.color", &c, &["enabled"]);
                    l.color = c
                        .iter()
                        .find(|(k, _)| k.value == "enabled")
                        .and_then(|(_, v)| r.bool("logging.color.enabled", v));
                }
            }
            "masks" => l.masks = read_masks(r, v),
            _ => {}
        }
    }
    l
}

fn read_masks(r: &mut Reader<'_>, node: &Node) -> Option<Vec<MaskSpec>> {
    let items = match &node.value {
        crate::yaml::Value::Seq(items) => items,
        crate::yaml::Value::Null => return Some(Vec::new()),
        _ => {
            let loc = r.loc(node);
            r.diags.push(
                Problem::new("bitops::config::type", "`logging.masks` must be a list")
                    .at(&loc, "expected a list")
                    .help("write `masks: [{search: \"secret-\\\\w+\", replace: \"*****\"}]`"),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Some(entries) = r.map("logging.masks[]", item) else {
            continue;
        };
        r.check_keys("logging.masks[]", &entries, &["search", "replace"]);
        let search = entries
            .iter()
            .find(|(k, _)| k.value == "search")
            .and_then(|(_, v)| r.string("search", v));
        let replace = entries
            .iter()
            .find(|(k, _)| k.value == "replace")
            .and_then(|(_, v)| r.string("replace", v))
            .map(|s| s.value)
            .unwrap_or_default();
        match search {
            Some(search) => {
                match crate::mask::Mask::new(&search.value, &replace) {
                    Ok(mask) => out.push(MaskSpec { search, replace, mask }),
                    Err(e) => r.diags.push(
                        Problem::new("bitops::config::mask", "this `logging.masks` entry cannot be used")
                            .at(&search.loc, e.to_string().lines().last().unwrap_or("invalid").to_string())
                            .help("masks use Python `re` syntax: escape literal characters like `\\.`, and refer only to groups the `search` has (`\\1`, `\\g<name>`)"),
                    ),
                }
            }
            None => {
                let loc = r.loc(item);
                r.diags.push(
                    Problem::new("bitops::config::mask", "a mask needs a `search` pattern")
                        .at(&loc, "no `search`")
                        .help("write `{search: \"pattern\", replace: \"*****\"}`"),
                );
            }
        }
    }
    Some(out)
}

fn read_plugins(r: &mut Reader<'_>, node: &Node, s: &mut BitopsSection) {
    let Some(entries) = r.map("plugins", node) else {
        return;
    };
    let mut plugins = Vec::new();
    for (name, v) in &entries {
        // BitOps reads `plugin_dir` from the same map (and then mistakes it for a plugin).
        if name.value == "plugin_dir" {
            s.plugin_dir = r.string("plugins.plugin_dir", v);
            continue;
        }
        // The name becomes `<state>/plugins/<name>`: a hostile one must never reach a path.
        if !r.name(Kind::Plugin, name) {
            continue;
        }
        let mut p = PluginSpec {
            name: name.clone(),
            source: None,
            source_branch: None,
            source_tag: None,
            plan_action: None,
            destroy_action: None,
        };
        if let Some(fields) = r.map(&format!("plugins.{}", name.value), v) {
            r.check_keys(
                &format!("bitops.plugins.{}", name.value),
                &fields,
                PLUGIN_KEYS,
            );
            for (k, v) in &fields {
                match k.value.as_str() {
                    "source" => p.source = r.string("source", v),
                    "source_branch" => p.source_branch = r.string("source_branch", v),
                    "source_tag" => p.source_tag = r.string("source_tag", v),
                    // An empty value says the plugin has no such action.
                    "plan_action" | "destroy_action" => {
                        let word = if v.is_null() {
                            Some(crate::diagnostic::Spanned::new(String::new(), r.loc(v)))
                        } else {
                            r.string(&k.value, v)
                        };
                        if k.value == "plan_action" {
                            p.plan_action = word;
                        } else {
                            p.destroy_action = word;
                        }
                    }
                    _ => {}
                }
            }
        }
        plugins.push(p);
    }
    s.plugins = Some(plugins);
}

fn read_deployments(r: &mut Reader<'_>, node: &Node) -> Option<Vec<DeploymentSpec>> {
    let entries = r.map("deployments", node)?;
    let mut out = Vec::with_capacity(entries.len());
    for (name, v) in entries {
        if !r.name(Kind::Deployment, &name) {
            continue;
        }
        let mut d = DeploymentSpec {
            name: name.clone(),
            plugin: None,
            depends_on: None,
            timeout: None,
            retries: None,
            pool: None,
            inputs: Vec::new(),
        };
        if let Some(fields) = r.map(&format!("deployments.{}", name.value), v) {
            r.check_keys(
                &format!("bitops.deployments.{}", name.value),
                &fields,
                DEPLOYMENT_KEYS,
            );
            for (k, v) in &fields {
                match k.value.as_str() {
                    "plugin" => d.plugin = r.string("plugin", v),
                    "depends_on" => d.depends_on = r.string_list("depends_on", v),
                    "timeout" => d.timeout = r.duration("timeout", v),
                    "retries" => d.retries = r.uint_in("retries", v, 0, MAX_RETRIES),
                    "pool" => d.pool = r.string("pool", v),
                    "inputs" => d.inputs = read_inputs(r, v),
                    _ => {}
                }
            }
        }
        if out
            .iter()
            .any(|o: &DeploymentSpec| o.name.value == d.name.value)
        {
            r.diags.push(
                Problem::new(
                    "bitops::config::duplicate",
                    format!("deployment `{}` is listed twice", d.name.value),
                )
                .at(&d.name.loc, "listed again here")
                .help(
                    "each deployment folder may be listed once; give the second one another folder",
                ),
            );
            continue;
        }
        out.push(d);
    }
    Some(out)
}

/// `inputs:` of a deployment entry: names checked here (they become variable names and
/// arguments); references are resolved with the graph, where every deployment is known.
fn read_inputs(r: &mut Reader<'_>, node: &Node) -> Vec<InputSpec> {
    let Some(entries) = r.map("inputs", node) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for (name, v) in entries {
        if !r.name(Kind::Input, &name) {
            continue;
        }
        if let Some(from) = r.string(&format!("inputs.{}", name.value), v) {
            out.push(InputSpec { name, from });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;

    fn read(text: &str) -> (BitopsSection, Diagnostics) {
        let file = SourceFile::new(
            "/r/bitops.config.yaml".into(),
            "bitops.config.yaml".into(),
            text.into(),
        );
        let root = crate::yaml::parse(&file.text).unwrap();
        let mut d = Diagnostics::default();
        let s = read_file_section(&file, root.as_ref(), &mut d);
        (s, d)
    }

    #[test]
    fn reads_every_key() {
        let (s, d) = read(
            "bitops:\n  fail_fast: no\n  jobs: 3\n  pools: {aws-api: 2}\n  timeout: 15m\n  retries: 1\n  \
             depends_on: [shared]\n  protected: yes\n  logging:\n    level: INFO\n    masks:\n      - search: 'secret-(\\w+)'\n        replace: '***\\1'\n  \
             plugins:\n    greeter: {source: ./_plugins/greeter}\n  deployments:\n    terraform: {plugin: terraform}\n    helm:\n      depends_on: [terraform]\n      timeout: 90\n      pool: aws-api\n",
        );
        assert!(d.is_empty(), "{:?}", d.problems());
        assert!(!s.fail_fast.unwrap().value);
        assert_eq!(s.jobs.unwrap().value, 3);
        assert_eq!(s.pools.unwrap()[0].1.value, 2);
        assert_eq!(s.timeout.unwrap().value, Duration::from_secs(900));
        assert_eq!(s.depends_on.unwrap()[0].value, "shared");
        assert!(s.protected.unwrap().value);
        assert_eq!(s.logging.masks.unwrap()[0].replace, "***\\1");
        assert_eq!(
            s.plugins.unwrap()[0].source.as_ref().unwrap().value,
            "./_plugins/greeter"
        );
        let deps = s.deployments.unwrap();
        assert_eq!(deps.len(), 2);
        assert!(deps[0].depends_on.is_none());
        assert_eq!(deps[1].depends_on.as_ref().unwrap()[0].value, "terraform");
        assert_eq!(
            deps[1].timeout.as_ref().unwrap().value,
            Duration::from_secs(90)
        );
    }

    #[test]
    fn a_mask_that_cannot_be_built_is_a_located_error_not_dropped() {
        // Valid as a search, but `\\2` names a group the search does not have: left out, the
        // mask would have printed the secret.
        let (s, d) = read(
            "bitops:\n  logging:\n    masks:\n      - {search: 'token=(\\w+)', replace: '\\2'}\n",
        );
        assert_eq!(d.len(), 1, "{:?}", d.problems());
        assert!(
            d.problems()[0].to_string().contains("bitops.config.yaml:4"),
            "{}",
            d.problems()[0]
        );
        assert!(s.logging.masks.unwrap().is_empty());
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_all_reported() {
        let (_, d) = read("bitops:\n  fail_fsat: true\n  jobs: many\n  deployments:\n    tf:\n      plugn: terraform\n");
        let msgs: Vec<String> = d.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(d.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].contains("fail_fsat")
                && d.problems()[0].help.as_deref() == Some("did you mean `fail_fast`?")
        );
        assert!(
            msgs[1].contains(":3: `jobs` must be a whole number"),
            "{msgs:?}"
        );
        assert!(msgs[2].contains("plugn"));
    }
}
