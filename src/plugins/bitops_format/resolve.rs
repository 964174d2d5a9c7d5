//! Resolving a deployment's settings against its plugin's schema (reference §4.3–4.7): the
//! exported variables, `BITOPS_<ROOT>_CLI` and the stack action.

use std::collections::BTreeSet;
use std::sync::Arc;

use std::collections::BTreeMap;

/// The environment a deployment starts with: override variables are looked up here.
pub type Env = BTreeMap<String, String>;
use crate::diagnostic::{did_you_mean, Loc, Problem, SourceFile};
use crate::yaml::{Node, Span, Value};

use super::schema::{Property, Schema};
use super::value::{convert, entries, key_name, ConvertError, Val};

/// A deployment's tool-level `bitops.config.yaml`.
#[derive(Clone, Copy, Debug)]
pub struct ToolConfig<'a> {
    /// The parsed file (after any `_default` merge); `None` when it is empty or missing.
    pub root: Option<&'a Node>,
    /// The file the spans of `root` point into, for `file:line` in problems. `None` gives
    /// problems without a location (they still name `display`).
    pub file: Option<&'a Arc<SourceFile>>,
    /// The file as shown to the user (`backend-test/terraform/bitops.config.yaml`).
    pub display: &'a str,
}

impl<'a> ToolConfig<'a> {
    /// No file at all: every property takes its default.
    pub fn missing(display: &'a str) -> Self {
        ToolConfig {
            root: None,
            file: None,
            display,
        }
    }
}

/// Where a resolved value came from, for `bitops plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The override variable `BITOPS_<ROOT>_<NAME>`.
    Env,
    /// The tool-level config.
    Config,
    /// The schema's `default`.
    Default,
    Unset,
}

/// What the contract gives one deployment.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// In export order: each `export_env`, followed by its `BITOPS_` copy unless the name
    /// already starts with `BITOPS_`. A later entry for the same name wins, as in BitOps.
    pub exports: Vec<(String, String)>,
    /// BitOps' exact `BITOPS_<ROOT upper>_CLI` (hyphens kept) and the composed CLI string.
    pub cli_var: (String, String),
    /// The same value under a name bash can read (`BITOPS_EXAMPLE_PLUGIN_CLI`), when the exact
    /// name is not one.
    pub cli_var_alias: Option<(String, String)>,
    /// The deploy script's one argument.
    pub stack_action: String,
    /// Every non-group property: config key, value as exported (`None`: no value), source.
    pub values: Vec<(String, Option<String>, Source)>,
    /// Every problem found; the deployment must not run unless this is empty.
    pub problems: Vec<Problem>,
}

