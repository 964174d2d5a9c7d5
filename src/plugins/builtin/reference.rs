//! `docs/plugins-reference.md`, rendered from the schemas the built-ins resolve their settings
//! with (keys, types, defaults, flags, exports, descriptions), the override names the resolver
//! computes, the legacy keys the config reader rewrites, and the few variables a built-in reads
//! outside its schema ([`ENV_VARS`], checked against the plugins' sources by a test). A test
//! keeps the file current: `UPDATE_DOCS=1 cargo test --lib plugins_reference` rewrites it.

use crate::config::legacy::LEGACY_KEYS;
use crate::plugins::bitops_format::{Property, Schema};
use crate::yaml::Value;

/// Each built-in, in the order of the document, with what it runs and where its config lives.
pub const PLUGINS: &[(&str, &str)] = &[
    (
        "terraform",
        "Runs `terraform init`, selects the workspace, then `plan`, `apply` (of the saved plan) or \
         `destroy` (a saved `plan -destroy`), and captures `terraform output -json` as the \
         deployment's outputs. Keys are read from `<env>/terraform/bitops.config.yaml` (the \
         deployment's folder). BitOps' default `stack-action` is `plan`: a deploy that only \
         planned is reported `planned only`; set `cli.stack-action: apply` to apply.",
    ),
    (
        "ansible",
        "Runs `ansible-playbook` in the deployment folder with the `cli` keys as flags, in \
         schema order, and the playbook last. A dry run adds `--check --diff`; ansible has no \
         destroy, so `bitops destroy` skips it and says so.",
    ),
    (
        "helm",
        "Every sub-folder of `<env>/helm` is a chart, deployed in alphabetical order with \
         `helm upgrade --install` (reverse order and `helm uninstall` on destroy, `helm \
         template` on a dry run). Keys are read per chart from \
         `<env>/helm/<chart>/bitops.config.yaml`; the kubeconfig comes from a base64 variable, \
         `options.k8s.kubeconfigpath` or `aws eks update-kubeconfig`.",
    ),
    (
        "cloudformation",
        "Validates the template and runs `aws cloudformation deploy` (a change set, waited for); \
         `stack-action: delete` or `bitops destroy` deletes the stack; a dry run creates, \
         describes and deletes a change set. The stack's outputs become the deployment's \
         outputs.",
    ),
    (
        "kubectl",
        "Applies the folder's manifests (`kubectl apply -f …`, or `-k .` for a kustomization); \
         `stack-action: delete` or `bitops destroy` deletes them in reverse order; a dry run is \
         `kubectl diff`. BitOps' kubectl plugin had no schema: these keys are bitops' own, \
         named like helm's where they mean the same.",
    ),
    (
        "aws",
        "Not a deployment plugin (a deployment naming it is a configuration error): it provides \
         region, credentials and the EKS kubeconfig to cloudformation, helm and kubectl. It has \
         no config keys; the AWS CLI reads credentials and `AWS_ENDPOINT_URL` from the \
         environment itself.",
    ),
];

