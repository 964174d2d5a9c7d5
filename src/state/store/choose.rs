//! Which state store a run uses: `--state URL` > `BITOPS_STATE` > `bitops.state` in the
//! repo-level `bitops.config.yaml` > the embedded local folder.

use std::path::PathBuf;

use crate::config::settings::EnvVars;
use crate::diagnostic::{Problem, Spanned};

/// A parsed state URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    Folder {
        path: PathBuf,
        text: String,
    },
    S3 {
        bucket: String,
        prefix: String,
        text: String,
    },
    Azure {
        container: String,
        prefix: String,
        text: String,
    },
}

impl StoreUrl {
    pub fn text(&self) -> &str {
        match self {
            StoreUrl::Folder { text, .. }
            | StoreUrl::S3 { text, .. }
            | StoreUrl::Azure { text, .. } => text,
        }
    }
}

const HELP: &str =
    "a state URL is s3://bucket/prefix, az://container/prefix or file:///absolute/path";

/// Parses `s3://bucket/prefix`, `az://container/prefix`, `file:///path`.
pub fn parse(text: &str) -> Result<StoreUrl, String> {
    let t = text.trim();
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err(format!("`{t}` is not a state URL; {HELP}"));
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = path.trim_matches('/').to_string();
    if prefix.split('/').any(|p| p == "." || p == "..") {
        return Err(format!("`{t}`: `.` and `..` are not allowed in the prefix"));
    }
    let text = t.to_string();
    match scheme {
        "file" => {
            if !host.is_empty() && host != "localhost" {
                return Err(format!(
                    "`{t}`: a file URL names a local absolute path (file:///path), not a host"
                ));
            }
            if prefix.is_empty() {
                return Err(format!("`{t}`: give the folder (file:///path/to/state)"));
            }
            Ok(StoreUrl::Folder {
                path: PathBuf::from(format!("/{prefix}")),
                text,
            })
        }
        "s3" | "s3a" => {
            if host.is_empty() {
                return Err(format!("`{t}`: the bucket is missing (s3://bucket/prefix)"));
            }
            Ok(StoreUrl::S3 {
                bucket: host.to_string(),
                prefix,
                text,
            })
        }
        "az" | "azure" | "abfs" => {
            if host.is_empty() {
                return Err(format!(
                    "`{t}`: the container is missing (az://container/prefix)"
                ));
            }
            Ok(StoreUrl::Azure {
                container: host.to_string(),
                prefix,
                text,
            })
        }
        "gs" => Err(format!(
            "`{t}`: Google Cloud Storage is not built into this bitops (only s3://, az:// and file://)"
        )),
        "http" | "https" => Err(format!(
            "`{t}`: name the store by its scheme; an endpoint goes in the cloud's own variable (AWS_ENDPOINT_URL, AZURE_STORAGE_ENDPOINT); {HELP}"
        )),
        other => Err(format!("`{t}`: unknown scheme `{other}`; {HELP}")),
    }
}

/// Where the choice came from, for `plan` and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    Config,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--state",
            Origin::Env => "BITOPS_STATE",
            Origin::Config => "bitops.state",
        })
    }
}

/// The chosen URL, or `None` for the embedded folder. A bad URL is a diagnostic (pointing at
/// the config line when it came from there).
pub fn choose(
    flag: Option<&str>,
    env: &EnvVars,
    config: Option<&Spanned<String>>,
) -> Result<Option<(StoreUrl, Origin)>, Problem> {
    let (text, origin) = if let Some(f) = flag {
        (f.to_string(), Origin::Flag)
    } else if let Some(e) = env.get("BITOPS_STATE").filter(|v| !v.trim().is_empty()) {
        (e.to_string(), Origin::Env)
    } else if let Some(c) = config {
        (c.value.clone(), Origin::Config)
    } else {
        return Ok(None);
    };
    match parse(&text) {
        Ok(u) => Ok(Some((u, origin))),
        Err(msg) => {
            let p = Problem::new("bitops::state::url", format!("{origin}: {msg}")).help(HELP);
            Err(match (&origin, config) {
                (Origin::Config, Some(c)) => p.at(&c.loc, "this state URL"),
                _ => p,
            })
        }
    }
}

