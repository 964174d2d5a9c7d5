//! Tool-config keys that BitOps' own documentation used (v1 names, mostly) and BitOps v2
//! silently ignored. Refusing them would refuse BitOps' example repos; ignoring them silently
//! is what hid their meaning. So each is a warning that names the v2 key, and where a v2 place
//! exists bitops reads the value from there (unless the v2 key is set too, which wins).
//! Genuinely unknown keys stay errors (the plugin's schema check), `--strict` makes these
//! warnings errors too.

use std::sync::Arc;

use crate::diagnostic::{Loc, Problem, SourceFile};
use crate::yaml::{Node, Value};

/// One legacy key, under a tool config's root key.
pub struct LegacyKey {
    pub root: &'static str,
    pub path: &'static [&'static str],
    /// Where BitOps v2 reads the same setting; `None`: v2 has no such setting.
    pub replacement: Option<&'static [&'static str]>,
    /// What happens instead, for the warning (and docs/configuration.md).
    pub instead: &'static str,
}

/// Every legacy key bitops knows, found in BitOps' v1/v2 docs and documentation examples.
pub const LEGACY_KEYS: &[LegacyKey] = &[
    LegacyKey {
        root: "terraform",
        path: &["options", "command"],
        replacement: Some(&["cli", "stack-action"]),
        instead: "BitOps v2 ignored it and ran its default `plan`",
    },
    LegacyKey {
        root: "terraform",
        path: &["options", "version"],
        replacement: None,
        instead: "the terraform on PATH runs (BitOps v2 used its image's); pin versions in `required_version`",
    },
    LegacyKey {
        root: "terraform",
        path: &["options", "fetch-kubeconfig"],
        replacement: None,
        instead: "terraform never fetches a kubeconfig; the helm and kubectl plugins do (`options.k8s.fetch`)",
    },
    LegacyKey {
        root: "helm",
        path: &["options", "kubeconfig", "fetch", "enabled"],
        replacement: Some(&["options", "k8s", "fetch", "kubeconfig"]),
        instead: "BitOps v2 ignored it (and fetched by default)",
    },
    LegacyKey {
        root: "helm",
        path: &["options", "kubeconfig", "fetch", "cluster-name"],
        replacement: Some(&["options", "k8s", "fetch", "cluster-name"]),
        instead: "BitOps v2 ignored it and said `helm.options.k8s.fetch.cluster-name` was required",
    },
    LegacyKey {
        root: "helm",
        path: &["options", "kubeconfig", "path"],
        replacement: Some(&["options", "k8s", "kubeconfigpath"]),
        instead: "BitOps v2 ignored it",
    },
    LegacyKey {
        root: "cloudformation",
        path: &["cli", "cfn-stack-action"],
        replacement: Some(&["cli", "stack-action"]),
        instead: "BitOps v2 ignored it and used its default `deploy`",
    },
    LegacyKey {
        root: "cloudformation",
        path: &["options", "cfn-files", "parameters", "enabled"],
        replacement: Some(&["options", "cfn-files", "parameters", "template-param-flag"]),
        instead: "BitOps v2 ignored it, so the parameters file was not passed",
    },
    LegacyKey {
        root: "cloudformation",
        path: &["options", "cfn-s3-bucket"],
        replacement: Some(&["options", "s3bucket"]),
        instead: "BitOps v2 ignored it",
    },
    LegacyKey {
        root: "cloudformation",
        path: &["options", "cfn-s3-prefix"],
        replacement: Some(&["options", "s3prefix"]),
        instead: "BitOps v2 ignored it",
    },
    LegacyKey {
        root: "cloudformation",
        path: &["options", "cfn-create-bucket"],
        replacement: None,
        instead: "no bucket is created (BitOps v2 never did); create it beforehand",
    },
    LegacyKey {
        root: "cloudformation",
        path: &["multi-regional-target-regions"],
        replacement: None,
        instead: "BitOps v2 deployed to `AWS_DEFAULT_REGION` only; use one environment per region",
    },
];

/// Values of a legacy key that are not carried over: a v1 `command: destroy` never makes
/// `bitops deploy` destroy (BitOps v2 planned there); `bitops destroy` is the way.
fn carried(key: &LegacyKey, value: &Node) -> bool {
    !(key.root == "terraform"
        && key.path == ["options", "command"]
        && value.as_str().is_some_and(|v| v.trim() == "destroy"))
}

