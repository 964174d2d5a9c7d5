//! `bitops plan --run`: what each tool's own dry run says would change, parsed from its output
//! (terraform plan, ansible --check, a cloudformation change set, helm, kubectl diff) and shown
//! as one table.

use std::fmt::Write;

use serde::Serialize;

use crate::exec::events::{NodeResult, Status};
use crate::plugins::step::DryRunTool;

/// What a dry run found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// `Some(true)`: something would change; `Some(false)`: nothing; `None`: the tool cannot say.
    pub changed: Option<bool>,
    pub add: Option<u64>,
    pub change: Option<u64>,
    pub destroy: Option<u64>,
    /// One line for the table (`2 to add, 0 to change, 1 to destroy`, `3 tasks changed`, …).
    pub summary: String,
}

/// Parses a dry run's standard output; `exit` is the step's exit code.
pub fn parse(tool: DryRunTool, stdout: &str, exit: i32) -> Changes {
    match tool {
        DryRunTool::Terraform => terraform(stdout, exit),
        DryRunTool::Ansible => ansible(stdout),
        DryRunTool::CloudFormation => cloudformation(stdout),
        DryRunTool::Kubectl => {
            let changed = exit == 1;
            Changes {
                changed: Some(changed),
                summary: if changed {
                    "differs from the cluster"
                } else {
                    "no differences"
                }
                .into(),
                ..Default::default()
            }
        }
        DryRunTool::Helm => {
            let docs = stdout
                .lines()
                .filter(|l| l.trim_start().starts_with("kind:"))
                .count();
            Changes {
                changed: None,
                summary: format!(
                    "renders {docs} resources (helm template cannot compare with the cluster)"
                ),
                ..Default::default()
            }
        }
        DryRunTool::Plugin => Changes {
            changed: None,
            summary: "ran its dry-run action (the plugin cannot say what would change)".into(),
            ..Default::default()
        },
    }
}

fn number_before(text: &str, marker: &str) -> Option<u64> {
    let i = text.find(marker)?;
    text[..i].split_whitespace().last()?.parse().ok()
}

/// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes; the counts from `Plan: …`.
fn terraform(stdout: &str, exit: i32) -> Changes {
    let plan_line = stdout
        .lines()
        .map(strip_ansi)
        .find(|l| l.trim_start().starts_with("Plan:"));
    let mut c = Changes {
        changed: Some(exit == 2),
        ..Default::default()
    };
    if let Some(line) = plan_line {
        c.add = number_before(&line, " to add");
        c.change = number_before(&line, " to change");
        c.destroy = number_before(&line, " to destroy");
        c.summary = line
            .trim()
            .trim_start_matches("Plan:")
            .trim()
            .trim_end_matches('.')
            .to_string();
    } else if exit == 2 {
        c.summary = "changes (outputs only)".into();
    } else {
        c.summary = "no changes".into();
        c.add = Some(0);
        c.change = Some(0);
        c.destroy = Some(0);
    }
    c
}

/// `ansible-playbook --check`: the PLAY RECAP's `changed=` counts, summed over hosts.
fn ansible(stdout: &str) -> Changes {
    let mut changed = 0u64;
    let mut seen = false;
    let mut in_recap = false;
    for line in stdout.lines().map(strip_ansi) {
        if line.starts_with("PLAY RECAP") {
            in_recap = true;
            continue;
        }
        if in_recap {
            if let Some(n) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("changed="))
                .and_then(|n| n.parse::<u64>().ok())
            {
                changed += n;
                seen = true;
            }
        }
    }
    if !seen {
        return Changes {
            changed: None,
            summary: "no PLAY RECAP found".into(),
            ..Default::default()
        };
    }
    Changes {
        changed: Some(changed > 0),
        change: Some(changed),
        summary: if changed == 0 {
            "no changes".into()
        } else {
            format!(
                "{changed} task{} would change",
                if changed == 1 { "" } else { "s" }
            )
        },
        ..Default::default()
    }
}

