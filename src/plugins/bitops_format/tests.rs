//! Tests of the BitOps plugin contract against the reference's worked examples (§4.10), the
//! official plugins' schemas, and each deliberate deviation.

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostics, Problem, SourceFile};

use super::value::{convert, python_int, ConvertError, Val};
use super::*;

/// Environment variables or expected exports, as `(name, value)` pairs.
type Vars<'a> = &'a [(&'a str, &'a str)];

const CONFIG_NAME: &str = "env/tool/bitops.config.yaml";

/// The `my-tool` schema of reference §4.10.
const MY_TOOL_SCHEMA: &str = "\
my-tool:
  type: object
  properties:
    cli:
      type: object
      properties:
        config-file: {type: string, parameter: config, export_env: MYTOOL_CONFIG}
        force:       {type: boolean, parameter: force}
        quiet:       {type: boolean, parameter: quiet, default: true}
        parallelism: {type: integer, parameter: parallelism}
        tags:        {type: list, parameter: tag, export_env: MYTOOL_TAGS}
        target:      {type: string, required: true}
        stack-action: {type: string, default: plan, export_env: BITOPS_MYTOOL_ACTION}
    options:
      type: object
      properties:
        skip-deploy: {type: boolean, export_env: MYTOOL_SKIP_DEPLOY}
        region:      {type: string, default: us-east-1, export_env: MYTOOL_REGION}
        nested:
          type: object
          properties:
            depth: {type: int, export_env: MYTOOL_DEPTH}
";

const MY_TOOL_CONFIG: &str = "\
my-tool:
  cli:
    config-file: prod.cfg
    force: true
    quiet: false
    parallelism: 4
    tags: [web, db]
    target: site.yml
    stack-action: apply
  options:
    region: \"\"
    nested:
      depth: 3
";

fn schema(text: &str) -> Schema {
    Schema::from_text("plugin/bitops.schema.yaml", text)
        .unwrap_or_else(|p| panic!("schema problems: {p:?}"))
}

fn official(name: &str) -> Schema {
    official_schema(name).expect("fixture parses")
}

fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Resolves `config` (YAML text) against `schema` with `vars` as the environment.
fn run(schema: &Schema, config: &str, vars: &[(&str, &str)], plugin: &str) -> Resolved {
    let file = SourceFile::new(CONFIG_NAME.into(), CONFIG_NAME.into(), config.into());
    let root = crate::yaml::parse(&file.text).expect("config parses");
    let tc = ToolConfig {
        root: root.as_ref(),
        file: Some(&file),
        display: CONFIG_NAME,
    };
    resolve(schema, &tc, &env(vars), plugin)
}

