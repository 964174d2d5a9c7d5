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

    /// Checks a name that will become a path or variable name (see [`crate::names`]);
    /// reports it and returns `false` when it is not allowed.
    pub fn name(&mut self, kind: crate::names::Kind, name: &Spanned<String>) -> bool {
        match crate::names::check(kind, &name.value) {
            Ok(()) => true,
            Err(why) => {
                self.diags.push(
                    Problem::new(
                        "bitops::config::name",
                        format!(
                            "`{}` is not a valid {}",
                            name.value.escape_debug(),
                            kind.noun()
                        ),
                    )
                    .at(&name.loc, why)
                    .help(format!("use {}", crate::names::ALLOWED)),
                );
                false
            }
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
        self.uint_in(key, node, min, u64::MAX)
    }

    /// A whole number in `min..=max`: a number out of range is a located error, never wrapped
    /// or truncated (`retries: 4294967296` once became 0).
    pub fn uint_in(&mut self, key: &str, node: &Node, min: u64, max: u64) -> Option<Spanned<u64>> {
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
                Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => u64::MAX,
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
        if n > max {
            let loc = self.loc(node);
            self.diags.push(
                Problem::new(
                    "bitops::config::range",
                    format!("`{key}` must be at most {max}"),
                )
                .at(&loc, "too large")
                .help(format!("write a number from {min} to {max}")),
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
            Value::Int(i) if *i >= 0 => Ok(Duration::from_secs(*i as u64)),
            Value::Float(f) if *f >= 0.0 && f.is_finite() => {
                Ok(Duration::try_from_secs_f64(*f).unwrap_or(Duration::MAX))
            }
            Value::Str(s) => parse_duration(s).map_err(Some),
            _ => Err(None),
        };
        match d.and_then(|d| cap_duration(d).map_err(Some)) {
            Ok(d) => Some(Spanned::new(d, self.loc(node))),
            Err(Some(why)) if why.contains("at most") => {
                let loc = self.loc(node);
                self.diags.push(
                    Problem::new("bitops::config::range", format!("`{key}` is too long"))
                        .at(&loc, "too long")
                        .help(why),
                );
                None
            }
            Err(_) => {
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

/// The longest duration bitops accepts anywhere (timeouts, `--deadline`, `--lock-timeout`):
/// far above any real deployment, and small enough that adding it to any clock reading cannot
/// overflow (`timeout: 500000000000y` once panicked a worker).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Refuses a duration above [`MAX_DURATION`].
pub fn cap_duration(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        Err("a duration may be at most 365 days (`365d`)".into())
    } else {
        Ok(d)
    }
}

/// `600` (seconds), `90s`, `15m`, `1h 30m`; at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: seconds; too many of them is too long, not "not a duration".
        Duration::from_secs(t.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        humantime::parse_duration(t).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => {
                format!("`{s}` is too long: a duration may be at most 365 days (`365d`)")
            }
            e => format!("`{s}` is not a duration ({e}); write e.g. `90s`, `15m` or `1h`"),
        })?
    };
    cap_duration(d).map_err(|why| format!("`{s}` is too long: {why}"))
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
        assert!(parse_duration("365d").is_ok());
        for huge in [
            "366d",
            "500000000000y",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains("at most 365 days"), "{huge}: {e}");
        }
    }
}