/// The state of a command: the local folder, and the shared store when one is chosen. A URL
/// that is wrong, or a store that cannot be configured from the environment, is a problem.
pub fn resolve(
    flag: Option<&str>,
    env: &EnvVars,
    config: Option<&Spanned<String>>,
    dir: PathBuf,
) -> Result<(super::State, Option<Origin>), Problem> {
    match choose(flag, env, config)? {
        None => Ok((super::State::embedded(dir), None)),
        Some((url, origin)) => {
            let store = super::open(&url, env).map_err(|e| {
                Problem::new(
                    "bitops::state::open",
                    format!("{origin}: cannot use the state store {}: {e}", url.text()),
                )
                .help(
                    "credentials and endpoints come from the cloud's own variables (docs/state.md)",
                )
            })?;
            Ok((super::State::shared(dir, store), Some(origin)))
        }
    }
}

/// [`resolve`] for a loaded repo: problems are recorded (a `state` key at environment level
/// too: the store is one for the whole repo).
pub fn resolve_for_repo(
    flag: Option<&str>,
    env: &EnvVars,
    repo: &crate::model::Repo,
    dir: PathBuf,
    diags: &mut crate::diagnostic::Diagnostics,
) -> (super::State, Option<Origin>) {
    for e in &repo.environments {
        if let Some(s) = &e.config.state {
            diags.push(
                Problem::new(
                    "bitops::state::env_level",
                    format!("`bitops.state` in environment `{}`: the state store is set for the whole repo", e.name),
                )
                .at(&s.loc, "only in the repo-level bitops.config.yaml")
                .help("move it to the bitops.config.yaml at the root of the ops repo"),
            );
        }
    }
    match resolve(flag, env, repo.config.state.as_ref(), dir.clone()) {
        Ok(r) => r,
        Err(p) => {
            diags.push(p);
            (super::State::embedded(dir), None)
        }
    }
}

/// `bitops.state` from the repo-level config, for commands that do not load the whole repo
/// (`report`, `state`, `deploy --resume`).
pub fn from_repo_config(root: &std::path::Path) -> Result<Option<Spanned<String>>, Problem> {
    let mut diags = crate::diagnostic::Diagnostics::default();
    let file = crate::config::load::CONFIG_FILE;
    let Some(loaded) =
        crate::config::load::load_file(&root.join(file), file.to_string(), &mut diags)
    else {
        return match diags.problems().first() {
            Some(p) => Err(p.clone()),
            None => Ok(None),
        };
    };
    let section =
        crate::config::section::read_file_section(&loaded.file, loaded.root.as_ref(), &mut diags);
    Ok(section.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse("s3://b/team/ops/").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "team/ops".into(),
                text: "s3://b/team/ops/".into()
            }
        );
        assert_eq!(
            parse("az://c").unwrap(),
            StoreUrl::Azure {
                container: "c".into(),
                prefix: String::new(),
                text: "az://c".into()
            }
        );
        assert!(
            matches!(parse("file:///tmp/x").unwrap(), StoreUrl::Folder { path, .. } if path == std::path::Path::new("/tmp/x"))
        );
        for bad in [
            "bucket/x",
            "s3:///x",
            "file://host/x",
            "file:///",
            "gs://b/p",
            "http://127.0.0.1:9000/b",
            "s3://b/../x",
            "ftp://x/y",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flag_beats_env_beats_config() {
        let env = EnvVars(
            [("BITOPS_STATE".to_string(), "s3://env/p".to_string())]
                .into_iter()
                .collect(),
        );
        let (u, o) = choose(Some("az://flag"), &env, None).unwrap().unwrap();
        assert_eq!((u.text(), o), ("az://flag", Origin::Flag));
        let (u, o) = choose(None, &env, None).unwrap().unwrap();
        assert_eq!((u.text(), o), ("s3://env/p", Origin::Env));
        assert!(choose(None, &EnvVars::default(), None).unwrap().is_none());
        assert!(choose(Some("nope"), &env, None).is_err());
    }
}
