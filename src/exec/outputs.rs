//! Outputs passed between deployments.
//!
//! A deployment writes `KEY=value` lines to `$BITOPS_OUTPUT_FILE` (the terraform plugin adds
//! `terraform output -json` itself). Every deployment downstream of it then sees
//! `BITOPS_OUTPUT_<ENV>_<DEPLOYMENT>_<KEY>` and, in the JSON file `$BITOPS_INPUTS_JSON`,
//! `{"env/deployment": {"KEY": "value"}}`. The last successful outputs of each deployment are
//! kept in the state folder, so a run that selects only a dependent still gets them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub type Outputs = Vec<(String, String)>;

/// `BITOPS_OUTPUT_<ENV>_<DEPLOYMENT>_<KEY>`: upper case, every non-alphanumeric as `_`.
pub fn variable_name(env: &str, deployment: &str, key: &str) -> String {
    use crate::names::var_name;
    format!(
        "BITOPS_OUTPUT_{}_{}_{}",
        var_name(env),
        var_name(deployment),
        var_name(key)
    )
}

/// The longest `NAME=value` one environment variable may be on Linux (`MAX_ARG_STRLEN`, 32
/// pages): a longer output would make every dependent fail to start, so its producer fails.
pub const MAX_VARIABLE_BYTES: usize = 128 * 1024 - 1;

/// The largest `$BITOPS_OUTPUT_FILE` read: room for 128 values at [`MAX_VARIABLE_BYTES`]; a
/// bigger one fails its deployment instead of filling bitops' memory.
pub const MAX_OUTPUT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Parses the bytes of an output file; a line that is not UTF-8 is an error naming it (it once
/// made every output of the file vanish silently).
pub fn parse_bytes(bytes: &[u8]) -> Result<Outputs, String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            Err(format!(
                "line {line} is not UTF-8 text (byte {} of the file); write outputs as UTF-8",
                e.valid_up_to() + 1
            ))
        }
    }
}

/// Checks a producer's outputs before anyone depends on them: valid key names, no two keys
/// that become the same variable name (`a.b` and `a_b`), and values an environment variable
/// can hold (no NUL, not over [`MAX_VARIABLE_BYTES`]). The error names the key or keys.
pub fn validate(env: &str, deployment: &str, outputs: &Outputs) -> Result<(), String> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (k, v) in outputs {
        crate::names::check(crate::names::Kind::OutputKey, k)
            .map_err(|why| format!("output `{}`: {why}", k.escape_debug()))?;
        let name = variable_name(env, deployment, k);
        if let Some(other) = seen.insert(name.clone(), k) {
            return Err(format!(
                "outputs `{other}` and `{k}` both become {name}; rename one of them"
            ));
        }
        if v.contains('\0') {
            return Err(format!(
                "output `{k}` contains a NUL byte, which no environment variable can hold"
            ));
        }
        let size = name.len() + 1 + v.len();
        if size > MAX_VARIABLE_BYTES {
            return Err(format!(
                "output `{k}` is {} bytes: as {name} it would exceed the limit of {MAX_VARIABLE_BYTES} bytes for one environment variable (Linux MAX_ARG_STRLEN); pass large values through a file",
                v.len()
            ));
        }
    }
    Ok(())
}

