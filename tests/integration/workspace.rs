//! What one deployment runs in: its working copy (with `_default` merged), its own variables.

use crate::harness::TestRepo;

#[test]
fn default_folder_is_merged_into_the_working_copy() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.write("_default/d/only-default.txt", "from _default\n");
    repo.write("_default/d/clash.txt", "default loses\n");
    repo.write("e/d/clash.txt", "environment wins\n");
    repo.write(
        "_default/d/settings.yaml",
        "app:\n  name: default\n  size: 1\n  tags: [a, b]\n",
    );
    repo.write("e/d/settings.yaml", "app:\n  name: env\n  tags: [c]\n");
    repo.write(
        "_default/d/bitops.config.yaml",
        "sh:\n  options:\n    extra: from-default\n",
    );
    repo.write("_scripts/helper.sh", "echo helper ran\n");
    repo.dep(
        "e",
        "d",
        "cp only-default.txt clash.txt settings.yaml \"$T_OUT/\" && echo \"$SH_EXTRA\" > \"$T_OUT/extra\" \
         && bash \"$BITOPS_TEMPDIR/_scripts/helper.sh\" > \"$T_OUT/helper\"",
    );
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("only-default.txt"), "from _default\n");
    assert_eq!(repo.read_out("clash.txt"), "environment wins\n");
    let merged: serde_yaml::Value = serde_yaml::from_str(&repo.read_out("settings.yaml")).unwrap();
    let want: serde_yaml::Value =
        serde_yaml::from_str("app:\n  name: env\n  size: 1\n  tags: [c]\n").unwrap();
    assert_eq!(
        merged, want,
        "maps merge key by key (environment wins), lists are replaced"
    );
    assert_eq!(
        repo.read_out("extra").trim(),
        "from-default",
        "the tool config is deep-merged too"
    );
    assert_eq!(
        repo.read_out("helper").trim(),
        "helper ran",
        "_scripts are in $BITOPS_TEMPDIR"
    );
}

#[test]
fn nothing_leaks_between_deployments() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  one: {plugin: sh}\n  two: {plugin: sh}\n",
    );
    repo.dep_with(
        "e",
        "one",
        "echo \"${SH_EXTRA-unset}\" > \"$T_OUT/one\"",
        "extra: only-for-one",
    );
    repo.dep(
        "e",
        "two",
        "echo \"${SH_EXTRA-unset} ${BITOPS_SH_EXTRA-unset}\" > \"$T_OUT/two\"",
    );
    let out = repo.run(&["deploy", "--progress", "plain", "-j", "1"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("one").trim(), "only-for-one");
    assert_eq!(
        repo.read_out("two").trim(),
        "unset unset",
        "a variable exported for `one` leaked into `two`"
    );
}

#[test]
fn each_deployment_sees_its_own_environment_name() {
    let repo = TestRepo::new();
    for (env, dep) in [("alpha", "da"), ("beta", "db"), ("gamma", "dg")] {
        repo.env(env, &format!("deployments:\n  {dep}: {{plugin: sh}}\n"));
        repo.dep(
            env,
            dep,
            &format!("echo \"$BITOPS_ENVIRONMENT $ENVIRONMENT\" > \"$T_OUT/{dep}\""),
        );
    }
    let out = repo.run_env(
        &["deploy", "--progress", "plain"],
        &[("BITOPS_ENVIRONMENT", "alpha,beta")],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("da").trim(), "alpha alpha");
    assert_eq!(repo.read_out("db").trim(), "beta beta");
    assert!(!repo.out_file("dg").exists(), "gamma was not selected");
}

#[test]
fn deployments_run_in_a_copy_unless_in_place() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep(
        "e",
        "d",
        "pwd -P > \"$T_OUT/pwd\"; echo \"$BITOPS_OPSREPO_ENVIRONMENT_DIR\" > \"$T_OUT/dir\"",
    );
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    let pwd = repo.read_out("pwd");
    assert!(pwd.trim().ends_with("/.bitops/work/e/d"), "{pwd}");
    assert_eq!(repo.read_out("dir").trim(), pwd.trim());

    let out = repo.run(&["deploy", "--progress", "plain", "--in-place"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("pwd").trim(),
        repo.path("e/d").display().to_string()
    );
}

#[test]
fn hooks_run_before_and_after_the_plugin_in_name_order() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo plugin >> \"$T_OUT/order\"");
    for (when, name) in [
        ("before", "20-second.sh"),
        ("before", "10-first.sh"),
        ("after", "10-after.sh"),
    ] {
        repo.hook(
            "e",
            "d",
            when,
            name,
            &format!("echo {when}:{name} >> \"$T_OUT/order\"\n"),
        );
    }
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        repo.read_out("order"),
        "before:10-first.sh\nbefore:20-second.sh\nplugin\nafter:10-after.sh\n"
    );
}

#[test]
fn a_failing_before_hook_stops_the_deployment() {
    let repo = TestRepo::new();
    repo.env(
        "e",
        "deployments:\n  d: {plugin: sh}\n  next: {plugin: sh}\n",
    );
    repo.dep("e", "d", "echo plugin >> \"$T_OUT/order\"");
    repo.dep("e", "next", "true");
    repo.hook(
        "e",
        "d",
        "before",
        "10-fail.sh",
        "echo 'hook says no'; exit 7\n",
    );
    repo.hook(
        "e",
        "d",
        "after",
        "10-after.sh",
        "echo after >> \"$T_OUT/order\"\n",
    );
    let out = repo.run(&["deploy", "--progress", "plain", "--color", "never"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        !repo.out_file("order").exists(),
        "the plugin or an after hook ran after a failed before hook"
    );
    assert!(out.stderr.contains("hook says no"), "{out}");
    assert!(repo.started().is_empty(), "{out}");
}

#[test]
fn hooks_from_default_run_and_are_planned() {
    let repo = TestRepo::new();
    repo.env("e", "deployments:\n  d: {plugin: sh}\n");
    repo.dep("e", "d", "echo plugin >> \"$T_OUT/order\"");
    repo.write(
        "_default/d/bitops.before-deploy.d/05-shared.sh",
        "echo shared >> \"$T_OUT/order\"\n",
    );
    repo.hook(
        "e",
        "d",
        "before",
        "10-own.sh",
        "echo own >> \"$T_OUT/order\"\n",
    );
    let plan = repo.plan_json(&[]);
    let node = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "e/d")
        .unwrap();
    assert_eq!(
        node["hooks"]["before"],
        serde_json::json!(["05-shared.sh", "10-own.sh"])
    );
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("order"), "shared\nown\nplugin\n");
}

#[test]
fn deployments_of_one_environment_share_its_working_copy() {
    let repo = TestRepo::new();
    repo.env(
        "a",
        "deployments:\n  one: {plugin: sh}\n  two: {plugin: sh}\n",
    );
    repo.env("b", "depends_on: [a]\ndeployments:\n  one: {plugin: sh}\n");
    // `one` writes next to the environment's deployments (a terraform inventory for ansible).
    repo.dep("a", "one", "echo from-one > ../inventory.txt");
    repo.dep("a", "two", "cat ../inventory.txt > \"$T_OUT/a-two\"");
    repo.dep(
        "b",
        "one",
        "if [ -e ../inventory.txt ]; then echo leaked; else echo absent; fi > \"$T_OUT/b-one\"",
    );
    let out = repo.run(&["deploy", "--progress", "plain"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(repo.read_out("a-two").trim(), "from-one");
    assert_eq!(repo.read_out("b-one").trim(), "absent");
}
