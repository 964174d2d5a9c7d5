//! Folders that look like tool folders but match no plugin, and environments without
//! deployments: warnings with a did-you-mean, errors when something depends on them.

use crate::harness::TestRepo;

#[test]
fn a_misnamed_tool_folder_is_a_warning_with_did_you_mean() {
    let repo = TestRepo::bare();
    repo.write("prod/terraform/main.tf", "# ok\n");
    // An environment by its config file, whose only tool folder is misspelt.
    repo.write("dev/bitops.config.yaml", "bitops: {}\n");
    repo.write("dev/terrafrom/main.tf", "# typo\n");
    // No config file and no tool folder: not an environment at all, which is what to say.
    repo.write("qa/terrafom/main.tf", "# typo\n");
    repo.write("stage/terraform/main.tf", "# ok\n");
    repo.write("stage/ansilbe/playbook.yaml", "# typo\n");
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("environment `dev` has no deployments")
            && out.stderr.contains("did you mean `dev/terraform/`?"),
        "{out}"
    );
    assert!(
        out.stderr.contains("`qa/` is not an environment")
            && out.stderr.contains("did you mean `qa/terraform/`?"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("`stage/ansilbe/` looks like a tool folder but matches no plugin")
            && out.stderr.contains("did you mean `ansible`?"),
        "{out}"
    );
    assert!(out.stderr.contains("warning: 3 warnings"), "{out}");
    // --strict: the same are errors, and nothing runs.
    let out = repo.run(&["plan", "--strict", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("because of --strict"), "{out}");
}

#[test]
fn an_empty_environment_that_others_depend_on_is_an_error() {
    let repo = TestRepo::new();
    repo.write("dev/bitops.config.yaml", "bitops: {}\n");
    repo.write("dev/terrafrom/main.tf", "# typo\n");
    repo.env(
        "web",
        "depends_on: [dev]\ndeployments:\n  d: {plugin: sh}\n",
    );
    repo.dep("web", "d", "true");
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("environment `dev` has no deployments, yet something depends on it")
            && out.stderr.contains("web/bitops.config.yaml:2")
            && out.stderr.contains("did you mean `dev/terraform/`?"),
        "{out}"
    );
    assert!(repo.started().is_empty());
}

#[test]
fn a_misnamed_folder_that_a_deployment_depends_on_is_an_error() {
    let repo = TestRepo::new();
    repo.write("stage/terraform/main.tf", "# ok\n");
    repo.write("stage/ansilbe/playbook.yaml", "# typo\n");
    repo.env(
        "web",
        "deployments:\n  d: {plugin: sh, depends_on: [stage/ansible]}\n",
    );
    repo.dep("web", "d", "true");
    let out = repo.run(&["plan", "--color", "never"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("`stage/ansilbe/` looks like a tool folder but matches no plugin")
            && out.stderr.contains("did you mean `ansible`?")
            && out.stderr.contains("depends on it"),
        "{out}"
    );
}
