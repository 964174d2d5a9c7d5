//! Declared inputs (DESIGN §2.2 item 4): `inputs: {api_url: backend-test/terraform.api_url}` on
//! a deployment entry. Each reference is resolved here, against every deployment of the repo,
//! into a [`Wire`] and a success edge from the producer (an input is a dependency).
//!
//! Every mistake is a located diagnostic, all in one run: a reference that is not
//! `<env>/<deployment>.<output>`, an unknown environment or deployment (with a did-you-mean),
//! and two names that would become the same `BITOPS_INPUT_…` variable.

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::NodeIndex;

use crate::diagnostic::{did_you_mean, Diagnostics, Loc, Problem};
use crate::model::{Deployment, Environment, Repo};
use crate::names::{check, var_name, Kind};

/// One resolved input of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Wire {
    /// The name the tool sees (`TF_VAR_<name>`, the extra-var, the helm value …).
    pub name: String,
    /// The producing deployment's id (`backend-test/terraform`).
    pub producer: String,
    /// The producer's output key (`api_url`).
    pub output: String,
}

impl Wire {
    /// `backend-test/terraform.api_url`, the reference in its full form.
    pub fn reference(&self) -> String {
        format!("{}.{}", self.producer, self.output)
    }
}

/// The variable every plugin (and every hook) gets for an input: `BITOPS_INPUT_<NAME>`, upper
/// case, every non-alphanumeric as `_` (like `BITOPS_OUTPUT_…`).
pub fn variable_name(name: &str) -> String {
    format!("BITOPS_INPUT_{}", var_name(name))
}

const FORM: &str = "write `<env>/<deployment>.<output>` (`backend-test/terraform.api_url`), or `<deployment>.<output>` for a deployment of the same environment";

