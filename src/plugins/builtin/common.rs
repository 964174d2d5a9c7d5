//! What every built-in plugin shares: its settings resolved against a BitOps schema with the
//! `bitops_format` resolver (so built-ins read exactly the keys and env overrides the official
//! plugins read, with the same fixes), `ENV_FILE` reading, and small helpers for steps.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::diagnostic::{Loc, Problem, SourceFile};
use crate::plugins::bitops_format::{is_false_word, resolve, Resolved, Schema, Source, ToolConfig};
use crate::plugins::step::{Context, Prepared};
use crate::yaml::{Node, Span, Value};

/// A schema compiled into the binary, parsed on first use. A broken built-in schema is a bug
/// caught by the unit tests, hence the panic.
pub(super) fn schema(cell: &'static OnceLock<Schema>, name: &str, text: &str) -> &'static Schema {
    cell.get_or_init(|| match Schema::from_text(name, text) {
        Ok(s) => s,
        Err(problems) => panic!("built-in schema {name} is invalid: {problems:?}"),
    })
}

/// One deployment's (or helm chart's) settings, resolved.
pub(super) struct Settings<'a> {
    pub(super) resolved: Resolved,
    schema: &'static Schema,
    root: Option<&'a Node>,
}

impl<'a> Settings<'a> {
    /// Resolves `root` (a tool-level config) against `schema`; every problem at once.
    pub(super) fn resolve(
        schema: &'static Schema,
        root: Option<&'a Node>,
        file: Option<&'a Arc<SourceFile>>,
        display: &str,
        env: &BTreeMap<String, String>,
        plugin: &str,
    ) -> Result<Settings<'a>, Vec<Problem>> {
        let tc = ToolConfig {
            root,
            file,
            display,
        };
        let resolved = resolve(schema, &tc, env, plugin);
        if !resolved.problems.is_empty() {
            return Err(resolved.problems);
        }
        Ok(Settings {
            resolved,
            schema,
            root,
        })
    }

    /// Resolves the deployment's tool config (from `ctx`) against `schema`.
    pub(super) fn for_context(
        schema: &'static Schema,
        ctx: &'a Context<'_>,
    ) -> Result<Settings<'a>, Vec<Problem>> {
        Settings::resolve(
            schema,
            ctx.tool_config,
            ctx.tool_config_file,
            &ctx.tool_config_name,
            ctx.env,
            ctx.plugin,
        )
    }

    /// A plan with the contract's exports and settings, hooks on, needing `tool` on PATH.
    pub(super) fn prepared(&self, tool: &str) -> Prepared {
        Prepared {
            exports: self.exports(),
            before_hooks: true,
            after_hooks: true,
            settings: self.lines(""),
            tools: vec![tool.into()],
            ..Prepared::default()
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}.{key}", self.schema.root_key)
    }

    fn entry(&self, key: &str) -> Option<&(String, Option<String>, Source)> {
        let full = self.full_key(key);
        self.resolved.values.iter().find(|(k, _, _)| *k == full)
    }

    /// Where the value came from.
    pub(super) fn source(&self, key: &str) -> Source {
        self.entry(key).map_or(Source::Unset, |e| e.2)
    }

    /// The value as exported (lists space-joined, booleans `true`/`false`); `None` when unset
    /// or empty.
    pub(super) fn str(&self, key: &str) -> Option<String> {
        self.entry(key)
            .and_then(|e| e.1.clone())
            .filter(|v| !v.is_empty())
    }

    /// A boolean setting: unset is `None`; `"false"`, `"no"`, `"off"`, `"0"` and `""` are false
    /// (the resolver's rule, so an override `BITOPS_X=false` is false).
    pub(super) fn bool_opt(&self, key: &str) -> Option<bool> {
        let e = self.entry(key)?;
        match (&e.1, e.2) {
            (_, Source::Unset) => None,
            (Some(v), _) => Some(!is_false_word(v)),
            (None, _) => None,
        }
    }

    pub(super) fn bool(&self, key: &str) -> bool {
        self.bool_opt(key).unwrap_or(false)
    }

    /// A list setting, item by item: from the YAML list when it came from the config (so an
    /// item may contain spaces), otherwise the words of the override or default.
    pub(super) fn list(&self, key: &str) -> Vec<String> {
        if self.source(key) == Source::Config {
            if let Some(Value::Seq(items)) = self.lookup(key).map(|n| &n.value) {
                return items
                    .iter()
                    .filter(|n| !n.is_null())
                    .map(Node::to_python_str)
                    .collect();
            }
        }
        self.str(key)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn lookup(&self, key: &str) -> Option<&'a Node> {
        let mut node = self.root?;
        for seg in self.full_key(key).split('.') {
            node = node.get(seg)?;
        }
        Some(node)
    }

    /// Every variable the contract exports (`export_env`, its `BITOPS_` copy, the CLI variable).
    pub(super) fn exports(&self) -> BTreeMap<String, String> {
        self.resolved.env().into_iter().collect()
    }

    /// The environment override name of a property (`BITOPS_TERRAFORM_WORKSPACE`).
    pub(super) fn override_name(&self, key: &str) -> String {
        self.schema
            .property(&self.full_key(key))
            .map_or_else(String::new, |p| p.override_name())
    }

    /// `key = value (origin)` lines for `bitops plan`, in schema order; `prefix` names a helm
    /// chart.
    pub(super) fn lines(&self, prefix: &str) -> Vec<String> {
        self.resolved
            .values
            .iter()
            .filter(|(_, _, src)| *src != Source::Unset)
            .map(|(k, v, src)| {
                let origin = match src {
                    Source::Env => {
                        let over = self
                            .schema
                            .property(k)
                            .map(|p| p.override_name())
                            .unwrap_or_default();
                        format!("env {over}")
                    }
                    Source::Config => "config".into(),
                    Source::Default => "schema default".into(),
                    Source::Unset => "unset".into(),
                };
                format!("{prefix}{k} = {} ({origin})", v.as_deref().unwrap_or("-"))
            })
            .collect()
    }
}

