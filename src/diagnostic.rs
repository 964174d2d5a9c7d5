//! Configuration mistakes as values: each one names its file, points at the YAML, and says how
//! to fix it. A run collects all of them ([`Diagnostics`]) before refusing to start, so a user
//! fixes a repo in one pass rather than one error per run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::yaml::Span;

/// A file that was read, kept whole so a diagnostic can show the lines around a mistake.
#[derive(Debug)]
pub struct SourceFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Path as shown to the user (relative to the ops repo where possible).
    pub name: String,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: PathBuf, name: String, text: String) -> Arc<Self> {
        Arc::new(SourceFile { path, name, text })
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
}

/// A place in a source file.
#[derive(Clone, Debug)]
pub struct Loc {
    pub file: Arc<SourceFile>,
    pub span: Span,
}

impl Loc {
    pub fn new(file: &Arc<SourceFile>, span: Span) -> Self {
        Loc {
            file: Arc::clone(file),
            span,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.file.name,
            self.file.line_of(self.span.offset)
        )
    }
}

/// A value read from a config file, with where it was written.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Spanned<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Spanned { value, loc }
    }
}

/// How bad a problem is. A warning is printed and the command goes on; `--strict` turns every
/// warning into an error (a CI pipeline that wants a clean repo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

/// One problem with the user's input.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Stable code such as `bitops::config::unknown_key`.
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub loc: Option<Loc>,
    /// Text of the label under the offending YAML.
    pub label: String,
    pub help: Option<String>,
    /// A file that is the subject without a precise span (a missing folder's parent config).
    pub path: Option<PathBuf>,
}

impl Problem {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            severity: Severity::Error,
            message: message.into(),
            loc: None,
            label: String::new(),
            help: None,
            path: None,
        }
    }

    pub fn at(mut self, loc: &Loc, label: impl Into<String>) -> Self {
        self.loc = Some(loc.clone());
        self.label = label.into();
        self
    }

    pub fn at_opt(self, loc: Option<&Loc>, label: impl Into<String>) -> Self {
        match loc {
            Some(l) => self.at(l, label),
            None => self,
        }
    }

    /// Makes this a warning: reported, but the command goes on (unless `--strict`).
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn path(mut self, path: &Path) -> Self {
        self.path = Some(path.to_path_buf());
        self
    }

    /// `file:line` or the path, for one-line renderings (plain output, JSON).
    pub fn location(&self) -> Option<String> {
        match (&self.loc, &self.path) {
            (Some(loc), _) => Some(loc.to_string()),
            (None, Some(p)) => Some(p.display().to_string()),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(l) => write!(f, "{l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Problem {}

/// The rendered form of a [`Problem`]: miette needs an owned source to show the YAML around it.
#[derive(Debug)]
struct Rendered {
    problem: Problem,
    source: Option<NamedSource<String>>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)?;
        if let (None, Some(p)) = (&self.problem.loc, &self.problem.path) {
            write!(f, " ({})", p.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Rendered {}

impl Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let loc = self.problem.loc.as_ref()?;
        let label = (!self.problem.label.is_empty()).then(|| self.problem.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            label, loc.span,
        ))))
    }
}

/// Every problem found in a repo, reported together.
#[derive(Debug, Default)]
pub struct Diagnostics {
    problems: Vec<Problem>,
}

impl Diagnostics {
    pub fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.problems.extend(other.problems);
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn len(&self) -> usize {
        self.problems.len()
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Sorts by file and position so output is the same whatever thread found what.
    pub fn sort(&mut self) {
        self.problems.sort_by(|a, b| {
            let key = |p: &Problem| {
                (
                    p.loc
                        .as_ref()
                        .map(|l| l.file.name.clone())
                        .or_else(|| p.path.as_ref().map(|x| x.display().to_string())),
                    p.loc.as_ref().map(|l| l.span.offset),
                    p.message.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        self.problems
            .dedup_by(|a, b| a.to_string() == b.to_string());
    }

    /// Whether any problem is an error (warnings alone let a command go on).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| !p.is_warning())
    }

    /// The warnings to print before going on: taken out when there are no errors. With errors
    /// they stay in, to be reported with them; with `strict` they are errors themselves.
    pub fn take_warnings(&mut self, strict: bool) -> Vec<Problem> {
        if self.has_errors() && !strict {
            return Vec::new();
        }
        self.split_warnings(strict)
    }

    fn split_warnings(&mut self, strict: bool) -> Vec<Problem> {
        if strict {
            for p in &mut self.problems {
                if p.is_warning() {
                    p.severity = Severity::Error;
                    p.help = Some(match p.help.take() {
                        Some(h) => format!("{h}\n(an error because of --strict)"),
                        None => "(an error because of --strict)".into(),
                    });
                }
            }
            return Vec::new();
        }
        let (warnings, errors) = std::mem::take(&mut self.problems)
            .into_iter()
            .partition(Problem::is_warning);
        self.problems = errors;
        let mut w = Diagnostics { problems: warnings };
        w.sort();
        w.problems
    }

    /// Turns the collection into `Err` if it holds an error; warnings are reported with the
    /// errors then (alone they are no reason to stop: see [`Diagnostics::take_warnings`]).
    pub fn into_result(mut self) -> Result<(), ConfigErrors> {
        if !self.has_errors() {
            Ok(())
        } else {
            self.sort();
            Err(ConfigErrors {
                problems: self.problems,
            })
        }
    }
}

/// The error a run stops with when its input is wrong (exit code 2).
#[derive(Debug)]
pub struct ConfigErrors {
    pub problems: Vec<Problem>,
}

impl ConfigErrors {
    pub fn single(p: Problem) -> Self {
        ConfigErrors { problems: vec![p] }
    }

    /// One miette report per problem, each with its own source snippet.
    pub fn reports(&self) -> Vec<miette::Report> {
        self.problems
            .iter()
            .map(|p| {
                let source = p.loc.as_ref().map(|l| {
                    NamedSource::new(l.file.name.clone(), l.file.text.clone()).with_language("yaml")
                });
                miette::Report::new(Rendered {
                    problem: p.clone(),
                    source,
                })
            })
            .collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.iter().filter(|p| !p.is_warning()).count();
        write!(
            f,
            "{n} configuration error{}",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

/// The closest candidate to `wanted`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wanted, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(
            did_you_mean("fail_fsat", ["fail_fast", "jobs"]),
            Some("fail_fast")
        );
        assert_eq!(did_you_mean("zzz", ["fail_fast", "jobs"]), None);
    }

    #[test]
    fn line_numbers_are_one_based() {
        let f = SourceFile::new("/x".into(), "x".into(), "a\nb\nc".into());
        assert_eq!(f.line_of(0), 1);
        assert_eq!(f.line_of(2), 2);
        assert_eq!(f.line_of(4), 3);
    }
}
