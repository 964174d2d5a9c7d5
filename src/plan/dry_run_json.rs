//! `bitops plan --run --format json`: every deployment's dry-run result as one versioned JSON
//! document for machines (documented in docs/plan-json.md).

use serde::Serialize;

use crate::exec::events::{ExitInfo, NodeResult, Status};

/// The version of the document's shape; fields may be added without a bump.
pub const VERSION: u32 = 1;

/// What one deployment's dry run came to, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Something would change.
    Changes,
    NoChanges,
    /// The dry run ran but its tool cannot say (helm template, a plugin's `plan` action).
    Unknown,
    /// The deployment has no dry run (its plugin has no `plan` action, or it was configured off).
    NoDryRun,
    /// The dry run failed, timed out or was interrupted.
    Error,
    /// Not started: something it depends on failed.
    Skipped,
    /// Not started: the run stopped first.
    NotRun,
}

impl Verdict {
    pub fn of(r: &NodeResult) -> Verdict {
        match (r.status, &r.changes) {
            (Status::Succeeded, Some(c)) => match c.changed {
                Some(true) => Verdict::Changes,
                Some(false) => Verdict::NoChanges,
                None => Verdict::Unknown,
            },
            (Status::Succeeded, None) => Verdict::NoDryRun,
            (Status::Skipped, _) => Verdict::Skipped,
            (Status::NotRun, _) => Verdict::NotRun,
            // `not_applicable`: the plugin has no dry-run action, so it was not run.
            (s, _) if !s.is_failure() => Verdict::Skipped,
            _ => Verdict::Error,
        }
    }

    /// As the text table writes it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Changes => "changes",
            Verdict::NoChanges => "no changes",
            Verdict::Unknown => "unknown",
            Verdict::NoDryRun => "no dry run",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
            Verdict::NotRun => "not run",
        }
    }
}

/// The outcome of the whole dry run, as `--detailed-exitcode` reports it: 0 no changes,
/// 2 changes, 1 an error (errors win).
pub fn detailed_code(results: &[(String, NodeResult)]) -> u8 {
    let verdicts: Vec<Verdict> = results.iter().map(|(_, r)| Verdict::of(r)).collect();
    if verdicts.contains(&Verdict::Error) {
        1
    } else if verdicts.contains(&Verdict::Changes) {
        2
    } else {
        0
    }
}

#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub version: u32,
    pub run_id: &'a str,
    /// `changes`, `no_changes` or `errors`: the whole dry run in one word.
    pub outcome: &'static str,
    /// What bitops exits with.
    pub exit_code: u8,
    pub deployments: Vec<Deployment>,
}

#[derive(Debug, Serialize)]
pub struct Deployment {
    pub id: String,
    pub environment: String,
    pub deployment: String,
    pub result: Verdict,
    /// The engine's status word (as in the run report).
    pub status: &'static str,
    /// `true` something would change, `false` nothing would, `null` the tool cannot say.
    pub changed: Option<bool>,
    /// Resources to add / change / destroy, when the tool says (terraform, cloudformation);
    /// for ansible `change` counts tasks that would change.
    pub add: Option<u64>,
    pub change: Option<u64>,
    pub destroy: Option<u64>,
    /// The tool's own one-line summary (`2 to add, 0 to change, 1 to destroy`).
    pub summary: Option<String>,
    /// Why it failed, was skipped or has no dry run.
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    pub log: Option<String>,
}

pub fn document<'a>(
    run_id: &'a str,
    results: &[(String, NodeResult)],
    exit_code: u8,
) -> Document<'a> {
    let deployments = results
        .iter()
        .map(|(id, r)| {
            let (environment, deployment) = id.split_once('/').unwrap_or((id, ""));
            let result = Verdict::of(r);
            let changes = r.changes.as_ref().filter(|_| r.status == Status::Succeeded);
            let (exit, signal) = match r.exit {
                Some(ExitInfo::Code(c)) => (Some(c), None),
                Some(ExitInfo::Signal(s)) => (None, Some(s)),
                None => (None, None),
            };
            Deployment {
                id: id.clone(),
                environment: environment.to_string(),
                deployment: deployment.to_string(),
                result,
                status: crate::report::run_report::status_word(r.status),
                changed: changes.and_then(|c| c.changed),
                add: changes.and_then(|c| c.add),
                change: changes.and_then(|c| c.change),
                destroy: changes.and_then(|c| c.destroy),
                summary: changes.map(|c| c.summary.clone()),
                error: if changes.is_some() {
                    None
                } else {
                    r.reason.clone()
                },
                exit_code: exit,
                signal,
                duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                log: r.log.as_ref().map(|p| p.display().to_string()),
            }
        })
        .collect();
    Document {
        version: VERSION,
        run_id,
        outcome: match detailed_code(results) {
            0 => "no_changes",
            2 => "changes",
            _ => "errors",
        },
        exit_code,
        deployments,
    }
}

/// The document as pretty JSON with a final newline.
pub fn render(run_id: &str, results: &[(String, NodeResult)], exit_code: u8) -> String {
    let mut s = serde_json::to_string_pretty(&document(run_id, results, exit_code))
        .expect("plain data serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::dry_run::Changes;

    fn ok(changed: Option<bool>, summary: &str) -> NodeResult {
        let mut r = NodeResult::new(Status::Succeeded);
        r.exit = Some(ExitInfo::Code(if changed == Some(true) { 2 } else { 0 }));
        r.changes = Some(Changes {
            changed,
            add: Some(1),
            change: Some(0),
            destroy: Some(0),
            summary: summary.into(),
        });
        r
    }

    #[test]
    fn every_deployment_with_its_result() {
        let mut failed = NodeResult::with_reason(Status::Failed, "terraform plan exited 1");
        failed.exit = Some(ExitInfo::Code(1));
        let results = vec![
            ("a/terraform".to_string(), ok(Some(true), "1 to add")),
            ("a/helm".to_string(), ok(None, "renders 3 resources")),
            ("b/terraform".to_string(), failed),
            (
                "c/x".to_string(),
                NodeResult::with_reason(Status::Skipped, "b/terraform failed"),
            ),
        ];
        assert_eq!(detailed_code(&results), 1);
        let v: serde_json::Value =
            serde_json::from_str(&render("r1", &results, 1)).expect("valid JSON");
        assert_eq!(v["version"], 1);
        assert_eq!(v["outcome"], "errors");
        let d = &v["deployments"];
        assert_eq!(d[0]["result"], "changes");
        assert_eq!(d[0]["add"], 1);
        assert_eq!(d[0]["exit_code"], 2);
        assert_eq!(d[1]["result"], "unknown");
        assert_eq!(d[1]["changed"], serde_json::Value::Null);
        assert_eq!(d[2]["result"], "error");
        assert_eq!(d[2]["error"], "terraform plan exited 1");
        assert_eq!(d[2]["add"], serde_json::Value::Null);
        assert_eq!(d[3]["result"], "skipped");
        assert_eq!(d[3]["environment"], "c");
        assert_eq!(
            detailed_code(&[("a".into(), ok(Some(false), "no changes"))]),
            0
        );
    }
}
