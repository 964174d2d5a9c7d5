//! The hand-written guides quote bitops commands; every subcommand and flag they show must exist.
//! Each `bitops <command> …` in a code span or code block of these pages is checked against
//! `bitops <command> --help`, and a lone flag in a code span (`--strict`) against the help of
//! every command, so a renamed or removed flag fails here instead of misleading a reader.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::BIN;

const PAGES: &[(&str, &str)] = &[
    (
        "docs/from-bitops.md",
        include_str!("../../docs/from-bitops.md"),
    ),
    (
        "docs/troubleshooting.md",
        include_str!("../../docs/troubleshooting.md"),
    ),
];

const COMMANDS: &[&str] = &[
    "plan",
    "deploy",
    "destroy",
    "export",
    "report",
    "plugins",
    "completions",
    "man",
];

/// Flags of other tools that the pages quote on their own (ansible's dry run, helm's listing and
/// `--set-string`).
const OTHER_TOOLS: &[&str] = &["--check", "--diff", "--all-namespaces", "--set-string"];

/// The code in a Markdown page: inline spans and the lines of fenced blocks.
fn code_of(page: &str) -> Vec<String> {
    let mut code = Vec::new();
    let mut fenced = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            code.push(line.to_string());
        } else {
            code.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
    }
    code
}

fn flags(words: &[&str]) -> Vec<String> {
    words
        .iter()
        .filter(|w| {
            w.starts_with("--")
                || (w.len() > 1 && w.starts_with('-') && w.as_bytes()[1].is_ascii_alphabetic())
        })
        .map(|w| {
            w.split(['=', ',', '/'])
                .next()
                .unwrap()
                .trim_end_matches(['.', ')', ';'])
                .to_string()
        })
        .filter(|w| w.len() > 1 && w != "--")
        .collect()
}

fn has_flag(help: &str, flag: &str) -> bool {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .any(|w| w == flag)
}

struct Helps(BTreeMap<String, String>);

impl Helps {
    fn of(&mut self, cmd: &[&str]) -> &str {
        self.0.entry(cmd.join(" ")).or_insert_with(|| {
            let out = Command::new(BIN)
                .args(cmd)
                .arg("--help")
                .env("COLUMNS", "200")
                .output()
                .expect("bitops runs");
            assert!(out.status.success(), "bitops {cmd:?} --help failed");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    }
}

#[test]
fn every_command_and_flag_the_guides_show_exists() {
    let mut helps = Helps(BTreeMap::new());
    let mut problems = Vec::new();
    for (name, page) in PAGES {
        for code in code_of(page) {
            let words: Vec<&str> = code.split_whitespace().collect();
            let mut quoted_a_command = false;
            for (i, w) in words.iter().enumerate() {
                if *w != "bitops" {
                    continue;
                }
                let Some(sub) = words.get(i + 1).filter(|s| COMMANDS.contains(s)) else {
                    continue;
                };
                quoted_a_command = true;
                let mut cmd = vec![*sub];
                let mut rest = &words[i + 2..];
                if *sub == "plugins" {
                    match rest.first() {
                        Some(s @ (&"list" | &"install")) => {
                            cmd.push(s);
                            rest = &rest[1..];
                        }
                        Some(s) if !s.starts_with('-') => {
                            problems.push(format!("{name}: `bitops plugins {s}` is no command"));
                        }
                        _ => {}
                    }
                }
                // Up to the next command of a shell line (`|`, `&&`, `;`, `#`).
                let end = rest
                    .iter()
                    .position(|w| ["|", "&&", ";", "#", "||"].contains(w))
                    .unwrap_or(rest.len());
                let help = helps.of(&cmd).to_string();
                for flag in flags(&rest[..end]) {
                    if !has_flag(&help, &flag) {
                        problems.push(format!(
                            "{name}: `bitops {}` has no `{flag}` (in `{code}`)",
                            cmd.join(" ")
                        ));
                    }
                }
            }
            if !quoted_a_command && words.len() <= 2 && code.starts_with("--") {
                let flag = flags(&words[..1]).pop().unwrap_or_default();
                let known = OTHER_TOOLS.contains(&flag.as_str())
                    || COMMANDS.iter().any(|c| has_flag(helps.of(&[c]), &flag));
                if !known {
                    problems.push(format!("{name}: no bitops command has `{flag}`"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
