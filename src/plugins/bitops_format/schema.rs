//! `bitops.schema.yaml`: the properties a plugin reads from a deployment's tool-level config
//! (reference §4.2–4.3).
//!
//! BitOps does not interpret the schema as a tree of properties. It walks every mapping key under
//! the root key, keeps each path whose last segment is not a reserved word, and makes a property
//! of it. We walk the same way, so an odd schema yields the same properties as in BitOps: a
//! property can never be named like a reserved word, and a key nested anywhere (even under a
//! `default:` mapping) is a property too.

use std::path::Path;
use std::sync::Arc;

use crate::config::load_file;
use crate::diagnostic::{did_you_mean, Diagnostics, Loc, Problem, SourceFile};
use crate::yaml::{Node, Value};

use super::value::{entries, key_name};

/// The file name BitOps reads in a plugin folder.
pub const SCHEMA_FILE: &str = "bitops.schema.yaml";

/// Attributes of a property that BitOps reads (`enabled` is read and ignored).
pub const ATTRIBUTES: &[&str] = &[
    "type",
    "parameter",
    "export_env",
    "default",
    "required",
    "dash_type",
    "description",
    "enabled",
];

/// Last path segments that never make a property, besides the root key and [`ATTRIBUTES`].
const STRUCTURE: &[&str] = &["properties", "cli", "options"];

/// A parsed schema: its root key and its properties in schema order (depth-first, document
/// order), containers included.
#[derive(Clone, Debug)]
pub struct Schema {
    /// The first top-level key (`terraform`, `example-plugin`); the tool config must use it too.
    pub root_key: String,
    pub file: Arc<SourceFile>,
    pub properties: Vec<Property>,
}

/// One property (or `type: object` group) of a schema.
#[derive(Clone, Debug)]
pub struct Property {
    /// The last path segment (`var-file`).
    pub name: String,
    /// Where the value is in the tool config: root key, section, groups…, name.
    pub path: Vec<String>,
    /// `path` joined with dots (`cloudformation.options.cfn-files.template-file`).
    pub config_key: String,
    /// `type` as written (`None` when absent); matched by substring when converting.
    pub kind: Option<String>,
    pub parameter: Option<String>,
    pub export_env: Option<String>,
    /// The default as YAML typed it; never converted to `type`, as in BitOps.
    pub default: Option<Node>,
    /// Only a YAML boolean `true` makes a property required.
    pub required: bool,
    pub dash_type: Option<String>,
    pub description: Option<String>,
    /// The property's key in the schema.
    pub loc: Loc,
}

impl Property {
    /// The second path segment: `cli`, `options` or anything else (helm's `plugins`).
    pub fn section(&self) -> &str {
        self.path.get(1).map_or("", String::as_str)
    }

    /// A `type: object` group: no value, nothing exported, its children are properties.
    pub fn is_container(&self) -> bool {
        self.kind.as_deref() == Some("object")
    }

    pub fn is_cli(&self) -> bool {
        self.section() == "cli"
    }

    /// `BITOPS_<ROOT>_<NAME>` with `-` as `_`, upper case. Segments between root and leaf are
    /// not part of it, so equal leaf names in different groups share one override.
    pub fn override_name(&self) -> String {
        let up = |s: &str| s.replace('-', "_").to_uppercase();
        format!("BITOPS_{}_{}", up(&self.path[0]), up(&self.name))
    }
}

impl Schema {
    pub fn property(&self, config_key: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.config_key == config_key)
    }

    /// Parses schema text (tests and built-in fixtures); problems are returned, not recorded.
    pub fn from_text(name: &str, text: &str) -> Result<Schema, Vec<Problem>> {
        let file = SourceFile::new(name.into(), name.into(), text.into());
        let mut diags = Diagnostics::default();
        let root = match crate::yaml::parse(&file.text) {
            Ok(r) => r,
            Err(e) => {
                return Err(vec![Problem::new(
                    "bitops::config::syntax",
                    format!("`{name}` is not valid YAML"),
                )
                .at(&Loc::new(&file, e.span), e.message)])
            }
        };
        match parse(&file, root.as_ref(), &mut diags) {
            Some(s) if diags.is_empty() => Ok(s),
            _ => Err(diags.problems().to_vec()),
        }
    }
}

/// Reads `<dir>/bitops.schema.yaml`; `None` (nothing recorded) when it does not exist.
pub fn load(dir: &Path, diags: &mut Diagnostics) -> Option<Schema> {
    let path = dir.join(SCHEMA_FILE);
    let loaded = load_file(&path, path.display().to_string(), diags)?;
    parse(&loaded.file, loaded.root.as_ref(), diags)
}