fn ok(schema: &Schema, config: &str, vars: &[(&str, &str)], plugin: &str) -> Resolved {
    let r = run(schema, config, vars, plugin);
    assert!(
        r.problems.is_empty(),
        "unexpected problems: {:#?}",
        r.problems
    );
    r
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn locations(problems: &[Problem]) -> Vec<(&'static str, String)> {
    problems
        .iter()
        .map(|p| (p.code, p.location().unwrap_or_default()))
        .collect()
}

#[test]
fn worked_example_without_overrides() {
    let r = ok(&schema(MY_TOOL_SCHEMA), MY_TOOL_CONFIG, &[], "my-tool");
    // Reference: `--config=prod.cfg --force --quiet --parallelism=4 site.yml apply`. Fixed:
    // the written `quiet: false` beats the default `true`, and the list `tags` is rendered.
    assert_eq!(
        r.cli_var,
        (
            "BITOPS_MY-TOOL_CLI".into(),
            "--config=prod.cfg --force --parallelism=4 --tag=web --tag=db site.yml apply".into()
        )
    );
    assert_eq!(
        r.cli_var_alias.as_ref().map(|(k, _)| k.as_str()),
        Some("BITOPS_MY_TOOL_CLI")
    );
    // Reference exports, except `MYTOOL_REGION`: the written `region: ""` now beats the
    // default `us-east-1`, and an empty value is not exported. `MYTOOL_SKIP_DEPLOY` is unset.
    assert_eq!(
        r.exports,
        pairs(&[
            ("MYTOOL_CONFIG", "prod.cfg"),
            ("BITOPS_MYTOOL_CONFIG", "prod.cfg"),
            ("MYTOOL_TAGS", "web db"),
            ("BITOPS_MYTOOL_TAGS", "web db"),
            ("BITOPS_MYTOOL_ACTION", "apply"),
            ("MYTOOL_DEPTH", "3"),
            ("BITOPS_MYTOOL_DEPTH", "3"),
        ])
    );
    assert_eq!(r.stack_action, "apply");
    let region = r
        .values
        .iter()
        .find(|v| v.0 == "my-tool.options.region")
        .unwrap();
    assert_eq!((region.1.as_deref(), region.2), (Some(""), Source::Config));
}

#[test]
fn worked_example_with_env_overrides() {
    let vars = [
        ("BITOPS_MY_TOOL_FORCE", "false"),
        ("BITOPS_MY_TOOL_PARALLELISM", "8"),
        ("BITOPS_MY_TOOL_STACK_ACTION", "destroy"),
        ("BITOPS_MY_TOOL_TAGS", "x"),
    ];
    let r = ok(&schema(MY_TOOL_SCHEMA), MY_TOOL_CONFIG, &vars, "my-tool");
    // Reference: `--config=prod.cfg --force=false --quiet --parallelism=8 site.yml destroy`.
    // Fixed: a boolean whose value is "false" adds nothing (not `--force=false`), `quiet: false`
    // beats its default, and the list override renders as `--tag=x`.
    assert_eq!(
        r.cli_var.1,
        "--config=prod.cfg --parallelism=8 --tag=x site.yml destroy"
    );
    let exports: BTreeMap<_, _> = r.exports.iter().cloned().collect();
    assert_eq!(
        exports["MYTOOL_TAGS"], "x",
        "override exported raw, not split"
    );
    assert_eq!(exports["BITOPS_MYTOOL_ACTION"], "destroy");
    assert_eq!(r.stack_action, "destroy");
    let force = r
        .values
        .iter()
        .find(|v| v.0 == "my-tool.cli.force")
        .unwrap();
    assert_eq!((force.1.as_deref(), force.2), (Some("false"), Source::Env));
}

#[test]
fn terraform_real_example() {
    let config = "\
terraform:
  cli:
    var-file: my-vars.tfvars
    targets: [aws_s3_bucket.a, module.b]
    backend-config: [KEY1=foo, KEY2=bar]
    stack-action: apply
  options:
    workspace: test
    skip-deploy: false
";
    let r = ok(&official("terraform"), config, &[], "terraform");
    // Reference: `--var-file=my-vars.tfvars apply`. Fixed: lists are rendered, and
    // backend-config honours `dash_type: "-"`. The official deploy.sh never reads this variable.
    assert_eq!(
        r.cli_var,
        (
            "BITOPS_TERRAFORM_CLI".into(),
            "--var-file=my-vars.tfvars --target=aws_s3_bucket.a --target=module.b -backend-config=KEY1=foo -backend-config=KEY2=bar apply".into()
        )
    );
    assert_eq!(r.cli_var_alias, None);
    // As in the reference, plus TERRAFORM_SKIP_DEPLOY=false: the written `false` is now a
    // value (deploy.sh only skips on "true").
    assert_eq!(
        r.exports,
        pairs(&[
            ("TF_VAR_FILE", "my-vars.tfvars"),
            ("BITOPS_TF_VAR_FILE", "my-vars.tfvars"),
            ("TF_TARGETS", "aws_s3_bucket.a module.b"),
            ("BITOPS_TF_TARGETS", "aws_s3_bucket.a module.b"),
            ("TERRAFORM_COMMAND", "apply"),
            ("BITOPS_TERRAFORM_COMMAND", "apply"),
            ("TERRAFORM_SKIP_DEPLOY", "false"),
            ("BITOPS_TERRAFORM_SKIP_DEPLOY", "false"),
            ("TERRAFORM_WORKSPACE", "test"),
            ("BITOPS_TERRAFORM_WORKSPACE", "test"),
        ])
    );
    assert_eq!(r.stack_action, "apply");
}

#[test]
fn ansible_real_examples() {
    let config = "\
ansible:
  cli:
    main-playbook: site.yaml
    extra-vars: \"@extra-vars.json\"
    flush-cache: true
    force-handlers: false
    forks: 20
    inventory: hosts.yaml
    skip-tags: ignore-this-tag
    tags: run-with-this-tag
    dryrun: true
  options:
    verbosity: 4
";
    let cases: &[(&str, &str, Vars, Vars)] = &[
        (
            config,
            "--flush-cache --skip-tags=ignore-this-tag --forks=20 --inventory=hosts.yaml --tags=run-with-this-tag --extra-vars=@extra-vars.json site.yaml --check",
            &[],
            &[("ANSIBLE_VERBOSITY", "4"), ("BITOPS_ANSIBLE_VERBOSITY", "4")],
        ),
        ("ansible: {}\n", "playbook.yaml", &[], &[]),
        ("", "playbook.yaml", &[], &[]),
        // Fixed: BitOps rendered `--check=false`, which ansible-playbook rejects.
        ("ansible: {}\n", "playbook.yaml", &[("BITOPS_ANSIBLE_DRYRUN", "false")], &[]),
        ("ansible: {}\n", "playbook.yaml --check", &[("BITOPS_ANSIBLE_DRYRUN", "true")], &[]),
        (
            "ansible: {options: {skip-deploy: true}}\n",
            "playbook.yaml",
            &[],
            &[("BITOPS_ANSIBLE_SKIP_DEPLOY", "true")],
        ),
    ];
    for (config, cli, vars, exports) in cases {
        let r = ok(&official("ansible"), config, vars, "ansible");
        assert_eq!(
            r.cli_var,
            ("BITOPS_ANSIBLE_CLI".into(), cli.to_string()),
            "config {config:?} env {vars:?}"
        );
        assert_eq!(r.exports, pairs(exports), "config {config:?}");
        assert_eq!(r.stack_action, "");
    }
}

#[test]
fn example_plugin_cli_variable_and_exports() {
    let config = "example-plugin:\n  cli:\n    name: World\n  options:\n    favorite_color: blue\n";
    let r = ok(&official("example-plugin"), config, &[], "example-plugin");
    assert_eq!(
        r.cli_var,
        ("BITOPS_EXAMPLE-PLUGIN_CLI".into(), "--name=World".into())
    );
    assert_eq!(
        r.cli_var_alias,
        Some(("BITOPS_EXAMPLE_PLUGIN_CLI".into(), "--name=World".into()))
    );
    assert_eq!(
        r.exports,
        pairs(&[
            ("EXAMPLE_PLUGIN_NAME", "World"),
            ("BITOPS_EXAMPLE_PLUGIN_NAME", "World"),
            ("EXAMPLE_PLUGIN_FAV_COLOR", "blue"),
            ("BITOPS_EXAMPLE_PLUGIN_FAV_COLOR", "blue"),
        ])
    );
    let env = r.env();
    assert_eq!(
        env.last().map(|(k, _)| k.as_str()),
        Some("BITOPS_EXAMPLE_PLUGIN_CLI")
    );
    assert_eq!(env.len(), 6);
    // Overrides use underscores: BITOPS_EXAMPLE_PLUGIN_<NAME>.
    let r = ok(
        &official("example-plugin"),
        config,
        &[("BITOPS_EXAMPLE_PLUGIN_NAME", "Env")],
        "example-plugin",
    );
    assert_eq!(r.cli_var.1, "--name=Env");
}

#[test]
fn cloudformation_positional_boolean_renders() {
    let base = "cloudformation:\n  options:\n    cfn-stack-name: s\n    cfn-files:\n      template-file: t.yaml\n";
    let with_false = "cloudformation:\n  cli:\n    validate-cfn: false\n  options:\n    cfn-stack-name: s\n    cfn-files:\n      template-file: t.yaml\n";
    let cases: &[(&str, Vars, &str, &str)] = &[
        // BitOps crashed here (TypeError joining a bool); Python str() of the default.
        (base, &[], "True deploy", "true"),
        // Reference: with the override set, `true deploy`.
        (
            base,
            &[("BITOPS_CLOUDFORMATION_VALIDATE_CFN", "true")],
            "true deploy",
            "true",
        ),
        // BitOps: the default won and validation still ran.
        (with_false, &[], "deploy", "false"),
        (
            base,
            &[("BITOPS_CLOUDFORMATION_STACK_ACTION", "delete")],
            "True delete",
            "true",
        ),
    ];
    for (config, vars, cli, validation) in cases {
        let r = ok(&official("cloudformation"), config, vars, "cloudformation");
        assert_eq!(
            r.cli_var,
            ("BITOPS_CLOUDFORMATION_CLI".into(), cli.to_string()),
            "env {vars:?}"
        );
        let exports: BTreeMap<_, _> = r.exports.iter().cloned().collect();
        assert_eq!(exports["CFN_TEMPLATE_VALIDATION"], *validation);
        assert_eq!(exports["BITOPS_CFN_TEMPLATE_VALIDATION"], *validation);
        assert_eq!(exports["BITOPS_CFN_TEMPLATE_FILENAME"], "t.yaml");
        assert_eq!(r.stack_action, cli.rsplit(' ').next().unwrap());
    }
}

#[test]
fn nested_options_use_the_leaf_override_name() {
    let s = official("cloudformation");
    let names: Vec<(&str, String)> = s
        .properties
        .iter()
        .filter(|p| !p.is_container())
        .map(|p| (p.config_key.as_str(), p.override_name()))
        .collect();
    assert!(names.contains(&(
        "cloudformation.options.cfn-files.template-file",
        "BITOPS_CLOUDFORMATION_TEMPLATE_FILE".into()
    )));
    assert!(names.contains(&(
        "cloudformation.options.cfn-files.parameters.template-param-flag",
        "BITOPS_CLOUDFORMATION_TEMPLATE_PARAM_FLAG".into()
    )));
    // The override satisfies `required` and beats nothing in the config.
    let config = "cloudformation:\n  options:\n    cfn-stack-name: s\n";
    let r = ok(
        &s,
        config,
        &[("BITOPS_CLOUDFORMATION_TEMPLATE_FILE", "from-env.yaml")],
        "cloudformation",
    );
    let exports: BTreeMap<_, _> = r.exports.iter().cloned().collect();
    assert_eq!(exports["CFN_TEMPLATE_FILENAME"], "from-env.yaml");
    let v = r
        .values
        .iter()
        .find(|v| v.0 == "cloudformation.options.cfn-files.template-file")
        .unwrap();
    assert_eq!(v.2, Source::Env);
}

#[test]
fn schema_walk_matches_bitops() {
    let s = official("cloudformation");
    let keys: Vec<(&str, &str, bool)> = s
        .properties
        .iter()
        .map(|p| (p.config_key.as_str(), p.section(), p.is_container()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("cloudformation.cli.validate-cfn", "cli", false),
            ("cloudformation.cli.stack-action", "cli", false),
            ("cloudformation.options.cfn-stack-name", "options", false),
            ("cloudformation.options.skip-deploy", "options", false),
            ("cloudformation.options.s3bucket", "options", false),
            ("cloudformation.options.s3prefix", "options", false),
            ("cloudformation.options.capabilities", "options", false),
            ("cloudformation.options.cfn-files", "options", true),
            (
                "cloudformation.options.cfn-files.template-file",
                "options",
                false
            ),
            (
                "cloudformation.options.cfn-files.parameters",
                "options",
                true
            ),
            (
                "cloudformation.options.cfn-files.parameters.template-param-flag",
                "options",
                false
            ),
            (
                "cloudformation.options.cfn-files.parameters.template-param-file",
                "options",
                false
            ),
        ]
    );
    let odd = schema(
        "p:\n  type: object\n  properties:\n    cli:\n      properties:\n        properties-file: {type: string}\n        \
         empty: {}\n        bare:\n        description: {type: string}\n        p: {type: string}\n    plugins:\n      \
         type: object\n      properties:\n        s3: {type: string, export_env: S3}\n  extra: {type: string}\n",
    );
    let got: Vec<(&str, &str, Option<&str>)> = odd
        .properties
        .iter()
        .map(|p| (p.config_key.as_str(), p.section(), p.kind.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            // BitOps removed the substring `.properties`, making this `p.cli-file`.
            ("p.cli.properties-file", "cli", Some("string")),
            // No attributes: an object that does nothing, as in BitOps.
            ("p.cli.empty", "cli", Some("object")),
            ("p.cli.bare", "cli", Some("object")),
            // `description` and the root key `p` are reserved: never properties.
            ("p.plugins", "plugins", Some("object")),
            ("p.plugins.s3", "plugins", Some("string")),
            ("p.extra", "extra", Some("string")),
        ]
    );
    let r = ok(&odd, "p:\n  plugins:\n    s3: bucket\n", &[], "p");
    assert_eq!(
        r.exports,
        pairs(&[("S3", "bucket"), ("BITOPS_S3", "bucket")])
    );
    assert_eq!(r.cli_var, ("BITOPS_P_CLI".into(), String::new()));
}

#[test]
fn schema_problems_are_located() {
    let text = "t:\n  properties:\n    cli:\n      properties:\n        a:\n          type: string\n          paramter: a\n";
    let problems = Schema::from_text("plugin/bitops.schema.yaml", text).unwrap_err();
    assert_eq!(
        locations(&problems),
        vec![(
            "bitops::plugin::schema",
            "plugin/bitops.schema.yaml:7".into()
        )]
    );
    assert_eq!(
        problems[0].help.as_deref(),
        Some("did you mean `parameter`?")
    );
    for bad in ["", "- a\n", "t: [1]\n"] {
        assert!(Schema::from_text("s", bad).is_err(), "{bad:?}");
    }
    assert!(Schema::from_text("s", "t:\n")
        .unwrap()
        .properties
        .is_empty());
}

#[test]
fn explicit_config_values_beat_truthy_defaults() {
    let s = schema(
        "t:\n  properties:\n    options:\n      properties:\n        \
         b: {type: boolean, default: true, export_env: B}\n        \
         i: {type: int, default: 5, export_env: I}\n        \
         s: {type: string, default: x, export_env: S}\n        \
         l: {type: list, default: [a], export_env: L}\n",
    );
    let cases: &[(&str, Vars)] = &[
        (
            "t: {options: {b: false, i: 0, s: '', l: []}}",
            &[("B", "false"), ("I", "0"), ("L", "")],
        ),
        (
            "t: {options: {b: 'false', i: '0', s: 'None'}}",
            &[("B", "false"), ("I", "0"), ("L", "a")],
        ),
        (
            "t: {options: {b: ~, i: ~, s: ~, l: ~}}",
            &[("B", "true"), ("I", "5"), ("S", "x"), ("L", "a")],
        ),
        (
            "t: {options: {b: no, i: 7.9, s: 12, l: 'p  q'}}",
            &[("B", "false"), ("I", "7"), ("S", "12"), ("L", "p q")],
        ),
        (
            "t: {options: {b: [x], i: ' -1_0 ', s: [1, a], l: [1, true]}}",
            &[
                ("B", "true"),
                ("I", "-10"),
                ("S", "[1, 'a']"),
                ("L", "1 True"),
            ],
        ),
    ];
    for (config, want) in cases {
        let r = ok(&s, config, &[], "t");
        let plain: Vec<(String, String)> = r
            .exports
            .iter()
            .filter(|(k, _)| !k.starts_with("BITOPS_"))
            .cloned()
            .collect();
        assert_eq!(plain, pairs(want), "config {config:?}");
    }
}

#[test]
fn env_overrides_are_raw_and_win_even_when_empty() {
    let s = schema("t:\n  properties:\n    cli:\n      properties:\n        v: {type: string, parameter: v, default: d, export_env: V}\n");
    let cases: &[(Vars, &str, Vars)] = &[
        (
            &[],
            "--v=config",
            &[("V", "config"), ("BITOPS_V", "config")],
        ),
        (&[("BITOPS_T_V", "")], "", &[]),
        (&[("BITOPS_T_V", "None")], "--v=None", &[]),
        (
            &[("BITOPS_T_V", " a b ")],
            "--v= a b ",
            &[("V", " a b "), ("BITOPS_V", " a b ")],
        ),
    ];
    for (vars, cli, exports) in cases {
        let r = ok(&s, "t: {cli: {v: config}}", vars, "t");
        assert_eq!(r.cli_var.1, *cli, "env {vars:?}");
        assert_eq!(r.exports, pairs(exports), "env {vars:?}");
    }
    let r = ok(&s, "", &[], "t");
    assert_eq!(
        (r.cli_var.1.as_str(), r.values[0].2),
        ("--v=d", Source::Default)
    );
}

#[test]
fn cli_rendering_rules() {
    let s = schema(
        "t:\n  properties:\n    cli:\n      properties:\n        \
         a: {type: bool, parameter: a, dash_type: '-'}\n        \
         n: {type: int, parameter: n}\n        \
         z: {type: integer, parameter: z}\n        \
         S: {type: String, parameter: S}\n        \
         l: {type: list}\n        \
         o: {type: object}\n        \
         f: {type: boolean, parameter: f}\n",
    );
    let r = ok(
        &s,
        "t: {cli: {a: on, n: 3, z: 0, S: up, l: [x, y], f: 'no'}}",
        &[],
        "t",
    );
    // `int` and `String` are not in BitOps' case-sensitive whitelist; `0` is falsy; `'no'` is
    // a false boolean.
    assert_eq!(r.cli_var.1, "-a x y");
    let r = ok(
        &s,
        "",
        &[
            ("BITOPS_T_F", "yes"),
            ("BITOPS_T_Z", "12"),
            ("BITOPS_T_L", "p q"),
        ],
        "t",
    );
    assert_eq!(r.cli_var.1, "--z=12 p q --f");
}

#[test]
fn cli_variable_falls_back_to_the_plugin_name() {
    let s = schema("azure:\n  properties:\n    options:\n      properties:\n        foo: {type: string, default: foo, export_env: AZURE_FOO}\n");
    let r = ok(&s, "", &[], "my-az");
    assert_eq!(r.cli_var, ("BITOPS_MY-AZ_CLI".into(), String::new()));
    assert_eq!(
        r.cli_var_alias,
        Some(("BITOPS_MY_AZ_CLI".into(), String::new()))
    );
    assert_eq!(r.stack_action, "");
}

#[test]
fn required_missing_and_unknown_keys_are_located() {
    let config = "\
# deployment config
example-plugin:
  cli:
    nmae: World
  options:
    favourite_color: blue
    name: x
tf: {}
";
    let r = run(&official("example-plugin"), config, &[], "example-plugin");
    let got = locations(&r.problems);
    assert_eq!(
        got,
        vec![
            ("bitops::plugin::required", format!("{CONFIG_NAME}:3")),
            ("bitops::plugin::unknown_option", format!("{CONFIG_NAME}:4")),
            ("bitops::plugin::unknown_option", format!("{CONFIG_NAME}:6")),
            ("bitops::plugin::unknown_option", format!("{CONFIG_NAME}:7")),
            ("bitops::plugin::unknown_option", format!("{CONFIG_NAME}:8")),
        ]
    );
    let help: Vec<&str> = r
        .problems
        .iter()
        .map(|p| p.help.as_deref().unwrap_or(""))
        .collect();
    assert!(
        help[0].contains("example-plugin:\n    cli:\n      name: <value>"),
        "{}",
        help[0]
    );
    assert!(help[0].contains("BITOPS_EXAMPLE_PLUGIN_NAME"));
    assert!(r.problems[0].message.contains("`example-plugin.cli.name`"));
    assert!(r.problems[0].message.contains(CONFIG_NAME));
    assert_eq!(help[1], "did you mean `name`?");
    assert_eq!(help[2], "did you mean `favorite_color`?");
    assert_eq!(help[3], "`name` belongs under `example-plugin.cli`");
    assert!(help[4].contains("`example-plugin:`"));

    // Missing everywhere: located at the file's start, one problem per property.
    let r = run(&official("cloudformation"), "", &[], "cloudformation");
    assert_eq!(
        locations(&r.problems),
        vec![
            ("bitops::plugin::required", format!("{CONFIG_NAME}:1")),
            ("bitops::plugin::required", format!("{CONFIG_NAME}:1")),
        ]
    );
    // An empty value is missing; a written `false` is not.
    let r = run(
        &official("example-plugin"),
        "example-plugin:\n  cli:\n    name: ''\n",
        &[],
        "x",
    );
    assert_eq!(
        locations(&r.problems),
        vec![("bitops::plugin::required", format!("{CONFIG_NAME}:3"))]
    );
    let s = schema("t:\n  properties:\n    options:\n      properties:\n        b: {type: boolean, required: true}\n        c: {type: string, required: 'true'}\n");
    assert!(run(&s, "t: {options: {b: false}}", &[], "t")
        .problems
        .is_empty());
    // Without a file, the problem still names the file and the key.
    let tc = ToolConfig::missing("e/t/bitops.config.yaml");
    let r = resolve(&s, &tc, &env(&[]), "t");
    assert_eq!(r.problems.len(), 1);
    assert!(
        r.problems[0].message.contains("`t.options.b`")
            && r.problems[0].message.contains("e/t/bitops.config.yaml")
    );
}

#[test]
fn conversion_problems_are_located() {
    let s = schema(
        "t:\n  properties:\n    options:\n      properties:\n        \
         i: {type: int}\n        l: {type: list}\n        u: {type: number}\n        n: {export_env: N, default: d}\n        g: {type: object}\n",
    );
    let config = "t:\n  options:\n    i: abc\n    l: 5\n    u: 1\n    n: x\n    g: scalar\n";
    let r = run(&s, config, &[], "t");
    assert_eq!(
        locations(&r.problems),
        vec![
            ("bitops::plugin::value", format!("{CONFIG_NAME}:3")),
            ("bitops::plugin::value", format!("{CONFIG_NAME}:4")),
            ("bitops::plugin::value", format!("{CONFIG_NAME}:5")),
            ("bitops::plugin::value", format!("{CONFIG_NAME}:6")),
            ("bitops::plugin::value", format!("{CONFIG_NAME}:7")),
        ]
    );
    assert!(r.problems[0]
        .message
        .contains("`t.options.i` must be a whole number"));
    // Without a value, a property without a type just takes its default.
    let r = ok(&s, "", &[], "t");
    assert_eq!(r.exports, pairs(&[("N", "d"), ("BITOPS_N", "d")]));
    // A non-mapping root is reported too.
    let r = run(&s, "- a\n", &[], "t");
    assert_eq!(
        locations(&r.problems),
        vec![("bitops::plugin::value", format!("{CONFIG_NAME}:1"))]
    );
}

#[test]
fn conversions() {
    let node = |y: &str| {
        crate::yaml::parse(&format!("k: {y}\n"))
            .unwrap()
            .unwrap()
            .get("k")
            .unwrap()
            .clone()
    };
    let cases: &[(&str, &str, Result<Val, ConvertError>)] = &[
        ("Integer", "'42'", Ok(Val::Int(42))),
        ("int", "true", Ok(Val::Int(1))),
        ("int", "-3.7", Ok(Val::Int(-3))),
        ("int", "'4.5'", Err(ConvertError::NotInt)),
        ("int", "[1]", Err(ConvertError::NotInt)),
        ("bool", "'False'", Ok(Val::Bool(false))),
        ("boolean", "' off '", Ok(Val::Bool(false))),
        ("boolean", "'yes'", Ok(Val::Bool(true))),
        ("boolean", "0", Ok(Val::Bool(false))),
        ("string", "yes", Ok(Val::Str("True".into()))),
        ("STRING", "1.50", Ok(Val::Str("1.5".into()))),
        ("stringlist", "a", Ok(Val::List(vec![node("a")]))),
        ("list", "{a: 1}", Err(ConvertError::NotList)),
        (
            "float",
            "1.5",
            Err(ConvertError::Unsupported("float".into())),
        ),
        ("float", "~", Ok(Val::None)),
    ];
    for (kind, yaml, want) in cases {
        let got = convert(Some(kind), &node(yaml));
        match (&got, want) {
            // Spans differ between separately parsed nodes; compare the rendering.
            (Ok(Val::List(a)), Ok(Val::List(b))) => assert_eq!(
                a.iter().map(|n| n.to_python_str()).collect::<Vec<_>>(),
                b.iter().map(|n| n.to_python_str()).collect::<Vec<_>>()
            ),
            _ => assert_eq!(&got, want, "{kind} {yaml}"),
        }
    }
    assert_eq!(convert(None, &node("x")), Err(ConvertError::NoType));
    for (s, want) in [
        ("7", Some(7)),
        (" +1_000\n", Some(1000)),
        ("1__0", None),
        ("_1", None),
        ("0x1", None),
        ("", None),
    ] {
        assert_eq!(python_int(s), want, "{s:?}");
    }
}

#[test]
fn plugin_config_flags_and_defaults() {
    let cases: &[(&str, bool)] = &[
        ("false", false),
        ("no", false),
        ("\"false\"", false),
        ("'No'", false),
        ("\"off\"", false),
        ("\"0\"", false),
        ("0", false),
        ("\"\"", false),
        ("true", true),
        ("\"true\"", true),
        ("\"anything\"", true),
        ("~", true),
        ("1", true),
    ];
    for (value, want) in cases {
        let text = format!(
            "plugin:\n  deployment:\n    core_schema_parsing: {value}\n    before_hook_scripts: {value}\n    after_hook_scripts: {value}\n"
        );
        let c = parse_config(&text).unwrap();
        assert_eq!(
            (
                c.core_schema_parsing,
                c.before_hook_scripts,
                c.after_hook_scripts
            ),
            (*want, *want, *want),
            "{value}"
        );
    }
    for empty in ["", "plugin:\n", "plugin:\n  install: {}\n", "other: 1\n"] {
        assert_eq!(
            parse_config(empty).unwrap(),
            PluginConfig::default(),
            "{empty:?}"
        );
    }
    let c = parse_config(
        "plugin:\n  install:\n    language: sh\n    install_script: setup.sh\n    dependencies: [aws, kubectl]\n  \
         deployment:\n    language: python3\n    deployment_script: run.py\n",
    )
    .unwrap();
    assert_eq!(
        (
            c.install_language.as_str(),
            c.install_script.as_str(),
            c.dependencies.clone(),
            c.language.as_str(),
            c.deployment_script.as_str()
        ),
        (
            "sh",
            "setup.sh",
            vec!["aws".to_string(), "kubectl".to_string()],
            "python3",
            "run.py"
        )
    );
    let problems =
        parse_config("plugin:\n  deployment:\n    language: [bash]\n    deployment_script: 3\n")
            .unwrap_err();
    assert_eq!(
        locations(&problems),
        vec![
            ("bitops::plugin::config", "plugin.config.yaml:4".into()),
            ("bitops::plugin::config", "plugin.config.yaml:3".into())
        ]
    );
}

fn parse_config(text: &str) -> Result<PluginConfig, Vec<Problem>> {
    let file = SourceFile::new(
        PLUGIN_CONFIG_FILE.into(),
        PLUGIN_CONFIG_FILE.into(),
        text.into(),
    );
    let root = crate::yaml::parse(&file.text).unwrap();
    let mut problems = Vec::new();
    let c = plugin_config::parse(&file, root.as_ref(), &mut problems);
    if problems.is_empty() {
        Ok(c)
    } else {
        Err(problems)
    }
}

#[test]
fn load_plugin_reads_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("example-plugin");
    std::fs::create_dir(&dir).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();

    // No schema with core parsing on: BitOps' exit-2 case. No deploy script either.
    let mut diags = Diagnostics::default();
    assert!(load_plugin(&dir, "example-plugin", &mut diags).is_none());
    let codes: Vec<&str> = diags.problems().iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        vec![
            "bitops::plugin::missing_schema",
            "bitops::plugin::missing_script"
        ]
    );

    write(SCHEMA_FILE, OFFICIAL_SCHEMAS[3].1);
    write("deploy.sh", "echo hi\n");
    let mut diags = Diagnostics::default();
    let p = load_plugin(&dir, "example-plugin", &mut diags).expect("loads");
    assert!(diags.is_empty());
    assert_eq!(p.config, PluginConfig::default());
    assert_eq!(
        p.schema.as_ref().map(|s| s.root_key.as_str()),
        Some("example-plugin")
    );
    let script = dir.join("deploy.sh").to_string_lossy().into_owned();
    assert_eq!(
        deploy_argv(&p, "apply"),
        vec!["bash".to_string(), script.clone(), "apply".into()]
    );
    assert_eq!(
        deploy_argv(&p, ""),
        vec!["bash".to_string(), script, String::new()]
    );

    // Core parsing off: no schema needed, none read.
    write(PLUGIN_CONFIG_FILE, "plugin:\n  deployment:\n    core_schema_parsing: 'false'\n    deployment_script: /run.sh\n");
    std::fs::remove_file(dir.join(SCHEMA_FILE)).unwrap();
    let mut diags = Diagnostics::default();
    assert!(load_plugin(&dir, "example-plugin", &mut diags).is_none());
    assert_eq!(diags.problems()[0].code, "bitops::plugin::missing_script");
    write("run.sh", "echo hi\n");
    let mut diags = Diagnostics::default();
    let p = load_plugin(&dir, "example-plugin", &mut diags).expect("loads");
    assert!(p.schema.is_none());
    assert_eq!(check_deploy_script(&p).unwrap(), dir.join("run.sh"));

    // Malformed YAML is located in the file.
    write(PLUGIN_CONFIG_FILE, "plugin:\n  deployment: [\n");
    let mut diags = Diagnostics::default();
    assert!(load_plugin(&dir, "example-plugin", &mut diags).is_none());
    assert_eq!(diags.problems()[0].code, "bitops::config::syntax");
    assert!(diags.problems()[0].loc.is_some());

    let mut diags = Diagnostics::default();
    assert!(load_plugin(&tmp.path().join("nope"), "nope", &mut diags).is_none());
    assert_eq!(diags.problems()[0].code, "bitops::plugin::not_found");
}

#[test]
fn official_fixtures_parse_and_deviations_are_documented() {
    for (name, _) in OFFICIAL_SCHEMAS {
        let s = official(name);
        assert_eq!(s.root_key, *name);
        assert!(s.properties.iter().all(|p| p.path[0] == *name));
    }
    assert!(DEVIATIONS.len() >= 10);
    assert!(DEVIATIONS
        .iter()
        .all(|(what, why)| !what.is_empty() && !why.is_empty()));
}
