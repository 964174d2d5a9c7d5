//! Declared inputs handed to a deployment's tool in its own way (DESIGN §2.2 item 4), after the
//! plugin prepared its steps, so `bitops plan` shows exactly what a deploy passes:
//!
//! - every deployment (and its hooks): `BITOPS_INPUT_<NAME>` — the form of BitOps-format plugins;
//! - terraform: `TF_VAR_<name>`, the name exactly as written;
//! - ansible: one `--extra-vars` mapping, last on the command line, so it wins, each value
//!   tagged `!unsafe` so ansible never templates it;
//! - helm: `--set-string name=value` on the install/upgrade, template and diff commands (a
//!   string, as outputs are: `--set` would turn an id like `007` into the number 7);
//! - cloudformation: a parameter override on `deploy`, and a parameter of the dry run's change
//!   set.

use std::path::Path;

use crate::plugins::step::{Prepared, Step};

/// Adds the inputs (`(name, value)`) to what a deployment runs. `builtin` is the built-in's
/// name, `None` for a BitOps-format plugin. The error says why an input could not be passed.
pub fn apply(
    p: &mut Prepared,
    builtin: Option<&str>,
    inputs: &[(String, String)],
) -> Result<(), String> {
    if inputs.is_empty() {
        return Ok(());
    }
    for (name, value) in inputs {
        p.exports
            .insert(crate::graph::inputs::variable_name(name), value.clone());
    }
    match builtin {
        Some("terraform") => {
            for (name, value) in inputs {
                p.exports.insert(format!("TF_VAR_{name}"), value.clone());
            }
        }
        Some("ansible") => {
            // YAML flow mapping of JSON strings, each tagged `!unsafe`: ansible would otherwise
            // template a value holding `{{ … }}` (an output is data, never code to evaluate).
            let entries: Vec<String> = inputs
                .iter()
                .map(|(k, v)| {
                    let q = |x: &str| serde_json::Value::String(x.to_string()).to_string();
                    format!("{}: !unsafe {}", q(k), q(v))
                })
                .collect();
            let arg = format!("--extra-vars={{{}}}", entries.join(", "));
            each_step(p, &mut |s| {
                if s.argv.first().is_some_and(|a| a == "ansible-playbook") {
                    s.argv.push(arg.clone());
                }
            });
        }
        Some("helm") => {
            each_step(p, &mut |s| {
                let sub = s.argv.get(1).map(String::as_str);
                if s.argv.first().is_some_and(|a| a == "helm")
                    && matches!(sub, Some("upgrade" | "template" | "diff"))
                {
                    for (name, value) in inputs {
                        s.argv.push("--set-string".into());
                        s.argv.push(format!("{name}={}", helm_escape(value)));
                    }
                }
            });
        }
        Some("cloudformation") => {
            let mut result = Ok(());
            each_step(p, &mut |s| match s.argv.get(2).map(String::as_str) {
                Some("deploy") => parameter_overrides(s, inputs),
                Some("create-change-set") => {
                    if let Err(e) = change_set_parameters(s, inputs) {
                        result = Err(e);
                    }
                }
                _ => {}
            });
            result?;
        }
        _ => {}
    }
    Ok(())
}

/// Calls `f` on every step, fallbacks and failure handlers included.
fn each_step(p: &mut Prepared, f: &mut impl FnMut(&mut Step)) {
    fn walk(s: &mut Step, f: &mut impl FnMut(&mut Step)) {
        f(s);
        if let Some(fb) = s.fallback.as_deref_mut() {
            walk(fb, f);
        }
        for h in &mut s.on_failure {
            walk(h, f);
        }
    }
    for s in &mut p.steps {
        walk(s, f);
    }
}

/// Helm's `--set` parser splits on `,` and reads `\` as an escape (and `{` first as a list).
fn helm_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '{' | '[' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `--parameter-overrides K=V …` of `aws cloudformation deploy`: an input replaces a value of
/// the parameters file with the same key.
fn parameter_overrides(s: &mut Step, inputs: &[(String, String)]) {
    let items: Vec<String> = inputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    match s.argv.iter().position(|a| a == "--parameter-overrides") {
        Some(at) => {
            let end = s.argv[at + 1..]
                .iter()
                .position(|a| a.starts_with("--"))
                .map_or(s.argv.len(), |n| at + 1 + n);
            let mut list: Vec<String> = s.argv[at + 1..end]
                .iter()
                .filter(|kv| {
                    let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                    !inputs.iter().any(|(n, _)| n == key)
                })
                .cloned()
                .collect();
            list.extend(items);
            s.argv.splice(at + 1..end, list);
        }
        None => {
            s.argv.push("--parameter-overrides".into());
            s.argv.extend(items);
        }
    }
}

