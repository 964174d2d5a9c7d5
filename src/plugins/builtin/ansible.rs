//! The built-in ansible plugin: the official plugin's settings (reference §6.2), run as
//! `ansible-playbook <BITOPS_ANSIBLE_CLI as arguments>` in the tool folder, so inventory,
//! `@extra-vars` files and the playbook are relative to it, as in BitOps.
//!
//! The arguments are those of BitOps' `BITOPS_ANSIBLE_CLI` (schema order, `--flag` for a true
//! boolean, `--param=value`, the playbook positional), but each value is one argument: BitOps
//! expanded the variable unquoted, so a value with a space (`extra-vars: "a=1 b=2"`) broke into
//! several words. A dry run adds `--check --diff`. Ansible has no destroy: a destroy skips the
//! deployment and says why.

use std::sync::OnceLock;

use crate::diagnostic::Problem;
use crate::plugins::bitops_format::Schema;
use crate::plugins::step::{Action, Capture, Context, DryRunTool, Prepared, Step};

use super::common::{schema, Settings};

static SCHEMA: OnceLock<Schema> = OnceLock::new();
const SCHEMA_TEXT: &str = include_str!("../bitops_format/fixtures/ansible.schema.yaml");

pub(super) fn ansible_schema() -> &'static Schema {
    schema(&SCHEMA, "ansible.schema.yaml", SCHEMA_TEXT)
}