impl Resolved {
    /// Every variable the contract sets, in the order BitOps set them (exports, then the CLI
    /// variable), one entry per name with the value that wins.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let all = self
            .exports
            .iter()
            .chain(std::iter::once(&self.cli_var))
            .chain(self.cli_var_alias.iter());
        for (k, v) in all {
            match out.iter_mut().find(|(seen, _)| seen == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }

    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Resolves one deployment's settings, collecting every problem instead of stopping.
///
/// The algorithm (reference §4.3–4.7, with the fixes listed in [`super::DEVIATIONS`]):
///
/// 1. For each schema property in schema order (depth-first, document order), skipping
///    `type: object` groups, which have no value and export nothing:
///    * the config value is found by walking the property's path (`root.section.groups….name`)
///      through the tool config; absent or `null` means unset;
///    * a config value is converted to the property's `type`, matched case-insensitively by
///      substring in the order list (a sequence; a string gives its words), string (Python
///      `str()`), int (Python `int()`: booleans, truncated floats, numeric strings), bool
///      (`"false"`, `"no"`, `"off"`, `"0"`, `""` are false, otherwise Python truthiness). No
///      `type`, an unsupported type, or a value that does not convert is a located problem;
///    * the value is, highest first: the environment variable `BITOPS_<ROOT>_<NAME>` (root key
///      and leaf name upper-cased, `-` as `_`) if present, even empty, as its raw string; the
///      converted config value if one was written (even `false`, `0`, `""`); the schema
///      `default` exactly as YAML typed it; otherwise unset;
///    * if the property has a non-empty `export_env` and the value is not unset, `""` or
///      `"None"`, it is exported: booleans as `true`/`false`, lists as their items joined by one
///      space, anything else with Python `str()`; then also as `BITOPS_<export_env>` unless the
///      name already starts with `BITOPS_`.
/// 2. Every property with `required` set to the YAML boolean `true` whose value is unset, `""`
///    or `[]` is a problem that shows the YAML to add.
/// 3. The CLI string joins, with single spaces and in schema order, the tokens of each property
///    in the `cli` section whose `type` is exactly `string`, `integer`, `boolean`, `bool` or
///    `list` and whose value is truthy (and, for a boolean, not a false word). With a
///    `parameter`, the prefix is `dash_type` or `--`: a boolean gives `--<parameter>`, a list
///    one `--<parameter>=<item>` per item, anything else `--<parameter>=<value>`; without one,
///    the value (or each list item) is a positional token rendered with Python `str()`. It is
///    exported as `BITOPS_<ROOT upper>_CLI`, where ROOT is the schema's root key (hyphens kept)
///    or, when the schema has no `cli` property, `plugin_name`; plus an alias with every
///    character bash cannot use in a name replaced by `_`, if that differs.
/// 4. The stack action is the value of the first `cli` property named exactly `stack-action`,
///    rendered with Python `str()`, or `""`.
/// 5. Keys of the tool config that the schema does not know (including top-level keys other
///    than the root key) are problems with a did-you-mean.
pub fn resolve(schema: &Schema, config: &ToolConfig<'_>, env: &Env, plugin_name: &str) -> Resolved {
    let mut r = Resolver {
        schema,
        config,
        problems: Vec::new(),
    };
    let mut exports = Vec::new();
    let mut values = Vec::new();
    let mut cli_tokens = Vec::new();
    let mut stack_action: Option<String> = None;

    for prop in &schema.properties {
        if prop.is_container() {
            if prop.is_cli() && prop.name == "stack-action" && stack_action.is_none() {
                stack_action = Some(String::new());
            }
            continue;
        }
        let (val, source) = r.value_of(prop, env);
        if let Some(name) = prop.export_env.as_deref().filter(|e| !e.is_empty()) {
            if let Some(v) = val.export_str() {
                exports.push((name.to_string(), v.clone()));
                if !name.starts_with("BITOPS_") {
                    exports.push((format!("BITOPS_{name}"), v));
                }
            }
        }
        if prop.required && val.is_missing() {
            r.required_missing(prop, env);
        }
        if prop.is_cli() {
            render_cli(prop, &val, &mut cli_tokens);
            if prop.name == "stack-action" && stack_action.is_none() {
                stack_action = Some(if matches!(val, Val::None) {
                    String::new()
                } else {
                    val.py_str()
                });
            }
        }
        values.push((prop.config_key.clone(), display(&val), source));
    }
    r.check_keys();

    let cli_root = if schema.properties.iter().any(Property::is_cli) {
        schema.root_key.as_str()
    } else {
        plugin_name
    };
    let cli_name = format!("BITOPS_{}_CLI", cli_root.to_uppercase());
    let alias: String = cli_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let command = cli_tokens.join(" ");
    Resolved {
        exports,
        cli_var_alias: (alias != cli_name).then(|| (alias, command.clone())),
        cli_var: (cli_name, command),
        stack_action: stack_action.unwrap_or_default(),
        values,
        problems: r.problems,
    }
}

/// The value as `bitops plan` shows it: like the export, but also when empty.
fn display(val: &Val) -> Option<String> {
    match val {
        Val::None => None,
        Val::Str(s) => Some(s.clone()),
        other => other.export_str(),
    }
}

/// Adds one `cli` property's tokens.
fn render_cli(prop: &Property, val: &Val, out: &mut Vec<String>) {
    // BitOps' case-sensitive whitelist, plus `list`.
    let kind = prop.kind.as_deref().unwrap_or("");
    let boolean = matches!(kind, "boolean" | "bool");
    let list = kind == "list";
    if !(boolean || list || matches!(kind, "string" | "integer")) {
        return;
    }
    if !val.truthy() || (boolean && !val.as_bool()) {
        return;
    }
    let dash = prop
        .dash_type
        .as_deref()
        .filter(|d| !d.is_empty())
        .unwrap_or("--");
    match prop.parameter.as_deref().filter(|p| !p.is_empty()) {
        Some(param) if boolean => out.push(format!("{dash}{param}")),
        Some(param) if list => out.extend(
            val.items()
                .into_iter()
                .map(|i| format!("{dash}{param}={i}")),
        ),
        Some(param) => out.push(format!("{dash}{param}={}", val.py_str())),
        None if list => out.extend(val.items()),
        None => out.push(val.py_str()),
    }
}

struct Resolver<'a> {
    schema: &'a Schema,
    config: &'a ToolConfig<'a>,
    problems: Vec<Problem>,
}

/// A key of the tool config and its value.
type Entry<'n> = (&'n Node, &'n Node);

impl<'a> Resolver<'a> {
    fn loc(&self, node: &Node) -> Option<Loc> {
        self.config.file.map(|f| Loc::new(f, node.span))
    }

