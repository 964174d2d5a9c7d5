//! The one place that parses YAML.
//!
//! Config files are read into a small tree of [`Node`]s that keep the byte span of every key and
//! value, so that each mistake can be reported at its own line, and so that all mistakes of a file
//! can be collected instead of stopping at the first one as a serde deserializer would. Scalars
//! are resolved with YAML 1.1 rules as PyYAML does (`yes`/`on`/`off` are booleans, `0o`-less
//! octals, `1_000`), because BitOps read its files with PyYAML and repos rely on that.
//!
//! The event parser comes from `yaml-rust2`; writing YAML (exported pipelines) goes through
//! `serde_yaml` in [`to_string`]. Nothing outside this module names either crate.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A byte range in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.offset, s.len).into()
    }
}

/// A parsed YAML value with the span it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, with `raw` for plain scalars that looked like something else to a human.
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; a repeated key keeps its last value, as PyYAML does.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq_len(&self) -> Option<usize> {
        match &self.value {
            Value::Seq(s) => Some(s.len()),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Looks a key up in a mapping (string keys only).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value as Python's `str()` would render it, which is what BitOps exported.
    pub fn to_python_str(&self) -> String {
        match &self.value {
            Value::Null => "None".into(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => python_float(*f),
            Value::Str(s) => s.clone(),
            Value::Seq(items) => {
                let inner: Vec<String> = items.iter().map(Node::python_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.python_repr(), v.python_repr()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    fn python_repr(&self) -> String {
        match &self.value {
            Value::Str(s) => format!("'{s}'"),
            _ => self.to_python_str(),
        }
    }

    /// Python truthiness, which decided every BitOps flag.
    pub fn is_truthy(&self) -> bool {
        match &self.value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Seq(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }
}

fn python_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// A YAML syntax error, located in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub span: Span,
    /// The text is YAML but breaks a limit (nesting, alias expansion): refused even where a
    /// file that is not YAML at all is tolerated (a helm template in `_default`).
    pub limit: bool,
}

impl SyntaxError {
    /// `line N: message`, for places that show no source (working-copy merges).
    pub fn at_line(&self, text: &str) -> String {
        let end = self.span.offset.min(text.len());
        let line = text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!("line {line}: {}", self.message)
    }
}

/// Upper bound on nodes a document may expand to through aliases ("billion laughs").
const MAX_NODES: usize = 200_000;
/// Upper bound on nesting, so hostile input cannot exhaust the stack. Every tree [`parse`]
/// returns is at most this deep, aliases included, so code that walks a tree recursively is
/// safe on any thread.
pub const MAX_DEPTH: usize = 128;
const NESTING: &str = "nesting too deep: YAML may nest at most 128 levels (aliases included)";

/// A key written twice in one mapping: YAML leaves this to the loader (PyYAML keeps the last
/// value silently); bitops' config reader reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub key: String,
    /// The first occurrence.
    pub first: Span,
    /// The later one, whose value wins.
    pub again: Span,
}

/// Parses the first document of `text`. An empty document is `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    parse_with_duplicates(text).map(|(root, _)| root)
}

/// [`parse`], also returning every key written twice in one mapping.
pub fn parse_with_duplicates(text: &str) -> Result<(Option<Node>, Vec<Duplicate>), SyntaxError> {
    let mut builder = Builder::new(text);
    let mut parser = Parser::new_from_str(text);
    // Events are pulled one by one rather than through `Parser::load`, which recurses once per
    // level of block nesting (`- - - - …` on one line is thousands of levels in a few KB and
    // overflowed the stack); this loop stops at the first document's end or at the first
    // limit the builder hits, so no part of parsing is deeper than MAX_DEPTH.
    let result = loop {
        match parser.next_token() {
            Ok((ev, mark)) => {
                let end = ev == Event::StreamEnd;
                builder.on_event(ev, mark);
                if end || builder.done || builder.error.is_some() {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    if let Some(err) = builder.error.take() {
        return Err(err);
    }
    if let Err(e) = result {
        let mut offset = builder.offsets.byte(e.marker().index());
        // An error found only at the end of input (an unclosed bracket) is about the last
        // thing written: point there, so the label lands on a line that is shown.
        let written = text.trim_end().len();
        if offset >= written && written > 0 {
            offset = text[..written].char_indices().last().map_or(0, |(i, _)| i);
        }
        let message = e.info().to_string();
        return Err(SyntaxError {
            // The parser's own guard against deep flow nesting is a limit too.
            limit: message.contains("recursion limit"),
            message,
            span: Span { offset, len: 1 },
        });
    }
    Ok((builder.root, builder.duplicates))
}

/// Renders a serializable value as YAML (used for generated CI pipelines).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_yaml::to_string(value).map_err(|e| e.to_string())
}

/// Deep merge for `_default`: mappings merge key by key with `over` winning; anything else
/// (lists included) is replaced by `over`.
pub fn merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(b), Value::Map(o)) => {
            let mut entries: Vec<(Node, Node)> = Vec::with_capacity(b.len() + o.len());
            for (k, v) in b {
                match o.iter().rev().find(|(ok, _)| ok.value == k.value) {
                    Some((_, ov)) => entries.push((k.clone(), merge(v, ov))),
                    None => entries.push((k.clone(), v.clone())),
                }
            }
            for (k, v) in o {
                if !b.iter().any(|(bk, _)| bk.value == k.value) {
                    entries.push((k.clone(), v.clone()));
                }
            }
            Node {
                value: Value::Map(entries),
                span: over.span,
            }
        }
        _ => over.clone(),
    }
}

/// Deep-merges two YAML texts as the working copy does for `_default` (see [`merge`]).
/// `Ok(None)` when either side is not a YAML mapping (the environment's file is then kept as it
/// is: a helm template is not YAML); an error when either breaks a limit of [`parse`], so a
/// hostile `_default` file is refused, never half-merged or walked into a stack overflow.
pub fn merge_text(base: &str, over: &str) -> Result<Option<String>, (bool, String)> {
    let parse_side = |text: &str, is_base: bool| match parse(text) {
        Ok(n) => Ok(n),
        Err(e) if e.limit => Err((is_base, e.at_line(text))),
        Err(_) => Ok(None),
    };
    let (b, o) = (parse_side(base, true)?, parse_side(over, false)?);
    match (b, o) {
        (Some(b), Some(o)) if b.as_map().is_some() && o.as_map().is_some() => {
            Ok(Some(node_to_string(&merge(&b, &o))))
        }
        _ => Ok(None),
    }
}

/// Writes a node back as YAML text (comments and styles are not kept).
pub fn node_to_string(node: &Node) -> String {
    fn conv(n: &Node) -> serde_yaml::Value {
        match &n.value {
            Value::Null => serde_yaml::Value::Null,
            Value::Bool(b) => serde_yaml::Value::Bool(*b),
            Value::Int(i) => serde_yaml::Value::Number((*i).into()),
            Value::Float(f) => serde_yaml::Value::Number((*f).into()),
            Value::Str(s) => serde_yaml::Value::String(s.clone()),
            Value::Seq(items) => serde_yaml::Value::Sequence(items.iter().map(conv).collect()),
            Value::Map(entries) => {
                let mut m = serde_yaml::Mapping::new();
                for (k, v) in entries {
                    m.insert(conv(k), conv(v));
                }
                serde_yaml::Value::Mapping(m)
            }
        }
    }
    serde_yaml::to_string(&conv(node)).unwrap_or_default()
}

/// Converts the parser's character indices to byte offsets.
struct Offsets {
    /// `None` for ASCII text, where both are the same.
    table: Option<Vec<usize>>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        Offsets {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        items: Vec<Node>,
        anchor: usize,
    },
    Map {
        start: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
    },
}

struct Builder<'a> {
    text: &'a str,
    offsets: Offsets,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    error: Option<SyntaxError>,
    done: bool,
    duplicates: Vec<Duplicate>,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            offsets: Offsets::new(text),
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            nodes: 0,
            error: None,
            done: false,
            duplicates: Vec::new(),
        }
    }

    fn fail(&mut self, message: &str, offset: usize) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                message: message.into(),
                span: Span { offset, len: 1 },
                limit: true,
            });
        }
    }

    fn count(&mut self, n: usize, offset: usize) -> bool {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            self.fail("document expands to too many nodes (alias bomb?)", offset);
            return false;
        }
        true
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    /// Records keys written twice (merge keys `<<` aside: their keys are meant to be
    /// overridden). Keys that came in through an alias carry the alias' span and are skipped.
    fn find_duplicates(&mut self, entries: &[(Node, Node)]) {
        if entries.len() < 2 {
            return;
        }
        let mut seen: HashMap<(&'static str, String), Span> = HashMap::new();
        for (k, _) in entries {
            if matches!(k.value, Value::Seq(_) | Value::Map(_)) || k.as_str() == Some("<<") {
                continue;
            }
            let key = (k.kind(), k.to_python_str());
            match seen.get(&key) {
                Some(first) => self.duplicates.push(Duplicate {
                    key: key.1,
                    first: *first,
                    again: k.span,
                }),
                None => {
                    seen.insert(key, k.span);
                }
            }
        }
    }

    fn scalar_span(&self, offset: usize, value: &str, style: TScalarStyle) -> Span {
        let rest = &self.text[offset.min(self.text.len())..];
        let line_len = rest.find('\n').unwrap_or(rest.len());
        let wanted = match style {
            TScalarStyle::Plain => value.len(),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => value.len() + 2,
            _ => line_len,
        };
        Span {
            offset,
            len: wanted.min(line_len).max(1),
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() || self.done {
            return;
        }
        let offset = self.offsets.byte(mark.index());
        match ev {
            Event::DocumentEnd => {
                if self.root.is_some() {
                    self.done = true;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(1, offset) {
                    return;
                }
                let span = self.scalar_span(offset, &text, style);
                let forced_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == TScalarStyle::Plain && !forced_str {
                    resolve_scalar(&text)
                } else {
                    Value::Str(text)
                };
                self.push_value(Node { value, span }, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    if !self.count(count_nodes(&node), offset) {
                        return;
                    }
                    // An alias puts a whole tree where it stands: a chain of aliases nests
                    // deeper than any one of them is written, and every later walk of the
                    // tree (merging, rendering, dropping) recurses.
                    if self.stack.len() + height(&node) > MAX_DEPTH {
                        return self.fail(NESTING, offset);
                    }
                    node.span = Span { offset, len: 1 };
                    self.push_value(node, 0);
                }
                None => self.fail("alias to an unknown anchor", offset),
            },
            Event::SequenceStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail(NESTING, offset);
                }
                self.stack.push(Frame::Seq {
                    start: offset,
                    items: Vec::new(),
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail(NESTING, offset);
                }
                self.stack.push(Frame::Map {
                    start: offset,
                    entries: Vec::new(),
                    key: None,
                    anchor,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return self.fail("unbalanced collection", offset);
                };
                let (start, value, anchor) = match frame {
                    Frame::Seq {
                        start,
                        items,
                        anchor,
                    } => (start, Value::Seq(items), anchor),
                    Frame::Map {
                        start,
                        entries,
                        anchor,
                        ..
                    } => {
                        self.find_duplicates(&entries);
                        (start, Value::Map(apply_merge_keys(entries)), anchor)
                    }
                };
                let end = offset.max(start + 1);
                self.push_value(
                    Node {
                        value,
                        span: Span {
                            offset: start,
                            len: end - start,
                        },
                    },
                    anchor,
                );
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
}

/// Levels of collections in a tree (a scalar is 0, `[x]` is 1).
fn height(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(height).max().unwrap_or(0),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| height(k).max(height(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// YAML 1.1 merge keys (`<<: *base`), which PyYAML applies: keys already present win.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries.iter().any(|(k, _)| k.as_str() == Some("<<")) {
        return entries;
    }
    let mut own = Vec::new();
    let mut merged = Vec::new();
    for (k, v) in entries {
        if k.as_str() == Some("<<") {
            match v.value {
                Value::Map(m) => merged.extend(m),
                Value::Seq(items) => {
                    for item in items {
                        if let Value::Map(m) = item.value {
                            merged.extend(m);
                        }
                    }
                }
                _ => own.push((k, v)),
            }
        } else {
            own.push((k, v));
        }
    }
    for (k, v) in merged {
        if !own.iter().any(|(o, _)| o.value == k.value) {
            own.push((k, v));
        }
    }
    own
}

/// Resolves a plain scalar with PyYAML's YAML 1.1 implicit resolvers.
pub fn resolve_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    if let Some(i) = parse_int(s) {
        return Value::Int(i);
    }
    if let Some(f) = parse_float(s) {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

fn split_sign(s: &str) -> (i64, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let (sign, body) = split_sign(s);
    if body.is_empty() || !body.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let digits = |t: &str, radix: u32| -> Option<i64> {
        let cleaned: String = t.chars().filter(|c| *c != '_').collect();
        if cleaned.is_empty() {
            return None;
        }
        i64::from_str_radix(&cleaned, radix).ok()
    };
    let magnitude = if let Some(b) = body.strip_prefix("0b") {
        digits(b, 2)?
    } else if let Some(h) = body.strip_prefix("0x") {
        digits(h, 16)?
    } else if body.contains(':') {
        // Sexagesimal (`1:30` is 90), a YAML 1.1 oddity PyYAML still honours.
        let mut total: i64 = 0;
        for (i, part) in body.split(':').enumerate() {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                return None;
            }
            let v = digits(part, 10)?;
            if i > 0 && v > 59 {
                return None;
            }
            total = total.checked_mul(60)?.checked_add(v)?;
        }
        if body.starts_with('0') {
            return None;
        }
        total
    } else if body.len() > 1 && body.starts_with('0') {
        if !body
            .bytes()
            .all(|b| (b'0'..=b'7').contains(&b) || b == b'_')
        {
            return None;
        }
        digits(body, 8)?
    } else {
        if !body.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return None;
        }
        digits(body, 10)?
    };
    magnitude.checked_mul(sign)
}

fn parse_float(s: &str) -> Option<f64> {
    let (sign, body) = split_sign(s);
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign as f64 * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if sign == 1 && !s.starts_with('+') => return Some(f64::NAN),
        _ => {}
    }
    // PyYAML 1.1 floats need a dot; `1e3` stays a string.
    if !body.contains('.') {
        return None;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let ok_mantissa = mantissa
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'_' || b == b'.')
        && mantissa.bytes().filter(|b| *b == b'.').count() == 1
        && mantissa.bytes().any(|b| b.is_ascii_digit())
        && !mantissa.starts_with('_');
    let ok_exponent = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    if !ok_mantissa || !ok_exponent {
        return None;
    }
    let cleaned: String = body.chars().filter(|c| *c != '_').collect();
    cleaned.parse::<f64>().ok().map(|f| f * sign as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(s: &str) -> Value {
        parse(&format!("k: {s}\n"))
            .unwrap()
            .unwrap()
            .get("k")
            .unwrap()
            .value
            .clone()
    }

    #[test]
    fn yaml_1_1_scalars_match_pyyaml() {
        let cases: &[(&str, Value)] = &[
            ("yes", Value::Bool(true)),
            ("Off", Value::Bool(false)),
            ("y", Value::Str("y".into())),
            ("'yes'", Value::Str("yes".into())),
            ("!!str on", Value::Str("on".into())),
            ("~", Value::Null),
            ("", Value::Null),
            ("010", Value::Int(8)),
            ("0x1f", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("1_000", Value::Int(1000)),
            ("-42", Value::Int(-42)),
            ("1:30", Value::Int(90)),
            ("1.5", Value::Float(1.5)),
            ("1e3", Value::Str("1e3".into())),
            ("1.0e+3", Value::Float(1000.0)),
            ("09", Value::Str("09".into())),
            ("v1.2", Value::Str("v1.2".into())),
            ("1.2.3", Value::Str("1.2.3".into())),
        ];
        for (text, want) in cases {
            assert_eq!(&scalar(text), want, "scalar {text:?}");
        }
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "bitops:\n  jobs: four\n";
        let root = parse(text).unwrap().unwrap();
        let (k, v) = &root.get("bitops").unwrap().as_map().unwrap()[0];
        assert_eq!(&text[k.span.offset..k.span.offset + k.span.len], "jobs");
        assert_eq!(&text[v.span.offset..v.span.offset + v.span.len], "four");
    }

    #[test]
    fn spans_are_byte_offsets_in_non_ascii_text() {
        let text = "# é ü\nkey: välue\nnext: x\n";
        let root = parse(text).unwrap().unwrap();
        let v = root.get("next").unwrap();
        assert_eq!(&text[v.span.offset..v.span.offset + v.span.len], "x");
    }

    #[test]
    fn merge_keys_and_aliases() {
        let text = "base: &b {a: 1, b: 2}\nchild:\n  <<: *b\n  b: 3\n";
        let root = parse(text).unwrap().unwrap();
        let child = root.get("child").unwrap();
        assert_eq!(child.get("a").unwrap().value, Value::Int(1));
        assert_eq!(child.get("b").unwrap().value, Value::Int(3));
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.span.offset > 0, "{err:?}");
        assert!(parse("").unwrap().is_none());
        // At the end of input: on the last character written, not past the end.
        let text = "a:\n  b: [unclosed\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.span.offset, text.trim_end().len() - 1, "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_found_with_both_places() {
        let text = "a: 1\nb: {x: 1, x: 2}\na: 3\nbase: &b {k: 1}\nc:\n  <<: *b\n  k: 2\n";
        let (_, d) = parse_with_duplicates(text).unwrap();
        let keys: Vec<&str> = d.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, ["x", "a"], "{d:?}");
        assert_eq!(&text[d[1].first.offset..d[1].first.offset + 1], "a");
        assert_eq!(d[1].again.offset, text.rfind("a: 3").unwrap());
    }

    #[test]
    fn nesting_through_aliases_is_limited() {
        // Each line nests 100 levels and puts the previous one inside: 5 lines exceed 128.
        let mut text = format!("a0: &a0 {}x{}\n", "[".repeat(100), "]".repeat(100));
        for i in 1..5 {
            text.push_str(&format!(
                "a{i}: &a{i} {}*a{}{}\n",
                "[".repeat(100),
                i - 1,
                "]".repeat(100)
            ));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.limit && e.message.contains("nesting too deep"), "{e:?}");
        // Deep flow nesting, caught by the parser itself, is a limit too.
        let e = parse(&format!("{}{}", "[".repeat(5000), "]".repeat(5000))).unwrap_err();
        assert!(e.limit, "{e:?}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&text).is_err());
    }

    #[test]
    fn merge_is_deep_for_maps_and_replaces_lists() {
        let base = parse("a: {x: 1, y: [1, 2]}\nb: keep\n").unwrap().unwrap();
        let over = parse("a: {y: [3], z: 4}\n").unwrap().unwrap();
        let m = merge(&base, &over);
        let round = parse(&node_to_string(&m)).unwrap().unwrap();
        let a = round.get("a").unwrap();
        assert_eq!(a.get("x").unwrap().value, Value::Int(1));
        assert_eq!(a.get("z").unwrap().value, Value::Int(4));
        assert_eq!(a.get("y").unwrap().as_seq_len(), Some(1));
        assert_eq!(round.get("b").unwrap().as_str(), Some("keep"));
    }

    #[test]
    fn python_rendering_matches_str() {
        assert_eq!(
            Node {
                value: Value::Bool(true),
                span: Span::default()
            }
            .to_python_str(),
            "True"
        );
        assert_eq!(
            Node {
                value: Value::Float(2.0),
                span: Span::default()
            }
            .to_python_str(),
            "2.0"
        );
    }
}

/// Parse results of this thread's recently repeated texts (see [`parse_with_duplicates_memo`]).
type Parsed = Result<(Option<Node>, Vec<Duplicate>), SyntaxError>;

#[derive(Default)]
struct Memo {
    /// Hashes of texts seen once: a text is kept only when it comes again.
    seen: std::collections::HashSet<u64>,
    kept: HashMap<Box<str>, Parsed>,
}

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::default();
}

/// [`parse_with_duplicates`], remembered for texts that repeat: large repos hold thousands of
/// byte-identical tool configs (`terraform:` with the same options in every environment), and
/// parsing is a pure function of the text, so a copy of the earlier tree is the same answer.
/// Only small texts without aliases are kept (a clone of an alias-expanded tree costs what
/// parsing does), at most 64 per thread, so memory stays bounded.
pub fn parse_with_duplicates_memo(text: &str) -> Parsed {
    const MAX_TEXT: usize = 2048;
    const MAX_KEPT: usize = 64;
    const MAX_SEEN: usize = 4096;
    if text.len() > MAX_TEXT || text.contains('*') {
        return parse_with_duplicates(text);
    }
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(p) = m.kept.get(text) {
            return p.clone();
        }
        let parsed = parse_with_duplicates(text);
        let hash = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(text)
        };
        if m.seen.contains(&hash) {
            if m.kept.len() >= MAX_KEPT {
                m.kept.clear();
            }
            m.kept.insert(text.into(), parsed.clone());
        } else {
            if m.seen.len() >= MAX_SEEN {
                m.seen.clear();
            }
            m.seen.insert(hash);
        }
        parsed
    })
}

#[cfg(test)]
mod memo_tests {
    use super::*;

    #[test]
    fn memo_gives_what_parsing_gives_every_time() {
        let texts = [
            "terraform:\n  options:\n    workspace: a\n",
            "a: 1\na: 2\n",
            "a: [unclosed\n",
            "",
            "x: &v 1\ny: *v\n",
        ];
        for _ in 0..4 {
            for t in texts {
                assert_eq!(
                    parse_with_duplicates_memo(t),
                    parse_with_duplicates(t),
                    "{t:?}"
                );
            }
        }
        // The repeated text is kept: what is served is the kept copy.
        MEMO.with(|m| assert!(m.borrow().kept.contains_key(texts[0])));
    }
}