pub(super) fn prepare(ctx: &Context<'_>) -> Result<Prepared, Vec<Problem>> {
    let schema = ansible_schema();
    let s = Settings::for_context(schema, ctx)?;
    let mut p = s.prepared("ansible-playbook");
    // The export of `skip-deploy` is BITOPS_ANSIBLE_SKIP_DEPLOY, which deploy.sh tested; it is
    // also the override name, so the resolver has already applied it.
    if s.bool("options.skip-deploy") {
        p.skip = Some("ansible skip-deploy is set".into());
        return Ok(p);
    }
    if ctx.action == Action::Destroy {
        p.skip = Some(
            "ansible has no destroy action: not run by `destroy`; nothing was destroyed".into(),
        );
        return Ok(p);
    }

    let mut argv = vec!["ansible-playbook".to_string()];
    for prop in schema
        .properties
        .iter()
        .filter(|p| p.is_cli() && !p.is_container())
    {
        let key = prop
            .config_key
            .split_once('.')
            .map_or(prop.config_key.as_str(), |(_, k)| k);
        let boolean = matches!(prop.kind.as_deref(), Some("boolean" | "bool"));
        match (&prop.parameter, boolean) {
            (Some(param), true) if s.bool(key) => argv.push(format!("--{param}")),
            (_, true) => {}
            (Some(param), false) => argv.extend(s.str(key).map(|v| format!("--{param}={v}"))),
            (None, false) => argv.extend(s.str(key)),
        }
    }
    let mut step = Step::new(argv, &ctx.tool_dir);
    if ctx.action == Action::DryRun {
        if !step.argv.iter().any(|a| a == "--check") {
            step.argv.push("--check".into());
        }
        step.argv.push("--diff".into());
        step.capture = Capture::DryRunSummary(DryRunTool::Ansible);
    }
    p.steps.push(step);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{argvs, ctx_in, Case, Fixture};
    use super::*;

    const FULL: &str = "ansible:\n  cli:\n    main-playbook: site.yaml\n    extra-vars: \"@extra-vars.json\"\n    flush-cache: true\n    force-handlers: false\n    forks: 20\n    inventory: hosts.yaml\n    skip-tags: ignore-this-tag\n    tags: run-with-this-tag\n    dryrun: true\n  options:\n    verbosity: 4\n";

    /// (config, env, action, expected commands)
    const CASES: &[Case] = &[
        ("", &[], Action::Deploy, &["ansible-playbook playbook.yaml"]),
        ("ansible: {}", &[], Action::Deploy, &["ansible-playbook playbook.yaml"]),
        (
            FULL,
            &[],
            Action::Deploy,
            &["ansible-playbook --flush-cache --skip-tags=ignore-this-tag --forks=20 --inventory=hosts.yaml --tags=run-with-this-tag --extra-vars=@extra-vars.json site.yaml --check"],
        ),
        // An override `false` removes the flag (BitOps rendered `--check=false`).
        (
            FULL,
            &[("BITOPS_ANSIBLE_DRYRUN", "false"), ("BITOPS_ANSIBLE_FORKS", "5"), ("BITOPS_ANSIBLE_MAIN_PLAYBOOK", "other.yml")],
            Action::Deploy,
            &["ansible-playbook --flush-cache --skip-tags=ignore-this-tag --forks=5 --inventory=hosts.yaml --tags=run-with-this-tag --extra-vars=@extra-vars.json other.yml"],
        ),
        ("", &[("BITOPS_ANSIBLE_DRYRUN", "true")], Action::Deploy, &["ansible-playbook playbook.yaml --check"]),
        (
            "ansible: {cli: {extra-vars: 'a=1 b=2', inventory: inv.ini}}",
            &[],
            Action::DryRun,
            &["ansible-playbook --inventory=inv.ini '--extra-vars=a=1 b=2' playbook.yaml --check --diff"],
        ),
        (FULL, &[], Action::DryRun, &["ansible-playbook --flush-cache --skip-tags=ignore-this-tag --forks=20 --inventory=hosts.yaml --tags=run-with-this-tag --extra-vars=@extra-vars.json site.yaml --check --diff"]),
    ];

    #[test]
    fn command_lines() {
        for (i, (config, env, action, want)) in CASES.iter().enumerate() {
            let fx = Fixture::new(config, env);
            let p = prepare(&ctx_in(&fx, "ansible", *action))
                .unwrap_or_else(|e| panic!("case {i}: {e:?}"));
            assert_eq!(argvs(&p), *want, "case {i}");
            assert_eq!(p.steps[0].cwd, fx.tool_dir());
            assert_eq!(p.tools, ["ansible-playbook"]);
        }
    }

    #[test]
    fn exports_match_bitops() {
        let fx = Fixture::new(FULL, &[]);
        let p = prepare(&ctx_in(&fx, "ansible", Action::Deploy)).unwrap();
        assert_eq!(p.exports["ANSIBLE_VERBOSITY"], "4");
        assert_eq!(p.exports["BITOPS_ANSIBLE_VERBOSITY"], "4");
        assert_eq!(
            p.exports["BITOPS_ANSIBLE_CLI"],
            "--flush-cache --skip-tags=ignore-this-tag --forks=20 --inventory=hosts.yaml --tags=run-with-this-tag --extra-vars=@extra-vars.json site.yaml --check"
        );
        let fx = Fixture::new("", &[("BITOPS_ANSIBLE_VERBOSITY", "2")]);
        let p = prepare(&ctx_in(&fx, "ansible", Action::Deploy)).unwrap();
        assert_eq!(p.exports["ANSIBLE_VERBOSITY"], "2");
        assert_eq!(p.exports["BITOPS_ANSIBLE_CLI"], "playbook.yaml");
    }

    #[test]
    fn dry_run_capture_skip_and_destroy() {
        let fx = Fixture::new("", &[]);
        let d = prepare(&ctx_in(&fx, "ansible", Action::DryRun)).unwrap();
        assert_eq!(
            d.steps[0].capture,
            Capture::DryRunSummary(DryRunTool::Ansible)
        );
        let x = prepare(&ctx_in(&fx, "ansible", Action::Destroy)).unwrap();
        assert!(x.steps.is_empty() && x.skip.as_deref().unwrap().contains("no destroy"));
        for (config, env) in [
            ("ansible: {options: {skip-deploy: true}}", &[][..]),
            ("", &[("BITOPS_ANSIBLE_SKIP_DEPLOY", "true")][..]),
        ] {
            let fx = Fixture::new(config, env);
            let p = prepare(&ctx_in(&fx, "ansible", Action::Deploy)).unwrap();
            assert!(p.skip.is_some() && p.steps.is_empty());
            assert_eq!(p.exports["BITOPS_ANSIBLE_SKIP_DEPLOY"], "true");
        }
        let fx = Fixture::new(
            "ansible: {options: {skip-deploy: true}}",
            &[("BITOPS_ANSIBLE_SKIP_DEPLOY", "false")],
        );
        assert!(prepare(&ctx_in(&fx, "ansible", Action::Deploy))
            .unwrap()
            .skip
            .is_none());
    }

    #[test]
    fn typos_are_problems() {
        let fx = Fixture::new("ansible: {cli: {extra_vars: x}}", &[]);
        let e = prepare(&ctx_in(&fx, "ansible", Action::Deploy)).unwrap_err();
        assert!(
            e[0].help.as_deref().unwrap_or("").contains("extra-vars"),
            "{e:?}"
        );
    }
}