/// Resolves the inputs of deployment `d` of `env`: the producer node, where the input was
/// written (for the edge) and the wire. Problems are pushed to `diags`.
pub(super) fn resolve(
    repo: &Repo,
    env: &Environment,
    d: &Deployment,
    index: &HashMap<String, NodeIndex>,
    diags: &mut Diagnostics,
) -> Vec<(NodeIndex, Loc, Wire)> {
    let mut out = Vec::with_capacity(d.inputs.len());
    // Variable names already taken, for collisions (`api-url` and `api_url`).
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for input in &d.inputs {
        let name = input.name.value.as_str();
        let var = variable_name(name);
        if let Some(other) = taken.insert(var.clone(), name) {
            diags.push(
                Problem::new(
                    "bitops::config::name_clash",
                    format!("inputs `{other}` and `{name}` of `{}/{}` both become {var}", env.name, d.name),
                )
                .at(&input.name.loc, "clashes with an earlier input")
                .help("rename one of them: names that differ only in `-`, `.`, `_` or case become the same variable name"),
            );
            continue;
        }
        let text = input.from.value.trim();
        let (env_name, rest) = match text.split_once('/') {
            Some((e, r)) => (e, r),
            None => (env.name.as_str(), text),
        };
        let problem = |message: String, label: &str| {
            Problem::new("bitops::graph::unknown_input", message).at(&input.from.loc, label)
        };
        let Some(target_env) = repo.environment(env_name) else {
            let p = problem(
                format!("input `{name}`: `{text}` names no environment `{env_name}`"),
                "unknown environment",
            );
            let envs = repo.environments.iter().map(|e| e.name.as_str());
            diags.push(match did_you_mean(env_name, envs) {
                Some(s) => p.help(format!("did you mean `{s}/{rest}`? ({FORM})")),
                None => p.help(FORM),
            });
            continue;
        };
        // Deployment names may contain `.`: the longest deployment that exists wins.
        let split = rest
            .char_indices()
            .filter(|(_, c)| *c == '.')
            .map(|(i, _)| (&rest[..i], &rest[i + 1..]))
            .rev()
            .find(|(dep, _)| target_env.deployment(dep).is_some());
        let Some((dep_name, output)) = split else {
            let wanted = rest.split('.').next().unwrap_or(rest);
            let (message, label) = if !rest.contains('.') || wanted.is_empty() {
                (
                    format!("input `{name}`: `{text}` does not name an output"),
                    "not `<env>/<deployment>.<output>`",
                )
            } else {
                (
                    format!(
                        "input `{name}`: environment `{}` has no deployment `{wanted}`",
                        target_env.name
                    ),
                    "unknown deployment",
                )
            };
            let p = problem(message, label);
            let candidates = target_env.deployments.iter().map(|x| x.name.as_str());
            let tail = rest.split_once('.').map(|(_, o)| o).unwrap_or("<output>");
            diags.push(match did_you_mean(wanted, candidates) {
                Some(s) if !wanted.is_empty() => {
                    p.help(format!("did you mean `{}/{s}.{tail}`?", target_env.name))
                }
                _ => p.help(format!(
                    "{FORM}; `{}` has: {}",
                    target_env.name,
                    target_env
                        .deployments
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
            continue;
        };
        if let Err(why) = check(Kind::OutputKey, output) {
            diags.push(
                problem(
                    format!("input `{name}`: `{text}` does not name a valid output"),
                    &why,
                )
                .help(FORM),
            );
            continue;
        }
        let producer = format!("{}/{dep_name}", target_env.name);
        let node = *index.get(&producer).expect("every deployment has a node");
        out.push((
            node,
            input.from.loc.clone(),
            Wire {
                name: name.to_string(),
                producer,
                output: output.to_string(),
            },
        ));
    }
    out
}

/// `input `api_url`: backend-test/terraform has no output `api_url` (its outputs: a, b)`.
pub fn missing_message(w: &Wire, outputs: Option<&BTreeMap<String, String>>) -> String {
    let has = match outputs {
        Some(o) if !o.is_empty() => format!(
            "its outputs: {}",
            o.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        ),
        _ => "it has no outputs: it has not been deployed successfully, or writes none".into(),
    };
    format!(
        "input `{}`: {} has no output `{}` ({has})",
        w.name, w.producer, w.output
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(name: &str, producer: &str, output: &str) -> Wire {
        Wire {
            name: name.into(),
            producer: producer.into(),
            output: output.into(),
        }
    }

    #[test]
    fn a_missing_output_names_the_producer_and_its_outputs() {
        let outs = BTreeMap::from([("url".to_string(), "http://x".to_string())]);
        assert_eq!(
            missing_message(&wire("api", "b/t", "api_url"), Some(&outs)),
            "input `api`: b/t has no output `api_url` (its outputs: url)"
        );
        let none = missing_message(&wire("n", "c/t", "x"), None);
        assert!(
            none.contains("c/t has no output `x` (it has no outputs"),
            "{none}"
        );
    }

    /// The wires of `b/c` in a repo where `a` has deployments `app` and `app.v2`.
    fn wires_of(inputs: &str) -> (Option<Vec<Wire>>, Diagnostics) {
        use crate::config::settings::{EnvVars, Flags};
        use crate::discover::{scan, Input};
        let t = tempfile::tempdir().unwrap();
        let w = |p: &str, s: &str| {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        w(
            "a/bitops.config.yaml",
            "bitops:\n  deployments:\n    app: {plugin: terraform}\n    app.v2: {plugin: terraform}\n",
        );
        w("a/app/main.tf", "");
        w("a/app.v2/main.tf", "");
        w(
            "b/bitops.config.yaml",
            &format!("bitops:\n  deployments:\n    p: {{plugin: terraform}}\n    c:\n      plugin: terraform\n      inputs:\n{inputs}"),
        );
        w("b/p/main.tf", "");
        w("b/c/main.tf", "");
        let (repo, mut d) = scan(&Input {
            root: t.path().to_path_buf(),
            flags: &Flags::default(),
            env: &EnvVars::default(),
        });
        let g = crate::graph::build(&repo, &mut d);
        let wires = g.map(|g| g.inputs[&g.find("b/c").unwrap()].clone());
        (wires, d)
    }

    #[test]
    fn references_resolve_dotted_deployments_and_the_same_environment() {
        let (wires, d) =
            wires_of("        x: a/app.v2.url\n        y: a/app.url.full\n        z: p.out\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            wires.unwrap(),
            vec![
                wire("x", "a/app.v2", "url"),
                wire("y", "a/app", "url.full"),
                wire("z", "b/p", "out"),
            ]
        );
    }

    #[test]
    fn an_input_from_itself_is_a_cycle() {
        let (wires, d) = wires_of("        x: c.out\n");
        assert!(wires.is_none());
        assert!(
            format!("{d:?}").contains("dependency cycle: b/c → b/c"),
            "{d:?}"
        );
    }

    #[test]
    fn input_variables_are_upper_case_with_underscores() {
        assert_eq!(variable_name("api-url.v2"), "BITOPS_INPUT_API_URL_V2");
    }
}