/// Rewrites the legacy keys of a tool config in place: each is removed, and its value put at
/// its v2 place when there is one and nothing is written there. Returns one warning per key,
/// located in `file` when the node's spans point into it.
pub fn rewrite(root: &mut Node, file: Option<&Arc<SourceFile>>, display: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    for key in LEGACY_KEYS {
        let Some(tool) = map_get_mut(root, key.root) else {
            continue;
        };
        let Some((k, v)) = take(tool, key.path) else {
            continue;
        };
        let dotted = |p: &[&str]| format!("{}.{}", key.root, p.join("."));
        let old = dotted(key.path);
        let help = match key.replacement {
            Some(new) if get(tool, new).is_some() => format!(
                "its BitOps v2 name is `{}`, which is set too and wins; remove this line",
                dotted(new)
            ),
            Some(new) if !carried(key, &v) => format!(
                "its BitOps v2 name is `{}`; bitops does not carry `{}` over ({}): run `bitops destroy`, or write `{}: {}` yourself",
                dotted(new),
                v.to_python_str(),
                key.instead,
                dotted(new),
                v.to_python_str()
            ),
            Some(new) => {
                let shown = match v.value {
                    Value::Bool(b) => b.to_string(),
                    _ => v.to_python_str(),
                };
                insert(tool, new, v);
                format!(
                    "its BitOps v2 name is `{}`; {}; bitops reads it as `{}: {shown}`. Move it there",
                    dotted(new),
                    key.instead,
                    dotted(new)
                )
            }
            None => format!(
                "BitOps v2 has no such setting and ignored it; bitops ignores it too: {}. Remove it",
                key.instead
            ),
        };
        let loc = file.map(|f| Loc::new(f, k.span));
        out.push(
            Problem::new(
                "bitops::config::legacy_key",
                format!("`{old}` in `{display}` is a BitOps v1 key"),
            )
            .at_opt(loc.as_ref(), "legacy key")
            .help(help)
            .warning(),
        );
    }
    out
}

fn map_get_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.value {
        Value::Map(m) => m
            .iter_mut()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn get<'a>(node: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter()
        .try_fold(node, |n, seg| n.get(seg))
        .filter(|n| !n.is_null())
}

/// Removes `path` from `node`, pruning the mappings it leaves empty; returns the key and value.
fn take(node: &mut Node, path: &[&str]) -> Option<(Node, Node)> {
    let (first, rest) = path.split_first()?;
    let Value::Map(m) = &mut node.value else {
        return None;
    };
    let i = m.iter().rposition(|(k, _)| k.as_str() == Some(*first))?;
    if rest.is_empty() {
        return Some(m.remove(i));
    }
    let found = take(&mut m[i].1, rest)?;
    if m[i].1.as_map().is_some_and(<[_]>::is_empty) {
        m.remove(i);
    }
    Some(found)
}

/// Puts `value` at `path`, creating (or replacing null with) mappings on the way.
fn insert(node: &mut Node, path: &[&str], value: Node) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if node.is_null() {
        node.value = Value::Map(Vec::new());
    }
    let Value::Map(m) = &mut node.value else {
        return;
    };
    let i = match m.iter().rposition(|(k, _)| k.as_str() == Some(*first)) {
        Some(i) => i,
        None => {
            let key = Node {
                value: Value::Str((*first).to_string()),
                span: value.span,
            };
            let empty = Node {
                value: Value::Null,
                span: value.span,
            };
            m.push((key, empty));
            m.len() - 1
        }
    };
    if rest.is_empty() {
        m[i].1 = value;
    } else {
        insert(&mut m[i].1, rest, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(text: &str) -> (String, Vec<Problem>) {
        let mut node = crate::yaml::parse(text).unwrap().unwrap();
        let w = rewrite(&mut node, None, "e/t/bitops.config.yaml");
        (crate::yaml::node_to_string(&node), w)
    }

    #[test]
    fn legacy_keys_move_to_their_v2_place_with_a_warning() {
        let (text, w) = rewritten(
            "terraform:\n  cli: {}\n  options:\n    command: apply\n    version: \"0.13.2\"\n    fetch-kubeconfig: false\n    workspace: test\n",
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().all(Problem::is_warning));
        assert!(text.contains("stack-action: apply"), "{text}");
        assert!(
            !text.contains("version") && !text.contains("command"),
            "{text}"
        );
        assert!(text.contains("workspace: test"), "{text}");
        assert!(w[0]
            .help
            .as_deref()
            .unwrap()
            .contains("terraform.cli.stack-action"));
    }

    #[test]
    fn emptied_groups_are_pruned_and_the_v2_key_wins() {
        let (text, w) = rewritten(
            "helm:\n  options:\n    kubeconfig:\n      fetch:\n        enabled: true\n        cluster-name: c\n    k8s:\n      fetch:\n        cluster-name: mine\n",
        );
        assert_eq!(w.len(), 2);
        assert!(!text.contains("kubeconfig:\n"), "{text}");
        assert!(
            text.contains("cluster-name: mine") && !text.contains("cluster-name: c\n"),
            "{text}"
        );
        assert!(text.contains("kubeconfig: true"), "{text}");
    }

    #[test]
    fn a_legacy_destroy_is_not_carried_into_deploy() {
        let (text, w) = rewritten("terraform:\n  options:\n    command: destroy\n");
        assert!(!text.contains("destroy"), "{text}");
        assert!(w[0].help.as_deref().unwrap().contains("bitops destroy"));
    }
}