/// `true` when the environment variable is set to something other than a false word. BitOps'
/// scripts compared with `== "true"`; accepting `1`/`yes` too is harmless and expected.
pub(super) fn env_true(env: &BTreeMap<String, String>, name: &str) -> bool {
    env.get(name).is_some_and(|v| !is_false_word(v))
}

/// Reads `<dir>/ENV_FILE` the way the official terraform and helm plugins `source`d it, without
/// a shell: `export NAME=value` and `NAME=value` lines, with `'…'` (literal) and `"…"` quoting
/// and `$NAME`/`${NAME}` expansion from earlier lines and the deployment's environment. Blank
/// lines, comments and bare `export NAME` are ignored. Anything a shell would have to run
/// (command substitution, other commands) is a located problem, so it never silently differs
/// from BitOps. A missing file gives nothing.
pub(super) fn read_env_file(
    dir: &Path,
    display: &str,
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let path = dir.join("ENV_FILE");
    // Absent is fine; anything else (a FIFO a hook left, not UTF-8) is said, not skipped.
    let text = match crate::discover::files::read_regular_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(vec![Problem::new(
                "bitops::plugin::env_file",
                format!("cannot read {display}/ENV_FILE: {e}"),
            )
            .path(&path)
            .help("ENV_FILE must be a regular file of `NAME=value` lines")])
        }
    };
    let file = SourceFile::new(path.clone(), format!("{display}/ENV_FILE"), text);
    let mut vars = BTreeMap::new();
    let mut problems = Vec::new();
    let mut offset = 0;
    for line in file.text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_assignment(trimmed, &vars, env) {
            Ok(Some((k, v))) => {
                vars.insert(k, v);
            }
            Ok(None) => {}
            Err(why) => {
                let lead = line.len() - line.trim_start().len();
                let loc = Loc::new(
                    &file,
                    Span {
                        offset: start + lead,
                        len: trimmed.len(),
                    },
                );
                problems.push(
                    Problem::new("bitops::plugin::env_file", format!("`{}` has a line bitops cannot read: {why}", file.name))
                        .at(&loc, why.to_string())
                        .help(
                            "ENV_FILE is read without a shell: write `export NAME=value` lines only, and compute \
                             other values in a before-deploy hook that writes them to a file the tool reads",
                        ),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(problems)
    }
}

/// One `ENV_FILE` line: `Ok(None)` for a bare `export NAME`.
fn parse_assignment(
    line: &str,
    vars: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Result<Option<(String, String)>, &'static str> {
    let rest = line.strip_prefix("export ").map_or(line, str::trim_start);
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("not a `NAME=value` assignment");
    }
    let after = &rest[name_len..];
    if after.trim().is_empty() || after.trim_start().starts_with('#') {
        return if line.starts_with("export ") {
            Ok(None)
        } else {
            Err("not a `NAME=value` assignment")
        };
    }
    let Some(value) = after.strip_prefix('=') else {
        return Err("not a `NAME=value` assignment");
    };
    let lookup = |n: &str| {
        vars.get(n)
            .or_else(|| env.get(n))
            .cloned()
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(ch) => out.push(ch),
                    None => return Err("unterminated single quote"),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(e @ ('"' | '\\' | '$' | '`')) => out.push(e),
                        Some(e) => {
                            out.push('\\');
                            out.push(e);
                        }
                        None => return Err("unterminated double quote"),
                    },
                    Some('$') => expand(&mut chars, &mut out, &lookup)?,
                    Some('`') => return Err("command substitution needs a shell"),
                    Some(ch) => out.push(ch),
                    None => return Err("unterminated double quote"),
                }
            },
            '\\' => match chars.next() {
                Some(e) => out.push(e),
                None => return Err("a trailing backslash continues the line, which needs a shell"),
            },
            '$' => expand(&mut chars, &mut out, &lookup)?,
            '`' => return Err("command substitution needs a shell"),
            c if c.is_whitespace() => {
                let tail: String = chars.collect();
                if tail.trim().is_empty() || tail.trim_start().starts_with('#') {
                    break;
                }
                return Err("more than one word after `=`: quote the value");
            }
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err("shell syntax other than an assignment")
            }
            c => out.push(c),
        }
    }
    Ok(Some((name.to_string(), out)))
}

