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
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "BITOPS_OUTPUT_{}_{}_{}",
        clean(env),
        clean(deployment),
        clean(key)
    )
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
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return Err(format!("line {}: `{k}` is not a valid output name", n + 1));
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
        std::fs::create_dir_all(p)?;
    }
    let map: BTreeMap<&str, &str> = outputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(&map).expect("string map serializes"),
    )?;
    std::fs::rename(tmp, path)
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

pub fn load_saved(state_dir: &Path, node_id: &str) -> Option<Outputs> {
    let text = std::fs::read_to_string(saved_path(state_dir, node_id)).ok()?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text).ok()?;
    Some(map.into_iter().collect())
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
