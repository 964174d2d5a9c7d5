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
        "`BITOPS_DIR`, `BITOPS_SCRIPTS_DIR` and `BITOPS_PLUGINS_DIR` point into the state folder (`.bitops`), and `BITOPS_INSTALLED_PLUGIN_DIR` to the plugin's real folder.",
        "BitOps hard-coded `/opt/bitops/...` inside its image; bitops also runs outside a container. Plugins that use the variables (as the official ones do) work either way.",
    ),
    (
        "Plugins can be read from a local folder at deploy time (`source: ./_plugins/x`) and git plugins are fetched by `bitops plugins install`, honouring `source_tag` and `source_branch`.",
        "BitOps installed plugins only at image build and ignored `source_tag`.",
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
        "`bitops plan --run` runs before-deploy hooks but not after-deploy hooks; `destroy` passes `destroy` as a BitOps-format plugin's stack action.",
        "BitOps had no whole-repo dry run or destroy command (#102); after-deploy hooks typically check or announce a deployment that a dry run did not make.",
    ),
    (
        "`run_mode: validate_config` / `BITOPS_MODE=validate_config` (and `settings_test`) validate everything, print the plan and exit 0 without running anything.",
        "BitOps printed its settings or the deployment config and exited 0; the plan shows the same and more.",
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
