//! Where bitops deliberately differs from BitOps v2, and why. `docs/compatibility.md` is
//! rendered from these lists and the plugin layers' own (a test keeps it current), so the
//! document cannot drift from the code.

/// Engine-level deviations: (what bitops does, what BitOps did and why we differ).
pub const DEVIATIONS: &[(&str, &str)] = &[
    (
        "Each deployment runs with its own environment: the user's variables plus its own BitOps variables and exports.",
        "BitOps mutated one process environment and never reset it, so a value exported by one deployment (a workspace, targets, `TERRAFORM_SKIP_DEPLOY=true`) leaked into the next one of the same plugin (reference §4.8). Deployments now run in parallel, so leaking would also be nondeterministic.",
    ),
    (
        "`BITOPS_FAST_FAIL` (and every boolean env var) is read as a boolean: `false`, `no`, `off`, `0` and the empty string are false.",
        "BitOps used the raw string's truthiness, so `BITOPS_FAST_FAIL=false` kept fail-fast on.",
    ),
    (
        "A failed run exits non-zero whatever `fail_fast` says (1 when a deployment failed).",
        "BitOps exited 0 after failures when fail-fast was off (bitovi/bitops#375).",
    ),
    (
        "Unknown keys in `bitops:` sections and in deployment entries are errors with a did-you-mean; all config errors of a repo are reported in one run (exit 2) and nothing runs.",
        "BitOps silently ignored unknown keys (#117), so a typo such as `fail_fsat: false` had no effect.",
    ),
    (
        "A deployment listed in `bitops.deployments` whose folder exists neither in the environment nor in `_default` is an error.",
        "BitOps logged a warning and skipped it, so a renamed folder silently deployed nothing.",
    ),
    (
        "Without any `deployments` list, an environment's tool folders run in the order cloudformation, terraform, helm, ansible, then other folders naming a known plugin, alphabetically.",
        "BitOps exited 1 with `No \"deployments\" config found`; its docs promised folder discovery that was never implemented.",
    ),
    (
        "A deployment entry without `plugin` uses the plugin named like the deployment.",
        "BitOps crashed with a traceback.",
    ),
    (
        "Several environments per run (`-e` patterns, comma lists in `BITOPS_ENVIRONMENT`), with dependencies between them; each deployment sees `BITOPS_ENVIRONMENT` (and `ENVIRONMENT`) set to its own environment.",
        "BitOps ran exactly one environment per invocation and did not re-export `BITOPS_ENVIRONMENT` when only `ENVIRONMENT` was given, which broke plugins that check it.",
    ),
    (
        "`timeout` (seconds or `15m`) is enforced per deployment: SIGTERM to its process group, a grace period, then SIGKILL.",
        "BitOps logged `BITOPS_TIMEOUT` and never enforced it. There is no default timeout, so repos that set `timeout: 600` for BitOps now get a real 10-minute limit; remove or raise it if deployments take longer.",
    ),
    (
        "A failing before- or after-hook fails its deployment (exit code kept); after-deploy hooks do not run when the plugin failed.",
        "BitOps, with fail-fast off, only warned about a failing hook and went on, and ran after-hooks after a failed deploy; with deployments running in parallel a silently ignored failure would let dependents start on a broken base.",
    ),
    (
        "The deploy script runs with the deployment's tool folder as working directory.",
        "BitOps kept its own working directory (`/opt/bitops`); the official plugins `cd` into the tool folder themselves, so they are unaffected.",
    ),
    (
        "`BITOPS_DIR` and `BITOPS_SCRIPTS_DIR` point into the state folder (`.bitops`); `BITOPS_PLUGINS_DIR` is a folder of the run (`.bitops/runs/<run-id>/plugins/`, with BitOps' trailing slash) holding a link named after every configured plugin, local ones included, to its real folder; `BITOPS_INSTALLED_PLUGIN_DIR` is the plugin's real folder.",
        "BitOps hard-coded `/opt/bitops/...` inside its image, where every plugin was installed under `installed_plugins/`; bitops also runs outside a container and reads local plugins in place, so the official helm and cloudformation plugins' checks for `$BITOPS_PLUGINS_DIR/aws` (and helm's `${BITOPS_PLUGINS_DIR%/*}/aws`) need the links.",
    ),
    (
        "`BITOPS_PLUGIN_DIR` is taken from the environment when set, else from `plugins.plugin_dir`, else it is the deploying plugin's own folder.",
        "BitOps v2.6 exported its `plugin_dir` setting (default `/opt/bitops/scripts/plugins/`, BitOps' own Python code) and earlier 2.x versions the plugin's folder; the official helm and cloudformation plugins read their scripts from `$BITOPS_PLUGIN_DIR/scripts`, which only the plugin's folder satisfies.",
    ),
    (
        "`BITOPS_KUBE_CONFIG_FILE` is `.kube/config` in the run folder (shared by the run's deployments), never in a working copy or the repo; `bitops plan` shows it as `<run>/.kube/config`.",
        "BitOps put it in its temporary copy of the repo; with `--in-place` that would be the repo itself, and a plan could not show where it would be.",
    ),
    (
        "Plugins can be read from a local folder at deploy time (`source: ./_plugins/x`) and git plugins are fetched by `bitops plugins install`, honouring `source_tag` and `source_branch`. Plugins' install scripts run only with `bitops plugins install --run-install-scripts`, never at deploy time.",
        "BitOps installed plugins and ran their install scripts only at image build, and ignored `source_tag`; on a laptop or CI runner, installing tools system-wide is the user's decision.",
    ),
    (
        "A BitOps-format plugin with core schema parsing but no tool-level `bitops.config.yaml` runs with the schema defaults.",
        "BitOps exited 2 (`Schema and Configuration files are required`); a missing file now means the same as an empty one.",
    ),
    (
        "`_default` is merged into each environment's working copy: files only in `_default` are copied; on a clash the environment wins, except YAML files, which are deep-merged.",
        "BitOps core performed no merge (only the helm plugin copied some chart folders); its docs described a merge that was never implemented.",
    ),
    (
        "The working copy (`$BITOPS_TEMPDIR`, `<state>/work`) is kept between runs and refreshed from the repo at each: files the tools made there (local terraform state, `.terraform/`) survive; `--fresh` starts an environment's folder clean.",
        "BitOps copied the whole repo into a new temp folder at every run, so local terraform state started empty each time: `destroy` after `deploy` destroyed nothing and reported success. The layout is the repo's, so relative paths (`../../scripts/x.sh`, other environments) resolve as before.",
    ),
    (
        "A top-level folder that has neither a `bitops.config.yaml` nor a folder named after a plugin or a repo-level deployment is not an environment (it is copied into the working copy like a `_`-folder).",
        "BitOps ran whichever folder `BITOPS_ENVIRONMENT` named; with a repo-level `deployments` list, selecting every environment would turn `scripts/` or `modules/` into an environment that fails.",
    ),
    (
        "A FIFO, socket or device anywhere in the repo, a symlink leading out of it, a dangling symlink or a symlink loop is a located error before anything runs (`plan` included).",
        "BitOps' copy blocked forever on a FIFO and followed symlinks wherever they led, copying their content into the run.",
    ),
    (
        "`logging.masks` are applied to the terminal output, the per-deployment log files and the outputs shown in reports.",
        "BitOps masked only its own stdout.",
    ),
    (
        "`bitops plan --run` runs before-deploy hooks but not after-deploy hooks.",
        "BitOps had no whole-repo dry run (#102); after-deploy hooks typically check or announce a deployment that a dry run did not make.",
    ),
    (
        "A deployment whose deploy only planned (terraform's default `stack-action: plan`, or a BitOps-format plugin whose stack action is its plan word) is reported `planned only` (report status `planned`, JUnit `<skipped>`), with the config line that makes it apply; one skipped by its config or because its plugin has no action for the command is reported `skipped` (report status `not_applicable`) with the reason. Neither fails the run.",
        "BitOps reported both as a successful deployment, so a repo on the default `plan` looked deployed while nothing was ever applied, and a destroy that did not run looked like a teardown.",
    ),
    (
        "`run_mode: validate_config` / `BITOPS_MODE=validate_config` (and `settings_test`) validate everything, print the plan and exit 0 without running anything.",
        "BitOps printed its settings or the deployment config and exited 0; the plan shows the same and more.",
    ),
    (
        "A key written twice in one mapping of a `bitops.config.yaml` (any level) is an error naming both lines; in repo- and environment-level files every top-level key other than `bitops` (and the built-in tool roots) is an error.",
        "PyYAML kept the last value of a duplicate silently and BitOps ignored other top-level keys, so a `bitop:` typo or a second `jobs:` changed a run without a word.",
    ),
    (
        "Plugin, environment, deployment and pool names, run ids and output keys use one character set (letters, digits, `_`, `-`, `.`; not starting with `.` or `-`; at most 100 characters); others are errors.",
        "BitOps used names as paths unchecked: a plugin named `../../x` or `/srv/x` made the installer remove that folder. See docs/guarantees.md.",
    ),
    (
        "Durations are at most 365 days, `retries` at most 100, `jobs` and pool sizes at most 4096; out of range is a located error.",
        "BitOps never enforced timeouts; without limits a huge value overflowed clock arithmetic and `retries: 4294967296` wrapped to 0.",
    ),
    (
        "YAML documents nest at most 128 levels, aliases included, and expand to at most 200,000 nodes.",
        "PyYAML had no such limits; deep documents exhausted the stack.",
    ),
    (
        "A deployment fails when its `$BITOPS_OUTPUT_FILE` is not UTF-8, has two keys that become the same variable name, or a value with NUL or over 128 KiB.",
        "Such outputs were dropped silently or made every dependent fail to start.",
    ),
    (
        "A set-but-empty `BITOPS_ENVIRONMENT`/`ENVIRONMENT` is a usage error (exit 2); `bitops destroy`, and any run in the BitOps container (`/opt/bitops_deployment`), needs an explicit selection (`-e`/`BITOPS_ENVIRONMENT`, `--only` or `--all`).",
        "BitOps exited 1 without an environment; bitops can run several environments, so an empty value must not silently mean all of them, production included.",
    ),
    (
        "A run that selects no deployment (wrong folder, environment folder passed as the repo, a selection of empty environments) is exit 2 with what was searched; nothing is written.",
        "BitOps exited 1 when an environment had no deployments; bitops' earlier `OK: 0 succeeded` hid a wrong `-C`.",
    ),
    (
        "Tool-config keys that BitOps' v1/v2 documentation used and v2 ignored (`terraform.options.command`, `helm.options.kubeconfig.fetch.*`, `cloudformation.cli.cfn-stack-action`, …) are warnings (errors with `--strict`), and are read from their v2 place when one exists: `options.command: apply` applies, `parameters.enabled: true` passes the parameters file. A legacy `command: destroy` is never carried over.",
        "BitOps v2 ignored them silently, so its own documentation examples planned where they said apply; refusing them would refuse those repos, ignoring them would keep the surprise.",
    ),
    (
        "When bitops shows no colours (off a terminal, `NO_COLOR`, `--color never`), deployments run with `NO_COLOR=1`, `CLICOLOR=0`, `ANSIBLE_NOCOLOR=1`, `TF_IN_AUTOMATION=1` and `-no-color` added to `TF_CLI_ARGS_<command>` for terraform's commands, unless the user set them; escape sequences are removed from log files, log tails and reports.",
        "BitOps passed tools' colour codes on to CI logs, log files and reports, where they read as `[0m[1m` noise and can split a secret so that a mask misses it.",
    ),
];

