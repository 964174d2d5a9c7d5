//! `bitops plan --run --format markdown`: the dry run for reviewers, sized for a pull-request
//! comment (GitHub takes at most 65,536 characters) and for `$GITHUB_STEP_SUMMARY`.
//!
//! A table of every deployment, then each deployment's changes in a collapsed block: the lines
//! of its log that name a change (terraform's `# x will be created`, ansible's `changed:`), or
//! the end of its log when none do. Logs are masked and hold no colour codes; everything from
//! them goes inside code fences, so nothing in a log can break out into the page.

use std::fmt::Write;
use std::io::BufRead;
use std::path::Path;

use super::dry_run_json::{detailed_code, Verdict};
use crate::exec::events::NodeResult;

/// The whole document stays under this many characters (a GitHub comment allows 65,536).
pub const MAX_CHARS: usize = 60_000;
/// Lines shown per deployment, and characters per line.
const MAX_LINES: usize = 60;
const MAX_LINE_CHARS: usize = 240;

pub fn render(results: &[(String, NodeResult)]) -> String {
    let code = detailed_code(results);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### bitops plan --run: {}\n",
        match code {
            0 => "no changes",
            2 => "changes found",
            _ => "some dry runs failed",
        }
    );
    let count = |v: Verdict| results.iter().filter(|(_, r)| Verdict::of(r) == v).count();
    let _ = writeln!(
        out,
        "{} deployments: {} with changes, {} without, {} errors\n",
        results.len(),
        count(Verdict::Changes),
        count(Verdict::NoChanges),
        count(Verdict::Error)
    );
    out.push_str("| deployment | result | summary |\n| --- | --- | --- |\n");
    for (id, r) in results {
        let v = Verdict::of(r);
        let _ = writeln!(
            out,
            "| `{}` | {} {} | {} |",
            cell(id),
            icon(v),
            v.label(),
            cell(&detail(r))
        );
    }
    let mut blocks = String::new();
    let mut left_out = 0;
    for (id, r) in results {
        let v = Verdict::of(r);
        if !matches!(v, Verdict::Changes | Verdict::Error | Verdict::Unknown) {
            continue;
        }
        let block = block(id, r, v);
        // Room for the note below about blocks left out.
        if out.len() + blocks.len() + block.len() + 200 > MAX_CHARS {
            left_out += 1;
            continue;
        }
        blocks.push_str(&block);
    }
    if !blocks.is_empty() {
        out.push('\n');
        out.push_str(&blocks);
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n{left_out} more deployment{} left out to keep this short: see the logs of the run.",
            if left_out == 1 { "" } else { "s" }
        );
    }
    out
}

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Changes => "🟡",
        Verdict::NoChanges => "🟢",
        Verdict::Error => "🔴",
        _ => "⚪",
    }
}

fn detail(r: &NodeResult) -> String {
    match (&r.changes, Verdict::of(r)) {
        (Some(c), Verdict::Changes | Verdict::NoChanges | Verdict::Unknown) => c.summary.clone(),
        _ => r.reason.clone().unwrap_or_default(),
    }
}

/// Text made safe for one table cell: no line breaks, no cell separators, no HTML.
fn cell(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_LINE_CHARS)
        .collect();
    one_line
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "'")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn block(id: &str, r: &NodeResult, v: Verdict) -> String {
    let lines = r
        .log
        .as_deref()
        .map(change_lines)
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| r.tail.iter().rev().take(20).rev().cloned().collect());
    let lines: Vec<String> = lines
        .into_iter()
        .take(MAX_LINES)
        .map(|l| {
            let clean: String = l
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .take(MAX_LINE_CHARS)
                .collect();
            clean
        })
        .collect();
    // A fence longer than any run of backticks inside, so no log line can close it.
    let longest = lines.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code>: {} — {}</summary>\n",
        cell(id),
        v.label(),
        cell(&detail(r))
    );
    let _ = writeln!(out, "{fence}text");
    for l in &lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(out, "{fence}\n</details>\n");
    out
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut now) = (0, 0);
    for x in s.chars() {
        now = if x == c { now + 1 } else { 0 };
        best = best.max(now);
    }
    best
}

/// The lines of a dry run's log that name a change, read line by line (logs can be large).
fn change_lines(log: &Path) -> Vec<String> {
    let Ok(file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        let t = line.trim_start();
        let terraform = t.starts_with("# ")
            && [" will be ", " must be ", " has moved to "]
                .iter()
                .any(|m| t.contains(m));
        let summary = t.starts_with("Plan: ") || t.starts_with("Changes to Outputs");
        let ansible = t.starts_with("changed: [");
        if terraform || summary || ansible {
            found.push(line.to_string());
            if found.len() > MAX_LINES {
                break;
            }
        }
        buf.clear();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::events::Status;
    use crate::plan::dry_run::Changes;

    #[test]
    fn table_and_blocks_stay_inside_their_markup() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(
            &log,
            "Initializing...\n  # null_resource.x will be created\n  # evil ``` </details> | will be created\nPlan: 2 to add, 0 to change, 0 to destroy.\n",
        )
        .unwrap();
        let mut r = NodeResult::new(Status::Succeeded);
        r.log = Some(log);
        r.changes = Some(Changes {
            changed: Some(true),
            add: Some(2),
            change: Some(0),
            destroy: Some(0),
            summary: "2 to add | <b>".into(),
        });
        let same = {
            let mut s = NodeResult::new(Status::Succeeded);
            s.changes = Some(Changes {
                changed: Some(false),
                summary: "no changes".into(),
                ..Default::default()
            });
            s
        };
        let md = render(&[("a/terraform".into(), r), ("b/terraform".into(), same)]);
        assert!(
            md.starts_with("### bitops plan --run: changes found"),
            "{md}"
        );
        assert!(
            md.contains("| `a/terraform` | 🟡 changes | 2 to add \\| &lt;b&gt; |"),
            "{md}"
        );
        assert!(md.contains("| `b/terraform` | 🟢 no changes | no changes |"));
        assert!(md.contains("  # null_resource.x will be created"));
        assert!(
            md.contains("\n````text\n"),
            "fence longer than the log's backticks: {md}"
        );
        assert!(!md.contains("Initializing"), "only change lines: {md}");
        assert_eq!(
            md.matches("<details>").count(),
            1,
            "no block without changes"
        );
    }

    #[test]
    fn stays_under_the_comment_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        let lines: String = (0..5000)
            .map(|i| {
                format!(
                    "  # null_resource.r{i} will be created {}\n",
                    "x".repeat(300)
                )
            })
            .collect();
        std::fs::write(&log, lines).unwrap();
        let results: Vec<(String, NodeResult)> = (0..100)
            .map(|i| {
                let mut r = NodeResult::new(Status::Succeeded);
                r.log = Some(log.clone());
                r.changes = Some(Changes {
                    changed: Some(true),
                    summary: "5000 to add".into(),
                    ..Default::default()
                });
                (format!("env{i}/terraform"), r)
            })
            .collect();
        let md = render(&results);
        assert!(md.len() <= MAX_CHARS, "{}", md.len());
        assert!(md.contains("left out to keep this short"));
        assert!(md.contains("| `env99/terraform` |"), "the table lists all");
    }
}
