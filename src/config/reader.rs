//! Typed reads of YAML nodes that record a located problem instead of failing.
//!
//! Every reader returns `None` after recording a problem, so the caller carries on and the
//! rest of the file is still checked.

use std::sync::Arc;
use std::time::Duration;

use crate::diagnostic::{did_you_mean, Diagnostics, Loc, Problem, SourceFile, Spanned};
use crate::yaml::{Node, Value};

pub struct Reader<'a> {
    pub file: &'a Arc<SourceFile>,
    pub diags: &'a mut Diagnostics,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a Arc<SourceFile>, diags: &'a mut Diagnostics) -> Self {
        Reader { file, diags }
    }

    pub fn loc(&self, node: &Node) -> Loc {
        Loc::new(self.file, node.span)
    }

    fn wrong_type(&mut self, key: &str, node: &Node, want: &str, example: &str) {
        let loc = self.loc(node);
        self.diags.push(
            Problem::new(
                "bitops::config::type",
                format!("`{key}` must be {want}, found {}", node.kind()),
            )
            .at(&loc, format!("expected {want}"))
            .help(format!("write it as `{key}: {example}`")),
        );
    }

    /// A mapping's entries with string keys; other keys and non-mappings are reported.
    pub fn map<'n>(
        &mut self,
        key: &str,
        node: &'n Node,
    ) -> Option<Vec<(Spanned<String>, &'n Node)>> {
        let entries = match &node.value {
            Value::Map(m) => m,
            Value::Null => return Some(Vec::new()),
            _ => {
                self.wrong_type(key, node, "a mapping", "{ … }");
                return None;
            }
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let name = match &k.value {
                Value::Str(s) => s.clone(),
                // PyYAML would turn `on:` into True; a key is always meant as a name.
                Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Null => {
                    let text = &self.file.text;
                    let end = (k.span.offset + k.span.len).min(text.len());
                    text.get(k.span.offset..end).unwrap_or("").to_string()
                }
                _ => {
                    let loc = self.loc(k);
                    self.diags.push(
                        Problem::new(
                            "bitops::config::key",
                            format!("a key under `{key}` must be a name"),
                        )
                        .at(&loc, "not a plain name"),
                    );
                    continue;
                }
            };
            out.push((Spanned::new(name, self.loc(k)), v));
        }
        Some(out)
    }

    /// Reports keys that are not in `known`, with the closest known key as a suggestion.
    pub fn check_keys(
        &mut self,
        section: &str,
        entries: &[(Spanned<String>, &Node)],
        known: &[&str],
    ) {
        for (k, _) in entries {
            if known.contains(&k.value.as_str()) {
                continue;
            }
            let mut p = Problem::new(
                "bitops::config::unknown_key",
                format!("unknown key `{}` in `{section}`", k.value),
            )
            .at(&k.loc, "unknown key");
            p = match did_you_mean(&k.value, known.iter().copied()) {
                Some(s) => p.help(format!("did you mean `{s}`?")),
                None => p.help(format!("the keys of `{section}` are: {}", known.join(", "))),
            };
            self.diags.push(p);
        }
    }

    pub fn bool(&mut self, key: &str, node: &Node) -> Option<Spanned<bool>> {
        match &node.value {
            Value::Bool(b) => Some(Spanned::new(*b, self.loc(node))),
            Value::Str(s) => match parse_bool(s) {
                Some(b) => Some(Spanned::new(b, self.loc(node))),
                None => {
                    self.wrong_type(key, node, "a boolean", "true");
                    None
                }
            },
            _ => {
                self.wrong_type(key, node, "a boolean", "true");
                None
            }
        }
    }

    pub fn uint(&mut self, key: &str, node: &Node, min: u64) -> Option<Spanned<u64>> {
        let n = match &node.value {
            Value::Int(i) if *i >= 0 => *i as u64,
            // A negative number is the right type, just too small: say so.
            Value::Int(_) => {
                let loc = self.loc(node);
                self.diags.push(
                    Problem::new(
                        "bitops::config::range",
                        format!("`{key}` must be at least {min}, found a negative number"),
                    )
                    .at(&loc, "negative")
                    .help(format!("write it as `{key}: {}`", min.max(1))),
                );
                return None;
            }
            Value::Str(s) => match s.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    self.wrong_type(key, node, "a whole number", "4");
                    return None;
                }
            },
            _ => {
                self.wrong_type(key, node, "a whole number", "4");
                return None;
            }
        };
        if n < min {
            let loc = self.loc(node);
            self.diags.push(
                Problem::new(
                    "bitops::config::range",
                    format!("`{key}` must be at least {min}"),
                )
                .at(&loc, "too small"),
            );
            return None;
        }
        Some(Spanned::new(n, self.loc(node)))
    }

    pub fn string(&mut self, key: &str, node: &Node) -> Option<Spanned<String>> {
        match &node.value {
            Value::Str(s) => Some(Spanned::new(s.clone(), self.loc(node))),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                Some(Spanned::new(node.to_python_str(), self.loc(node)))
            }
            _ => {
                self.wrong_type(key, node, "a string", "\"…\"");
                None
            }
        }
    }

    /// A list of names; a single string is accepted as a list of one.
    pub fn string_list(&mut self, key: &str, node: &Node) -> Option<Vec<Spanned<String>>> {
        match &node.value {
            Value::Null => Some(Vec::new()),
            Value::Str(_) => Some(vec![self.string(key, node)?]),
            Value::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push(Spanned::new(s.clone(), self.loc(item))),
                        _ => self.wrong_type(
                            key,
                            item,
                            "a list of names",
                            "[backend-test, terraform]",
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_type(key, node, "a list of names", "[backend-test, terraform]");
                None
            }
        }
    }

    /// A duration: a number of seconds (BitOps' `timeout: 600`) or a text such as `15m`.
    pub fn duration(&mut self, key: &str, node: &Node) -> Option<Spanned<Duration>> {
        let d = match &node.value {
            Value::Int(i) if *i >= 0 => Some(Duration::from_secs(*i as u64)),
            Value::Float(f) if *f >= 0.0 && f.is_finite() => Some(Duration::from_secs_f64(*f)),
            Value::Str(s) => parse_duration(s).ok(),
            _ => None,
        };
        match d {
            Some(d) => Some(Spanned::new(d, self.loc(node))),
            None => {
                self.wrong_type(key, node, "a duration", "15m");
                None
            }
        }
    }
}

/// Booleans as text, from env vars and quoted YAML. Unlike BitOps (any non-empty string was
/// true), `"false"`, `"0"`, `"no"`, `"off"` are false.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "" => Some(false),
        _ => None,
    }
}

/// `600` (seconds), `90s`, `15m`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. `90s`, `15m` or `1h`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_text_fixes_bitops_truthiness() {
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
    }
}
