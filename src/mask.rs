//! `logging.masks`: BitOps v2 wrote them in Python `re` syntax and applied them with `re.sub`
//! semantics (reference §7.3); [`Mask::new`] accepts exactly that and rejects, like Python,
//! what Python would reject. Config compiles each mask once (a mask that cannot be built is a
//! diagnostic, never a silently dropped mask); logs, terminal output, plans and reports apply them.

use std::borrow::Cow;

use regex::{Captures, Regex, Replacer};

/// One `logging.masks` entry: `{search: <Python regex>, replace: <Python replacement>}`.
#[derive(Clone, Debug)]
pub struct Mask {
    search_source: String,
    replace_source: String,
    search: Regex,
    replace: Vec<Piece>,
}

/// A parsed `re.sub` replacement, resolved against its regex once so that applying a mask to a
/// line never has to interpret escapes or look up group names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
}

impl Mask {
    /// Compiles one mask. Errors carry Python's wording where Python would also fail (a bad
    /// escape, a reference to a group the pattern does not have), so a user sees the same
    /// complaint BitOps would have made.
    pub fn new(search: &str, replace: &str) -> Result<Mask, regex::Error> {
        let regex = Regex::new(&translate_pattern(search))?;
        let pieces = parse_replacement(replace, &regex)?;
        Ok(Mask {
            search_source: search.to_owned(),
            replace_source: replace.to_owned(),
            search: regex,
            replace: pieces,
        })
    }

    /// The pattern as the user wrote it.
    pub fn search(&self) -> &str {
        &self.search_source
    }

    /// The replacement as the user wrote it.
    pub fn replace(&self) -> &str {
        &self.replace_source
    }

    /// `re.sub(search, replace, line)`.
    pub fn apply<'a>(&self, line: &'a str) -> Cow<'a, str> {
        self.search.replace_all(line, Expander(&self.replace))
    }
}

/// Applies every mask in order, each to the previous one's result, as BitOps does.
pub fn apply_masks(masks: &[Mask], line: &str) -> String {
    let mut current = Cow::Borrowed(line);
    for mask in masks {
        if let Cow::Owned(replaced) = mask.apply(&current) {
            current = Cow::Owned(replaced);
        }
    }
    current.into_owned()
}

/// The masks of every environment of the current run: what [`scrub`] applies.
static GLOBAL: std::sync::RwLock<Vec<Mask>> = std::sync::RwLock::new(Vec::new());

/// Sets the masks [`scrub`] applies (all environments' masks, in order, duplicates dropped).
pub fn set_global(masks: Vec<Mask>) {
    let mut unique: Vec<Mask> = Vec::with_capacity(masks.len());
    for m in masks {
        if !unique
            .iter()
            .any(|u| u.search_source == m.search_source && u.replace_source == m.replace_source)
        {
            unique.push(m);
        }
    }
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = unique;
}

/// The choke point for every string bitops produces itself and then prints or saves (failure
/// reasons with their command lines, output keys and values, retry reasons): every mask of the
/// run applied. Process output is masked where it is read (`LogSink`, with its environment's
/// masks) and does not pass here again, so a mask is never applied twice to the same text.
pub fn scrub(text: &str) -> String {
    let masks = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    apply_masks(&masks, text)
}

struct Expander<'a>(&'a [Piece]);

impl Replacer for Expander<'_> {
    fn replace_append(&mut self, caps: &Captures<'_>, dst: &mut String) {
        for piece in self.0 {
            match piece {
                Piece::Literal(text) => dst.push_str(text),
                // Python 3.5+ substitutes an empty string for a group that did not participate.
                Piece::Group(index) => dst.push_str(caps.get(*index).map_or("", |m| m.as_str())),
            }
        }
    }

    fn no_expansion(&mut self) -> Option<Cow<'_, str>> {
        match self.0 {
            [] => Some(Cow::Borrowed("")),
            [Piece::Literal(text)] => Some(Cow::Borrowed(text)),
            _ => None,
        }
    }
}

/// Rewrites the Python-only spellings the regex crate would misread. Python's `\Z` (end of
/// string) is the regex crate's `\z`; the regex crate has no `\Z` at all. Everything else that
/// Python masks use in practice has the same meaning in both, and what has none (lookaround,
/// backreferences) is reported by the regex crate as a syntax error.
fn translate_pattern(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("\\Z") {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push('z'),
                Some(other) => out.push(other),
                None => {}
            }
        }
    }
    Cow::Owned(out)
}

fn syntax_error(message: String) -> regex::Error {
    regex::Error::Syntax(message)
}

