//! For tests that drive real tools (terraform, ansible-playbook, the AWS CLI with moto,
//! check-jsonschema, chromium, …): a missing tool skips the test with the reason printed on a
//! developer's machine, and fails it under CI, where `.ci/run` installs every tool — so nothing
//! real is silently left untested there.
//!
//! So that `cargo test` does not count a skip as a pass, `build.rs` probes the tools once and
//! compiles the tests that need a missing one as ignored (`#[cfg_attr(missing_tool = "…",
//! ignore = "…")]`): the summary then says "N ignored", with the tool in each reason. Under CI
//! nothing is ignored. The tests in `tools` below stand for the checks inside other tests that
//! are skipped with a missing tool, one per tool.

/// Whether this is a CI run (`CI` set to anything but empty or `false`).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// Whether `program args…` runs successfully here; see the module doc for a missing tool.
pub(crate) fn require(program: &str, args: &[&str]) -> bool {
    let runs = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        let what = format!("`{program} {}`", args.join(" "));
        assert!(
            !in_ci(),
            "{what} must run for this test under CI: install it in .ci/run"
        );
        eprintln!("skipped: {what} does not run here; install it to run this check");
    }
    runs
}

/// One test per tool the suite drives: ignored (with the tool named) where it does not run, so
/// a local `cargo test` lists what it could not check; under CI they run and fail instead.
#[cfg(test)]
mod tools {
    fn runs(program: &str, args: &[&str]) {
        assert!(
            super::require(program, args),
            "`{program}` does not run, but build.rs found it working: `touch build.rs` to probe again"
        );
    }

    #[test]
    #[cfg_attr(
        missing_tool = "terraform",
        ignore = "terraform does not run here: its real-tool checks are skipped"
    )]
    fn terraform() {
        runs("terraform", &["version"]);
    }

    #[test]
    #[cfg_attr(
        missing_tool = "ansible-playbook",
        ignore = "ansible-playbook does not run here: its real-tool checks are skipped"
    )]
    fn ansible_playbook() {
        runs("ansible-playbook", &["--version"]);
    }

    #[test]
    #[cfg_attr(
        any(missing_tool = "aws", missing_tool = "moto_server"),
        ignore = "aws or moto_server does not run here: the cloudformation checks are skipped"
    )]
    fn aws_and_moto() {
        runs("aws", &["--version"]);
        runs("moto_server", &["--help"]);
    }

    #[test]
    #[cfg_attr(
        missing_tool = "check-jsonschema",
        ignore = "check-jsonschema does not run here: schema checks are skipped"
    )]
    fn check_jsonschema() {
        runs("check-jsonschema", &["--version"]);
    }

    #[test]
    #[cfg_attr(
        missing_tool = "chromium",
        ignore = "chromium does not run here: the HTML timeline checks are skipped"
    )]
    fn chromium() {
        runs("chromium", &["--version"]);
    }

    #[test]
    #[cfg_attr(
        missing_tool = "hadolint",
        ignore = "hadolint does not run here: the Dockerfile check is skipped"
    )]
    fn hadolint() {
        runs("hadolint", &["--version"]);
    }

    #[test]
    #[cfg_attr(
        missing_tool = "junitparser",
        ignore = "python3 with junitparser does not run here: the JUnit reader checks are skipped"
    )]
    fn junitparser() {
        runs("python3", &["-c", "import junitparser"]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_tool_skips_outside_ci_and_fails_under_ci() {
        let missing =
            std::panic::catch_unwind(|| super::require("bitops-no-such-tool", &["--version"]));
        if super::in_ci() {
            assert!(
                missing.is_err(),
                "under CI a missing tool must fail the test"
            );
        } else {
            assert_eq!(missing.ok(), Some(false));
        }
        assert!(super::require("true", &[]));
    }
}
