//! Precedence: command-line flag > environment variable > environment-level config > repo-level
//! config > built-in default, decided leaf by leaf. Each resolved value remembers where it came
//! from, so `bitops plan` can say why a setting has the value it has.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::diagnostic::{Diagnostics, Problem, Spanned};

use super::reader::{parse_bool, parse_duration};
use super::section::{BitopsSection, MaskSpec};

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    EnvVar(&'static str),
    /// `file:line` of the config that set it.
    Config(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "flag {n}"),
            Origin::EnvVar(n) => write!(f, "env {n}"),
            Origin::Config(at) => write!(f, "{at}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// Values given on the command line (`None`: not given).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub jobs: Option<usize>,
    /// `--keep-going` is `Some(false)`, `--fail-fast` is `Some(true)`.
    pub fail_fast: Option<bool>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
}

/// The process environment, passed in rather than read globally so tests can set it.
#[derive(Clone, Debug, Default)]
pub struct EnvVars(pub BTreeMap<String, String>);

impl EnvVars {
    pub fn from_process() -> Self {
        EnvVars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

pub const DEFAULT_JOBS: usize = 8;
pub const DEFAULT_FOLDER: &str = "_default";

/// Settings that hold for the whole run.
#[derive(Clone, Debug)]
pub struct RunSettings {
    pub jobs: Setting<usize>,
    pub fail_fast: Setting<bool>,
    pub pools: BTreeMap<String, usize>,
    pub default_folder: Setting<String>,
    pub run_mode: Setting<String>,
}

/// Settings that one environment may set for its own deployments.
#[derive(Clone, Debug)]
pub struct EnvSettings {
    pub timeout: Setting<Option<Duration>>,
    pub retries: Setting<u32>,
    pub masks: Vec<MaskSpec>,
    pub protected: bool,
}

fn from_config<T: Clone>(s: &Option<Spanned<T>>) -> Option<Setting<T>> {
    s.as_ref().map(|v| Setting {
        value: v.value.clone(),
        origin: Origin::Config(v.loc.to_string()),
    })
}

/// Like [`from_config`], converting the value (`u64` counts to `usize`, durations to
/// `Option<Duration>`).
fn from_config_as<T: Clone, U>(s: &Option<Spanned<T>>, f: impl Fn(T) -> U) -> Option<Setting<U>> {
    from_config(s).map(|x| Setting {
        value: f(x.value),
        origin: x.origin,
    })
}

fn env_value<T>(
    env: &EnvVars,
    name: &'static str,
    parse: impl Fn(&str) -> Option<T>,
    want: &str,
    diags: &mut Diagnostics,
) -> Option<Setting<T>> {
    let raw = env.get(name)?;
    match parse(raw) {
        Some(value) => Some(Setting {
            value,
            origin: Origin::EnvVar(name),
        }),
        None => {
            diags.push(
                Problem::new(
                    "bitops::env::value",
                    format!("environment variable {name}={raw:?} is not {want}"),
                )
                .help(format!("set {name} to {want}, or unset it")),
            );
            None
        }
    }
}

fn first<T>(layers: impl IntoIterator<Item = Option<Setting<T>>>, default: T) -> Setting<T> {
    layers.into_iter().flatten().next().unwrap_or(Setting {
        value: default,
        origin: Origin::Default,
    })
}

/// Run-wide settings. An environment's own config takes part only when it is the single
/// environment of the run: a BitOps run always had exactly one, and its config ruled it.
pub fn run_settings(
    flags: &Flags,
    env: &EnvVars,
    repo: &BitopsSection,
    selected_envs: &[&BitopsSection],
    diags: &mut Diagnostics,
) -> RunSettings {
    let empty = BitopsSection::default();
    let e = match selected_envs {
        [only] => *only,
        _ => &empty,
    };
    let jobs = first(
        [
            flags.jobs.map(|v| Setting {
                value: v,
                origin: Origin::Flag("--jobs"),
            }),
            env_value(
                env,
                "BITOPS_JOBS",
                |s| s.trim().parse().ok().filter(|n| *n > 0),
                "a positive number",
                diags,
            ),
            from_config_as(&e.jobs, |v| v as usize),
            from_config_as(&repo.jobs, |v| v as usize),
        ],
        DEFAULT_JOBS,
    );
    let fail_fast = first(
        [
            flags.fail_fast.map(|v| Setting {
                value: v,
                origin: Origin::Flag("--keep-going"),
            }),
            env_value(
                env,
                "BITOPS_FAST_FAIL",
                parse_bool,
                "a boolean (true/false)",
                diags,
            ),
            from_config(&e.fail_fast),
            from_config(&repo.fail_fast),
        ],
        true,
    );
    let default_folder = first(
        [
            env_value(
                env,
                "BITOPS_DEFAULT_FOLDER",
                |s| {
                    crate::names::check(crate::names::Kind::Folder, s)
                        .ok()
                        .map(|()| s.to_string())
                },
                "a folder name of the repo (letters, digits, `_`, `-`, `.`)",
                diags,
            ),
            from_config(&e.default_folder),
            from_config(&repo.default_folder),
        ],
        DEFAULT_FOLDER.to_string(),
    );
    let run_mode = first(
        [
            env_value(env, "BITOPS_MODE", |s| Some(s.to_string()), "a mode", diags),
            from_config(&e.run_mode),
            from_config(&repo.run_mode),
        ],
        "default".to_string(),
    );
    // A pool is one limit for the whole run, wherever it is defined: the repo's sizes, then
    // every selected environment's, the smaller size winning when two define the same pool.
    let mut pools: BTreeMap<String, usize> = BTreeMap::new();
    for (name, size) in repo.pools.iter().flatten() {
        pools.insert(name.value.clone(), size.value as usize);
    }
    for section in selected_envs.iter().copied() {
        for (name, size) in section.pools.iter().flatten() {
            let size = size.value as usize;
            pools
                .entry(name.value.clone())
                .and_modify(|s| *s = (*s).min(size))
                .or_insert(size);
        }
    }
    RunSettings {
        jobs,
        fail_fast,
        pools,
        default_folder,
        run_mode,
    }
}

/// Per-environment settings for deployments.
pub fn env_settings(
    flags: &Flags,
    env: &EnvVars,
    repo: &BitopsSection,
    own: &BitopsSection,
    diags: &mut Diagnostics,
) -> EnvSettings {
    let timeout = first(
        [
            flags.timeout.map(|v| Setting {
                value: Some(v),
                origin: Origin::Flag("--timeout"),
            }),
            env_value(
                env,
                "BITOPS_TIMEOUT",
                |s| parse_duration(s).ok().map(Some),
                "a duration such as 15m (at most 365d)",
                diags,
            ),
            from_config_as(&own.timeout, Some),
            from_config_as(&repo.timeout, Some),
        ],
        None,
    );
    let retries = first(
        [
            flags.retries.map(|v| Setting {
                value: v,
                origin: Origin::Flag("--retries"),
            }),
            env_value(
                env,
                "BITOPS_RETRIES",
                |s| {
                    s.trim()
                        .parse()
                        .ok()
                        .filter(|n: &u32| u64::from(*n) <= super::section::MAX_RETRIES)
                },
                "a whole number from 0 to 100",
                diags,
            ),
            from_config_as(&own.retries, |v| v as u32),
            from_config_as(&repo.retries, |v| v as u32),
        ],
        0,
    );
    // A list replaces the repo's list, as BitOps did for masks.
    let masks = own
        .logging
        .masks
        .clone()
        .or_else(|| repo.logging.masks.clone())
        .unwrap_or_default();
    let protected = own
        .protected
        .as_ref()
        .or(repo.protected.as_ref())
        .is_some_and(|p| p.value);
    EnvSettings {
        timeout,
        retries,
        masks,
        protected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Loc, SourceFile};
    use crate::yaml::Span;

    fn spanned<T>(v: T) -> Option<Spanned<T>> {
        let f = SourceFile::new("/r/x".into(), "x".into(), "a\n".into());
        Some(Spanned::new(v, Loc::new(&f, Span::default())))
    }

    #[test]
    fn precedence_is_flag_env_envconfig_repoconfig_default() {
        let repo = BitopsSection {
            jobs: spanned(2),
            ..Default::default()
        };
        let own = BitopsSection {
            jobs: spanned(3),
            ..Default::default()
        };
        let mut env = EnvVars::default();
        let mut d = Diagnostics::default();
        let s = |flags: &Flags, env: &EnvVars, own: Option<&BitopsSection>, d: &mut Diagnostics| {
            run_settings(flags, env, &repo, own.as_slice(), d)
                .jobs
                .value
        };
        assert_eq!(
            run_settings(
                &Flags::default(),
                &env,
                &BitopsSection::default(),
                &[],
                &mut d
            )
            .jobs
            .value,
            DEFAULT_JOBS
        );
        assert_eq!(s(&Flags::default(), &env, None, &mut d), 2);
        assert_eq!(s(&Flags::default(), &env, Some(&own), &mut d), 3);
        env.0.insert("BITOPS_JOBS".into(), "5".into());
        assert_eq!(s(&Flags::default(), &env, Some(&own), &mut d), 5);
        assert_eq!(
            s(
                &Flags {
                    jobs: Some(7),
                    ..Default::default()
                },
                &env,
                Some(&own),
                &mut d
            ),
            7
        );
        assert!(d.is_empty());
    }

    #[test]
    fn fast_fail_false_means_false() {
        let mut env = EnvVars::default();
        env.0.insert("BITOPS_FAST_FAIL".into(), "false".into());
        let mut d = Diagnostics::default();
        let s = run_settings(
            &Flags::default(),
            &env,
            &BitopsSection::default(),
            &[],
            &mut d,
        );
        assert!(!s.fail_fast.value);
        assert_eq!(s.fail_fast.origin, Origin::EnvVar("BITOPS_FAST_FAIL"));
    }

    #[test]
    fn a_config_false_beats_a_true_default() {
        let repo = BitopsSection {
            fail_fast: spanned(false),
            ..Default::default()
        };
        let mut d = Diagnostics::default();
        assert!(
            !run_settings(&Flags::default(), &EnvVars::default(), &repo, &[], &mut d)
                .fail_fast
                .value
        );
    }

    #[test]
    fn bad_env_values_are_reported() {
        let mut env = EnvVars::default();
        env.0.insert("BITOPS_JOBS".into(), "lots".into());
        let mut d = Diagnostics::default();
        let s = run_settings(
            &Flags::default(),
            &env,
            &BitopsSection::default(),
            &[],
            &mut d,
        );
        assert_eq!(s.jobs.value, DEFAULT_JOBS);
        assert_eq!(d.len(), 1);
    }
}
