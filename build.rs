//! Finds which real tools the test suite drives (terraform, ansible, the AWS CLI with moto,
//! check-jsonschema, chromium, …) do not run on this machine, so that the tests needing them
//! are compiled as `#[ignore]`d with the missing tool as the reason: `cargo test` then shows
//! every skipped real-tool check in its summary instead of counting it as passed.
//!
//! Under CI (`CI` set) nothing is ignored: those tests run, and a missing tool fails them
//! (see `src/test_tools.rs`). The probe only matters to tests; the binary is unaffected.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `(name used in #[cfg(missing_tool = "…")], program, arguments that succeed when it works)`.
/// Keep in step with `src/test_tools.rs`.
const TOOLS: &[(&str, &str, &[&str])] = &[
    ("terraform", "terraform", &["version"]),
    ("ansible-playbook", "ansible-playbook", &["--version"]),
    ("aws", "aws", &["--version"]),
    ("moto_server", "moto_server", &["--help"]),
    ("check-jsonschema", "check-jsonschema", &["--version"]),
    ("chromium", "chromium", &["--version"]),
    ("hadolint", "hadolint", &["--version"]),
    ("junitparser", "python3", &["-c", "import junitparser"]),
];

/// Whether `program args…` exits 0 within 30 s (a probe must never hang a build).
fn runs(program: &str, args: &[&str]) -> bool {
    let Ok(mut child) = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let names: Vec<String> = TOOLS.iter().map(|(n, ..)| format!("\"{n}\"")).collect();
    println!(
        "cargo::rustc-check-cfg=cfg(missing_tool, values({}))",
        names.join(", ")
    );
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if ci {
        return;
    }
    let mut any_missing = false;
    for (name, program, args) in TOOLS {
        if !runs(program, args) {
            any_missing = true;
            println!("cargo::rustc-cfg=missing_tool=\"{name}\"");
        }
    }
    // Installing a tool adds a file to a folder on PATH: probe again then.
    if any_missing {
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path).filter(|d| d.is_dir()) {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
        }
    }
}
