//! `bitops plan` for people: waves, the critical path, then each deployment in detail.

use std::fmt::Write;

use super::Plan;
use crate::config::settings::RunSettings;
use crate::graph::EdgeKind;
use crate::model::DeploymentsFrom;

pub fn render(plan: &Plan<'_>, settings: &RunSettings) -> String {
    let mut out = String::new();
    let deployments = plan.deployment_count();
    let envs = plan
        .order
        .iter()
        .filter(|i| plan.deployment(**i).is_some())
        .map(|i| plan.graph.node(*i).env)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let _ = writeln!(
        out,
        "Plan for {}: {} in {}, {} (selection: {})",
        plan.repo.root.display(),
        count(deployments, "deployment"),
        count(envs, "environment"),
        count(plan.waves.len(), "wave"),
        plan.selection.description
    );
    let _ = writeln!(
        out,
        "Settings: jobs {} ({}), fail_fast {} ({}){}",
        settings.jobs.value,
        settings.jobs.origin,
        settings.fail_fast.value,
        settings.fail_fast.origin,
        if settings.pools.is_empty() {
            String::new()
        } else {
            format!(
                ", pools {}",
                settings
                    .pools
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    );
    if deployments == 0 {
        out.push_str("\nNothing to run.\n");
        return out;
    }
    out.push('\n');
    for (n, wave) in plan.waves.iter().enumerate() {
        let _ = writeln!(out, "Wave {} ({} in parallel)", n + 1, wave.len());
        for &i in wave {
            let d = plan.deployment(i).expect("waves hold deployments");
            let after = plan.depends_on(i);
            let after = if after.is_empty() {
                String::new()
            } else {
                format!("  after {}", after.join(", "))
            };
            let line = format!("  {:<40} {:<14}{after}", plan.graph.node(i).id, d.plugin);
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    let path: Vec<&str> = plan
        .critical_path
        .iter()
        .map(|i| plan.graph.node(*i).id.as_str())
        .collect();
    let _ = writeln!(
        out,
        "\nCritical path ({}): {}",
        count(path.len(), "deployment"),
        path.join(" → ")
    );

    out.push_str("\nDeployments\n");
    for &i in plan.order.iter().filter(|i| plan.deployment(**i).is_some()) {
        let env = plan.environment(i);
        let d = plan.deployment(i).expect("filtered to deployments");
        let _ = writeln!(out, "  {}", plan.graph.node(i).id);
        let field = |out: &mut String, k: &str, v: &str| {
            let _ = writeln!(out, "    {k:<11} {v}");
        };
        let from = match env.deployments_from {
            DeploymentsFrom::Environment => "listed in the environment config",
            DeploymentsFrom::Repo => "listed in the repo config",
            DeploymentsFrom::Folders => "found from its folder",
        };
        field(&mut out, "plugin", &format!("{} ({from})", d.plugin));
        let deps: Vec<String> = plan
            .dependencies(i)
            .into_iter()
            .map(|(id, k)| match k {
                EdgeKind::Success => id.to_string(),
                EdgeKind::Order => format!("{id} (order: waits for it to finish, not to succeed)"),
            })
            .collect();
        field(
            &mut out,
            "depends on",
            &if deps.is_empty() {
                "nothing".into()
            } else {
                deps.join(", ")
            },
        );
        if let Some(Ok(inv)) = plan.invocations.get(&i) {
            for (n, input) in inv.inputs.iter().enumerate() {
                let value = match &input.value {
                    Some(v) => format!(" = {v}"),
                    None => " (value not known yet: no successful deploy of it recorded)".into(),
                };
                field(
                    &mut out,
                    if n == 0 { "inputs" } else { "" },
                    &format!("{} <- {}{value}", input.name, input.from),
                );
            }
        }
        let timeout = match d.timeout.value {
            Some(t) => humantime::format_duration(t).to_string(),
            None => "none".into(),
        };
        field(
            &mut out,
            "limits",
            &format!(
                "timeout {timeout} ({}), retries {} ({}){}",
                d.timeout.origin,
                d.retries.value,
                d.retries.origin,
                d.pool
                    .as_ref()
                    .map(|p| format!(", pool {}", p.value))
                    .unwrap_or_default()
            ),
        );
        if !d.hooks.before.is_empty() || !d.hooks.after.is_empty() {
            field(
                &mut out,
                "hooks",
                &format!(
                    "before: [{}]  after: [{}]",
                    d.hooks.before.join(", "),
                    d.hooks.after.join(", ")
                ),
            );
        }
        match plan.invocations.get(&i) {
            Some(Ok(inv)) => {
                for (n, s) in inv.settings.iter().enumerate() {
                    field(&mut out, if n == 0 { "settings" } else { "" }, s);
                }
                for (n, c) in inv.commands.iter().enumerate() {
                    field(&mut out, if n == 0 { "commands" } else { "" }, c);
                }
                for (n, (k, v)) in inv.env.iter().enumerate() {
                    field(
                        &mut out,
                        if n == 0 { "variables" } else { "" },
                        &format!("{k}={v}"),
                    );
                }
            }
            Some(Err(e)) => field(&mut out, "error", e),
            None => {}
        }
    }
    out
}

/// `1 deployment`, `3 deployments`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