/// Parses a replacement the way Python's `re._parser.parse_template` does.
fn parse_replacement(replace: &str, regex: &Regex) -> Result<Vec<Piece>, regex::Error> {
    let group_count = regex.captures_len();
    let check_group = |index: usize| {
        if index < group_count {
            Ok(Piece::Group(index))
        } else {
            Err(syntax_error(format!(
                "invalid group reference {index} in mask replacement {replace:?}"
            )))
        }
    };

    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = replace.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            literal.push(c);
            continue;
        }
        let Some(escape) = chars.next() else {
            return Err(syntax_error(format!(
                "bad escape (end of pattern) in mask replacement {replace:?}"
            )));
        };
        let group = match escape {
            'g' => {
                if chars.next() != Some('<') {
                    return Err(syntax_error(format!(
                        "missing < after \\g in mask replacement {replace:?}"
                    )));
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(ch) => name.push(ch),
                        None => {
                            return Err(syntax_error(format!(
                                "missing >, unterminated name in mask replacement {replace:?}"
                            )))
                        }
                    }
                }
                if name.is_empty() {
                    return Err(syntax_error(format!(
                        "missing group name in mask replacement {replace:?}"
                    )));
                }
                if name.bytes().all(|b| b.is_ascii_digit()) {
                    // All digits, so it only fails to parse when it overflows, which is just as
                    // much an invalid reference.
                    check_group(name.parse().unwrap_or(usize::MAX))?
                } else {
                    let index = regex
                        .capture_names()
                        .position(|n| n == Some(name.as_str()))
                        .ok_or_else(|| {
                            syntax_error(format!(
                                "unknown group name {name:?} in mask replacement {replace:?}"
                            ))
                        })?;
                    Piece::Group(index)
                }
            }
            '0' => {
                // `\0` starts an octal escape of at most three digits, never a group reference.
                let mut value = 0u32;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                literal.push(char::from(value as u8));
                continue;
            }
            '1'..='9' => {
                let first = escape.to_digit(10).unwrap_or_default();
                let Some(second) = chars.peek().and_then(|d| d.to_digit(10)) else {
                    pieces.extend(take_literal(&mut literal));
                    pieces.push(check_group(first as usize)?);
                    continue;
                };
                chars.next();
                // Three octal digits are a character, two digits a group number.
                let third = chars.peek().and_then(|d| d.to_digit(8));
                match third {
                    Some(third) if first < 8 && second < 8 => {
                        chars.next();
                        let value = first * 64 + second * 8 + third;
                        let ch = u8::try_from(value).map(char::from).map_err(|_| {
                            syntax_error(format!(
                                "octal escape value \\{first}{second}{third} outside of range \
                                 0-0o377 in mask replacement {replace:?}"
                            ))
                        })?;
                        literal.push(ch);
                        continue;
                    }
                    _ => check_group((first * 10 + second) as usize)?,
                }
            }
            'a' => {
                literal.push('\x07');
                continue;
            }
            'b' => {
                literal.push('\x08');
                continue;
            }
            'f' => {
                literal.push('\x0c');
                continue;
            }
            'n' => {
                literal.push('\n');
                continue;
            }
            'r' => {
                literal.push('\r');
                continue;
            }
            't' => {
                literal.push('\t');
                continue;
            }
            'v' => {
                literal.push('\x0b');
                continue;
            }
            '\\' => {
                literal.push('\\');
                continue;
            }
            letter if letter.is_ascii_alphabetic() => {
                return Err(syntax_error(format!(
                    "bad escape \\{letter} in mask replacement {replace:?}"
                )));
            }
            // Python keeps other unknown escapes, such as `\&`, as they are.
            other => {
                literal.push('\\');
                literal.push(other);
                continue;
            }
        };
        pieces.extend(take_literal(&mut literal));
        pieces.push(group);
    }
    pieces.extend(take_literal(&mut literal));
    Ok(pieces)
}

fn take_literal(literal: &mut String) -> Option<Piece> {
    (!literal.is_empty()).then(|| Piece::Literal(std::mem::take(literal)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_backreferences_are_expanded() {
        let mask = Mask::new(r"(key=)(\w+)", r"\1***").unwrap();
        assert_eq!(mask.apply("a key=abc b key=d"), "a key=*** b key=***");
        let mask = Mask::new(r"(?P<k>AKIA)[A-Z0-9]{4}", r"\g<k>\g<0>\g<1>").unwrap();
        assert_eq!(mask.apply("id AKIAABCD."), "id AKIAAKIAABCDAKIA.");
        let mask = Mask::new(r"(a)(b)?", r"[\2]").unwrap();
        assert_eq!(mask.apply("ac"), "[]c");
    }

    #[test]
    fn python_literals_in_replacements() {
        // `$` is literal in Python and must not become a regex-crate group reference.
        assert_eq!(Mask::new("x", "$1 $$").unwrap().apply("x"), "$1 $$");
        assert_eq!(Mask::new("x", r"a\\b").unwrap().apply("x"), r"a\b");
        assert_eq!(Mask::new("x", r"\t\&").unwrap().apply("x"), "\t\\&");
        assert_eq!(Mask::new("x", r"\0101\101").unwrap().apply("x"), "\u{8}1A");
        // `\12` is group 12, not octal: this pattern has only one group.
        assert!(Mask::new("(x)", r"\12").is_err());
        assert!(Mask::new("(x)", r"\2").is_err());
        assert!(Mask::new("(x)", r"\g<nope>").is_err());
        assert!(Mask::new("(x)", r"\q").is_err());
        assert!(Mask::new("(x)", "\\").is_err());
        assert!(Mask::new("(x", "y").is_err());
    }

    #[test]
    fn python_end_of_string_anchor() {
        let mask = Mask::new(r"secret\Z", "***").unwrap();
        assert_eq!(mask.apply("secret secret"), "secret ***");
        let mask = Mask::new(r"\\Z", "!").unwrap();
        assert_eq!(mask.apply(r"a\Z"), "a!");
    }

    #[test]
    fn scrub_applies_every_environments_masks_once() {
        set_global(vec![
            Mask::new("(pw=)\\w+", "\\1***").unwrap(),
            Mask::new("(pw=)\\w+", "\\1***").unwrap(),
            Mask::new("tok", "[t]").unwrap(),
        ]);
        assert_eq!(scrub("x pw=abc tok"), "x pw=*** [t]");
        set_global(Vec::new());
        assert_eq!(scrub("pw=abc"), "pw=abc");
    }

    #[test]
    fn masks_apply_in_order() {
        let masks = [
            Mask::new("password=\\S+", "password=XXX").unwrap(),
            Mask::new("X+", "#").unwrap(),
        ];
        assert_eq!(
            apply_masks(&masks, "user password=hunter2"),
            "user password=#"
        );
        assert_eq!(apply_masks(&[], "plain"), "plain");
    }
}
