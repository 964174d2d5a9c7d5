//! BitOps-format plugins: the BitOps v2 plugin contract (reference §4) as pure functions.
//!
//! A plugin folder holds `plugin.config.yaml` ([`plugin_config`]), `bitops.schema.yaml`
//! ([`schema`]) and a deploy script. For one deployment, [`resolve`] turns the schema, the
//! deployment's tool-level `bitops.config.yaml` and the environment into the variables BitOps
//! exported (`export_env` and its `BITOPS_` copy, `BITOPS_<ROOT>_CLI`) and the stack action, and
//! [`deploy_argv`] gives the command `<language> <plugin dir>/<deploy script> <stack action>`.
//! Nothing here starts a process or touches the process environment, so `bitops plan` shows
//! exactly what a deploy would run.
//!
//! Where BitOps v2 had a bug, we do the evident right thing; [`DEVIATIONS`] lists every such
//! change with its reason (docs/compatibility.md is written from it).

pub mod plugin_config;
pub mod resolve;
pub mod schema;
mod value;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostics, Problem};

pub use plugin_config::{PluginConfig, PLUGIN_CONFIG_FILE};
pub use resolve::{resolve, Resolved, Source, ToolConfig};
pub use schema::{Property, Schema, SCHEMA_FILE};

/// A BitOps-format plugin read from its folder.
#[derive(Clone, Debug)]
pub struct Plugin {
    pub name: String,
    pub dir: PathBuf,
    pub config: PluginConfig,
    /// `None` when `core_schema_parsing` is off: the plugin reads its own config.
    pub schema: Option<Schema>,
}

/// Reads a plugin folder: `plugin.config.yaml` (optional), `bitops.schema.yaml` (required when
/// core schema parsing is on, as in BitOps, where its absence ended the run with exit 2) and
/// checks that the deploy script exists. Records every problem found and returns `None` if
/// there was any, so a broken plugin never half-runs.
pub fn load_plugin(dir: &Path, name: &str, diags: &mut Diagnostics) -> Option<Plugin> {
    let before = diags.len();
    if !dir.is_dir() {
        diags.push(
            Problem::new(
                "bitops::plugin::not_found",
                format!("plugin `{name}` has no folder at `{}`", dir.display()),
            )
            .path(dir)
            .help(
                "check the plugin's `source` in `bitops.plugins`, or run `bitops plugins install`",
            ),
        );
        return None;
    }
    let config = plugin_config::load(dir, diags)?;
    let schema = if config.core_schema_parsing {
        let seen = diags.len();
        let schema = schema::load(dir, diags);
        if schema.is_none() && diags.len() == seen {
            // Nothing recorded: the file does not exist (a broken one was reported by `load`).
            diags.push(missing_schema(name, &dir.join(SCHEMA_FILE)));
        }
        schema
    } else {
        None
    };
    let plugin = Plugin {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        config,
        schema,
    };
    if let Err(p) = check_deploy_script(&plugin) {
        diags.push(p);
    }
    (diags.len() == before).then_some(plugin)
}

fn missing_schema(name: &str, path: &Path) -> Problem {
    Problem::new(
        "bitops::plugin::missing_schema",
        format!("plugin `{name}` has no `{SCHEMA_FILE}`, which core schema parsing needs"),
    )
    .path(path)
    .help(format!(
        "add `{SCHEMA_FILE}` to the plugin, or set `plugin.deployment.core_schema_parsing: false` \
         in its `{PLUGIN_CONFIG_FILE}` if it reads its configuration itself"
    ))
}

/// The deploy script's path: `<plugin dir>/<deployment_script>`. BitOps built it by string
/// concatenation, so an absolute script name still stays inside the plugin folder.
pub fn deploy_script_path(plugin: &Plugin) -> PathBuf {
    plugin
        .dir
        .join(plugin.config.deployment_script.trim_start_matches('/'))
}

/// The deploy command: `[language, <dir>/<deployment_script>, stack_action]`. Always exactly one
/// action argument, possibly empty, because official deploy scripts read `$1`.
pub fn deploy_argv(plugin: &Plugin, stack_action: &str) -> Vec<String> {
    vec![
        plugin.config.language.clone(),
        deploy_script_path(plugin).to_string_lossy().into_owned(),
        stack_action.to_string(),
    ]
}