/// `aws cloudformation describe-change-set` JSON: resource changes by action.
fn cloudformation(stdout: &str) -> Changes {
    let Some(start) = stdout.find('{') else {
        return Changes {
            changed: None,
            summary: "no change set description".into(),
            ..Default::default()
        };
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&stdout[start..]) else {
        return Changes {
            changed: None,
            summary: "unreadable change set description".into(),
            ..Default::default()
        };
    };
    let changes = v
        .get("Changes")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let count = |action: &str| {
        changes
            .iter()
            .filter(|c| {
                c.pointer("/ResourceChange/Action").and_then(|a| a.as_str()) == Some(action)
            })
            .count() as u64
    };
    let (add, change, destroy) = (count("Add"), count("Modify"), count("Remove"));
    Changes {
        changed: Some(add + change + destroy > 0),
        add: Some(add),
        change: Some(change),
        destroy: Some(destroy),
        summary: format!("{add} to add, {change} to change, {destroy} to destroy"),
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The consolidated table and the exit code for `--detailed-exitcode`
/// (0 no changes, 2 changes, 1 an error).
pub fn table(results: &[(String, NodeResult)]) -> (String, u8) {
    let mut out = String::from("\nDry run\n");
    let width = results
        .iter()
        .map(|(id, _)| id.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let (mut any_change, mut any_error) = (false, false);
    for (id, r) in results {
        let (state, detail) = match (&r.status, &r.changes) {
            (Status::Succeeded, Some(c)) => {
                any_change |= c.changed == Some(true);
                let state = match c.changed {
                    Some(true) => "changes",
                    Some(false) => "no changes",
                    None => "unknown",
                };
                (state, c.summary.clone())
            }
            (Status::Succeeded, None) => ("no dry run", r.reason.clone().unwrap_or_default()),
            (s, _) if s.is_failure() => {
                any_error = true;
                (
                    "error",
                    format!("{}: {}", s.label(), r.reason.clone().unwrap_or_default()),
                )
            }
            (s, _) => (s.label(), r.reason.clone().unwrap_or_default()),
        };
        let _ = writeln!(out, "  {id:<width$}  {state:<10}  {detail}");
    }
    let code = if any_error {
        1
    } else if any_change {
        2
    } else {
        0
    };
    let _ = writeln!(
        out,
        "\n{}",
        match code {
            0 => "No changes.",
            2 => "Changes found.",
            _ => "Some dry runs failed.",
        }
    );
    (out, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraform_counts() {
        let c = parse(
            DryRunTool::Terraform,
            "x\n\u{1b}[1mPlan:\u{1b}[0m 2 to add, 1 to change, 0 to destroy.\n",
            2,
        );
        assert_eq!(
            (c.changed, c.add, c.change, c.destroy),
            (Some(true), Some(2), Some(1), Some(0))
        );
        let c = parse(
            DryRunTool::Terraform,
            "No changes. Your infrastructure matches the configuration.\n",
            0,
        );
        assert_eq!(c.changed, Some(false));
    }

    #[test]
    fn ansible_recap() {
        let out = "PLAY RECAP *****\nlocalhost : ok=3 changed=2 unreachable=0 failed=0\nweb : ok=1 changed=1\n";
        let c = parse(DryRunTool::Ansible, out, 0);
        assert_eq!((c.changed, c.change), (Some(true), Some(3)));
        let c = parse(
            DryRunTool::Ansible,
            "PLAY RECAP\nlocalhost : ok=3 changed=0\n",
            0,
        );
        assert_eq!(c.changed, Some(false));
    }

    #[test]
    fn change_set_counts() {
        let out = r#"{"Changes":[{"ResourceChange":{"Action":"Add"}},{"ResourceChange":{"Action":"Remove"}}]}"#;
        let c = parse(DryRunTool::CloudFormation, out, 0);
        assert_eq!((c.add, c.change, c.destroy), (Some(1), Some(0), Some(1)));
    }

    #[test]
    fn exit_codes() {
        let ok = |changed| {
            let mut r = NodeResult::new(Status::Succeeded);
            r.changes = Some(Changes {
                changed,
                ..Default::default()
            });
            r
        };
        assert_eq!(table(&[("a".into(), ok(Some(false)))]).1, 0);
        assert_eq!(
            table(&[("a".into(), ok(Some(false))), ("b".into(), ok(Some(true)))]).1,
            2
        );
        assert_eq!(
            table(&[
                ("a".into(), ok(Some(true))),
                ("b".into(), NodeResult::new(Status::Failed))
            ])
            .1,
            1
        );
    }
}
