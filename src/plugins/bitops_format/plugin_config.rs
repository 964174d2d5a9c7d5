//! `plugin.config.yaml`: how a plugin is installed and run (reference §4.1).
//!
//! Every key is optional and a missing file means all defaults, as in BitOps. An explicit `null`
//! also means the default, because BitOps tested `is not None`.

use std::path::Path;
use std::sync::Arc;

use crate::config::load_file;
use crate::diagnostic::{Diagnostics, Loc, Problem, SourceFile};
use crate::yaml::{Node, Value};

use super::flag_is_true;

/// The file name BitOps reads in a plugin folder.
pub const PLUGIN_CONFIG_FILE: &str = "plugin.config.yaml";

/// What `plugin.config.yaml` says, with BitOps' defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginConfig {
    /// `plugin.install.install_script`, run once at install time as `<install_language> <script>`.
    pub install_script: String,
    /// `plugin.install.language`.
    pub install_language: String,
    /// `plugin.install.dependencies`: plugins that must also be configured (presence only).
    pub dependencies: Vec<String>,
    /// `plugin.deployment.deployment_script`.
    pub deployment_script: String,
    /// `plugin.deployment.language`: the interpreter, looked up on PATH.
    pub language: String,
    /// `plugin.deployment.core_schema_parsing`: off means no exports, no CLI variable and an
    /// empty stack action; the plugin reads its config itself (helm).
    pub core_schema_parsing: bool,
    /// `plugin.deployment.before_hook_scripts`: off means core does not run before hooks.
    pub before_hook_scripts: bool,
    /// `plugin.deployment.after_hook_scripts`.
    pub after_hook_scripts: bool,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            install_script: "install.sh".into(),
            install_language: "bash".into(),
            dependencies: Vec::new(),
            deployment_script: "deploy.sh".into(),
            language: "bash".into(),
            core_schema_parsing: true,
            before_hook_scripts: true,
            after_hook_scripts: true,
        }
    }
}

/// Reads `<dir>/plugin.config.yaml`. A missing file gives the defaults; a file that cannot be
/// parsed, or holds a value of the wrong kind, is recorded and gives `None`.
pub fn load(dir: &Path, diags: &mut Diagnostics) -> Option<PluginConfig> {
    let path = dir.join(PLUGIN_CONFIG_FILE);
    if !path.exists() {
        return Some(PluginConfig::default());
    }
    let loaded = load_file(&path, path.display().to_string(), diags)?;
    let mut problems = Vec::new();
    let config = parse(&loaded.file, loaded.root.as_ref(), &mut problems);
    let ok = problems.is_empty();
    for p in problems {
        diags.push(p);
    }
    ok.then_some(config)
}

/// Reads a parsed `plugin.config.yaml`. Problems are pushed to `problems`; the returned config
/// has defaults where a value was wrong.
pub fn parse(
    file: &Arc<SourceFile>,
    root: Option<&Node>,
    problems: &mut Vec<Problem>,
) -> PluginConfig {
    let mut c = PluginConfig::default();
    let mut r = Read { file, problems };
    // BitOps crashed on an empty file or one without `plugin.deployment`; defaults are what
    // such a file evidently means.
    let plugin = root.and_then(|n| r.section(n, "", "plugin"));
    let install = plugin.and_then(|n| r.section(n, "plugin", "install"));
    let deployment = plugin.and_then(|n| r.section(n, "plugin", "deployment"));

    if let Some(i) = install {
        r.string(i, "plugin.install", "install_script", &mut c.install_script);
        r.string(i, "plugin.install", "language", &mut c.install_language);
        if let Some(d) = i.get("dependencies") {
            c.dependencies = r.names(d, "plugin.install.dependencies");
        }
    }
    if let Some(d) = deployment {
        r.string(
            d,
            "plugin.deployment",
            "deployment_script",
            &mut c.deployment_script,
        );
        r.string(d, "plugin.deployment", "language", &mut c.language);
        r.flag(d, "core_schema_parsing", &mut c.core_schema_parsing);
        r.flag(d, "before_hook_scripts", &mut c.before_hook_scripts);
        r.flag(d, "after_hook_scripts", &mut c.after_hook_scripts);
    }
    c
}

struct Read<'a> {
    file: &'a Arc<SourceFile>,
    problems: &'a mut Vec<Problem>,
}

impl Read<'_> {
    fn wrong(&mut self, node: &Node, key: &str, want: &str, example: &str) {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        self.problems.push(
            Problem::new(
                "bitops::plugin::config",
                format!(
                    "`{key}` in `{PLUGIN_CONFIG_FILE}` must be {want}, found {}",
                    node.kind()
                ),
            )
            .at(&Loc::new(self.file, node.span), format!("expected {want}"))
            .help(format!("write it as `{leaf}: {example}`")),
        );
    }

    /// A nested mapping; `null` counts as absent.
    fn section<'n>(&mut self, parent: &'n Node, parent_key: &str, key: &str) -> Option<&'n Node> {
        let node = parent.get(key)?;
        match node.value {
            Value::Map(_) => Some(node),
            Value::Null => None,
            _ => {
                let full = if parent_key.is_empty() {
                    key.to_string()
                } else {
                    format!("{parent_key}.{key}")
                };
                self.wrong(node, &full, "a mapping", "{ … }");
                None
            }
        }
    }

    fn string(&mut self, section: &Node, section_key: &str, key: &str, out: &mut String) {
        let Some(node) = section.get(key) else { return };
        match &node.value {
            Value::Null => {}
            Value::Str(s) => *out = s.clone(),
            _ => self.wrong(node, &format!("{section_key}.{key}"), "a string", "\"…\""),
        }
    }

    fn flag(&mut self, section: &Node, key: &str, out: &mut bool) {
        match section.get(key) {
            None => {}
            Some(n) if n.is_null() => {}
            Some(n) => *out = flag_is_true(n),
        }
    }

    fn names(&mut self, node: &Node, key: &str) -> Vec<String> {
        match &node.value {
            Value::Null => Vec::new(),
            Value::Str(s) => vec![s.clone()],
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push(s.clone()),
                        _ => self.wrong(item, key, "a list of plugin names", "[aws, kubectl]"),
                    }
                }
                out
            }
            _ => {
                self.wrong(node, key, "a list of plugin names", "[aws, kubectl]");
                Vec::new()
            }
        }
    }
}