/// Two deployments whose variable prefixes are the same (`x-y/d` and `x_y/d`, or `a/b_c` and
/// `a_b/c`) would overwrite each other's `BITOPS_OUTPUT_…` variables in their dependents, and
/// two whose `<env>__<deployment>` file names are the same (`a__b/c` and `a/b__c`) each other's
/// logs and output files: an error naming both, before anything runs.
pub fn check_variable_prefixes(
    repo: &crate::model::Repo,
    diags: &mut crate::diagnostic::Diagnostics,
) {
    use crate::names::var_name;
    // Ids are written only for a clash: this runs on every deployment of every plan.
    let mut seen: std::collections::HashMap<String, (usize, usize)> =
        std::collections::HashMap::new();
    // A deployment's files in a run and in the state folder are named `<env>__<deployment>`
    // (logs, outputs): `a__b/c` and `a/b__c` would share them.
    let mut files: std::collections::HashMap<String, (usize, usize)> =
        std::collections::HashMap::new();
    for (ei, env) in repo.environments.iter().enumerate() {
        let env_var = var_name(&env.name);
        for (di, d) in env.deployments.iter().enumerate() {
            let file = format!("{}__{}", env.name, d.name);
            if let Some(&(oe, od)) = files.get(&file) {
                let other_env = &repo.environments[oe];
                let p = crate::diagnostic::Problem::new(
                    "bitops::config::name_clash",
                    format!(
                        "deployments `{}/{}` and `{}/{}` would share their log and output files (`{file}`)",
                        other_env.name, other_env.deployments[od].name, env.name, d.name
                    ),
                )
                .help("rename one of the environments or deployments: `__` in a name can make two of them spell the same file name");
                diags.push(match &d.decl {
                    Some(loc) => p.at(loc, "clashes with another deployment"),
                    None => p.path(&d.dir),
                });
            } else {
                files.insert(file, (ei, di));
            }
            let prefix = format!("{env_var}_{}", var_name(&d.name));
            let entry = match seen.entry(prefix) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((ei, di));
                    continue;
                }
                std::collections::hash_map::Entry::Occupied(o) => o,
            };
            {
                let prefix = entry.key().clone();
                let mut entry = entry;
                let (oe, od) = entry.insert((ei, di));
                let other_env = &repo.environments[oe];
                let other = format!("{}/{}", other_env.name, other_env.deployments[od].name);
                let id = format!("{}/{}", env.name, d.name);
                let p = crate::diagnostic::Problem::new(
                    "bitops::config::name_clash",
                    format!(
                        "deployments `{other}` and `{id}` both publish outputs as BITOPS_OUTPUT_{prefix}_…"
                    ),
                )
                .help("rename one of the environments or deployments: names that differ only in `-`, `.`, `_` or case become the same variable name");
                diags.push(match &d.decl {
                    Some(loc) => p.at(loc, "clashes with another deployment"),
                    None => p.path(&d.dir),
                });
            }
        }
    }
}