/// Variables a built-in reads besides its schema's overrides: (plugin, variable, what it does).
/// Each name is checked to appear in the plugin's source, so a removed one fails a test.
pub const ENV_VARS: &[(&str, &str, &str)] = &[
    ("terraform", "TERRAFORM_SKIP_DEPLOY", "`true` skips the deployment (as `options.skip-deploy`)."),
    ("terraform", "TERRAFORM_APPLY", "`true` applies, whatever `stack-action` says (BitOps' variable)."),
    ("terraform", "TERRAFORM_DESTROY", "`true` destroys, and wins over `TERRAFORM_APPLY`."),
    ("terraform", "INIT_UPGRADE", "`true` adds `-upgrade` to `terraform init` (as `options.init-upgrade`)."),
    ("terraform", "TF_DATA_DIR", "When set, the saved plan file is written there (`bitops.tfplan`)."),
    ("helm", "HELM_SKIP_DEPLOY", "`true` skips every chart of the deployment."),
    ("helm", "BITOPS_ENVIRONMENT_HELM_SUBDIRECTORY", "Deploys only this chart; a name that is not a chart is an error listing the charts."),
    ("helm", "HELM_UNINSTALL_CHARTS", "Comma-separated charts to uninstall instead of deploying."),
    ("helm", "BITOPS_HELM_DIFF", "`true`: a dry run runs `helm diff upgrade` (needs the helm-diff plugin) instead of `helm template`."),
    ("helm", "HELM_SECRETS_BASE64", "Decoded into the chart's `values-secrets.yaml` before the deploy."),
    ("helm", "DEFAULT_ROOT_DIR", "Also read as `BITOPS_DEFAULT_ROOT_DIR`: folders with this name in `<env>/helm` are not charts."),
    ("helm", "KUBECONFIG_BASE64", "Also read as `BITOPS_KUBECONFIG_BASE64` (first): a base64 kubeconfig, decoded into `$BITOPS_KUBE_CONFIG_FILE`; wins over `k8s.*`."),
    ("cloudformation", "CFN_SKIP_DEPLOY", "`true` skips the deployment (as `options.skip-deploy`)."),
    ("kubectl", "KUBECTL_SKIP_DEPLOY", "`true` skips the deployment (as `options.skip-deploy`)."),
    ("kubectl", "KUBECONFIG_BASE64", "Also read as `BITOPS_KUBECONFIG_BASE64` (first): a base64 kubeconfig, decoded into `$BITOPS_KUBE_CONFIG_FILE`; wins over `k8s.*`."),
    ("aws", "AWS_DEFAULT_REGION", "The region (`--region`) of every `aws` command bitops runs."),
    ("aws", "AWS_REGION", "The region when `AWS_DEFAULT_REGION` is not set."),
];

/// The schema a built-in resolves its settings with; `None` for `aws`, which has none.
pub fn schema_of(plugin: &str) -> Option<&'static Schema> {
    match plugin {
        "terraform" => Some(super::terraform::terraform_schema()),
        "ansible" => Some(super::ansible::ansible_schema()),
        "helm" => Some(super::helm::helm_schema()),
        "cloudformation" => Some(super::cloudformation::cfn_schema()),
        "kubectl" => Some(super::kubectl::kubectl_schema()),
        _ => None,
    }
}

/// The whole `docs/plugins-reference.md`.
pub fn render_document() -> String {
    let mut out = String::from(
        "# Built-in plugins: every key\n\n\
         This file is generated from the code (the schemas in `src/plugins/builtin/schemas/` and \
         `src/plugins/bitops_format/fixtures/`, `src/plugins/builtin/reference.rs`, \
         `src/config/legacy.rs`); `UPDATE_DOCS=1 cargo test --lib plugins_reference` rewrites \
         it.\n\n\
         A built-in's keys go under its root key in the deployment's tool-level \
         `bitops.config.yaml`, as in BitOps v2:\n\n\
         ```yaml\n\
         # <env>/terraform/bitops.config.yaml\n\
         terraform:\n  cli:\n    stack-action: apply\n  options:\n    workspace: test\n\
         ```\n\n\
         How a value is chosen, highest first: the **override** variable \
         (`BITOPS_<PLUGIN>_<KEY>`, the key's last segment upper-cased with `-` as `_`, so keys \
         with the same last segment share one), the config file, the schema **default**. A `cli` \
         key with a **parameter** is passed to the tool as its flag of that name; a key with an **export** is \
         exported to the deployment's commands and hooks under that name and, unless it starts \
         with `BITOPS_`, also with a `BITOPS_` prefix. A boolean given as a string (an override, a \
         variable) is false when it is `false`, `no`, `off`, `0` or empty, true otherwise. A key not listed here is an error with a did-you-mean; a \
         **legacy** key from BitOps' older documentation is a warning (an error with \
         `--strict`) and, where v2 has a place for it, read from there. \
         What differs from the official BitOps plugins is in \
         [compatibility.md](compatibility.md#built-in-plugins).\n",
    );
    for (plugin, intro) in PLUGINS {
        out.push_str(&format!("\n## {plugin}\n\n{}\n", one_line(intro)));
        if let Some(schema) = schema_of(plugin) {
            out.push_str(&keys_table(schema));
        }
        let legacy: Vec<_> = LEGACY_KEYS.iter().filter(|k| k.root == *plugin).collect();
        if !legacy.is_empty() {
            out.push_str(
                "\nLegacy keys (warnings; errors with `--strict`):\n\n\
                 | Legacy key | Read as | What happens |\n| --- | --- | --- |\n",
            );
            for k in legacy {
                let read_as = k
                    .replacement
                    .map_or("—".to_string(), |r| format!("`{}`", r.join(".")));
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    k.path.join("."),
                    read_as,
                    cell(k.instead)
                ));
            }
        }
        let vars: Vec<_> = ENV_VARS.iter().filter(|(p, _, _)| p == plugin).collect();
        if !vars.is_empty() {
            out.push_str(&format!(
                "\nOther variables `{plugin}` reads:\n\n| Variable | What it does |\n| --- | --- |\n"
            ));
            for (_, name, what) in vars {
                out.push_str(&format!("| `{name}` | {} |\n", cell(what)));
            }
        }
    }
    out
}

