//! Names from an ops repo that become paths, variable names or arguments.
//!
//! A repo arrives through pull requests, so a plugin, environment, deployment, pool, run id or
//! output key is hostile input until checked here. All of them share one allowed character set,
//! and every path built from one is checked to stay inside the folder it was meant for before
//! anything is created or removed (`plugins install` once deleted any folder a repo named).

use std::path::{Component, Path, PathBuf};

/// Longest name accepted: far above any real one, well below file-name limits (255 bytes).
pub const MAX_NAME_LEN: usize = 100;

/// What a name is, for messages ("plugin name", "output key" …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plugin,
    Environment,
    Deployment,
    Pool,
    RunId,
    OutputKey,
    /// A declared input of a deployment (`inputs: {api_url: …}`).
    Input,
    /// A folder of the repo named in config (`default_folder`).
    Folder,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Plugin => "plugin name",
            Kind::Environment => "environment name",
            Kind::Deployment => "deployment name",
            Kind::Pool => "pool name",
            Kind::RunId => "run id",
            Kind::OutputKey => "output key",
            Kind::Input => "input name",
            Kind::Folder => "folder name",
        }
    }
}

/// The allowed character set, as shown in messages.
pub const ALLOWED: &str =
    "letters, digits, `_`, `-` and `.`, starting with a letter, digit or `_`, at most 100 characters";

/// Checks a name against the one allowed set: ASCII letters, digits, `_`, `-`, `.`; the first
/// character is a letter, digit or `_` (so never `.`, `..`, a hidden file or an option `-x`).
/// The error says what is wrong, for a diagnostic's label.
pub fn check(kind: Kind, name: &str) -> Result<(), String> {
    let noun = kind.noun();
    if name.is_empty() {
        return Err(format!("an empty {noun}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a {noun} of {} characters (at most {MAX_NAME_LEN})",
            name.len()
        ));
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return Err(format!(
            "a {noun} may not start with {:?}",
            name.chars().next().unwrap_or(' ')
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!("a {noun} may not contain {c:?}"));
    }
    Ok(())
}

/// `base/name` for a name that passed [`check`], or an error when it would not stay directly
/// inside `base` (checked lexically: nothing is created to find out).
pub fn child(base: &Path, kind: Kind, name: &str) -> Result<PathBuf, String> {
    check(kind, name)?;
    let path = base.join(name);
    inside(base, &path)?;
    Ok(path)
}

/// Fails unless `path` lies below `base`, judged on the path's components (no `..`, no root,
/// and `base` as a prefix). A second line of defence behind [`check`].
pub fn inside(base: &Path, path: &Path) -> Result<(), String> {
    let rest = path
        .strip_prefix(base)
        .map_err(|_| format!("{} is outside {}", path.display(), base.display()))?;
    if rest.as_os_str().is_empty() {
        return Err(format!("{} is the folder itself", path.display()));
    }
    if rest.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(())
    } else {
        Err(format!("{} leaves {}", path.display(), base.display()))
    }
}

/// The variable-name form of a name (`db-url` → `DB_URL`), as BitOps upper-cased names.
pub fn var_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_set_passes() {
        for ok in [
            "terraform",
            "backend-test",
            "v1.2",
            "_x",
            "A_b-c.d",
            "9lives",
        ] {
            assert_eq!(check(Kind::Plugin, ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../../victim",
            "/srv/keep-me",
            ".hidden",
            "-rf",
            "a/b",
            "a b",
            "é",
            "a\nb",
            "a\0b",
            "$(x)",
        ] {
            assert!(check(Kind::Plugin, bad).is_err(), "{bad:?} passed");
        }
        assert!(check(Kind::Pool, &"a".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn derived_paths_stay_inside() {
        let base = Path::new("/state/plugins");
        assert_eq!(
            child(base, Kind::Plugin, "x").unwrap(),
            Path::new("/state/plugins/x")
        );
        assert!(child(base, Kind::Plugin, "/srv/keep-me").is_err());
        assert!(inside(base, Path::new("/state/plugins/../x")).is_err());
        assert!(inside(base, Path::new("/srv")).is_err());
        assert!(inside(base, base).is_err());
    }
}
