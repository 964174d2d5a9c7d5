//! Property values as BitOps' Python code held them, and how each was rendered.
//!
//! BitOps kept a converted config value, a schema default exactly as YAML typed it, or an
//! environment override as a raw string, and rendered them with Python `str()` (CLI) or its
//! export rules (lower-case booleans, space-joined lists). [`Val`] keeps enough of the Python
//! type to reproduce both renderings.

use crate::yaml::{Node, Span, Value};

use super::{flag_is_true, is_false_word};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    None,
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<Node>),
    /// A default of another kind (a float, a mapping), rendered as Python would.
    Yaml(Node),
}

/// Why a config value could not be converted to its property's `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// The property has no `type`.
    NoType,
    /// `type` matches none of list, string, int, bool.
    Unsupported(String),
    NotList,
    NotInt,
}

impl Val {
    /// A schema default (never converted to the property's type, as in BitOps).
    pub(crate) fn from_default(node: &Node) -> Val {
        match &node.value {
            Value::Null => Val::None,
            Value::Str(s) => Val::Str(s.clone()),
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Seq(items) => Val::List(items.clone()),
            Value::Float(_) | Value::Map(_) => Val::Yaml(node.clone()),
        }
    }

    /// Python truthiness.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Val::None => false,
            Val::Str(s) => !s.is_empty(),
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::List(items) => !items.is_empty(),
            Val::Yaml(n) => n.is_truthy(),
        }
    }

    /// Truthiness for a boolean property: a string such as `"false"` is false.
    pub(crate) fn as_bool(&self) -> bool {
        match self {
            Val::Str(s) => !is_false_word(s),
            other => other.truthy(),
        }
    }

    /// "Not set" for `required`: nothing, an empty string or an empty list. A written `false`
    /// or `0` is a value.
    pub(crate) fn is_missing(&self) -> bool {
        match self {
            Val::None => true,
            Val::Str(s) => s.is_empty(),
            Val::List(items) => items.is_empty(),
            _ => false,
        }
    }

    /// Python `str()`.
    pub(crate) fn py_str(&self) -> String {
        match self {
            Val::None => "None".into(),
            Val::Str(s) => s.clone(),
            Val::Bool(true) => "True".into(),
            Val::Bool(false) => "False".into(),
            Val::Int(i) => i.to_string(),
            Val::List(items) => Node {
                value: Value::Seq(items.clone()),
                span: Span::default(),
            }
            .to_python_str(),
            Val::Yaml(n) => n.to_python_str(),
        }
    }

    /// The exported form, or `None` when BitOps skipped the export (`None`, `""`, `"None"`).
    pub(crate) fn export_str(&self) -> Option<String> {
        match self {
            Val::None => None,
            Val::Str(s) if s.is_empty() || s == "None" => None,
            Val::Bool(b) => Some(b.to_string()),
            // BitOps' `" ".join` crashed on non-string items; Python `str()` of each is the
            // evident intent.
            Val::List(items) => Some(
                items
                    .iter()
                    .map(Node::to_python_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            other => Some(other.py_str()),
        }
    }

    /// Items for a `list` CLI property: a string (an env override, or a default) is split at
    /// whitespace, mirroring the space-joined export.
    pub(crate) fn items(&self) -> Vec<String> {
        match self {
            Val::None => Vec::new(),
            Val::List(items) => items.iter().map(Node::to_python_str).collect(),
            Val::Str(s) => s.split_whitespace().map(str::to_string).collect(),
            other => vec![other.py_str()],
        }
    }
}

/// Converts a config value to the property's `type`, matched case-insensitively by substring in
/// BitOps' order: list, string, int, bool. `null` stays unset whatever the type.
pub(crate) fn convert(kind: Option<&str>, node: &Node) -> Result<Val, ConvertError> {
    if node.is_null() {
        return Ok(Val::None);
    }
    let Some(kind) = kind else {
        return Err(ConvertError::NoType);
    };
    let k = kind.to_lowercase();
    if k.contains("list") {
        return match &node.value {
            Value::Seq(items) => Ok(Val::List(items.clone())),
            // Python `list("a b")` gave characters; the words are what anyone means.
            Value::Str(s) => Ok(Val::List(
                s.split_whitespace()
                    .map(|w| Node {
                        value: Value::Str(w.into()),
                        span: node.span,
                    })
                    .collect(),
            )),
            _ => Err(ConvertError::NotList),
        };
    }
    if k.contains("string") {
        return Ok(Val::Str(node.to_python_str()));
    }
    if k.contains("int") {
        return match &node.value {
            Value::Bool(b) => Ok(Val::Int(i64::from(*b))),
            Value::Int(i) => Ok(Val::Int(*i)),
            // Python `int()` truncates toward zero.
            Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Val::Int(f.trunc() as i64)),
            Value::Str(s) => python_int(s).map(Val::Int).ok_or(ConvertError::NotInt),
            _ => Err(ConvertError::NotInt),
        };
    }
    if k.contains("bool") {
        return Ok(Val::Bool(flag_is_true(node)));
    }
    Err(ConvertError::Unsupported(kind.to_string()))
}

/// Python `int(str)`: surrounding whitespace, a sign, digits with single `_` between them.
pub(crate) fn python_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let well_formed = !body.is_empty()
        && !body.starts_with('_')
        && !body.ends_with('_')
        && !body.contains("__")
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return None;
    }
    let digits: String = body.chars().filter(|c| *c != '_').collect();
    let magnitude: i64 = digits.parse().ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A mapping's entries as a Python dict holds them: a repeated key keeps the position of its
/// first occurrence and its last value.
pub(crate) fn entries(map: &[(Node, Node)]) -> Vec<(&Node, &Node)> {
    let mut out: Vec<(&Node, &Node)> = Vec::with_capacity(map.len());
    for (k, v) in map {
        match out.iter_mut().find(|(seen, _)| seen.value == k.value) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

/// A key as BitOps' dotted paths spelled it (Python `str()` of the key: `on:` is `True`).
pub(crate) fn key_name(key: &Node) -> String {
    key.to_python_str()
}