/// The dry run's change set takes create-stack parameters: the file's list (if any) with the
/// inputs merged in, as one JSON argument.
fn change_set_parameters(s: &mut Step, inputs: &[(String, String)]) -> Result<(), String> {
    let mut list: Vec<serde_json::Value> = Vec::new();
    let at = s.argv.iter().position(|a| a == "--parameters");
    if let Some(at) = at {
        let arg = s.argv.get(at + 1).cloned().unwrap_or_default();
        let file = arg.strip_prefix("file://").unwrap_or(&arg);
        let path = Path::new(&s.cwd).join(file);
        let text = crate::discover::files::read_regular_string(&path).map_err(|e| {
            format!(
                "cannot add inputs to the parameters file {}: {e}",
                path.display()
            )
        })?;
        match serde_json::from_str(&text) {
            Ok(serde_json::Value::Array(items)) => list = items,
            _ => {
                return Err(format!(
                    "cannot add inputs to the parameters file {}: the change set of a dry run needs it as a list of {{\"ParameterKey\", \"ParameterValue\"}}",
                    path.display()
                ))
            }
        }
    }
    list.retain(|item| {
        let key = item.get("ParameterKey").and_then(|k| k.as_str());
        !inputs.iter().any(|(n, _)| Some(n.as_str()) == key)
    });
    for (k, v) in inputs {
        list.push(serde_json::json!({"ParameterKey": k, "ParameterValue": v}));
    }
    let json = serde_json::Value::Array(list).to_string();
    match at {
        Some(at) if at + 1 < s.argv.len() => s.argv[at + 1] = json,
        _ => {
            s.argv.push("--parameters".into());
            s.argv.push(json);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn each_builtin_gets_its_native_form() {
        let inputs = [kv("api_url", "http://a,b")];
        let mut tf = Prepared::default();
        apply(&mut tf, Some("terraform"), &inputs).unwrap();
        assert_eq!(tf.exports["TF_VAR_api_url"], "http://a,b");
        assert_eq!(tf.exports["BITOPS_INPUT_API_URL"], "http://a,b");

        let mut an = Prepared::default();
        an.steps
            .push(Step::new(["ansible-playbook", "-e", "x=1", "p.yaml"], "/t"));
        apply(&mut an, Some("ansible"), &inputs).unwrap();
        assert_eq!(
            an.steps[0].argv.last().unwrap(),
            r#"--extra-vars={"api_url": !unsafe "http://a,b"}"#
        );

        let mut helm = Prepared::default();
        helm.steps
            .push(Step::new(["helm", "dependency", "update", "."], "/t"));
        let mut up = Step::new(["helm", "upgrade", "--install", "r", "."], "/t");
        up.on_failure
            .push(Step::new(["helm", "rollback", "r", "0"], "/t"));
        helm.steps.push(up);
        apply(&mut helm, Some("helm"), &inputs).unwrap();
        assert_eq!(
            helm.steps[0].argv.len(),
            4,
            "dependency update is left alone"
        );
        assert_eq!(
            helm.steps[1].argv[5..],
            [
                "--set-string".to_string(),
                r"api_url=http://a\,b".to_string()
            ]
        );

        let mut cfn = Prepared::default();
        cfn.steps.push(Step::new(
            [
                "aws",
                "cloudformation",
                "deploy",
                "--parameter-overrides",
                "api_url=old",
                "Env=test",
                "--capabilities",
                "CAPABILITY_IAM",
            ],
            "/t",
        ));
        apply(&mut cfn, Some("cloudformation"), &inputs).unwrap();
        assert_eq!(
            cfn.steps[0].argv[3..7],
            [
                "--parameter-overrides",
                "Env=test",
                "api_url=http://a,b",
                "--capabilities"
            ]
        );
    }

    #[test]
    fn a_change_set_gets_the_file_parameters_and_the_inputs() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("p.json"),
            r#"[{"ParameterKey": "Env", "ParameterValue": "test"}, {"ParameterKey": "api_url", "ParameterValue": "old"}]"#,
        )
        .unwrap();
        let mut p = Prepared::default();
        let mut s = Step::new(
            [
                "aws",
                "cloudformation",
                "create-change-set",
                "--parameters",
                "file://p.json",
            ],
            t.path(),
        );
        s.fallback = Some(Box::new(s.clone()));
        p.steps.push(s);
        apply(&mut p, Some("cloudformation"), &[kv("api_url", "new")]).unwrap();
        let want = r#"[{"ParameterKey":"Env","ParameterValue":"test"},{"ParameterKey":"api_url","ParameterValue":"new"}]"#;
        assert_eq!(p.steps[0].argv[4], want);
        assert_eq!(p.steps[0].fallback.as_ref().unwrap().argv[4], want);
    }
}
