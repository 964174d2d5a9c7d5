//! For tests that drive real tools (terraform, ansible-playbook, the AWS CLI with moto,
//! check-jsonschema, chromium, …): a missing tool skips the test with the reason printed on a
//! developer's machine, and fails it under CI, where `.ci/run` installs every tool — so nothing
//! real is silently left untested there.

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