    /// The top-level mapping of the tool config, if it is one.
    fn top(&self) -> Option<&'a [(Node, Node)]> {
        self.config.root.and_then(Node::as_map)
    }

    /// Follows `path` through the config: the entries found, outermost first.
    fn lookup(&self, path: &[String]) -> Vec<Entry<'a>> {
        let mut found = Vec::new();
        let mut map = self.top();
        for seg in path {
            let Some(m) = map else { break };
            let Some((k, v)) = entries(m)
                .into_iter()
                .rev()
                .find(|(k, _)| k.as_str() == Some(seg))
            else {
                break;
            };
            found.push((k, v));
            map = v.as_map();
        }
        found
    }

    fn value_of(&mut self, prop: &Property, env: &Env) -> (Val, Source) {
        let found = self.lookup(&prop.path);
        let written = (found.len() == prop.path.len()).then(|| found[found.len() - 1].1);
        let converted = match written {
            None => Val::None,
            Some(node) => match convert(prop.kind.as_deref(), node) {
                Ok(v) => v,
                Err(e) => {
                    self.conversion_problem(prop, node, e);
                    Val::None
                }
            },
        };
        if let Some(raw) = env.get(&prop.override_name()) {
            return (Val::Str(raw.to_string()), Source::Env);
        }
        if !matches!(converted, Val::None) {
            return (converted, Source::Config);
        }
        match prop.default.as_ref().map(Val::from_default) {
            Some(v) if !matches!(v, Val::None) => (v, Source::Default),
            _ => (Val::None, Source::Unset),
        }
    }

    fn conversion_problem(&mut self, prop: &Property, node: &Node, e: ConvertError) {
        let key = &prop.config_key;
        let name = &prop.name;
        let kind = prop.kind.as_deref().unwrap_or("");
        let schema = &self.schema.file.name;
        let (message, label, help) = match e {
            ConvertError::NoType => (
                format!(
                    "`{key}` has no `type` in the plugin's schema, so its value cannot be read"
                ),
                "value for a property without a type".to_string(),
                format!("remove this value, or give `{name}` a `type` in `{schema}`"),
            ),
            ConvertError::Unsupported(t) => (
                format!(
                    "`{key}` has the type `{t}` in the plugin's schema, which is not one of list, \
                     string, int, boolean"
                ),
                "value of an unsupported type".to_string(),
                format!("remove this value, or fix the `type` of `{name}` in `{schema}`"),
            ),
            ConvertError::NotList => (
                format!(
                    "`{key}` must be a list (type `{kind}`), found {}",
                    node.kind()
                ),
                "expected a list".to_string(),
                format!("write it as `{name}: [first, second]`"),
            ),
            ConvertError::NotInt => (
                format!(
                    "`{key}` must be a whole number (type `{kind}`), found `{}`",
                    node.to_python_str()
                ),
                "not a whole number".to_string(),
                format!("write it as `{name}: 3`"),
            ),
        };
        let message = format!("{message} (in `{}`)", self.config.display);
        let p = Problem::new("bitops::plugin::value", message)
            .at_opt(self.loc(node).as_ref(), label)
            .help(help);
        self.problems.push(p);
    }

    fn required_missing(&mut self, prop: &Property, env: &Env) {
        let over = prop.override_name();
        let plugin = &self.schema.root_key;
        let key = &prop.config_key;
        let display = self.config.display;
        let message = if env.get(&over).is_some() {
            format!(
                "`{key}` is required by the {plugin} plugin, but `{over}` is set to an empty value"
            )
        } else {
            format!("`{key}` is required by the {plugin} plugin but not set in `{display}`")
        };
        let found = self.lookup(&prop.path);
        let (loc, label) = match found.last() {
            Some((k, v)) if found.len() == prop.path.len() => {
                let at = if v.is_null() { k } else { v };
                (self.loc(at), "empty value".to_string())
            }
            Some((k, _)) => (
                self.loc(k),
                format!("add `{}` under here", prop.path[found.len()]),
            ),
            None => (
                self.config
                    .file
                    .map(|f| Loc::new(f, Span { offset: 0, len: 0 })),
                format!("add `{}:` to this file", prop.path[0]),
            ),
        };
        let help = format!(
            "add it to `{display}`:\n{}\nor set the environment variable `{over}`",
            yaml_example(prop)
        );
        self.problems.push(
            Problem::new("bitops::plugin::required", message)
                .at_opt(loc.as_ref(), label)
                .help(help),
        );
    }

    /// Reports keys the schema does not know, and non-mappings where it expects a group.
    fn check_keys(&mut self) {
        let Some(root) = self.config.root else { return };
        let root_key = self.schema.root_key.clone();
        match &root.value {
            Value::Null => {}
            Value::Map(m) => {
                for (k, v) in entries(m) {
                    let name = key_name(k);
                    if name == root_key {
                        self.check_group(v, &mut vec![root_key.clone()]);
                    } else {
                        let p = Problem::new(
                            "bitops::plugin::unknown_option",
                            format!("unknown top-level key `{name}` in `{}`", self.config.display),
                        )
                        .at_opt(self.loc(k).as_ref(), "not read by the plugin")
                        .help(format!(
                            "the {root_key} plugin reads its settings from `{root_key}:` (the root key of its \
                             bitops.schema.yaml), whatever the deployment is called"
                        ));
                        self.problems.push(p);
                    }
                }
            }
            _ => self.not_a_group(root, &[]),
        }
    }

    fn check_group(&mut self, node: &Node, path: &mut Vec<String>) {
        let map = match &node.value {
            Value::Null => return,
            Value::Map(m) => m,
            _ => return self.not_a_group(node, path),
        };
        let props = &self.schema.properties;
        for (k, v) in entries(map) {
            path.push(key_name(k));
            let exact = props.iter().find(|p| p.path == *path);
            let prefix = props
                .iter()
                .any(|p| p.path.len() > path.len() && p.path.starts_with(path));
            match exact {
                // A leaf: its value is checked by conversion.
                Some(p) if !p.is_container() => {}
                _ if exact.is_some() || prefix => self.check_group(v, path),
                _ => self.unknown_key(k, path),
            }
            path.pop();
        }
    }

    fn not_a_group(&mut self, node: &Node, path: &[String]) {
        let what = if path.is_empty() {
            "the file".to_string()
        } else {
            format!("`{}`", path.join("."))
        };
        let p = Problem::new(
            "bitops::plugin::value",
            format!(
                "{what} must be a mapping in `{}`, found {}",
                self.config.display,
                node.kind()
            ),
        )
        .at_opt(self.loc(node).as_ref(), "expected a mapping")
        .help(format!(
            "the plugin's settings are written as `{}: {{cli: …, options: …}}`",
            self.schema.root_key
        ));
        self.problems.push(p);
    }

    fn unknown_key(&mut self, key: &Node, path: &[String]) {
        let (name, parent) = path.split_last().expect("a key has a path");
        let siblings: BTreeSet<&str> = self
            .schema
            .properties
            .iter()
            .filter(|p| p.path.len() > parent.len() && p.path.starts_with(parent))
            .map(|p| p.path[parent.len()].as_str())
            .collect();
        let elsewhere = self
            .schema
            .properties
            .iter()
            .find(|p| p.name == *name && !p.is_container());
        let help = if let Some(s) = did_you_mean(name, siblings.iter().copied()) {
            format!("did you mean `{s}`?")
        } else if let Some(p) = elsewhere {
            format!(
                "`{name}` belongs under `{}`",
                p.path[..p.path.len() - 1].join(".")
            )
        } else if siblings.is_empty() {
            format!(
                "the {} plugin reads nothing under `{}`",
                self.schema.root_key,
                parent.join(".")
            )
        } else {
            let list: Vec<&str> = siblings.into_iter().collect();
            format!(
                "the keys the {} plugin reads here are: {}",
                self.schema.root_key,
                list.join(", ")
            )
        };
        let p = Problem::new(
            "bitops::plugin::unknown_option",
            format!(
                "unknown option `{name}` in `{}` of `{}`",
                parent.join("."),
                self.config.display
            ),
        )
        .at_opt(self.loc(key).as_ref(), "not in the plugin's schema")
        .help(help);
        self.problems.push(p);
    }
}

/// The YAML a user adds to set a property, e.g. `terraform:\n  cli:\n    stack-action: <value>`.
fn yaml_example(prop: &Property) -> String {
    let kind = prop.kind.as_deref().unwrap_or("").to_lowercase();
    let example = if kind.contains("list") {
        "[first, second]"
    } else if kind.contains("string") {
        "<value>"
    } else if kind.contains("int") {
        "1"
    } else if kind.contains("bool") {
        "true"
    } else {
        "<value>"
    };
    let mut out = String::new();
    let last = prop.path.len() - 1;
    for (depth, seg) in prop.path.iter().enumerate() {
        let indent = "  ".repeat(depth + 1);
        if depth < last {
            out.push_str(&format!("{indent}{seg}:\n"));
        } else {
            out.push_str(&format!("{indent}{seg}: {example}"));
            if let Some(d) = prop.description.as_deref().filter(|d| !d.is_empty()) {
                out.push_str(&format!("  # {}", d.lines().next().unwrap_or("")));
            }
        }
    }
    out
}
