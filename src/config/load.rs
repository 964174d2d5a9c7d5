//! Reads one config file: text, YAML tree, and a diagnostic for either failing.

use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::{Diagnostics, Loc, Problem, SourceFile};
use crate::yaml::{self, Node};

/// The file name BitOps uses at every level.
pub const CONFIG_FILE: &str = "bitops.config.yaml";

/// A parsed file: its source (for diagnostics) and its root node (`None` when empty).
pub struct Loaded {
    pub file: Arc<SourceFile>,
    pub root: Option<Node>,
}

/// Reads and parses `path`; `display` is the name shown to the user. Returns `None` when the
/// file does not exist, and records a problem (returning `None`) when it cannot be read or parsed.
pub fn load_file(path: &Path, display: String, diags: &mut Diagnostics) -> Option<Loaded> {
    // Never `std::fs::read`: a FIFO named like a config would block bitops in `open` forever.
    let bytes = match crate::discover::files::read_regular(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            diags.push(
                Problem::new(
                    "bitops::config::unreadable",
                    format!("cannot read `{display}`: {e}"),
                )
                .path(path)
                .help("check the file's permissions"),
            );
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let file = SourceFile::new(path.to_path_buf(), display.clone(), text);
            let span = yaml::Span {
                offset: valid.min(file.text.len()),
                len: 1,
            };
            diags.push(
                Problem::new(
                    "bitops::config::encoding",
                    format!("`{display}` is not UTF-8 text"),
                )
                .at(&Loc::new(&file, span), "invalid byte here")
                .help("save the file as UTF-8"),
            );
            return None;
        }
    };
    let file = SourceFile::new(path.to_path_buf(), display.clone(), text);
    match yaml::parse_with_duplicates_memo(&file.text) {
        Ok((root, duplicates)) => {
            // PyYAML kept the last value silently; which one was meant is the user's call.
            for d in duplicates {
                let first = file.line_of(d.first.offset);
                diags.push(
                    Problem::new(
                        "bitops::config::duplicate_key",
                        format!("`{}` is written twice in `{display}`", d.key),
                    )
                    .at(
                        &Loc::new(&file, d.again),
                        format!("again here (first on line {first})"),
                    )
                    .help("remove one of them: only the last would count"),
                );
            }
            Some(Loaded { file, root })
        }
        Err(e) if e.limit => {
            diags.push(
                Problem::new(
                    "bitops::config::limit",
                    format!("`{display}` is over bitops' YAML limits"),
                )
                .at(&Loc::new(&file, e.span), e.message)
                .help("flatten the structure or use fewer aliases (docs/guarantees.md lists the limits)"),
            );
            None
        }
        Err(e) => {
            diags.push(
                Problem::new(
                    "bitops::config::syntax",
                    format!("`{display}` is not valid YAML"),
                )
                .at(&Loc::new(&file, e.span), e.message)
                .help("fix the YAML syntax here (indentation, an unclosed bracket or quote)"),
            );
            None
        }
    }
}