/// Checks that the deploy script exists (BitOps: "Plugin deploy script missing", exit 1) and
/// returns its path.
// `Problem` is large, but this runs once per deployment and callers collect problems by value.
#[allow(clippy::result_large_err)]
pub fn check_deploy_script(plugin: &Plugin) -> Result<PathBuf, Problem> {
    let path = deploy_script_path(plugin);
    if path.is_file() {
        return Ok(path);
    }
    Err(Problem::new(
        "bitops::plugin::missing_script",
        format!(
            "plugin `{}` has no deploy script `{}`",
            plugin.name, plugin.config.deployment_script
        ),
    )
    .path(&path)
    .help(format!(
        "add the script, or name the right one in `plugin.deployment.deployment_script` of the \
         plugin's `{PLUGIN_CONFIG_FILE}`"
    )))
}

/// The official plugins' schemas (reference §6), for the native plugins, which read the same
/// keys and overrides, and for tests: `(root key, schema text)`.
pub const OFFICIAL_SCHEMAS: &[(&str, &str)] = &[
    ("terraform", include_str!("fixtures/terraform.schema.yaml")),
    ("ansible", include_str!("fixtures/ansible.schema.yaml")),
    (
        "cloudformation",
        include_str!("fixtures/cloudformation.schema.yaml"),
    ),
    (
        "example-plugin",
        include_str!("fixtures/example-plugin.schema.yaml"),
    ),
];

/// One of [`OFFICIAL_SCHEMAS`], parsed.
pub fn official_schema(name: &str) -> Option<Schema> {
    let (_, text) = OFFICIAL_SCHEMAS.iter().find(|(n, _)| *n == name)?;
    // The texts are ours and covered by tests, so a parse failure is a bug here.
    Schema::from_text(&format!("{name}/{SCHEMA_FILE}"), text).ok()
}