/// Builds the property list from a parsed schema file. Records problems (a schema BitOps would
/// have crashed on) and still returns what could be read, unless there is no usable root.
pub fn parse(
    file: &Arc<SourceFile>,
    root: Option<&Node>,
    diags: &mut Diagnostics,
) -> Option<Schema> {
    let whole = || Loc::new(file, crate::yaml::Span { offset: 0, len: 0 });
    let Some(root) = root else {
        diags.push(
            Problem::new(
                "bitops::plugin::schema",
                format!("`{}` is empty", file.name),
            )
            .at(&whole(), "no root key")
            .help(
                "start the schema with the plugin's root key: \
                     `<name>: {type: object, properties: {cli: …, options: …}}`",
            ),
        );
        return None;
    };
    let first = match &root.value {
        Value::Map(m) => entries(m).into_iter().next(),
        _ => None,
    };
    let Some((key, body)) = first else {
        diags.push(
            Problem::new(
                "bitops::plugin::schema",
                format!(
                    "`{}` must be a mapping with the plugin's root key",
                    file.name
                ),
            )
            .at(&Loc::new(file, root.span), format!("found {}", root.kind()))
            .help("start the schema with `<name>:` followed by `type: object` and `properties:`"),
        );
        return None;
    };
    let root_key = key_name(key);
    let mut walker = Walker {
        file,
        root_key: &root_key,
        properties: Vec::new(),
        diags,
    };
    match &body.value {
        Value::Map(m) => walker.walk(m, &mut vec![root_key.clone()], &mut vec![root_key.clone()]),
        Value::Null => {}
        _ => {
            walker.diags.push(
                Problem::new(
                    "bitops::plugin::schema",
                    format!("the schema root `{root_key}` must be a mapping"),
                )
                .at(&Loc::new(file, body.span), format!("found {}", body.kind()))
                .help(format!(
                    "write `{root_key}:` followed by `type: object` and `properties:`"
                )),
            );
            return None;
        }
    }
    let properties = walker.properties;
    Some(Schema {
        root_key,
        file: Arc::clone(file),
        properties,
    })
}

struct Walker<'a> {
    file: &'a Arc<SourceFile>,
    root_key: &'a str,
    properties: Vec<Property>,
    diags: &'a mut Diagnostics,
}

impl Walker<'_> {
    fn reserved(&self, segment: &str) -> bool {
        segment == self.root_key || STRUCTURE.contains(&segment) || ATTRIBUTES.contains(&segment)
    }

    /// `schema_path` is every key from the root; `config_path` the same without `properties`.
    fn walk(
        &mut self,
        map: &[(Node, Node)],
        schema_path: &mut Vec<String>,
        config_path: &mut Vec<String>,
    ) {
        for (k, v) in entries(map) {
            let name = key_name(k);
            // BitOps removed the substring `.properties`; only whole segments are meant.
            let structural = name == "properties";
            schema_path.push(name.clone());
            if !structural {
                config_path.push(name.clone());
            }
            if !self.reserved(&name) {
                self.property(&name, k, v, schema_path, config_path);
            }
            if let Value::Map(inner) = &v.value {
                self.walk(inner, schema_path, config_path);
            }
            schema_path.pop();
            if !structural {
                config_path.pop();
            }
        }
    }

    fn property(
        &mut self,
        name: &str,
        key: &Node,
        node: &Node,
        schema_path: &[String],
        config_path: &[String],
    ) {
        let loc = Loc::new(self.file, key.span);
        let mut p = Property {
            name: name.to_string(),
            path: config_path.to_vec(),
            config_key: config_path.join("."),
            // A property without attributes is, in BitOps, an object: it keeps its initial
            // `type = "object"` and does nothing.
            kind: Some("object".into()),
            parameter: None,
            export_env: None,
            default: None,
            required: false,
            dash_type: None,
            description: None,
            loc,
        };
        if !node.is_truthy() {
            self.properties.push(p);
            return;
        }
        if !matches!(node.value, Value::Map(_)) {
            self.not_a_property(name, node, schema_path);
            return;
        }
        let text = |attr: &str| {
            node.get(attr)
                .filter(|n| !n.is_null())
                .map(Node::to_python_str)
        };
        p.kind = text("type");
        p.parameter = text("parameter");
        p.export_env = text("export_env");
        p.dash_type = text("dash_type");
        p.description = text("description");
        p.default = node.get("default").filter(|n| !n.is_null()).cloned();
        p.required = matches!(
            node.get("required").map(|n| &n.value),
            Some(Value::Bool(true))
        );
        if let (Some(e), Some(n)) = (&p.export_env, node.get("export_env")) {
            // Python refused to set such a name (ValueError); anything else BitOps exported.
            if e.contains(['=', '\0']) {
                self.diags.push(
                    Problem::new(
                        "bitops::plugin::schema",
                        format!(
                            "`export_env` of `{}` is not a usable variable name",
                            p.config_key
                        ),
                    )
                    .at(&Loc::new(self.file, n.span), "not a variable name")
                    .help(
                        "a variable name cannot contain `=`; use letters, digits and `_`, \
                         e.g. `export_env: MY_PLUGIN_SETTING`",
                    ),
                );
            }
        }
        self.properties.push(p);
    }

    /// A key with a non-empty scalar value where BitOps expected a property: BitOps indexed the
    /// scalar like a mapping and crashed. Usually a misspelt attribute.
    fn not_a_property(&mut self, name: &str, node: &Node, schema_path: &[String]) {
        let parent = schema_path[..schema_path.len() - 1].join(".");
        let mut p = Problem::new(
            "bitops::plugin::schema",
            format!(
                "`{name}` under `{parent}` is not a schema attribute, so it would be read as a \
                 property, which must be a mapping"
            ),
        )
        .at(
            &Loc::new(self.file, node.span),
            format!("found {}", node.kind()),
        );
        p = match did_you_mean(name, ATTRIBUTES.iter().copied()) {
            Some(s) => p.help(format!("did you mean `{s}`?")),
            None => p.help(format!(
                "the attributes of a property are: {}",
                ATTRIBUTES.join(", ")
            )),
        };
        self.diags.push(p);
    }
}