fn keys_table(schema: &Schema) -> String {
    let mut out = String::from(
        "\n| Key | Type | Default | Override | Parameter | Export | What it does |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in schema.properties.iter().filter(|p| !p.is_container()) {
        let key = p.path[1..].join(".");
        let required = if p.required { " (required)" } else { "" };
        out.push_str(&format!(
            "| `{key}`{required} | {} | {} | `{}` | {} | {} | {} |\n",
            p.kind.as_deref().unwrap_or("string"),
            default_of(p),
            p.override_name(),
            flag_of(p),
            p.export_env
                .as_deref()
                .map_or("—".to_string(), |e| format!("`{e}`")),
            cell(p.description.as_deref().unwrap_or("")),
        ));
    }
    out
}

fn default_of(p: &Property) -> String {
    match p.default.as_ref().map(|d| &d.value) {
        None | Some(Value::Null) => "—".into(),
        Some(Value::Bool(b)) => format!("`{b}`"),
        Some(_) => format!("`{}`", p.default.as_ref().unwrap().to_python_str()),
    }
}

/// The command-line parameter a `cli` key becomes (the tool's flag of that name), `positional`
/// for a `cli` key without one that is not exported (ansible's playbook); an `options` key is
/// never passed on the command line, whatever its schema says.
fn flag_of(p: &Property) -> String {
    match (&p.parameter, p.is_cli()) {
        (Some(param), true) => format!("`{param}`"),
        (None, true) if p.export_env.is_none() => "positional".into(),
        _ => "—".into(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table cell: one line, `|` escaped, and `<`/`>` outside code spans escaped so that
/// `<env>` shows instead of vanishing as an HTML tag.
fn cell(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in one_line(s).replace('|', "\\|").split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 0 {
            out.push_str(&part.replace('<', "&lt;").replace('>', "&gt;"));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn plugins_reference_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/plugins-reference.md");
        let want = super::render_document();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/plugins-reference.md is out of date: run `UPDATE_DOCS=1 cargo test --lib plugins_reference`"
        );
    }

    /// Every variable the reference lists is still read by its plugin's code (outside tests).
    #[test]
    fn plugins_reference_env_vars_are_read_by_the_code() {
        let source = |plugin: &str| -> &'static str {
            let text = match plugin {
                "terraform" => include_str!("terraform.rs"),
                "ansible" => include_str!("ansible.rs"),
                "helm" => include_str!("helm.rs"),
                "cloudformation" => include_str!("cloudformation.rs"),
                // helm shares kubectl's kubeconfig code.
                "kubectl" => include_str!("kubectl.rs"),
                "aws" => include_str!("aws.rs"),
                other => panic!("no source for {other}"),
            };
            text.split("#[cfg(test)]").next().unwrap()
        };
        for (plugin, name, _) in super::ENV_VARS {
            let mut code = source(plugin).to_string();
            if *plugin == "helm" {
                code.push_str(source("kubectl"));
            }
            assert!(
                code.contains(&format!("\"{name}\"")),
                "{plugin} no longer reads `{name}`: update ENV_VARS in src/plugins/builtin/reference.rs"
            );
        }
        let names: Vec<&str> = super::PLUGINS.iter().map(|(p, _)| *p).collect();
        assert_eq!(names, super::super::BUILTINS, "one section per built-in");
    }
}