/// Expands `$NAME` or `${NAME}` after a `$`.
fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    lookup: &dyn Fn(&str) -> String,
) -> Result<(), &'static str> {
    match chars.peek() {
        Some('(') => Err("command substitution needs a shell"),
        Some('{') => {
            chars.next();
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                    _ => return Err("only `${NAME}` expansions are supported"),
                }
            }
            out.push_str(&lookup(&name));
            Ok(())
        }
        Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push_str(&lookup(&name));
            Ok(())
        }
        _ => {
            out.push('$');
            Ok(())
        }
    }
}

/// A file that exists and is not empty (helm passed only those as values files).
pub(super) fn non_empty_file(path: &Path) -> bool {
    crate::discover::record::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// A problem about a deployment's setting, pointing at its tool config by name.
pub(super) fn setting_problem(code: &'static str, message: String, help: String) -> Vec<Problem> {
    vec![Problem::new(code, message).help(help)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, String>, Vec<Problem>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ENV_FILE"), text).unwrap();
        let env: BTreeMap<String, String> = [("HOME".to_string(), "/home/me".to_string())].into();
        read_env_file(dir.path(), "env/terraform", &env)
    }

    #[test]
    fn env_file_assignments_quotes_and_expansion() {
        let vars = parse(
            "# comment\n\nexport A=plain\nB='lit $A'\nexport C=\"q $A ${HOME}/x \\\"y\\\"\"\nD=$A-$MISSING.z # trailing\nexport A\nE=\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "plain");
        assert_eq!(vars["B"], "lit $A");
        assert_eq!(vars["C"], "q plain /home/me/x \"y\"");
        assert_eq!(vars["D"], "plain-.z");
        assert_eq!(vars["E"], "");
        assert_eq!(vars.len(), 5);
    }

    #[test]
    fn env_file_rejects_what_needs_a_shell_with_its_line() {
        let errs = parse("A=1\nexport B=$(date)\nsource other\nC=a b\n").unwrap_err();
        assert_eq!(errs.len(), 3);
        assert!(
            errs[0].message.contains("command substitution"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].location().unwrap(), "env/terraform/ENV_FILE:2");
        assert!(errs[2].message.contains("quote the value"));
    }

    #[test]
    fn missing_env_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_env_file(dir.path(), "x", &BTreeMap::new())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_env_file_that_is_a_fifo_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &dir.path().join("ENV_FILE"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let errs = read_env_file(dir.path(), "x", &BTreeMap::new()).unwrap_err();
        assert!(
            errs[0].message.contains("x/ENV_FILE"),
            "{:?}",
            errs[0].message
        );
    }
}