/// The whole `docs/compatibility.md`.
pub fn render_document() -> String {
    let mut out = String::from(
        "# Compatibility with BitOps v2\n\n\
         bitops runs BitOps v2 operations repos and plugins unchanged: the same folders, \
         `bitops.config.yaml` keys, hook folders, `BITOPS_*` variables, `BITOPS_<PLUGIN>_<KEY>` \
         overrides, plugin files (`plugin.config.yaml`, `bitops.schema.yaml`, `deploy.sh`), the \
         deploy invocation `<language> <deploy script> <stack_action>`, and YAML 1.1 scalars \
         (`yes`/`on` are booleans). Where BitOps v2 has a bug, bitops does the evident right \
         thing; nothing an official plugin relies on is changed. Every such difference is \
         listed below with its reason.\n\n\
         This file is generated from the code (`src/compat.rs`, \
         `src/plugins/bitops_format/mod.rs`, `src/plugins/builtin/mod.rs`); \
         `UPDATE_DOCS=1 cargo test --lib compat` rewrites it.\n",
    );
    let sections: [(&str, &[(&str, &str)]); 3] = [
        ("The engine", DEVIATIONS),
        (
            "The BitOps plugin contract",
            crate::plugins::bitops_format::DEVIATIONS,
        ),
        ("Built-in plugins", crate::plugins::builtin::DEVIATIONS),
    ];
    for (title, list) in sections {
        out.push_str(&format!(
            "\n## {title}\n\n| bitops | BitOps v2, and why bitops differs |\n| --- | --- |\n"
        ));
        for (what, why) in list {
            out.push_str(&format!("| {} | {} |\n", cell(what), cell(why)));
        }
    }
    out
}

fn cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    #[test]
    fn compatibility_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/compatibility.md");
        let want = super::render_document();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/compatibility.md is out of date: run `UPDATE_DOCS=1 cargo test --lib compat`"
        );
    }
}
