//! The HTML timeline of a run (`bitops report [RUN] --html FILE`): one self-contained page, no
//! network. The report is embedded as JSON and the page's script draws a bar per deployment on
//! a time axis, coloured by status, with dependency lines, the critical path outlined, and the
//! details (log tail included) on hover and click. The template is `html_template.html`.
//!
//! The tests render a report and load the page in headless Chromium, checking the DOM after
//! the script ran: a bar per deployment and no error caught by the page's `window.onerror`.

use super::run_report::RunReport;

const TEMPLATE: &str = include_str!("html_template.html");

/// Renders the page.
pub fn render(r: &RunReport) -> String {
    let title = format!("bitops {} {} — timeline", r.command, r.run_id);
    TEMPLATE
        .replacen("{{TITLE}}", &escape_html(&title), 1)
        .replacen("{{DATA}}", &script_json(r), 1)
}

/// The report as JSON that is safe inside `<script type="application/json">`: every `<` is
/// written as `\u003c`, so no `</script>` or `<!--` in a log line can end or bend the element
/// (JSON.parse reads the escape back).
fn script_json(r: &RunReport) -> String {
    serde_json::to_string(r)
        .expect("a report serializes")
        .replace('<', "\\u003c")
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::run_report::{build, tests::sample};
    use crate::test_tools::require as tool_available;

    #[test]
    fn data_cannot_close_the_script() {
        let (info, result) = sample();
        let r = build(&info, &result, 1);
        let html = render(&r);
        assert_eq!(
            html.matches("</script>").count(),
            3,
            "only the page's own scripts close"
        );
        assert!(!html.contains("{{DATA}}") && !html.contains("{{TITLE}}"));
        let start = html.find("id=\"run-data\">").unwrap() + "id=\"run-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let back: RunReport = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(back, r);
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "nothing is fetched"
        );
    }

    /// Headless Chromium in a container, reaching nothing over the network (the same flags as
    /// `scripts/check-html.sh`).
    const CHROMIUM_FLAGS: &[&str] = &[
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ];

    /// Loads the page in headless Chromium and reads the DOM after its script ran.
    #[test]
    #[cfg_attr(
        missing_tool = "chromium",
        ignore = "chromium does not run here; CI fails instead of skipping"
    )]
    fn chromium_draws_a_bar_per_deployment() {
        let Some(browser) = chromium() else {
            return;
        };
        let (info, result) = sample();
        let r = build(&info, &result, 1);
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("timeline.html");
        std::fs::write(&page, render(&r)).unwrap();
        let dom = dump_dom(&browser, &page, dir.path());
        assert!(
            !dom.contains("data-error=\""),
            "the page reported a script error:\n{dom}"
        );
        assert!(
            dom.contains(&format!("data-ready=\"{}\"", r.deployments.len())),
            "the script did not finish:\n{dom}"
        );
        for d in &r.deployments {
            let marker = format!("data-node=\"{}\"", d.id);
            assert_eq!(dom.matches(&marker).count(), 1, "one bar for {}", d.id);
        }
        assert_eq!(dom.matches("class=\"bar ").count(), r.deployments.len());
        // Critical path outlined, dependency lines drawn, the first failure opened.
        assert!(
            dom.contains("data-node=\"dns-test/cloudformation\"")
                && dom.contains("bar timed_out crit")
        );
        assert_eq!(
            dom.matches("data-edge=").count(),
            3,
            "one line per dependency"
        );
        // The earliest failure in time is opened, with its log tail.
        assert!(dom.contains("data-selected=\"dns-test/cloudformation\""));
        assert!(
            dom.contains("<pre>waiting for the zone…</pre>"),
            "the log tail is shown"
        );

        // Hover, move over, leave and click every bar (and follow a dependency link): the
        // interactive code runs without errors and the details follow the click.
        let exercise = r##"<script>
  document.querySelectorAll(".bar").forEach(function (b) {
    ["mouseenter", "mousemove", "mouseleave", "click"].forEach(function (t) {
      b.dispatchEvent(new MouseEvent(t, { bubbles: true, clientX: 50, clientY: 50 }));
    });
  });
  var links = document.querySelectorAll("#detail a");
  if (links.length) links[0].click();
  document.body.setAttribute("data-exercised", document.getElementById("detail").getAttribute("data-selected"));
</script>
</body>"##;
        let interactive = render(&r).replacen("</body>", exercise, 1);
        std::fs::write(&page, interactive).unwrap();
        let dom = dump_dom(&browser, &page, dir.path());
        assert!(
            !dom.contains("data-error=\""),
            "a script error on hover or click:\n{dom}"
        );
        // The last bar clicked is the last row (zz-test/kubectl, not run); its first link is
        // its dependency.
        assert!(
            dom.contains("data-exercised=\"dns-test/cloudformation\""),
            "{dom}"
        );

        // A page whose script breaks must be caught by the marker the test relies on.
        let broken =
            render(&r).replacen("\"use strict\";", "\"use strict\"; undefinedFunction();", 1);
        std::fs::write(&page, broken).unwrap();
        let dom = dump_dom(&browser, &page, dir.path());
        assert!(
            dom.contains("data-error=\""),
            "a script error went unnoticed"
        );
        assert!(!dom.contains("data-ready=\""));
    }

    /// The Chromium binary, or `None` (with the reason printed) when it is missing here;
    /// under CI a missing browser fails the test.
    fn chromium() -> Option<String> {
        ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|b| {
                std::process::Command::new(b)
                    .arg("--version")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .map(str::to_string)
            .or_else(|| {
                // Reports the skip (or fails under CI) the same way as the other checks.
                tool_available("chromium", &["--version"]);
                None
            })
    }

    fn dump_dom(browser: &str, page: &std::path::Path, tmp: &std::path::Path) -> String {
        let profile = tmp.join("profile");
        let out = std::process::Command::new(browser)
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
