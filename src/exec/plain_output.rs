//! Asking tools for output without colour codes when bitops shows none (off a terminal, `NO_COLOR`,
//! `--color never`): CI logs, log files and reports then hold text, not `\x1b[1m` noise.
//! What a tool colours anyway is removed from log files and reports (see `log_sink`).

use std::collections::BTreeMap;

/// Terraform commands that take `-no-color`, given it through `TF_CLI_ARGS_<command>` so that
/// every plugin (built-in or BitOps-format) gets it without changing its command lines.
const TERRAFORM_COMMANDS: [&str; 9] = [
    "init", "validate", "plan", "apply", "destroy", "output", "show", "refresh", "import",
];

/// Adds the variables that ask for plain output to a deployment's base environment. Variables
/// the user set are kept; a `TF_CLI_ARGS_<command>` of theirs gets `-no-color` appended.
pub fn ask_for_plain_output(env: &mut BTreeMap<String, String>) {
    for (k, v) in [
        // The informal standard (no-color.org): helm, many CLIs.
        ("NO_COLOR", "1"),
        ("CLICOLOR", "0"),
        ("ANSIBLE_NOCOLOR", "1"),
        // Terraform: no "run terraform apply next" hints meant for people at a prompt.
        ("TF_IN_AUTOMATION", "1"),
    ] {
        env.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    for cmd in TERRAFORM_COMMANDS {
        let args = env.entry(format!("TF_CLI_ARGS_{cmd}")).or_default();
        if !args.split_whitespace().any(|a| a == "-no-color") {
            if !args.is_empty() {
                args.push(' ');
            }
            args.push_str("-no-color");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_what_is_missing_and_keeps_what_the_user_set() {
        let mut env = BTreeMap::from([
            ("ANSIBLE_NOCOLOR".to_string(), "0".to_string()),
            ("TF_CLI_ARGS_plan".to_string(), "-parallelism=2".to_string()),
            ("TF_CLI_ARGS_apply".to_string(), "-no-color".to_string()),
        ]);
        ask_for_plain_output(&mut env);
        assert_eq!(env["NO_COLOR"], "1");
        assert_eq!(env["TF_IN_AUTOMATION"], "1");
        assert_eq!(env["ANSIBLE_NOCOLOR"], "0", "the user's choice stands");
        assert_eq!(env["TF_CLI_ARGS_plan"], "-parallelism=2 -no-color");
        assert_eq!(env["TF_CLI_ARGS_apply"], "-no-color");
        assert_eq!(env["TF_CLI_ARGS_init"], "-no-color");
    }
}