/// Parses an output file: `KEY=value` or `export KEY=value`; blank lines and `#` comments are
/// ignored; one layer of matching quotes around the value is removed. Later keys win.
pub fn parse(text: &str) -> Result<Outputs, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").unwrap_or(t);
        let Some((k, v)) = t.split_once('=') else {
            return Err(format!("line {}: `{line}` is not KEY=value", n + 1));
        };
        let k = k.trim();
        if let Err(why) = crate::names::check(crate::names::Kind::OutputKey, k) {
            return Err(format!(
                "line {}: `{}` is not a valid output name ({why})",
                n + 1,
                k.escape_debug()
            ));
        }
        let v = unquote(v);
        out.retain(|(old, _)| old != k);
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// `terraform output -json` → outputs: strings as they are, anything else as JSON text.
pub fn from_terraform_json(text: &str) -> Result<Outputs, String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("terraform output -json: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("terraform output -json did not print an object")?;
    Ok(obj
        .iter()
        .map(|(k, o)| {
            let value = o.get("value").unwrap_or(&serde_json::Value::Null);
            let s = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect())
}

/// `aws cloudformation describe-stacks` JSON → the stack's outputs.
pub fn from_cloudformation_json(text: &str) -> Result<Outputs, String> {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("describe-stacks: {e}"))?;
    let outputs = v
        .pointer("/Stacks/0/Outputs")
        .and_then(|o| o.as_array())
        .cloned()
        .unwrap_or_default();
    Ok(outputs
        .iter()
        .filter_map(|o| {
            Some((
                o.get("OutputKey")?.as_str()?.to_string(),
                o.get("OutputValue")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Where the last successful outputs of a deployment are kept.
pub fn saved_path(state_dir: &Path, node_id: &str) -> PathBuf {
    state_dir
        .join("outputs")
        .join(format!("{}.json", node_id.replace('/', "__")))
}

pub fn save(state_dir: &Path, node_id: &str, outputs: &Outputs) -> std::io::Result<()> {
    let path = saved_path(state_dir, node_id);
    if let Some(p) = path.parent() {
        crate::state::fsutil::own_dir(p, "outputs")?;
    }
    let map: BTreeMap<&str, &str> = outputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    crate::state::fsutil::write_private_atomic(
        &path,
        serde_json::to_vec_pretty(&map).expect("string map serializes"),
    )
}

/// Keeps a deployment's outputs for later runs; a deployment without outputs leaves no file
/// (and removes an older one, so stale values are never handed on).
pub fn record(state_dir: &Path, node_id: &str, outputs: &Outputs) -> std::io::Result<()> {
    if outputs.is_empty() {
        return match std::fs::remove_file(saved_path(state_dir, node_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    save(state_dir, node_id, outputs)
}

/// The outputs kept from an earlier run. A file that fails today's checks (written by an older
/// bitops, or edited) is not handed on: the producer must run again.
pub fn load_saved(state_dir: &Path, node_id: &str) -> Option<Outputs> {
    let text = std::fs::read_to_string(saved_path(state_dir, node_id)).ok()?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text).ok()?;
    let outputs: Outputs = map.into_iter().collect();
    let (env, dep) = node_id.split_once('/').unwrap_or((node_id, ""));
    validate(env, dep, &outputs).ok()?;
    Some(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_upper_case_with_underscores() {
        assert_eq!(
            variable_name("backend-test", "tf.net", "vpc-id"),
            "BITOPS_OUTPUT_BACKEND_TEST_TF_NET_VPC_ID"
        );
    }

    #[test]
    fn parses_key_value_lines() {
        let o = parse("# c\nA=1\nexport B=\"two words\"\n\nC='x=y'\nA=3\n").unwrap();
        assert_eq!(
            o,
            vec![
                ("B".into(), "two words".into()),
                ("C".into(), "x=y".into()),
                ("A".into(), "3".into())
            ]
        );
        assert!(parse("oops\n").is_err());
    }

    #[test]
    fn hostile_output_files_fail_the_producer() {
        let e = parse_bytes(b"A=1\nB=\xff\xfe\nC=3\n").unwrap_err();
        assert!(e.starts_with("line 2 "), "{e}");
        let clash: Outputs = vec![("a.b".into(), "1".into()), ("a_b".into(), "2".into())];
        let e = validate("env", "dep", &clash).unwrap_err();
        assert!(e.contains("`a.b` and `a_b`"), "{e}");
        let nul: Outputs = vec![("k".into(), "a\0b".into())];
        assert!(validate("e", "d", &nul).unwrap_err().contains("NUL"));
        let big: Outputs = vec![("k".into(), "x".repeat(MAX_VARIABLE_BYTES))];
        assert!(validate("e", "d", &big)
            .unwrap_err()
            .contains("MAX_ARG_STRLEN"));
        let ok: Outputs = vec![("k".into(), "x".repeat(1000))];
        assert_eq!(validate("e", "d", &ok), Ok(()));
    }

    #[test]
    fn terraform_outputs() {
        let o = from_terraform_json(r#"{"vpc_id":{"value":"vpc-1","type":"string"},"n":{"value":3,"type":"number"},"l":{"value":["a"],"type":"list"}}"#).unwrap();
        assert!(o.contains(&("vpc_id".into(), "vpc-1".into())));
        assert!(o.contains(&("n".into(), "3".into())));
        assert!(o.contains(&("l".into(), "[\"a\"]".into())));
    }

    #[test]
    fn cloudformation_outputs_from_describe_stacks() {
        // The shape `aws cloudformation describe-stacks` prints (checked against moto's
        // create-stack; moto leaves Outputs empty for change-set deploys, real AWS does not).
        let text = r#"{"Stacks": [{"StackName": "s", "StackStatus": "CREATE_COMPLETE",
            "Outputs": [{"OutputKey": "BucketName", "OutputValue": "bitops-test-bucket"},
                        {"OutputKey": "Arn", "OutputValue": "arn:aws:s3:::b", "ExportName": "x"}]}]}"#;
        let o = from_cloudformation_json(text).unwrap();
        assert_eq!(
            o,
            vec![
                ("BucketName".into(), "bitops-test-bucket".into()),
                ("Arn".into(), "arn:aws:s3:::b".into())
            ]
        );
        assert!(
            from_cloudformation_json(r#"{"Stacks": [{"StackName": "s"}]}"#)
                .unwrap()
                .is_empty()
        );
        assert!(from_cloudformation_json("not json").is_err());
    }

    #[test]
    fn saved_outputs_round_trip_and_empty_ones_clear_old_values() {
        let t = tempfile::tempdir().unwrap();
        record(t.path(), "a/b", &vec![("K".into(), "v".into())]).unwrap();
        assert_eq!(
            load_saved(t.path(), "a/b").unwrap(),
            vec![("K".to_string(), "v".to_string())]
        );
        record(t.path(), "a/b", &Vec::new()).unwrap();
        assert!(load_saved(t.path(), "a/b").is_none());
        record(t.path(), "a/b", &Vec::new()).unwrap();
    }
}