/// Every place where bitops deliberately differs from BitOps v2 in this contract: (what, why).
pub const DEVIATIONS: &[(&str, &str)] = &[
    (
        "`bitops plan --run` and `bitops destroy` resolve the plugin's `stack-action` property \
         (the `cli` one, else one under `options` as older official schemas had it) \
         as if its override `BITOPS_<ROOT>_STACK_ACTION` were set to the plugin's word for the \
         command (`bitops.plugins.<name>.plan_action` / `destroy_action`, else the official \
         plugins' own: terraform `plan` / `destroy`, cloudformation none / `delete`), winning \
         over the user's own override, so every export, `BITOPS_<ROOT>_CLI` and the deploy \
         script's argument carry it. For a plugin whose schema root is `terraform`, \
         `TERRAFORM_APPLY` (and, for `plan --run`, `TERRAFORM_DESTROY`) from the environment is \
         not passed to it by these commands.",
        "BitOps had neither command. Official plugins read the action from the stack-action \
         export (`$BITOPS_TERRAFORM_COMMAND`), not from `$1`, so changing only the argument \
         made a dry run apply and a destroy deploy; the official terraform plugin also applies \
         on `TERRAFORM_APPLY=true` and destroys on `TERRAFORM_DESTROY=true` whatever its action.",
    ),
    (
        "A plugin without a `stack-action` property, without a word for the \
         command, or with `core_schema_parsing: false`, is not run by `plan --run` or `destroy`; \
         it is reported skipped with the reason (`not_applicable` in the report).",
        "Running it would deploy (the official ansible plugin has no action at all and would \
         simply run its playbook again).",
    ),
    (
        "`plugin.config.yaml` flags (`core_schema_parsing`, `before_hook_scripts`, \
         `after_hook_scripts`) written as the quoted strings \"false\", \"no\", \"off\" or \"0\" \
         (any case) are false.",
        "BitOps tested the flags with Python truthiness, so a quoted \"false\" enabled the \
         feature it was meant to disable.",
    ),
    (
        "An empty `plugin.config.yaml`, or one without a `plugin.deployment` section, gives the \
         defaults; a value of the wrong kind (a list for `deployment_script`, …) is a located \
         error.",
        "BitOps crashed with an AttributeError on both.",
    ),
    (
        "A value written in the tool-level `bitops.config.yaml` always wins over the schema \
         default, even when it is `false`, `0`, `\"\"` or `[]` (an empty value `key:` still means \
         \"not set\"). An environment override still beats both.",
        "BitOps used the config value only when it was truthy, so `validate-cfn: false` \
         (cloudformation) or `quiet: false` could not switch off a default of `true`.",
    ),
    (
        "Converting a string to a `boolean`/`bool` property: \"false\", \"no\", \"off\", \"0\" \
         and \"\" (any case, surrounding spaces ignored) are false.",
        "BitOps used Python `bool()`, which makes every non-empty string, including \"false\", \
         true.",
    ),
    (
        "A `boolean`/`bool` CLI property whose value is false by the rule above (for example the \
         environment override `BITOPS_ANSIBLE_DRYRUN=false`) adds nothing to the CLI; a true one \
         adds `--<parameter>`. The exported variable keeps the raw override value.",
        "BitOps rendered a non-\"true\" override as `--<parameter>=false` (`--check=false`), \
         which the tools reject.",
    ),
    (
        "A positional CLI value that is not a string (a YAML boolean or number, such as \
         cloudformation's default `validate-cfn: true`) is rendered with Python `str()` \
         (`True`), and non-string list items are rendered the same way in exports.",
        "BitOps crashed with a TypeError when joining the CLI (every cloudformation deployment \
         without `BITOPS_CLOUDFORMATION_VALIDATE_CFN` set failed) or the list.",
    ),
    (
        "`list` CLI properties are rendered, one `--<parameter>=<item>` per item (positional \
         items without `parameter`); a string value is split at whitespace, as the space-joined \
         export is. No official plugin reads such a CLI entry: terraform takes its targets from \
         `BITOPS_TF_TARGETS` and never reads `BITOPS_TERRAFORM_CLI`, helm parses its own config.",
        "BitOps never rendered lists (a TODO in its code), so `targets`/`backend-config` \
         silently did nothing in the CLI.",
    ),
    (
        "`dash_type` is honoured: `dash_type: \"-\"` renders `-<parameter>` (terraform's \
         `-backend-config=…`); without it, `--`.",
        "BitOps parsed `dash_type` and ignored it.",
    ),
    (
        "Besides BitOps' exact `BITOPS_<ROOT>_CLI` name (hyphens kept, e.g. \
         `BITOPS_EXAMPLE-PLUGIN_CLI`), the same value is exported as \
         `BITOPS_EXAMPLE_PLUGIN_CLI` when the names differ.",
        "A hyphenated name cannot be read from bash (`$BITOPS_EXAMPLE-PLUGIN_CLI`); the exact \
         name is kept for plugins that read it with `printenv`.",
    ),
    (
        "A `string` value for a `list` property becomes its whitespace-separated words; any other \
         scalar or a mapping there is a located error.",
        "BitOps used Python `list()`, which split a string into characters (`targets: \
         module.a` exported `m o d u l e . a`) and crashed on numbers and booleans.",
    ),
    (
        "A config value that cannot be converted (`int` of `abc`, a property without `type`, an \
         unsupported `type`, a mapping for a `list`) is a located error naming the tool config \
         file and key, reported together with every other problem before anything runs.",
        "BitOps crashed (exit 1) or, with fail-fast off, silently ignored the value of an \
         unsupported type.",
    ),
    (
        "`required: true` is satisfied by any value that is set, including `false` and `0`; \
         every missing one is reported at once, with the YAML to add. A required group \
         (`type: object`) is not checked.",
        "BitOps treated falsy values as missing, stopped at the first one, and a required group \
         always failed because a group never has a value.",
    ),
    (
        "Keys in the tool-level config that the plugin's schema does not know, top-level keys \
         other than the schema's root key, and a non-mapping where the schema has a group are \
         errors with a did-you-mean.",
        "BitOps ignored them silently (issue #117), so a typo or `tf:` instead of `terraform:` \
         deployed with defaults.",
    ),
    (
        "In `config_key`, only whole `properties` path segments are removed.",
        "BitOps removed the substring `.properties`, so a property named like `properties-file` \
         was looked up as `-file` and could never be set.",
    ),
    (
        "An unknown attribute with a non-empty scalar value inside a schema property (a typo \
         such as `paramter: x`) is a located error in `bitops.schema.yaml`.",
        "BitOps crashed with a TypeError on such a schema.",
    ),
    (
        "The stack action of a `stack-action` property with no value is the empty string, and a \
         non-string value is rendered with Python `str()`.",
        "BitOps passed `None` or the non-string value to `subprocess.run`, which crashed.",
    ),
    (
        "Environment overrides (`BITOPS_<ROOT>_<NAME>`) are read from the environment bitops was \
         started with; values exported for another deployment, or by an earlier property of the \
         same one, are never taken as overrides.",
        "BitOps mutated its own environment and never reset it, so exports leaked into later \
         deployments and could even masquerade as user overrides (reference §4.8).",
    ),
];

/// Truthiness of a plugin flag or a value converted to boolean: Python's, except that the
/// strings people write for "off" are false (see [`DEVIATIONS`]).
pub(crate) fn flag_is_true(node: &crate::yaml::Node) -> bool {
    match &node.value {
        crate::yaml::Value::Str(s) => !is_false_word(s),
        _ => node.is_truthy(),
    }
}

/// `"false"`, `"no"`, `"off"`, `"0"` and `""` in any case, surrounding spaces ignored.
pub(crate) fn is_false_word(s: &str) -> bool {
    let t = s.trim().to_ascii_lowercase();
    matches!(t.as_str(), "" | "false" | "no" | "off" | "0")
}
